// The mapping editor of a step that gathers spellings into categories (harmonise_categories): each spelling
// with its cells and the category it would become, editable in place. An edit is written into the step's
// `mapping` parameter, so the card previews it like any other edited parameter before it can be approved.
import { h } from "./dom.js";

function parsed(text) {
  try { const v = JSON.parse(text || "{}"); return v && typeof v === "object" && !Array.isArray(v) ? v : {}; }
  catch { return {}; }
}

// mappings: the preview's {column: [{category, cells, variants: {spelling: cells}}]}; field: the `mapping`
// parameter's textarea (the source of truth: what is typed there is kept); onChange: the card's update.
export function mappingEditor(mappings, field, onChange) {
  const given = parsed(field.value);
  const inputs = [];
  const tables = Object.entries(mappings).map(([column, groups]) => {
    const rows = groups.flatMap((g) => Object.entries(g.variants).map(([spelling, cells]) => {
      const input = h("input", { type: "text", value: given[column]?.[spelling] ?? g.category,
        "aria-label": `${column}: category for ${JSON.stringify(spelling)}` });
      inputs.push({ column, spelling, category: g.category, input });
      return h("tr", {}, h("td", { class: "mono" }, JSON.stringify(spelling)), h("td", {}, String(cells)), h("td", {}, input));
    }));
    return h("table", { class: "mapping", "data-column": column }, h("caption", {}, column),
      h("thead", {}, h("tr", {}, h("th", {}, "spelling"), h("th", {}, "cells"), h("th", {}, "becomes"))),
      h("tbody", {}, rows));
  });

  // A spelling given its own name stays a category of its own; renaming a category's own spelling renames it.
  function write() {
    const mapping = parsed(field.value);
    for (const { column, spelling, category, input } of inputs) {
      const value = input.value.trim();
      const entries = (mapping[column] ||= {});
      if (value && (value !== category || spelling in (given[column] || {}))) entries[spelling] = value;
      else delete entries[spelling];
      if (!Object.keys(entries).length) delete mapping[column];
    }
    field.value = JSON.stringify(mapping, null, 1);
    onChange();
  }
  for (const { input } of inputs) input.addEventListener("input", write);
  return h("div", { class: "mapping-editor" }, h("h3", {}, "Spellings → categories"),
    h("p", { class: "hint" }, "Change what a spelling becomes, or give it its own name to keep it apart; then preview."),
    tables);
}
