// The page: #/ shows the start view, #/s/<id> a session (restored on reload).
import { getAll, getJSON, postJSON } from "./api.js";
import { approvalCard } from "./approval.js";
import { chatPane } from "./chat.js";
import { renderData } from "./data.js";
import { llmLog } from "./llm_log.js";
import { h, showError, clearError } from "./dom.js";
import { renderPlan } from "./plan.js";
import { renderStart } from "./start.js";
import { connectEvents } from "./ws.js";

const view = document.getElementById("view");
const conn = document.getElementById("conn");
let current = null; // the open session view: {close, approval}

function openSession(id) {
  location.hash = `#/s/${id}`;
}

function setConnection(state) {
  conn.hidden = false;
  conn.textContent = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", closed: "Disconnected" }[state];
  conn.className = `conn ${state}`;
}

function sessionView(id) {
  const plan = h("section", { class: "card plan-pane", "aria-label": "Plan" });
  const approval = h("div", { class: "approval-slot" });
  const suggestion = h("div", { class: "suggestion-slot" });
  const data = h("section", { class: "card data-pane", "aria-label": "Data" });
  const llm = llmLog(id);
  // The chat names what the person sees, so "approve" or "accept the rules" act on that and nothing newer.
  const chat = chatPane(id, () => ({ proposal: state.proposal || undefined, suggestion: state.suggestion || undefined }));
  const title = h("h1", {}, "Session");
  view.replaceChildren(title, h("div", { class: "grid" },
    h("div", { class: "col" }, suggestion, approval, plan), h("div", { class: "col" }, chat.element, data, llm.element)));

  const progress = {};
  const state = { card: null, proposal: null, suggestion: null, version: null, profile: null, refreshing: null,
    again: false, slot: null, previewing: null };

  async function act(fn) {
    clearError();
    try { await fn(); } catch (error) { showError(error); }
    refresh();
  }

  // The card belongs to one proposal: a new proposal (a re-made plan, a new preview) replaces the card and its
  // form, and every answer names the proposal the person saw, so a stale card runs nothing (the server answers
  // 409). While the server computes a preview there is no card, only a note saying which step it runs.
  function showApproval(session) {
    const step = session.pending_step;
    const previewing = session.state === "previewing" ? previewedStep(session) || {} : null;
    const key = previewing ? `previewing:${previewing.id}` : step ? step.proposal : null;
    if (key === state.slot) return;
    state.slot = key;
    state.proposal = previewing || !step ? null : step.proposal;
    if (previewing) {
      state.card = null;
      const what = previewing.id ? ` step ${previewing.id}: ${previewing.tool}` : "";
      approval.replaceChildren(h("section", { class: "card previewing", "aria-live": "polite" },
        h("p", {}, h("progress", { "aria-label": "Previewing" }), ` Previewing${what}…`)));
      return;
    }
    const base = step && `/api/sessions/${id}/steps/${step.id}`;
    state.card = step ? approvalCard(step, {
      sessionId: id,
      onApprove: (params) => postJSON(`${base}/approve`, { proposal: step.proposal,
        ...(step.preview ? { preview: step.preview.id } : {}), ...(params ? { params } : {}) }),
      // The answer is the session, now previewing: show that at once, before any event comes.
      onPreview: (params) => postJSON(`${base}/preview`, { proposal: step.proposal, params }).then(showApproval),
      onReject: (reason) => postJSON(`${base}/reject`, { proposal: step.proposal, reason }),
      run: act,
    }) : null;
    approval.replaceChildren(...(state.card ? [state.card.element] : []));
  }

  // The step being previewed: the latest preview_started event's, else the plan's first step not yet run.
  function previewedStep(session) {
    const started = state.previewing;
    const open = (s) => !["done", "failed", "rejected", "skipped"].includes(s.status);
    return (started && session.plan.find((s) => s.id === started.step_id && open(s)))
      || session.plan.find((s) => ["previewing", "awaiting_approval", "running", "proposed"].includes(s.status));
  }

  // Rules an LLM read from the chat wait here until the person accepts them; they never apply by themselves.
  function showSuggestion(session) {
    const pending = session.rule_suggestion;
    const key = pending ? pending.id : null;
    if (key === state.suggestion) return;
    state.suggestion = key;
    suggestion.replaceChildren(...(pending ? [h("section", { class: "card suggestion", "aria-labelledby": "suggestion-title" },
      h("h2", { id: "suggestion-title" }, "Suggested rules"),
      h("p", {}, "The LLM read these rules in your messages. They apply only if you accept them:"),
      h("ul", {}, pending.changes.map((c) => h("li", {}, c))),
      h("button", { type: "button", class: "primary", onclick: () => act(() =>
        postJSON(`/api/sessions/${id}/rules/accept`, { suggestion: pending.id })) }, "Accept these rules"))] : []));
  }

  async function load() {
    const [session, messages] = await Promise.all([
      getJSON(`/api/sessions/${id}`), getAll(`/api/sessions/${id}/messages`)]);
    title.textContent = `${session.source} → predict ${session.target}`;
    if (session.version !== state.version) {
      state.version = session.version;
      state.profile = await getJSON(`/api/sessions/${id}/profile`).catch(() => null);
    }
    showApproval(session);
    showSuggestion(session);
    renderPlan(plan, session, progress);
    chat.update(messages);
    renderData(data, session, state.profile, refresh);
    llm.update(session);
  }

  // One fetch at a time; events during a fetch cause one more afterwards.
  async function refresh() {
    if (state.refreshing) { state.again = true; return; }
    state.refreshing = load().catch(showError);
    await state.refreshing;
    state.refreshing = null;
    if (state.again) { state.again = false; refresh(); }
  }

  const events = connectEvents(id, {
    onState: setConnection,
    onEvent: (event) => {
      if (event.type === "token") { chat.stream(event.data.text); return; }
      if (event.type === "progress") progress[event.data.step_id] = event.data;
      if (event.type === "preview_started") state.previewing = event.data;
      if (event.type === "error") showError(new Error(event.data.message || event.data.detail || "error"));
      refresh();
    },
  });
  refresh();
  return {
    close: () => events.close(),
    submit: () => state.card && act(state.card.submit),
    focusReject: () => state.card && state.card.focusReject(),
  };
}

function route() {
  if (current) current.close();
  current = null;
  conn.hidden = true;
  clearError();
  const match = /^#\/s\/([\w-]+)$/.exec(location.hash);
  if (match) current = sessionView(match[1]);
  else renderStart(view, openSession);
}

document.addEventListener("keydown", (event) => {
  if (!current) return;
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); current.submit(); }
  else if (event.key === "Escape" && !document.querySelector("dialog[open]")) { event.preventDefault(); current.focusReject(); }
});
window.addEventListener("hashchange", route);
route();
