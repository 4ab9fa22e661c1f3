"""The core pipeline: the seed, the public battery, a Matrix Cookbook table, every VJP rule
checked by finite differences, every Op in every table, the CLI."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

import matdiff as md
from matdiff import expr as E
from matdiff.check import EVAL, check_gradients, evaluate, random_inputs, rel_error
from matdiff.diff import VJP
from matdiff.expr import OPS, SHAPE, Op
from matdiff.forward import JVP
from matdiff.printing import PREC

SEED = "||Z - I .* (R'*A + Q'*B)||_F^2 + ||W - [R, -Q; Q, R]*P*S'||_F^2"


def same_value(a: md.Expr, b: md.Expr, seed: int = 3) -> float:
    """Relative difference of two expressions at a random point."""
    env, sizes = random_inputs([a, b], seed=seed)
    return rel_error(evaluate(a, env, sizes), evaluate(b, env, sizes))


# ----------------------------------------------------------------------------- the seed


def test_seed_gradients_match_finite_differences() -> None:
    f = md.parse(SEED)
    report = md.check(f, ["R", "Q"])
    assert report.ok
    assert report.max_rel_error < 1e-6
    assert set(report.errors) == {"R", "Q"}


def test_seed_shapes_are_symbolic_and_consistent() -> None:
    shapes = md.shapes_of(md.parse(SEED))
    assert shapes["R"] == shapes["Q"] == shapes["A"] == shapes["B"]
    r_rows, r_cols = shapes["R"]
    assert shapes["Z"] == [r_cols, r_cols]
    assert shapes["W"][0] == f"2*{r_rows}"
    assert shapes["P"][0] == f"2*{r_cols}"


def test_seed_gradient_is_a_matrix_formula() -> None:
    g = md.grad(md.parse(SEED), ["R", "Q"])
    for name in ("R", "Q"):
        text = str(g[name])
        assert "I .* " in text            # the Hadamard with the identity stays a formula
        assert "[R, -Q]" in text and "[Q, R]" in text  # block rows, not R and Q apart
        assert "sum(" not in text and "d/d" not in text


def test_seed_gradient_shapes_equal_variable_shapes() -> None:
    f = md.parse(SEED)
    g = md.grad(f, ["R", "Q"])
    symbols = E.free_symbols(f)
    for name in ("R", "Q"):
        assert g[name].shape == symbols[name].shape


def test_seed_latex_verbatim_gives_same_gradients() -> None:
    latex = (r"\left\| Z - I\odot(H_R^TA + H_I^TB) \right\|_F^2 + \left\|W-\begin{pmatrix} "
             r"H_R & -H_I\\H_I & H_R\end{pmatrix}P_dS^T \right\|_F^2")
    f_tex = md.parse(latex)
    ascii_twin = ("||Z - I .* (H_R'*A + H_I'*B)||_F^2 + "
                  "||W - [H_R, -H_I; H_I, H_R]*P_d*S'||_F^2")
    assert f_tex is md.parse(ascii_twin)
    assert md.check(f_tex, ["H_R", "H_I"]).ok


# ----------------------------------------------------------------------------- the battery

BATTERY = [
    pytest.param("tr(A*X*B)", ["X"], {"X": "A'*B'"}, id="1-trace-AXB"),
    pytest.param("x'*A*x", ["x"], {"x": "(A + A')*x"}, id="2-quadratic"),
    pytest.param("||A*x - b||_2^2", ["x"], {"x": "2*A'*(A*x - b)"}, id="3-least-squares"),
    pytest.param("||X - A*B||_F^2", ["A"], {"A": "-2*(X - A*B)*B'"}, id="4-factor"),
    pytest.param("log(det(X))", ["X"], {"X": "inv(X)'"}, id="5-logdet"),
    pytest.param("det(X)", ["X"], {"X": "det(X)*inv(X)'"}, id="6-det"),
    pytest.param("tr(inv(X)*A)", ["X"], {"X": "-inv(X)'*A'*inv(X)'"}, id="7-trace-inverse"),
    pytest.param("||Y - X*W||_F^2 + lam*||W||_F^2", ["W"],
                 {"W": "2*(lam*W - X'*(Y - X*W))"}, id="8-ridge"),
    pytest.param("sum(log(1 + exp(-y .* (X*w))))", ["w"], {}, id="9-logistic"),
    pytest.param("||M .* X - Y||_F^2", ["X"], {"X": "2*M .* (M .* X - Y)"},
                 id="10-completion"),
    pytest.param("||A - U*V'||_F^2", ["U", "V"], {"U": "-2*(A - U*V')*V"}, id="11-mf"),
    pytest.param("tr(X'*A*X)", ["X"], {"X": "(A + A')*X"}, id="12-trace-quadratic"),
    pytest.param("a'*X*b", ["X"], {"X": "a*b'"}, id="13-bilinear"),
    pytest.param(SEED, ["R", "Q"], {}, id="14-seed"),
    pytest.param("tr(Y' * kron(eye(p), X))", ["X"], {}, id="15-kron-trace"),
    pytest.param("||kron(A, X) - C||_F^2", ["X"], {}, id="16-kron-norm"),
    pytest.param("tr(inv(X'*X))", ["X"], {}, id="17-trace-inv-gram"),
    pytest.param("log(det(X'*A*X))", ["X"], {}, id="18-logdet-gram"),
    pytest.param("sum(sin(X) .* Y)", ["X"], {"X": "Y .* cos(X)"}, id="19-sin"),
    pytest.param("||W2*tanh(W1*x) - y||_2^2", ["W1", "W2"], {}, id="20-two-layer"),
    pytest.param("0.5*log(det(S)) + 0.5*(x-m)'*inv(S)*(x-m)", ["S", "m"], {},
                 id="21-gaussian"),
    pytest.param("||A*X*B - C||_F^2", ["X"], {"X": "2*A'*(A*X*B - C)*B'"}, id="22-axb"),
    pytest.param("tr(X*X*X)", ["X"], {}, id="25-trace-cube"),
    pytest.param("||X'*X - I||_F^2", ["X"], {"X": "4*X*(X'*X - I)"}, id="26-orthogonality"),
    pytest.param("sum(X ./ Y)", ["Y"], {}, id="27-division"),
    pytest.param("||diag(X) - v||_2^2", ["X"], {}, id="28-diag"),
    pytest.param("(x'*A*x)/(x'*x)", ["x"], {}, id="29-rayleigh"),
]

TEXTBOOK = {  # the textbook forms of the battery, compared by value
    "1-trace-AXB": ("tr(A*X*B)", "X", "A'*B'"),
    "5-logdet": ("log(det(X))", "X", "inv(X)'"),
    "6-det": ("det(X)", "X", "det(X)*inv(X)'"),
    "7-trace-inverse": ("tr(inv(X)*A)", "X", "-inv(X)'*A'*inv(X)'"),
    "25-trace-cube": ("tr(X*X*X)", "X", "3*(X*X)'"),
    "26-orthogonality": ("||X'*X - I||_F^2", "X", "4*X*(X'*X - I)"),
}


@pytest.mark.parametrize(("text", "wrt", "expected"), BATTERY)
def test_battery_api(text: str, wrt: list[str], expected: dict[str, str]) -> None:
    f = md.parse(text)
    report = md.check(f, wrt)
    assert report.ok, str(report)
    grads = md.grad(f, wrt)
    for name, form in expected.items():
        assert str(grads[name]) == form


@pytest.mark.parametrize("case", sorted(TEXTBOOK))
def test_battery_equals_textbook_form(case: str) -> None:
    text, name, form = TEXTBOOK[case]
    f = md.parse(text)
    g = md.grad(f, name)
    assert same_value(g, md.parse(form, shapes=md.shapes_of(f))) < 1e-10


@pytest.mark.parametrize(("text", "wrt", "expected"), BATTERY[:6] + BATTERY[13:14])
def test_battery_cli_json(text: str, wrt: list[str], expected: dict[str, str]) -> None:
    args = [sys.executable, "-m", "matdiff", "grad", text, "--format", "json"]
    for w in wrt:
        args += ["--wrt", w]
    out = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert set(data["derivatives"]) == set(data["check"]) == set(wrt)
    assert all(c["ok"] for c in data["check"].values())
    for name, form in expected.items():
        assert data["derivatives"][name]["text"] == form


# ----------------------------------------------------------------------------- Cookbook
# Petersen & Pedersen, The Matrix Cookbook (2012), equation numbers as ids.

COOKBOOK = [
    pytest.param("tr(X)", "X", "eye(n)", {"X": ("n", "n")}, id="cookbook-99"),
    pytest.param("tr(X*A)", "X", "A'", None, id="cookbook-100"),
    pytest.param("tr(A*X*B)", "X", "A'*B'", None, id="cookbook-101"),
    pytest.param("tr(A*X'*B)", "X", "B*A", None, id="cookbook-102"),
    pytest.param("tr(X'*A)", "X", "A", None, id="cookbook-103"),
    pytest.param("tr(X*X)", "X", "2*X'", None, id="cookbook-106"),
    pytest.param("tr(X*X*B)", "X", "(X*B + B*X)'", None, id="cookbook-107"),
    pytest.param("tr(X'*B*X)", "X", "B*X + B'*X", None, id="cookbook-108"),
    pytest.param("tr(X*B*X')", "X", "X*B' + X*B", None, id="cookbook-111"),
    pytest.param("tr(A*X*B*X)", "X", "A'*X'*B' + B'*X'*A'", None, id="cookbook-114"),
    pytest.param("tr(X'*X)", "X", "2*X", None, id="cookbook-115"),
    pytest.param("tr(B'*X'*C*X*B)", "X", "C'*X*B*B' + C*X*B*B'", None, id="cookbook-116"),
    pytest.param("tr(X'*B*X*C)", "X", "B*X*C + B'*X*C'", None, id="cookbook-117"),
    pytest.param("tr(A*X*B*X'*C)", "X", "A'*C'*X*B' + C*A*X*B", None, id="cookbook-118"),
    pytest.param("tr((A*X*B + C)*(A*X*B + C)')", "X", "2*A'*(A*X*B + C)*B'", None,
                 id="cookbook-119"),
    pytest.param("tr(X^3)", "X", "3*(X^2)'", None, id="cookbook-121"),
    pytest.param("tr(A*inv(X)*B)", "X", "-inv(X)'*A'*B'*inv(X)'", None, id="cookbook-124"),
    pytest.param("det(X)", "X", "det(X)*inv(X)'", None, id="cookbook-49"),
    pytest.param("det(A*X*B)", "X", "det(A*X*B)*inv(X)'", {"A": ("n", "n"), "B": ("n", "n")},
                 id="cookbook-51"),
    pytest.param("log(det(X'*X))", "X", "2*X*inv(X'*X)", None, id="cookbook-55"),
    pytest.param("log(abs(det(X)))", "X", "inv(X)'", None, id="cookbook-57"),
    pytest.param("a'*inv(X)*b", "X", "-inv(X)'*a*b'*inv(X)'", None, id="cookbook-61"),
    pytest.param("x'*a", "x", "a", None, id="cookbook-69"),
    pytest.param("a'*X*b", "X", "a*b'", None, id="cookbook-70"),
    pytest.param("a'*X'*b", "X", "b*a'", None, id="cookbook-71"),
    pytest.param("a'*X*a", "X", "a*a'", None, id="cookbook-72"),
    pytest.param("x'*B*x", "x", "(B + B')*x", None, id="cookbook-81"),
    pytest.param("b'*X'*X*c", "X", "X*(b*c' + c*b')", None, id="cookbook-82"),
    pytest.param("(X*b + c)'*D*(X*b + c)", "X", "(D + D')*(X*b + c)*b'", None,
                 id="cookbook-84"),
    pytest.param("(x - A*s)'*W*(x - A*s)", "s", "-2*A'*W*(x - A*s)",
                 {"W": ("m", "m", "symmetric")}, id="cookbook-88"),
    pytest.param("||X||_F^2", "X", "2*X", None, id="cookbook-frobenius"),
]


@pytest.mark.parametrize(("text", "wrt", "textbook", "shapes"), COOKBOOK)
def test_cookbook(text: str, wrt: str, textbook: str, shapes: dict | None) -> None:
    f = md.parse(text, shapes=shapes)
    g = md.grad(f, wrt)
    assert md.check(f, wrt).ok
    expected = md.parse(textbook, shapes={**md.shapes_of(f), **(shapes or {})})
    assert g.shape == expected.shape
    assert same_value(g, expected) < 1e-9, f"{g} != {textbook}"


# ----------------------------------------------------------------------------- every rule

X, Y = E.sym("X", ("n", "n")), E.sym("Y", ("n", "n"))
M, N = E.sym("M", ("m", "n")), E.sym("N", ("m", "n"))
x = E.sym("x", ("n",))
s = E.sym("s")
Z = E.sym("Z", ("n", "n"), "complex")
EXERCISE = {  # one scalar function per Op, in which that Op depends on the variables
    Op.SYMBOL: E.trace(X),
    Op.ADD: E.total(E.hadamard(E.add(X, Y), E.add(X, Y))),
    Op.SCALE: E.total(E.scale(E.trace(X), E.hadamard(Y, X))),
    Op.MATMUL: E.trace(E.matmul(X, Y, X)),
    Op.TRANSPOSE: E.total(E.hadamard(E.T(X), Y)),
    Op.HADAMARD: E.total(E.hadamard(X, Y, X)),
    Op.HDIV: E.total(E.hdiv(X, E.hadamard(Y, Y))),
    Op.POW: E.add(E.total(E.hpow(E.hadamard(X, X), E.const("1.5"))),
                  E.hpow(E.trace(E.hadamard(Y, Y)), E.sym("s"))),
    Op.KRON: E.total(E.hadamard(E.kron(M, X), E.kron(N, Y))),
    Op.BLOCK: E.total(E.hpow(E.matmul(E.block([[X, M.T], [N, E.zeros(("m", "m"))]]),
                                      E.block([[Y], [M]])), 2)),
    Op.SLICE: E.total(E.hpow(E.slice_(E.block([[X, Y]]), 1, "n", 1, 3), 2)),
    Op.TRACE: E.hpow(E.trace(E.matmul(X, Y)), 2),
    Op.DET: E.det(E.matmul(X, Y)),
    Op.LOGDET: E.logdet(E.matmul(X, Y)),
    Op.INV: E.trace(E.inv(E.matmul(X, Y))),
    Op.MATPOW: E.trace(E.matmul(E.matpow(X, 3), Y)),
    Op.DIAG: E.total(E.hpow(E.diag(E.matmul(X, Y)), 2)),
    Op.DIAGM: E.trace(E.matmul(E.diagm(E.matmul(X, x)), Y)),
    Op.VEC: E.total(E.hpow(E.vec(E.matmul(X, Y)), 3)),
    Op.UNVEC: E.trace(E.matmul(E.unvec(E.add(E.kron(x, x), E.vec(Y)), "n", "n"), X)),
    Op.SUM: E.hpow(E.total(E.matmul(X, Y)), 2),
    Op.NORM: E.add(E.norm(E.matmul(X, Y), "2"), E.norm(E.matmul(X, Y), "1")),
    Op.INF_NORM: E.inf_norm(E.matmul(X, x)),
    Op.COMMUTATION: E.total(E.hpow(E.matmul(E.commutation("n", "n"), E.vec(X)), 2)),
    Op.IDENTITY: E.total(E.hadamard(E.eye("n"), X)),
    Op.ONES: E.matmul(E.ones((1, "n")), X, Y, x),
    Op.ZERO: E.total(E.block([[X, E.zeros(("n", "n"))]])),
    Op.CONST: E.scale(E.const(3), E.trace(X)),
    **{op: E.total(E.hadamard(E.apply(op, E.hadamard(X, Y)), Y)) for op in E.ELEMENTWISE},
    # spectral functions and factorizations
    Op.TRIL: E.total(E.hadamard(E.tril(E.matmul(X, Y)), X)),
    Op.EXPM: E.total(E.hadamard(E.expm(E.matmul(X, Y)), Y)),
    Op.LOGM: E.total(E.hadamard(E.logm(E.matmul(X, Y)), Y)),
    Op.SQRTM: E.total(E.hadamard(E.sqrtm(E.matmul(X, Y)), Y)),
    Op.FRECHET: E.total(E.hadamard(E.frechet("expm", X, E.matmul(Y, X)), Y)),
    Op.EIGVAL: E.add(E.eigval(E.matmul(X, Y), "max"), E.eigval(E.add(X, Y), "min")),
    Op.EIGVEC: E.total(E.hadamard(E.eigvec(E.matmul(X, Y), "max"), E.matmul(X, x))),
    Op.SPECTRAL_NORM: E.spectral_norm(E.hadamard(M, N)),
    Op.NUCLEAR_NORM: E.nuclear_norm(E.hadamard(M, N)),
    Op.POLAR: E.total(E.hadamard(E.polar(E.hadamard(M, N)), M)),
    Op.SVD_U1: E.total(E.hadamard(E.svd_u1(E.matmul(M, X)), E.matmul(M, x))),
    Op.SVD_V1: E.total(E.hadamard(E.svd_v1(E.matmul(M, X)), E.matmul(X, x))),
    Op.PINV: E.trace(E.matmul(E.pinv(E.matmul(M, X)), N)),
    Op.ADJ: E.total(E.hadamard(E.adj(E.matmul(X, Y)), Y)),
    Op.CHOL: E.total(E.hadamard(E.chol(E.matmul(X, Y, X.T)), Y)),
    # ML functions and reductions
    Op.MEAN: E.hpow(E.mean(E.matmul(X, Y)), 2),
    Op.MAX: E.total(E.hadamard(E.maximum(E.matmul(X, Y), E.hadamard(Y, Y)), X)),
    Op.MIN: E.total(E.hadamard(E.minimum(E.matmul(X, Y), E.zeros(("n", "n"))), X)),
    Op.LOGSUMEXP: E.add(E.logsumexp(E.matmul(X, Y)), E.logsumexp(E.matmul(X, x))),
    Op.SOFTMAX: E.total(E.hadamard(E.softmax(E.matmul(X, x)), E.matmul(Y, x))),
    # complex numbers (Z complex): real-valued functions, the gradient ∂f/∂Re + i ∂f/∂Im
    Op.IMAG_UNIT: E.real(E.total(E.hadamard(E.scale(E.imag_unit(), E.hpow(Z, 2)), Y))),
    Op.CONJ: E.real(E.total(E.hadamard(E.conj(Z), E.matmul(Z, Z), Y))),
    Op.REAL: E.total(E.hadamard(E.real(E.matmul(Z, Z, Y)), Y)),
    Op.IMAG: E.total(E.hpow(E.imag(E.matmul(Z, Y, Z)), 2)),
    Op.ANGLE: E.total(E.hadamard(E.angle(E.matmul(Z, Y)), Y)),
}


def _tables() -> dict[str, Mapping[Op, Any]]:
    """Every table keyed by Op, listed once: a new Op is a row in each (CONTRIBUTING.md)."""
    codegen = importlib.import_module("matdiff.codegen")
    return {"expr.OPS": OPS, "expr.SHAPE": SHAPE, "diff.VJP": VJP, "forward.JVP": JVP,
            "check.EVAL": EVAL,
            "printing.PREC": {k: v for k, v in PREC.items() if isinstance(k, Op)},  # not Forms
            "codegen.LOWER": codegen.LOWER, "test_core.EXERCISE": EXERCISE}


TABLES = _tables()


@pytest.mark.parametrize("name", list(TABLES))
def test_every_op_in_every_table(name: str) -> None:
    needed = set(Op)
    missing = needed - set(TABLES[name])
    assert not missing, f"{name} lacks {sorted(o.name for o in missing)}"
    assert set(TABLES[name]) <= set(Op)


@pytest.mark.parametrize("op", list(Op), ids=lambda o: o.name)
def test_every_vjp_rule_matches_finite_differences(op: Op) -> None:
    f = EXERCISE[op]
    assert op in {n.op for n in E.toposort([f])}
    names = list(E.free_symbols(f))
    for simplified in (False, True):
        grads = md.grad(f, names, simplified=simplified)
        rep = check_gradients(f, grads, seed=7)
        assert rep.ok, f"{op.name} simplified={simplified}: {rep}"


# ----------------------------------------------------------------------------- shapes


@pytest.mark.parametrize(("text", "expected"), [
    ("x'*A*x", {"x": ["m"], "A": ["m", "m"]}),
    ("lam*||W||_F^2", {"lam": [], "W": ["m", "n"]}),
    ("1 - x", {"x": ["m"]}),
    ("c*A", {"c": [], "A": ["m", "n"]}),
    ("[A, 0; 0, B]", {"A": ["m", "n"], "B": ["p", "q"]}),
    ("tr(Y' * kron(eye(p), X))", {"Y": ["m*p", "n*p"], "X": ["m", "n"]}),
])
def test_inferred_shapes(text: str, expected: dict[str, list[str]]) -> None:
    assert md.shapes_of(md.parse(text)) == expected


def test_declared_shapes_win_and_names_are_rigid() -> None:
    f = md.parse("A*x", shapes={"A": ("m", "n"), "x": ("n",)})
    assert md.shapes_of(f) == {"A": ["m", "n"], "x": ["n"]}
    with pytest.raises(md.MatdiffError) as err:
        md.parse("A*B", shapes={"A": ("m", "n"), "B": ("p", "q")})
    assert err.value.pos == 0


def test_declared_I_is_a_variable() -> None:
    f = md.parse("tr(I*X)", shapes={"I": ("n", "n")})
    assert "I" in md.shapes_of(f)


@pytest.mark.parametrize(("text", "pos", "fragment"), [
    ("A*(B + C", 2, "never closed"),
    ("A B", 2, "juxtaposition"),
    ("foo(X)", 0, "unknown function 'foo'"),
    ("||X||_F^2 + ||Y", 12, "norm bars"),
    ("A + * B", 4, "unexpected '*'"),
    ("x + y", None, None),
])
def test_syntax_errors_point_at_the_place(text: str, pos: int | None, fragment: str) -> None:
    if pos is None:  # the control: a sum parses
        assert md.parse(text).op is Op.ADD
        return
    with pytest.raises(md.MatdiffError) as err:
        md.parse(text)
    assert err.value.pos == pos
    assert fragment in err.value.message
    assert "^" in err.value.render()


def test_shape_mismatch_points_at_the_operator() -> None:
    with pytest.raises(md.MatdiffError) as err:
        md.parse("X + Y*Z", shapes={"X": (2, 3), "Y": (2, 2), "Z": (3, 3)})
    assert "matrix product" in err.value.message
    assert err.value.pos == 4


def test_gradient_of_non_scalar_is_a_clear_error() -> None:
    with pytest.raises(md.MatdiffError, match="scalar"):
        md.grad("A*X", "X")


def test_unknown_variable_is_a_clear_error() -> None:
    with pytest.raises(md.MatdiffError, match="does not occur"):
        md.grad("tr(X)", "Y")


def test_matrix_2_norm_is_the_spectral_norm_not_frobenius() -> None:
    """||X||_2 of a matrix was refused; it is the spectral norm (issue 15), never read as
    the Frobenius norm."""
    for text in ("||X||_2", "norm(X)", "norm(X, 2)"):
        assert md.parse(text, shapes={"X": ("m", "n")}).op is Op.SPECTRAL_NORM
    assert md.parse("norm(X, 'fro')", shapes={"X": ("m", "n")}).op is Op.NORM


# ----------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("text", [p.values[0] for p in BATTERY] + [
    "[A, 0; 0, B]", "kron(eye(3), X)", "X[0:2, 1:3]", "ones(n)'*x", "Diag(x)*A",
    "vec(X)'*vec(Y)", "X.^2 ./ Y", "exp(-x) ./ (1 + exp(-x))", "A^3 + inv(A)'",
    "X + 2", "X - (lam - mu)", "X ./ (x'*x)",  # a broadcast scalar prints as the scalar
])
def test_str_parses_back_to_the_same_node(text: str) -> None:
    f = md.parse(text)
    shapes = md.shapes_of(f)
    assert md.parse(str(f), shapes=shapes) is f
    names = list(E.free_symbols(f))
    if f.is_scalar:
        for g in md.grad(f, names).values():
            assert md.parse(str(g), shapes=shapes) is g


# ----------------------------------------------------------------------------- compile


def test_compile_value_and_gradients_agree_with_reference() -> None:
    f = md.parse(SEED)
    g = md.grad(f, ["R", "Q"])
    fn = md.compile([f, g["R"], g["Q"]])
    env, sizes = random_inputs([f], seed=5)
    got = fn(**env)
    want = evaluate([f, g["R"], g["Q"]], env, sizes)
    for a, b in zip(got, want, strict=True):
        assert rel_error(a, b) < 1e-12


def test_compile_missing_input_is_a_matdiff_error() -> None:
    fn = md.compile(md.parse("x'*A*x"))
    with pytest.raises(md.MatdiffError):
        fn(x=np.ones(3))


# ----------------------------------------------------------------------------- CLI


def test_cli_bad_input_exits_2_with_caret_and_no_traceback() -> None:
    out = subprocess.run([sys.executable, "-m", "matdiff", "grad", "A*(B + C", "--wrt", "A"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "^" in out.stderr
    assert "Traceback" not in out.stderr


def test_cli_seed_text_output() -> None:
    out = subprocess.run([sys.executable, "-m", "matdiff", "grad", SEED, "--wrt", "R",
                          "--wrt", "Q", "--format", "text"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "df/dR = " in out.stdout and "df/dQ = " in out.stdout
    assert "OK" in out.stdout and "MISMATCH" not in out.stdout


@pytest.mark.parametrize(("text", "expected", "result"), [
    ("ones'*x", {"x": ["m"]}, "scalar"),
    ("ones'*X*ones", {"X": ["m", "n"]}, "scalar"),
    ("X + ones", {"X": ["m", "n"]}, "m×n"),
])
def test_bare_ones_is_a_vector_unless_tied(text: str, expected: dict, result: str) -> None:
    f = md.parse(text)
    assert md.shapes_of(f) == expected
    assert md.printing.format_shape(f.shape) == result


def test_sum_of_vec_gradient_is_all_ones() -> None:
    assert str(md.grad("sum(vec(X))", "X")) == "ones(m, n)"


@pytest.mark.parametrize(("text", "expected"), [
    ("tr(inv(S)*A)", "-0.5*inv(S)*(A + A')*inv(S)"),
    ("x'*S*x", "x*x'"),
    ("log(det(S))", "inv(S)"),
    ("0.5*log(det(S)) + 0.5*(x-m)'*inv(S)*(x-m)", "0.5*(I - inv(S)*(x - m)*(x - m)')*inv(S)"),
])
def test_symmetric_gradient_is_the_symmetric_part_and_checks(text: str, expected: str) -> None:
    f = md.parse(text, shapes={"S": ("n", "n", "symmetric")})
    g = md.grad(f, "S")
    assert str(g) == expected
    assert same_value(g, md.simplify(md.parse(str(g), md.shapes_of(f)).T)) < 1e-12  # symmetric
    assert md.check(f, "S").ok  # finite differences along symmetric directions
    assert any("symmetric" in n for n in md.report(text, ["S"], shapes={
        "S": ("n", "n", "symmetric")})["notes"])


def _source_files() -> list[Any]:
    import pathlib
    return sorted(pathlib.Path(md.__file__).parent.rglob("*.py"))


def test_no_function_is_longer_than_80_lines_and_no_module_than_1000() -> None:
    """The size limits of the codebase (issue 12): a function over 80 lines or a module
    over 1,000 is split."""
    import ast
    long_functions, long_modules = [], []
    for path in _source_files():
        text = path.read_text()
        if text.count("\n") > 1000:
            long_modules.append(f"{path.name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 80:
                    long_functions.append(f"{path.name}:{node.lineno} {node.name} ({length})")
    assert not long_functions and not long_modules, (long_functions, long_modules)
