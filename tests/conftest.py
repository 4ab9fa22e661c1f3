"""The suite's conventions: optional extras fail loudly, and properties count what they skip.

Extras. A test that needs an optional extra carries its marker (registered in
pyproject.toml): ``jax``, ``torch``, ``web`` (the FastAPI app and its test client: fastapi,
uvicorn, latex2mathml, httpx) or ``browser`` (Playwright driving Chromium); a module whose
tests all need one sets ``pytestmark`` and imports the extra's packages at the top. Where a
marked test's packages are missing, a stand-in with its name and markers FAILS with
"needs jax (not installed): install matdiff[jax] or deselect with -m 'not jax'"; a module
whose import fails for want of an extra's package is collected as one such failing test.
Nothing is skipped for want of a Python package, so a run without the extras says so
explicitly::

    python -m pytest -m "not jax and not torch and not web and not browser"

The one skip: the ``browser`` tests where Chromium itself (a system package, not a Python
extra) is absent; the summary of the run then says so in a line of its own.

Counting. A hypothesis property may set an example aside only for the documented reason
that ``matdiff.testing.point`` finds no point of the function's domain off its kinks:
``tally.reject()`` (the ``tally`` fixture) counts it and draws another example,
``tally.accept()`` counts an example checked; the test fails (an error at its teardown)
when more than a quarter of its examples were set aside, or none was checked. (And, in
pyproject.toml: an unregistered marker or a parametrisation over nothing is an error.)
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import reject

# marker: (the extra that installs it, the top-level modules it needs)
EXTRAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "jax": ("matdiff[jax]", ("jax",)),
    "torch": ("matdiff[torch]", ("torch",)),
    "web": ("matdiff[web]", ("fastapi", "uvicorn", "latex2mathml", "httpx", "schemathesis")),
    "browser": ("matdiff[browser]", ("playwright",)),
}
_MARKER_OF_MODULE = {module: marker for marker, (_, modules) in EXTRAS.items()
                     for module in modules}
MOST_SET_ASIDE = 0.25
CHROMIUM = Path("/usr/bin/chromium")  # Debian's; Playwright drives it (tests/test_web_e2e.py)


def missing_message(marker: str) -> str | None:
    """Why a test marked ``marker`` cannot run here, or None when it can."""
    extra, modules = EXTRAS[marker]
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if not missing:
        return None
    return (f"needs {', '.join(missing)} (not installed): install {extra} or deselect with "
            f"-m 'not {marker}'")


class _MissingExtra(pytest.Item):
    """Stands in for a test (or a test module) that needs an extra that is not installed:
    it carries the same markers and fails, saying what to install."""

    def __init__(self, *, marker: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_marker(marker)
        self.marker = marker

    def runtest(self) -> None:
        pytest.fail(missing_message(self.marker) or "an extra is missing", pytrace=False)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, self.name


@pytest.hookimpl(tryfirst=True)  # before -m deselects, so that it deselects the stand-ins
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A marked test whose extra is missing becomes a stand-in that fails."""
    for i, item in enumerate(items):
        if isinstance(item, _MissingExtra):
            continue
        missing = [m for m in EXTRAS if item.get_closest_marker(m) and missing_message(m)]
        if missing and item.parent is not None:
            stand_in = _MissingExtra.from_parent(item.parent, name=item.name, marker=missing[0])
            stand_in.own_markers.extend(item.own_markers)
            items[i] = stand_in


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A browser test skips where Chromium is not installed."""
    if item.get_closest_marker("browser") is not None and not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (a system package: apt-get install "
                    "--no-install-recommends chromium)")


class _Module(pytest.Module):
    """A test module; when importing it fails for want of an extra's package, one test
    marked with that extra's marker takes the place of its tests."""

    def collect(self) -> Any:
        try:
            return super().collect()
        except pytest.Collector.CollectError as err:
            cause = err.__cause__
            name = getattr(cause, "name", None) if isinstance(cause, ImportError) else None
            marker = _MARKER_OF_MODULE.get((name or "").split(".")[0])
            if marker is None:
                raise
            return [_MissingExtra.from_parent(self, name=f"needs-{marker}", marker=marker)]


def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.Module:
    return _Module.from_parent(parent, path=module_path)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """A line of its own for browser tests skipped because Chromium is not installed."""
    skipped = [r for r in terminalreporter.stats.get("skipped", [])
               if "browser" in getattr(r, "keywords", {})]
    if skipped:
        reason = skipped[0].longrepr[-1] if isinstance(skipped[0].longrepr, tuple) else ""
        terminalreporter.write_sep("-", "browser tests skipped")
        terminalreporter.write_line(f"{len(skipped)} skipped: "
                                    f"{str(reason).removeprefix('Skipped: ')}")


# ----------------------------------------------------------------------------- counting


class Tally:
    """The examples a property checked and those it set aside (no point in the domain)."""

    def __init__(self) -> None:
        self.checked = 0
        self.set_aside = 0

    def accept(self) -> None:
        """Count this example as checked."""
        self.checked += 1

    def reject(self) -> None:
        """Set this example aside (no point in the domain) and draw another."""
        self.set_aside += 1
        reject()

    def verdict(self) -> str | None:
        total = self.checked + self.set_aside
        if self.checked == 0:
            return f"no example was checked ({self.set_aside} set aside)"
        if self.set_aside > MOST_SET_ASIDE * total:
            return (f"{self.set_aside} of {total} examples were set aside (no point in the "
                    f"domain), more than {MOST_SET_ASIDE:.0%}")
        return None


def import_extra(name: str) -> Any:
    """The optional package ``name``; a test that needs it FAILS when it is missing (it is not
    skipped, which would look like a pass): install the extra or deselect the marker."""
    try:
        module = importlib.import_module(name)
    except ImportError:
        pytest.fail(f"{name} is not installed: pip install -e '.[{name}]', or deselect these "
                    f'tests with -m "not {name}"')
    if name == "jax":
        module.config.update("jax_enable_x64", True)
    return module


@pytest.fixture
def extra() -> Callable[[str], Any]:
    """``extra("jax")``: the backend's module for a test marked with its extra."""
    return import_extra


@pytest.fixture
def tally() -> Iterator[Tally]:
    """A ``Tally`` shared by all the examples of one hypothesis test (settings need
    ``suppress_health_check=[HealthCheck.function_scoped_fixture]``); checked at the end."""
    t = Tally()
    yield t
    why = t.verdict()
    if why is not None:
        pytest.fail(why, pytrace=False)

