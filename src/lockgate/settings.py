"""Server settings: one definition, read from flags, ``LOCKGATE_*`` variables or a file.

Precedence: command-line flag > environment variable > config file (TOML) > default.
Every setting is documented in docs/configuration.md; a test checks that the two agree.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

__all__ = [
    "DATABASE_SCHEMES",
    "SETTINGS",
    "Setting",
    "Settings",
    "SettingsError",
    "decision_retention",
    "load_settings",
    "trusted_proxy_list",
]


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class Setting:
    name: str
    kind: type
    default: Any
    help: str

    @property
    def env(self) -> str:
        return f"LOCKGATE_{self.name.upper()}"

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


SETTINGS: tuple[Setting, ...] = (
    Setting("host", str, "127.0.0.1", "address to listen on"),
    Setting("port", int, 8080, "TCP port to listen on"),
    Setting(
        "data_dir", str, "./lockgate-data", "directory for the embedded SQLite database and keys"
    ),
    Setting(
        "database_url",
        str,
        "",
        "SQLAlchemy URL, e.g. postgresql://user@host/db; empty means SQLite in data_dir",
    ),
    Setting(
        "bootstrap_admin_token",
        str,
        "",
        "API token for the first admin, used only while no admin exists",
    ),
    Setting("public_url", str, "", "external URL of this server, used in printed links"),
    Setting("max_body_bytes", int, 1_048_576, "largest accepted request body; larger gets 413"),
    Setting("max_json_depth", int, 32, "deepest accepted JSON nesting in a request body"),
    Setting(
        "body_timeout_seconds",
        int,
        5,
        "seconds a client has to send a request body; slower (or short) bodies get 408",
    ),
    Setting(
        "max_evaluation_work",
        int,
        20_000,
        "operator work units one remote evaluation may take (docs/delivery.md); more gets 413",
    ),
    Setting("session_ttl_hours", int, 12, "lifetime of a dashboard login session"),
    Setting(
        "login_max_failures",
        int,
        5,
        "failed logins for one username from one address before a lock-out",
    ),
    Setting(
        "login_max_user_failures",
        int,
        20,
        "failed logins for one username from any addresses before a lock-out",
    ),
    Setting("login_lockout_seconds", int, 300, "how long a lock-out lasts"),
    Setting("audit_checkpoint_every", int, 100, "sign an audit checkpoint every N entries"),
    Setting("audit_checkpoint_minutes", int, 10, "... or every N minutes when entries were added"),
    Setting(
        "audit_anchor_file",
        str,
        "",
        "append each signed audit checkpoint to this file, outside data_dir (docs/audit.md)",
    ),
    Setting(
        "change_request_ttl_days", int, 7, "days a change request stays open before it expires"
    ),
    Setting("background_job_seconds", int, 30, "seconds between runs of the background jobs"),
    Setting(
        "decision_retention_days",
        int,
        90,
        "days decision records are kept (deleted by the background job; 0: kept forever)",
    ),
    Setting(
        "decision_retention",
        str,
        "",
        "per record kind, days kept instead of decision_retention_days, e.g. "
        "kill_fallback=365,denied=30 (docs/decisions.md)",
    ),
    Setting(
        "guardrail_cycle_seconds",
        int,
        60,
        "seconds between guardrail cycles (evaluate guardrails, act on breaches, advance "
        "staged rollouts); 0 turns the cycle off",
    ),
    Setting(
        "prometheus_url",
        str,
        "",
        "the Prometheus server that guardrails with source prometheus query, e.g. "
        "http://prometheus:9090 (docs/guardrails.md); empty: none",
    ),
    Setting("prometheus_timeout_seconds", int, 5, "seconds one Prometheus query may take"),
    Setting(
        "signals_minute_retention_hours",
        int,
        48,
        "hours metric summaries keep minute resolution before they are rolled up into hours "
        "(docs/guardrails.md; 0: never roll up)",
    ),
    Setting(
        "stale_days",
        int,
        14,
        "days without an evaluation, or of one variation to everyone, that make a temporary "
        "behavior stale in an environment (docs/cleanup.md)",
    ),
    Setting(
        "archive_quiet_days",
        int,
        7,
        "archiving is refused while the behavior was evaluated in the last N days, unless "
        "forced (docs/cleanup.md)",
    ),
    Setting(
        "behavior_lifetimes",
        str,
        "",
        "per kind of behavior, days a temporary one is expected to live instead of the "
        "defaults, e.g. ui_path=14,model_route=45 (docs/cleanup.md)",
    ),
    Setting("stream_heartbeat_seconds", int, 15, "seconds between heartbeats on idle SDK streams"),
    Setting(
        "max_streams",
        int,
        20_000,
        "open SDK streams this process holds at most; more get 503 with Retry-After (0: no cap)",
    ),
    Setting(
        "max_new_streams_per_second",
        int,
        1_000,
        "new SDK streams accepted per second; more get 503 with Retry-After (0: no limit)",
    ),
    Setting(
        "secure_cookies", bool, False, "mark session cookies Secure (set when served over HTTPS)"
    ),
    Setting(
        "database_connect_timeout_seconds",
        int,
        5,
        "seconds to wait for a PostgreSQL connection; when the database is unreachable, "
        "writes fail with 503 after at most this long",
    ),
    Setting(
        "shutdown_timeout_seconds",
        int,
        10,
        "on SIGTERM, seconds in-flight requests get to finish before the server exits",
    ),
    Setting("log_level", str, "info", "server log level"),
    Setting(
        "mcp_http",
        bool,
        True,
        "serve the Model Context Protocol over streamable HTTP at /mcp to automation tokens "
        "(docs/agents.md)",
    ),
    Setting(
        "metrics_token",
        str,
        "",
        "bearer token a scrape of /metrics must send; empty leaves /metrics open",
    ),
    Setting(
        "webhook_allow_private_targets",
        bool,
        False,
        "let webhooks call loopback, private and link-local addresses (local development only)",
    ),
    Setting("webhook_timeout_seconds", int, 10, "seconds each webhook attempt may take"),
    Setting("webhook_max_attempts", int, 10, "attempts of one webhook delivery before it fails"),
    Setting(
        "webhook_max_age_hours", int, 24, "hours after its event a webhook delivery stops retrying"
    ),
    Setting(
        "webhook_backoff_seconds",
        int,
        5,
        "base of the exponential backoff between webhook attempts (full jitter)",
    ),
    Setting("webhook_max_backoff_seconds", int, 3600, "longest backoff between webhook attempts"),
    Setting(
        "webhook_max_retry_after_seconds",
        int,
        3600,
        "longest wait a webhook endpoint's Retry-After is honoured for",
    ),
    Setting(
        "webhook_secret_overlap_hours",
        int,
        24,
        "hours a rotated webhook secret keeps signing beside the new one",
    ),
    Setting("webhook_poll_seconds", int, 2, "seconds between looks for due webhook deliveries"),
    Setting(
        "trusted_proxies",
        str,
        "",
        "comma-separated addresses or networks (CIDR) of reverse proxies whose "
        "X-Forwarded-For and X-Forwarded-Proto headers are believed; empty trusts none",
    ),
)

DATABASE_SCHEMES = ("sqlite", "sqlite+pysqlite", "postgresql", "postgres", "postgresql+psycopg")
"""The kinds of database URL lockgate runs on: SQLite and PostgreSQL (psycopg 3)."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: str = "./lockgate-data"
    database_url: str = ""
    bootstrap_admin_token: str = ""
    public_url: str = ""
    max_body_bytes: int = 1_048_576
    max_json_depth: int = 32
    body_timeout_seconds: int = 5
    max_evaluation_work: int = 20_000
    session_ttl_hours: int = 12
    login_max_failures: int = 5
    login_max_user_failures: int = 20
    login_lockout_seconds: int = 300
    audit_checkpoint_every: int = 100
    audit_checkpoint_minutes: int = 10
    audit_anchor_file: str = ""
    change_request_ttl_days: int = 7
    background_job_seconds: int = 30
    decision_retention_days: int = 90
    decision_retention: str = ""
    guardrail_cycle_seconds: int = 60
    prometheus_url: str = ""
    prometheus_timeout_seconds: int = 5
    signals_minute_retention_hours: int = 48
    stale_days: int = 14
    archive_quiet_days: int = 7
    behavior_lifetimes: str = ""
    stream_heartbeat_seconds: int = 15
    max_streams: int = 20_000
    max_new_streams_per_second: int = 1_000
    secure_cookies: bool = False
    database_connect_timeout_seconds: int = 5
    shutdown_timeout_seconds: int = 10
    log_level: str = "info"
    mcp_http: bool = True
    metrics_token: str = ""
    webhook_allow_private_targets: bool = False
    webhook_timeout_seconds: int = 10
    webhook_max_attempts: int = 10
    webhook_max_age_hours: int = 24
    webhook_backoff_seconds: int = 5
    webhook_max_backoff_seconds: int = 3600
    webhook_max_retry_after_seconds: int = 3600
    webhook_secret_overlap_hours: int = 24
    webhook_poll_seconds: int = 2
    trusted_proxies: str = ""
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_path / 'lockgate.db'}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    def webhook_policy(self) -> Any:
        """The webhook settings as a :class:`lockgate.events.schedule.DeliveryPolicy`."""
        from lockgate.events.schedule import DeliveryPolicy

        return DeliveryPolicy(
            allow_private_targets=self.webhook_allow_private_targets,
            timeout_seconds=float(max(1, self.webhook_timeout_seconds)),
            max_attempts=max(1, self.webhook_max_attempts),
            max_age_seconds=self.webhook_max_age_hours * 3600.0,
            backoff_seconds=float(self.webhook_backoff_seconds),
            max_backoff_seconds=float(self.webhook_max_backoff_seconds),
            max_retry_after_seconds=float(self.webhook_max_retry_after_seconds),
            secret_overlap_seconds=self.webhook_secret_overlap_hours * 3600.0,
        )

    def with_overrides(self, **values: Any) -> Settings:
        return replace(self, **values)


def _convert(setting: Setting, raw: object, source: str) -> Any:
    if setting.kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise SettingsError(f"{source}: {setting.name} must be true or false, got {raw!r}")
    if setting.kind is int:
        if isinstance(raw, bool):
            raise SettingsError(f"{source}: {setting.name} must be an integer, got {raw!r}")
        try:
            value = int(str(raw))
        except ValueError:
            raise SettingsError(
                f"{source}: {setting.name} must be an integer, got {raw!r}"
            ) from None
        if value < 0:
            raise SettingsError(f"{source}: {setting.name} must not be negative")
        return value
    if not isinstance(raw, str):
        raise SettingsError(f"{source}: {setting.name} must be a string, got {raw!r}")
    return raw


def load_settings(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: str | Path | None = None,
) -> Settings:
    """Settings from ``flags`` (None = not given), ``environ`` and an optional TOML file."""
    environ = os.environ if environ is None else environ
    flags = flags or {}
    config_file = config_file or environ.get("LOCKGATE_CONFIG") or None
    from_file: dict[str, Any] = {}
    if config_file:
        try:
            from_file = tomllib.loads(Path(config_file).read_text(encoding="utf-8"))
        except OSError as exc:
            raise SettingsError(f"cannot read config file {config_file}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config file {config_file}: {exc}") from None
        known = {s.name for s in SETTINGS}
        unknown = sorted(set(from_file) - known)
        if unknown:
            raise SettingsError(
                f"config file {config_file}: unknown setting(s) {', '.join(unknown)}"
            )
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for setting in SETTINGS:
        if flags.get(setting.name) is not None:
            values[setting.name] = _convert(setting, flags[setting.name], setting.flag)
            sources[setting.name] = "flag"
        elif setting.env in environ:
            values[setting.name] = _convert(setting, environ[setting.env], setting.env)
            sources[setting.name] = "env"
        elif setting.name in from_file:
            values[setting.name] = _convert(setting, from_file[setting.name], str(config_file))
            sources[setting.name] = "file"
    _check_database_url(values.get("database_url", ""), _source_of("database_url", sources))
    _check_trusted_proxies(values.get("trusted_proxies", ""))
    _check_prometheus_url(values.get("prometheus_url", ""))
    settings = Settings(**values, sources=sources)
    decision_retention(settings)  # refused here, before anything starts
    behavior_lifetimes(settings)
    return settings


def _source_of(name: str, sources: Mapping[str, str]) -> str:
    setting = next(s for s in SETTINGS if s.name == name)
    return {"flag": setting.flag, "env": setting.env}.get(sources.get(name, ""), "config file")


def _check_database_url(url: str, source: str) -> None:
    if not url:
        return
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in DATABASE_SCHEMES:
        shown = f"{scheme}:// URLs" if scheme else f"{url!r} (not a URL)"
        raise SettingsError(
            f"database_url ({source}): lockgate runs on SQLite or PostgreSQL, "
            f"not {shown}; use postgresql://user@host/db, or leave it empty for SQLite "
            "in data_dir"
        )


def _check_prometheus_url(url: str) -> None:
    if url and not url.startswith(("http://", "https://")):
        raise SettingsError(f"prometheus_url: {url!r} is not an http:// or https:// URL")


def _check_trusted_proxies(text: str) -> None:
    import ipaddress

    for item in trusted_proxy_list(text):
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise SettingsError(
                f"trusted_proxies: {item!r} is not an IP address or network (CIDR)"
            ) from None


def trusted_proxy_list(text: str) -> list[str]:
    """The addresses and networks of ``trusted_proxies``, in order."""
    return [item.strip() for item in text.split(",") if item.strip()]


assert {f.name for f in fields(Settings)} - {"sources"} == {s.name for s in SETTINGS}


def decision_retention(settings: Settings) -> dict[str, int]:
    """Days each kind of decision record is kept: the default, then the per-kind list."""
    from lockgate.decisionlog import DecisionKind

    kinds = [kind.value for kind in DecisionKind]
    days = dict.fromkeys(kinds, settings.decision_retention_days)
    for item in filter(None, (part.strip() for part in settings.decision_retention.split(","))):
        kind, sep, number = item.partition("=")
        kind = kind.strip()
        if not sep or kind not in days:
            raise SettingsError(
                f"decision_retention: {item!r} is not KIND=DAYS with KIND one of {', '.join(kinds)}"
            )
        if not number.strip().isdigit():
            raise SettingsError(f"decision_retention: {kind} needs a whole number of days")
        days[kind] = int(number)
    return days


def behavior_lifetimes(settings: Settings) -> dict[str, int]:
    """Days a temporary behavior of each kind is expected to live: defaults, then the list."""
    from lockgate.contracts import BEHAVIOR_KINDS
    from lockgate.lifecycle import DEFAULT_LIFETIME_DAYS

    days = dict(DEFAULT_LIFETIME_DAYS)
    for item in filter(None, (part.strip() for part in settings.behavior_lifetimes.split(","))):
        kind, sep, number = item.partition("=")
        kind = kind.strip()
        if not sep or kind not in BEHAVIOR_KINDS:
            raise SettingsError(
                f"behavior_lifetimes: {item!r} is not KIND=DAYS with KIND one of "
                f"{', '.join(BEHAVIOR_KINDS)}"
            )
        if not number.strip().isdigit() or int(number) < 1:
            raise SettingsError(
                f"behavior_lifetimes: {kind} needs a whole number of days, 1 or more"
            )
        days[kind] = int(number)
    return days
