"""Rendering pages: one Jinja2 environment (autoescaping), security headers on every page."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from lockgate import __version__
from lockgate.dashboard import present
from lockgate.dashboard.session import CSRF_FIELD, Viewer

__all__ = ["SECURITY_HEADERS", "STATIC_DIR", "compile_templates", "page", "redirect", "secure"]

_HERE = Path(str(files("lockgate.dashboard")))
STATIC_DIR = _HERE / "static"

SECURITY_HEADERS = {
    # Everything comes from the app itself: no CDN, no inline script or style.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _since(moment: str | None, now: datetime | None = None) -> str:
    """``2026-01-02T03:04:05.000000Z`` as "3 min ago" (or "in 3 min")."""
    if not moment:
        return ""
    try:
        then = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        return moment
    seconds = int(((now or datetime.now(UTC)) - then).total_seconds())
    ahead = seconds < 0
    seconds = abs(seconds)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min"), (1, "s")):
        if seconds >= size or unit == "s":
            text = f"{seconds // size} {unit}"
            return f"in {text}" if ahead else f"{text} ago"
    return moment  # pragma: no cover - the loop always returns


def _to_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


_env = Environment(
    loader=FileSystemLoader(str(_HERE / "templates")),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["since"] = _since
_env.filters["to_json"] = _to_json
_env.globals.update(
    exposure=present.exposure,
    guardrail_health=present.guardrail_health,
    environment_badge=present.environment_badge,
    percent_of=present.percent_of,
    csrf_field=CSRF_FIELD,
    version=__version__,
)


def compile_templates() -> int:
    """Compile every template now (at start), so that no visitor waits for it."""
    names = _env.list_templates(extensions=["html"])
    for name in names:
        _env.get_template(name)
    return len(names)


def secure(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def page(
    request: Request,
    template: str,
    viewer: Viewer | None,
    *,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render ``template`` for ``viewer`` with ``context``."""
    body = _env.get_template(template).render(
        request=request, viewer=viewer, path=request.url.path, **context
    )
    return secure(HTMLResponse(body, status_code=status))  # type: ignore[return-value]


def redirect(url: str) -> Response:
    return secure(RedirectResponse(url, status_code=303))
