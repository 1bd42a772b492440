// What a pending step would change, computed in the sandbox before the person approves it: the counts, the rows
// it drops (their evidence first), the cells it changes (before → after), class counts and histograms.
import { getJSON } from "./api.js";
import { h, fmt, showError } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const ROWS_PAGE = 20;
const CELLS_PAGE = 50;

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  el.append(...children);
  return el;
}

// A cell's value as text; a missing one says so.
function value(v) {
  if (v === null || v === undefined || (typeof v === "number" && Number.isNaN(v))) return h("span", { class: "missing" }, "missing");
  return typeof v === "object" ? JSON.stringify(v) : fmt(v);
}

// Previous/Next over `total` items, `size` a page; load(offset) fetches a page and calls show.
function pager(label, size, load) {
  let at = 0;
  let total = 0;
  const said = h("span", { class: "page", "aria-live": "polite" });
  const prev = h("button", { type: "button", onclick: () => load(Math.max(0, at - size)) }, "Previous");
  const next = h("button", { type: "button", onclick: () => load(at + size) }, "Next");
  const element = h("nav", { class: "pager", "aria-label": label }, prev, said, next);
  return {
    element,
    load,
    show(offset, shown, all) {
      at = offset;
      total = all;
      said.textContent = all ? `${offset + 1}–${offset + shown} of ${all}` : "none";
      prev.disabled = offset <= 0;
      next.disabled = offset + shown >= total;
      element.hidden = offset === 0 && total <= size;
    },
  };
}

async function fetchPage(url, show) {
  try { show(await getJSON(url)); } catch (error) { showError(error); }
}

function counts(p) {
  const items = [
    `Rows: ${p.rows_before} → ${p.rows_after}`,
    `Columns: ${p.columns_before} → ${p.columns_after}`,
    `Cells changed: ${p.changed_cells}`,
    p.dropped_rows ? `Rows dropped: ${p.dropped_rows}` : null,
    p.added_rows ? `Rows added: ${p.added_rows}` : null,
    p.columns_added?.length ? `Columns added: ${p.columns_added.join(", ")}` : null,
    p.columns_removed?.length ? `Columns removed: ${p.columns_removed.join(", ")}` : null,
  ];
  return h("ul", { class: "preview-counts", "aria-label": "What changes" }, items.filter(Boolean).map((t) => h("li", {}, t)));
}

// The dropped rows: why each goes (the evidence columns, set apart), then its values; paged from the server.
function droppedRows(p, base) {
  const evidence = p.evidence_columns || [];
  const columns = p.value_columns || [];
  const body = h("tbody", {});
  const pages = pager("Pages of the dropped rows", ROWS_PAGE, (offset) =>
    fetchPage(`${base}/rows?offset=${offset}&limit=${ROWS_PAGE}`, (page) => show(page.rows, page.offset, page.total)));
  function show(rows, offset, total) {
    body.replaceChildren(...rows.map((r) => h("tr", {}, h("th", { scope: "row" }, String(r.row)),
      evidence.map((c) => h("td", { class: "evidence" }, value(r.evidence?.[c]))),
      columns.map((c) => h("td", {}, value(r.values?.[c]))))));
    pages.show(offset, rows.length, total);
  }
  show(p.dropped || [], 0, p.dropped_rows);
  return h("section", { class: "preview-part dropped-rows" },
    h("h4", {}, `Rows dropped (${p.dropped_rows})`),
    h("div", { class: "scroll" }, h("table", { class: "dropped" },
      h("caption", {}, evidence.length ? "Each row with the evidence for dropping it, then its values" : "The rows this step drops"),
      h("colgroup", {}, h("col", {})),
      evidence.length ? h("colgroup", { class: "evidence", span: evidence.length }) : null,
      columns.length ? h("colgroup", { span: columns.length }) : null,
      h("thead", {},
        h("tr", {}, h("th", { scope: "col", rowspan: 2 }, "row"),
          evidence.length ? h("th", { scope: "colgroup", colspan: evidence.length, class: "evidence" }, "Evidence") : null,
          columns.length ? h("th", { scope: "colgroup", colspan: columns.length }, "Row values") : null),
        h("tr", {}, evidence.map((c) => h("th", { scope: "col", class: "evidence" }, c)),
          columns.map((c) => h("th", { scope: "col" }, c)))),
      body)),
    pages.element);
}

// The changed cells: per-column counts, and a table of cells (a sample, or one column paged) with before → after.
function changedCells(p, base) {
  const body = h("tbody", {});
  const caption = h("caption", {});
  let column = null;
  const pages = pager("Pages of the changed cells", CELLS_PAGE, (offset) =>
    fetchPage(`${base}/cells?column=${encodeURIComponent(column)}&offset=${offset}&limit=${CELLS_PAGE}`, (page) => {
      caption.textContent = `Changed cells of ${column} (${page.total})`;
      show(page.cells, page.offset, page.total);
    }));
  function show(cells, offset, total) {
    body.replaceChildren(...cells.map((c) => h("tr", {}, h("th", { scope: "row" }, String(c.row)), h("td", {}, c.column),
      h("td", { class: "changed" }, h("del", {}, value(c.before)), " → ", h("ins", {}, value(c.after))))));
    pages.show(offset, cells.length, total);
  }
  const sample = p.cells || [];
  caption.textContent = sample.length < p.changed_cells
    ? `A sample of the changed cells (${sample.length} of ${p.changed_cells})` : "The changed cells";
  show(sample, 0, sample.length);
  const changed = (p.columns || []).filter((c) => c.changed || c.dtype_before !== c.dtype_after);
  const perColumn = changed.length ? h("table", { class: "changed-columns" },
    h("caption", {}, "Changes per column"),
    h("thead", {}, h("tr", {}, ["column", "cells changed", "type", ""].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, changed.map((c) => h("tr", {}, h("th", { scope: "row" }, c.column), h("td", {}, String(c.changed)),
      h("td", {}, c.dtype_before === c.dtype_after ? String(c.dtype_after ?? "") : `${c.dtype_before ?? "—"} → ${c.dtype_after ?? "—"}`),
      h("td", {}, c.changed ? h("button", { type: "button", class: "link", "aria-label": `Show the changed cells of ${c.column}`,
        onclick: () => { column = c.column; pages.load(0); } }, "Show") : null))))) : null;
  return h("section", { class: "preview-part changed-cells" },
    h("h4", {}, `Cells changed (${p.changed_cells})`), perColumn,
    h("div", { class: "scroll" }, h("table", { class: "cells" }, caption,
      h("thead", {}, h("tr", {}, ["row", "column", "before → after"].map((t) => h("th", { scope: "col" }, t)))), body)),
    pages.element);
}

function classCounts(counts) {
  return h("section", { class: "preview-part class-counts" }, h("table", {},
    h("caption", {}, "Rows per class, before → after"),
    h("thead", {}, h("tr", {}, ["class", "before", "after"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, Object.entries(counts).map(([name, [before, after]]) => h("tr", { class: before !== after ? "differs" : null },
      h("th", { scope: "row" }, name), h("td", {}, String(before)), h("td", {}, String(after)))))));
}

// Two bar series (before, after) per bin; the values below and above the bins as bars of their own at the ends.
export function histogram(column, hist) {
  const edges = hist.edges.map(Number);
  const [belowBefore, belowAfter] = hist.below || [0, 0];
  const [aboveBefore, aboveAfter] = hist.above || [0, 0];
  const bins = hist.before.map((b, i) => ({ before: b, after: hist.after[i], label: `${fmt(edges[i])} to ${fmt(edges[i + 1])}` }));
  const slots = [
    ...(belowBefore || belowAfter ? [{ before: belowBefore, after: belowAfter, label: `below ${fmt(edges[0])}`, outside: "below" }] : []),
    ...bins,
    ...(aboveBefore || aboveAfter ? [{ before: aboveBefore, after: aboveAfter, label: `above ${fmt(edges.at(-1))}`, outside: "above" }] : []),
  ];
  const [width, top, plot, left] = [420, 24, 96, 4];
  const slot = (width - 2 * left) / slots.length;
  const max = Math.max(1, ...slots.flatMap((s) => [s.before, s.after]));
  const outside = slots.filter((s) => s.outside).map((s) => `${s.label}: ${s.before} before, ${s.after} after`);
  const root = svg("svg", { viewBox: `0 0 ${width} ${top + plot + (outside.length ? 32 : 18)}`, role: "img", class: "chart histogram",
    "aria-label": `Histogram of ${column} before and after the step, ${bins.length} bins from ${fmt(edges[0])} to ${fmt(edges.at(-1))}: `
      + `before ${hist.before.join(", ")}; after ${hist.after.join(", ")}` + (outside.length ? `; outside the bins: ${outside.join("; ")}` : "") });
  root.append(
    svg("g", { class: "legend" }, svg("rect", { x: left, y: 4, width: 10, height: 10, class: "before" }), svg("text", { x: left + 14, y: 13 }, "before"),
      svg("rect", { x: left + 70, y: 4, width: 10, height: 10, class: "after" }), svg("text", { x: left + 84, y: 13 }, "after"),
      outside.length ? svg("text", { x: width - left, y: 13, "text-anchor": "end" }, "dashed: outside the bins") : ""));
  const bars = svg("g", { class: "bars" });
  root.append(bars);
  slots.forEach((s, i) => {
    const x = left + i * slot;
    for (const [series, dx] of [["before", 0.1], ["after", 0.5]]) {
      const n = s[series];
      const height = n ? Math.max(3, (n / max) * plot) : 0;
      bars.append(svg("rect", { x: x + dx * slot, y: top + plot - height, width: slot * 0.4, height,
        class: `${series}${s.outside ? " outside" : ""}` }, svg("title", {}, `${series}: ${n} (${s.label})`)));
    }
    if (s.outside) {
      const below = s.outside === "below";
      root.append(svg("text", { x: below ? left : width - left, y: top + plot + 28, "text-anchor": below ? "start" : "end" }, s.outside));
    }
  });
  const first = left + (slots[0].outside ? slot : 0);
  const last = first + bins.length * slot;
  root.append(svg("line", { x1: left, x2: width - left, y1: top + plot, y2: top + plot, class: "axis" }),
    svg("text", { x: first, y: top + plot + 14, "text-anchor": slots[0].outside ? "middle" : "start" }, fmt(edges[0])),
    svg("text", { x: last, y: top + plot + 14, "text-anchor": slots.at(-1).outside ? "middle" : "end" }, fmt(edges.at(-1))));
  return h("figure", { class: "histogram-figure" }, h("figcaption", {}, `${column}: values before and after`), root);
}

// The preview of a pending step (null for read-only and revert steps: nothing to show).
export function renderPreview(p, sessionId) {
  if (!p) return null;
  const base = `/api/sessions/${sessionId}/previews/${p.id}`;
  if (p.status !== "ready") {
    return h("section", { class: "preview", "aria-label": "Preview" }, h("p", {}, `Preview ${p.status}${p.error ? `: ${p.error}` : ""}`));
  }
  const metrics = Object.entries(p.metrics || {});
  const histograms = (p.columns || []).filter((c) => c.histogram);
  return h("section", { class: "preview", "aria-labelledby": "preview-title", "data-preview": p.id },
    h("h3", { id: "preview-title" }, "What this step changes"),
    p.summary ? h("p", { class: "preview-summary" }, p.summary) : null,
    counts(p),
    p.dropped_rows ? droppedRows(p, base) : null,
    p.changed_cells ? changedCells(p, base) : null,
    p.class_counts ? classCounts(p.class_counts) : null,
    histograms.length ? h("section", { class: "preview-part histograms" }, h("h4", {}, "Distributions"),
      histograms.map((c) => histogram(c.column, c.histogram))) : null,
    metrics.length ? h("details", {}, h("summary", {}, "Metrics"), h("table", { class: "metrics" }, h("tbody", {},
      metrics.map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k), h("td", {}, fmt(v))))))) : null);
}
