"""The evidence report as Markdown, or as one self-contained HTML file that prints well.

Both render the report's JSON form (:func:`lockgate.control.evidence.report.evidence_report`)
and nothing else, so the CLI and the API produce the same text. The HTML has no script and
loads nothing: its styles are inline and each environment's exposure timeline is an inline
SVG step chart.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

__all__ = ["render_html", "render_markdown"]

_CHART_W, _CHART_H, _PAD = 640, 120, 28


def _cell(value: Any) -> str:
    text = "—" if value is None or value in ("", []) else str(value)
    if isinstance(value, list):
        text = ", ".join(str(v) for v in value)
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def _pct(share: float) -> str:
    return f"{100 * share:g} %"


def _sections(report: dict[str, Any]) -> list[tuple[str, list[str], list[list[Any]], str]]:
    """(title, headers, rows, text when empty) for each tabular section, in order."""
    return [
        (
            "Contract versions",
            ["version", "file", "sha-256", "applied", "by", "audit seq"],
            [
                [
                    c["version"],
                    c["filename"],
                    c["hash"][:16],
                    c["created_at"],
                    c["created_by"],
                    c["audit_seq"],
                ]
                for c in report["contract"]["versions"]
            ],
            "No contract version was applied in this range.",
        ),
        (
            "Change requests",
            [
                "id",
                "environment",
                "title",
                "state",
                "author",
                "rule",
                "approved by",
                "rejected by",
                "applied (seq)",
            ],
            [
                [
                    r["id"],
                    r["environment"],
                    r["title"],
                    r["state"],
                    r["author"],
                    r["rule"],
                    r["approved_by"],
                    r["rejected_by"],
                    r["applied_seq"],
                ]
                for r in report["change_requests"]
            ],
            "No change request for this behavior in this range.",
        ),
        (
            "Runtime approvals",
            [
                "id",
                "environment",
                "action",
                "state",
                "requested by",
                "asked",
                "decided",
                "decided by",
            ],
            [
                [
                    r["id"],
                    r["environment"],
                    r["action"],
                    r["state"],
                    r["requester"],
                    r["created_at"],
                    r["decided_at"],
                    r["decided_by"],
                ]
                for r in report["runtime_approvals"]
            ],
            "No runtime approval was requested in this range.",
        ),
        (
            "Kills and rollbacks",
            ["seq", "time", "action", "environment", "by", "reason"],
            [
                [r["seq"], r["ts"], r["action"], r["environment"], r["actor"], r["reason"]]
                for r in report["reversals"]
            ],
            "No kill, restore or targeted rollback in this range.",
        ),
        (
            "Incidents",
            ["id", "environment", "state", "reason", "started", "by", "ended", "by"],
            [
                [
                    i["id"],
                    i["environment"],
                    i["state"],
                    i["reason"],
                    i["started_at"],
                    i["started_by"],
                    i["ended_at"],
                    i["ended_by"],
                ]
                for i in report["incidents"]
            ],
            "No incident covered this behavior in this range.",
        ),
        (
            "Decisions observed",
            ["environment", "evaluations", "by variation", "by reason"],
            [
                [d["environment"], d["total"], _counts(d["variations"]), _counts(d["reasons"])]
                for d in report["decisions"]
            ],
            "No SDK reported evaluations of this behavior in this range.",
        ),
        (
            "Decision records",
            ["environment", "records", "by kind"],
            [
                [d["environment"], d["total"], _counts(d["kinds"])]
                for d in report["decision_records"]
            ],
            "No decision record (denied, approval required, fallback…) in this range.",
        ),
        (
            "Guardrails",
            [
                "environment",
                "guardrail",
                "metric",
                "source",
                "state",
                "estimate",
                "interval",
                "samples",
                "decision",
            ],
            [
                [
                    g["environment"],
                    g["key"],
                    g["metric"],
                    g["data_source"],
                    g["state"],
                    _number(g["estimate"]),
                    _interval(g["interval"]),
                    _counts(g["samples"]),
                    g["decision"],
                ]
                for g in report["guardrails"]
            ],
            "No guardrail watches this behavior.",
        ),
        (
            "Guardrail triggers and rollout steps",
            [
                "seq",
                "time",
                "action",
                "environment",
                "by",
                "state",
                "estimate",
                "interval",
                "samples",
                "test",
                "reason",
            ],
            [
                [
                    e["seq"],
                    e["ts"],
                    e["action"],
                    e["environment"],
                    e["actor"],
                    e["state"],
                    _number(e["estimate"]),
                    _interval(e["interval"]),
                    _counts(e["samples"]),
                    e["test"],
                    e["reason"],
                ]
                for e in report["guardrail_events"]
            ],
            "No guardrail breach, recovery or rollout step in this range.",
        ),
        (
            "Automatic actions",
            ["seq", "time", "action", "environment", "by", "policy rule", "samples", "reason"],
            [
                [
                    a["seq"],
                    a["ts"],
                    a["action"],
                    a["environment"],
                    a["actor"],
                    a["rule"],
                    _counts(a["samples"]),
                    a["reason"],
                ]
                for a in report["automatic_actions"]
            ],
            "No automatic action changed this behavior in this range.",
        ),
    ]


def _number(value: Any) -> str:
    return "" if value is None else f"{value:.6g}"


def _interval(value: Any) -> str:
    if not value:
        return ""
    low, high = value
    return f"[{low:.6g}, {high:.6g}]"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


def _verification_text(audit: dict[str, Any]) -> str:
    v = audit["verification"]
    if v.get("ok"):
        return (
            f"Verified: the whole chain ({v.get('entries')} entries up to seq "
            f"{v.get('head_seq')}) links, and {v.get('checkpoints_checked')} signed "
            f"checkpoint(s) match (keys: {v.get('key_source')})."
        )
    problems = "; ".join(str(p) for p in v.get("problems") or [])
    return f"NOT VERIFIED: {problems}"


def _contract_text(contract: dict[str, Any] | None) -> str | None:
    return None if contract is None else f"version {contract['version']} ({contract['hash'][:16]})"


def _stage_text(cleanup: dict[str, Any] | None) -> str | None:
    if not cleanup:
        return None
    parts = [cleanup["stage"].replace("_", " ")]
    if cleanup.get("since"):
        parts.append(f"since {cleanup['since']}")
    if cleanup.get("cleanup_rule"):
        parts.append(f"cleanup rule: {cleanup['cleanup_rule']}")
    if cleanup.get("permanent_reason"):
        parts.append(f"permanent: {cleanup['permanent_reason']}")
    parts.append(f"{cleanup.get('code_references', 0)} code references")
    return "; ".join(parts)


def _header(report: dict[str, Any]) -> list[tuple[str, Any]]:
    b = report["behavior"]
    contract = report["contract"]["current"]
    return [
        ("Project", b["project"]),
        ("Behavior", f"{b['key']} ({b['name']})"),
        ("Owner", b["owner"]),
        ("Risk tier", b["risk_tier"]),
        ("Kind", f"{b['kind']}" + (f", {b['behavior_kind']}" if b["behavior_kind"] else "")),
        ("Lifecycle", b["lifecycle"] + (" (archived)" if b["archived"] else "")),
        ("Stage", _stage_text(b.get("cleanup"))),
        (
            "Contract",
            f"version {contract['version']} ({contract['hash'][:16]})" if contract else None,
        ),
        ("Range", f"{report['report']['from']} to {report['report']['to']}"),
        ("Generated", report["report"]["generated_at"]),
    ]


def render_markdown(report: dict[str, Any]) -> str:
    b = report["behavior"]
    out = [f"# Evidence report: {b['key']}", ""]
    out += [f"- **{k}:** {_cell(v)}" for k, v in _header(report)]
    out += ["", "## Exposure per environment", ""]
    for env in report["environments"]:
        out += [f"### {env['environment']}" + (" (protected)" if env["protected"] else ""), ""]
        out += _md_table(
            ["version", "from", "by", "exposure", "serving", "reason"],
            [
                [p["version"], p["at"], p["by"], _pct(p["exposure"]), p["serving"], p["reason"]]
                for p in env["timeline"]
            ],
        )
        out.append("")
    for title, headers, rows, empty in _sections(report):
        out += [f"## {title}", ""]
        out += _md_table(headers, rows) if rows else [empty]
        out.append("")
    out += ["## Release notes", ""]
    notes = report["release_notes"]
    if not notes:
        out.append("No expansion, reduction or clean-up decision in this range.")
    for note in notes:
        out += [
            f"- **{note['ts']}** — {note['action']} in {note['environment'] or 'the project'}"
            f" ({note['direction']})",
            f"  - what: {note['what']}",
            f"  - for whom: {note['for_whom']}",
            f"  - why: {note['why'] or '—'}",
            f"  - evidence: {_evidence_text(note)}",
            f"  - approval: {_approval_text(note)}",
        ]
    audit = report["audit"]
    out += ["", "## Audit trail", ""]
    out.append(
        f"{audit['entries']} entries about this behavior in the range"
        + (f" (seq {audit['first_seq']} to {audit['last_seq']})" if audit["entries"] else "")
        + ": "
        + (_counts(audit["actions"]) or "none")
        + "."
    )
    out += ["", _verification_text(audit), ""]
    out += ["## Frameworks (relevant to — not a compliance claim)", ""]
    frameworks = report["frameworks"]
    out += [f"> {frameworks['note']}", ""]
    names = frameworks["frameworks"]
    out += _md_table(
        ["control", "evidence held", names["nist_ai_rmf"], names["iso_42001"], names["owasp_llm"]],
        [
            [i["title"], i["evidence"], i["nist_ai_rmf"], i["iso_42001"], i["owasp_llm"]]
            for i in frameworks["items"]
        ],
    )
    out.append("")
    return "\n".join(out)


def _evidence_text(note: dict[str, Any]) -> str:
    evidence = note["evidence"]
    parts = list(evidence.get("policy_reasons") or [])
    parts += [f"{k}: {v}" for k, v in sorted((evidence.get("other") or {}).items())]
    return "; ".join(str(p) for p in parts) or "—"


def _approval_text(note: dict[str, Any]) -> str:
    approval = note["approval"]
    if approval["kind"] == "change_request":
        return (
            f"change request {approval['change_request']} by {approval['author']}, approved by "
            f"{', '.join(approval['approved_by']) or 'nobody'} ({approval['rule']})"
        )
    rule = f" ({approval['rule']})" if approval["rule"] else ""
    return f"applied directly by {approval['author']}{rule}"


# -- HTML -------------------------------------------------------------------------------

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1b1f24;margin:2rem auto;
max-width:60rem;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;border-bottom:1px solid #ccd;
margin-top:2rem;padding-bottom:.2rem}h3{font-size:1rem;margin-bottom:.3rem}
table{border-collapse:collapse;width:100%;margin:.4rem 0 1rem;font-size:12.5px}
th,td{border:1px solid #ccd;padding:.25rem .4rem;text-align:left;vertical-align:top}
th{background:#eef1f5}dl{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1rem}
dt{font-weight:600}dd{margin:0}.note{background:#fff7e0;border-left:4px solid #d9a400;
padding:.5rem .8rem}.ok{color:#116329;font-weight:600}.bad{color:#b42318;font-weight:700}
.empty{color:#57606a;font-style:italic}svg{display:block;max-width:100%}
ul.notes li{margin-bottom:.6rem}
@media print{body{margin:0;max-width:none;font-size:11px}h2{break-after:avoid}
table,svg,li{break-inside:avoid}}
"""


def _e(value: Any) -> str:
    return html.escape(_cell(value))


def _html_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], empty: str) -> str:
    if not rows:
        return f'<p class="empty">{html.escape(empty)}</p>'
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _moment(text: str) -> float:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _chart(env: dict[str, Any], start: str, end: str) -> str:
    """An SVG step chart of the exposure share over the range, kills marked in red."""
    t0, t1 = _moment(start), _moment(end)
    points = env["timeline"]
    if not points or t1 <= t0:
        return '<p class="empty">No configuration in this range.</p>'
    width, height = _CHART_W - 2 * _PAD, _CHART_H - 2 * _PAD

    def x(moment: float) -> float:
        return _PAD + width * min(max((moment - t0) / (t1 - t0), 0.0), 1.0)

    def y(share: float) -> float:
        return _PAD + height * (1 - share)

    path: list[str] = []
    marks: list[str] = []
    for index, point in enumerate(points):
        begin = max(_moment(point["at"]), t0)
        finish = _moment(points[index + 1]["at"]) if index + 1 < len(points) else t1
        level = y(point["exposure"])
        path.append(f"{'M' if index == 0 else 'L'}{x(begin):.1f},{level:.1f}")
        path.append(f"L{x(finish):.1f},{level:.1f}")
        if point["killed"]:
            marks.append(
                f'<rect x="{x(begin):.1f}" y="{_PAD}" width="{max(x(finish) - x(begin), 1):.1f}"'
                f' height="{height}" fill="#b42318" fill-opacity="0.15"/>'
            )
    axis = (
        f'<line x1="{_PAD}" y1="{y(0):.1f}" x2="{_PAD + width}" y2="{y(0):.1f}" stroke="#888"/>'
        f'<line x1="{_PAD}" y1="{y(1):.1f}" x2="{_PAD + width}" y2="{y(1):.1f}" stroke="#ddd"'
        ' stroke-dasharray="3,3"/>'
        f'<text x="2" y="{y(1) + 4:.1f}" font-size="10">100%</text>'
        f'<text x="8" y="{y(0) + 4:.1f}" font-size="10">0%</text>'
        f'<text x="{_PAD}" y="{_CHART_H - 6}" font-size="10">{html.escape(start[:16])}</text>'
        f'<text x="{_PAD + width}" y="{_CHART_H - 6}" font-size="10" text-anchor="end">'
        f"{html.escape(end[:16])}</text>"
    )
    label = f"Exposure of {env['environment']} over the range"
    return (
        f'<svg viewBox="0 0 {_CHART_W} {_CHART_H}" role="img" aria-label="{html.escape(label)}">'
        f"<title>{html.escape(label)}</title>{''.join(marks)}{axis}"
        f'<path d="{" ".join(path)}" fill="none" stroke="#0b57d0" stroke-width="2"/></svg>'
    )


def render_html(report: dict[str, Any]) -> str:
    b = report["behavior"]
    start, end = report["report"]["from"], report["report"]["to"]
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>Evidence report: {html.escape(b['key'])}</title><style>{_STYLE}</style>",
        "</head><body>",
        f"<h1>Evidence report: {html.escape(b['key'])}</h1>",
        "<dl>"
        + "".join(f"<dt>{html.escape(k)}</dt><dd>{_e(v)}</dd>" for k, v in _header(report))
        + "</dl>",
        "<h2>Exposure per environment</h2>",
        "<p>Exposure: the share of the traffic no target or rule matched that is served a "
        "variation other than the off state or the fallback. Shaded: killed.</p>",
    ]
    for env in report["environments"]:
        title = env["environment"] + (" (protected)" if env["protected"] else "")
        parts.append(f"<h3>{html.escape(title)}</h3>{_chart(env, start, end)}")
        parts.append(
            _html_table(
                ["version", "from", "by", "exposure", "serving", "reason"],
                [
                    [p["version"], p["at"], p["by"], _pct(p["exposure"]), p["serving"], p["reason"]]
                    for p in env["timeline"]
                ],
                "No configuration in this range.",
            )
        )
    for title, headers, rows, empty in _sections(report):
        parts.append(f"<h2>{html.escape(title)}</h2>{_html_table(headers, rows, empty)}")
    parts.append("<h2>Release notes</h2>")
    notes = report["release_notes"]
    if not notes:
        parts.append('<p class="empty">No expansion, reduction or clean-up decision.</p>')
    else:
        items = "".join(
            f"<li><strong>{_e(n['ts'])}</strong> — {_e(n['action'])} in "
            f"{_e(n['environment'] or 'the project')} ({_e(n['direction'])})<br>"
            f"what: {_e(n['what'])}<br>for whom: {_e(n['for_whom'])}<br>"
            f"why: {_e(n['why'])}<br>evidence: {html.escape(_evidence_text(n))}<br>"
            f"approval: {html.escape(_approval_text(n))}</li>"
            for n in notes
        )
        parts.append(f'<ul class="notes">{items}</ul>')
    audit = report["audit"]
    verified = audit["verification"].get("ok")
    parts += [
        "<h2>Audit trail</h2>",
        f"<p>{audit['entries']} entries about this behavior in the range: "
        f"{html.escape(_counts(audit['actions']) or 'none')}.</p>",
        f'<p class="{"ok" if verified else "bad"}">{html.escape(_verification_text(audit))}</p>',
        "<h2>Frameworks (relevant to — not a compliance claim)</h2>",
        f'<p class="note">{html.escape(report["frameworks"]["note"])}</p>',
    ]
    names = report["frameworks"]["frameworks"]
    parts.append(
        _html_table(
            [
                "control",
                "evidence held",
                names["nist_ai_rmf"],
                names["iso_42001"],
                names["owasp_llm"],
            ],
            [
                [i["title"], i["evidence"], i["nist_ai_rmf"], i["iso_42001"], i["owasp_llm"]]
                for i in report["frameworks"]["items"]
            ],
            "No control in use.",
        )
    )
    parts.append("</body></html>\n")
    return "".join(parts)
