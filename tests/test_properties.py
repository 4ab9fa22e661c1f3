"""Properties on random well-shaped expressions (``matdiff.strategies``): every Op, depth <= 6.

* the gradient equals central finite differences, and simplifying it keeps its value;
* ``simplify`` keeps the value of an expression;
* ``parse(to_text(e), shapes) is e`` (ASCII) and the same for LaTeX;
* the NumPy backend of ``md.compile`` agrees with ``matdiff.check.evaluate``; so do JAX
  and PyTorch (marked ``jax``/``torch``: they fail without the extras), and JAX autodiff
  is an independent oracle;
* the gradient of a sum is the sum of the gradients; the Hessian is the finite-difference
  Jacobian of the gradient; so is a vector function's Jacobian.

An example is set aside only where ``point`` finds no point in the function's domain off
its kinks, through the ``tally`` fixture (tests/conftest.py), which fails the test when
more than a quarter of its examples were set aside. Examples are derandomized (the same
cases on every run) and few (CI on two cores); ``benchmarks/soak.py`` runs the same checks
at scale.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import matdiff as md
from matdiff import expr as E
from matdiff.check import evaluate, fd_gradient, fd_jacobian
from matdiff.diff import gradients
from matdiff.strategies import exprs, texts
from matdiff.testing import (
    SIZES,
    close,
    point,
    random_case,
    random_expr,
    run_compiled,
    verify,
)
from matdiff.testing_complex import random_complex_expr

# the tally fixture (tests/conftest.py) is shared by the examples of one test on purpose
_CHECKS = [HealthCheck.too_slow, HealthCheck.data_too_large,
           HealthCheck.function_scoped_fixture]
CASES = settings(max_examples=60, deadline=None, derandomize=True,
                 suppress_health_check=_CHECKS)
FEWER = settings(max_examples=25, deadline=None, derandomize=True,
                 suppress_health_check=_CHECKS)


def _variables(e: E.Expr) -> bool:
    return bool(E.free_symbols(e))


def _with_variable(shape: str) -> st.SearchStrategy[tuple[E.Expr, str]]:
    """An expression that has variables, and one of them."""
    return exprs(shape=shape, max_depth=4).filter(_variables).flatmap(
        lambda e: st.tuples(st.just(e), st.sampled_from(sorted(E.free_symbols(e)))))


def _where(e: E.Expr, seed: int, tally: Any) -> tuple[dict[str, Any], dict[str, int]]:
    """A point in the domain of ``e``; the example is set aside (and counted) without one."""
    where = point(e, seed)
    if where is None:
        tally.reject()
    assert where is not None
    tally.accept()
    return where


def _assert_ok(e: E.Expr, stages: tuple[str, ...], tally: Any) -> None:
    r = verify(e, seed=1, stages=stages)
    if r.kind == "skipped":  # verify skips only where it finds no point in the domain
        tally.reject()
    tally.accept()
    assert r.kind == "ok", f"{r.kind} in {r.stage}: {r.detail}\n  f = {e}"


@CASES
@given(exprs())
def test_gradient_equals_finite_differences(tally, e):
    _assert_ok(e, ("grad",), tally)


@CASES
@given(exprs())
def test_simplify_keeps_the_value(tally, e):
    _assert_ok(e, ("simplify",), tally)


@CASES
@given(exprs())
def test_ascii_round_trip(e):
    assert md.parse(md.to_text(e), shapes=md.shapes_of(e)) is e


@CASES
@given(exprs())
def test_latex_round_trip(e):
    assert md.parse(md.to_latex(e), shapes=md.shapes_of(e), syntax="latex") is e


@CASES
@given(texts(max_depth=4))
def test_text_strategy_parses(case):
    """The strategy's text parses, with its declarations, and prints back to itself."""
    text, shapes = case
    assert md.to_text(md.parse(text, shapes=shapes)) == text


@CASES
@given(exprs())
def test_numpy_backend_agrees_with_evaluate(tally, e):
    _assert_ok(e, ("numpy",), tally)


def _backend_agrees(e: E.Expr, backend: str, to_float, tally) -> None:
    env, sizes = _where(e, 2, tally)
    ref = float(evaluate(e, env, sizes))
    assert close(ref, to_float(run_compiled([e], env, sizes, backend)[0]), 1e-9) < 1e-7, str(e)


@pytest.mark.jax
@CASES
@given(exprs())
def test_jax_backend_agrees(tally, e):
    import jax
    jax.config.update("jax_enable_x64", True)
    _backend_agrees(e, "jax", float, tally)


@pytest.mark.torch
@CASES
@given(exprs())
def test_torch_backend_agrees(tally, e):
    import torch
    _backend_agrees(e, "torch", lambda v: float(torch.as_tensor(v)), tally)


@pytest.mark.jax
@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=_CHECKS)
@given(exprs().filter(_variables))
def test_jax_autodiff_is_an_independent_oracle(tally, e):
    """The symbolic gradient against JAX's reverse mode on the reference formula."""
    import jax
    jax.config.update("jax_enable_x64", True)
    # JAX cannot differentiate its own code for these: jax.scipy.linalg.sqrtm's Schur form
    # has no derivative rule, and the logarithm's helper iterates in Python
    assume(not any(n.op in (E.Op.LOGM, E.Op.SQRTM) or n.op is E.Op.FRECHET and
                   n.attr != "expm" for n in e.walk()))
    env, sizes = _where(e, 3, tally)
    fn = md.compile([e, SIZES], backend="jax")
    carrier = np.zeros((sizes.get("n", 2), sizes.get("m", 2)))
    names = list(E.free_symbols(e))
    auto = jax.grad(lambda *xs: fn(**dict(zip(names, xs, strict=True)), sizes=carrier)[0],
                    argnums=tuple(range(len(names))))(*(np.asarray(env[n]) for n in names))
    grads = md.grad(e, names)
    value = abs(float(evaluate(e, env, sizes)))
    for name, g_auto in zip(names, auto, strict=True):
        g = evaluate(grads[name], env, sizes)
        assert close(g, np.asarray(g_auto), 1e-6 * max(1.0, value)) < 1e-6, (name, str(e))


@CASES
@given(exprs(max_depth=4), exprs(max_depth=4))
def test_gradient_of_a_sum_is_the_sum_of_gradients(tally, f, g):
    h = E.add(f, g)
    env, sizes = _where(h, 4, tally)
    names = list(E.free_symbols(h))
    dh = gradients(h, names)
    for n in names:
        total = np.zeros(np.shape(evaluate(dh[n], env, sizes)))
        for part in (f, g):
            if n in E.free_symbols(part):
                total = total + evaluate(gradients(part, [n])[n], env, sizes)
        assert close(evaluate(dh[n], env, sizes), total, 1e-9) < 1e-8, str(h)


@FEWER
@given(_with_variable("s"))
def test_hessian_is_the_jacobian_of_the_gradient(tally, case):
    e, wrt = case
    env, sizes = _where(e, 5, tally)
    g = md.grad(e, wrt)
    h = md.hessian(e, wrt)
    fd = fd_jacobian(g, wrt, env, sizes)
    value = abs(float(evaluate(e, env, sizes)))
    assert close(evaluate(h, env, sizes), fd, 1e-5 * max(1.0, value)) < 1e-4, str(e)


@FEWER
@given(_with_variable("v"))
def test_jacobian_equals_finite_differences(tally, case):
    e, wrt = case
    env, sizes = _where(e, 6, tally)
    j = md.jacobian(e, wrt)
    value = float(np.max(np.abs(evaluate(e, env, sizes))))
    fd = fd_jacobian(e, wrt, env, sizes)
    got = np.asarray(evaluate(j, env, sizes)).reshape(fd.shape)   # n×1 evaluates as 1-D
    assert close(got, fd, 1e-5 * max(1.0, value)) < 1e-4, str(e)


def test_every_op_is_generated():
    """The generators (real, and real functions of complex matrices) reach every Op of the
    language (the soak run counts them too)."""
    seen = {n.op for seed in range(300) for n in random_expr(seed).walk()}
    seen |= {n.op for seed in range(100) for n in random_complex_expr(seed).walk()}
    assert seen == set(E.Op)


def test_fd_gradient_is_honest_at_a_kink():
    """At a kink the check says it found no clean point instead of a false verdict."""
    x = E.sym("x", ("n",))
    f = E.total(E.apply(E.Op.RELU, E.sub(x, x)))
    assert verify(f).kind == "skipped"
    env = {"x": np.zeros(3)}
    assert np.allclose(fd_gradient(f, "x", env, {"n": 3}), 0.0)


def test_the_soak_asks_the_three_way_check_where_fixed_steps_fail():
    """cos(1e6 xᵀx): the soak's fixed steps cross periods and disagree with the right
    gradient; the three-way check's second opinion clears it. At 1e9 nothing resolves the
    derivative: inconclusive with its reason, not a mismatch."""
    x = E.sym("x", ("n",))
    quad = E.total(E.hadamard(x, x))
    r = verify(E.apply(E.Op.COS, E.scale(E.const(10 ** 6), quad)))
    assert (r.kind, r.second_opinions) == ("ok", 1), r.detail
    r = verify(E.apply(E.Op.COS, E.scale(E.const(10 ** 9), quad)))
    assert (r.kind, r.reason) == ("inconclusive", "ill-conditioned"), r.detail


def test_the_second_opinion_keeps_a_wrong_gradient_a_mismatch(monkeypatch):
    """A gradient made wrong (doubled) stays a mismatch after the second opinion."""
    import matdiff.testing as testing
    right = testing.gradients
    def doubled(e, names):
        return {n: E.scale(E.const(2), g) for n, g in right(e, names).items()}
    monkeypatch.setattr(testing, "gradients", doubled)
    x = E.sym("x", ("n",))
    r = verify(E.apply(E.Op.COS, E.scale(E.const(10 ** 6), E.total(E.hadamard(x, x)))))
    assert (r.kind, r.stage) == ("mismatch", "grad"), r.detail


@pytest.mark.jax
@pytest.mark.torch
def test_the_soak_backends_stage_compares_jax_and_torch_code() -> None:
    """``soak.py --backends``: value and gradients compiled for JAX and PyTorch agree with
    the NumPy code on the first soak cases."""
    import jax
    jax.config.update("jax_enable_x64", True)
    results = [random_case(seed, backends=True) for seed in range(6)]
    assert all(r.kind in ("ok", "skipped") for r in results), \
        [(r.kind, r.detail) for r in results]
    checked = [r for r in results if "torch" in r.errors and "jax" in r.errors]
    assert checked and all(r.errors["jax"] < 1e-5 and r.errors["torch"] < 1e-5 for r in checked)


_BLOCK_HYPOTHESIS = """
import sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name == "hypothesis" or name.startswith("hypothesis."):
            raise ImportError(f"{name} is blocked")
sys.meta_path.insert(0, Blocker())
import matdiff, matdiff.testing
print(matdiff.testing.random_case(2).kind)
try:
    import matdiff.strategies
except ImportError as err:
    print(err)
"""


def test_the_package_imports_without_hypothesis() -> None:
    """hypothesis is a test-only extra: matdiff and matdiff.testing (the soak run) import
    without it; matdiff.strategies is the one module that needs it."""
    done = subprocess.run([sys.executable, "-c", _BLOCK_HYPOTHESIS], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["ok", "hypothesis is blocked"]


@pytest.mark.jax
@pytest.mark.torch
def test_backends_agree_to_within_the_rounding_of_a_zero_gradient(monkeypatch) -> None:
    """d svd_u1(bD)/db is 0 in exact arithmetic (u₁ does not change with the scale b > 0):
    NumPy and PyTorch evaluate it to different rounding noise (1e-13). The soak measures
    that noise (NumPy's value moved by relative 1e-12 input changes) and does not call it
    a backend mismatch; without that measure it would (the soak's case 301321)."""
    import jax

    import matdiff.testing as testing
    jax.config.update("jax_enable_x64", True)
    f = md.parse("svd_u1(b*D)'*(1 - u)", shapes={"b": [], "D": ["m", "n"], "u": ["m"]})
    stages = ("grad", "simplify", "numpy", "backends")
    assert verify(f, seed=301321, stages=stages).kind == "ok"
    monkeypatch.setattr(testing, "_rounding_noise", lambda *a: [0.0] * 4)
    r = verify(f, seed=301321, stages=stages)
    assert (r.kind, r.stage) == ("mismatch", "torch"), (r.kind, r.stage, r.detail)


def test_a_point_where_scipy_refuses_a_nan_is_drawn_again() -> None:
    """The soak's case 217702: at a draw with free signs log(P) had NaN entries, and SciPy's
    logm (inside the Fréchet derivative's reference value) raised ValueError instead of
    returning NaN; the point is drawn again instead of the case being an error."""
    f = md.parse("lambda_min(B) + tr(kron(cos(C.^3), logm_frechet(W*V, log(P))))",
                 shapes={k: ["n", "n"] for k in "BCWVP"})
    assert verify(f, 217702).kind == "ok"


def test_a_value_within_its_own_rounding_is_not_a_mismatch(monkeypatch) -> None:
    """The soak's case 517968 (cos of an argument of 5e11): the generated code and the
    reference differ by 4e-5, which is the value's own rounding noise there (a relative 1e-12
    move of the inputs moves it more); the gradients are then ill-conditioned, not wrong. The
    comparison without the noise measure calls the same case a mismatch."""
    import matdiff.testing as testing
    e = md.parse("cos(([mean(x)*C - sin(B), unvec(K(n, m)*vec(G), m, n)']*[A; tril(D)]*"
                 "eigvec_max(inv(Dw*Dw)))'*(exp(||[C, ones(n, m)]||_1)*(y + y) + y))",
                 shapes={"x": ["n"], "y": ["n"], "G": ["n", "m"], "D": ["m", "n"],
                         "Dw": ["n", "n", "diagonal"], **{k: ["n", "n"] for k in "ABC"}})
    r = verify(e, 517968)
    assert (r.kind, r.reason) == ("inconclusive", "ill-conditioned"), (r.kind, r.detail)
    monkeypatch.setattr(testing, "_value_error",
                        lambda e, env, sizes, value, other: testing.close(value, other, 1e-9))
    r = verify(e, 517968)
    assert (r.kind, r.stage) == ("mismatch", "numpy"), (r.kind, r.stage, r.detail)
