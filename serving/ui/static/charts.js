/* Small SVG charts for the analyst pages: axes (linear and log), bars, points with intervals, scatter,
 * and a force-directed graph. Written for these pages only; no library is loaded. */
"use strict";

const Charts = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const PALETTE = ["#0b5cad", "#d9730d", "#2e8540", "#8e44ad", "#c0392b", "#16a085", "#7f8c8d", "#b7950b"];

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) node.setAttribute(k, v);
    for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }

  function frame(width, height, label) {
    return svg("svg", {viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", "aria-label": label,
      preserveAspectRatio: "xMinYMin meet"});
  }

  function linear(d0, d1, r0, r1) {
    const span = d1 - d0 || 1;
    const f = (v) => r0 + ((v - d0) / span) * (r1 - r0);
    f.ticks = (n) => {
      const step = niceStep((d1 - d0) / n);
      const out = [];
      for (let v = Math.ceil(d0 / step) * step; v <= d1 + step * 1e-9; v += step) out.push(+v.toFixed(10));
      return out;
    };
    return f;
  }

  function niceStep(raw) {
    const power = Math.pow(10, Math.floor(Math.log10(raw || 1)));
    const m = raw / power;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * power;
  }

  function log(d0, d1, r0, r1) {
    const l0 = Math.floor(Math.log10(d0)), l1 = Math.max(Math.ceil(Math.log10(d1)), l0 + 1);  // whole decades
    const f = (v) => r0 + ((Math.log10(v) - l0) / ((l1 - l0) || 1)) * (r1 - r0);
    f.ticks = () => {
      const out = [];
      for (let e = l0; e <= l1; e++) out.push(Math.pow(10, e));
      return out;
    };
    return f;
  }

  function fmt(v) {
    if (Math.abs(v) >= 1000) return v.toLocaleString();
    return String(+v.toFixed(3));
  }

  function xAxis(g, scale, y, ticks, label, width) {
    const axis = svg("g", {class: "axis"});
    axis.append(svg("line", {x1: scale(ticks[0]), x2: scale(ticks[ticks.length - 1]), y1: y, y2: y}));
    for (const t of ticks) {
      axis.append(svg("line", {x1: scale(t), x2: scale(t), y1: y, y2: y + 4}));
      axis.append(svg("text", {x: scale(t), y: y + 16, "text-anchor": "middle"}, fmt(t)));
    }
    if (label) axis.append(svg("text", {x: width / 2, y: y + 32, "text-anchor": "middle"}, label));
    g.append(axis);
  }

  function yAxis(g, scale, x, ticks, label, height) {
    const axis = svg("g", {class: "axis"});
    for (const t of ticks) {
      axis.append(svg("line", {x1: x - 4, x2: x, y1: scale(t), y2: scale(t)}));
      axis.append(svg("text", {x: x - 6, y: scale(t) + 4, "text-anchor": "end"}, fmt(t)));
    }
    if (label) axis.append(svg("text", {x: 12, y: height / 2, transform: `rotate(-90 12 ${height / 2})`,
      "text-anchor": "middle"}, label));
    g.append(axis);
  }

  /** Horizontal bars: rows [{label, value}], largest first. */
  function bars(rows, {label, color, width = 460, valueLabel = ""} = {}) {
    const left = 190, right = 50, top = 8, rowH = 22;
    const height = top + rows.length * rowH + 30;
    const root = frame(width, height, label);
    const max = Math.max(1, ...rows.map((r) => r.value));
    const x = linear(0, max, left, width - right);
    rows.forEach((r, i) => {
      const y = top + i * rowH;
      const name = r.label.length > 30 ? r.label.slice(0, 29) + "…" : r.label;
      root.append(svg("text", {x: left - 6, y: y + 14, "text-anchor": "end"}, svg("title", {}, r.label), name));
      root.append(svg("rect", {x: left, y: y + 3, width: Math.max(1, x(r.value) - left), height: rowH - 6,
        fill: color || PALETTE[0]}, svg("title", {}, `${r.label}: ${r.value}`)));
      root.append(svg("text", {x: x(r.value) + 4, y: y + 14}, fmt(r.value)));
    });
    if (valueLabel) root.append(svg("text", {x: (left + width - right) / 2, y: height - 6, "text-anchor": "middle"}, valueLabel));
    return root;
  }

  /** Log-log scatter of several series: [{name, color, points: [[x, y], ...]}]. */
  function loglog(series, {label, xLabel, yLabel, width = 520, height = 330} = {}) {
    const m = {l: 60, r: 16, t: 12, b: 46};
    const points = series.flatMap((s) => s.points);
    const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
    const root = frame(width, height, label);
    const x = log(Math.min(...xs), Math.max(...xs), m.l, width - m.r);
    const y = log(Math.min(...ys), Math.max(...ys), height - m.b, m.t);
    const grid = svg("g", {class: "grid"});
    for (const t of y.ticks()) grid.append(svg("line", {x1: m.l, x2: width - m.r, y1: y(t), y2: y(t)}));
    root.append(grid);
    xAxis(root, x, height - m.b, x.ticks(), xLabel, width);
    yAxis(root, y, m.l, y.ticks(), yLabel, height);
    for (const s of series) {
      const g = svg("g", {"data-series": s.name});
      for (const [px, py] of s.points) {
        g.append(svg("circle", {cx: x(px), cy: y(py), r: 3.5, fill: s.color, "fill-opacity": 0.75},
          svg("title", {}, `${s.name}: ${fmt(py)} item(s) per unit of degree around ${fmt(px)}`)));
      }
      root.append(g);
    }
    return root;
  }

  /** Points with intervals per row: [{label, value, lo, hi}], e.g. a metric per model. */
  function intervals(rows, {label, xLabel, width = 520} = {}) {
    const left = 150, right = 24, top = 10, rowH = 28;
    const height = top + rows.length * rowH + 44;
    const root = frame(width, height, label);
    const values = rows.flatMap((r) => [r.lo ?? r.value, r.hi ?? r.value, r.value]).filter((v) => v !== null);
    const max = Math.max(...values, 1e-6) * 1.08;
    const x = linear(0, max, left, width - right);
    const ticks = x.ticks(5);
    const grid = svg("g", {class: "grid"});
    for (const t of ticks) grid.append(svg("line", {x1: x(t), x2: x(t), y1: top, y2: top + rows.length * rowH}));
    root.append(grid);
    rows.forEach((r, i) => {
      const y = top + i * rowH + rowH / 2;
      root.append(svg("text", {x: left - 8, y: y + 4, "text-anchor": "end"}, r.label));
      if (r.lo !== null && r.hi !== null) {
        root.append(svg("line", {x1: x(r.lo), x2: x(r.hi), y1: y, y2: y, stroke: PALETTE[0], "stroke-width": 2}));
        for (const end of [r.lo, r.hi]) root.append(svg("line", {x1: x(end), x2: x(end), y1: y - 5, y2: y + 5, stroke: PALETTE[0], "stroke-width": 2}));
      }
      root.append(svg("circle", {cx: x(r.value), cy: y, r: 5, fill: PALETTE[1]},
        svg("title", {}, `${r.label}: ${fmt(r.value)} (95% interval ${fmt(r.lo)} – ${fmt(r.hi)})`)));
    });
    xAxis(root, x, top + rows.length * rowH + 4, ticks, xLabel, left + width - right);
    return root;
  }

  /** A force-directed layout of {nodes, edges}: deterministic start, fixed number of steps. */
  function layout(nodes, edges, width, height, steps = 260) {
    const index = new Map(nodes.map((n, i) => [n.id, i]));
    const pos = nodes.map((n, i) => {
      const angle = (2 * Math.PI * i) / nodes.length;
      const radius = (n.kind === "shopper" ? 0.28 : 0.42) * Math.min(width, height);
      return {x: width / 2 + radius * Math.cos(angle), y: height / 2 + radius * Math.sin(angle), vx: 0, vy: 0};
    });
    const links = edges.map((e) => [index.get(e.source), index.get(e.target)]).filter(([a, b]) => a !== undefined && b !== undefined);
    const ideal = Math.sqrt((width * height) / Math.max(1, nodes.length)) * 0.55;
    for (let step = 0; step < steps; step++) {
      const cool = 1 - step / steps;
      for (let i = 0; i < pos.length; i++) {
        for (let j = i + 1; j < pos.length; j++) {
          let dx = pos[i].x - pos[j].x, dy = pos[i].y - pos[j].y;
          const d2 = Math.max(dx * dx + dy * dy, 1);
          const force = (ideal * ideal) / d2 * 0.08;
          dx *= force; dy *= force;
          pos[i].vx += dx; pos[i].vy += dy; pos[j].vx -= dx; pos[j].vy -= dy;
        }
      }
      for (const [a, b] of links) {
        const dx = pos[b].x - pos[a].x, dy = pos[b].y - pos[a].y;
        const d = Math.max(Math.sqrt(dx * dx + dy * dy), 1);
        const pull = ((d - ideal) / d) * 0.05;
        pos[a].vx += dx * pull; pos[a].vy += dy * pull; pos[b].vx -= dx * pull; pos[b].vy -= dy * pull;
      }
      for (const p of pos) {
        p.vx += (width / 2 - p.x) * 0.004; p.vy += (height / 2 - p.y) * 0.004;
        p.x = Math.min(width - 12, Math.max(12, p.x + p.vx * cool));
        p.y = Math.min(height - 12, Math.max(12, p.y + p.vy * cool));
        p.vx *= 0.5; p.vy *= 0.5;
      }
    }
    return pos;
  }

  function graph(data, {label, width = 760, height = 520} = {}) {
    const root = frame(width, height, label);
    const pos = layout(data.nodes, data.edges, width, height);
    const index = new Map(data.nodes.map((n, i) => [n.id, i]));
    const categories = [...new Set(data.nodes.filter((n) => n.kind === "item").map((n) => n.category))].sort();
    const color = (c) => PALETTE[categories.indexOf(c) % PALETTE.length];
    const degree = new Map();
    for (const e of data.edges) degree.set(e.target, (degree.get(e.target) || 0) + 1);
    const edges = svg("g", {stroke: "#9aa5b1", "stroke-opacity": 0.55});
    for (const e of data.edges) {
      const a = pos[index.get(e.source)], b = pos[index.get(e.target)];
      edges.append(svg("line", {x1: a.x, y1: a.y, x2: b.x, y2: b.y, "stroke-width": Math.max(0.6, 2.2 - e.rank * 0.3)}));
    }
    root.append(edges);
    data.nodes.forEach((n, i) => {
      const p = pos[i];
      if (n.kind === "shopper") {
        root.append(svg("rect", {x: p.x - 4, y: p.y - 4, width: 8, height: 8, fill: "#14324f"}, svg("title", {}, `shopper ${n.label}`)));
      } else {
        const d = degree.get(n.id) || 1;
        root.append(svg("circle", {cx: p.x, cy: p.y, r: 3 + Math.min(9, 2 * (d - 1)), fill: color(n.category), "fill-opacity": 0.85},
          svg("title", {}, `${n.label} (${n.category}): recommended to ${d} of these shoppers`)));
        const name = n.label.length > 26 ? n.label.slice(0, 25) + "…" : n.label;
        const right = p.x > width - 170;  // keep labels inside the picture
        if (d > 2) root.append(svg("text", {x: right ? p.x - 8 : p.x + 8, y: p.y + 4, "text-anchor": right ? "end" : "start"}, name));
      }
    });
    return {svg: root, categories: categories.map((c) => ({name: c, color: color(c)}))};
  }

  return {bars, loglog, intervals, graph, PALETTE};
})();
