"""The server publishes each checkpoint to the anchor file once its change has committed."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lockgate.api.app import build_services, create_app
from lockgate.control.identity.bootstrap import ensure_admin
from lockgate.errors import LockgateError
from lockgate.settings import Settings
from lockgate.store.checkpoints import read_checkpoint_file, read_checkpoints
from tests.api.helpers import bearer


def test_committed_checkpoints_are_appended_to_the_anchor_file(tmp_path: Path) -> None:
    anchors = tmp_path / "anchors" / "audit.jsonl"
    settings = Settings(
        data_dir=str(tmp_path / "data"),
        audit_checkpoint_every=2,
        audit_anchor_file=str(anchors),
    )
    services = build_services(settings)
    token = ensure_admin(services).token  # entry 1
    assert token is not None
    try:
        with TestClient(create_app(settings, services), headers=bearer(token)) as client:
            for key in ("a", "b", "c"):  # entries 2 to 4
                assert client.post("/api/v1/projects", json={"key": key}).status_code == 201
            r = client.post("/api/v1/projects", json={"key": "a"})  # refused: no entry
            assert r.status_code == 409
        with services.view() as conn:
            stored = read_checkpoints(conn)
        anchored = read_checkpoint_file(anchors)
        assert [c.seq for c in anchored] == [c.seq for c in stored] == [2, 4]
        assert [c.signature for c in anchored] == [c.signature for c in stored]
        assert {c.public_key_pem for c in anchored} == {services.signer.public_key_pem}
    finally:
        services.database.dispose()


def test_an_anchor_file_inside_the_data_directory_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = Settings(data_dir=str(data), audit_anchor_file=str(data / "anchors.jsonl"))
    with pytest.raises(LockgateError, match="is inside data_dir"):
        build_services(settings)
