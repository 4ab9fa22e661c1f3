"""Hypothesis strategies for random well-shaped expressions (needs the test extra).

Input: hypothesis's ``draw``. Output: ``exprs`` (a random ``Expr`` of a ``testing.SHAPES``
shape) and ``texts`` (its ASCII text with the shape declarations), from the generator of
``matdiff.testing``, whose choices come here from hypothesis (so it can shrink a failing
case) instead of a ``random.Random``. Contract: this is the one module of the package that
imports hypothesis; nothing else in the package imports it, so ``import matdiff`` and
``import matdiff.testing`` work without the test extra. Used by the tests only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from hypothesis import strategies as st

from .api import shapes_of
from .expr import Expr
from .printing import to_text
from .testing import gen
from .testing_complex import real_scalar

__all__ = ["HypothesisDraw", "exprs", "texts", "complex_exprs"]

T_ = TypeVar("T_")


class HypothesisDraw:
    """A ``testing.Draw`` over hypothesis's ``draw``."""

    def __init__(self, draw: Callable[[st.SearchStrategy[Any]], Any]):
        self.draw = draw

    def int(self, lo: int, hi: int) -> int:
        return int(self.draw(st.integers(lo, hi)))

    def pick(self, items: Sequence[T_]) -> T_:
        out: T_ = self.draw(st.sampled_from(items))
        return out


@st.composite
def exprs(draw: Callable[[st.SearchStrategy[Any]], Any], shape: str = "s",
          max_depth: int = 6) -> Expr:
    """A random well-shaped expression (a scalar by default); ``shape`` is a key of
    ``testing.SHAPES``. Used as ``@given(exprs())`` in ``tests/test_properties.py``.

    >>> from hypothesis import find
    >>> from matdiff.expr import Dim
    >>> find(exprs("N"), lambda e: True).shape == (Dim.var("n"), Dim.var("n"))
    True
    """
    return gen(HypothesisDraw(draw), shape, draw(st.integers(1, max_depth)))


@st.composite
def texts(draw: Callable[[st.SearchStrategy[Any]], Any],
          max_depth: int = 6) -> tuple[str, dict[str, list[str]]]:
    """``(ascii_text, shapes)`` of a random scalar expression."""
    e = draw(exprs("s", max_depth))
    return to_text(e), shapes_of(e)


@st.composite
def complex_exprs(draw: Callable[[st.SearchStrategy[Any]], Any], max_depth: int = 4) -> Expr:
    """A random real-valued scalar of complex matrices (``testing_complex.real_scalar``):
    the gradient ∂f/∂Re X + i ∂f/∂Im X is defined for it.

    >>> from hypothesis import find
    >>> find(complex_exprs(), lambda e: True).is_complex
    False
    """
    return real_scalar(HypothesisDraw(draw), draw(st.integers(1, max_depth)))
