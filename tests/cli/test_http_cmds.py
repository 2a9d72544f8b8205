"""The operator CLI against a real ``lockgate serve`` process, over HTTP.

One server per module (its own data directory and admin token); each test works in its
own project. Commands run in-process through ``lockgate.cli.main.main`` with
``LOCKGATE_URL``/``LOCKGATE_TOKEN`` set, so output and exit codes are the real ones.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import io
import json
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lockgate.cli import audit_http_cmds, http
from lockgate.cli.errors import CliError
from lockgate.cli.http import ApiClient, api_path
from lockgate.cli.main import build_parser, main
from tests.cli.lockgate_server import Cli, Run, Server, free_port

EVALUATE = "/api/v1/projects/{project}/environments/{environment}/evaluate"
SEGMENTS = "/api/v1/projects/{project}/segments"
AUDIT = "/api/v1/audit"
USERS = "/api/v1/users"
MEMBERS = "/api/v1/projects/{project}/members/{username}"
TOKENS = "/api/v1/tokens"
SDK_KEYS = "/api/v1/projects/{project}/environments/{environment}/sdk-keys"


@pytest.fixture
def api(server: Server) -> Iterator[ApiClient]:
    with ApiClient(server.url, server.token) as client:
        yield client


@pytest.fixture
def project(cli: Cli) -> str:
    """A fresh project with a protected ``production``, a development ``staging`` (where the
    default posture lets high-risk expansions apply directly) and a high-risk mode flag."""
    key = f"p-{uuid.uuid4().hex[:10]}"
    assert cli("projects", "create", key).code == 0
    assert cli("envs", "create", key, "production", "--protected").code == 0
    assert cli("envs", "create", key, "staging", "--development").code == 0
    created = cli(
        "flags", "create", key, "agent", "--kind", "mode", "--risk-tier", "high",
        "--reason", "new agent",
    )  # fmt: skip
    assert created.code == 0, created.err
    return key


def requires(server: Server, route: str) -> None:
    """The commands under test need this route; its absence is a failure, not a skip."""
    assert server.has_route(route), f"the server has no {route} route (not in /openapi.json)"


def config_path(project: str, env: str, flag: str = "agent") -> str:
    return api_path("projects", project, "flags", flag, "environments", env)


def table(out: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in out.splitlines()]


# --- projects and environments ------------------------------------------------------------


def test_projects_create_list_show(cli: Cli) -> None:
    key = f"p-{uuid.uuid4().hex[:10]}"
    created = cli("projects", "create", key, "--name", "Shop", "--description", "the shop")
    assert (created.code, created.out, created.err) == (
        0,
        f"created project {key} (version 1)\n",
        "",
    )
    listed = cli("projects", "list")
    assert table(listed.out)[0] == ["KEY", "NAME", "VERSION", "DESCRIPTION"]
    assert [key, "Shop", "1", "the shop"] in table(listed.out)
    assert key in [p["key"] for p in cli("projects", "list", "--json").json["items"]]
    shown = cli("projects", "show", key)
    assert shown.out.splitlines()[:3] == [
        f"project:      {key}",
        "name:         Shop",
        "description:  the shop",
    ]
    assert shown.out.splitlines()[-1] == "(none)"


def test_envs_create_list_and_protect(cli: Cli) -> None:
    key = f"p-{uuid.uuid4().hex[:10]}"
    cli("projects", "create", key)
    created = cli("envs", "create", key, "production", "--protected")
    assert created.out == f"created environment production in {key} (protected)\n"
    assert cli("envs", "create", key, "staging").out == f"created environment staging in {key}\n"
    envs = cli("envs", "list", key, "--json").json["items"]
    assert [(e["key"], e["protected"]) for e in envs] == [("production", True), ("staging", False)]
    protected = cli("envs", "protect", key, "staging", "--reason", "freeze")
    assert protected.out == f"environment staging in {key} is protected (version 2)\n"
    # Unprotecting loosens governance: it waits for a project approver (exit 9).
    unprotected = cli("envs", "protect", key, "staging", "--off", "--reason", "thaw")
    assert unprotected.code == 9, unprotected.err
    assert unprotected.out.startswith("change request ")
    assert "needs 1 approval (governance-change-needs-approval)" in unprotected.out
    envs = cli("envs", "list", key, "--json").json["items"]
    assert [e["protected"] for e in envs if e["key"] == "staging"] == [True]
    assert table(cli("envs", "list", key).out)[1][:3] == ["production", "production", "yes"]


def test_creating_an_existing_project_is_a_conflict(cli: Cli, project: str) -> None:
    again = cli("projects", "create", project)
    assert again.code == 7
    assert again.err == f"lockgate: error: project {project!r} already exists\n"


# --- flags --------------------------------------------------------------------------------


def test_flag_create_show_and_list_filters(cli: Cli, project: str) -> None:
    variations = '[{"key": "new", "value": "v2"}, {"key": "old", "value": "v1"}]'
    created = cli(
        "flags", "create", project, "checkout", "--kind", "string", "--variations", variations,
        "--owner", "team-a", "--tag", "ui", "--tag", "beta", "--risk-tier", "medium",
    )  # fmt: skip
    assert created.out.splitlines() == [
        "created flag checkout (string, medium risk)",
        "variations: new, old — off in every environment",
    ]
    flag = cli("flags", "show", project, "checkout", "--json").json
    assert (flag["kind"], flag["owner"], flag["tags"]) == ("string", "team-a", ["ui", "beta"])
    assert {env: c["on"] for env, c in flag["environments"].items()} == {
        "production": False,
        "staging": False,
    }
    shown = table(cli("flags", "show", project, "checkout").out)
    assert ["variations:", "new,old"] in shown
    assert ["production", "no", "1", "old", "0", "0", "old"] in shown

    def keys(*options: str) -> list[str]:
        return [f["key"] for f in cli("flags", "list", project, *options, "--json").json["items"]]

    assert keys() == ["agent", "checkout"]
    assert keys("--tag", "beta") == ["checkout"]
    assert keys("--risk-tier", "high") == ["agent"]
    assert keys("--owner", "team-a") == ["checkout"]
    assert keys("--search", "checkout") == ["checkout"]
    listed = table(cli("flags", "list", project, "--env", "staging").out)
    assert listed[0] == ["KEY", "KIND", "RISK", "OWNER", "TAGS", "ON", "VERSION", "DEFAULT"]
    assert listed[1] == ["agent", "mode", "high", "-", "-", "no", "1", "off"]
    everywhere = table(cli("flags", "list", project).out)
    assert everywhere[1][-1] == "production:off staging:off"


def test_flags_list_follows_next_cursor_unless_limited(
    cli: Cli, project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(4):
        assert cli("flags", "create", project, f"f{i}", "--kind", "boolean").code == 0
    monkeypatch.setattr(http, "PAGE_SIZE", 2)
    page = cli("flags", "list", project, "--json").json
    assert [f["key"] for f in page["items"]] == ["agent", "f0", "f1", "f2", "f3"]
    assert (page["total"], page["next_cursor"]) == (5, None)
    limited = cli("flags", "list", project, "--limit", "2")
    assert [row[0] for row in table(limited.out)] == ["KEY", "agent", "f0"]
    assert limited.err == "lockgate: warning: showing 2 of 5 flags (drop --limit for all)\n"


def test_flags_on_off_need_a_reason_and_raise_the_version(cli: Cli, project: str) -> None:
    refused = cli("flags", "on", project, "agent", "--env", "production")
    assert refused.code == 3
    assert refused.err.splitlines() == [
        "lockgate: error: a reason is required to change flag 'agent' in 'production'",
        "  reason: required for changes to high-risk behaviors",
    ]
    on = cli("flags", "on", project, "agent", "--env", "production", "--reason", "internal first")
    assert (on.code, on.out.splitlines()[0]) == (
        0,
        "flag agent in production: ON, default off, version 2",
    )
    off = cli("flags", "off", project, "agent", "--env", "production", "--reason", "pause")
    assert off.out.splitlines() == [
        "flag agent in production: OFF, default off, version 3",
        "  reduction: applied at once (reduction-immediate)",
    ]
    production = cli("flags", "show", project, "agent", "--json").json["environments"]["production"]
    assert (production["on"], production["version"]) == (False, 3)


def test_set_rollout_writes_a_split_with_the_variation_first(
    cli: Cli, api: ApiClient, project: str
) -> None:
    path = config_path(project, "staging")
    ramp = cli(
        "flags", "set-rollout", project, "agent", "--env", "staging",
        "--variation", "observe", "--percent", "12.5", "--reason", "ramp",
    )  # fmt: skip
    assert ramp.code == 0, ramp.err
    assert ramp.err == (
        "lockgate: warning: flag agent is OFF in staging: the rollout applies once it is on\n"
    )
    assert api.get(path).body["default"] == {
        "split": [{"variation": "observe", "weight": 12500}, {"variation": "off", "weight": 87500}]
    }
    api.patch(path, {"default": {"variation": "off", "bucket_by": "account"}, "reason": "x"},
              version=api.get(path).version)  # fmt: skip
    wider = cli(
        "flags", "set-rollout", project, "agent", "--env", "staging", "--variation", "observe",
        "--percent", "50", "--other", "fallback", "--reason", "wider",
    )  # fmt: skip
    assert wider.out == (
        "flag agent in staging: OFF, default observe 50% / fallback 50%, version 4\n"
    )
    assert api.get(path).body["default"] == {
        "split": [
            {"variation": "observe", "weight": 50000},
            {"variation": "fallback", "weight": 50000},
        ],
        "bucket_by": "account",
    }


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param(["--percent", "150"], "--percent: must be between 0 and 100", id="over"),
        pytest.param(["--percent", "-1"], "--percent: must be between 0 and 100", id="negative"),
        pytest.param(
            ["--percent", "1.2345"], "--percent: at most 3 decimals (steps of 0.001 %)", id="fine"
        ),
        pytest.param(
            ["--percent", "5", "--other", "observe"],
            "--other: must differ from --variation ('observe')",
            id="same",
        ),
    ],
)
def test_set_rollout_refuses_bad_arguments(
    cli: Cli, project: str, options: list[str], message: str
) -> None:
    done = cli(
        "flags", "set-rollout", project, "agent", "--env", "staging", "--variation", "observe",
        "--reason", "r", *options,
    )  # fmt: skip
    assert (done.code, done.out, done.err) == (2, "", f"lockgate: error: {message}\n")


def test_serve_history_and_revert(cli: Cli, api: ApiClient, project: str) -> None:
    env = ["--env", "staging"]
    assert cli("flags", "on", project, "agent", *env, "--reason", "go").code == 0
    served = cli("flags", "serve", project, "agent", *env, "--variation", "full", "--reason", "all")
    assert served.out.splitlines() == [
        "flag agent in staging: ON, default full, version 3",
        "  expansion: allowed directly (posture: direct)",
    ]
    history = table(cli("flags", "history", project, "agent", *env).out)
    assert history[0] == ["VERSION", "WHEN", "BY", "ON", "DEFAULT", "REASON"]
    assert [(row[0], row[2], row[3], row[4], row[5]) for row in history[1:]] == [
        ("3", "admin", "yes", "full", "all"),
        ("2", "admin", "yes", "off", "go"),
        ("1", "admin", "no", "off", "new agent"),
    ]
    reverted = cli("flags", "revert", project, "agent", *env, "--to", "2", "--reason", "undo")
    assert reverted.out.splitlines() == [
        "flag agent in staging: ON, default off, version 4",
        "  reduction: applied at once (reduction-immediate)",
    ]
    config = api.get(config_path(project, "staging")).body
    assert (config["on"], config["default"], config["version"]) == (True, {"variation": "off"}, 4)
    missing = cli("flags", "revert", project, "agent", *env, "--to", "99", "--reason", "x")
    assert missing.code == 6
    assert (
        missing.err == "lockgate: error: flag 'agent' has no version 99 in environment 'staging'\n"
    )


def test_a_stale_version_is_refused_with_exit_7(cli: Cli, api: ApiClient, project: str) -> None:
    path = config_path(project, "staging")
    before = cli("flags", "show", project, "agent", "--json").json["environments"]["staging"]
    stale = api.get(path)
    assert cli("flags", "on", project, "agent", "--env", "staging", "--reason", "go").code == 0
    after = cli("flags", "show", project, "agent", "--json").json["environments"]["staging"]
    assert (before["version"], after["version"]) == (1, 2)
    with pytest.raises(CliError) as conflict:
        api.patch(path, {"on": False, "reason": "stale view"}, version=stale.version)
    assert conflict.value.code == 7
    assert conflict.value.message == (
        "flag 'agent' in 'staging' was changed by someone else (version 2, you sent 1); "
        "reload it and retry"
    )
    with pytest.raises(CliError) as unconditional:
        api.patch(path, {"on": False, "reason": "blind write"})
    assert unconditional.value.code == 7
    assert unconditional.value.message.startswith("send If-Match with the version you last read")
    assert api.get(path).body["on"] is True


def test_invalid_configuration_exits_3_naming_the_field(
    cli: Cli, project: str, tmp_path: Path
) -> None:
    rule = {
        "id": "corp",
        "clauses": [{"attribute": "email", "op": "endz", "values": ["@corp.example"]}],
        "serve": {"variation": "full"},
    }
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"rules": [rule]}), encoding="utf-8")
    done = cli(
        "flags", "configure", project, "agent", "--env", "staging", "--config", f"@{config}",
        "--reason", "typo",
    )  # fmt: skip
    assert done.code == 3
    lines = done.err.splitlines()
    assert lines[0] == "lockgate: error: the change would make the configuration invalid"
    assert lines[1].startswith("  rules[0].clauses[0].op: unknown operator 'endz'; expected one of")
    assert len(lines) == 2
    unknown = cli(
        "flags", "configure", project, "agent", "--env", "staging",
        "--config", '{"bogus": 1}', "--reason", "x",
    )  # fmt: skip
    assert (unknown.code, unknown.err.splitlines()[1:]) == (
        3,
        ["  bogus: unknown or read-only field"],
    )


def test_flags_configure_changes_rules(cli: Cli, api: ApiClient, project: str) -> None:
    rule = {
        "id": "corp",
        "clauses": [{"attribute": "email", "op": "ends_with", "values": ["@corp.example"]}],
        "serve": {"variation": "full"},
    }
    done = cli(
        "flags", "configure", project, "agent", "--env", "staging",
        "--config", json.dumps({"on": True, "rules": [rule]}), "--reason", "corp first", "--json",
    )  # fmt: skip
    assert (done.json["rules"], done.json["on"], done.json["version"]) == ([rule], True, 2)
    assert api.get(config_path(project, "staging")).body["rules"] == [rule]


def test_flags_eval_on_the_server(cli: Cli, server: Server, project: str) -> None:
    requires(server, EVALUATE)
    env = ["--env", "staging"]
    cli("flags", "configure", project, "agent", *env, "--reason", "r", "--config",
        '{"on": true, "default": {"variation": "observe"}}')  # fmt: skip
    done = cli("flags", "eval", project, "agent", *env, "--context", '{"key": "u1"}')
    assert (done.code, done.out.splitlines()) == (
        0,
        ['value:     "observe"', "variation: observe", "reason:    FALLTHROUGH", "version:   2"],
    )
    as_json = cli("flags", "eval", project, "agent", *env, "--context", '{"key": "u1"}', "--json")
    assert (as_json.json["value"], as_json.json["reason"]) == ("observe", "FALLTHROUGH")
    missing = cli("flags", "eval", project, "nope", *env, "--context", "{}", "--default", '"d"')
    assert missing.code == 1
    assert missing.out.splitlines()[0] == 'value:     "d"'
    assert "(error FLAG_NOT_FOUND)" in missing.out


def test_flags_eval_without_the_endpoint_says_so(cli: Cli, server: Server, project: str) -> None:
    elsewhere = f"{server.url}/no-such-prefix"
    done = cli(
        "flags", "eval", project, "agent", "--env", "staging", "--context", "{}", "--url", elsewhere
    )
    assert done.code == 6
    assert done.err == (
        f"lockgate: error: this lockgate server ({elsewhere}) has no evaluation endpoint; "
        "evaluate locally with `lockgate eval --snapshot FILE`\n"
    )


def test_flags_eval_refuses_a_context_that_is_not_an_object(cli: Cli, project: str) -> None:
    done = cli("flags", "eval", project, "agent", "--env", "staging", "--context", "[1]")
    assert (done.code, done.err) == (
        2,
        'lockgate: error: --context: expected a JSON object such as {"key": "user-1"}\n',
    )


# --- failures: where the server is, who the caller is, what exists ------------------------


def test_unreachable_server_exits_8(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("LOCKGATE_URL", url)
    done = cli("projects", "list")
    assert (done.code, done.out) == (8, "")
    assert done.err == (
        f"lockgate: error: cannot reach lockgate at {url}: connection refused "
        "(set LOCKGATE_URL or --url)\n"
    )


def test_url_option_overrides_the_environment(cli: Cli, server: Server) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert cli("projects", "list", "--url", url).code == 8
    assert cli("projects", "list", "--url", server.url).code == 0


def test_bad_token_exits_5(cli: Cli) -> None:
    done = cli("projects", "list", "--token", "lgt_not-a-real-token")
    assert (done.code, done.out, done.err) == (5, "", "lockgate: error: invalid API token\n")


def test_missing_token_exits_5_with_a_hint(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOCKGATE_TOKEN")
    done = cli("projects", "list")
    assert done.code == 5
    assert done.err.splitlines()[-1] == "  (no API token: set LOCKGATE_TOKEN or pass --token)"


def test_unknown_objects_exit_6(cli: Cli, project: str) -> None:
    done = cli("flags", "show", project, "nope")
    assert (done.code, done.err) == (
        6,
        f"lockgate: error: flag 'nope' not found in project {project!r}\n",
    )
    assert cli("envs", "list", "no-such-project").code == 6


def test_requests_are_marked_as_cli_with_a_request_id(
    cli: Cli, server: Server, api: ApiClient, project: str
) -> None:
    requires(server, AUDIT)
    entries = api.get(api_path("audit"), {"project": project, "order": "asc"}).body["items"]
    assert {e["source"] for e in entries} == {"cli"}
    ids = [e["request_id"] for e in entries]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)


# --- segments -----------------------------------------------------------------------------


def test_segments_create_list_show_delete(cli: Cli, server: Server, project: str) -> None:
    requires(server, SEGMENTS)
    created = cli(
        "segments", "create", project, "beta", "--include", "u1", "u2", "--reason", "beta users"
    )
    assert created.out == f"created segment beta in {project}\n"
    assert table(cli("segments", "list", project).out)[1] == [
        "beta", "beta", "key", "2", "0", "0", "1",
    ]  # fmt: skip
    shown = cli("segments", "show", project, "beta", "--json").json
    assert (shown["included"], shown["version"]) == (["u1", "u2"], 1)
    deleted = cli("segments", "delete", project, "beta", "--reason", "done")
    assert (deleted.code, deleted.out) == (0, f"deleted segment beta from {project}\n")
    assert cli("segments", "show", project, "beta").code == 6


# --- audit tail and list ------------------------------------------------------------------


def audit_is_wired() -> bool:
    """Whether ``lockgate audit`` (owned by audit_cmds) has this module's tail and list."""
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            args = build_parser().parse_args(["audit", "list"])
    except SystemExit:
        return False
    run = getattr(args, "run", None)
    return run is not None and inspect.unwrap(run) is audit_http_cmds.run_list


@pytest.fixture
def audit(cli: Cli, server: Server, capsys: pytest.CaptureFixture[str]) -> Cli:
    """``lockgate audit …``; through ``main`` once wired, else through a parser of its own."""
    requires(server, AUDIT)
    if audit_is_wired():
        return lambda *argv: cli("audit", *argv)
    parser = argparse.ArgumentParser(prog="lockgate audit")
    audit_http_cmds.add_http_audit_commands(parser.add_subparsers())

    def run(*argv: str) -> Run:
        args = parser.parse_args(list(argv))
        try:
            code = args.run(args)
        except CliError as exc:
            print(f"lockgate: error: {exc.message}", file=sys.stderr)
            code = exc.code
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


def test_audit_commands_are_wired_into_the_audit_group(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert audit_is_wired(), "audit_cmds.register must attach the HTTP audit commands"
    with pytest.raises(SystemExit):
        main(["audit", "--help"])
    commands = re.findall(r"^    (\w+)\s", capsys.readouterr().out, re.MULTILINE)
    assert {"verify", "export", "checkpoints", "tail", "list"} <= set(commands)


def test_audit_list_filters(audit: Cli, cli: Cli, project: str) -> None:
    cli("flags", "on", project, "agent", "--env", "staging", "--reason", "audit me")
    found = audit(
        "list", "--project", project, "--behavior", "agent", "--action", "flag:configured", "--json"
    ).json["items"]
    assert [(e["action"], e["object_key"], e["environment"], e["reason"]) for e in found] == [
        ("flag:configured", "agent", "staging", "audit me")
    ]
    limited = audit("list", "--project", project, "--limit", "1")
    rows = table(limited.out)
    assert rows[0] == ["SEQ", "TIME", "ACTOR", "SOURCE", "ACTION", "OBJECT", "REASON"]
    assert rows[1][2:] == [
        "admin",
        "cli",
        "flag:configured",
        f"{project}/staging flag:agent",
        "audit me",
    ]
    assert limited.err.startswith("more entries: add --cursor ")
    cursor = limited.err.split()[-1]
    second = audit("list", "--project", project, "--limit", "1", "--cursor", cursor, "--json")
    assert second.json["items"][0]["action"] == "flag:created"


def test_audit_tail_prints_the_latest_entries_oldest_first(audit: Cli, project: str) -> None:
    done = audit("tail", "--project", project, "-n", "3")
    lines = done.out.splitlines()
    seqs = [int(line.split()[0].lstrip("#")) for line in lines]
    assert (done.code, len(lines), seqs) == (0, 3, sorted(seqs))
    assert lines[-1].endswith(f"[cli] flag:created {project} flag:agent — new agent")


def test_audit_tail_follow_prints_new_entries_until_ctrl_c(
    audit: Cli, api: ApiClient, project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    naps: list[float] = []
    path = config_path(project, "staging")

    def nap(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 1:
            api.patch(path, {"on": True, "reason": "while following"}, version=1)
        else:
            raise KeyboardInterrupt

    monkeypatch.setattr(audit_http_cmds, "sleep", nap)
    done = audit("tail", "--project", project, "-n", "1", "--follow", "--interval", "0.5")
    assert (done.code, naps) == (130, [0.5, 0.5])
    lines = done.out.splitlines()
    assert len(lines) == 2
    assert "flag:created" in lines[0]
    assert lines[1].endswith(f"flag:configured {project}/staging flag:agent — while following")


# --- identity: users, members, API tokens, SDK keys ---------------------------------------


def test_users_create_list_disable(
    cli: Cli, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    requires(server, USERS)
    name = f"u-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password-42\n"))
    created = cli("users", "create", name, "--display-name", "Ann", "--password-stdin")
    assert (created.code, created.out) == (0, f"created human user {name}\n"), created.err
    bot = cli("users", "create", f"{name}-bot", "--service")
    assert bot.out == f"created service user {name}-bot\n"
    users = {u["username"]: u for u in cli("users", "list", "--json").json["items"]}
    assert users[name]["display_name"] == "Ann"
    assert users[f"{name}-bot"]["kind"] == "service"
    disabled = cli("users", "disable", name, "--reason", "left")
    assert disabled.out == f"disabled user {name}: their sessions and tokens no longer work\n"
    rows = {row[0]: row for row in table(cli("users", "list").out)}
    assert rows[name] == [name, "Ann", "human", "no", "yes"]
    assert rows["admin"] == ["admin", "Administrator", "human", "yes", "no"]


def test_members_set_and_remove(cli: Cli, server: Server, project: str) -> None:
    requires(server, MEMBERS)
    name = f"u-{uuid.uuid4().hex[:8]}"
    assert cli("users", "create", name, "--service").code == 0
    granted = cli("members", "set", project, name, "editor")
    assert (granted.code, granted.out) == (0, f"{name} is editor in {project}\n"), granted.err
    scoped = cli("members", "set", project, name, "approver", "--env", "production")
    assert scoped.out == f"{name} is approver in {project}/production\n", scoped.err
    assert table(cli("members", "list", project).out) == [
        ["USERNAME", "KIND", "ROLE", "ENVIRONMENT", "DISABLED"],
        [name, "service", "editor", "(all)", "no"],
        [name, "service", "approver", "production", "no"],
    ]
    removed = cli("members", "remove", project, name, "--env", "production")
    assert removed.out == f"removed {name} from {project}/production\n", removed.err
    grants = cli("members", "list", project, "--json").json["items"]
    assert [(g["username"], g["role"], g["environment"]) for g in grants] == [
        (name, "editor", None)
    ]


def test_tokens_create_use_and_revoke(cli: Cli, server: Server, project: str) -> None:
    requires(server, TOKENS)
    created = cli("tokens", "create", "ci", "--project", project, "--max-role", "viewer",
                  "--expires-in-days", "7")  # fmt: skip
    assert created.code == 0, created.err
    token = created.out.strip()
    assert "store it now: it is shown once" in created.err
    assert cli("flags", "list", project, "--token", token).code == 0
    assert cli("flags", "on", project, "agent", "--env", "staging", "--reason", "x",
               "--token", token).code == 5  # fmt: skip
    prefix = token.split("_")[1]
    listed = table(cli("tokens", "list").out)
    assert [prefix, "ci", "admin", project, "viewer"] in [row[:5] for row in listed]
    assert cli("tokens", "revoke", prefix).out == f"revoked API token {prefix}\n"
    assert cli("flags", "list", project, "--token", token).code == 5


def test_sdk_keys_create_list_revoke(cli: Cli, server: Server, project: str) -> None:
    requires(server, SDK_KEYS)
    created = cli("sdk-keys", "create", project, "staging", "--kind", "server", "--name", "web")
    assert created.code == 0, created.err
    secret = created.out.strip()
    assert "store it now" in created.err
    keys = cli("sdk-keys", "list", project, "staging", "--json").json["items"]
    assert [(k["kind"], k["name"]) for k in keys] == [("server", "web")]
    prefix = keys[0]["prefix"]
    assert secret.split("_")[1] == prefix
    revoked = cli("sdk-keys", "revoke", project, "staging", prefix)
    assert revoked.out == f"revoked SDK key {prefix}\n", revoked.err


def test_audit_tail_refuses_a_busy_loop(audit: Cli) -> None:
    done = audit("tail", "--follow", "--interval", "0")
    assert (done.code, done.err) == (2, "lockgate: error: --interval: at least 0.1 seconds\n")


# --- the governed change path, as people run it -------------------------------------------


def _person(cli: Cli, monkeypatch: pytest.MonkeyPatch, project: str, role: str) -> tuple[str, str]:
    """A new user with ``role`` in ``project``, logged in: their name and own API token."""
    name = f"{role}-{uuid.uuid4().hex[:6]}"
    password = f"{name}-password-42"
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    assert cli("users", "create", name, "--password-stdin").code == 0
    assert cli("members", "set", project, name, role).code == 0
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    login = cli("login", name, "--password-stdin")
    assert login.code == 0, login.err
    assert "API token created" in login.err
    return name, login.out.strip()


def test_a_high_risk_expansion_in_production_goes_through_approval(
    cli: Cli, server: Server, project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, editor = _person(cli, monkeypatch, project, "editor")
    approver_name, approver = _person(cli, monkeypatch, project, "approver")
    as_editor = ["--token", editor]
    prod = ["--env", "production"]
    # A rollout on a flag that is off serves nobody more: it applies at once.
    staged = cli("flags", "set-rollout", project, "agent", *prod, "--variation", "observe",
                 "--percent", "5", "--reason", "shadow 5 %", *as_editor)  # fmt: skip
    assert staged.code == 0, staged.err
    planned = cli("flags", "on", project, "agent", *prod, "--plan", "--reason", "go", *as_editor)
    assert planned.code == 0
    assert planned.out.startswith("would need 1 approval — expansion")
    # Turning it on is an expansion of a high-risk behavior in production: a change request.
    proposed = cli(
        "flags", "on", project, "agent", *prod, "--reason", "start the rollout", *as_editor
    )
    assert proposed.code == 9, proposed.err
    request_id = re.match(r"change request (\d+) opened", proposed.out)
    assert request_id is not None, proposed.out
    rid = request_id.group(1)
    config = cli("flags", "show", project, "agent", "--json").json["environments"]["production"]
    assert config["on"] is False
    # The editor cannot approve their own request.
    own = cli("approvals", "approve", rid, *as_editor)
    assert own.code == 5
    assert "author" in own.err
    # An edit in between would void an approval: approve, edit, and the approval is gone.
    assert cli("approvals", "approve", rid, "--token", approver).code == 0
    edited = cli("approvals", "edit", rid, "--config", '{"on": true}', "--reason", "same, again",
                 *as_editor)  # fmt: skip
    assert edited.code == 0, edited.err
    assert "earlier approvals are void" in edited.out
    shown = cli("approvals", "show", rid, "--json").json
    assert (shown["state"], shown["revision"], shown["approvals"]) == ("open", 2, [])
    # The approver approves the current revision; the editor applies it.
    approved = cli("approvals", "approve", rid, "--token", approver, "--comment", "guardrails ok",
                   "--hash", shown["change_hash"])  # fmt: skip
    assert approved.out == f"change request {rid}: approved (1 of 1 approval)\n"
    applied = cli("approvals", "apply", rid, *as_editor)
    assert applied.code == 0, applied.err
    config = cli("flags", "show", project, "agent", "--json").json["environments"]["production"]
    assert config["on"] is True
    # Switching it off again is a reduction: immediate, for the same editor.
    off = cli("flags", "off", project, "agent", *prod, "--reason", "errors up", *as_editor)
    assert off.code == 0, off.err
    assert "OFF" in off.out
    # Every step is in the audit log with its reason and the request's id.
    entries = cli("audit", "list", "--project", project, "--limit", "100", "--json").json["items"]
    tagged = [e for e in entries if e["refs"].get("change_request") == int(rid)]
    assert sorted(e["action"] for e in tagged) == sorted([
        "change_request:created", "change_request:approved", "change_request:revised",
        "change_request:approved", "flag:configured", "change_request:applied",
    ])  # fmt: skip
    configured = next(e for e in tagged if e["action"] == "flag:configured")
    assert configured["reason"] == "same, again"
    assert configured["evidence"]["change_request"]["approved_by"] == [approver_name]
    assert any(e["action"] == "flag:configured" and e["reason"] == "errors up" for e in entries)
    data_dir = server.log.parent / "data"
    verified = cli("audit", "verify", "--data-dir", str(data_dir))
    assert verified.code == 0, verified.out + verified.err


# --- runtime approvals ----------------------------------------------------------------------


def test_runtime_approvals_list_show_approve_deny(
    cli: Cli, server: Server, project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    requires(server, "/api/v1/runtime-approvals/{approval_id}/approve")
    made = cli("sdk-keys", "create", project, "production", "--kind", "server", "--json")
    assert made.code == 0, made.err
    key = {"Authorization": f"Bearer {made.json['key']}"}
    ids = []
    for order in ("1042", "1043"):
        body = {
            "behavior": "agent",
            "action": "refund",
            "summary": f"refund order {order}",
            "context": {"key": "user-42", "email": "ann@example.com"},
            "private_attributes": ["email"],
        }
        response = httpx.post(f"{server.url}/sdk/v1/approvals", json=body, headers=key)
        assert response.status_code == 201, response.text
        ids.append(str(response.json()["id"]))
    listed = cli("runtime-approvals", "list", project, "--state", "pending")
    assert listed.code == 0, listed.err
    rows = table(listed.out)
    assert rows[0][:5] == ["ID", "STATE", "ENV", "BEHAVIOR", "ACTION"]
    assert sorted(r[0] for r in rows[1:]) == sorted(ids)
    shown = cli("runtime-approvals", "show", ids[0])
    assert "summary: refund order 1042" in shown.out
    assert "context key: user-42" in shown.out
    assert "ann@example.com" not in shown.out
    assert "private attributes:  email" in shown.out
    # Someone without the role is refused (exit 5); an approver decides.
    _, viewer = _person(cli, monkeypatch, project, "viewer")
    refused = cli("runtime-approvals", "approve", ids[0], "--token", viewer)
    assert refused.code == 5, refused.err
    _, approver = _person(cli, monkeypatch, project, "approver")
    approved = cli(
        "runtime-approvals", "approve", ids[0], "--token", approver, "--comment", "verified"
    )
    assert approved.out == f"runtime approval {ids[0]}: approved (1 of 1 approvals)\n"
    denied = cli("runtime-approvals", "deny", ids[1], "--token", approver, "--json")
    assert denied.json["state"] == "denied"
    again = cli("runtime-approvals", "deny", ids[0], "--token", approver)
    assert again.code == 7, again.err
    by_behavior = cli("runtime-approvals", "list", project, "--behavior", "agent", "--env",
                      "production", "--json")  # fmt: skip
    assert {i["state"] for i in by_behavior.json["items"]} == {"approved", "denied"}
