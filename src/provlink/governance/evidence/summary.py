"""``summary.html``: the bundle for a person, offline — no network, no scripts.

The lineage is drawn as inline SVG (columns by distance from the model version, runs as
rounded boxes, datasets as plain ones); then the data with digests, the code, the
parameters, who ran and who promoted it and when; then how the bundle maps to the
record-keeping items auditors use (EU AI Act Annex IV 2(d), 2(g), Art. 10(2), Art. 12;
ISO/IEC 42001 A.7.5), naming what it holds and what it cannot hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import PurePosixPath
from typing import Any

from provlink.governance.trace import Trace

MAX_DRAWN = 240
_W, _H, _GAP_X, _GAP_Y = 220, 34, 60, 12

# item, what the bundle holds for it, what it cannot hold
MAPPING: tuple[tuple[str, str, str], ...] = (
    ("EU AI Act Annex IV 2(d) — data requirements, datasheets: training methodologies, "
     "data sets used, their provenance, scope and main characteristics, how obtained and "
     "selected",
     "every upstream dataset with its namespace, name, content digest and schema-bearing "
     "events, the run that produced it, and its tags (predicate.datasets, events.jsonl)",
     "labelling and cleaning procedures done outside captured steps; datasheets; the "
     "reasons the data were selected"),
    ("EU AI Act Annex IV 2(g) — validation and testing procedures, data used, metrics",
     "MLflow runs with params and metrics linked to each step, model version record "
     "(mlflow/), the runs' times and states",
     "test protocols, acceptance criteria and sign-off that were not logged as metrics or "
     "runs; evaluations done outside captured steps"),
    ("EU AI Act Art. 10(2) — data governance: design choices, collection, preparation "
     "(annotation, labelling, cleaning, enrichment), assumptions, bias examination",
     "the preparation steps that ran as captured jobs, their parameters and code commits "
     "(predicate.runs, buildDefinition), sensitivity tags passed downstream",
     "annotation and labelling procedures, assumptions, bias examination and mitigation "
     "measures; anything done by hand"),
    ("EU AI Act Art. 12 — record-keeping: automatic logging of events over the lifetime",
     "every OpenLineage event of the upstream graph as emitted, with ledger entries that "
     "show they were not altered, and the promotion history when recorded (registry/)",
     "events of steps that were not captured; operation-time logs of the deployed "
     "system (inference requests), which live in serving, not in lineage"),
    ("ISO/IEC 42001 A.7.5 — data provenance: record the provenance of data used in AI "
     "systems over their life cycles",
     "the upstream chain from the model version to its source datasets through the exact "
     "versions each run read, signed (DSSE, in-toto Statement v1)",
     "provenance before the first captured step (who supplied a source file); retention "
     "and disposal records"),
)


def render(result: Trace, *, model_record: Mapping[str, Any] | None,
           promotions: Mapping[str, Any], events: int, ledger: Mapping[str, Any],
           artifacts: Mapping[str, str], created_at: str) -> str:
    parts = [f"<h1>Evidence: {escape(result.model)}</h1>",
             f"<p>Bundle made {escape(created_at)}; {events} OpenLineage events, "
             f"{len(result.runs)} runs, {len(result.datasets)} datasets upstream. "
             "Verify it with <code>provlink evidence verify bundle.zip --public-key K</code>."
             "</p>",
             "<h2>Lineage</h2>", lineage_svg(result),
             "<h2>Data</h2>", _table(("dataset", "digest", "produced by", "tags"), (
                 (f"{d.namespace} {d.name}", d.digest or "—", d.produced_by or "source",
                  ", ".join(d.tags) or "—") for d in result.datasets)),
             "<h2>Code, parameters, environment</h2>", _table(
                 ("job", "run", "code", "parameters", "when"),
                 ((f"{r.job_namespace}/{r.job_name}", r.run_id, _code(r.code),
                   ", ".join(f"{k}={v}" for k, v in r.parameters.items()) or "—",
                   f"{r.started_at or '?'} → {r.ended_at or '?'}") for r in result.runs)),
             "<h2>Who ran it, who promoted it</h2>", _people(result, model_record, promotions),
             "<h2>Model artifact files (the statement's subjects)</h2>",
             _table(("file", "sha256"), sorted(artifacts.items())),
             "<h2>Ledger</h2>", _table(("", ""), ((k, str(v)) for k, v in ledger.items())),
             "<h2>What this bundle holds for auditors, and what it cannot</h2>",
             _table(("record-keeping item", "held in this bundle", "not held (look elsewhere)"),
                    MAPPING)]
    tags = result.inherited_tags()
    if tags:
        parts.insert(3, "<p class='tags'>Tags passed down from upstream data: "
                     + "; ".join(f"<b>{escape(t)}</b> ({escape(', '.join(n))})"
                                 for t, n in tags.items()) + "</p>")
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
            "style-src 'unsafe-inline'\">"
            f"<title>provlink evidence {escape(result.model)}</title><style>"
            "body{font-family:system-ui,sans-serif;margin:2em;max-width:75em}"
            "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #bbb;"
            "padding:3px 8px;vertical-align:top;font-size:.9em}code{font-size:.9em}"
            ".tags{background:#fff3cd;padding:.5em}</style></head><body>"
            + "\n".join(parts) + "</body></html>\n")


def _code(code: Mapping[str, Any]) -> str:
    commit = code.get("commit") or code.get("version")
    if not commit:
        return "not recorded"
    return f"{commit}{' (local edits)' if code.get('dirty') else ''} {code.get('repoUrl') or ''}"


def _people(result: Trace, record: Mapping[str, Any] | None,
            promotions: Mapping[str, Any]) -> str:
    rows = []
    for run in result.runs:
        rows.append((f"ran {run.job_namespace}/{run.job_name}", run.who(),
                     run.ended_at or "?"))
        for mlflow_run in run.mlflow_runs:
            if mlflow_run.get("user"):
                rows.append((f"started MLflow run {mlflow_run.get('runId')}",
                             str(mlflow_run["user"]), run.ended_at or "?"))
    if record:
        rows.append(("registered the model version", str(record.get("userId") or "not recorded"),
                     str(record.get("creationTimestamp") or "?")))
    for alias, version in (promotions.get("aliases") or {}).items():
        rows.append((f"@{alias} now on version {version}", "—", "now"))
    return _table(("what", "who", "when"), rows) + _history(promotions)


def _history(promotions: Mapping[str, Any]) -> str:
    """Every alias move to or from the version, from the ledger (MLflow keeps none)."""
    moves = promotions.get("history") or ()
    if not moves:
        return ("<p>No alias move to or from this version is recorded in the ledger"
                + ("" if promotions.get("recorded", True) else " (no ledger was found)")
                + ".</p>")
    return "<h3>Promotion history (ledger)</h3>" + _table(
        ("when", "alias", "from → to", "who", "seen by", "authorized"),
        ((m.get("time") or "?", f"@{m.get('alias')}",
          f"{m.get('from') or '—'} → {m.get('to') or '(deleted)'}",
          m.get("actor") or "not recorded", m.get("source") or "?",
          m.get("authorizedBy") if m.get("authorized") else "UNAUTHORIZED")
         for m in moves))


def _table(head: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = ["<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>")
    return "".join(out) + "</table>"


def lineage_svg(result: Trace) -> str:
    """Columns by distance from the model version (model on the right)."""
    datasets = {(d.namespace, d.name): d for d in result.datasets}
    runs = {r.run_id: r for r in result.runs}
    level: dict[str, int] = {}
    labels: dict[str, tuple[str, str]] = {}
    edges: list[tuple[str, str]] = []
    frontier = [("d", result.namespace, result.dataset)]
    depth = 0
    while frontier and len(level) < MAX_DRAWN:
        nxt: list[tuple[str, str, str]] = []
        for kind, a, b in frontier:
            node = f"{kind}:{a}:{b}"
            if node in level or len(level) >= MAX_DRAWN:
                continue
            level[node] = depth
            if kind == "d":
                d = datasets.get((a, b))
                labels[node] = ("dataset", PurePosixPath(b).name or b)
                if d is not None and d.produced_by in runs:
                    edges.append((f"r:{d.produced_by}:", node))
                    nxt.append(("r", d.produced_by, ""))
            else:
                run = runs[a]
                labels[node] = ("run", str(run.job_name))
                for ns, name in run.inputs:
                    edges.append((f"d:{ns}:{name}", node))
                    nxt.append(("d", ns, name))
        frontier, depth = nxt, depth + 1
    columns: dict[int, list[str]] = {}
    for node, distance in level.items():
        columns.setdefault(distance, []).append(node)
    deepest = max(columns) if columns else 0
    pos = {node: ((deepest - col) * (_W + _GAP_X) + 10, i * (_H + _GAP_Y) + 10)
           for col, nodes in columns.items() for i, node in enumerate(nodes)}
    width = (deepest + 1) * (_W + _GAP_X) + 20
    height = max((len(n) for n in columns.values()), default=1) * (_H + _GAP_Y) + 20
    svg = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
           f"role='img' aria-label='lineage of {escape(result.model)}'>"]
    for origin, target in edges:
        if origin in pos and target in pos:
            (x1, y1), (x2, y2) = pos[origin], pos[target]
            svg.append(f"<line x1='{x1 + _W}' y1='{y1 + _H // 2}' x2='{x2}' "
                       f"y2='{y2 + _H // 2}' stroke='#888'/>")
    for node, (x, y) in pos.items():
        kind, label = labels[node]
        fill = "#dbe9ff" if kind == "run" else "#e8f5e9"
        rx = 10 if kind == "run" else 0
        svg.append(f"<rect x='{x}' y='{y}' width='{_W}' height='{_H}' rx='{rx}' fill='{fill}' "
                   f"stroke='#456'/><text x='{x + 8}' y='{y + 21}' font-size='12'>"
                   f"{escape(kind)}: {escape(label[:28])}</text>")
    svg.append("</svg>")
    hidden = len(result.runs) + len(result.datasets) - len(level)
    more = f"<p>{hidden} further nodes are listed below but not drawn.</p>" if hidden > 0 else ""
    return "".join(svg) + more
