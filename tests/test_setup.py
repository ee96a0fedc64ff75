"""The set-up a new user meets first: `make` finds a Python 3.11 or says in one line which is needed, and never
leaves a half-made virtual environment for the next `make` to reuse; `make container-test` with no engine to
be had says what it needs (issue 12).

Every `make` here runs in a temporary copy of the Makefile and its scripts, with fake interpreters: nothing is
installed, and each test takes well under a second.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# A fake interpreter: `--version` prints VERSION; `-c` (find-python's check) succeeds only for 3.11; `-m venv DIR`
# makes DIR/bin/python (a copy of VENV_PYTHON) and exits with VENV_STATUS; anything else (pip) exits PIP_STATUS.
FAKE_PYTHON = """#!/bin/sh
case "$1" in
  --version) echo "Python {version}"; exit 0 ;;
  -c) case "{version}" in 3.11.*) exit 0 ;; esac; exit 1 ;;
  -m) if [ "$2" = venv ]; then
        mkdir -p "$3/bin" && cp "{venv_python}" "$3/bin/python" && chmod +x "$3/bin/python"
        exit {venv_status}
      fi
      exit {pip_status} ;;
esac
exit 1
"""


def fake_python(
    path: Path, version: str, *, venv_status: int = 0, pip_status: int = 0, venv_python: Path | None = None
) -> Path:
    """Write a fake interpreter at `path` that says it is Python `version` (see FAKE_PYTHON)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = FAKE_PYTHON.format(
        version=version, venv_status=venv_status, pip_status=pip_status, venv_python=venv_python or path
    )
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of what `make`'s set-up targets read: the Makefile, pyproject.toml and scripts/."""
    copy = tmp_path / "layerwise"
    copy.mkdir()
    shutil.copy(ROOT / "Makefile", copy)
    shutil.copy(ROOT / "pyproject.toml", copy)
    shutil.copytree(ROOT / "scripts", copy / "scripts")
    return copy


def make(project: Path, *args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run make in `project` with PATH `path` (default: this one) and no pyenv; return its outcome."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYENV", "MAKE")) and k != "PYTHON"}
    if path is not None:
        env["PATH"] = path
    return subprocess.run(["make", *args], cwd=project, env=env, capture_output=True, text=True, timeout=60)


def make_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """make's own lines left out (`make: *** [...] Error 1`), what the recipe said."""
    return [line for line in result.stderr.splitlines() if not line.startswith("make: ***")]


@pytest.mark.parametrize("python", ["/usr/bin/false", "/no/such/python"])
def test_a_python_that_is_not_one_is_refused_in_one_line(project: Path, python: str) -> None:
    result = make(project, ".venv/.installed-run", f"PYTHON={python}")
    assert result.returncode != 0
    [line] = make_lines(result)
    assert line.startswith(f"make: PYTHON={python} is not a working Python 3.11")
    assert "make run PYTHON=/path/to/python3.11" in line
    assert not (project / ".venv").exists()


def test_a_python_3_10_given_is_refused_and_no_venv_is_made(project: Path, tmp_path: Path) -> None:
    python = fake_python(tmp_path / "bin" / "python3.10", "3.10.13")
    result = make(project, "run", f"PYTHON={python}")
    assert result.returncode != 0
    [line] = make_lines(result)
    assert "(Python 3.10.13); layerwise needs Python 3.11" in line
    assert not (project / ".venv").exists()


def fake_path(tmp_path: Path, **pythons: str) -> str:
    """A PATH whose first folder holds fake interpreters by name (python3="3.10.13"), then the system's folders."""
    for name, version in pythons.items():
        fake_python(tmp_path / "fakebin" / name.replace("_", "."), version)
    # the fakes first, so that a fake python3.11 hides the system's own (Debian's python3 is 3.11)
    return f"{tmp_path / 'fakebin'}:/usr/bin:/bin"


def test_with_no_python_given_and_no_3_11_found_make_says_which_is_needed(project: Path, tmp_path: Path) -> None:
    path = fake_path(tmp_path, python3="3.10.13", python3_11="2.7.18")
    result = make(project, ".venv/.installed-run", path=path)
    assert result.returncode != 0
    [line] = make_lines(result)
    assert line == (
        "make: layerwise needs Python 3.11 and found none (python3 is Python 3.10.13): "
        "install it, or point at it: make run PYTHON=/path/to/python3.11"
    )
    assert not (project / ".venv").exists()


def test_with_no_python_given_python3_is_used_when_it_is_3_11(project: Path, tmp_path: Path) -> None:
    path = fake_path(tmp_path, python3="3.11.9", python3_11="3.10.13")
    result = make(project, ".venv/bin/python", path=path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "python3 -m venv .venv"
    assert (project / ".venv" / "bin" / "python").exists()


@pytest.mark.parametrize(("venv_status", "pip_status"), [(1, 0), (0, 1)], ids=["venv fails", "pip upgrade fails"])
def test_a_venv_that_fails_half_way_is_removed(
    project: Path, tmp_path: Path, venv_status: int, pip_status: int
) -> None:
    python = fake_python(tmp_path / "python3.11", "3.11.9", venv_status=venv_status, pip_status=pip_status)
    result = make(project, ".venv/.installed-run", f"PYTHON={python}")
    assert result.returncode != 0
    assert not (project / ".venv").exists()
    # and the next make starts afresh, with a Python that works, rather than reusing anything
    good = fake_python(tmp_path / "good" / "python3.11", "3.11.9")
    assert make(project, ".venv/bin/python", f"PYTHON={good}").returncode == 0


def test_a_venv_made_before_with_another_python_is_refused_before_pip(project: Path, tmp_path: Path) -> None:
    # what an older Makefile left: a .venv whose python is 3.10, without its install stamp
    fake_python(project / ".venv" / "bin" / "python", "3.10.13", pip_status=1)
    result = make(project, ".venv/.installed-run")
    assert result.returncode != 0
    [line] = make_lines(result)
    assert line == (
        "make: .venv has Python 3.10.13, not Python 3.11: make clean, then make again "
        "(PYTHON=/path/to/python3.11 to choose one)"
    )
    assert not (project / ".venv" / ".installed-run").exists()


def test_an_install_that_fails_leaves_no_stamp(project: Path, tmp_path: Path) -> None:
    venv_python = fake_python(tmp_path / "venv-python", "3.11.9")
    python = fake_python(tmp_path / "python3.11", "3.11.9", venv_python=venv_python)
    assert make(project, ".venv/bin/python", f"PYTHON={python}").returncode == 0
    # pip is .venv/bin/pip, which the fake venv has not: the install fails, and is not marked done
    result = make(project, ".venv/.installed-run")
    assert result.returncode != 0
    assert not (project / ".venv" / ".installed-run").exists()


def engine_answers() -> bool:
    """Whether a Docker engine answers `docker info` here."""
    return (
        shutil.which("docker") is not None and subprocess.run(["docker", "info"], capture_output=True).returncode == 0
    )


@pytest.mark.skipif(engine_answers(), reason="a Docker engine answers here: container-test would not stop at once")
def test_container_test_with_no_engine_to_be_had_says_what_it_needs_in_one_line(tmp_path: Path) -> None:
    copy = tmp_path / "clone"  # no ../shared beside it
    copy.mkdir()
    shutil.copy(ROOT / "Makefile", copy)
    shutil.copytree(ROOT / "scripts", copy / "scripts")
    # Without MAKE* from an outer make (make test): a sub-make would say "make[1]: ***" as well.
    env = {k: v for k, v in os.environ.items() if k != "CONTAINER_ENGINE" and not k.startswith("MAKE")}
    result = subprocess.run(["make", "container-test"], cwd=copy, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    [line] = make_lines(result)
    assert line == (
        "container-test: needs a Docker engine: none answers `docker info` and ../shared/tools/container-engine is "
        "missing or not executable; set CONTAINER_ENGINE to a script with start/stop (like "
        "../shared/tools/container-engine), or start a Docker engine"
    )
    assert result.stdout.strip() == "bash scripts/container-test.sh"
