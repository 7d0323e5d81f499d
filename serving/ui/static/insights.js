/* The analyst page: every chart drawn from /ui/api/insights (the lake, the served model, MLflow).
 * A figure whose data could not be computed says why instead of drawing something made up. */
"use strict";

function figure(name) {
  return document.querySelector(`figure[data-chart="${name}"]`);
}

function draw(name, build) {
  const node = figure(name);
  const box = node.querySelector(".chart");
  const caption = node.querySelector("figcaption");
  try {
    const result = build();
    if (result.error) {
      box.replaceChildren(Aisle.el("p", {class: "error"}, result.error));
      node.dataset.rendered = "error";
      return;
    }
    box.replaceChildren(result.chart);
    if (caption && result.caption) caption.replaceChildren(...[].concat(result.caption));
    node.dataset.rendered = "true";
  } catch (err) {
    box.replaceChildren(Aisle.el("p", {class: "error"}, `This chart could not be drawn: ${err.message}`));
    node.dataset.rendered = "error";
    throw err;
  }
}

function graphChart(data) {
  if (data.error) return data;
  if (!data.edges.length) return {error: "No recommendations in the sample yet."};
  const drawn = Charts.graph(data, {label: `Recommendation graph: ${data.shoppers} shoppers, ${data.items} items`});
  const legend = Aisle.el("div", {class: "legend"},
    Aisle.el("span", {style: "--dot:#14324f"}, "shopper"),
    ...drawn.categories.map((c) => Aisle.el("span", {style: `--dot:${c.color}`}, c.name)));
  const wrap = Aisle.el("div", {}, drawn.svg, legend);
  return {
    chart: wrap,
    caption: `${data.shoppers} recently active shoppers and the top ${data.edges.length / Math.max(1, data.shoppers)} ` +
      `items the served model recommends to each now; ${data.shared_items} of ${data.items} items are recommended to ` +
      "more than one of them (larger dots). Hover a node for its name.",
  };
}

function degreesChart(data) {
  if (data.error) return data;
  if (!data.interactions.length) return {error: "The lake holds no interactions yet."};
  const series = [
    {name: "interactions (shoppers per item)", color: Charts.PALETTE[0], points: data.interactions},
    {name: "recommendations (lists per item)", color: Charts.PALETTE[1], points: data.recommendations},
  ];
  const chart = Aisle.el("div", {},
    Charts.loglog(series, {label: "Degree distributions of items, log-log",
      xLabel: "degree (log bins)", yLabel: "items per unit of degree"}),
    Aisle.el("div", {class: "legend"}, ...series.map((s) => Aisle.el("span", {style: `--dot:${s.color}`}, s.name))));
  return {
    chart,
    caption: `How many items have each degree, in bins of doubling width. Gini: interactions ${data.gini_interactions}, recommendations ` +
      `${data.gini_recommendations} (higher = more concentrated on few items: the popularity bias). ` +
      `${data.never_recommended} of ${data.items} items appear in none of the ${data.sample_shoppers} sampled ` +
      `lists and ${data.never_interacted} have no interactions; zero cannot be drawn on a log axis.`,
  };
}

function topChart(rows, column, color) {
  if (!rows || !rows.length) return {error: `No ${column} in the lake yet.`};
  return {
    chart: Charts.bars(rows.map((r) => ({label: r.title, value: r.count})),
      {label: `Top ${rows.length} products by ${column}`, color, valueLabel: column}),
  };
}

function modelsChart(data, links) {
  if (data.error) return data;
  const metric = "ndcg@10";
  const rows = data.rows.filter((r) => r.segment === "all" && r[metric] !== null)
    .sort((a, b) => b[metric] - a[metric])
    .map((r) => ({label: r.model, value: r[metric], lo: r[`${metric}_lo`], hi: r[`${metric}_hi`]}));
  if (!rows.length) return {error: "The newest comparison has no NDCG@10 values."};
  const chart = Charts.intervals(rows, {label: "NDCG@10 per model with 95% bootstrap intervals", xLabel: "NDCG@10 (all test shoppers)"});
  const table = Aisle.el("div", {class: "scroll"}, Aisle.el("table", {class: "compact"},
    Aisle.el("caption", {class: "muted"}, "Every segment (recall@10 with its interval too)"),
    Aisle.el("thead", {}, Aisle.el("tr", {}, ...["model", "segment", "users", "NDCG@10", "95% interval", "recall@10", "95% interval"]
      .map((h) => Aisle.el("th", {scope: "col"}, h)))),
    Aisle.el("tbody", {}, ...data.rows.map((r) => Aisle.el("tr", {},
      Aisle.el("td", {}, r.model), Aisle.el("td", {}, r.segment), Aisle.el("td", {}, r.users),
      Aisle.el("td", {}, num(r["ndcg@10"])), Aisle.el("td", {}, `${num(r["ndcg@10_lo"])} – ${num(r["ndcg@10_hi"])}`),
      Aisle.el("td", {}, num(r["recall@10"])), Aisle.el("td", {}, `${num(r["recall@10_lo"])} – ${num(r["recall@10_hi"])}`))))));
  const mlflow = (links || []).find((l) => l.name === "MLflow" && l.url);
  const runText = `MLflow ${data.kind || ""} run ${data.run_name || data.run_id.slice(0, 8)} of ${new Date(data.started).toLocaleString()}`;
  const run = mlflow
    ? Aisle.el("a", {href: `${mlflow.url}/#/experiments/${data.experiment_id}/runs/${data.run_id}`}, runText)
    : runText;
  return {chart: Aisle.el("div", {}, chart, table), caption: ["From the newest ", run, " that logged a comparison."]};
}

function num(v) {
  return v === null || v === undefined ? "–" : Number(v).toFixed(4);
}

function coverageChart(data) {
  if (data.error) return data;
  const rows = [
    {label: "served by this worker", value: +(100 * data.served_share).toFixed(1)},
    {label: "sampled shoppers' lists", value: +(100 * data.sample_share).toFixed(1)},
  ];
  return {
    chart: Charts.bars(rows, {label: "Share of the catalog in recommendations, percent", color: Charts.PALETTE[2], valueLabel: "% of the catalog"}),
    caption: `${data.served_items} of ${data.catalog_items} catalog items were shown in the ${data.served_answers} ` +
      `answers this worker gave since it started; ${data.sample_items} appear in the lists of the ` +
      `${data.sample_shoppers} sampled shoppers.`,
  };
}

function renderLinks(links) {
  document.getElementById("links").replaceChildren(...links.map((l) => Aisle.el("li", {},
    l.url ? Aisle.el("a", {href: l.url}, l.name) : Aisle.el("strong", {}, l.name), ` — ${l.about}`,
    l.hint ? Aisle.el("span", {class: "muted"}, ` (${l.hint})`) : null)));
}

async function main() {
  const reply = await Aisle.call("/ui/api/insights");
  const meta = document.getElementById("insights-meta");
  if (reply.status !== 200) {
    meta.textContent = `The insights could not be computed: ${Aisle.errorText(reply)}`;
    return;
  }
  const d = reply.body;
  const sample = d.sample || {};
  meta.textContent = `${d.lake.events.toLocaleString()} events from ${d.lake.shoppers.toLocaleString()} shoppers in the lake; ` +
    (sample.error ? sample.error : `recommendations of model ${sample.model_version} for ${sample.shoppers} shoppers` +
      (sample.degraded ? " (online context unavailable: cold-start lists)" : "")) +
    `; computed ${new Date(d.computed_at).toLocaleTimeString()} in ${d.seconds} s.`;
  renderLinks(d.links);
  const top = d.top || {};
  draw("graph", () => graphChart(d.graph));
  draw("degrees", () => degreesChart(d.degrees));
  if (top.error) ["views", "carts", "purchases"].forEach((c) => draw(`top-${c}`, () => top));
  else {
    draw("top-views", () => topChart(top.views, "views", Charts.PALETTE[0]));
    draw("top-carts", () => topChart(top.carts, "carts", Charts.PALETTE[1]));
    draw("top-purchases", () => ({...topChart(top.purchases, "purchases", Charts.PALETTE[2]),
      caption: "Counted over every event in the lake. Hover a bar for the full title."}));
  }
  draw("models", () => modelsChart(d.models, d.links));
  draw("coverage", () => coverageChart(d.coverage));
  document.body.dataset.ready = "true";
}

document.addEventListener("DOMContentLoaded", main);
