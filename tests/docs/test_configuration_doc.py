"""docs/configuration.md documents every setting, with its real flag, variable and default."""

from __future__ import annotations

import re
from pathlib import Path

from lockgate.settings import SETTINGS

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
ROW = re.compile(r"^\| `(\w+)` \| `([^`]+)` \| `(LOCKGATE_\w+)` \| `([^`]*)` \|", re.MULTILINE)


def _rows() -> dict[str, tuple[str, str, str]]:
    return {m[1]: (m[2], m[3], m[4]) for m in ROW.finditer(DOC.read_text())}


def test_every_setting_is_documented_and_nothing_else() -> None:
    assert sorted(_rows()) == sorted(s.name for s in SETTINGS)


def test_documented_flags_variables_and_defaults_match_the_code() -> None:
    rows = _rows()
    for setting in SETTINGS:
        flag, env, default = rows[setting.name]
        assert env == setting.env
        assert flag in (setting.flag, "—")
        assert default == (str(setting.default) if setting.default != "" else "(empty)")
