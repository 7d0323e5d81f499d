/* The storefront: pick a shopper, see their recommendations with reasons, open products, search by
 * meaning, and send real feedback events (view, add to cart, buy) that travel through Kafka, the stream
 * ingester and the online store back into the next recommendation. Every number on the page comes from
 * the service's API or the /ui/api routes. */
"use strict";

const K = 10;
const CONTEXT_WAIT_MS = 8000;
const POLL_MS = 200;
const DEGRADED_RETRY_MS = 4000;
const state = {
  user: null,
  session: Aisle.id("web-"),
  recs: null,          // the last /recommend answer
  details: new Map(),  // item id -> catalog details
  item: null,          // the product shown
  itemRequest: null,   // request_id of the list the product was opened from
};
const $ = (id) => document.getElementById(id);

function status(text, warn) {
  const node = $("status");
  node.textContent = text;
  node.className = warn ? "warn" : "";
}

function setHash() {
  const parts = [];
  if (state.user) parts.push(`user=${encodeURIComponent(state.user)}`);
  if (state.item) parts.push(`item=${encodeURIComponent(state.item)}`);
  const next = parts.length ? `#${parts.join("&")}` : "";
  if (location.hash !== next) history.replaceState(null, "", next || location.pathname);
}

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  return {user: params.get("user"), item: params.get("item")};
}

async function ensureDetails(ids) {
  const missing = ids.filter((id) => !state.details.has(id));
  if (!missing.length) return;
  const reply = await Aisle.call(`/ui/api/items?ids=${missing.map(encodeURIComponent).join(",")}`);
  for (const item of (reply.body && reply.body.items) || []) state.details.set(item.item_id, item);
}

/** One product card: title (opens the product), category, price, the reason, and the three actions. */
function card(item, requestId, extra) {
  const info = state.details.get(item.item_id) || item;
  const title = info.title || item.item_id;
  const category = (info.category || "").split(">").pop();
  const stock = info.in_stock === false ? " · out of stock" : "";
  return Aisle.el("li", {class: "card", "data-item": item.item_id},
    Aisle.el("h3", {},
      Aisle.el("a", {href: `#user=${encodeURIComponent(state.user || "")}&item=${encodeURIComponent(item.item_id)}`,
        onclick: (e) => { e.preventDefault(); openProduct(item.item_id, requestId); }}, title)),
    Aisle.el("p", {class: "meta"}, `${category}${category ? " · " : ""}${Aisle.price(info.price)}${stock}`),
    Aisle.el("p", {class: "reason"}, item.reason || ""),
    extra || null,
    Aisle.el("div", {class: "actions"},
      Aisle.el("button", {type: "button", class: "secondary", "data-action": "view",
        "aria-label": `View ${title}`, onclick: () => openProduct(item.item_id, requestId)}, "View"),
      Aisle.el("button", {type: "button", "data-action": "add_to_cart",
        "aria-label": `Add ${title} to cart`, onclick: () => act("add_to_cart", item.item_id, requestId)},
        "Add to cart"),
      Aisle.el("button", {type: "button", "data-action": "purchase",
        "aria-label": `Buy ${title}`, onclick: () => act("purchase", item.item_id, requestId)}, "Buy")));
}

// ------------------------------------------------------------------ shopper, activity, recommendations

async function loadShopper(user, note) {
  state.user = user;
  $("shopper-input").value = user;
  setHash();
  status(note || `Loading ${user}…`);
  const [activity] = await Promise.all([loadActivity(), loadRecommendations()]);
  if (activity) status(note || "");
}

async function loadActivity() {
  const reply = await Aisle.call(`/ui/api/shoppers/${encodeURIComponent(state.user)}`);
  if (reply.status !== 200) {
    status(`Could not read the shopper: ${Aisle.errorText(reply)}`, true);
    return null;
  }
  renderActivity(reply.body);
  return reply.body;
}

function renderActivity(view) {
  const c = view.counters;
  const summary = $("shopper-summary");
  const parts = [
    Aisle.el("span", {}, "Shopper ", Aisle.el("strong", {id: "current-shopper"}, view.user_id)),
    Aisle.el("span", {class: view.known ? "badge ok" : "badge"}, view.known ? "known" : "new to the shop"),
    Aisle.el("span", {}, `${c.views} views · ${c.carts} carts · ${c.purchases} purchases`),
  ];
  if (view.degraded) parts.push(Aisle.el("span", {class: "badge warn"}, `context unavailable: ${view.reason}`));
  summary.replaceChildren(...parts);
  const list = $("activity-list");
  list.replaceChildren(...view.recent.map((r) => Aisle.el("li", {},
    Aisle.el("span", {class: "type"}, r.event_type.replace(/_/g, " ")), " ",
    Aisle.el("a", {href: "#", onclick: (e) => { e.preventDefault(); openProduct(r.item_id, null); }}, r.title),
    Aisle.el("br"), Aisle.el("span", {class: "muted"}, new Date(r.ts).toLocaleString()))));
  if (!view.recent.length) list.replaceChildren(Aisle.el("li", {class: "muted"}, "No activity yet."));
}

/** /recommend for the shopper. A degraded answer (the online store was slow or away: no context) is
 * asked again for up to DEGRADED_RETRY_MS, so the page shows the shopper's own list when it can; if it
 * stays degraded, the page shows it and says so. */
async function loadRecommendations() {
  const started = performance.now();
  let reply;
  for (;;) {
    reply = await Aisle.call("/recommend", {user_id: state.user, k: K, context: {device: "web"}});
    if (reply.status !== 200 || !reply.body.degraded || performance.now() - started > DEGRADED_RETRY_MS) break;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  if (reply.status !== 200) {
    status(`The service did not recommend: ${Aisle.errorText(reply)}`, true);
    return null;
  }
  const before = state.recs ? state.recs.items.map((i) => i.item_id) : [];
  state.recs = reply.body;
  await ensureDetails(reply.body.items.map((i) => i.item_id));
  renderRecommendations(reply.body, new Set(before), reply.ms);
  return reply.body;
}

function renderRecommendations(answer, before, ms) {
  $("recs-heading").textContent = `Recommended for ${state.user}`;
  $("recs-meta").replaceChildren(
    Aisle.el("span", {}, "model ", Aisle.el("strong", {id: "model-version"}, answer.model_version)),
    Aisle.el("span", {}, "variant ", Aisle.el("strong", {id: "variant"}, answer.variant)),
    Aisle.el("span", {id: "degraded", class: answer.degraded ? "badge warn" : "badge ok"},
      answer.degraded ? "degraded answer" : "not degraded"),
    Aisle.el("span", {}, `answered in ${ms} ms`),
    Aisle.el("span", {class: "muted"}, `request ${answer.request_id.slice(0, 8)}`));
  const list = $("recs-list");
  list.replaceChildren(...answer.items.map((item) => {
    const node = card(item, answer.request_id);
    if (before.size && !before.has(item.item_id)) node.classList.add("fresh");
    return node;
  }));
  list.setAttribute("data-request", answer.request_id);
}

// ------------------------------------------------------------------ feedback: an action, then its effect

function event(type, itemId, requestId) {
  const info = state.details.get(itemId) || {};
  const body = {
    event_id: Aisle.id("ev-"), event_type: type, user_id: state.user, item_id: itemId,
    ts: new Date().toISOString(), session_id: state.session, device: "web",
  };
  if (requestId) body.request_id = requestId;
  if (type !== "view") { body.quantity = 1; if (typeof info.price === "number") body.value = info.price; }
  return body;
}

/** Wait until the online store holds the event (Kafka → stream ingester → Redis); ms or null. */
async function waitForContext(sent) {
  const started = performance.now();
  while (performance.now() - started < CONTEXT_WAIT_MS) {
    const reply = await Aisle.call(`/ui/api/shoppers/${encodeURIComponent(state.user)}`);
    const recent = (reply.body && reply.body.recent) || [];
    if (recent.some((r) => r.item_id === sent.item_id && r.event_type === sent.event_type &&
                           Date.parse(r.ts) >= Date.parse(sent.ts) - 1000)) {
      renderActivity(reply.body);
      return Math.round(performance.now() - started);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  return null;
}

const WORDS = {view: "Viewed", add_to_cart: "Added to cart", purchase: "Bought"};

async function act(type, itemId, requestId) {
  if (!state.user) await loadShopper(Aisle.id("web-shopper-").slice(0, 24), "A new shopper was created for you.");
  const sent = event(type, itemId, requestId);
  const title = (state.details.get(itemId) || {}).title || itemId;
  const reply = await Aisle.call("/feedback", {events: [sent]});
  if (reply.status !== 202) {
    status(`The event was refused: ${Aisle.errorText(reply)}`, true);
    return;
  }
  const spooled = reply.body.spooled ? " (spooled: Kafka is away, it will be sent when it is back)" : "";
  status(`${WORDS[type]}: ${title}. Event accepted${spooled}; waiting for it to reach the online store…`);
  const before = state.recs ? state.recs.items.map((i) => i.item_id).join(",") : "";
  const reached = await waitForContext(sent);
  await loadRecommendations();
  const after = state.recs ? state.recs.items.map((i) => i.item_id).join(",") : "";
  const changed = before !== after;
  if (reached === null) {
    status(`${WORDS[type]}: ${title}. The event was accepted but is not in the online store after ` +
      `${CONTEXT_WAIT_MS / 1000} s: is the stream ingester running (aisle ingest stream)?`, true);
  } else {
    status(`${WORDS[type]}: ${title}. In the online store after ${reached} ms; ` +
      (changed ? "the recommendations changed." : "the recommendations stayed the same."));
  }
  $("recs-list").setAttribute("data-updated", String(Date.now()));
}

// ------------------------------------------------------------------ product page

async function openProduct(itemId, requestId) {
  state.item = itemId;
  state.itemRequest = requestId;
  setHash();
  const reply = await Aisle.call(`/ui/api/items/${encodeURIComponent(itemId)}`);
  if (reply.status !== 200) {
    status(`No such product: ${Aisle.errorText(reply)}`, true);
    return;
  }
  const item = reply.body;
  state.details.set(item.item_id, item);
  $("product").hidden = false;
  $("product-category").textContent = (item.category || "").split(">").join(" › ");
  $("product-title").textContent = item.title;
  $("product-brand").textContent = item.brand ? `by ${item.brand}` : "";
  $("product-price").textContent = Aisle.price(item.price) + (item.in_stock === false ? " · out of stock" : "");
  $("product-description").textContent = item.description || "";
  const c = item.counts;
  $("product-counts").textContent =
    `${c.views} views, ${c.carts} carts and ${c.purchases} purchases by ${c.shoppers} shoppers in the event lake`;
  $("product-cart").setAttribute("aria-label", `Add ${item.title} to cart`);
  $("product-buy").setAttribute("aria-label", `Buy ${item.title}`);
  const together = item.bought_together.map((t) => ({...t, reason: `bought together in ${t.baskets} basket(s)`}));
  for (const t of item.bought_together) state.details.set(t.item_id, t);
  $("together-list").replaceChildren(...together.map((t) => card(t, null)));
  if (!together.length) $("together-list").replaceChildren(Aisle.el("li", {class: "muted"}, "No purchases together yet."));
  const similar = await Aisle.call("/similar", {item_id: itemId, k: 6});
  if (similar.status === 200) {
    await ensureDetails(similar.body.items.map((i) => i.item_id));
    $("similar-list").replaceChildren(...similar.body.items.map((i) => card(i, null)));
  } else {
    $("similar-list").replaceChildren(Aisle.el("li", {class: "muted"}, Aisle.errorText(similar)));
  }
  $("product-title").setAttribute("tabindex", "-1");
  $("product-title").focus();
  $("product").scrollIntoView({block: "start"});
  if (state.user) act("view", itemId, requestId);  // opening a product page is a view, as in any shop
}

function closeProduct() {
  state.item = null;
  $("product").hidden = true;
  setHash();
  $("recommendations").focus();
}

// ------------------------------------------------------------------ search

async function search(query) {
  const body = {query, k: K};
  if (state.user) body.user_id = state.user;
  $("search-go").disabled = true;
  const reply = await Aisle.call("/search", body);
  $("search-go").disabled = false;
  const section = $("search-results");
  section.hidden = false;
  if (reply.status !== 200) {
    $("search-meta").textContent = `Search is not available: ${Aisle.errorText(reply)}`;
    $("search-list").replaceChildren();
    return;
  }
  for (const hit of reply.body.items) state.details.set(hit.item_id, hit);
  const how = reply.body.personalized ? `re-ranked for ${state.user}'s taste` : "by meaning only";
  $("search-meta").textContent =
    `${reply.body.items.length} items for “${query}”, ${how}, in ${reply.ms} ms` +
    (reply.body.degraded ? " (the shopper's context was unavailable)" : "");
  $("search-list").replaceChildren(...reply.body.items.map((hit) =>
    card(hit, null, Aisle.el("p", {class: "muted"}, `similarity ${hit.similarity.toFixed(2)}`))));
  $("search-heading").setAttribute("tabindex", "-1");
  $("search-heading").focus();
}

// ------------------------------------------------------------------ wiring

function wire() {
  $("shopper-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const user = $("shopper-input").value.trim();
    if (user) loadShopper(user);
  });
  $("random-shopper").addEventListener("click", async () => {
    const reply = await Aisle.call("/ui/api/shoppers/random");
    if (reply.status === 200) loadShopper(reply.body.user_id);
    else status(`No shopper to pick: ${Aisle.errorText(reply)}`, true);
  });
  $("new-shopper").addEventListener("click", () =>
    loadShopper(Aisle.id("web-shopper-").slice(0, 24), "A new shopper: cold-start recommendations until they act."));
  $("search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const query = $("search-input").value.trim();
    if (query) search(query);
  });
  $("product-cart").addEventListener("click", () => act("add_to_cart", state.item, state.itemRequest));
  $("product-buy").addEventListener("click", () => act("purchase", state.item, state.itemRequest));
  $("product-close").addEventListener("click", closeProduct);
  const start = readHash();
  if (start.user) loadShopper(start.user).then(() => start.item && openProduct(start.item, null));
  else if (start.item) openProduct(start.item, null);
}

document.addEventListener("DOMContentLoaded", wire);
