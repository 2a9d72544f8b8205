"""Flag configuration writes checked against the cached stored snapshot.

``check_flag_update`` validates a configuration change at the cost of that flag, from the
environment's committed snapshot kept in ``Services.snapshot_cache``. These tests hold it
to what a full rebuild from the store gives, on both databases: same document, same
refusals, and nothing cached from a transaction that did not commit.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from lockgate.control.base import Services, system_caller
from lockgate.control.configuration import flags as flag_use
from lockgate.control.configuration import projects as project_use
from lockgate.control.configuration import snapshots
from lockgate.engine import decode, encode
from lockgate.errors import InvalidInput
from lockgate.store.tables import environments

CALLER = system_caller("snapshot-test")


def _setup(services: Services) -> int:
    project_use.create_project(services, CALLER, "shop", "Shop")
    project_use.create_environment(services, CALLER, "shop", "prod")
    for key in ("a", "b", "c"):
        flag_use.create_flag(services, CALLER, "shop", {"key": key, "kind": "boolean"})
    with services.view() as conn:
        return int(
            conn.execute(select(environments.c.id).where(environments.c.key == "prod")).scalar_one()
        )


def _configure(services: Services, key: str, **changes: Any) -> None:
    version = flag_use.get_flag(services, CALLER, "shop", key)["environments"]["prod"]["version"]
    flag_use.update_flag_config(services, CALLER, "shop", key, "prod", changes, version)


def _stored(services: Services, environment_id: int) -> dict[str, Any]:
    with services.view() as conn:
        return snapshots.build_snapshot(conn, environment_id)


def _cached(services: Services, environment_id: int, version: int) -> snapshots.StoredSnapshot:
    cached = services.snapshot_cache.get(environment_id, version)
    assert isinstance(cached, snapshots.StoredSnapshot), f"nothing cached at version {version}"
    return cached


def test_updates_cache_exactly_what_is_stored(services: Services) -> None:
    environment_id = _setup(services)
    _configure(services, "a", on=True)
    _configure(services, "a", default={"variation": "on"})
    _configure(services, "b", prerequisites=[{"flag": "a", "variation": "on"}], on=True)
    stored = _stored(services, environment_id)
    cached = _cached(services, environment_id, stored["version"])
    assert cached.document == stored
    assert encode(cached.snapshot) == encode(decode(stored))


def test_a_write_elsewhere_is_seen_by_the_next_update(services: Services) -> None:
    environment_id = _setup(services)
    _configure(services, "a", on=True)  # caches the environment
    flag_use.create_flag(services, CALLER, "shop", {"key": "d", "kind": "boolean"})
    _configure(services, "a", on=False)  # the stored version moved: rebuilt, not stale
    stored = _stored(services, environment_id)
    assert "d" in stored["flags"]
    assert _cached(services, environment_id, stored["version"]).document == stored


def test_a_refused_update_is_refused_as_a_full_check_would(services: Services) -> None:
    environment_id = _setup(services)
    _configure(services, "a", prerequisites=[{"flag": "b", "variation": "on"}])
    before = _stored(services, environment_id)
    with pytest.raises(InvalidInput) as refused:  # b -> a -> b
        _configure(services, "b", prerequisites=[{"flag": "a", "variation": "on"}])
    assert any("cycle" in problem.message for problem in refused.value.problems)
    with pytest.raises(InvalidInput) as unknown:
        _configure(services, "c", default={"variation": "maybe"})
    assert [problem.field for problem in unknown.value.problems] == ["default.variation"]
    after = _stored(services, environment_id)
    assert after == before  # nothing written
    assert services.snapshot_cache.get(environment_id, before["version"] + 1) is None


def test_nothing_is_cached_from_a_transaction_that_rolls_back(services: Services) -> None:
    environment_id = _setup(services)
    version = _stored(services, environment_id)["version"]
    doc = dict(_stored(services, environment_id)["flags"]["a"], on=True, version=99)

    def check_then_fail() -> None:
        with services.change() as tx:
            checked = snapshots.check_flag_update(tx, environment_id, version, "a", doc)
            checked.remember(tx)
            raise RuntimeError("something later in the same transaction failed")

    with pytest.raises(RuntimeError):
        check_then_fail()
    assert services.snapshot_cache.get(environment_id, version + 1) is None
    assert _stored(services, environment_id)["version"] == version
