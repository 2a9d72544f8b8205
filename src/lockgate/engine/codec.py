"""The versioned JSON codec for snapshots: the one wire and persisted shape.

``decode`` turns untrusted JSON into a :class:`Snapshot`. Problems in the envelope raise
:class:`SnapshotError`; problems inside one flag or segment are recorded in
``Snapshot.broken`` so that the rest of the snapshot can still be inspected and the broken
object evaluates to ``MALFORMED_FLAG``. ``encode`` is its inverse.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from typing import Any

from lockgate.engine._reader import Reader
from lockgate.engine.model import (
    SNAPSHOT_FORMAT,
    Clause,
    Flag,
    FlagKind,
    MetricBinding,
    Prerequisite,
    Rule,
    Segment,
    SegmentRule,
    Serve,
    Snapshot,
    Target,
    ToolBudget,
    ToolDenial,
    ToolSpec,
    Variation,
    WeightedVariation,
)
from lockgate.engine.problems import Problem, SnapshotError
from lockgate.engine.tools import normalize_tool_policy

__all__ = [
    "MAX_METRICS",
    "MAX_METRIC_BEHAVIORS",
    "MAX_TOOLS",
    "apply_changes",
    "decode",
    "decode_flag",
    "decode_segment",
    "decode_tools",
    "dumps",
    "encode",
    "encode_flag",
    "encode_metrics",
    "encode_tool",
    "encode_tools",
    "loads",
]

_FLAG_FIELDS = {
    "key",
    "version",
    "kind",
    "variations",
    "on",
    "off_variation",
    "targets",
    "rules",
    "default",
    "prerequisites",
    "bucket_by",
    "salt",
    "client_visible",
    "killed",
    "incidents",
    "exclusions",
}
_METRIC_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}\Z")
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,127}\Z")
_FLAG_META = {"name", "description", "owner", "risk_tier", "lifecycle", "tags"}
_FLAG_KEYS = frozenset(_FLAG_FIELDS | _FLAG_META)
_SEGMENT_FIELDS = {"key", "version", "included", "excluded", "rules", "attribute"}
_SEGMENT_META = {"name", "description"}
_ENVELOPE = {
    "format",
    "project",
    "environment",
    "version",
    "flags",
    "segments",
    "metrics",
    "tools",
    "tool_policy",
}
_TOOL_FIELDS = {"risk", "version", "deny", "budget", "description"}
_RISK_CLASSES = ("read", "draft", "write", "external", "irreversible")
MAX_TOOLS = 1_000
"""Tools one project may register."""
MAX_TOOL_BUDGET_WINDOW = 31 * 24 * 3600
_METRIC_FIELDS = {"behaviors", "cohort"}
MAX_METRICS = 1_000
"""Metrics one snapshot may bind."""
MAX_METRIC_BEHAVIORS = 100
"""Behaviors one metric may be attributed to."""


def loads(text: str | bytes) -> Snapshot:
    """Parse JSON text into a snapshot, raising :class:`SnapshotError` on bad input."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SnapshotError([Problem("$", f"not valid JSON: {exc}")]) from None
    return decode(data)


def dumps(snapshot: Snapshot) -> str:
    return json.dumps(encode(snapshot), separators=(",", ":"), sort_keys=True)


def decode(data: object) -> Snapshot:
    problems: list[Problem] = []
    top = Reader.of(data, "", problems)
    if top is None:
        raise SnapshotError(problems)
    top.only(_ENVELOPE)
    fmt = top.str_("format")
    if isinstance(top.data.get("format"), str) and fmt != SNAPSHOT_FORMAT:
        top.problem("format", f"unsupported format {fmt!r}; expected {SNAPSHOT_FORMAT!r}")
    project = top.str_("project", "")
    environment = top.str_("environment", "")
    version = top.int_("version")
    flags_raw = _object_map(top, "flags")
    segments_raw = _object_map(top, "segments")
    metrics = _decode_metrics(_object_map(top, "metrics"), problems)
    tools = decode_tools(_object_map(top, "tools"), problems)
    tool_policy, policy_problems = normalize_tool_policy(top.data.get("tool_policy", {}))
    problems.extend(Problem(path, message) for path, message in policy_problems)
    if problems:
        raise SnapshotError(problems)
    broken: dict[str, tuple[Problem, ...]] = {}
    flags = _decode_all(flags_raw, "flags", decode_flag, broken)
    segments = _decode_all(segments_raw, "segments", decode_segment, broken)
    return Snapshot(
        project, environment, version, flags, segments, broken, metrics, tools, tool_policy
    )


def decode_tools(raw: Mapping[str, Any], problems: list[Problem]) -> dict[str, ToolSpec]:
    """``{"refund": {"risk": "irreversible", "deny": [...], "budget": {...}}}``."""
    if len(raw) > MAX_TOOLS:
        problems.append(Problem("tools", f"at most {MAX_TOOLS} tools"))
        return {}
    out: dict[str, ToolSpec] = {}
    for key, item in raw.items():
        path = f"tools.{key}"
        reader = Reader.of(item, path, problems)
        if reader is None:
            continue
        if not isinstance(key, str) or not _METRIC_NAME.match(key):
            problems.append(Problem(path, "not a valid tool key"))
            continue
        reader.only(_TOOL_FIELDS)
        risk = reader.str_("risk")
        if isinstance(risk, str) and risk not in _RISK_CLASSES:
            reader.problem("risk", f"unknown risk class; one of {', '.join(_RISK_CLASSES)}")
        deny = tuple(
            _tool_denial(d, f"{reader.at('deny')}[{i}]", problems)
            for i, d in enumerate(reader.list_("deny"))
        )
        budget = _tool_budget(reader.data.get("budget"), reader.at("budget"), problems)
        out[key] = ToolSpec(
            key,
            risk if isinstance(risk, str) else "",
            reader.int_("version", 0),
            deny,
            budget,
            reader.str_("description", ""),
        )
    return out


def _tool_denial(data: object, path: str, problems: list[Problem]) -> ToolDenial:
    r = Reader.of(data, path, problems)
    if r is None:
        return ToolDenial("")
    r.only({"id", "clauses", "description"})
    return ToolDenial(r.str_("id"), _clauses(r, problems))


def _tool_budget(data: object, path: str, problems: list[Problem]) -> ToolBudget | None:
    if data is None:
        return None
    r = Reader.of(data, path, problems)
    if r is None:
        return None
    r.only({"calls", "window", "per"})
    calls, window, per = r.int_("calls"), r.int_("window"), r.str_("per", "key")
    if isinstance(calls, int) and not 1 <= calls <= 1_000_000:
        r.problem("calls", "must be 1-1000000")
    if isinstance(window, int) and not 1 <= window <= MAX_TOOL_BUDGET_WINDOW:
        r.problem("window", f"must be 1-{MAX_TOOL_BUDGET_WINDOW} seconds")
    if isinstance(per, str) and not _ATTRIBUTE_NAME.match(per):
        r.problem("per", "not a valid attribute name")
    return ToolBudget(
        calls if isinstance(calls, int) else 0, window if isinstance(window, int) else 0, per
    )


def encode_tools(tools: Mapping[str, ToolSpec]) -> dict[str, Any]:
    return {key: encode_tool(spec) for key, spec in tools.items()}


def encode_tool(spec: ToolSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"risk": spec.risk, "version": spec.version}
    if spec.description:
        out["description"] = spec.description
    if spec.deny:
        out["deny"] = [
            {"id": d.id, "clauses": [_encode_clause(c) for c in d.clauses]} for d in spec.deny
        ]
    if spec.budget is not None:
        b = spec.budget
        out["budget"] = {"calls": b.calls, "window": b.window, "per": b.per}
    return out


def _decode_metrics(raw: Mapping[str, Any], problems: list[Problem]) -> dict[str, MetricBinding]:
    """``{"errors": ["checkout"], "llm_cost": {"behaviors": [...], "cohort": "account"}}``."""
    if len(raw) > MAX_METRICS:
        problems.append(Problem("metrics", f"at most {MAX_METRICS} metrics"))
        return {}
    out: dict[str, MetricBinding] = {}
    for name, item in raw.items():
        path = f"metrics.{name}"
        if not isinstance(name, str) or not _METRIC_NAME.match(name):
            problems.append(Problem(path, "not a valid metric name"))
            continue
        reader = Reader.of({"behaviors": item} if isinstance(item, list) else item, path, problems)
        if reader is None:
            continue
        reader.only(_METRIC_FIELDS)
        behaviors = reader.str_list("behaviors")
        cohort = reader.opt_str("cohort")
        if len(behaviors) > MAX_METRIC_BEHAVIORS:
            reader.problem("behaviors", f"at most {MAX_METRIC_BEHAVIORS} behaviors")
        if cohort is not None and not _ATTRIBUTE_NAME.match(cohort):
            reader.problem("cohort", "not a valid attribute name")
        out[name] = MetricBinding(tuple(dict.fromkeys(behaviors)), cohort)
    return out


def encode_metrics(metrics: Mapping[str, MetricBinding]) -> dict[str, Any]:
    return {
        name: {"behaviors": list(binding.behaviors)}
        | ({} if binding.cohort is None else {"cohort": binding.cohort})
        for name, binding in metrics.items()
    }


def _object_map(top: Reader, name: str) -> Mapping[str, Any]:
    value = top.data.get(name, {})
    if not isinstance(value, Mapping):
        top.problem(name, "expected an object keyed by key")
        return {}
    return value


def _decode_all(raw: Mapping[str, Any], kind: str, decoder: Any, broken: dict[str, Any]) -> Any:
    out: dict[str, Any] = {}
    for key, item in raw.items():
        path = f"{kind}.{key}"
        problems: list[Problem] = []
        decoded = decoder(item, path, problems, key)
        if problems or decoded is None:
            broken[path] = tuple(problems)
        else:
            out[key] = decoded
    return out


def apply_changes(
    snapshot: Snapshot,
    version: int,
    flags: Mapping[str, Any],
    segments: Mapping[str, Any],
    *,
    same_variations: Collection[str] = (),
) -> Snapshot:
    """``snapshot`` at ``version`` with some flags and segments replaced (``None`` removes).

    Only the changed objects are decoded; every other one is the same object as in
    ``snapshot``, which lets compilation and validation reuse their earlier work.
    ``same_variations`` names changed flags whose ``variations`` the caller knows to be
    equal to those of the flag they replace (compared in their encoded form): the decoded
    variations are then shared instead of decoded again.
    """
    broken = dict(snapshot.broken)

    def flag_decoder(
        raw: object, path: str, problems: list[Problem], key: str | None = None
    ) -> Flag | None:
        held = snapshot.flags.get(key) if key is not None and key in same_variations else None
        return decode_flag(raw, path, problems, key, None if held is None else held.variations)

    decoder = flag_decoder if same_variations else decode_flag
    new_flags = _replaced(snapshot.flags, flags, "flags", decoder, broken)
    new_segments = _replaced(snapshot.segments, segments, "segments", decode_segment, broken)
    return Snapshot(
        snapshot.project,
        snapshot.environment,
        version,
        new_flags,
        new_segments,
        broken,
        snapshot.metrics,
        snapshot.tools,
        snapshot.tool_policy,
    )


def _replaced(
    current: Mapping[str, Any],
    changes: Mapping[str, Any],
    kind: str,
    decoder: Any,
    broken: dict[str, tuple[Problem, ...]],
) -> dict[str, Any]:
    out = dict(current)
    for key, raw in changes.items():
        path = f"{kind}.{key}"
        out.pop(key, None)
        broken.pop(path, None)
        if raw is None:
            continue
        problems: list[Problem] = []
        decoded = decoder(raw, path, problems, key)
        if problems or decoded is None:
            broken[path] = tuple(problems)
        else:
            out[key] = decoded
    return out


def decode_flag(
    data: object,
    path: str,
    problems: list[Problem],
    expected_key: str | None = None,
    variations: tuple[Variation, ...] | None = None,
) -> Flag | None:
    """Decode one flag; ``variations``, when given, are used instead of decoding the
    data's own (the caller vouches that they are the same)."""
    if isinstance(data, dict) and data.__class__ is dict and data.keys() <= _FLAG_KEYS:
        simple = _simple_flag(data, expected_key, variations)
        if simple is not None:
            return simple
    return _checked_flag(data, path, problems, expected_key, variations)


_KINDS = {kind.value: kind for kind in FlagKind}
_EMPTY: tuple[Any, ...] = ()


def _simple_flag(
    data: dict[str, Any], expected_key: str | None, variations: tuple[Variation, ...] | None
) -> Flag | None:
    """The common shape (no targets, rules or prerequisites; a fixed default) read
    directly; ``None`` for anything else, which :func:`_checked_flag` reads and reports."""
    get = data.get
    key, version, kind_raw = get("key"), get("version"), get("kind")
    kind = _KINDS.get(kind_raw) if kind_raw.__class__ is str else None
    default, on = get("default"), get("on", True)
    off, salt = get("off_variation"), get("salt")
    bucket_by, visible = get("bucket_by", "key"), get("client_visible", False)
    if (
        key.__class__ is not str
        or (expected_key is not None and key != expected_key)
        or kind is None
        or version.__class__ is not int
        or version < 0
        or default.__class__ is not dict
        or len(default) != 1
        or get("targets")
        or get("rules")
        or get("prerequisites")
        or get("killed")
        or get("incidents")
        or get("exclusions")
        or on.__class__ is not bool
        or visible.__class__ is not bool
        or bucket_by.__class__ is not str
        or (off is not None and off.__class__ is not str)
        or (salt is not None and salt.__class__ is not str)
    ):
        return None
    serve = default.get("variation")
    if serve.__class__ is not str:
        return None
    for name in ("targets", "rules", "prerequisites"):
        if name in data and data[name].__class__ is not list:
            return None
    if variations is None:
        raw = get("variations")
        if raw.__class__ is not list:
            return None
        problems: list[Problem] = []
        variations = _variations(raw, "", problems)
        if problems:
            return None
    return Flag(
        key=key,
        version=version,
        kind=kind,
        variations=variations,
        default=Serve(variation=serve),
        on=on,
        off_variation=off,
        targets=_EMPTY,
        rules=_EMPTY,
        prerequisites=_EMPTY,
        bucket_by=bucket_by,
        salt=salt,
        client_visible=visible,
        meta={k: v for k, v in data.items() if k in _FLAG_META},
    )


def _checked_flag(
    data: object,
    path: str,
    problems: list[Problem],
    expected_key: str | None,
    variations: tuple[Variation, ...] | None,
) -> Flag | None:
    r = Reader.of(data, path, problems)
    if r is None:
        return None
    r.only(_FLAG_KEYS)
    key = r.str_("key")
    if expected_key is not None and key != expected_key:
        r.problem("key", f"flag key {key!r} differs from the key it is stored under")
    kind_raw = r.str_("kind")
    try:
        kind = FlagKind(kind_raw)
    except ValueError:
        r.problem(
            "kind", f"unknown kind {kind_raw!r}; expected one of {[k.value for k in FlagKind]}"
        )
        kind = FlagKind.JSON
    if variations is None:
        raw_variations = r.list_("variations", required=True)
        variations = _variations(raw_variations, r.at("variations"), problems)
    default = _serve(r.data.get("default"), r.at("default"), problems)
    return Flag(
        key=key,
        version=r.int_("version"),
        kind=kind,
        variations=variations,
        default=default,
        on=r.bool_("on", True),
        off_variation=r.opt_str("off_variation"),
        targets=tuple(
            _target(t, f"{r.at('targets')}[{i}]", problems)
            for i, t in enumerate(r.list_("targets"))
        ),
        rules=tuple(
            _rule(x, f"{r.at('rules')}[{i}]", problems) for i, x in enumerate(r.list_("rules"))
        ),
        prerequisites=tuple(
            _prerequisite(p, f"{r.at('prerequisites')}[{i}]", problems)
            for i, p in enumerate(r.list_("prerequisites"))
        ),
        bucket_by=r.str_("bucket_by", "key"),
        salt=r.opt_str("salt"),
        client_visible=r.bool_("client_visible", False),
        killed=r.bool_("killed", False),
        incidents=r.str_list("incidents"),
        exclusions=tuple(
            _exclusion(x, f"{r.at('exclusions')}[{i}]", problems, r.data.get("off_variation"))
            for i, x in enumerate(r.list_("exclusions"))
        ),
        meta={k: v for k, v in r.data.items() if k in _FLAG_META},
    )


def decode_segment(
    data: object, path: str, problems: list[Problem], expected_key: str | None = None
) -> Segment | None:
    r = Reader.of(data, path, problems)
    if r is None:
        return None
    r.only(_SEGMENT_FIELDS | _SEGMENT_META)
    key = r.str_("key")
    if expected_key is not None and key != expected_key:
        r.problem("key", f"segment key {key!r} differs from the key it is stored under")
    rules = []
    for i, raw in enumerate(r.list_("rules")):
        rr = Reader.of(raw, f"{r.at('rules')}[{i}]", problems)
        if rr is not None:
            rr.only({"id", "clauses"})
            rules.append(SegmentRule(rr.str_("id", f"rule-{i}"), _clauses(rr, problems)))
    return Segment(
        key=key,
        version=r.int_("version"),
        included=r.str_list("included"),
        excluded=r.str_list("excluded"),
        rules=tuple(rules),
        attribute=r.str_("attribute", "key"),
        meta={k: v for k, v in r.data.items() if k in _SEGMENT_META},
    )


_VARIATION_FIELDS = frozenset({"key", "value", "name", "description"})
_VARIATION_META = ("name", "description")


def _variations(items: list[Any], path: str, problems: list[Problem]) -> tuple[Variation, ...]:
    out = []
    for i, data in enumerate(items):
        # The common, well-formed shape is read directly; anything else goes through the
        # reader, which names every problem.
        if (
            data.__class__ is dict
            and data.keys() <= _VARIATION_FIELDS
            and "value" in data
            and data.get("key").__class__ is str
        ):
            meta = {k: v for k, v in data.items() if k in _VARIATION_META} if len(data) > 2 else {}
            out.append(Variation(data["key"], data["value"], meta))
            continue
        variation = _variation(data, f"{path}[{i}]", problems)
        if variation is not None:
            out.append(variation)
    return tuple(out)


def _variation(data: object, path: str, problems: list[Problem]) -> Variation | None:
    r = Reader.of(data, path, problems)
    if r is None:
        return None
    r.only({"key", "value", "name", "description"})
    if "value" not in r.data:
        r.problem("value", "required field is missing")
    meta = {k: v for k, v in r.data.items() if k in ("name", "description")}
    return Variation(r.str_("key"), r.data.get("value"), meta)


def _serve(data: object, path: str, problems: list[Problem]) -> Serve:
    r = Reader.of(data, path, problems)
    if r is None:
        return Serve()
    r.only({"variation", "split", "bucket_by"})
    if ("variation" in r.data) == ("split" in r.data):
        problems.append(Problem(path, "give exactly one of 'variation' or 'split'"))
        return Serve()
    if "variation" in r.data:
        return Serve(variation=r.str_("variation"))
    parts = []
    for i, raw in enumerate(r.list_("split")):
        pr = Reader.of(raw, f"{r.at('split')}[{i}]", problems)
        if pr is not None:
            pr.only({"variation", "weight"})
            parts.append(WeightedVariation(pr.str_("variation"), pr.int_("weight")))
    return Serve(split=tuple(parts), bucket_by=r.opt_str("bucket_by"))


def _clauses(r: Reader, problems: list[Problem]) -> tuple[Clause, ...]:
    out = []
    for i, raw in enumerate(r.list_("clauses")):
        cr = Reader.of(raw, f"{r.at('clauses')}[{i}]", problems)
        if cr is None:
            continue
        cr.only({"attribute", "op", "values", "negate", "case_insensitive"})
        out.append(
            Clause(
                attribute=cr.opt_str("attribute"),
                op=cr.str_("op"),
                values=tuple(cr.list_("values", required=True)),
                negate=cr.bool_("negate", False),
                case_insensitive=cr.bool_("case_insensitive", False),
            )
        )
    return tuple(out)


def _rule(data: object, path: str, problems: list[Problem]) -> Rule:
    r = Reader.of(data, path, problems)
    if r is None:
        return Rule("", (), Serve())
    r.only({"id", "clauses", "serve", "description"})
    meta = {k: v for k, v in r.data.items() if k == "description"}
    serve = _serve(r.data.get("serve"), r.at("serve"), problems)
    return Rule(r.str_("id"), _clauses(r, problems), serve, meta)


def _exclusion(data: object, path: str, problems: list[Problem], off: object) -> Rule:
    """An exclusion: an audience (clauses) served the off variation before anything else."""
    r = Reader.of(data, path, problems)
    if r is None:
        return Rule("", (), Serve())
    r.only({"id", "clauses", "description"})
    meta = {k: v for k, v in r.data.items() if k == "description"}
    serve = Serve(variation=off if isinstance(off, str) else None)
    return Rule(r.str_("id"), _clauses(r, problems), serve, meta)


def _target(data: object, path: str, problems: list[Problem]) -> Target:
    r = Reader.of(data, path, problems)
    if r is None:
        return Target("", ())
    r.only({"variation", "values", "attribute"})
    return Target(r.str_("variation"), r.str_list("values"), r.str_("attribute", "key"))


def _prerequisite(data: object, path: str, problems: list[Problem]) -> Prerequisite:
    r = Reader.of(data, path, problems)
    if r is None:
        return Prerequisite("", "")
    r.only({"flag", "variation"})
    return Prerequisite(r.str_("flag"), r.str_("variation"))


def encode(snapshot: Snapshot) -> dict[str, Any]:
    """The wire form of ``snapshot`` (broken objects cannot be encoded and are left out)."""
    out: dict[str, Any] = {
        "format": SNAPSHOT_FORMAT,
        "project": snapshot.project,
        "environment": snapshot.environment,
        "version": snapshot.version,
        "flags": {key: encode_flag(flag) for key, flag in snapshot.flags.items()},
        "segments": {key: encode_segment(seg) for key, seg in snapshot.segments.items()},
    }
    # Each optional part is left out when empty: SDKs from before it reject the field.
    if snapshot.metrics:
        out["metrics"] = encode_metrics(snapshot.metrics)
    if snapshot.tools:
        out["tools"] = encode_tools(snapshot.tools)
    if snapshot.tool_policy:
        out["tool_policy"] = snapshot.tool_policy
    return out


def encode_flag(flag: Flag) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": flag.key,
        "version": flag.version,
        "kind": flag.kind.value,
        "variations": [{"key": v.key, "value": v.value, **v.meta} for v in flag.variations],
        "on": flag.on,
        "off_variation": flag.off_variation,
        "targets": [
            {"variation": t.variation, "values": list(t.values), "attribute": t.attribute}
            for t in flag.targets
        ],
        "rules": [
            {
                "id": r.id,
                "clauses": [_encode_clause(c) for c in r.clauses],
                "serve": _encode_serve(r.serve),
                **r.meta,
            }
            for r in flag.rules
        ],
        "default": _encode_serve(flag.default),
        "prerequisites": [{"flag": p.flag, "variation": p.variation} for p in flag.prerequisites],
        "bucket_by": flag.bucket_by,
        "client_visible": flag.client_visible,
    }
    if flag.salt is not None:
        out["salt"] = flag.salt
    if flag.killed:
        out["killed"] = True
    if flag.incidents:
        out["incidents"] = list(flag.incidents)
    if flag.exclusions:
        out["exclusions"] = [
            {"id": x.id, "clauses": [_encode_clause(c) for c in x.clauses], **x.meta}
            for x in flag.exclusions
        ]
    out.update(flag.meta)
    return out


def encode_segment(segment: Segment) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": segment.key,
        "version": segment.version,
        "included": list(segment.included),
        "excluded": list(segment.excluded),
        "rules": [
            {"id": r.id, "clauses": [_encode_clause(c) for c in r.clauses]} for r in segment.rules
        ],
        "attribute": segment.attribute,
    }
    out.update(segment.meta)
    return out


def _encode_serve(serve: Serve) -> dict[str, Any]:
    if serve.split is None:
        return {"variation": serve.variation}
    out: dict[str, Any] = {
        "split": [{"variation": p.variation, "weight": p.weight} for p in serve.split]
    }
    if serve.bucket_by is not None:
        out["bucket_by"] = serve.bucket_by
    return out


def _encode_clause(clause: Clause) -> dict[str, Any]:
    out: dict[str, Any] = {"op": clause.op, "values": list(clause.values)}
    if clause.attribute is not None:
        out["attribute"] = clause.attribute
    if clause.negate:
        out["negate"] = True
    if clause.case_insensitive:
        out["case_insensitive"] = True
    return out
