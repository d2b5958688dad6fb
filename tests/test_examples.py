"""Every program in ``examples/`` runs as a user would run it, against its embedded sandbox.

Each runs in a subprocess (its own event loop, its own sandbox on a free loopback port)
with a bounded time, must exit 0 and print what it promises. These are plain (sync)
tests: the examples pick their backends themselves.
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _helpers import python_blocks

pytest.importorskip("starlette", reason="the examples' embedded sandbox needs the sandbox extra")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
#: Generous: the CPU may be shared; only a hang should hit it.
TIMEOUT = 120.0


def _env() -> dict[str, str]:
    """The environment without broker credentials, so every example starts its sandbox."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KITE_", "DHAN_"))}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a Python program to completion (bounded time) and return what it did."""
    return subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=_env(),
        cwd=EXAMPLES.parent,
        check=False,
    )


def run_example(name: str, *args: str) -> str:
    """Run ``examples/<name>``; returns its stdout, asserting exit status 0."""
    done = run(EXAMPLES / name, *args)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout


def test_historical_to_dataframe(tmp_path: Path) -> None:
    pytest.importorskip("pandas")
    out = tmp_path / "candles.csv"
    symbols = ["INFY", "TCS", "SBIN"]
    text = run_example(
        "historical_to_dataframe.py",
        "--symbols",
        ",".join(symbols),
        "--interval",
        "day",
        "--days",
        "30",
        "--out",
        str(out),
    )
    assert "requests 3/3" in text
    assert re.search(r"^3 requests in [\d.]+ s", text, re.MULTILINE), text
    assert "refused by the sandbox's rate limit (429): 0" in text
    for symbol in symbols:
        assert re.search(rf"^{symbol}\s+\d+\s", text, re.MULTILINE), text
    lines = out.read_text().splitlines()
    assert lines[0].split(",")[:3] == ["symbol", "date", "open"]
    assert {line.split(",")[0] for line in lines[1:]} == set(symbols)
    assert len(lines) > 3 * 10  # about 20 trading days each


def test_stream_conflated_keeps_one_tick_per_instrument() -> None:
    text = run_example("stream_conflated.py", "--seconds", "3", "--delay", "0.05")
    found = re.search(
        r"received=(\d+) consumed=(\d+) conflated=(\d+) stale=(\d+) waiting=(\d+) "
        r"\(at most one per instrument: (\d+)\)",
        text,
    )
    assert found, text
    received, consumed, conflated, stale, waiting, instruments = map(int, found.groups())
    assert consumed > 0
    assert conflated > 0  # the consumer is 10x slower than the ticks
    assert received == consumed + conflated + stale + waiting
    assert waiting <= instruments


def test_order_tracked_to_completion() -> None:
    text = run_example("order_tracked.py", "--symbol", "INFY", "--quantity", "2")
    order_id = re.search(r"placed order (\d+) \(tag (\w+)\)", text)
    assert order_id, text
    statuses = re.findall(r"update: (\S+)\s+filled (\d+)/2", text)
    assert statuses[-1] == ("COMPLETE", "2"), text
    assert re.search(r"^trade \S+: 2 at [\d.]+$", text, re.MULTILINE), text
    assert f"order {order_id.group(1)} ended COMPLETE" in text


def test_order_tracked_refuses_a_real_account_without_live() -> None:
    done = run(EXAMPLES / "order_tracked.py", "--api-key", "k")
    assert done.returncode != 0
    assert "--live" in done.stderr


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_graceful_shutdown_on_a_real_signal(signum: signal.Signals, backend: str) -> None:
    if backend == "trio":
        pytest.importorskip("trio")
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "graceful_shutdown.py"), "--backend", backend],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + TIMEOUT
        for line in process.stdout:  # wait until it streams: the signal must cancel real work
            if line.startswith("streaming:") or time.monotonic() > deadline:
                break
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, f"exit {process.returncode}\n{stdout}\n{stderr}"
    assert "Traceback" not in stderr, stderr
    assert re.search(r"^closing the feed after \d+ ticks$", stdout, re.MULTILINE), stdout
    assert stdout.rstrip().endswith(f"stopped cleanly by {signum.name}"), stdout


def test_graceful_shutdown_finishes_by_itself() -> None:
    text = run_example("graceful_shutdown.py", "--seconds", "1")
    assert text.rstrip().endswith("finished")


def test_backends_runs_the_same_code_on_asyncio_and_trio() -> None:
    pytest.importorskip("trio")
    text = run_example("backends.py", "--ticks", "3")
    for backend in ("asyncio", "trio"):
        assert f"[{backend}] logged in as Sandbox User (AB1234)" in text
        assert len(re.findall(rf"^\[{backend}\] tick  408065 [\d.]+$", text, re.MULTILINE)) == 3
        assert re.search(rf"^\[{backend}\] ltp   NSE:INFY [\d.]+$", text, re.MULTILINE)
        assert f"[{backend}] done: every task and socket closed" in text
    assert text.index("[asyncio] done") < text.index("[trio] logged in")


def test_quick_start_program_in_the_docs(tmp_path: Path) -> None:
    """The first program of ``docs/index.md`` runs as printed."""
    program = next(block for block in python_blocks("docs/index.md") if "anyio.run(main)" in block)
    script = tmp_path / "first_program.py"
    script.write_text(program)
    done = run(script)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    text = done.stdout
    assert "hello Sandbox User" in text
    assert re.search(r"^NSE:INFY [\d.]+$", text, re.MULTILINE)
    assert re.search(r"^placed \d+$", text, re.MULTILINE)
    assert len(re.findall(r"^tick 408065 [\d.]+$", text, re.MULTILINE)) == 5
    assert "Positions(net=(Position(tradingsymbol='INFY'" in text


def _doc_blocks() -> list[tuple[str, int, str]]:
    """Every ```python block of ``docs/*.md``: (page, index, code)."""
    found = []
    for page in sorted((EXAMPLES.parent / "docs").glob("*.md")):
        blocks = python_blocks(f"docs/{page.name}")
        found.extend((page.name, index, code) for index, code in enumerate(blocks))
    return found


@pytest.mark.parametrize(("page", "index", "code"), _doc_blocks())
def test_doc_code_blocks_parse_and_import(page: str, index: int, code: str) -> None:
    """Every Python block of the docs is valid Python (``await`` allowed at top level),
    and every ``aio_trader`` name it imports exists."""
    tree = compile(
        code, f"{page}[{index}]", "exec", ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    )
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("aio_trader"):
            module = importlib.import_module(node.module or "")
            for alias in node.names:
                assert hasattr(module, alias.name), f"{page}: {node.module}.{alias.name}"


#: The pages whose code blocks must fit the docs page's width (the others' owners keep
#: theirs), and that width: what fits beside the navigation without a scroll bar.
NARROW_PAGES = ("index.md", "cli.md", "examples.md", "troubleshooting.md", "migration.md")
DOCS_WIDTH = 88


@pytest.mark.parametrize("page", NARROW_PAGES)
def test_doc_code_lines_fit_the_page(page: str) -> None:
    text = (EXAMPLES.parent / "docs" / page).read_text()
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.DOTALL):
        for line in block.splitlines():
            assert len(line) <= DOCS_WIDTH, f"{page}: {line}"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.py")), ids=lambda p: p.name)
def test_example_lines_fit_the_docs_page(path: Path) -> None:
    """The examples are included whole in docs/examples.md."""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        assert len(line) <= DOCS_WIDTH, f"{path.name}:{number}"


def _programs() -> list[tuple[str, str]]:
    """Every Python program a user copies: README and docs blocks, the examples."""
    root = EXAMPLES.parent
    found = [(f"README.md[{i}]", code) for i, code in enumerate(python_blocks("README.md"))]
    for page in sorted((root / "docs").glob("*.md")):
        blocks = python_blocks(f"docs/{page.name}")
        found += [(f"{page.name}[{i}]", code) for i, code in enumerate(blocks)]
    found += [(path.name, path.read_text()) for path in sorted(EXAMPLES.glob("*.py"))]
    return found


def test_every_market_order_shown_carries_market_protection() -> None:
    """Since April 2026 Kite refuses MARKET and SL-M orders without market protection: no
    program in the README, the docs or the examples places one."""
    checked = 0
    for where, code in _programs():
        if code.lstrip().startswith("--8<--"):
            continue  # an included example, checked as itself
        tree = compile(code, where, "exec", ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "place_order"):
                continue
            keywords = {k.arg: k.value for k in node.keywords}
            kind = keywords.get("order_type")
            literal = kind.value if isinstance(kind, ast.Constant) else None
            attribute = kind.attr if isinstance(kind, ast.Attribute) else ""
            unprotected_kinds = ("ORDER_TYPE_MARKET", "ORDER_TYPE_SLM")
            if literal in ("MARKET", "SL-M") or attribute in unprotected_kinds:
                checked += 1
                assert "market_protection" in keywords, f"{where}: line {node.lineno}"
    assert checked >= 4  # README, index.md, migration.md (both sides), sandbox.md


def test_readme_says_how_to_run_examples_and_the_reference_data_tests() -> None:
    readme = (EXAMPLES.parent / "README.md").read_text()
    assert ".venv/bin/python examples/" in readme
    assert "git clone https://github.com/zerodha/kiteconnect-mocks ../shared/kiteconnect-mocks" in (
        readme
    )
    assert not re.search(r"(?<![/\w])python examples/", readme)
    docs = (EXAMPLES.parent / "docs" / "examples.md").read_text()
    assert not re.search(r"(?<![/\w])python examples/", docs)
    assert "troubleshooting.md" in (EXAMPLES.parent / "mkdocs.yml").read_text()


def _listed_members(page: str, target: str) -> list[str]:
    """The ``members:`` list of the ``::: target`` block of ``docs/api/<page>``."""
    text = (EXAMPLES.parent / "docs" / "api" / page).read_text()
    block = text.split(f"::: {target}\n", 1)[1].split(":::", 1)[0]
    return re.findall(r"^ +- (\w+)$", block.split("members:", 1)[1], re.MULTILINE)


def test_the_kite_reference_lists_every_public_method() -> None:
    """``docs/api/kite.md`` lists Kite's members explicitly: none missing, none stale."""
    from aio_trader._rest import RestBroker
    from aio_trader.abc import AbstractBroker
    from aio_trader.kite import Kite

    # Kite's own methods, those of the REST pipeline it stands on (open, aclose, ...) and
    # the neutral operations every broker has (AbstractBroker's, through Kite's mapping).
    public = {name for cls in (Kite, RestBroker) for name in vars(cls) if name[0] != "_"}
    public |= {
        name
        for name, value in vars(AbstractBroker).items()
        if name[0] != "_"
        and getattr(value, "__code__", None) is not None
        and "_mapping" in value.__code__.co_names
    }
    assert set(_listed_members("kite.md", "aio_trader.kite._broker.Kite")) == public


def test_the_api_reference_opens_with_the_class_and_its_public_methods(tmp_path: Path) -> None:
    pytest.importorskip("mkdocstrings")
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(site)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=EXAMPLES.parent,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for page, cls in (("kite", "Kite"), ("feed", "KiteFeed")):
        html = (site / "api" / page / "index.html").read_text()
        ids = re.findall(r'<h[2-4] id="([^"]+)"', html)
        assert ids[0] == f"aio_trader.kite._{'broker' if cls == 'Kite' else 'feed'}.{cls}"
        members = [i.rsplit(".", 1)[1] for i in ids if i.startswith(f"{ids[0]}.")]
        assert members
        if cls == "Kite":  # inherited from the REST pipeline, still on Kite's page
            assert {"open", "aclose", "is_open", "set_session_expiry_hook"} <= set(members)
        assert not [m for m in members if m.startswith("_") and not m.startswith("__")]


def _private_imports(code: str) -> list[str]:
    """The ``aio_trader`` imports of ``code`` that reach a private module or name."""
    tree = compile(code, "<program>", "exec", ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
            names: list[str] = []
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            modules = [node.module or ""]
            names = [alias.name for alias in node.names]
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if parts[0] != "aio_trader":
                continue
            private = [p for p in parts if p.startswith("_")]
            private += [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private:
                found.append(f"{module}: {', '.join(private)}")
    return found


def test_private_imports_are_found() -> None:
    assert _private_imports("from aio_trader.kite._broker import historical_chunks") == [
        "aio_trader.kite._broker: _broker"
    ]
    assert _private_imports("import aio_trader._time") == ["aio_trader._time: _time"]
    assert _private_imports("from aio_trader.kite import _frames") == ["aio_trader.kite: _frames"]
    assert _private_imports("from _common import connect\nimport aio_trader.kite") == []


@pytest.mark.parametrize(("where", "code"), _programs(), ids=lambda v: v if "\n" not in v else "")
def test_no_program_a_user_copies_imports_a_private_module(where: str, code: str) -> None:
    """The examples, the README's and the docs' programs use public import paths only."""
    assert _private_imports(code) == [], where


# -- one strategy, any broker (examples/ma_crossover.py) -------------------------------------


def _crossover_run(text: str, broker: str) -> None:
    """What a bounded run of the crossover must show: each order placed, followed to
    COMPLETE, and the position it turned round."""
    assert f"embedded {broker} sandbox" in text, text
    orders = re.findall(
        r"^order (\d+) (BUY|SELL) (\d+) NSE:INFY COMPLETE: filled (\d+) at [\d.]+$",
        text,
        re.MULTILINE,
    )
    assert len(orders) == 2, text
    assert all(quantity == filled for _, _, quantity, filled in orders), text
    first, second = (side for _, side, _, _ in orders)
    assert first != second, text  # a crossing turns the position round
    positions = [int(q) for q in re.findall(r"^position NSE:INFY (-?\d+) \(MIS\)$", text, re.M)]
    expected = 1 if first == "BUY" else -1
    assert positions == [expected, -expected], text
    assert f"done: 2 orders placed, 2 complete, holding {-expected}" in text, text


@pytest.mark.parametrize(
    ("broker", "backend"),
    [
        ("kite", "asyncio"),
        ("kite", "trio"),
        ("dhan", "trio"),
        ("dhan", "asyncio"),
    ],
)
def test_ma_crossover_runs_unchanged_on_each_broker(broker: str, backend: str) -> None:
    if backend == "trio":
        pytest.importorskip("trio")
    text = run_example(
        "ma_crossover.py", "--broker", broker, "--backend", backend, "--max-orders", "2"
    )
    _crossover_run(text, broker)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("broker", ["kite", "dhan"])
def test_ma_crossover_runs_unchanged_on_paper(broker: str, backend: str) -> None:
    """``--paper``: the same strategy, its orders filled by a paper account at the
    broker feed's ticks."""
    if backend == "trio":
        pytest.importorskip("trio")
    text = run_example(
        "ma_crossover.py",
        *("--broker", broker, "--paper", "--backend", backend, "--max-orders", "2"),
    )
    assert f"paper trading over the {broker} feed" in text, text
    _crossover_run(text, broker)


def test_ma_crossover_refuses_a_real_account_without_live() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "ma_crossover.py"), "--broker", "dhan"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**_env(), "DHAN_CLIENT_ID": "1000000001", "DHAN_ACCESS_TOKEN": "t"},
        check=False,
    )
    assert done.returncode != 0
    assert "--live" in done.stderr


def test_ma_crossover_strategy_uses_only_the_neutral_operations() -> None:
    """``trade`` (the strategy) calls no broker-specific method and imports no broker."""
    tree = ast.parse((EXAMPLES / "ma_crossover.py").read_text())
    trade = next(n for n in tree.body if isinstance(n, ast.AsyncFunctionDef) and n.name == "trade")
    called = {
        node.func.attr
        for node in ast.walk(trade)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    from aio_trader.abc import AbstractBroker, AbstractFeeder

    neutral = set(vars(AbstractBroker)) | set(vars(AbstractFeeder))
    used = called & {"submit", "follow", "last_prices", "net_positions", "subscribe"}
    assert used == {"submit", "follow", "last_prices", "net_positions", "subscribe"}
    broker_only = {"place_order", "orders", "ltp", "positions", "wait_for_order"}
    assert not called & broker_only
    assert used <= neutral
    imports = [n for n in ast.walk(trade) if isinstance(n, ast.Import | ast.ImportFrom)]
    assert imports == []
