"""Alertmanager's webhook body (version 4) read into alerts."""

from __future__ import annotations

from typing import Any

import pytest

from lockgate.signals.alertmanager import MAX_ALERTS, AlertBodyError, parse

NOTIFICATION: dict[str, Any] = {
    "version": "4",
    "groupKey": '{}:{alertname="CheckoutErrors"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "lockgate",
    "groupLabels": {"alertname": "CheckoutErrors"},
    "commonLabels": {"alertname": "CheckoutErrors", "severity": "page"},
    "commonAnnotations": {"summary": "checkout errors above 5 %"},
    "externalURL": "http://alertmanager.internal:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "CheckoutErrors", "severity": "page", "region": "eu"},
            "annotations": {"summary": "checkout errors above 5 %"},
            "startsAt": "2026-12-05T10:40:00.000Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.internal:9090/graph?g0.expr=...",
            "fingerprint": "c8f4a2b1e9d07f13",
        },
        {
            "status": "resolved",
            "labels": {"alertname": "CheckoutErrors", "region": "us"},
            "annotations": {},
            "startsAt": "2026-12-05T10:00:00.000Z",
            "endsAt": "2026-12-05T10:30:00.000Z",
            "fingerprint": "0a1b2c3d4e5f6071",
        },
    ],
}


def test_a_notification_is_read_into_its_alerts() -> None:
    firing, resolved = parse(NOTIFICATION)
    assert (firing.status, firing.name, firing.fingerprint) == (
        "firing",
        "CheckoutErrors",
        "c8f4a2b1e9d07f13",
    )
    assert firing.labels["region"] == "eu"
    assert firing.episode == "c8f4a2b1e9d07f13@2026-12-05T10:40:00.000Z"
    assert firing.evidence() == {
        "alertname": "CheckoutErrors",
        "status": "firing",
        "labels": {"alertname": "CheckoutErrors", "severity": "page", "region": "eu"},
        "annotations": {"summary": "checkout errors above 5 %"},
        "startsAt": "2026-12-05T10:40:00.000Z",
        "fingerprint": "c8f4a2b1e9d07f13",
    }
    assert resolved.status == "resolved"


def test_an_alert_without_a_fingerprint_gets_one_from_its_labels() -> None:
    body = {"alerts": [{"labels": {"alertname": "A", "x": "1"}}]}
    (first,) = parse(body)
    (again,) = parse({"alerts": [{"labels": {"x": "1", "alertname": "A"}}]})
    assert first.status == "firing"
    assert first.fingerprint == again.fingerprint
    assert len(first.fingerprint) == 16


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ({"version": "3", "alerts": []}, "version"),
        ({"alerts": {}}, "alerts"),
        ({"alerts": [1]}, "alerts[0]"),
        ({"alerts": [{"status": "pending"}]}, "alerts[0].status"),
        ({"alerts": [{"labels": {"a": 1}}]}, "alerts[0].labels.a"),
        ({"alerts": [{"labels": []}]}, "alerts[0].labels"),
        ({"alerts": [{"startsAt": 5}]}, "alerts[0].startsAt"),
        ({"alerts": [{"fingerprint": ""}]}, "alerts[0].fingerprint"),
        ({"alerts": [{}] * (MAX_ALERTS + 1)}, "alerts"),
    ],
)
def test_what_is_not_a_notification_is_refused_naming_the_field(body: Any, field: str) -> None:
    with pytest.raises(AlertBodyError) as raised:
        parse(body)
    assert raised.value.field == field
