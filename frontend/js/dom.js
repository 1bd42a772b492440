// A tiny element builder: h("button", {class: "x", onclick: f}, "text", child).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, value);
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

const ERRORS = () => document.getElementById("errors");

// Show an error in plain words (the API's `detail`), announced by the aria-live region.
export function showError(error) {
  const box = ERRORS();
  box.replaceChildren(h("p", {}, error.message || String(error),
    h("button", { class: "link", type: "button", onclick: () => box.replaceChildren() }, "Dismiss")));
}

export function clearError() {
  ERRORS().replaceChildren();
}

export function fmt(value) {
  if (typeof value !== "number") return String(value);
  return Number.isInteger(value) ? String(value) : value.toFixed(3);
}
