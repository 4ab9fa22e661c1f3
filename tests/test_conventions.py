"""The suite's conventions (tests/conftest.py) hold: a test marked for an extra that is not
installed fails with a message saying what to install, and so does a test module that
cannot be imported without it; ``-m 'not jax'`` deselects both; a browser test without
Chromium is skipped and the summary says so; a property that sets most of its examples
aside fails.

Each case runs pytest in a subprocess on a small suite that uses a copy of the conftest in
which the extras' packages and Chromium have names that are not installed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CONFTEST = Path(__file__).with_name("conftest.py")

SUITE = {
    "test_marked.py": '''
import pytest

@pytest.mark.jax
def test_needs_jax():
    pass

@pytest.mark.browser
def test_needs_a_browser():
    pass

def test_plain():
    pass
''',
    "test_module_needs_torch.py": '''
import pytest
import no_such_torch_package

pytestmark = pytest.mark.torch

def test_uses_torch():
    pass
''',
    "test_tally.py": '''
from hypothesis import HealthCheck, given, settings, strategies as st

CASES = settings(max_examples=20, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])

@CASES
@given(st.integers(0, 9))
def test_sets_most_aside(tally, i):
    if i > 1:
        tally.reject()
    tally.accept()

@CASES
@given(st.integers(0, 99))
def test_sets_few_aside(tally, i):
    if i == 0:
        tally.reject()
    tally.accept()
''',
}


def _run(tmp_path: Path, *args: str) -> str:
    conftest = CONFTEST.read_text()
    for real, absent in [('("jax",)', '("no_such_jax_package",)'),
                         ('("torch",)', '("no_such_torch_package",)'),
                         ('Path("/usr/bin/chromium")', 'Path("/no/such/chromium")')]:
        assert real in conftest
        conftest = conftest.replace(real, absent)
    (tmp_path / "conftest.py").write_text(conftest)
    for name, text in SUITE.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\naddopts = --import-mode=importlib --strict-markers -p no:cacheprovider\n"
        "markers =\n    jax: j\n    torch: t\n    web: w\n    browser: b\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-rA", *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def everything(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _run(tmp_path_factory.mktemp("suite"))


def test_a_marked_test_fails_without_its_extra(everything: str) -> None:
    assert "FAILED test_marked.py::test_needs_jax" in everything
    assert ("needs no_such_jax_package (not installed): install matdiff[jax] or deselect "
            "with -m 'not jax'") in everything
    assert "PASSED test_marked.py::test_plain" in everything


def test_a_module_that_needs_a_missing_extra_is_one_failing_test(everything: str) -> None:
    assert "FAILED test_module_needs_torch.py::needs-torch" in everything
    assert ("needs no_such_torch_package (not installed): install matdiff[torch] or "
            "deselect with -m 'not torch'") in everything


def test_a_browser_test_without_chromium_is_skipped_and_said(everything: str) -> None:
    assert "SKIPPED [1] conftest.py" in everything
    assert "browser tests skipped" in everything
    assert "1 skipped: no Chromium at /no/such/chromium (a system package" in everything


def test_a_property_that_sets_most_examples_aside_fails(everything: str) -> None:
    assert "ERROR test_tally.py::test_sets_most_aside" in everything
    assert "were set aside (no point in the domain), more than 25%" in everything
    assert "PASSED test_tally.py::test_sets_few_aside" in everything
    assert "ERROR test_tally.py::test_sets_few_aside" not in everything


def test_deselecting_the_extras_runs_the_rest(tmp_path: Path) -> None:
    out = _run(tmp_path, "-m", "not jax and not torch and not web and not browser",
               "test_marked.py", "test_module_needs_torch.py")
    assert "FAILED" not in out and "ERROR" not in out, out
    assert "1 passed, 3 deselected" in out, out
