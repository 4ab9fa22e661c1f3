"""The docstrings' examples run: every module of the package, through ``doctest``.

The web modules need the web extra (marked ``web``: they fail, not skip, without it)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import matdiff

MODULES = sorted(m.name for m in pkgutil.walk_packages(matdiff.__path__, "matdiff.")
                 if not m.name.endswith("__main__"))   # running it is the CLI
NEEDS_WEB = ("matdiff.web.",)


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.web) if n.startswith(NEEDS_WEB) else n for n in MODULES])
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


def test_the_examples_are_found() -> None:
    """The walk sees the package (a test over no modules would pass by itself)."""
    assert {"matdiff.api", "matdiff.diff", "matdiff.codegen.ir", "matdiff.check"} <= set(MODULES)
