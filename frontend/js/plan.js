// The plan: every step with its status badge, rationale, live progress and results.
import { h } from "./dom.js";
import { stepResults } from "./results.js";

export function renderPlan(root, session, progress) {
  const items = session.plan.map((step) => {
    const live = step.status === "running" && progress[step.id];
    return h("li", { class: `step ${step.status}`, "data-step": step.id },
      h("div", { class: "step-head" },
        h("span", { class: `badge ${step.status}` }, step.status.replaceAll("_", " ")),
        h("strong", {}, `${step.id}. ${step.tool}`),
        Object.keys(step.params).length ? h("code", {}, JSON.stringify(step.params)) : null),
      h("p", { class: "rationale" }, step.rationale),
      live ? h("div", { class: "progress" },
        h("progress", { max: 1, value: live.fraction ?? 0, "aria-label": `progress of step ${step.id}` }),
        h("span", {}, live.message || "")) : null,
      step.error ? h("p", { class: "error" }, step.error) : null,
      step.status === "done" ? stepResults(step) : null);
  });
  const scores = session.score_before !== null && session.score_before !== undefined
    ? h("p", { class: "scores" }, `Score before: ${session.score_before.toFixed(3)}`,
      session.score_after !== null && session.score_after !== undefined ? ` → after: ${session.score_after.toFixed(3)}` : "",
      session.score_note ? h("small", { class: "score-note" }, ` ${session.score_note}`) : null)
    : null;
  root.replaceChildren(h("h2", {}, "Plan"), h("p", { class: "state" }, `Session: ${session.state.replaceAll("_", " ")}`),
    scores, h("ol", { class: "plan" }, items));
}
