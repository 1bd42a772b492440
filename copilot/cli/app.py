"""The command line: a thin layer over the same jobs the service runs."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agents.llm import Usage
from agents.plan import Guidance, PlanStep, RequestedStep
from agents.worker import ToolCallError, validate_call
from copilot.cli.jobs import apply_file, clean_file, first_plan
from copilot.cli.preview_text import preview_lines
from copilot.cli.remote import Remote, RemoteError
from copilot.cli.remote_clean import clean_remote, refuse_unsendable
from copilot.cli.remote_clean import first_plan as first_remote_plan
from copilot.data.export import CleanPaths
from copilot.errors import CopilotError
from copilot.session.decisions import Decision, approve_all
from copilot.session.views import EventView, PendingStep
from copilot.settings import Settings, get_settings
from tools.registry import default_registry

app = typer.Typer(add_completion=False, no_args_is_help=True, help="A human-guided, data-centric co-pilot.")
console = Console(highlight=False)
err = Console(stderr=True, highlight=False)
_RULE = re.compile(r"^\s*([^=]+?)\s*=\s*(-?[\d.eE+]*)\s*\.\.\s*(-?[\d.eE+]*)\s*$")
#: What the person may answer at a gate, in one letter or the whole word (or e/edit); nothing else, not Enter.
ANSWERS = {"a": Decision("approve"), "approve": Decision("approve"), "s": Decision("skip"), "skip": Decision("skip"),
           "q": Decision("stop"), "quit": Decision("stop")}  # fmt: skip
EDIT = frozenset({"e", "edit"})
CHOICES = "type a (approve), s (skip), e (edit the parameters) or q (quit, keeping the steps approved so far)"


def main() -> None:
    try:
        app()
    except CopilotError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)  # the terminal wraps, not rich
        raise SystemExit(2) from None
    except RemoteError as exc:  # the request was right; the server, or the way to it, was not
        err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise SystemExit(1) from None


def parse_rule(text: str) -> tuple[str, tuple[float | None, float | None]]:
    """``age=0..120`` → ``("age", (0.0, 120.0))``; either bound may be left out."""
    match = _RULE.match(text)
    if not match:
        raise typer.BadParameter(f"{text!r}: write a rule as COLUMN=MIN..MAX, e.g. age=0..120 or dose=0..")
    col, lo, hi = match.groups()
    try:
        return col, (float(lo) if lo else None, float(hi) if hi else None)
    except ValueError:
        raise typer.BadParameter(f"{text!r}: the bounds must be numbers, e.g. age=0..120") from None


def parse_step(text: str) -> RequestedStep:
    """``winsorize`` or ``winsorize:{"upper": 0.99}`` → a requested, validated step."""
    name, _, raw = text.partition(":")
    try:
        params = json.loads(raw) if raw.strip() else {}
        call = validate_call(default_registry(), name.strip(), params)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"{text!r}: the parameters after ':' must be a JSON object ({exc})") from None
    except ToolCallError as exc:
        raise typer.BadParameter(f"{text!r}: {exc}") from None
    return RequestedStep(tool=call.tool, params=call.params)


@app.command()
def clean(
    input: Annotated[Path, typer.Argument(help="The table: .csv, .tsv, .parquet, .xlsx or .jsonl.")],
    target: Annotated[str, typer.Option("--target", "-t", help="The column to predict.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the cleaned table.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Approve every step without asking.")] = False,
    plan_only: Annotated[bool, typer.Option("--plan-only", help="Show the first plan and stop.")] = False,
    report: Annotated[Path | None, typer.Option(help="Write a JSON report of every step here.")] = None,
    id_column: Annotated[list[str], typer.Option("--id", help="An identifier column (repeatable).")] = [],  # noqa: B006
    rule: Annotated[list[str], typer.Option(help="A domain rule COLUMN=MIN..MAX (repeatable).")] = [],  # noqa: B006
    keep: Annotated[list[str], typer.Option(help="A column never to drop (repeatable).")] = [],  # noqa: B006
    no_row_drops: Annotated[bool, typer.Option(help="Never drop rows (except rows with no target).")] = False,
    step: Annotated[list[str], typer.Option(help="Also run this tool, e.g. a plugin: NAME or NAME:JSON.")] = [],  # noqa: B006
    server: Annotated[str | None, typer.Option(envvar="COPILOT_SERVER", help="Clean on this `copilot serve` "
                                               "(e.g. http://127.0.0.1:8000), through its API.")] = None,
    token: Annotated[str | None, typer.Option(envvar="COPILOT_TOKEN", help="The token --server needs, if any "
                                              "(COPILOT_TOKEN keeps it out of the process list).")] = None,
) -> None:  # fmt: skip
    """Profile, plan and clean INPUT for TARGET, asking before each change unless --yes."""
    if server:
        refuse_unsendable(step, id_column)
    guidance = Guidance(ranges=dict(parse_rule(r) for r in rule), keep_columns=keep,
                        allow_row_drops=not no_row_drops, requested=[parse_step(s) for s in step])  # fmt: skip
    terminal = TerminalApprover()
    approver = approve_all if yes else terminal
    if server:
        with Remote(server, token) as remote:
            if plan_only:
                _print_plan(first_remote_plan(remote, input, target, id_column, guidance, _note))
                return
            report_, paths = clean_remote(remote, input, target, output, id_columns=id_column,
                                          guidance=guidance, approver=approver, on_event=EventPrinter(),
                                          report=report, say=_note)  # fmt: skip
    else:
        settings = get_settings()
        if plan_only:
            _print_plan(first_plan(input, target, settings, id_column, guidance))
            return
        outcome, paths = clean_file(input, target, output, settings, id_columns=id_column, guidance=guidance,
                                    approver=approver, on_event=EventPrinter(), report=report)  # fmt: skip
        report_ = outcome.report
    _print_summary(report_, paths)
    if terminal.input_ended:  # a pipe without --yes: not a finished run, so not a success
        raise typer.Exit(1)


def _note(text: str) -> None:
    console.print(f"[dim]{escape(text)}[/dim]")


def _print_plan(steps: list[PlanStep]) -> None:
    table = Table(title="Plan", show_lines=False)
    for col in ("#", "tool", "why"):
        table.add_column(col, overflow="fold")
    for i, step in enumerate(steps, start=1):
        table.add_row(str(i), step.tool, step.rationale)
    console.print(table)


class EventPrinter:
    """Shows a run on the terminal from the engine's events: the plan first, then each step, and how
    the plan changes."""

    def __init__(self) -> None:
        self.planned: list[PlanStep] | None = None

    def __call__(self, event: EventView) -> None:
        data = event.data
        if event.type == "plan_updated":
            self._plan([PlanStep.model_validate(s) for s in data["steps"]])
        elif event.type == "step_started":
            why = next((s.rationale for s in self.planned or [] if s.tool == data["tool"]), "")
            console.print(f"[bold]▶ {data['tool']}[/bold] — {why}")
        elif event.type == "progress" and data.get("message"):
            console.print(f"   [dim]{100 * data['fraction']:.0f}% {data['message']}[/dim]")
        elif event.type == "step_finished":
            console.print(f"   [green]✓[/green] {data['summary']}")
        elif event.type == "step_failed":
            console.print(f"   [red]✗ {data['tool']} failed:[/red] {data['error']}")
        elif event.type == "message":
            who = "co-pilot" if data["role"] == "assistant" else "you"
            console.print(f"   [magenta]{who}:[/magenta] {data['text']}")

    def _plan(self, steps: list[PlanStep]) -> None:
        keys = [s.key for s in steps]
        if self.planned is None:
            _print_plan(steps)
        else:
            before = [s.key for s in self.planned]
            expected = before[1:]  # the step just taken is gone from a plan that did not change
            for step in steps:
                if step.key not in before:
                    console.print(f"   [cyan]plan: added {step.tool}[/cyan] — {step.rationale}")
            for key in expected:
                if key not in keys:
                    console.print(f"   [cyan]plan: dropped {key}[/cyan] (no longer needed)")
        self.planned = steps


class TerminalApprover:
    """Asks the person at each gate. Only an explicit answer approves: Enter or anything unrecognised asks
    again, and the end of input (a pipe without --yes, Ctrl-D) stops the run without approving."""

    def __init__(self) -> None:
        self.input_ended = False

    def __call__(self, step: PendingStep, columns: list[str]) -> Decision:
        console.print(f"\n[bold]{step.tool}[/bold] wants to change the data: {step.rationale}")
        console.print(f"   parameters: {escape(json.dumps(step.params))}")
        for line in preview_lines(step.preview) if step.preview else []:
            console.print(f"   {escape(line)}")
        while (answer := _read("approve / skip / edit / quit [a/s/e/q]: ")) is not None:
            if answer.lower() in ANSWERS:
                return ANSWERS[answer.lower()]
            if answer.lower() not in EDIT:
                said = "Enter alone does not approve" if not answer else f"{answer!r} is not an answer"
                console.print(f"   [yellow]{escape(said)}:[/yellow] {CHOICES}.")
                continue
            raw = _read("parameters as JSON, previewed before you are asked again (Enter: back to the choices): ")
            if raw is None:
                break
            edited = _parse_params(step, raw, columns) if raw else None
            if edited is not None:
                return Decision("approve", edited)
        self.input_ended = True
        err.print(f"[yellow]end of input:[/yellow] stopping without approving {step.tool}; the steps approved so "
                  "far are written. Answer at a terminal, or pass --yes to approve every step.")  # fmt: skip
        return Decision("stop")


def _read(prompt: str) -> str | None:
    """The person's answer, stripped; None at the end of input."""
    try:
        return console.input(prompt, markup=False).strip()
    except EOFError:
        return None


def _parse_params(step: PendingStep, raw: str, columns: list[str]) -> dict[str, Any] | None:
    """The edited parameters, checked against the tool's schema and the columns; None (said why) if not valid."""
    try:
        return validate_call(default_registry(), step.tool, json.loads(raw), columns).params
    except json.JSONDecodeError as exc:
        console.print(f"[red]not JSON:[/red] {exc}")
    except ToolCallError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
    return None


def _print_summary(report: dict[str, Any], paths: CleanPaths) -> None:
    before, after = report["score_before"], report["score_after"]
    console.print(f"\nrows {report['rows_before']} → {report['rows_after']}, "
                  f"columns {report['columns_before']} → {report['columns_after']}")  # fmt: skip
    if before is not None and after is not None:
        console.print(f"downstream score {before:.4f} → {after:.4f} ({after - before:+.4f})")
    if report["score_note"]:
        console.print(f"[yellow]note:[/yellow] {report['score_note']}")
    for warning in report["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    if report["agents"] != "rule-based":
        used = Usage.model_validate(report["llm_usage"])
        fell_back = f"; the rule-based agents took over {used.fallbacks} time(s)" if used.fallbacks else ""
        console.print(f"planned by {report['agents']}: {used.calls} LLM call(s), {used.tokens} tokens{fell_back}")
    console.print(f"wrote {paths.output}, {paths.pipeline}, {paths.script}" +
                  (f", {paths.report}" if paths.report else ""))  # fmt: skip


@app.command()
def apply(
    pipeline: Annotated[Path, typer.Argument(help="A .pipeline.json written by `copilot clean`.")],
    input: Annotated[Path, typer.Argument(help="New data with the same columns (e.g. a test set).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the transformed table.")],
) -> None:
    """Apply the column-level steps of a pipeline to new data (row-level, train-only steps are skipped)."""
    applied = apply_file(pipeline, input, output, get_settings())
    for note in applied.notes:
        console.print(f"[yellow]warning:[/yellow] {escape(note)}")
    console.print(f"wrote {applied.rows} rows to {output}")


@app.command()
def tools(
    as_json: Annotated[bool, typer.Option("--json", help="Print the registry as JSON.")] = False,
) -> None:
    """List the registered tools (built-ins and plugins) with their parameters."""
    registry = default_registry()
    described = [cls.describe() for cls in registry.tools.values()]
    if as_json:
        console.print_json(json.dumps({"tools": described, "plugin_errors": [e.__dict__ for e in registry.errors]}))
        return
    table = Table(title="Tools")
    for col in ("name", "category", "changes data", "parameters", "source"):
        table.add_column(col, overflow="fold")
    for info in described:
        params = ", ".join(info["params_schema"].get("properties", {}))
        table.add_row(info["name"], info["category"], "yes" if info["mutates"] else "no", params,
                      registry.plugins.get(info["name"], "built-in"))  # fmt: skip
    console.print(table)
    for error in registry.errors:
        console.print(f"[yellow]plugin skipped:[/yellow] {error.entry_point} ({error.source}): {error.message}")


@app.command()
def doctor() -> None:
    """Show the settings in force, the sandbox's isolation, the executor and its cluster, the store, and the
    plugins that failed to load."""
    from tools.sandbox import isolation_report

    settings = get_settings()
    console.print(f"data directory: {settings.data_dir}")
    console.print(f"approval policy: {settings.policy}")
    console.print(
        f"sandbox limits: {settings.tool_memory_mb} MiB address space, {settings.tool_cpu_seconds} s CPU, "
        f"{settings.tool_wall_seconds:g} s wall clock"
    )
    report = isolation_report((str(settings.data_dir),))
    console.print(f"sandbox isolation: {report['describe']}")
    if not report["kernel"]:
        console.print(
            f"[yellow]warning:[/yellow] the kernel's layers are incomplete; COPILOT_SANDBOX={settings.sandbox}"
            + (" runs no tool" if settings.sandbox == "strict" else " runs tools with the audit hooks alone")
        )
    console.print(f"executor: {_executor_line(settings)}")
    console.print(f"store: {_store_line(settings)}")
    console.print(f"agents: {_agents_line(settings)}")
    hooks = ", ".join(f"{t.scheme}://{t.host}:{t.port}{t.path}" for t in settings.webhook_prefixes())
    console.print(f"webhooks: {'to URLs under ' + hooks if hooks else 'off (COPILOT_WEBHOOK_URLS is empty)'}")
    registry = default_registry()
    console.print(f"tools: {len(registry.tools)} ({len(registry.plugins)} from plugins)")
    for error in registry.errors:
        console.print(f"[yellow]plugin skipped:[/yellow] {error.entry_point} ({error.source}): {error.message}")


def _executor_line(settings: Settings) -> str:
    """Where tool calls run; for Ray, the cluster as it answers now (or why it does not)."""
    if settings.executor == "local":
        return (f"local: sandboxed children of this server, {settings.max_running_steps} at once on "
                f"{os.cpu_count() or 1} CPUs")  # fmt: skip
    from copilot.session.factory import make_sandbox

    try:
        cluster = make_sandbox(settings).describe()
    except CopilotError as exc:
        return f"[red]ray, unavailable[/red]: {escape(str(exc))}"
    return (f"ray at {cluster['address']}: {cluster['nodes']} node(s), {cluster['cpus']} CPUs; one sandboxed task "
            f"per call, up to {settings.max_running_steps} at once from this server")  # fmt: skip


def _store_line(settings: Settings) -> str:
    """The store (its password hidden), whether it answers, and whether several servers may share it."""
    from sqlalchemy.engine import make_url

    from copilot.storage.store import Store

    url = make_url(settings.store_url())
    shown = escape(url.render_as_string(hide_password=True))
    if url.get_backend_name() == "sqlite" and not (url.database and Path(url.database).exists()):
        return f"{shown} (made at the first start; one server at a time: use PostgreSQL for several)"
    try:
        store = Store(settings.store_url())
        store.ping()
    except Exception as exc:  # a store that does not answer is what doctor is for
        return f"[red]{shown}, not reachable[/red]: {escape(str(exc).splitlines()[0])}"
    if store.shared:
        return f"{shown} (several servers may share it and the data directory)"
    return f"{shown} (one server at a time: use PostgreSQL for several)"


def _agents_line(settings: Settings) -> str:
    if not settings.llm_model:
        return "rule-based (set COPILOT_LLM_MODEL, and OPENAI_BASE_URL or OPENAI_API_KEY, to use an LLM)"
    endpoint = os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1 (the SDK's default)"
    return (f"LLM {settings.llm_model} at {endpoint}, sharing {settings.llm_share}; at most "
            f"{settings.llm_max_calls} calls and {settings.llm_max_tokens} tokens per session")  # fmt: skip


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="The interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The port to listen on.")] = 8000,
) -> None:
    """Run the HTTP + WebSocket service (OpenAPI docs at /docs). Without tokens, loopback only."""
    import uvicorn

    from copilot.api import create_app

    settings = get_settings()
    if not settings.token_list() and not _is_loopback(host):
        raise CopilotError(
            f"refusing to listen on {host} without tokens, since anyone who can reach it could read and change "
            "your data: set COPILOT_TOKENS to listen on other interfaces, or use --host 127.0.0.1."
        )
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    # Events are small frames sent to every client of a session: compressing each for each
    # client cost more of the server's time than sending it (see BENCHMARKS.md, service latency).
    uvicorn.run(create_app(settings), host=host, port=port, ws_per_message_deflate=False)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@app.command()
def demo(
    output: Annotated[Path | None, typer.Option(help="Folder for the demo's files.")] = None,
) -> None:
    """Clean scikit-learn's breast-cancer table after injecting known faults, and show the effect."""
    from copilot.cli.demo import run_demo

    run_demo(output, get_settings(), console, EventPrinter())
