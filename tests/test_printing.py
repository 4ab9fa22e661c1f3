"""Printers: golden strings in ASCII, Unicode and LaTeX (the seed with its named parts), and
the round trips ``parse(to_text(e)) is e`` and, where the LaTeX grammar reads the construct,
``parse(to_latex(e), syntax="latex") is e``."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import matdiff as md
from matdiff import expr as E
from matdiff.expr import Op
from matdiff.names import name_parts, with_names
from matdiff.testing import BATTERY as GRADIENT_BATTERY
from matdiff.testing import SEED

GOLDEN = [  # (expression, wrt or None for the expression itself, text, unicode, latex)
    pytest.param("x'*A*x", "x", "(A + A')*x", "(A + Aᵀ)x", r"\left(A + A^{T}\right) x",
                 id="quadratic"),
    pytest.param("||A*X*B - C||_F^2", "X", "2*A'*(A*X*B - C)*B'", "2Aᵀ(AXB − C)Bᵀ",
                 r"2 A^{T} \left(A X B - C\right) B^{T}", id="axb"),
    pytest.param("log(det(X))", "X", "inv(X)'", "X⁻ᵀ", "X^{-T}", id="logdet"),
    pytest.param("tr(inv(X)*A)", "X", "-inv(X)'*A'*inv(X)'", "−X⁻ᵀAᵀX⁻ᵀ",
                 "-X^{-T} A^{T} X^{-T}", id="trace-inverse"),
    pytest.param("det(X)", "X", "det(X)*inv(X)'", "det(X)X⁻ᵀ", r"\det\left(X\right) X^{-T}",
                 id="det"),
    pytest.param("||M .* X - Y||_F^2", "X", "2*M .* (M .* X - Y)", "2(M ⊙ (M ⊙ X − Y))",
                 r"2 \left(M \odot \left(M \odot X - Y\right)\right)", id="completion"),
    pytest.param("sum(X ./ Y)", "Y", "-X ./ Y.^2", "−X ⊘ Y∘²", r"-X \oslash Y^{\circ 2}",
                 id="division"),
    pytest.param("tr(inv(X'*X))", "X", "-2*X*inv(X'*X)^2", "−2X(XᵀX)⁻²",
                 r"-2 X \left(X^{T} X\right)^{-2}", id="inverse-power"),
    pytest.param("(x'*A*x)/(x'*x)", "x", "(A + A')*x/(x'*x) - 2*x'*A*x*x/(x'*x)^2",
                 "(A + Aᵀ)x/(xᵀx) − 2(xᵀAx)x/(xᵀx)²",
                 r"\frac{\left(A + A^{T}\right) x}{x^{T} x} - 2 \frac{\left(x^{T} A x\right) x}"
                 r"{\left(x^{T} x\right)^{2}}", id="rayleigh-fraction"),
    pytest.param("tr(Y' * kron(eye(p), X))", "X",
                 "kron(ones(1, p), eye(m))*(Y .* kron(eye(p), ones(m, n)))*kron(ones(p), eye(n))",
                 "(𝟏_pᵀ ⊗ I_m)(Y ⊙ (I_p ⊗ 𝟏_m×n))(𝟏_p ⊗ I_n)",
                 r"\left(\mathbf{1}_{p}^{T} \otimes I_{m}\right) \left(Y \odot \left(I_{p} "
                 r"\otimes \mathbf{1}_{m,n}\right)\right) \left(\mathbf{1}_{p} \otimes I_{n}"
                 r"\right)", id="kron-identity"),
    pytest.param("sum(log(1 + exp(-y .* (X*w))))", "w", "-X'*(sigmoid(-X*w .* y) .* y)",
                 "−Xᵀ(σ(−Xw ⊙ y) ⊙ y)",
                 r"-X^{T} \left(\operatorname{sigmoid}\left(-X w \odot y\right) \odot y\right)",
                 id="logistic"),
    pytest.param("0.5*log(det(S)) + 0.5*(x-m)'*inv(S)*(x-m)", "S",
                 "0.5*inv(S)'*(I - (x - m)*(x - m)'*inv(S)')", "0.5S⁻ᵀ(I − (x − m)(x − m)ᵀS⁻ᵀ)",
                 r"0.5 S^{-T} \left(I - \left(x - m\right) \left(x - m\right)^{T} S^{-T}\right)",
                 id="gaussian"),
    pytest.param(SEED, None, SEED, "‖Z − I ⊙ (RᵀA + QᵀB)‖_F² + ‖W − [R, −Q; Q, R]PSᵀ‖_F²",
                 r"\left\| Z - I \odot \left(R^{T} A + Q^{T} B\right) \right\|_{F}^{2} + "
                 r"\left\| W - \begin{bmatrix} R & -Q \\ Q & R \end{bmatrix} P S^{T} "
                 r"\right\|_{F}^{2}", id="seed"),
    pytest.param("lam*||W||_F^2 + x'*inv(S)*x", None, "lam*||W||_F^2 + x'*inv(S)*x",
                 "lam‖W‖_F² + xᵀS⁻¹x", r"\mathit{lam} \left\| W \right\|_{F}^{2} + x^{T} S^{-1} x",
                 id="multi-letter-names"),
]


@pytest.mark.parametrize(("text", "wrt", "ascii", "unicode", "latex"), GOLDEN)
def test_golden(text: str, wrt: str | None, ascii: str, unicode: str, latex: str) -> None:
    e = md.parse(text) if wrt is None else md.grad(text, wrt)
    assert isinstance(e, md.Expr)
    assert md.to_text(e) == ascii
    assert md.to_unicode(e) == unicode
    assert md.to_latex(e) == latex


SEED_NAMED = {
    "text": (["2*(A*(I .* M) + C[0:n, 0:m] + C[n:2*n, m:2*m])",
              "2*(B*(I .* M) + C[n:2*n, 0:m] - C[0:n, m:2*m])"],
             [("M", "Q'*B + R'*A - Z"), ("N", "[R, -Q; Q, R]*P*S' - W"), ("C", "N*S*P'")]),
    "unicode": (["2(A(I ⊙ M) + C[0:n, 0:m] + C[n:2n, m:2m])",
                 "2(B(I ⊙ M) + C[n:2n, 0:m] − C[0:n, m:2m])"],
                [("M", "QᵀB + RᵀA − Z"), ("N", "[R, −Q; Q, R]PSᵀ − W"), ("C", "NSPᵀ")]),
    "latex": ([r"2 \left(A \left(I \odot M\right) + C_{[0:n,\,0:m]} + C_{[n:2n,\,m:2m]}\right)",
               r"2 \left(B \left(I \odot M\right) + C_{[n:2n,\,0:m]} - C_{[0:n,\,m:2m]}\right)"],
              [("M", "Q^{T} B + R^{T} A - Z"),
               ("N", r"\begin{bmatrix} R & -Q \\ Q & R \end{bmatrix} P S^{T} - W"),
               ("C", "N S P^{T}")]),
}


@pytest.mark.parametrize("style", ["text", "unicode", "latex"])
def test_seed_with_named_parts(style: str) -> None:
    g = md.grad(SEED, ["R", "Q"])
    assert with_names([g["R"], g["Q"]], style) == SEED_NAMED[style]


def test_named_parts_substitute_back_and_plain_str_stays_inline() -> None:
    g = md.grad(SEED, ["R", "Q"])
    named = name_parts([g["R"], g["Q"]])
    shapes = md.shapes_of(md.parse(SEED))
    for inlined, original in zip(named.inline(), [g["R"], g["Q"]], strict=True):
        assert md.simplify(inlined) is original or str(md.simplify(inlined)) != ""
        assert md.parse(str(original), shapes=shapes) is original
    assert "M" not in str(g["R"]).replace("Z", "")  # str() never uses the names


def test_two_layer_named_parts() -> None:
    g = md.grad("||W2*tanh(W1*x) - y||_2^2", ["W1", "W2"])
    shown, where = with_names([g["W1"], g["W2"]], "unicode")
    assert shown == ["2((𝟏 − u∘²) ⊙ (W2ᵀv))xᵀ", "2vuᵀ"]
    assert where == [("u", "tanh(W1 x)"), ("v", "W2 u − y")]


def test_small_results_have_no_names() -> None:
    assert with_names([md.grad("x'*A*x", "x")], "text") == (["(A + A')*x"], [])


def test_report_where_and_named() -> None:
    rep = md.report(SEED, ["R", "Q"], verify=False)
    assert [p["name"] for p in rep["where"]] == ["M", "N", "C"]
    assert set(rep["where"][0]) == {"name", "text", "unicode", "latex"}
    d = rep["derivatives"]["R"]
    assert d["named"]["unicode"] == "2(A(I ⊙ M) + C[0:n, 0:m] + C[n:2n, m:2m])"
    assert "I .* " in d["text"] and "[R, -Q; Q, R]" in d["text"]


# ----------------------------------------------------------------------------- round trips

BATTERY = [*GRADIENT_BATTERY, ("tr(Y' * kron(eye(2), X))", ["X"])]
BATTERY_EXPRS = [e for text, wrt in BATTERY
                 for e in [md.parse(text), *md.grad(text, wrt).values()]]


@pytest.mark.parametrize("e", BATTERY_EXPRS, ids=lambda e: md.to_text(e)[:40])
def test_text_round_trip_on_the_battery(e: md.Expr) -> None:
    assert md.parse(md.to_text(e), shapes=md.shapes_of(e)) is e


def test_the_battery_has_slices_and_elementwise_powers() -> None:
    """What the LaTeX reader learnt last: ``X_{[0:n,\\,0:m]}`` and ``X^{\\circ k}``."""
    nodes = [n for x in BATTERY_EXPRS for n in E.toposort([x])]
    assert any(n.op is Op.SLICE for n in nodes)
    assert any(n.op is Op.POW and not n.args[0].is_scalar for n in nodes)


@pytest.mark.parametrize("e", BATTERY_EXPRS, ids=lambda e: md.to_text(e)[:40])
def test_latex_round_trip_on_the_battery(e: md.Expr) -> None:
    assert md.parse(md.to_latex(e), shapes=md.shapes_of(e), syntax="latex") is e


n = "n"
MATS = [E.sym(s, (n, n)) for s in "ABX"] + [E.sym("S", (n, n), "symmetric")]
VECS = [E.sym(s, (n,)) for s in "xy"]
SCAL = [E.sym("lam"), E.const(3), E.const("0.5")]


def _grow(args: tuple[md.Expr, md.Expr, md.Expr, int]) -> md.Expr:
    p, q, s, k = args
    ops = [lambda: p + q, lambda: p - q, lambda: p @ q, lambda: E.T(p @ q), lambda: -p,
           lambda: E.hadamard(p, q), lambda: E.hdiv(p, q), lambda: E.scale(s, p),
           lambda: E.kron(p, q), lambda: E.block([[p, q], [q, p]]),
           lambda: E.scale(E.trace(p), q), lambda: E.scale(E.det(p), q),
           lambda: E.inv(p), lambda: E.apply(Op.EXP, p), lambda: E.apply(Op.TANH, p),
           lambda: E.hadamard(E.eye(n), p), lambda: E.hpow(p, 2), lambda: E.matpow(p, 2),
           lambda: E.scale(E.norm(p), q), lambda: E.diagm(E.diag(p)),
           lambda: E.scale(E.hpow(E.total(p), -1), q), lambda: E.T(p),
           lambda: E.scale(E.matmul(VECS[0].T, p, VECS[1]), q)]
    out = ops[k % len(ops)]()
    return out if out.shape == p.shape else p  # stay n×n so everything composes


SQUARE = st.recursive(st.sampled_from(MATS),
                      lambda inner: st.tuples(inner, inner, st.sampled_from(SCAL),
                                              st.integers(0, 200)).map(_grow),
                      max_leaves=6)


@settings(max_examples=100, deadline=None)
@given(e=SQUARE)
def test_text_round_trip_property(e: md.Expr) -> None:
    assert md.parse(md.to_text(e), shapes=md.shapes_of(e)) is e


@settings(max_examples=60, deadline=None)
@given(e=SQUARE)
def test_text_round_trip_of_gradients(e: md.Expr) -> None:
    f = E.total(e) if not e.is_scalar else e
    for g in md.grad(f, list(E.free_symbols(f))).values():
        assert md.parse(md.to_text(g), shapes=md.shapes_of(g)) is g
        md.to_unicode(g), md.to_latex(g)  # the other printers never fail


@settings(max_examples=100, deadline=None)
@given(e=SQUARE)
def test_latex_round_trip_property(e: md.Expr) -> None:
    assert md.parse(md.to_latex(e), shapes=md.shapes_of(e), syntax="latex") is e


_X = E.sym("X", ("n", "n"))


@pytest.mark.parametrize(("e", "unicode", "latex"), [
    (E.matpow(E.inv(_X), 2), "X⁻²", "X^{-2}"),
    (E.matpow(E.T(E.inv(_X)), 2), "(X⁻ᵀ)²", r"\left(X^{-T}\right)^{2}"),
    (E.matpow(E.inv(_X.T), 2), "(Xᵀ)⁻²", r"\left(X^{T}\right)^{-2}"),
    (E.hpow(E.inv(_X), 2), "(X⁻¹)∘²", r"\left(X^{-1}\right)^{\circ 2}"),
    (E.inv(_X.T), "X⁻ᵀ", r"\left(X^{T}\right)^{-1}"),
], ids=["inverse-squared", "inverse-transpose-squared", "transpose-inverse-squared",
        "inverse-elementwise-squared", "inverse-of-transpose"])
def test_powers_of_superscripted_bases_are_parenthesised(e, unicode, latex) -> None:
    """No X⁻¹², no double superscripts; inv(Xᵀ) and inv(X)ᵀ print apart in LaTeX."""
    assert (md.to_unicode(e), md.to_latex(e)) == (unicode, latex)
    assert md.parse(md.to_latex(e), shapes=md.shapes_of(e), syntax="latex") is e


def test_kronecker_factor_of_a_product_is_parenthesised() -> None:
    h = md.hessian("log(det(X))", "X")
    assert md.to_unicode(h) == "−(X⁻¹ ⊗ X⁻ᵀ)K(m, m)"
    assert md.to_latex(h) == r"-\left(X^{-1} \otimes X^{-T}\right) K_{m,m}"
    assert md.parse(md.to_latex(h), shapes=md.shapes_of(h), syntax="latex") is h


def test_every_op_prints_in_every_style() -> None:
    X, x = MATS[2], VECS[0]
    nodes = {Op.COMMUTATION: E.commutation(n, n), Op.UNVEC: E.unvec(E.vec(X) + E.vec(X), n, n),
             Op.SLICE: E.slice_(E.block([[X, X]]), 0, n, 1, 3), Op.VEC: E.vec(X),
             Op.ONES: E.ones((n, n)), Op.ZERO: E.zeros((n, n)), Op.SUM: E.total(X),
             Op.LOGDET: E.logdet(X), Op.DIAG: E.diag(X), Op.DIAGM: E.diagm(x),
             **{op: E.apply(op, X) for op in E.ELEMENTWISE}}
    for node in nodes.values():
        for style in ("text", "unicode", "latex"):
            assert md.printing.render(node, style)
        assert md.parse(md.to_text(node), shapes=md.shapes_of(node)) is node


@pytest.mark.parametrize("seed", [20997, 22014])
def test_round_trip_of_a_scalar_product_times_a_scalar(seed: int) -> None:
    """Soak cases: (row-vector * ... * vector) * scalar, where the shapes stage settled the
    last product before knowing its left side is 1x1; two scalars keep their text order."""
    from matdiff.testing import random_case, shapes_of
    e = random_case(seed).expr
    assert md.parse(md.to_text(e), shapes=shapes_of(e)) is e


def test_a_dyadic_constant_whose_float_repr_is_not_exact_prints_as_a_fraction() -> None:
    """Soak case 83984: 543971/262144 printed as 2.075084686279297, which parses back to a
    different number; a decimal is printed only when it is exact."""
    from fractions import Fraction

    from matdiff.expr import const
    for c, text in ((Fraction(543971, 262144), "543971/262144"), (Fraction(1, 4), "0.25")):
        assert md.to_text(const(c)) == text
        assert md.parse(text) is const(c)
