"""The public API: zero derivatives for variables that do not occur, cross Hessians,
argument validation, and fuzzing of the arguments (not only the text): whatever the
arguments, a public function returns or raises ``MatdiffError``, nothing else.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import matdiff as md
from matdiff import expr as E
from matdiff import points
from matdiff.check import evaluate, fd_jacobian, rel_error, vec_of

# ----------------------------------------------------------------------------- absent variables


def test_a_declared_variable_that_does_not_occur_has_a_zero_gradient():
    g = md.grad("x'*A*x", "z", shapes={"z": ("n",)})
    assert g.op is E.Op.ZERO and str(g.rows) == "n" and str(g.cols) == "1"
    grads = md.grad("x'*A*x", ["x", "Z"], shapes={"Z": ("m", "k")})
    assert str(grads["x"]) == "(A + A')*x"
    assert grads["Z"].op is E.Op.ZERO and [str(d) for d in grads["Z"].shape] == ["m", "k"]


def test_a_symbol_passed_as_wrt_carries_its_shape():
    f = md.parse("tr(A*X)")
    y = E.sym("Y", ("p", "q"))
    assert md.grad(f, y).shape == y.shape and md.grad(f, y).op is E.Op.ZERO
    x = E.free_symbols(f)["X"]
    assert str(md.grad(f, x)) == "A'"


def test_a_typo_keeps_its_error_naming_the_variables():
    with pytest.raises(md.MatdiffError, match="'z' does not occur in the expression; its "
                                              "variables are x, A"):
        md.grad("x'*A*x", "z")
    for fn in (md.jacobian, md.hessian, md.hvp, md.differential, md.check, md.explain):
        with pytest.raises(md.MatdiffError, match="does not occur"):
            fn("x'*A*x", "z")


def test_every_kind_of_derivative_of_an_absent_variable_is_zero_of_its_shape():
    shapes = {"Z": ("p", "q")}
    f = "||A*x - b||^2"
    assert [str(d) for d in md.jacobian("A*x", "Z", shapes=shapes).shape] == ["m", "p*q"]
    assert [str(d) for d in md.hessian(f, "Z", shapes=shapes).shape] == ["p*q", "p*q"]
    assert [str(d) for d in md.hvp(f, "Z", shapes=shapes).shape] == ["p", "q"]
    assert E.is_zero(md.differential(f, "Z", shapes=shapes))
    blocks = md.hessian(f, ["x", "Z"], shapes=shapes)
    assert [str(d) for d in blocks["x", "Z"].shape] == ["n", "p*q"]
    rep = md.check(f, ["x", "Z"], shapes=shapes)
    assert rep.ok and rep.verdicts["Z"].status == "ok"
    assert any("Z does not occur" in n for n in rep.notes)
    out = md.report(f, ["x", "Z"], shapes={"Z": ["p", "q"]})
    assert out["shapes"]["Z"] == ["p", "q"] and out["check"]["Z"]["verdict"] == "ok"
    assert "Z does not occur in the expression: its derivative is zero" in out["notes"]


def test_sympy_style_derivatives_by_a_variable_that_does_not_occur():
    """SymPy's matrix-derivative tests ask for d/dX of expressions free of X: zero."""
    x = E.sym("X", ("k", "k"))
    for text in ("tr(A)", "det(A)", "x'*A*x", "sum(A .* B)"):
        g = md.grad(text, x)
        assert g.op is E.Op.ZERO and g.shape == x.shape


# ----------------------------------------------------------------------------- cross Hessians


def _fd_block(f: E.Expr, a: str, b: str, seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    grads = md.grad(f, [a])
    block = md.hessian(f, [a, b])[a, b]
    env, sizes = points.random_inputs([f, grads[a], block], seed=seed)
    return (np.asarray(md.evaluate(block, **env), dtype=float).reshape(
        -1, np.asarray(env[b]).size), fd_jacobian(grads[a], b, env, sizes, h=1e-5))


@pytest.mark.parametrize(("text", "a", "b"), [
    ("||A - U*V'||_F^2", "U", "V"),
    ("x'*A*y", "x", "y"),
    ("log(det(X + Y))", "X", "Y"),
    ("sum(sigmoid(W*x))", "W", "x"),
])
def test_cross_hessian_blocks_match_finite_differences(text, a, b):
    got, want = _fd_block(md.parse(text), a, b)
    assert rel_error(got, want) < 1e-6


def test_cross_hessian_dict_has_every_ordered_pair_and_is_symmetric():
    f = md.parse("||A - U*V'||_F^2")
    blocks = md.hessian(f, ["U", "V"])
    assert set(blocks) == {("U", "U"), ("U", "V"), ("V", "U"), ("V", "V")}
    env, sizes = points.random_inputs([f, *blocks.values()], seed=1)
    uv, vu = (np.asarray(md.evaluate(blocks[k], **env)) for k in (("U", "V"), ("V", "U")))
    assert rel_error(uv, vu.T) < 1e-12
    assert str(blocks["U", "U"]) == str(md.hessian(f, "U"))


def test_hvp_over_several_variables_applies_the_whole_hessian():
    f = md.parse("||A - U*V'||_F^2")
    rows = md.hvp(f, ["U", "V"])
    blocks = md.hessian(f, ["U", "V"])
    env, sizes = points.random_inputs([f, *rows.values(), *blocks.values()], seed=4)
    used = sorted(set().union(*(E.free_symbols(r) for r in rows.values())) - {"A", "U", "V"})
    assert used == ["V1", "V2"]                               # one direction per variable
    dir_of = {"U": "V1", "V": "V2"}
    for a in ("U", "V"):
        want = sum(np.asarray(evaluate(blocks[a, b], env, sizes)) @ vec_of(env[dir_of[b]])
                   for b in ("U", "V"))
        assert rel_error(vec_of(evaluate(rows[a], env, sizes)), want) < 1e-10


# ----------------------------------------------------------------------------- raw errors


def test_raw_errors_become_messages():
    with pytest.raises(md.MatdiffError, match="must be a tuple of sizes"):
        md.parse("x'*x", shapes={"x": None})
    with pytest.raises(md.MatdiffError, match="wrt must be"):
        md.grad("x'*x", 3)
    with pytest.raises(md.MatdiffError, match="singular"):
        md.evaluate(md.parse("tr(inv(X))"), X=np.zeros((2, 2)))
    with pytest.raises(md.MatdiffError, match="real numbers"):
        md.evaluate(md.parse("x'*x"), x="abc")
    with pytest.raises(md.MatdiffError, match="seed"):
        md.check("x'*x", "x", seed=-1)
    with pytest.raises(md.MatdiffError, match="tolerance"):
        md.check("x'*x", "x", tolerance=float("nan"))


def test_a_singular_product_in_the_check_is_a_verdict_not_a_traceback():
    for text in ("tr(inv(A*B))", "1e400*x'*x", "tr(inv(X - X'))"):
        rep = md.report(text)
        json.dumps(rep, allow_nan=False)
        assert all(c["verdict"] in ("ok", "inconclusive") for c in rep["check"].values())
    rep = md.report("inv(A*B)", what="jacobian")
    assert all(c["verdict"] == "ok" for c in rep["check"].values()), rep["check"]


# ----------------------------------------------------------------------------- fuzzing


class _Weird:
    def __repr__(self) -> str:
        return "<weird>"


SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 10 ** 12), st.integers(),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6),
    st.sampled_from(["x", "A", "z", "", "n", "m", "sym", "spd", "2x3", "n-1", "0", "-2",
                     "1e400", "é", "\x00", "lam", "X'"]),
    st.binary(max_size=3), st.just(_Weird()), st.just(np.int64(3)), st.just(np.float64(0.5)),
    st.just(E.Dim.var("n")), st.just(md.parse("x")), st.just(np.array([1.0, 2.0])),
    st.complex_numbers(max_magnitude=3),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.tuples(inner, inner),
    st.dictionaries(st.one_of(st.text(max_size=3), st.integers(0, 3)), inner, max_size=2)),
    max_leaves=6)
SHAPES = st.one_of(VALUES, st.dictionaries(
    st.sampled_from(["x", "A", "z", "b", "X", "lam", ""]),
    st.one_of(VALUES, st.lists(st.one_of(st.sampled_from(["m", "n", "k", "sym", "spd", "pos",
                                                          "diagonal", "2", "0"]),
                                         st.integers(-1, 4), st.just(10 ** 6)), max_size=3)),
    max_size=3))
WRT = st.one_of(VALUES, st.sampled_from(["x", "A", "b", "z", "X"]),
                st.lists(st.sampled_from(["x", "A", "b", "z", "X", 3, None]), max_size=3),
                st.just(E.sym("z", ("n",))), st.just(E.sym("x", ("m",))))
TEXTS = st.sampled_from(["x'*A*x", "||A*x - b||^2", "tr(inv(A*B))", "log(det(X))",
                         "1e400*x'*x", "A*x", "sum(x.^0.5)", "x'*A*x + z'*z", "(", ""])
FUZZ = settings(max_examples=120, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def _only_matdiff_errors(fn: Any, *args: Any, **kwargs: Any) -> None:
    try:
        fn(*args, **kwargs)
    except md.MatdiffError as err:
        assert err.message and isinstance(err.render(), str)


@FUZZ
@given(text=st.one_of(TEXTS, VALUES), shapes=SHAPES, syntax=VALUES, names=VALUES)
def test_parse_arguments(text, shapes, syntax, names):
    _only_matdiff_errors(md.parse, text, shapes)
    _only_matdiff_errors(md.parse, text, syntax=syntax)
    _only_matdiff_errors(md.parse, text, sigmoid_names=names)


@FUZZ
@given(f=st.one_of(TEXTS, VALUES), wrt=WRT, shapes=SHAPES, simplified=VALUES,
       kind=st.sampled_from(["grad", "jacobian", "hessian", "hvp", "differential", "explain"]))
def test_derivative_arguments(f, wrt, shapes, simplified, kind):
    fn = getattr(md, kind)
    _only_matdiff_errors(fn, f, wrt, shapes=shapes)
    if kind == "grad":
        _only_matdiff_errors(fn, f, wrt, simplified=simplified)
    if kind == "hvp":
        _only_matdiff_errors(fn, f, wrt, simplified)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(f=TEXTS, wrt=WRT, seed=VALUES, tolerance=VALUES, shapes=SHAPES, flag=VALUES)
def test_check_arguments(f, wrt, seed, tolerance, shapes, flag):
    _only_matdiff_errors(md.check, f, wrt, seed=seed)
    _only_matdiff_errors(md.check, f, wrt, tolerance=tolerance, shapes=shapes)
    _only_matdiff_errors(md.check, f, wrt, raise_on_failure=flag)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(text=st.one_of(TEXTS, VALUES), wrt=WRT, shapes=SHAPES, syntax=VALUES,
       what=st.one_of(VALUES, st.sampled_from(["grad", "hessian", "hvp", "jacobian"])),
       flag=VALUES)
def test_report_arguments(text, wrt, shapes, syntax, what, flag):
    for kwargs in ({"wrt": wrt, "shapes": shapes, "verify": False}, {"syntax": syntax},
                   {"what": what, "verify": False}, {"verify": flag}, {"steps": flag}):
        try:
            out = md.report(text, **kwargs)
        except md.MatdiffError:
            continue
        json.dumps(out, allow_nan=False)


@FUZZ
@given(e=st.one_of(VALUES, st.just(md.parse("x'*A*x"))), inputs=st.dictionaries(
    st.sampled_from(["x", "A", "y"]), VALUES, max_size=3), style=VALUES)
def test_evaluate_and_shapes_of_arguments(e, inputs, style):
    _only_matdiff_errors(md.evaluate, e, **inputs)
    _only_matdiff_errors(md.shapes_of, e, style)
    _only_matdiff_errors(md.shapes_of, e)


@pytest.mark.parametrize(("written", "name"), [
    (r"\beta", "beta"), (r"\mathbf{x}", "x"), ("H_{R}", "H_R"), ("Σ", "Sigma"),
    (r"\boldsymbol{\beta}", "beta"), ("X", "X"), ("x_1", "x_1"), ("x + y", "x + y"),
])
def test_a_variable_may_be_named_as_the_pasted_text_writes_it(written: str, name: str) -> None:
    assert md.api.symbol_name(written) == name


def test_latex_names_in_wrt_and_in_declarations() -> None:
    """A variable and a declaration written in LaTeX name the symbol the text reads: the
    declaration applies (spd here) and the gradient is the one for the plain name."""
    text = r"\log\det(\Sigma) + \mathrm{tr}(\Sigma^{-1} S)"
    shapes = {r"\Sigma": ("n", "n", "spd"), "S": ("n", "n", "symmetric")}
    f = md.parse(text, shapes=shapes)
    assert md.expr.free_symbols(f)["Sigma"].attr[2] == "spd"
    assert md.grad(f, r"\Sigma") is md.grad(f, "Sigma")
    assert str(md.grad(text, r"\Sigma", shapes=shapes)) == "(I - inv(Sigma)*S)*inv(Sigma)"
    assert str(md.grad(r"\mathbf{x}^T A \mathbf{x}", r"\mathbf{x}")) == "(A + A')*x"
    with pytest.raises(md.MatdiffError, match="declares 'x' a second time"):
        md.parse("x", shapes={"x": ("n",), r"\mathbf{x}": ("n",)})
    with pytest.raises(md.MatdiffError, match="'y' does not occur"):
        md.grad("x'*x", "y")
