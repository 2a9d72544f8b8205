"""docs/sdk.md documents every option of the SDK's ``Client`` (one truth: the signature)."""

from __future__ import annotations

import inspect
from pathlib import Path

from lockgate.sdk import Client

DOC = Path(__file__).resolve().parents[2] / "docs" / "sdk.md"


def test_every_client_option_is_in_the_options_table() -> None:
    text = DOC.read_text()
    options = [
        name
        for name, parameter in inspect.signature(Client).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    assert "proxy" in options
    missing = [name for name in options if f"| `{name}` |" not in text]
    assert missing == []
