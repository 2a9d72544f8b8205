"""Virtual environments holding lockgate with exactly the distributions of some extras.

Each is a plain ``venv`` without pip; every file of every distribution in the extras'
closure (:mod:`tests.install.closure`) is linked in from this environment, and lockgate
itself comes from ``src/`` through a ``.pth`` file. Nothing else is importable there: no
system site-packages, no development tools. Building one takes well under a second and
needs no network.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from tests.install.closure import closure

__all__ = ["SRC", "Venv", "make_venv"]

SRC = Path(__file__).resolve().parents[2] / "src"


@dataclass(frozen=True)
class Venv:
    root: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    def run(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """``python -m lockgate ARGS`` in this environment (``-c CODE`` when args[0] is -c)."""
        command = [str(self.python), *(args if args[0] == "-c" else ("-m", "lockgate", *args))]
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=cwd,
            env={"PATH": "/usr/bin:/bin", "HOME": str(self.root), "PYTHONDONTWRITEBYTECODE": "1"},
            check=False,
        )


def make_venv(root: Path, extras: tuple[str, ...]) -> Venv:
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=60
    )
    venv = Venv(root)
    target = Path(
        subprocess.run(
            [str(venv.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()
    )
    source = Path(sysconfig.get_paths()["purelib"])
    for dist in closure(extras).values():
        for file in dist.files or []:
            if file.parts[0] in ("..", "__pycache__") or "__pycache__" in file.parts:
                continue
            _link(source / file, target / file)
    (target / "lockgate-src.pth").write_text(f"{SRC}\n", encoding="utf-8")
    return venv


def _link(source: Path, target: Path) -> None:
    if not source.exists() or target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(source)
