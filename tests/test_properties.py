"""Properties on random well-shaped expressions (``matdiff.testing``): every Op, depth <= 6.

* the gradient equals central finite differences, and simplifying it keeps its value;
* ``simplify`` keeps the value of an expression;
* ``parse(to_text(e), shapes) is e`` (ASCII) and the same for LaTeX;
* the NumPy backend of ``md.compile`` agrees with ``matdiff.check.evaluate``; JAX and
  PyTorch agree where installed, and JAX autodiff is an independent oracle;
* the gradient of a sum is the sum of the gradients; the Hessian is the finite-difference
  Jacobian of the gradient.

Examples are derandomized (the same cases on every run, so a strict xfail is stable) and
few (CI on two cores); ``benchmarks/soak.py`` runs the same checks at scale.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import matdiff as md
from matdiff import expr as E
from matdiff.check import evaluate, fd_gradient, fd_jacobian
from matdiff.diff import gradients
from matdiff.testing import close, exprs, point, random_case, texts, verify

CASES = settings(max_examples=60, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _assert_ok(e: E.Expr, stages: tuple[str, ...]) -> None:
    r = verify(e, seed=1, stages=stages)
    assert r.kind in ("ok", "skipped"), f"{r.kind} in {r.stage}: {r.detail}\n  f = {e}"


@CASES
@given(exprs())
def test_gradient_equals_finite_differences(e):
    _assert_ok(e, ("grad",))


@CASES
@given(exprs())
def test_simplify_keeps_the_value(e):
    _assert_ok(e, ("simplify",))


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
    text, shapes = case
    try:
        md.parse(text, shapes=shapes)
    except md.MatdiffError as err:  # a printing bug (issue 3) is allowed an honest error
        assert 0 <= err.pos <= len(text)


@CASES
@given(exprs())
def test_numpy_backend_agrees_with_evaluate(e):
    _assert_ok(e, ("numpy",))


def _backend_agrees(e: E.Expr, backend: str, to_float) -> None:
    where = point(e, 2)
    if where is None:
        return
    env, sizes = where
    try:
        fn = md.compile(e, backend=backend)
    except md.MatdiffError as err:
        assert "is not the size of any input" in err.message
        return
    ref = float(evaluate(e, env, sizes))
    assert close(ref, to_float(fn(**env)), 1e-9) < 1e-7, str(e)


@CASES
@given(exprs())
def test_jax_backend_agrees(e):
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    _backend_agrees(e, "jax", float)


@CASES
@given(exprs())
def test_torch_backend_agrees(e):
    torch = pytest.importorskip("torch")
    _backend_agrees(e, "torch", lambda v: float(torch.as_tensor(v)))


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(exprs())
def test_jax_autodiff_is_an_independent_oracle(e):
    """The symbolic gradient against JAX's reverse mode on the reference formula."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    where = point(e, 3)
    if where is None:
        return
    env, sizes = where
    try:
        fn = md.compile(e, backend="jax")
    except md.MatdiffError:
        return
    names = list(E.free_symbols(e))
    if not names:
        return
    auto = jax.grad(lambda *xs: fn(**dict(zip(names, xs, strict=True))),
                    argnums=tuple(range(len(names))))(*(np.asarray(env[n]) for n in names))
    grads = md.grad(e, names)
    value = abs(float(evaluate(e, env, sizes)))
    for name, g_auto in zip(names, auto, strict=True):
        g = evaluate(grads[name], env, sizes)
        assert close(g, np.asarray(g_auto), 1e-6 * max(1.0, value)) < 1e-6, (name, str(e))


@CASES
@given(exprs(max_depth=4), exprs(max_depth=4))
def test_gradient_of_a_sum_is_the_sum_of_gradients(f, g):
    h = E.add(f, g)
    where = point(h, 4)
    if where is None:
        return
    env, sizes = where
    names = list(E.free_symbols(h))
    dh = gradients(h, names)
    for n in names:
        total = np.zeros(np.shape(evaluate(dh[n], env, sizes)))
        for part in (f, g):
            if n in E.free_symbols(part):
                total = total + evaluate(gradients(part, [n])[n], env, sizes)
        assert close(evaluate(dh[n], env, sizes), total, 1e-9) < 1e-8, str(h)


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(exprs(max_depth=4), st.sampled_from(["x", "A"]))
def test_hessian_is_the_jacobian_of_the_gradient(e, wrt):
    if wrt not in E.free_symbols(e):
        return
    where = point(e, 5)
    if where is None:
        return
    env, sizes = where
    g = md.grad(e, wrt)
    try:
        h = md.hessian(e, wrt)
    except md.MatdiffError:
        return
    fd = fd_jacobian(g, wrt, env, sizes)
    value = abs(float(evaluate(e, env, sizes)))
    assert close(evaluate(h, env, sizes), fd, 1e-5 * max(1.0, value)) < 1e-4, str(e)


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(exprs(shape="v", max_depth=4), st.sampled_from(["x", "A", "y"]))
def test_jacobian_equals_finite_differences(e, wrt):
    if wrt not in E.free_symbols(e):
        return
    where = point(e, 6)
    if where is None:
        return
    env, sizes = where
    try:
        j = md.jacobian(e, wrt)
    except md.MatdiffError:
        return
    value = float(np.max(np.abs(evaluate(e, env, sizes))))
    got = evaluate(j, env, sizes)
    assert close(got, fd_jacobian(e, wrt, env, sizes), 1e-5 * max(1.0, value)) < 1e-4, str(e)


def test_every_op_is_generated():
    """The generator reaches every Op of the language (the soak run counts them too)."""
    from matdiff.testing import random_expr

    seen = {n.op for seed in range(300) for n in random_expr(seed).walk()}
    assert seen == set(E.Op)


def test_fd_gradient_is_honest_at_a_kink():
    """At a kink the check says it found no clean point instead of a false verdict."""
    x = E.sym("x", ("n",))
    f = E.total(E.apply(E.Op.RELU, E.sub(x, x)))
    assert verify(f).kind == "skipped"
    env = {"x": np.zeros(3)}
    assert np.allclose(fd_gradient(f, "x", env, {"n": 3}), 0.0)


def test_the_soak_backends_stage_compares_jax_and_torch_code() -> None:
    """``soak.py --backends``: value and gradients compiled for JAX and PyTorch agree with
    the NumPy code on the first soak cases."""
    jax = pytest.importorskip("jax")
    pytest.importorskip("torch")
    jax.config.update("jax_enable_x64", True)
    results = [random_case(seed, backends=True) for seed in range(6)]
    assert all(r.kind in ("ok", "skipped") for r in results), \
        [(r.kind, r.detail) for r in results]
    checked = [r for r in results if "torch" in r.errors and "jax" in r.errors]
    assert checked and all(r.errors["jax"] < 1e-5 and r.errors["torch"] < 1e-5 for r in checked)
