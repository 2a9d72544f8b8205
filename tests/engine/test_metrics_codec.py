"""The snapshot's ``metrics``: which behaviors a tracked metric belongs to."""

from __future__ import annotations

from typing import Any

import pytest

from lockgate.engine import SnapshotError
from lockgate.engine.codec import MAX_METRIC_BEHAVIORS, decode, encode
from lockgate.engine.model import MetricBinding
from tests.engine.factories import bool_flag, snapshot_doc


def _doc(metrics: Any) -> dict[str, Any]:
    return snapshot_doc({"f": bool_flag("f")}) | {"metrics": metrics}


def test_metrics_decode_in_both_forms_and_encode_back() -> None:
    doc = _doc({"errors": ["f", "f", "g"], "cost": {"behaviors": ["f"], "cohort": "account"}})
    snapshot = decode(doc)
    assert snapshot.metrics == {
        "errors": MetricBinding(("f", "g")),
        "cost": MetricBinding(("f",), "account"),
    }
    assert encode(snapshot)["metrics"] == {
        "errors": {"behaviors": ["f", "g"]},
        "cost": {"behaviors": ["f"], "cohort": "account"},
    }
    assert decode(encode(snapshot)).metrics == snapshot.metrics


def test_a_snapshot_without_metrics_encodes_without_the_field() -> None:
    doc = snapshot_doc({"f": bool_flag("f")})
    assert "metrics" not in encode(decode(doc))


@pytest.mark.parametrize(
    ("metrics", "where"),
    [
        ({"bad name": ["f"]}, "metrics.bad name"),
        ({"errors": {"behaviors": [1]}}, "metrics.errors.behaviors[0]"),
        ({"errors": {"behaviors": ["f"], "cohort": "1x"}}, "metrics.errors.cohort"),
        ({"errors": {"behaviors": ["f"], "extra": 1}}, "metrics.errors.extra"),
        ({"errors": {"behaviors": ["f"] * (MAX_METRIC_BEHAVIORS + 1)}}, "metrics.errors.behaviors"),
        ({"errors": 3}, "metrics.errors"),
        ([], "metrics"),
    ],
)
def test_bad_metrics_make_the_snapshot_invalid(metrics: Any, where: str) -> None:
    with pytest.raises(SnapshotError) as raised:
        decode(_doc(metrics))
    assert where in [p.path for p in raised.value.problems]
