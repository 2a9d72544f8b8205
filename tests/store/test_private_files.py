"""The embedded database and its data directory are readable by their owner only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sqlalchemy import text

from lockgate.api.app import build_services
from lockgate.settings import Settings


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_data_dir_database_and_key_are_owner_only(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)  # the usual default: files world-readable unless told
    try:
        data = tmp_path / "nested" / "data"
        services = build_services(Settings(data_dir=str(data)))
        with services.database.write() as conn:
            conn.execute(text("CREATE TABLE probe (x INTEGER)"))
    finally:
        os.umask(old_umask)
    try:
        assert _mode(tmp_path / "nested") == 0o700
        assert _mode(data) == 0o700
        files = sorted(p.name for p in data.iterdir())
        assert "lockgate.db" in files
        for name in files:  # the database, its WAL and shared memory, the signing key
            assert _mode(data / name) == 0o600, name
    finally:
        services.database.dispose()


def test_an_existing_directory_keeps_its_mode(tmp_path: Path) -> None:
    data = tmp_path / "shared"
    data.mkdir(mode=0o750)
    data.chmod(0o750)
    services = build_services(Settings(data_dir=str(data)))
    services.database.dispose()
    assert _mode(data) == 0o750
    assert _mode(data / "lockgate.db") == 0o600
