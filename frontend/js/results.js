// What a finished step found: summary, metrics, bar charts (SVG) and affected rows.
import { h, fmt } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

export function barChart(chart) {
  const labels = (chart.labels || []).slice(0, 30);
  const values = (chart.values || []).slice(0, 30).map(Number);
  const max = Math.max(...values.map(Math.abs), 1e-12);
  const row = 18;
  const width = 420;
  const labelWidth = 140;
  const root = svg("svg", { viewBox: `0 0 ${width} ${labels.length * row + 4}`, role: "img", class: "chart",
    "aria-label": `${chart.title || "chart"}: ${labels.map((l, i) => `${l} ${fmt(values[i])}`).join(", ")}` });
  labels.forEach((label, i) => {
    const y = i * row + 2;
    const w = Math.max(1, (Math.abs(values[i]) / max) * (width - labelWidth - 60));
    root.append(svg("text", { x: labelWidth - 6, y: y + 12, "text-anchor": "end" }, String(label).slice(0, 22)),
      svg("rect", { x: labelWidth, y, width: w, height: row - 4, rx: 2 }),
      svg("text", { x: labelWidth + w + 4, y: y + 12 }, fmt(values[i])));
  });
  return h("figure", {}, h("figcaption", {}, chart.title || ""), root);
}

function table(rows) {
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  return h("div", { class: "scroll" }, h("table", {},
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, columns.map((c) => h("td", {}, r[c] === null || r[c] === undefined ? "" : fmt(r[c]))))))));
}

export function stepResults(step) {
  const metrics = Object.entries(step.metrics || {});
  const rows = Array.isArray(step.findings?.rows) ? step.findings.rows.slice(0, 50) : [];
  return h("div", { class: "results" },
    step.summary ? h("p", {}, step.summary) : null,
    metrics.length ? h("table", { class: "metrics" }, h("tbody", {},
      metrics.map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k), h("td", {}, fmt(v)))))) : null,
    (step.charts || []).filter((c) => c.labels && c.values).map(barChart),
    rows.length ? h("details", {}, h("summary", {}, `Affected rows (${step.findings.rows.length})`),
      table(rows.map((r) => (typeof r === "object" ? r : { row: r })))) : null);
}
