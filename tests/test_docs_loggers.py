"""The troubleshooting page lists every logger the library creates, and no other."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent
PAGE = ROOT / "docs" / "troubleshooting.md"


def library_loggers() -> set[str]:
    """Every ``logging.getLogger(...)`` of the package: by module, or by literal name."""
    names = set()
    for path in sorted((ROOT / "aio_trader").rglob("*.py")):
        text = path.read_text()
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        if "logging.getLogger(__name__)" in text:
            names.add(module)
        names.update(re.findall(r"logging\.getLogger\(\"([\w.]+)\"\)", text))
    return names


def documented_loggers() -> set[str]:
    section = PAGE.read_text().split("## Library warnings and logs", 1)[1]
    return set(re.findall(r"^\| `(aio_trader[\w.]*)` \|", section, re.MULTILINE))


def test_every_logger_is_documented() -> None:
    found = library_loggers()
    assert "aio_trader.kite.ticks" in found  # the scan finds them
    assert documented_loggers() == found
