"""The dashboard's browser tests that matter most, again against ``lockgate serve`` on a real
PostgreSQL database: logging in, the kill switch reaching an SDK, a second user approving,
and a contract applied into a change request.

The tests are the SQLite ones (tests/dashboard/test_browser*.py), collected here a second
time; only the module's server differs. One database and one server for the module.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import scratch_pg_database
from tests.dashboard import test_browser, test_browser_actions
from tests.delivery.servers import LockgateServer, lockgate_server

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A fresh PostgreSQL database for the module (dropped afterwards); its URL."""
    with scratch_pg_database() as url:
        yield url


@pytest.fixture(scope="module")
def server(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LockgateServer]:
    """``lockgate serve`` on that database."""
    data = Path(tmp_path_factory.mktemp("dashboard-pg")) / "data"
    with lockgate_server(data, database_url=database) as running:
        yield running


test_log_in_on_postgres = test_browser.test_log_in_and_see_every_environment_side_by_side
test_kill_switch_on_postgres = (
    test_browser.test_the_kill_switch_serves_the_fallback_to_a_connected_sdk
)
test_approval_on_postgres = test_browser.test_a_second_user_approves_what_the_first_proposed
test_contract_apply_on_postgres = (
    test_browser_actions.test_a_contract_loaded_planned_and_applied_opens_a_change_request
)


def test_what_the_pages_did_is_in_postgresql(database: str) -> None:
    with psycopg.connect(database) as conn:
        row = conn.execute(
            "SELECT count(*) FROM audit_log WHERE source = 'dashboard' AND action IN "
            "('flag:killed', 'change_request:approved', 'contract:applied')"
        ).fetchone()
    assert row is not None
    assert row[0] >= 3
