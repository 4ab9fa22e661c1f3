"""The ML functions and reductions of issue 14 (softplus, log1p, expm1, sinh, cosh, arcsinh,
max/min, logsumexp, softmax, mean, sum(X, k)): every construct with its gradient and its
Hessian-vector product checked against finite differences by the project's check
(``md.check``, ``check_claims``); the textbook gradients of binary and softmax
cross-entropy, logistic regression and a two-layer network; the stable forms
(``stable.STABLE``) against their naive formulas; and no overflow at |z| = 1000 in the
reference evaluator or in any backend.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import matdiff as md
from matdiff import expr as E
from matdiff import forward as F
from matdiff.api import hvp_directions
from matdiff.check import Claim, check_claims, evaluate, not_differentiable, random_inputs
from matdiff.expr import Op
from matdiff.stable import STABLE, stable_form

# ----------------------------------------------------------------------------- the table

# (construct, a scalar function using it); shapes are inferred (x, y, b vectors; A, X, Y
# matrices), except where declared
LANGUAGE: list[tuple[str, str, dict[str, tuple[Any, ...]] | None]] = [
    ("softplus", "sum(softplus(A*x))", None),
    ("log1p", "sum(log1p(x .* x)) + sum(log1p(X))", None),    # X drawn in log1p's domain
    ("expm1", "y'*expm1(A*x)", None),
    ("sinh", "sum(sinh(A*x))", None),
    ("cosh", "sum(cosh(X*Y))", None),
    ("arcsinh", "sum(arcsinh(A*x))", None),
    ("asinh", "y'*asinh(x .* x)", None),
    ("max-scalar-right", "sum(max(A*x, 0) .^ 2)", None),
    ("max-scalar-left", "y'*max(0, A*x)", None),
    ("max-matrices", "sum(max(X, Y) .* X)", None),
    ("min-scalar", "sum(min(x, 1) .^ 3)", None),
    ("min-matrices", "tr(min(X, Y)*X)", None),
    ("logsumexp-vector", "logsumexp(A*x)", None),
    ("logsumexp-matrix", "logsumexp(X*Y)", None),
    ("softmax", "y'*softmax(A*x)", None),
    ("softmax-norm", "||softmax(x)||^2", None),
    ("mean", "mean(X .* X)", None),
    ("mean-vector", "mean(A*x)^2", None),
    ("sum-columns", "sum(X .* X, 1)*y", None),
    ("sum-rows", "y'*sum(X .^ 3, 2)", None),
    ("log-one-plus-exp", "sum(log(1 + exp(A*x)))", None),
    ("log-sigmoid", "sum(log(sigmoid(A*x)))", None),
    ("log-one-minus-sigmoid", "sum(log(1 - sigmoid(A*x)))", None),
    ("log-softmax", "y'*log(softmax(A*x))", None),
    ("latex-softplus", r"\sum \operatorname{softplus}(x)", None),
    ("latex-max", r"\mathbf{1}^T \max(A x, 0)", None),
    ("latex-sinh-cosh", r"\mathbf{1}^T \sinh(x) + \mathbf{1}^T \cosh(A x)", None),
    ("latex-arcsinh", r"y^T \operatorname{arcsinh}(A x)", None),
    ("latex-logsumexp", r"\operatorname{logsumexp}(W x)", None),
    ("declared", "sum(max(X, 0)) + mean(X) + logsumexp(X)", {"X": (3, 2)}),
]
IDS = [c[0] for c in LANGUAGE]


def _parsed(text: str, shapes: dict[str, tuple[Any, ...]] | None) -> md.Expr:
    if text.startswith(r"\sum"):                # \sum with no limits is not LaTeX input here
        text = r"\mathbf{1}^T" + text[4:]
    return md.parse(text, shapes=shapes)


@pytest.mark.parametrize(("name", "text", "shapes"), LANGUAGE, ids=IDS)
def test_gradient_matches_finite_differences(name: str, text: str, shapes: Any) -> None:
    f = _parsed(text, shapes)
    names = list(E.free_symbols(f))
    report = md.check(f, names, seed=3)
    assert report.ok, f"{name}: {report}"


def _hvp_report(f: md.Expr, names: list[str]) -> Any:
    """The project's check of each variable's Hessian-vector product: the directional
    derivative of the gradient along V (``api._claims`` for ``what="hvp"``)."""
    grads = md.grad(f, names)
    assert isinstance(grads, dict)
    directions = hvp_directions(f, names, {})          # V, V1, ...: one per variable
    claims = {n: Claim(n, grads[n], F.hvp(f, n, v.name), "direction", v.name)
              for n, v in directions.items()}
    return check_claims(claims, seed=5)


@pytest.mark.parametrize(("name", "text", "shapes"), LANGUAGE, ids=IDS)
def test_hessian_vector_product_matches_finite_differences(name: str, text: str,
                                                           shapes: Any) -> None:
    f = _parsed(text, shapes)
    report = _hvp_report(f, list(E.free_symbols(f)))
    assert report.ok, f"{name}: {report}"


def test_a_wrong_hessian_vector_product_is_a_mismatch() -> None:
    """The HVP check can fail: twice the product of logsumexp's Hessian is caught."""
    f = md.parse("logsumexp(A*x)")
    g = md.grad(f, "x")
    v = F.hvp_direction(f, "x")
    wrong = E.scale(E.const(2), F.hvp(f, "x", v.name))
    assert isinstance(g, md.Expr)
    report = check_claims({"x": Claim("x", g, wrong, "direction", v.name)}, seed=5)
    assert report.failed, str(report)


def test_every_new_op_is_in_the_table() -> None:
    used = {n.op for _, text, shapes in LANGUAGE for n in E.toposort([_parsed(text, shapes)])}
    new = {Op.SOFTPLUS, Op.LOG1P, Op.EXPM1, Op.SINH, Op.COSH, Op.ARCSINH, Op.MAX, Op.MIN,
           Op.LOGSUMEXP, Op.SOFTMAX, Op.MEAN}
    assert new <= used, new - used


# ----------------------------------------------------------------------------- reading


@pytest.mark.parametrize(("text", "printed", "shape"), [
    ("max(x, 0)", "max(x, 0)", ("m", "1")),
    ("max(0, x)", "max(0, x)", ("m", "1")),
    ("min(X, 2)", "min(X, 2)", ("m", "n")),
    ("max(alpha, beta)", "max(alpha, beta)", ("1", "1")),   # Greek names: scalars
    ("sum(X, 1)", "ones(1, m)*X", ("1", "n")),
    ("sum(X, 2)", "X*ones(n)", ("m", "1")),
    ("asinh(x)", "arcsinh(x)", ("m", "1")),
    ("lse(x)", "logsumexp(x)", ("1", "1")),
    (r"\sinh(x)", "sinh(x)", ("m", "1")),
    (r"\max(x, 0)", "max(x, 0)", ("m", "1")),
    (r"\sinh^{-1}(x)", "arcsinh(x)", ("m", "1")),          # the inverse, not 1/sinh
    (r"\sin^{-1} x", "arcsin(x)", ("m", "1")),
    (r"\operatorname{arcsinh}(x)", "arcsinh(x)", ("m", "1")),
], ids=lambda v: v if isinstance(v, str) else "")
def test_reading(text: str, printed: str, shape: tuple[str, str]) -> None:
    e = md.parse(text, shapes={"X": ("m", "n")} if "X" in text else None)
    assert str(e) == printed
    assert tuple(str(d) for d in e.shape) == shape
    assert md.parse(str(e), shapes=md.shapes_of(e)) is e


@pytest.mark.parametrize(("text", "at", "fragment"), [
    ("softmax(X)", "softmax", "exp(X) ./ (ones(m, 1)*sum(exp(X), 1))"),
    ("sum(X, 3)", "3", "k = 1"),
    ("sum(X, k)", "k", "k = 1"),
    ("max(x)", "max", "takes 2"),
    ("max(X, y)", "max", "max(X, Y)"),
    (r"\cosh^{-1}(x)", r"\cosh", "inverse function of cosh"),
    (r"\min_X \|X\|_F^2", r"\min", "optimisation problem"),
])
def test_misuse_is_a_clear_error(text: str, at: str, fragment: str) -> None:
    shapes = {"X": ("m", "n"), "y": ("p",)} if "X" in text else None
    with pytest.raises(md.MatdiffError) as info:
        md.parse(text, shapes=shapes)
    assert fragment in info.value.message
    assert info.value.pos == text.index(at), info.value.message


def test_max_tie_convention_splits_the_derivative() -> None:
    """At a tie X = Y each side gets half (README, Conventions); the check calls a point
    near a tie not differentiable."""
    g = md.grad("sum(max(x, y))", ["x", "y"])
    assert isinstance(g, dict)
    env = {"x": np.array([1.0, 2.0, 3.0]), "y": np.array([1.0, 0.0, 5.0])}
    np.testing.assert_allclose(evaluate(g["x"], env), [0.5, 1.0, 0.0])
    np.testing.assert_allclose(evaluate(g["y"], env), [0.5, 0.0, 1.0])
    near = {"x": np.array([1.0, 2.0, 3.0]), "y": np.array([1.0 + 1e-9, 0.0, 5.0])}
    why = not_differentiable(md.parse("sum(max(x, y))"), near)
    assert why is not None and "kink" in why


# ----------------------------------------------------------------------------- textbook


TEXTBOOK = [
    ("binary-cross-entropy", "-(y'*log(sigmoid(X*w)) + (1-y)'*log(1-sigmoid(X*w)))", "w",
     "X'*(sigmoid(X*w) - y)", "Xᵀ(σ(Xw) − y)"),
    ("logistic-log-likelihood", "y'*log(sigmoid(X*w)) + (1-y)'*log(1-sigmoid(X*w))", "w",
     "X'*(y - sigmoid(X*w))", "Xᵀ(y − σ(Xw))"),
    ("logistic-loss-softplus", "sum(softplus(X*w)) - y'*X*w", "w",
     "X'*(sigmoid(X*w) - y)", "Xᵀ(σ(Xw) − y)"),
    ("softmax-cross-entropy", "-y'*log(softmax(W*x))", "W",      # 1ᵀy = 1 gives (s − y)xᵀ
     "(sum(y)*softmax(W*x) - y)*x'", "(sum(y) softmax(Wx) − y)xᵀ"),
    ("softmax-cross-entropy-logsumexp", "logsumexp(W*x) - y'*W*x", "W",
     "(softmax(W*x) - y)*x'", "(softmax(Wx) − y)xᵀ"),
    ("two-layer-softplus-W1", "||W2*softplus(W1*x) - y||^2", "W1",
     "2*W2'*(W2*softplus(W1*x) - y) .* sigmoid(W1*x)*x'",
     "2(W2ᵀ(W2 softplus(W1 x) − y) ⊙ σ(W1 x))xᵀ"),
    ("two-layer-softplus-W2", "||W2*softplus(W1*x) - y||^2", "W2",
     "2*(W2*softplus(W1*x) - y)*softplus(W1*x)'", "2(W2 softplus(W1 x) − y) softplus(W1 x)ᵀ"),
    ("log-sigmoid", "sum(log(sigmoid(x)))", "x", "1 - sigmoid(x)", "𝟏 − σ(x)"),
    ("softplus", "sum(softplus(x))", "x", "sigmoid(x)", "σ(x)"),
    ("logsumexp", "logsumexp(x)", "x", "softmax(x)", "softmax(x)"),
]


@pytest.mark.parametrize(("name", "text", "wrt", "ascii", "unicode"), TEXTBOOK,
                         ids=[t[0] for t in TEXTBOOK])
def test_textbook_gradient(name: str, text: str, wrt: str, ascii: str, unicode: str) -> None:
    g = md.grad(text, wrt)
    assert isinstance(g, md.Expr)
    assert (str(g), md.to_unicode(g)) == (ascii, unicode)
    assert md.check(text, wrt, seed=2).ok


# ----------------------------------------------------------------------------- stability


def _naive(e: md.Expr, env: dict[str, Any]) -> Any:
    """``e`` evaluated node by node without the stable forms (the check's EVAL rows)."""
    from matdiff.check import EVAL, bind_dims, to_internal, to_user
    sizes = bind_dims([e], env)
    d = (lambda dim: dim.subs(sizes).value)
    values: dict[md.Expr, Any] = {}
    for node in E.toposort([e]):
        values[node] = to_internal(env[node.name], (d(node.rows), d(node.cols))) \
            if node.op is Op.SYMBOL else EVAL[node.op](node, [values[a] for a in node.args], d)
    return to_user(values[e], e)


_z = E.sym("z", ("n",))
_Z = E.sym("Z", ("n", "n"))
STABLE_CASES = {
    "log-sigmoid": E.apply(Op.LOG, E.apply(Op.SIGMOID, _z)),
    "log-softmax": E.apply(Op.LOG, E.softmax(_z)),
    "log-sum-exp": E.apply(Op.LOG, E.total(E.apply(Op.EXP, _Z))),
    "log-one-plus-exp": E.apply(Op.LOG, E.add(E.ones(_z.shape), E.apply(Op.EXP, _z))),
    "log-one-minus-sigmoid": E.apply(Op.LOG, E.sub(E.ones(_z.shape),
                                                   E.apply(Op.SIGMOID, _z))),
    "log-one-plus": E.apply(Op.LOG, E.add(E.ones(_z.shape), E.hadamard(_z, _z))),
    "softmax-quotient": E.scale(E.hpow(E.total(E.apply(Op.EXP, _z)), -1),
                                E.apply(Op.EXP, _z)),
    "expm1": E.add(E.apply(Op.EXP, _Z), E.neg(E.ones(_Z.shape))),
}


def test_every_stable_row_has_a_case() -> None:
    rows = {c.op for c in STABLE_CASES.values()}
    assert set(STABLE) <= rows
    assert all(stable_form(e) is not None for e in STABLE_CASES.values())


@pytest.mark.parametrize("name", list(STABLE_CASES))
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_stable_form_keeps_the_value(name: str, seed: int) -> None:
    """Each stable form equals its naive formula where the naive one does not overflow."""
    e = STABLE_CASES[name]
    form = stable_form(e)
    assert form is not None and form.shape == e.shape
    env, sizes = random_inputs([e], seed=seed)
    np.testing.assert_allclose(evaluate(form, env, sizes), _naive(e, env), rtol=1e-10,
                               atol=1e-12)


Z_BIG = np.array([1000.0, -1000.0, 0.5, -3.0])
# (function of z, its value at Z_BIG, its gradient there), computed by hand
OVERFLOW_CASES = {
    "softplus": ("sum(softplus(z))", 1000.0 + np.log1p(np.exp(0.5)) + np.log1p(np.exp(-3.0)),
                 1 / (1 + np.exp(-np.array([700.0, -700.0, 0.5, -3.0])))),
    "log-one-plus-exp": ("sum(log(1 + exp(z)))",
                         1000.0 + np.log1p(np.exp(0.5)) + np.log1p(np.exp(-3.0)),
                         1 / (1 + np.exp(-np.array([700.0, -700.0, 0.5, -3.0])))),
    "log-sigmoid": ("sum(log(sigmoid(z)))",
                    -1000.0 - np.log1p(np.exp(-0.5)) - np.log1p(np.exp(3.0)),
                    1 / (1 + np.exp(np.array([700.0, -700.0, 0.5, -3.0])))),
    "log-one-minus-sigmoid": ("sum(log(1 - sigmoid(z)))",
                              -1000.0 - np.log1p(np.exp(0.5)) - np.log1p(np.exp(-3.0)),
                              -1 / (1 + np.exp(-np.array([700.0, -700.0, 0.5, -3.0])))),
    "logsumexp": ("logsumexp(z)", 1000.0,
                  np.array([1.0, 0.0, 0.0, 0.0])),
    "log-sum-exp": ("log(sum(exp(z)))", 1000.0, np.array([1.0, 0.0, 0.0, 0.0])),
    "log-softmax": ("y'*log(softmax(z))", float(np.dot([1.0, 2.0, 0.0, 1.0],
                                                       Z_BIG - 1000.0)),
                    np.array([1.0, 2.0, 0.0, 1.0]) - 4.0 * np.array([1.0, 0.0, 0.0, 0.0])),
    "sigmoid": ("sum(sigmoid(z))", 1.0 + 1 / (1 + np.exp(-0.5)) + 1 / (1 + np.exp(3.0)),
                (lambda s: s * (1 - s))(1 / (1 + np.exp(-np.array([700.0, -700.0, 0.5,
                                                                    -3.0]))))),
}
_Y = np.array([1.0, 2.0, 0.0, 1.0])


def _exprs(text: str) -> tuple[md.Expr, md.Expr]:
    f = md.parse(text, shapes={"z": (4,), "y": (4,)})
    g = md.grad(f, "z")
    assert isinstance(g, md.Expr)
    return f, g


@pytest.mark.parametrize("name", list(OVERFLOW_CASES))
def test_reference_evaluator_does_not_overflow(name: str) -> None:
    text, value, grad = OVERFLOW_CASES[name]
    f, g = _exprs(text)
    env = {"z": Z_BIG, "y": _Y}
    with warnings.catch_warnings():
        warnings.simplefilter("error")                 # an overflow warning fails the test
        got_f, got_g = evaluate([f, g], env)
    np.testing.assert_allclose(got_f, value, rtol=1e-12)
    np.testing.assert_allclose(got_g, grad, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("backend", [
    "numpy", pytest.param("jax", marks=pytest.mark.jax),
    pytest.param("torch", marks=pytest.mark.torch)])
@pytest.mark.parametrize("name", list(OVERFLOW_CASES))
def test_generated_code_does_not_overflow(name: str, backend: str, extra: Any) -> None:
    """Value and gradient at |z| = 1000 are finite and right in every backend (NumPy with
    an overflow, a division by zero or a NaN an error)."""
    mod = extra(backend)
    text, value, grad = OVERFLOW_CASES[name]
    f, g = _exprs(text)
    fn = md.compile([f, g], backend=backend)
    args: dict[str, Any] = {"z": Z_BIG, "y": _Y}
    if backend == "torch":
        args = {k: mod.as_tensor(v, dtype=mod.float64) for k, v in args.items()}
    with np.errstate(over="raise", divide="raise", invalid="raise"):   # underflow is exact
        got_f, got_g = fn(**{k: v for k, v in args.items() if k in text})
    as_array = (lambda v: np.asarray(v.detach() if hasattr(v, "detach") else v, dtype=float))
    np.testing.assert_allclose(as_array(got_f), value, rtol=1e-12)
    np.testing.assert_allclose(as_array(got_g).reshape(-1), grad, rtol=1e-12, atol=1e-300)


# ----------------------------------------------------------------------------- minimize


def test_minimize_says_max_of_two_variables_is_not_differentiable() -> None:
    """max(x, c) has a kink where x = c even when squared; max(u, 0)² is C¹, like relu²."""
    c = np.array([0.5, -1.0, 2.0])
    with pytest.raises(md.MatdiffError) as err:
        md.minimize("||x - c||^2 + sum(max(x, c).^2)", "x", data={"c": c})
    assert "max(x, c) is not differentiable" in err.value.message
    res = md.minimize("||x - c||^2 + sum(max(x - 1, 0).^2)", "x", data={"c": c})
    assert res.success, res.message
    np.testing.assert_allclose(res.x["x"], [0.5, -1.0, 1.5], atol=1e-5)


def test_the_column_wise_softmax_the_error_names_is_differentiated() -> None:
    """The form the softmax error suggests for a matrix is valid input with a checked
    gradient, and its columns are each a softmax."""
    text = "sum(Y .* log(exp(X) ./ (ones(m, 1)*sum(exp(X), 1))))"
    shapes = {"X": ("m", "n"), "Y": ("m", "n")}
    assert md.check(text, "X", shapes=shapes, seed=1).ok
    cols = md.parse("exp(X) ./ (ones(m, 1)*sum(exp(X), 1))", shapes={"X": ("m", "n")})
    x = np.random.default_rng(0).standard_normal((3, 2))
    np.testing.assert_allclose(evaluate(cols, {"X": x}).sum(axis=0), [1.0, 1.0])
