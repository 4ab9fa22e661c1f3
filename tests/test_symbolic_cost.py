"""Results at sizes where the symbolic cost matters (issue 17): long products, long sums and
deep compositions. Correctness and printed size only; speed is measured by
``benchmarks/symbolic_cost.py``, never asserted here."""

from __future__ import annotations

from functools import reduce

import numpy as np
import pytest

import matdiff as md
from matdiff.diff import powers
from matdiff.expr import matpow, sym
from matdiff.names import name_parts, with_names

N_FACTORS = 200


def _contraction(rng: np.random.Generator, n: int) -> np.ndarray:
    """A random n×n matrix of spectral norm 1, so products of 200 of them stay finite."""
    m = rng.standard_normal((n, n))
    return m / np.linalg.norm(m, 2)


def _product(ms: list[np.ndarray], n: int) -> np.ndarray:
    return reduce(np.matmul, ms, np.eye(n))


def test_gradient_of_long_product_with_distinct_factors() -> None:
    """∂ tr(A₁X A₂X ⋯ AₖX)/∂X = Σᵢ (Aᵢ₊₁X ⋯ AₖX A₁X ⋯ Aᵢ)ᵀ, 200 factors in all."""
    k = N_FACTORS // 2
    text = "tr(" + "*".join(f"A{i}*X" for i in range(1, k + 1)) + ")"
    g = md.grad(text, "X")
    rng = np.random.default_rng(17)
    n = 3
    a = [_contraction(rng, n) for _ in range(k)]
    x = _contraction(rng, n)
    factors = [m for ai in a for m in (ai, x)]
    want = sum(_product(factors[j + 1:] + factors[:j], n).T
               for j in range(1, len(factors), 2))
    got = md.evaluate(g, X=x, **{f"A{i + 1}": a[i] for i in range(k)})
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_gradient_of_power_written_as_a_product_is_the_textbook_form() -> None:
    """∂ tr(X⋯X)/∂X = N (X^(N−1))ᵀ for N = 200 factors, symbolically and numerically."""
    g = md.grad("tr(" + "*".join(["X"] * N_FACTORS) + ")", "X")
    assert str(g) == f"{N_FACTORS}*(X^{N_FACTORS - 1})'"
    x = _contraction(np.random.default_rng(3), 4)
    want = N_FACTORS * np.linalg.matrix_power(x, N_FACTORS - 1).T
    np.testing.assert_allclose(md.evaluate(g, X=x), want, rtol=1e-9, atol=1e-12)


def test_gradient_of_bilinear_form_of_a_long_product() -> None:
    """∂ aᵀX⋯Xb/∂X = Σₖ (Xᵏ)ᵀ a bᵀ (X^(N−1−k))ᵀ, N = 200."""
    g = md.grad("a'*" + "*".join(["X"] * N_FACTORS) + "*b", "X")
    rng = np.random.default_rng(5)
    n = 4
    x, a, b = _contraction(rng, n), rng.standard_normal(n), rng.standard_normal(n)
    p = [np.linalg.matrix_power(x, k) for k in range(N_FACTORS)]
    want = sum(p[k].T @ np.outer(a, b) @ p[N_FACTORS - 1 - k].T for k in range(N_FACTORS))
    np.testing.assert_allclose(md.evaluate(g, X=x, a=a, b=b), want, rtol=1e-9, atol=1e-12)


def test_powers_groups_runs_of_one_factor() -> None:
    X, A = sym("X", ("n", "n")), sym("A", ("n", "n"))
    assert powers([X, X, X, A, X, A, A]) == [matpow(X, 3), A, X, matpow(A, 2)]
    assert powers([]) == []


@pytest.mark.parametrize("terms", [2000])
def test_long_sum_parses_to_its_value(terms: int) -> None:
    """A 2,000-term sum of quadratic forms with declared shapes has the right value."""
    text = " + ".join(f"x{i}'*A*x{i}" for i in range(1, terms + 1))
    shapes: dict[str, tuple[str, ...]] = {f"x{i}": ("n",) for i in range(1, terms + 1)}
    shapes["A"] = ("n", "n")
    f = md.parse(text, shapes)
    assert f.op is md.Op.ADD and len(f.args) == terms
    rng = np.random.default_rng(11)
    a = rng.standard_normal((3, 3))
    xs = {f"x{i}": rng.standard_normal(3) for i in range(1, terms + 1)}
    want = sum(v @ a @ v for v in xs.values())
    assert md.evaluate(f, A=a, **xs) == pytest.approx(want, rel=1e-10)


def test_long_sum_of_scaled_vector_parses_to_its_value() -> None:
    terms = 2000
    text = " + ".join(f"a{i}*x" for i in range(1, terms + 1))
    shapes: dict[str, tuple[str, ...]] = {f"a{i}": () for i in range(1, terms + 1)}
    shapes["x"] = ("n",)
    f = md.parse(text, shapes)
    assert f.shape == sym("x", ("n",)).shape
    coeffs = {f"a{i}": float(i) for i in range(1, terms + 1)}
    x = np.array([1.0, -2.0])
    np.testing.assert_allclose(md.evaluate(f, x=x, **coeffs), sum(coeffs.values()) * x)


def _deep(depth: int) -> tuple[md.Expr, md.Expr]:
    f = md.parse("sin(" * depth + "x" + ")" * depth, {"x": ()})
    return f, md.grad(f, "x")  # type: ignore[return-value]


def _named_chars(depth: int) -> int:
    shown, where = with_names(list(_deep(depth)))
    return sum(map(len, shown)) + sum(len(n) + len(d) for n, d in where)


def test_deep_composition_prints_linearly_over_named_parts() -> None:
    """Doubling the depth of sin(sin(⋯x)) about doubles the text of f and its gradient
    printed over named parts; without names the gradient's text grows quadratically."""
    small, large = _named_chars(50), _named_chars(100)
    assert large <= 2.3 * small
    plain_small, plain_large = (len(md.to_unicode(_deep(d)[1])) for d in (50, 100))
    assert plain_large >= 3.5 * plain_small


def test_deep_composition_named_parts_inline_to_the_gradient() -> None:
    """The named form of the depth-100 gradient is the gradient, and the gradient is the
    chain rule's product of cosines (numerically, at one point)."""
    f, g = _deep(100)
    named = name_parts([f, g])
    assert named.inline() == [f, g]
    x, want = 0.7, 1.0
    for _ in range(100):
        want *= np.cos(x)
        x = np.sin(x)
    assert float(md.evaluate(g, x=0.7)) == pytest.approx(want, rel=1e-10)
