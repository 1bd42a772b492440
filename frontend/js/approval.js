// The approval card for the pending step: its preview, and a form generated from its params_schema.
import { h } from "./dom.js";
import { mappingEditor } from "./mapping.js";
import { renderPreview } from "./preview.js";

// The non-null branch of an `anyOf: [X, {type: null}]`, and $ref resolved against the root schema.
function resolve(schema, root) {
  let s = schema || {};
  if (s.$ref) s = root.$defs?.[s.$ref.split("/").pop()] || {};
  if (s.anyOf) s = { ...s, ...(s.anyOf.find((b) => b.type !== "null") || {}), nullable: true };
  return s;
}

function kindOf(s) {
  if (s.enum) return "enum";
  if (s.type === "array" && resolve(s.items, {}).type === "string") return "list";
  if (["string", "number", "integer", "boolean"].includes(s.type)) return s.type;
  return "json";
}

function control(id, s, value) {
  switch (kindOf(s)) {
    case "enum":
      return h("select", { id }, (s.nullable ? [""] : []).concat(s.enum).map((v) =>
        h("option", { value: v, selected: v === (value ?? "") }, v === "" ? "(default)" : String(v))));
    case "boolean":
      return h("input", { id, type: "checkbox", checked: Boolean(value) });
    case "number":
    case "integer":
      return h("input", { id, type: "number", step: s.type === "integer" ? 1 : "any", value: value ?? "",
        min: s.minimum, max: s.maximum });
    case "list":
      return h("input", { id, type: "text", value: (value || []).join(", "), placeholder: "comma-separated" });
    case "string":
      return h("input", { id, type: "text", value: value ?? "" });
    default:
      return h("textarea", { id, rows: 3, class: "mono" }, value === undefined ? "" : JSON.stringify(value, null, 1));
  }
}

// The value a control holds, or undefined when left empty (so the tool's default applies).
function read(el, s, name) {
  const text = el.value.trim();
  switch (kindOf(s)) {
    case "boolean": return el.checked;
    case "number": case "integer": return text === "" ? undefined : Number(text);
    case "list": return text === "" ? [] : text.split(",").map((v) => v.trim()).filter(Boolean);
    case "enum": return text === "" ? undefined : s.enum.find((v) => String(v) === text);
    case "string": return text === "" && s.nullable ? undefined : el.value;
    default:
      if (text === "") return undefined;
      try { return JSON.parse(text); } catch { throw new Error(`${name}: not valid JSON`); }
  }
}

// Returns {element, submit, focusReject}; onApprove(params), onPreview(params) and onReject(reason) do the calls,
// run(fn) wraps them. The card is made for one proposal (step.proposal) and never reused for another.
// A step with a preview shows it above the form; approving commits exactly that preview, so an edited form is
// previewed first (a new proposal, a new card) and Approve waits until the form is back to what is shown.
export function approvalCard(step, { sessionId, onApprove, onPreview, onReject, run }) {
  const schema = step.params_schema || {};
  const fields = Object.entries(schema.properties || {}).map(([name, raw]) => {
    const s = resolve(raw, schema);
    const value = name in step.params ? step.params[name] : s.default;
    const id = `param-${name}`;
    const el = control(id, s, value);
    const box = kindOf(s) === "boolean" ? "field check" : "field";
    return { name, s, el, node: h("div", { class: box }, h("label", { for: id }, s.title || name), el,
      s.description ? h("small", {}, s.description) : null) };
  });
  const previewed = Boolean(step.preview);
  const reason = h("input", { id: "reject-reason", type: "text", placeholder: "why not? the coordinator re-plans" });
  const approveButton = h("button", { type: "button", class: "primary", onclick: () => run(approve) }, "Approve (Ctrl+Enter)");
  const previewButton = h("button", { type: "button", class: "primary", hidden: true, onclick: () => run(preview) },
    "Preview with these parameters (Ctrl+Enter)");
  const rejectButton = h("button", { type: "button", class: "danger", onclick: () => run(reject) }, "Reject");
  const hint = h("p", { class: "hint", role: "status" });

  function current() {
    const params = {};
    for (const f of fields) {
      const value = read(f.el, f.s, f.name);
      if (value !== undefined) params[f.name] = value;
    }
    return params;
  }
  const shown = JSON.stringify(current()); // the form as proposed: approving it unchanged is not an edit

  function edited() {
    try { return JSON.stringify(current()) !== shown; } catch { return true; } // unreadable JSON is an edit too
  }

  // With a preview, the form decides which button acts: Approve (what is shown) or Preview (what is typed).
  function update() {
    if (!previewed) return;
    const changed = edited();
    approveButton.disabled = changed;
    approveButton.textContent = changed ? "Approve" : "Approve (Ctrl+Enter)";
    previewButton.hidden = !changed;
    hint.textContent = changed
      ? "The parameters differ from the preview above. Preview them to see what they change, or put them back to approve this one."
      : "";
  }

  // onApprove(params) gets the edited parameters, or null when the person left the form as proposed (always,
  // for a previewed step: its approval commits the preview).
  function approve() {
    if (previewed && edited()) throw new Error("The parameters differ from the preview: preview them first, or put them back.");
    const params = current();
    return onApprove(previewed || JSON.stringify(params) === shown ? null : params);
  }

  function preview() {
    return onPreview(current());
  }

  function reject() {
    if (!reason.value.trim()) { reason.focus(); throw new Error("Write a reason to reject the step."); }
    return onReject(reason.value.trim());
  }

  const mappingField = fields.find((f) => f.name === "mapping");
  const mappings = step.preview?.mappings || {};
  const editor = mappingField && Object.keys(mappings).length ? mappingEditor(mappings, mappingField.el, update) : null;

  const element = h("section", { class: "card approval", "aria-labelledby": "approval-title", "data-proposal": step.proposal },
    h("h2", { id: "approval-title" }, `Approve step ${step.id}: ${step.tool}?`),
    h("p", { class: "rationale" }, step.rationale),
    renderPreview(step.preview, sessionId),
    h("form", { onsubmit: (e) => e.preventDefault(), oninput: update, onchange: update }, editor,
      fields.length ? h("fieldset", {}, h("legend", {}, "Parameters"), fields.map((f) => f.node)) : h("p", {}, "No parameters."),
      h("div", { class: "actions" }, approveButton, previewButton), hint,
      h("div", { class: "field reject" }, h("label", { for: "reject-reason" }, "Reason to reject (Esc)"), reason, rejectButton)));
  // Ctrl+Enter presses the button that acts now.
  const submit = () => (previewed && edited() ? preview() : approve());
  return { element, submit, focusReject: () => reason.focus() };
}
