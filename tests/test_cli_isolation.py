"""The command line tool is the only user of the ``cli`` extra: no module of the library
imports click or rich, nor ``aio_trader._cli`` (checked in a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import aio_trader

PACKAGE = Path(aio_trader.__file__).parent
#: Subpackages the library never imports: the command, and the sandbox (its own extra).
OUTSIDE = {"_cli", "sandbox"}
#: What only the command may load (the ``cli`` extra), and the command itself.
CLI_ONLY = {"click", "rich", "aio_trader._cli"}


def library_modules() -> list[str]:
    """Every module of the installed package outside ``_cli/`` and ``sandbox/``, by name."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if OUTSIDE & set(parts) or parts[-1] == "__main__":
            continue
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


#: Imports each module in turn and, after each, reports what of ``CLI_ONLY`` has appeared
#: (sys.modules only grows, so the first module reported is the one that loads it).
#: httpx loads its own command line tool (``httpx._main``: click, rich) whenever click is
#: installed, and does without it when it is not (a core-only install): it is blocked here,
#: so what is seen is what aio_trader loads.
PROBE = """
import importlib, json, sys
sys.modules["httpx._main"] = None
found = {}
for name in json.loads(sys.argv[1]):
    importlib.import_module(name)
    loaded = sorted(
        m for m in sys.modules
        if m.partition(".")[0] in {"click", "rich"} or m.startswith("aio_trader._cli")
    )
    if loaded:
        found[name] = loaded
        break
print(json.dumps(found))
"""


def test_no_library_module_imports_click_rich_or_the_command() -> None:
    modules = library_modules()
    assert {"aio_trader", "aio_trader.http", "aio_trader.kite.ticks"} <= set(modules)
    assert not [name for name in modules if "_cli" in name or "sandbox" in name]
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(modules)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert json.loads(done.stdout) == {}


def test_the_probe_sees_the_command_when_it_is_loaded() -> None:
    """The check above can see click and the command: the command's group loads both."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(["aio_trader._cli.group"])],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    loaded = json.loads(done.stdout)["aio_trader._cli.group"]
    assert {"click", "rich", "aio_trader._cli", "aio_trader._cli.group"} <= set(loaded)


def test_the_old_command_modules_are_gone_from_the_library_namespace() -> None:
    """``aio_trader.cli`` and ``aio_trader.demo`` moved into ``aio_trader._cli``."""
    assert not (PACKAGE / "cli.py").exists()
    assert not (PACKAGE / "demo.py").exists()
