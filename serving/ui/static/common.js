/* Helpers shared by the storefront and the analyst pages. Plain JavaScript, nothing loaded from elsewhere. */
"use strict";

const Aisle = {
  /** JSON over HTTP: GET without a body, POST with one. Resolves to {status, body, ms}. */
  async call(path, body) {
    const started = performance.now();
    const init = body === undefined ? {} : {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
    };
    const response = await fetch(path, init);
    let data = null;
    const text = await response.text();
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = {error: text}; }
    return {status: response.status, body: data, ms: Math.round(performance.now() - started)};
  },

  /** An element with attributes (on* are listeners) and children (strings become text). */
  el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  },

  price(value) {
    return typeof value === "number" ? `€${value.toFixed(2)}` : "";
  },

  /** A random hex id (crypto.randomUUID needs a secure context; this works on any http address). */
  id(prefix) {
    const bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return (prefix || "") + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  },

  errorText(reply) {
    const body = reply.body || {};
    return body.error || body.detail || `HTTP ${reply.status}`;
  },
};
