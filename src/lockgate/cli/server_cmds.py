"""``lockgate serve`` and ``lockgate migrate``: run the server, manage its database."""

from __future__ import annotations

import argparse
import gc
import socket
import sys
from typing import Any

from lockgate.cli.errors import CliError
from lockgate.cli.extras import require
from lockgate.settings import SETTINGS, Settings, SettingsError, load_settings

__all__ = ["register", "settings_from_args"]

_SERVE_OPTIONS = [s for s in SETTINGS if s.name not in ("bootstrap_admin_token", "metrics_token")]


def _add_setting_options(parser: argparse.ArgumentParser, names: list[str] | None = None) -> None:
    for setting in _SERVE_OPTIONS:
        if names is not None and setting.name not in names:
            continue
        kwargs: dict[str, Any] = {
            "dest": setting.name,
            "default": None,
            "help": f"{setting.help} [{setting.env}]",
        }
        if setting.kind is bool:
            parser.add_argument(setting.flag, action=argparse.BooleanOptionalAction, **kwargs)
        else:
            parser.add_argument(
                setting.flag, type=setting.kind, metavar=setting.name.upper(), **kwargs
            )
    parser.add_argument(
        "--config", metavar="FILE", default=None, help="TOML config file [LOCKGATE_CONFIG]"
    )


def settings_from_args(args: argparse.Namespace) -> Settings:
    flags = {s.name: getattr(args, s.name, None) for s in SETTINGS}
    try:
        return load_settings(flags=flags, config_file=getattr(args, "config", None))
    except SettingsError as exc:
        raise CliError(str(exc)) from None


def register(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the lockgate server",
        description="Run the lockgate server (SQLite in --data-dir unless --database-url).",
    )
    _add_setting_options(serve)
    serve.set_defaults(run=run_serve)
    mig = commands.add_parser("migrate", help="apply database migrations and exit")
    _add_setting_options(mig, ["data_dir", "database_url"])
    mig.set_defaults(run=run_migrate)


def _database_label(settings: Settings) -> str:
    if settings.is_sqlite:
        return f"SQLite at {settings.data_path / 'lockgate.db'}"
    url = settings.database_url
    return "PostgreSQL at " + url.split("@")[-1] if "@" in url else url


def run_migrate(args: argparse.Namespace) -> int:
    require("server", "sqlalchemy", "alembic")
    from lockgate.store import migrate
    from lockgate.store.db import Database

    settings = settings_from_args(args)
    database = Database(settings.effective_database_url)
    try:
        migrate.upgrade(database)
        revision = migrate.current_revision(database)
    except Exception as exc:
        raise CliError(f"cannot migrate {_database_label(settings)}: {exc}") from None
    finally:
        database.dispose()
    print(f"database schema is current (revision {revision}) — {_database_label(settings)}")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    require("server", "fastapi", "uvicorn", "sqlalchemy")
    import uvicorn

    from lockgate.api.app import build_services, create_app
    from lockgate.control.identity.bootstrap import ensure_admin
    from lockgate.errors import LockgateError

    settings = settings_from_args(args)
    listener = _listen(settings.host, settings.port)
    try:
        services = build_services(settings)
        result = ensure_admin(services, settings.bootstrap_admin_token)
    except LockgateError as exc:
        listener.close()
        raise CliError(exc.detail) from None
    except Exception as exc:
        listener.close()
        raise CliError(f"cannot open {_database_label(settings)}: {exc}") from None
    url = settings.public_url or f"http://{settings.host}:{settings.port}"
    _print_bootstrap(result, url)
    print(f"lockgate {_version()} listening on {url} — {_database_label(settings)}", flush=True)
    print(f"API docs: {url}/docs · health: {url}/healthz · readiness: {url}/readyz", flush=True)
    _log_to_stderr(settings.log_level)
    app = create_app(settings, services)
    _settle_memory()
    # On SIGTERM (or SIGINT) uvicorn stops accepting connections, closes idle keep-alive
    # connections, lets requests in progress finish (for at most shutdown_timeout_seconds)
    # and then runs the application's shutdown; the delivery hub ends every SDK stream at
    # the signal, so SDKs reconnect (to another replica) at once (docs/configuration.md).
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        timeout_graceful_shutdown=settings.shutdown_timeout_seconds or None,
    )
    uvicorn.Server(config).run(sockets=[listener])
    return 0


def _log_to_stderr(level: str) -> None:
    """Log lines on standard error, one message per line: lockgate's own (the
    ``lockgate.*`` loggers: MCP tool calls, webhook deliveries) at the server's level,
    other libraries' warnings and errors only. A handler on the root logger also keeps
    libraries from installing their own (the MCP SDK would, at level info)."""
    import logging

    from uvicorn.config import LOG_LEVELS

    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.WARNING)
    logging.getLogger("lockgate").setLevel(LOG_LEVELS.get(level.lower(), logging.INFO))


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything claims the server is up."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise CliError(f"--host: cannot resolve {host!r}: {exc.strerror}") from None
    family, kind, proto, _name, address = infos[0]
    listener = socket.socket(family, kind, proto)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(address)
        listener.listen(2048)
    except OSError as exc:
        listener.close()
        raise CliError(f"cannot listen on {host}:{port}: {_bind_reason(exc)}") from None
    listener.set_inheritable(True)
    return listener


def _bind_reason(exc: OSError) -> str:
    import errno

    if exc.errno == errno.EADDRINUSE:
        return "the port is already in use (stop the other server or use --port)"
    if exc.errno == errno.EACCES:
        return "permission denied (ports below 1024 need privileges; use --port)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return "this machine has no such address (use --host)"
    return exc.strerror or str(exc)


def _settle_memory() -> None:
    """Move everything loaded so far out of the cyclic garbage collector's sight.

    Modules, routes, schemas and the database engine live as long as the process; without
    this, every full collection walks them all again, which on this server showed as
    pauses of 100-200 ms in the middle of a change fanning out to thousands of streams.
    """
    gc.collect()
    gc.freeze()


def _version() -> str:
    from lockgate import __version__

    return __version__


def _print_bootstrap(result: Any, url: str) -> None:
    if not result.created:
        return
    out = sys.stdout
    print("=" * 72, file=out)
    print("First start: created the administrator account. Shown once — store it now.", file=out)
    if result.used_configured_token:
        print(
            "  user:      admin (log in with the token from LOCKGATE_BOOTSTRAP_ADMIN_TOKEN)",
            file=out,
        )
    else:
        print(f"  user:      {result.username}", file=out)
        print(f"  password:  {result.password}", file=out)
        print(f"  API token: {result.token}", file=out)
        print(
            f"  try:       LOCKGATE_URL={url} LOCKGATE_TOKEN={result.token} "
            f"{_own_command()} projects list",
            file=out,
        )
    print("=" * 72, file=out, flush=True)


def _own_command() -> str:
    """How to run this same ``lockgate`` again (``.venv/bin/lockgate`` when not on PATH)."""
    import os
    import shutil

    invoked = sys.argv[0] if sys.argv and sys.argv[0].endswith("lockgate") else ""
    if not invoked or shutil.which("lockgate") == os.path.abspath(invoked):
        return "lockgate"
    return os.path.relpath(invoked)
