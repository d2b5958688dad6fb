"""The package builds as a wheel and an sdist, and each installs in a clean virtual environment."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

import aio_trader

ROOT = Path(__file__).resolve().parents[1]

CHECK = """
import aio_trader, aio_trader.kite, aio_trader.errors
from importlib.resources import files
assert aio_trader.__version__ == {version!r}, aio_trader.__version__
assert files("aio_trader").joinpath("py.typed").is_file()
print("ok", aio_trader.__version__)
"""


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    return out


def test_wheel_holds_the_package_and_its_data(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "aio_trader/py.typed" in names
    assert "aio_trader/kite/ticks.py" in names
    assert any(name.startswith("aio_trader/sandbox/") and name.endswith(".csv") for name in names)
    assert not any(name.startswith(("tests/", "benchmarks/")) for name in names)


@pytest.mark.parametrize("kind", ["*.whl", "*.tar.gz"])
def test_installs_in_a_clean_virtualenv(dist: Path, tmp_path: Path, kind: str) -> None:
    (artifact,) = dist.glob(kind)
    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(artifact)],
        check=True,
        capture_output=True,
    )
    result = subprocess.run(
        [str(python), "-c", CHECK.format(version=aio_trader.__version__)],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.stdout.strip() == f"ok {aio_trader.__version__}"
