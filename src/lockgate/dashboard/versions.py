"""A behavior's earlier versions per environment, with their audit entries, and reverting.

Reverting goes through the same use-case as ``POST …/environments/{env}/revert``: the
earlier configuration becomes a new version, classified like any change (a revert to a
wider version is an expansion and may become a change request; a narrowing applies at
once). The page shows the outcome.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from lockgate.control.base import Caller, Services
from lockgate.control.configuration import flags as flag_use
from lockgate.control.evidence import audit_query
from lockgate.dashboard.actions import _governed, _integer, _required, _where
from lockgate.dashboard.session import Viewer
from lockgate.dashboard.web import acting, services_of

__all__ = ["VERSIONS_SHOWN", "audit_of_versions", "revert"]

VERSIONS_SHOWN = 10
"""Earlier versions listed per environment on the Behavior page."""


def audit_of_versions(
    svc: Services,
    caller: Caller,
    project: str,
    key: str,
    history: dict[str, list[dict[str, Any]]],
) -> dict[int, dict[str, Any]]:
    """The audit entries that made the versions in ``history``, by their ``seq``.

    One read of the behavior's entries from the oldest version shown on (at most a page:
    a version whose entry is further away is shown with its sequence number only).
    """
    wanted = {int(h["audit_seq"]) for items in history.values() for h in items if h["audit_seq"]}
    if not wanted:
        return {}
    query = audit_query.AuditQuery(
        project=project,
        behavior=key,
        after_seq=min(wanted) - 1,
        order="asc",
        limit=audit_query.MAX_LIMIT,
    )
    found = audit_query.query_audit(svc, caller, query)["items"]
    return {e["seq"]: e for e in found if e["seq"] in wanted}


@acting
def revert(request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
    """Make an earlier version of one environment's configuration current again."""
    project, key = _where(request)
    result = flag_use.revert_flag(
        services_of(request),
        viewer.caller,
        project,
        key,
        _required(form, "environment"),
        _integer(form, "to_version"),
        _integer(form, "version"),
        _required(form, "reason"),
    )
    return _governed(form, result, "reverted")
