// The start view: upload a table (or pick a demo), choose the target, goal and policy.
import { getAll, postJSON, request } from "./api.js";
import { h, showError, clearError } from "./dom.js";

const TEXT_TABLE = /\.(csv|tsv)$/i;

// The column names of a CSV/TSV, from its first line (quotes handled for the common cases).
async function headerOf(file) {
  const head = await file.slice(0, 64 * 1024).text();
  const line = head.split(/\r?\n/)[0] || "";
  const sep = /\.tsv$/i.test(file.name) ? "\t" : line.split(";").length > line.split(",").length ? ";" : ",";
  const names = [];
  let current = "";
  let quoted = false;
  for (const ch of line) {
    if (ch === '"') quoted = !quoted;
    else if (ch === sep && !quoted) { names.push(current.trim()); current = ""; }
    else current += ch;
  }
  names.push(current.trim());
  return names.filter(Boolean);
}

export function renderStart(root, openSession) {
  const fileInput = h("input", { id: "file", type: "file", accept: ".csv,.tsv,.parquet,.xlsx,.xls", required: true });
  const targetSlot = h("div", { class: "field" });
  const goal = h("textarea", { id: "goal", rows: 3, placeholder: "e.g. predict outcome; age over 120 is impossible" });
  const policy = h("select", { id: "policy" },
    h("option", { value: "" }, "server default"),
    h("option", { value: "mutating" }, "ask before steps that change data"),
    h("option", { value: "always" }, "ask before every step"),
    h("option", { value: "never" }, "never ask (run everything)"));
  const submit = h("button", { type: "submit", class: "primary" }, "Start session");
  const drop = h("label", { class: "drop", for: "file" }, "Drop a CSV, TSV, Parquet or Excel file here, or choose one:");

  function setTarget(columns) {
    const last = columns[columns.length - 1];
    const control = columns.length
      ? h("select", { id: "target", required: true }, columns.map((c) => h("option", { value: c, selected: c === last }, c)))
      : h("input", { id: "target", type: "text", required: true, placeholder: "the column to predict" });
    targetSlot.replaceChildren(h("label", { for: "target" }, "Target column"), control);
  }

  async function chosen(file) {
    setTarget(file && TEXT_TABLE.test(file.name) ? await headerOf(file) : []);
  }

  fileInput.addEventListener("change", () => chosen(fileInput.files[0]));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length) { fileInput.files = e.dataTransfer.files; chosen(fileInput.files[0]); }
  });
  setTarget([]);

  async function onSubmit(event) {
    event.preventDefault();
    clearError();
    const form = new FormData();
    form.append("file", fileInput.files[0]);
    form.append("target", document.getElementById("target").value);
    form.append("goal", goal.value);
    form.append("policy", policy.value);
    submit.disabled = true;
    try {
      const session = await (await request("/api/sessions", { method: "POST", body: form })).json();
      openSession(session.id);
    } catch (error) {
      showError(error);
    } finally {
      submit.disabled = false;
    }
  }

  const demos = h("div", { class: "demos" });
  getAll("/api/demos").then((list) => demos.replaceChildren(...list.map((demo) =>
    h("button", { type: "button", title: demo.title, onclick: async (e) => {
      e.target.disabled = true;
      e.target.textContent = "Preparing the demo…";
      try { openSession((await postJSON(`/api/demos/${demo.name}/sessions`)).id); }
      catch (error) { showError(error); e.target.disabled = false; }
    } }, `Demo: ${demo.name.replace("_", " ")}`)))).catch(showError);

  root.replaceChildren(h("section", { class: "start card" },
    h("h1", {}, "Clean a table, step by step"),
    h("p", {}, "Nothing changes your data before you approve it."),
    h("form", { onsubmit: onSubmit },
      drop, fileInput, targetSlot,
      h("div", { class: "field" }, h("label", { for: "goal" }, "Goal and domain rules"), goal),
      h("div", { class: "field" }, h("label", { for: "policy" }, "Approval policy"), policy),
      submit),
    h("h2", {}, "Or try a demo dataset"), demos));
}
