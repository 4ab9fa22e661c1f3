"""The notation of issue 14: norms, the Frobenius inner product ``A : B``, Unicode input
(what the Unicode printer writes parses back), ``\\|X\\|_*`` and ``X^\\dagger`` kept, and the
notes on guesses and unused declarations."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import matdiff as md
from matdiff import expr as E
from matdiff.api import parse_with_notes
from matdiff.check import evaluate, random_inputs
from matdiff.cli import main
from matdiff.expr import Op
from matdiff.strategies import exprs

Shapes = dict[str, tuple[Any, ...]]
V, M = {"x": ("n",)}, {"X": ("m", "n")}

# ----------------------------------------------------------------------------- norms

# (typed, shapes, the reading spelled otherwise, its shapes)
NORMS: list[tuple[str, Shapes, str, Shapes]] = [
    ("norm(x)", V, "||x||_2", V),
    ("norm(x, 1)", V, "sum(abs(x))", V),
    ("norm(x, 2)", V, "sqrt(x'*x)", V),
    ("norm(x, Inf)", V, "||x||_inf", V),
    ("norm(x, inf)", V, "||x||_inf", V),
    ("norm(x, 'inf')", V, "||x||_inf", V),
    ("norm(X, 'fro')", M, "sqrt(tr(X'*X))", M),
    ("norm(X)", M, "||X||_2", M),                             # spectral, as in MATLAB
    ("||x||_inf", V, "||x||_Inf", V),
    (r"\|x\|_\infty", V, "||x||_inf", V),
    (r"\left\|x\right\|_{\infty}", V, "||x||_inf", V),
    (r"||x||_\infty", V, "||x||_inf", V),
    ("‖x‖_∞", V, "||x||_inf", V),
    ("||x||_3", V, "sum(abs(x).^3)^(1/3)", V),
    ("norm(x, 3)", V, "sum(abs(x).^3)^(1/3)", V),
    (r"\|x\|_{1.5}", V, "sum(abs(x).^(3/2))^(2/3)", V),
    ("||x'||_inf", V, "||x||_inf", V),
    ("||vec(X)||_inf", M, "||vec(X)||_inf", M),
    ("||X||_1", M, "sum(abs(X))", M),                          # entrywise (matrixcalculus.org)
    ("||X||", M, "||X||_F", M),
]


@pytest.mark.parametrize(("typed", "shapes", "intended", "intended_shapes"), NORMS,
                         ids=[r[0] for r in NORMS])
def test_each_norm_has_its_reading(typed: str, shapes: Shapes, intended: str,
                                   intended_shapes: Shapes) -> None:
    got, want = md.parse(typed, shapes=shapes), md.parse(intended, shapes=intended_shapes)
    env, dims = random_inputs(want, seed=3)
    assert np.allclose(evaluate(got, env, dims), evaluate(want, env, dims), rtol=1e-12)
    assert got.is_scalar


@pytest.mark.parametrize(("typed", "shapes", "words"), [
    ("norm(X, 1)", M, "largest column sum"),
    ("norm(X, Inf)", M, "largest row sum"),
    ("||X||_inf", M, "largest row sum"),
    ("||X||_3", M, "induced p-norm"),
    ("||x||_p", V, "unsupported norm subscript 'p'"),
    ("||x||_0.5", V, "not a norm"),
    ("norm(x, -Inf)", V, "takes a number p >= 1"),
    (r"\|x\|_q", V, "unsupported norm subscript 'q'"),
])
def test_norms_matdiff_lacks_are_clear_errors(typed: str, shapes: Shapes, words: str) -> None:
    with pytest.raises(md.MatdiffError, match=words) as info:
        md.parse(typed, shapes=shapes)
    assert info.value.pos is not None and 0 <= info.value.pos < len(typed)


@pytest.mark.parametrize("typed", ["||A*x - b||_inf", "||x||_3 + ||x||_inf^2",
                                   "norm(W*x, 1.5)", "||vec(X*Y)||_inf"])
def test_norm_gradients_and_hessians_match_finite_differences(typed: str) -> None:
    rep = md.report(typed, what="grad")
    assert all(v["verdict"] == "ok" for v in rep["check"].values()), rep["check"]
    hvp = md.report(typed, what="hvp")
    assert all(v["verdict"] != "mismatch" for v in hvp["check"].values()), hvp["check"]


def test_the_inf_norm_gradient_is_the_sign_at_the_largest_entry() -> None:
    x = np.array([[1.0], [-3.0], [2.0]])
    g = md.grad("||x||_inf", "x")
    assert np.array_equal(evaluate(g, {"x": x}, {"m": 3}).reshape(-1), [0.0, -1.0, 0.0])
    assert md.parse("||x||_inf").op is Op.INF_NORM


# ----------------------------------------------------------------------------- A : B

FROBENIUS: list[tuple[str, Shapes | None, str]] = [
    ("A : B", None, "tr(A'*B)"),
    ("A:B", None, "tr(A'*B)"),
    ("A*B : C", None, "tr((A*B)'*C)"),                    # looser than *
    ("A : B*C", None, "tr(A'*B*C)"),
    ("A : B + C : D", None, "tr(A'*B) + tr(C'*D)"),       # tighter than +
    ("x : y", None, "x'*y"),
    (r"\mathbf{A} : \mathbf{B}", None, "tr(A'*B)"),
    (r"\mathbf{A}\mathbf{B} : C", None, "tr((A*B)'*C)"),
    (r"A : B + \lambda C : C", None, "tr(A'*B) + tr((lambda*C)'*C)"),
    ("X[0:2, 0:n]", {"X": ("m", "n")}, "X[0:2, 0:n]"),   # a slice keeps its ':'
    (r"X_{[0:2,\,0:n]}", {"X": ("m", "n")}, "X[0:2, 0:n]"),
]


@pytest.mark.parametrize(("typed", "shapes", "intended"), FROBENIUS,
                         ids=[r[0] for r in FROBENIUS])
def test_frobenius_inner_product(typed: str, shapes: Shapes | None, intended: str) -> None:
    assert md.parse(typed, shapes=shapes) is md.parse(intended, shapes=shapes)


def test_frobenius_needs_equal_shapes() -> None:
    with pytest.raises(md.MatdiffError):
        md.parse("A : B", shapes={"A": (2, 3), "B": (3, 2)})


# ----------------------------------------------------------------------------- ^*, ^+


@pytest.mark.parametrize(("typed", "op"), [(r"\|X\|_*", Op.NUCLEAR_NORM),
                                           (r"X^\dagger", Op.PINV), ("X^{+}", Op.PINV)])
def test_the_star_subscript_and_the_dagger_stay(typed: str, op: Op) -> None:
    assert md.parse(typed, shapes=M, syntax="latex").op is op


# ----------------------------------------------------------------------------- Unicode

UNICODE: list[tuple[str, Shapes | None, str]] = [
    ("xᵀAx", None, "x'*A*x"),
    ("2Aᵀ(AXB − C)Bᵀ", None, "2*A'*(A*X*B - C)*B'"),
    ("‖X‖_F² + λ tr(X⁻¹)", None, "||X||_F^2 + lambda*tr(inv(X))"),
    ("σ(Wx) ⊙ y", None, "sigmoid(W*x) .* y"),
    ("A ⊗ B + C ⊘ D", {"A": (2, 2), "B": (2, 2), "C": (4, 4), "D": (4, 4)},
     "kron(A, B) + C ./ D"),
    ("log det(X⁻ᵀ)", None, "logdet(inv(X)')"),
    ("λ_max(S) − λ_min(S)", None, "lambda_max(S) - lambda_min(S)"),
    ("X^½ + X^-½", None, "sqrtm(X) + inv(sqrtm(X))"),
    ("x^∘(1/3)", None, "x.^(1/3)"),
    ("D∘² ⊙ D", None, "D.^2 .* D"),
    ("X⁺ + X⁻²", {"X": ("n", "n")}, "pinv(X) + inv(X)^2"),
    ("𝟏_mᵀX𝟏_n", None, "ones(1, m)*X*ones(n)"),
    ("X + 0_m×n", {"X": ("m", "n")}, "X"),
    ("[A, B; C, D]x", None, "[A, B; C, D]*x"),
    ("‖[A, 0_n×m]‖_1", {"A": ("n", "p")}, "||[A, zeros(n, m)]||_1"),
    ("([C; D]A)[0:2, 0:n]", {"C": (2, "n"), "D": (3, "n"), "A": ("n", "n")},
     "([C; D]*A)[0:2, 0:n]"),
    ("lam‖W‖_F²", {"lam": ()}, "lam*||W||_F^2"),
    ("W2 tanh(W1 x)", None, "W2*tanh(W1*x)"),
    ("unvec(K(n, m) vec(G), m, n)", {"G": ("m", "n")}, "unvec(K(n, m)*vec(G), m, n)"),
    ("L_exp(A, E)", None, "expm_frechet(A, E)"),
    ("(1/3)X", None, "X/3"),
    ("H_R x", None, "H_R*x"),
    ("‖x‖_∞ − μ", {"mu": ()}, "||x||_inf - mu"),
    ("det(X)X⁻ᵀ", None, "det(X)*inv(X)'"),
    ("Aᵀ[1:2, 0:1]", {"A": (3, 3)}, "A'[1:2, 0:1]"),
]


@pytest.mark.parametrize(("typed", "shapes", "intended"), UNICODE, ids=[r[0] for r in UNICODE])
def test_unicode_input(typed: str, shapes: Shapes | None, intended: str) -> None:
    assert md.parse(typed, shapes=shapes, syntax="unicode") is md.parse(intended, shapes=shapes)
    if any(not c.isascii() for c in typed):                  # detected by its characters
        assert md.parse(typed, shapes=shapes) is md.parse(intended, shapes=shapes)


def test_ascii_text_is_never_read_as_unicode_unless_asked() -> None:
    """Without a Unicode character, text is ASCII: no product by juxtaposition, no typo
    read as a product of letters."""
    with pytest.raises(md.MatdiffError, match="unknown function 'trce'"):
        md.parse("trce(X)")
    with pytest.raises(md.MatdiffError, match="juxtaposition"):
        md.parse("W1 x")
    assert md.parse("W1 x", syntax="unicode") is md.parse("W1*x")


@pytest.mark.parametrize(("typed", "at"), [("xᵀ ? x", "?"), ("‖x‖_∞ ⊕ y", "⊕"),
                                           ("tr(Xᵀ", "("), ("[A, B", "[")])
def test_unicode_errors_point_into_the_text_as_typed(typed: str, at: str) -> None:
    with pytest.raises(md.MatdiffError) as info:
        md.parse(typed, syntax="unicode")
    assert info.value.pos == typed.index(at) and info.value.text == typed


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(exprs("s", 5))
def test_what_the_unicode_printer_prints_parses_back(e: E.Expr) -> None:
    """Print Unicode, parse it with the declared shapes: the same value everywhere."""
    back = md.parse(md.to_unicode(e), shapes=md.shapes_of(e), syntax="unicode")
    env, dims = random_inputs(e, seed=5)
    want = np.asarray(evaluate(e, env, dims), dtype=float)
    got = np.asarray(evaluate(back, env, dims), dtype=float)
    assert got.shape == want.shape
    assert np.allclose(got, want, rtol=1e-9, atol=1e-9, equal_nan=True), (md.to_unicode(e),
                                                                           str(back))


# ----------------------------------------------------------------------------- notes


def test_notes_name_every_default_and_guess() -> None:
    notes = " | ".join(parse_with_notes("(x - mu)'*diag(X)").notes)
    assert "x a column vector" in notes and "mu has the shape of x - mu" in notes
    assert "diag(X) is read as the diagonal of a square matrix" in notes
    assert parse_with_notes("x'*A*x", shapes={"x": ("n",)}).notes == ()
    assert "elementwise" in " ".join(parse_with_notes("tr(exp(X))").notes)


def test_the_check_report_names_the_defaults() -> None:
    rep = md.check("sum(x - mu)", "mu")
    assert any("mu has the shape of x - mu" in n for n in rep.notes)
    assert any("x a column vector" in n for n in md.report("x'*x", ["x"])["notes"])


def test_unused_shape_declarations_are_reported(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grad", "x'*x", "--shape", "x=n", "--shape", "z=n,n", "--no-check"]) == 0
    out = capsys.readouterr().out
    assert "note: z is declared but does not occur in the expression" in out
    assert main(["grad", "x'*x", "--shape", "x=n", "--shape", "zz=n", "--format",
                 "numpy"]) == 0
    assert "zz is declared but does not occur" in capsys.readouterr().err
