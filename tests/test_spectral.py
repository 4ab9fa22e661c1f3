"""Spectral functions and factorizations (issue 15).

Every spelling parses to its Op; every gradient (at random points, with symmetric steps for
a variable declared symmetric) and every Hessian-vector product (forward over reverse)
matches finite differences; closed-form Hessians where they exist; a literature table,
each result checked numerically and printed in textbook form with its factorization named;
the three backends agree and a Fréchet derivative never builds a Kronecker product; at a
point where a function is not differentiable the check says so and is never a mismatch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import matdiff as md
from matdiff import diff as D
from matdiff import expr as E
from matdiff import forward as F
from matdiff.check import check as check_claimed
from matdiff.check import (
    check_gradients,
    evaluate,
    fd_jacobian,
    not_differentiable,
    random_inputs,
    rel_error,
)
from matdiff.codegen import codegen, lower
from matdiff.codegen import compile as compile_code
from matdiff.codegen.ir import walk
from matdiff.expr import Op
from matdiff.names import name_parts, with_names

SQ = {"X": ("n", "n")}
SYM = {"S": ("n", "n", "symmetric")}
SPD = {"S": ("n", "n", "spd")}
RECT = {"X": ("m", "n")}

# ----------------------------------------------------------------------------- spellings

SPELLINGS = [  # (text, syntax, shapes, the Op it is)
    ("expm(X)", "ascii", SQ, Op.EXPM), (r"e^{X}", "latex", SQ, Op.EXPM),
    (r"\operatorname{expm}(X)", "latex", SQ, Op.EXPM),
    ("logm(X)", "ascii", SQ, Op.LOGM), ("sqrtm(X)", "ascii", SQ, Op.SQRTM),
    ("X^(1/2)", "ascii", SQ, Op.SQRTM), ("X^0.5", "ascii", SQ, Op.SQRTM),
    (r"X^{1/2}", "latex", SQ, Op.SQRTM),
    ("expm_frechet(X, X')", "ascii", SQ, Op.FRECHET),
    (r"L_{\exp}\left(X, X^T\right)", "latex", SQ, Op.FRECHET),
    ("lambda_max(S)", "ascii", SYM, Op.EIGVAL), ("lambda_min(S)", "ascii", SYM, Op.EIGVAL),
    (r"\lambda_{\max}(S)", "latex", SYM, Op.EIGVAL), (r"\lambda_\min(S)", "latex", SYM, Op.EIGVAL),
    ("eigvec_max(S)", "ascii", SYM, Op.EIGVEC),
    ("||X||_*", "ascii", RECT, Op.NUCLEAR_NORM), ("norm(X, 'nuc')", "ascii", RECT, Op.NUCLEAR_NORM),
    ('norm(X, "nuc")', "ascii", RECT, Op.NUCLEAR_NORM),
    (r"\|X\|_*", "latex", RECT, Op.NUCLEAR_NORM), (r"\left\|X\right\|_{*}", "latex", RECT,
                                                   Op.NUCLEAR_NORM),
    ("||X||_2", "ascii", RECT, Op.SPECTRAL_NORM), ("norm(X)", "ascii", RECT, Op.SPECTRAL_NORM),
    ("norm(X, 2)", "ascii", RECT, Op.SPECTRAL_NORM),
    (r"\|X\|_2", "latex", RECT, Op.SPECTRAL_NORM),
    ("polar(X)", "ascii", RECT, Op.POLAR), ("svd_u1(X)", "ascii", RECT, Op.SVD_U1),
    ("svd_v1(X)", "ascii", RECT, Op.SVD_V1),
    ("pinv(X)", "ascii", RECT, Op.PINV), (r"X^{+}", "latex", RECT, Op.PINV),
    (r"X^\dagger", "latex", RECT, Op.PINV),
    ("adj(X)", "ascii", SQ, Op.ADJ), (r"\operatorname{adj}(X)", "latex", SQ, Op.ADJ),
    ("chol(S)", "ascii", SPD, Op.CHOL), ("cholesky(S)", "ascii", SPD, Op.CHOL),
    ("tril(X)", "ascii", RECT, Op.TRIL),
]


@pytest.mark.parametrize(("text", "syntax", "shapes", "op"), SPELLINGS,
                         ids=[s[0] for s in SPELLINGS])
def test_every_spelling_parses_to_its_op(text: str, syntax: str, shapes: dict[str, Any],
                                         op: Op) -> None:
    e = md.parse(text, shapes=shapes, syntax=syntax)
    assert e.op is op


def test_readings_of_exp() -> None:
    """e^{X} of a square matrix is the matrix exponential; \\exp(X) and exp(X) stay
    elementwise; e^{x} of a vector is elementwise."""
    assert md.parse(r"e^{X}", shapes=SQ, syntax="latex").op is Op.EXPM
    assert md.parse(r"\exp(X)", shapes=SQ, syntax="latex").op is Op.EXP
    assert md.parse("exp(X)", shapes=SQ).op is Op.EXP
    assert md.parse(r"e^{x}", syntax="latex").op is Op.EXP
    assert md.parse(r"e^{X}", shapes=RECT, syntax="latex").op is Op.EXP   # not square
    notes = md.report(r"\operatorname{tr}(e^{X})", "X", shapes=SQ, verify=False)["notes"]
    assert any("matrix exponential" in n for n in notes)
    notes = md.report("tr(exp(X))", "X", shapes=SQ, verify=False)["notes"]
    assert any("elementwise" in n and "expm" in n for n in notes)


def test_norm_readings() -> None:
    """Of a matrix: ||X||_2, norm(X) and norm(X, 2) are the spectral norm, ||X||_F and
    norm(X, 'fro') the Frobenius norm, norm(X, 1) is refused (MATLAB's column sum is not
    ||X||_1); of a vector every one of them is the Euclidean norm."""
    assert md.parse("norm(X, 'fro')", shapes=RECT).op is Op.NORM
    with pytest.raises(md.MatdiffError, match="largest column sum"):
        md.parse("norm(X, 1)", shapes=RECT)
    with pytest.raises(md.MatdiffError, match="induced p-norm in MATLAB"):
        md.parse("norm(X, 3)", shapes=RECT)
    for text in ("||x||_2", "||x||_*", "norm(x)", "norm(x, 'nuc')"):
        assert md.parse(text, shapes={"x": ("n",)}).op is Op.NORM


# ----------------------------------------------------------------------------- derivatives

# (id, f, variable, shapes): one or more rows per Op, symmetric arguments declared so
CASES = [
    ("expm", "tr(A*expm(X))", "X", SQ),
    ("expm-sym", "x'*expm(S)*x", "S", SYM),
    ("logm", "tr(A*logm(X))", "X", None),
    ("sqrtm", "tr(A*sqrtm(X))", "X", None),
    ("sqrtm-spd", "tr(A*sqrtm(S))", "S", SPD),
    ("frechet", "tr(A*expm_frechet(X, B))", "X", None),
    ("frechet-direction", "tr(A*logm_frechet(S, X))", "X", SPD),
    ("lambda-max", "lambda_max(S)", "S", SYM),
    ("lambda-min", "lambda_min(S)", "S", SYM),
    ("lambda-max-general", "lambda_max(X*A)", "X", None),
    ("lambda-max-gram", "lambda_max(A'*X'*X*A)", "X", None),
    ("eigvec", "b'*eigvec_max(S)", "S", SYM),
    ("nuclear", "||X||_*", "X", RECT),
    ("nuclear-product", "||A*X||_*", "X", None),
    ("spectral", "||X||_2", "X", RECT),
    ("spectral-squared", "||X*A||_2^2", "X", None),
    ("polar", "tr(B'*polar(X))", "X", {"X": ("m", "n"), "B": ("m", "n")}),
    ("polar-wide", "tr(B'*polar(X))", "X", {"X": ("n", "m"), "B": ("n", "m")}),
    ("svd-u1", "a'*svd_u1(X)", "X", {"X": ("m", "n"), "a": ("m",)}),
    ("svd-v1", "b'*svd_v1(X)", "X", {"X": ("m", "n"), "b": ("n",)}),
    ("pinv", "tr(A*pinv(X))", "X", {"X": ("m", "n"), "A": ("m", "n")}),
    ("pinv-wide", "tr(A*pinv(X))", "X", {"X": ("n", "m"), "A": ("n", "m")}),
    ("adj", "tr(A*adj(X))", "X", None),
    ("chol", "tr(A*chol(S))", "S", SPD),
    ("chol-logdet", "logdet(chol(S))", "S", SPD),
    ("tril", "sum(tril(X*X) .* A)", "X", None),
    ("det-root", "det(X)^(1/3)", "X", None),
]
_IDS = [c[0] for c in CASES]


def _f(text: str, shapes: dict[str, Any] | None) -> md.Expr:
    return md.parse(text, shapes=shapes)


@pytest.mark.parametrize(("name", "text", "wrt", "shapes"), CASES, ids=_IDS)
def test_gradient_matches_finite_differences(name: str, text: str, wrt: str,
                                             shapes: dict[str, Any] | None) -> None:
    """At random points (symmetric steps for a symmetric variable), raw and simplified."""
    f = _f(text, shapes)
    for simplified in (False, True):
        g = md.grad(f, wrt, simplified=simplified)
        assert isinstance(g, md.Expr)
        report = check_gradients(f, {wrt: g}, seed=3)
        assert report.ok, f"{name} simplified={simplified}: {report}"


def _central(g: md.Expr, wrt: str, direction: np.ndarray, step: float, env: dict[str, Any],
             sizes: dict[str, int]) -> np.ndarray:
    """(g(X + hV) - g(X - hV)) / 2h."""
    x0 = np.asarray(env[wrt], dtype=float)
    plus = evaluate(g, {**env, wrt: x0 + step * direction}, sizes)
    minus = evaluate(g, {**env, wrt: x0 - step * direction}, sizes)
    return (np.asarray(plus, dtype=float) - np.asarray(minus, dtype=float)) / (2 * step)


def hvp_error(f: md.Expr, wrt: str, seed: int = 0) -> float:
    """Error of the HVP against central differences of the gradient along V (a symmetric V
    for a symmetric variable; Richardson extrapolation of steps h and h/2), relative to the
    larger of the two and 1e-3 of the gradient's size: an HVP of zero (tr(A adj(X)) for a
    2×2 X, linear in X) is compared absolutely, against the differences' rounding."""
    x = E.free_symbols(f)[wrt]
    g, hv, v = md.grad(f, wrt), md.hvp(f, wrt), F.hvp_direction(f, wrt)
    assert isinstance(g, md.Expr)
    for attempt in range(5):
        env, sizes = random_inputs([f, g, hv, v], seed=seed + attempt)
        if not_differentiable(f, env, sizes) is not None:
            continue
        direction = np.asarray(env[v.name], dtype=float)
        if x.symmetric:
            direction = (direction + direction.T) / 2
        env[v.name] = direction
        h = 1e-4 * max(1.0, float(np.max(np.abs(env[wrt]))))
        fd = (4 * _central(g, wrt, direction, h / 2, env, sizes)
              - _central(g, wrt, direction, h, env, sizes)) / 3
        got = np.asarray(evaluate(hv, env, sizes), dtype=float)
        floor = 1e-3 * max(1.0, float(np.max(np.abs(evaluate(g, env, sizes)))))
        return float(np.max(np.abs(got - fd))) / max(float(np.max(np.abs(got))),
                                                     float(np.max(np.abs(fd))), floor)
    raise AssertionError("no point where f is differentiable")


@pytest.mark.parametrize(("name", "text", "wrt", "shapes"), CASES, ids=_IDS)
def test_hvp_matches_finite_differences(name: str, text: str, wrt: str,
                                        shapes: dict[str, Any] | None) -> None:
    """Forward over reverse: the JVP of the gradient, against its finite differences."""
    assert hvp_error(_f(text, shapes), wrt, seed=11) < 1e-6


HESSIANS = [  # closed forms: the derivative of the gradient has a vec/Kronecker form
    ("lambda-max", "lambda_max(X)", "X", None),
    ("lambda-min", "lambda_min(A*X)", "X", None),
    ("spectral", "||X||_2", "X", RECT),
    ("pinv", "tr(A*pinv(X))", "X", {"X": ("m", "n"), "A": ("m", "n")}),
    ("adj", "tr(A*adj(X))", "X", None),
    ("chol", "tr(A*chol(X))", "X", None),
    ("det-root", "det(X)^(1/3)", "X", None),
]


@pytest.mark.parametrize(("name", "text", "wrt", "shapes"), HESSIANS,
                         ids=[h[0] for h in HESSIANS])
def test_closed_form_hessian(name: str, text: str, wrt: str,
                             shapes: dict[str, Any] | None) -> None:
    f = _f(text, shapes)
    if name == "chol":
        f = md.parse(text, shapes={"X": ("n", "n"), "A": ("n", "n")})
    h, g = md.hessian(f, wrt), md.grad(f, wrt)
    assert isinstance(g, md.Expr)
    env, sizes = random_inputs([f, g, h], seed=4)
    if name == "chol":  # chol reads the symmetric part: an spd point
        a = np.asarray(env[wrt])
        env[wrt] = a @ a.T + a.shape[0] * np.eye(a.shape[0])
    numeric = fd_jacobian(g, wrt, env, sizes)
    got = np.asarray(evaluate(h, env, sizes), dtype=float).reshape(numeric.shape)
    assert rel_error(got, numeric) < 1e-6


@pytest.mark.parametrize("text", ["tr(A*expm(X))", "tr(A*logm(X))", "||X||_*"])
def test_no_closed_hessian_through_a_frechet_derivative(text: str) -> None:
    """The Hessian says it has no closed form and points to the HVP, which exists."""
    f = md.parse(text, shapes=RECT if "||" in text else None)
    with pytest.raises(md.MatdiffError, match="Hessian-vector product"):
        md.hessian(f, "X")
    assert isinstance(md.hvp(f, "X"), md.Expr)


# ----------------------------------------------------------------------------- kinks

KINKS = [  # f, variable, sizes: every point drawn is a kink of a spectral function
    ("repeated-smallest-eigenvalue", "lambda_min(eye(n) + x*x')", "x", {"n": 3}),
    ("repeated-largest-eigenvalue", "lambda_max(a*eye(n))", "a", {"n": 3}),
    ("repeated-singular-value", "||a*eye(n)||_2", "a", {"n": 3}),
    ("zero-singular-value", "||x*y'||_*", "x", {"n": 3, "m": 4}),
    ("rank-deficient-pinv", "tr(pinv(x*y'))", "x", {"n": 3, "m": 3}),
]


@pytest.mark.parametrize(("name", "text", "wrt", "sizes"), KINKS, ids=[k[0] for k in KINKS])
def test_not_differentiable_here_is_never_a_mismatch(name: str, text: str, wrt: str,
                                                     sizes: dict[str, int]) -> None:
    """Every point drawn is a kink (the check sees it); the formulas hold along these
    particular functions (λ_min(I + xxᵀ) is constant, ‖xyᵀ‖_* = |x||y|), so the check may
    be OK; it is never a mismatch, and a wrong claim there is "not differentiable"."""
    f = md.parse(text)
    g = md.grad(f, wrt)
    assert isinstance(g, md.Expr)
    env, dims = random_inputs(f, seed=1, sizes=sizes)
    assert not_differentiable(f, env, dims) is not None
    report = check_gradients(f, {wrt: g}, seed=1, sizes=sizes)
    assert not report.failed and report.inconclusive in ({}, {wrt: "not differentiable"})
    wrong = check_gradients(f, {wrt: E.scale(E.const(2), g) + E.free_symbols(f)[wrt]},
                            seed=1, sizes=sizes)
    assert not wrong.failed and wrong.inconclusive == {wrt: "not differentiable"}
    assert "inconclusive here (not differentiable)" in str(wrong)


def test_a_wrong_gradient_off_the_kinks_is_a_mismatch() -> None:
    """The same wrong claim where the smallest eigenvalue is simple (n = 2): a mismatch."""
    f = md.parse("lambda_min(eye(n) + x*x')")
    x = E.free_symbols(f)["x"]
    report = check_gradients(f, {"x": x}, seed=1, sizes={"n": 2})
    assert report.failed
    with pytest.raises(md.MatdiffError, match="does not match"):
        check_claimed(f, "x", {"x": x}, sizes={"n": 2})


def test_the_check_compares_where_the_point_is_smooth() -> None:
    """lambda_min(aI + xx') has a simple smallest eigenvalue a for n = 2 (the check is OK)
    and a repeated one for n = 3 (every point is a kink); the check says which."""
    f = md.parse("lambda_min(a*eye(n) + x*x')")
    g = md.grad(f, "a")
    assert isinstance(g, md.Expr)
    assert check_gradients(f, {"a": g}, sizes={"n": 2}).ok
    env, sizes = random_inputs(f, seed=0, sizes={"n": 3})
    assert not_differentiable(f, env, sizes) == \
        "a repeated extreme eigenvalue of a*I + x*x'"
    env, sizes = random_inputs(f, seed=0, sizes={"n": 2})
    assert not_differentiable(f, env, sizes) is None


def test_a_tie_in_the_sign_convention_is_a_kink() -> None:
    """v1 and u1 take the sign that makes v1's entry of largest |.| positive (eigvec the
    same), so where two entries tie for it the vector flips: NumPy and PyTorch took
    opposite signs at such a point (soak case 703335, sign(F .* (1 - D)), whose v1 is
    (-1, 1, -1, 0)/sqrt 3). The point is a kink, as a repeated singular value is; a point
    off the tie is not."""
    sign_matrix = np.array([[-1.0, 1.0, -1.0, -1.0], [1.0, -1.0, 1.0, -1.0]])
    nudge = np.array([[0.3, 0.0, 0.1, 0.2], [0.0, 0.2, 0.0, 0.1]])
    cases = [("a'*svd_u1(X)", {"a": (2,), "X": (2, 4)}, sign_matrix, nudge),
             ("b'*svd_v1(X)", {"b": (4,), "X": (2, 4)}, sign_matrix, nudge),
             ("a'*eigvec_max(X)", {"a": (2,), "X": (2, 2)}, np.array([[2.0, 1.0], [1.0, 2.0]]),
              np.array([[0.0, 0.0], [0.0, 0.5]]))]            # v = (1, 1)/sqrt 2, then not
    for text, shapes, tied, off in cases:
        f = md.parse(text, shapes=shapes)
        env = {k: np.ones(v[0]) for k, v in shapes.items() if len(v) == 1}
        reason = not_differentiable(f, {**env, "X": tied}, {})
        assert reason is not None and reason.startswith("two equally largest |entries|"), reason
        assert not_differentiable(f, {**env, "X": tied + off}, {}) is None, text


def test_the_report_is_never_a_mismatch_at_a_kink() -> None:
    rep = md.report("tr(pinv(x*y'))", ["x"])
    assert rep["check"]["x"]["verdict"] in ("ok", "inconclusive")


# ----------------------------------------------------------------------------- textbook

# (id, f, variable, shapes, the textbook form in matdiff's language, its Unicode print with
# the factorizations named, the source)
LITERATURE = [
    ("trace-exp", "tr(expm(X))", "X", None, "expm(X)'", "expm(X)ᵀ",
     "Matrix Cookbook, ∂tr F(X)/∂X = f(X)ᵀ"),
    ("trace-log", "tr(logm(X))", "X", None, "inv(X)'", "X⁻ᵀ",
     "Matrix Cookbook, ∂tr F(X)/∂X = f(X)ᵀ"),
    ("trace-sqrt", "tr(sqrtm(X))", "X", None, "1/2*inv(sqrtm(X))'", "0.5(X^½)⁻ᵀ",
     "Matrix Cookbook, ∂tr F(X)/∂X = f(X)ᵀ"),
    ("logdet-exp", "logdet(expm(X))", "X", SQ, "eye(n)", "I_n",
     "det e^X = e^(tr X) (Higham 2008, ch. 1)"),
    ("trace-A-exp", "tr(A*expm(X))", "X", None, "expm_frechet(X', A')", "L_exp(Xᵀ, Aᵀ)",
     "Higham 2008, ch. 3: the adjoint of L_f(X, ·) is L_f(Xᵀ, ·)"),
    ("quadratic-exp", "x'*expm(A)*x", "A", None, "expm_frechet(A', x*x')", "L_exp(Aᵀ, xxᵀ)",
     "Najfeld & Havel 1995; Higham 2008, ch. 3"),
    ("lambda-max", "lambda_max(S)", "S", SYM, "eigvec_max(S)*eigvec_max(S)'",
     "vvᵀ\n  where v = unit eigenvector of λ_max(S)", "Magnus & Neudecker 2019, ch. 8"),
    ("lambda-min", "lambda_min(S)", "S", SYM, "eigvec_min(S)*eigvec_min(S)'",
     "vvᵀ\n  where v = unit eigenvector of λ_min(S)", "Magnus & Neudecker 2019, ch. 8"),
    ("lambda-max-gram", "lambda_max(X'*X)", "X", None,
     "2*X*eigvec_max(X'*X)*eigvec_max(X'*X)'",
     "2Xvvᵀ\n  where v = unit eigenvector of λ_max(XᵀX)",
     "Magnus & Neudecker 2019, ch. 8, and the chain rule"),
    ("nuclear", "||X||_*", "X", RECT, "polar(X)", "UVᵀ\n  where UΣVᵀ = X (thin SVD)",
     "Watson 1992; Recht, Fazel & Parrilo 2010"),
    ("spectral", "||X||_2", "X", RECT, "svd_u1(X)*svd_v1(X)'",
     "uvᵀ\n  where u, v = singular vectors of the largest singular value ‖X‖_2",
     "Watson 1992; Lewis 1995"),
    ("spectral-squared", "||X||_2^2", "X", RECT, "2*||X||_2*svd_u1(X)*svd_v1(X)'",
     "2‖X‖_2 uvᵀ\n  where u, v = singular vectors of the largest singular value ‖X‖_2",
     "Watson 1992, and the chain rule"),
    ("det-root", "det(X)^(1/3)", "X", None, "1/3*det(X)^(1/3)*inv(X)'",
     "(1/3) det(X)^(1/3) X⁻ᵀ", "Matrix Cookbook (49), and the chain rule"),
    ("det-nth-root", "det(X)^(1/n)", "X", {"X": ("k", "k")}, "1/n*det(X)^(1/n)*inv(X)'",
     "det(X)^(n⁻¹) X⁻ᵀ/n", "Matrix Cookbook (49), and the chain rule"),
    ("det-power", "det(X)^2", "X", None, "2*det(X)^2*inv(X)'", "2 det(X)²X⁻ᵀ",
     "Matrix Cookbook (49), and the chain rule"),
    ("adjugate", "tr(adj(X))", "X", None, "(tr(adj(X))*inv(X) - inv(X)*adj(X))'",
     None, "adj X = det(X) X⁻¹; Matrix Cookbook (49), (59)"),
    ("pinv", "tr(A*pinv(X))", "X", {"X": ("m", "n"), "A": ("m", "n")},
     "-pinv(X)'*A'*pinv(X)' + (eye(m) - X*pinv(X))*A*pinv(X)*pinv(X)' "
     "+ pinv(X)'*pinv(X)*A*(eye(n) - pinv(X)*X)", None, "Golub & Pereyra 1973"),
    ("chol", "tr(A*chol(S))", "S", SPD, None, None, "Murray 2016"),
]


@pytest.mark.parametrize(("name", "text", "wrt", "shapes", "book", "shown", "source"),
                         LITERATURE, ids=[r[0] for r in LITERATURE])
def test_literature_table(name: str, text: str, wrt: str, shapes: dict[str, Any] | None,
                          book: str | None, shown: str | None, source: str) -> None:
    """Each result is checked against finite differences and, where a textbook form is
    given, against it; the Unicode print is the textbook's, its factorization named."""
    f = _f(text, shapes)
    g = md.grad(f, wrt)
    assert isinstance(g, md.Expr)
    assert md.check(f, wrt).ok
    if book is not None:
        ref = md.parse(book, shapes={**md.shapes_of(f), **(shapes or {})})
        env, sizes = random_inputs([g, ref], seed=2)
        assert rel_error(evaluate(g, env, sizes), evaluate(ref, env, sizes)) < 1e-8
    if shown is not None:
        roots, where = with_names([g], "unicode")
        printed = roots[0] + "".join(f"\n  where {n} = {d}" for n, d in where)
        assert printed == shown, printed
    assert source


def test_factorizations_print_in_every_style() -> None:
    f = md.parse("||X||_* + lambda_max(X'*X)", shapes=RECT)
    named = name_parts([md.grad(f, "X")])
    assert named.printed("unicode") == (["2Xvvᵀ + UVᵀ"], [
        ("v", "unit eigenvector of λ_max(XᵀX)"), ("UΣVᵀ", "X (thin SVD)")])
    assert named.printed("text") == (["2*X*v*v' + U*V'"], [
        ("v", "unit eigenvector of lambda_max(X'*X)"), ("U*Sigma*V'", "X (thin SVD)")])
    assert named.printed("latex") == (["2 X v v^{T} + U V^{T}"], [
        ("v", r"\text{unit eigenvector of } \lambda_{\max}\left(X^{T} X\right)"),
        (r"U \Sigma V^{T}", "X (thin SVD)")])
    chol = md.parse("tr(A*chol(S))", shapes=SPD)
    shown, where = with_names([md.grad(chol, "A")], "unicode")
    assert (shown, where[0]) == (["Lᵀ"], ("L", "chol(S)"))
    assert str(md.grad(f, "X")) == "2*X*eigvec_max(X'*X)*eigvec_max(X'*X)' + polar(X)"


def test_more_factorizations_than_listed_names_are_numbered_on() -> None:
    """Five polar factors (soak case 611893 had more singular-vector pairs than names): past
    U, U1, U2 the names go on as U3, U4, distinct, never a StopIteration."""
    mats = [f"X{k}" for k in range(5)]
    f = md.parse(" + ".join(f"||{m}||_*" for m in mats), shapes={m: RECT["X"] for m in mats})
    shown, where = name_parts([md.grad(f, m) for m in mats]).printed("text")
    assert shown == ["U*V'", "U1*V1'", "U2*V2'", "U3*V3'", "U4*V4'"], shown
    assert len({lhs for lhs, _ in where}) == 5


# ----------------------------------------------------------------------------- code

BACKEND_CASES = [c for c in CASES if c[0] in (
    "expm", "logm", "sqrtm-spd", "frechet", "lambda-max", "nuclear", "spectral", "polar-wide",
    "pinv", "adj", "chol", "tril")]


def _as_numpy(x: Any) -> np.ndarray:
    return np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=float)


@pytest.mark.parametrize("backend", [pytest.param("jax", marks=pytest.mark.jax),
                                     pytest.param("torch", marks=pytest.mark.torch)])
@pytest.mark.parametrize(("name", "text", "wrt", "shapes"), BACKEND_CASES,
                         ids=[c[0] for c in BACKEND_CASES])
def test_backends_agree_on_value_gradient_and_hvp(backend: str, name: str, text: str,
                                                  wrt: str, shapes: dict[str, Any] | None
                                                  ) -> None:
    if backend == "jax":
        import jax
        jax.config.update("jax_enable_x64", True)
    f = _f(text, shapes)
    outs = [f, md.grad(f, wrt), md.hvp(f, wrt)]
    env, sizes = random_inputs(outs, seed=6)
    want = compile_code(outs)(**env)
    if backend == "torch":
        import torch
        args = {k: torch.tensor(np.asarray(v, dtype=float)) for k, v in env.items()}
    else:
        args = env
    got = compile_code(outs, backend=backend)(**args)
    for a, b in zip(got, want, strict=True):
        assert rel_error(_as_numpy(a), b) < 1e-9, name


@pytest.mark.parametrize("backend", ["numpy", "jax", "torch"])
def test_no_kronecker_product_in_a_frechet_derivative(backend: str) -> None:
    """The gradient and the HVP of expm/logm/sqrtm objectives are Fréchet derivatives:
    evaluated by expm_frechet, a Sylvester solve or a 2n block, never a Kronecker product."""
    for text in ("tr(A*expm(X))", "tr(A*logm(X))", "tr(A*sqrtm(X))"):
        f = md.parse(text)
        src = codegen([f, md.grad(f, "X"), md.hvp(f, "X")], backend=backend)
        assert "kron" not in src
    src = codegen([md.grad("tr(A*expm(X))", "X")], backend=backend)
    assert "expm_frechet" in src if backend != "torch" else "matrix_exp" in src
    f = md.parse("tr(A*expm(X)) + tr(B*logm(X))")           # the IR: Fréchet calls, no kron
    keys = {n.key for n in walk(lower([md.grad(f, "X"), md.hvp(f, "X")], backend))}
    assert {"expm_frechet", "logm_frechet"} <= keys and Op.KRON not in keys


@pytest.mark.parametrize("text", ["tr(logm(X))", "tr(A*sqrtm(X))", "tr(A*chol(S))"])
def test_random_inputs_land_in_the_domain(text: str) -> None:
    """logm and sqrtm get a spectrum off (-inf, 0]; chol a positive definite argument."""
    f = md.parse(text, shapes=SPD if "chol" in text else None)
    for seed in range(10):
        env, sizes = random_inputs(f, seed=seed)
        assert np.isfinite(evaluate(f, env, sizes))
        assert not_differentiable(f, env, sizes) is None


def test_the_adjoint_of_a_frechet_derivative_is_free_of_its_direction() -> None:
    """L_f(A, E) is linear in E: its adjoint L_f(Aᵀ, C) holds no E, so a derivation step
    reads C : L_f(A, dX) = L_f(Aᵀ, C) : dX."""
    a, e, c = (E.sym(n, ("n", "n")) for n in "AEC")
    for f in ("expm", "logm", "sqrtm"):
        (e_bar,) = D.adjoint(c, E.frechet(f, a, e), [1])
        assert e_bar is E.frechet(f, a.T, c)
    steps = md.explain("tr(A*expm(X))", "X").render("unicode")
    assert "L_exp(Xᵀ, Aᵀ) : dX" in steps


@pytest.mark.parametrize(("text", "merged"), [
    ("det(X)*det(X)^(p - 1)", "det(X)^p"), ("det(X)^p*det(X)^q", "det(X)^(p + q)"),
    ("det(X)^(1/n)*det(X)^2", "det(X)^(n^-1 + 2)"), ("(det(X)^(1/2))^2", "det(X)"),
    ("det(X)^(1/3)*det(X)", "det(X)^(4/3)"),
])
def test_powers_of_a_determinant_merge_into_one_exponent(text: str, merged: str) -> None:
    shapes = {"X": ("k", "k")}
    assert str(md.simplify(md.parse(text, shapes=shapes))) == merged
