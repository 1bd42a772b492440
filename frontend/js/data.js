// The data pane: the profile of the current version, undo, and downloads.
import { download, postJSON } from "./api.js";
import { h, showError } from "./dom.js";

export function renderData(root, session, profile, onChange) {
  const base = `/api/sessions/${session.id}`;
  const stem = session.source.replace(/\.[^.]+$/, "");
  const files = [
    ["CSV", `${base}/versions/${session.version}/data?format=csv`, `${stem}-${session.version}.csv`],
    ["Parquet", `${base}/versions/${session.version}/data?format=parquet`, `${stem}-${session.version}.parquet`],
    ["pipeline.json", `${base}/pipeline.json`, "pipeline.json"],
    ["pipeline.py", `${base}/pipeline.py`, "pipeline.py"],
    ["Report", `${base}/report`, "report.json"],
  ];
  const columns = Object.entries(profile?.columns || {});
  root.replaceChildren(
    h("h2", {}, "Data"),
    h("p", {}, profile ? `Version ${session.version}: ${profile.n_rows} rows × ${profile.n_columns} columns` : "Loading profile…"),
    h("p", { id: "rules" }, `Rules: ${rules(session.guidance || {})}`),
    h("p", { id: "agents" }, agents(session)),
    h("div", { class: "actions" },
      h("button", { type: "button", id: "undo", onclick: async () => {
        try { await postJSON(`${base}/undo`); onChange(); } catch (error) { showError(error); }
      } }, "Undo last change")),
    h("ul", { class: "downloads", "aria-label": "Downloads" }, files.map(([label, url, name]) => h("li", {},
      h("a", { href: url, onclick: (e) => { e.preventDefault(); download(url, name).catch(showError); } }, `Download ${label}`)))),
    columns.length ? h("div", { class: "scroll" }, h("table", { class: "profile" },
      h("thead", {}, h("tr", {}, ["column", "type", "missing %", "issues"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, columns.map(([name, c]) => h("tr", {}, h("th", { scope: "row" }, name), h("td", {}, c.type),
        h("td", {}, String(c.missing_pct)), h("td", {}, issues(c))))))) : null);
}

// The rules the plan honours, in words.
function rules(g) {
  const said = [];
  if (g.allow_row_drops === false) said.push("no row drops");
  for (const c of g.keep_columns || []) said.push(`keep ${c}`);
  for (const [c, [lo, hi]] of Object.entries(g.ranges || {})) said.push(`${c} in ${lo ?? ""}..${hi ?? ""}`);
  return said.length ? said.join("; ") : "none yet (say them in the chat)";
}

function agents(session) {
  const u = session.llm_usage || {};
  if (!u.calls) return `Planned by: ${session.agents}`;
  const fell = u.fallbacks ? `, ${u.fallbacks} fall-back(s) to the rules` : "";
  return `Planned by: ${session.agents} (${u.calls} LLM calls, ${u.prompt_tokens + u.completion_tokens} tokens${fell})`;
}

function issues(c) {
  const found = [];
  if (c.numeric_as_text) found.push("numbers stored as text");
  if (c.sentinel_count) found.push(`${c.sentinel_count} missing codes (${c.sentinels.join(", ")})`);
  if (c.unit) found.push(`unit ${c.unit}`);
  if (c.unparseable) found.push(`${c.unparseable} unparseable`);
  return found.join("; ");
}
