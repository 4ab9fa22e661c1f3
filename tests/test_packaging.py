"""The package as a new user gets it: package data declared, typed, one version, extras that
keep the core suite lean, and CI running the README's test command and the wheel's seed.

(CI itself builds the wheel and runs the seed from a fresh venv: ``.ci/run``, step 2.)
"""

from __future__ import annotations

import fnmatch
import re
import sys
from pathlib import Path

import matdiff

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, from PyPI (the test extra)
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PACKAGE = ROOT / "src" / "matdiff"


def test_every_data_file_is_package_data():
    """Each file of the package that is not Python source ships in the wheel."""
    globs = PYPROJECT["tool"]["setuptools"]["package-data"]["matdiff"]
    data = [p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts]
    assert "py.typed" in data and "ascii.lark" in data and "web/index.html" in data
    missing = [f for f in data if not any(fnmatch.fnmatch(f, g) for g in globs)]
    assert not missing, f"not in [tool.setuptools.package-data]: {missing}"


def test_one_version():
    """``matdiff.__version__`` is the version (PEP 440); pyproject reads it; the changelog
    has a section for it."""
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "matdiff.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?",
                        matdiff.__version__)
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"({matdiff.__version__})" in changelog or f"[{matdiff.__version__}]" in changelog


def test_test_extra_is_lean():
    """``pip install matdiff[test]`` runs the core suite: no torch, JAX or browser."""
    extras = PYPROJECT["project"]["optional-dependencies"]
    names = {re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0].lower() for r in extras["test"]}
    assert not names & {"torch", "jax", "jaxlib", "playwright"}
    assert {"pytest", "hypothesis", "jsonschema", "nbclient", "ipykernel", "sympy"} <= names
    assert extras["torch"] == ["torch==2.13.0"]  # a range pulls a multi-GB CUDA build


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"^(python3 -m pip install -e \"\.\[test,.*)$", readme, re.M)
    assert commands, "the README's test command"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[0] in ci.splitlines()
    assert ci.rstrip().splitlines()[-1] == commands[0]   # last: its status is CI's status
    for extra in ("test", "web", "browser", "jax", "torch"):
        assert extra in re.search(r"\[(.*)\]", commands[0])[1].split(",")


def test_ci_never_upgrades_the_system():
    """Chromium only when absent, without recommends, after a simulation shows no upgrade;
    no upgrade command; pip's cache kept; the wheel built and its seed run."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    code = "\n".join(line.split("#")[0] for line in ci.splitlines())  # without comments
    assert not re.search(r"apt(-get)?\s+(-\S+\s+)*(upgrade|dist-upgrade|full-upgrade)", code)
    installs = re.findall(r"apt-get install[^\n]*", code)
    assert installs and all("--no-install-recommends" in i for i in installs)
    assert "[ ! -x /usr/bin/chromium ]" in code and "apt-get install -s" in code
    assert "--no-cache-dir" not in code and "playwright install" not in code
    assert "python3 -m build --wheel" in code and '/venv/bin/matdiff" grad "$SEED"' in code
