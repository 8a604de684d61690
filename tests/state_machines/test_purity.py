"""state_machines/ is pure: no Flask, no SQLAlchemy (DESIGN.md principle 1)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "state_machines"
FORBIDDEN = re.compile(r"^\s*(import|from)\s+(flask\w*|sqlalchemy|flask_sqlalchemy)\b", re.M)


def test_no_flask_or_sqlalchemy_imports_in_source():
    files = sorted(PACKAGE.rglob("*.py"))
    assert files
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}: {match.group(0).strip()}"
        for path in files
        for match in FORBIDDEN.finditer(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_importing_the_package_loads_neither():
    code = (
        "import sys, state_machines; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'sqlalchemy')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PACKAGE.parent,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.strip() == "[]"
