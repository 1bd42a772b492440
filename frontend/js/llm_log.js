// What an LLM may see of the session's data, and every request the session sent (fetched when opened).
import { getAll } from "./api.js";
import { h, showError } from "./dom.js";

const LEVELS = {
  aggregates: "counts and coarse statistics only, never a cell value or a category's name",
  categories: "counts, coarse statistics and the names of common categories, never a row",
  samples: "counts, coarse statistics, common categories and a few rows (no identifiers, free text or dates)",
};

export function llmLog(sessionId) {
  const share = h("p", { id: "llm-share" });
  const list = h("ol", { class: "llm-requests" });
  const panel = h("details", { id: "llm-log", ontoggle: () => panel.open && load() },
    h("summary", {}, "What the LLM received"), list);

  async function load() {
    list.replaceChildren(h("li", {}, "Loading…"));
    try {
      const sent = await getAll(`/api/sessions/${sessionId}/llm-requests`);
      list.replaceChildren(...(sent.length ? sent.map(entry) : [h("li", {}, "Nothing was sent to an LLM.")]));
    } catch (error) {
      list.replaceChildren();
      showError(error);
    }
  }

  return {
    element: h("section", { class: "card", "aria-label": "LLM" }, share, panel),
    update(session) {
      share.textContent = `An LLM may see: ${session.llm_share} (${LEVELS[session.llm_share] || "?"}).`;
    },
  };
}

// One request; message contents that are JSON documents are shown parsed, so they can be read.
function entry(sent) {
  const messages = (sent.request.messages || []).map((m) => ({ ...m, content: parsed(m.content) }));
  return h("li", {}, h("details", {},
    h("summary", {}, `${sent.purpose} · ${new Date(sent.at).toLocaleString()}`),
    h("pre", { class: "scroll" }, JSON.stringify({ ...sent.request, messages }, null, 2))));
}

function parsed(content) {
  if (typeof content !== "string" || !content.startsWith("{")) return content;
  try { return JSON.parse(content); } catch { return content; }
}
