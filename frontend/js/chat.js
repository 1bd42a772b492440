// The chat pane: messages, and a text box that posts to /messages.
import { postJSON } from "./api.js";
import { h, showError } from "./dom.js";

// context() names what the person sees now ({proposal, suggestion}), sent with each message.
export function chatPane(sessionId, context = () => ({})) {
  const list = h("ol", { class: "messages", "aria-live": "polite", "aria-label": "Messages" });
  const input = h("textarea", { id: "chat-input", rows: 2, placeholder: "a goal, a rule (age over 120 is impossible), a question" });
  const send = h("button", { type: "submit" }, "Send");
  const form = h("form", { class: "chat-form", onsubmit: async (e) => {
    e.preventDefault();
    if (!input.value.trim()) return;
    send.disabled = true;
    try { await postJSON(`/api/sessions/${sessionId}/messages`, { text: input.value.trim(), ...context() }); input.value = ""; }
    catch (error) { showError(error); }
    finally { send.disabled = false; }
  } }, h("label", { for: "chat-input" }, "Message"), input, send);
  const element = h("section", { class: "card chat", "aria-labelledby": "chat-title" },
    h("h2", { id: "chat-title" }, "Chat"), list, form);
  let shown = 0;
  let streaming = null; // the assistant's answer while its tokens arrive; replaced by the stored message
  return {
    element,
    update(messages) {
      if (messages.length === shown) return;
      list.replaceChildren(...messages.map((m) => h("li", { class: m.role }, h("span", { class: "who" }, m.role === "user" ? "You" : "Co-pilot"), " ", m.text)));
      shown = messages.length;
      streaming = null;
      list.scrollTop = list.scrollHeight;
    },
    stream(text) {
      if (!streaming) {
        streaming = h("li", { class: "assistant streaming" }, h("span", { class: "who" }, "Co-pilot"), " ");
        list.append(streaming);
      }
      streaming.append(text);
      list.scrollTop = list.scrollHeight;
    },
  };
}
