"""Failure modes: pathological input gets a clear ``MatdiffError`` or a bounded-time answer,
never a ``RecursionError`` or a hang; the common mistakes print the documented message."""

from __future__ import annotations

import time

import pytest

import matdiff as md
from matdiff.parse_ascii import parse_ascii
from matdiff.parse_latex import parse_latex


@pytest.mark.parametrize("parse", [parse_ascii, parse_latex], ids=["ascii", "latex"])
def test_long_sum_parses_without_recursion(parse):
    """A sum of n terms is a syntax tree n deep: the tree transformer must be iterative."""
    tree = parse(" + ".join(["x"] * 3000))
    assert tree.kind == "add"


def test_long_sum_parses_in_bounded_time():
    """Shape inference resolves dimension chains with path compression and decides
    ``x + x`` (equal shapes) without trial and error; ``add`` extends flat sums in bulk."""
    start = time.perf_counter()
    e = md.parse(" + ".join(["x"] * 2000))
    assert e.op is md.Op.ADD and len(e.args) == 2000
    assert time.perf_counter() - start < 20
