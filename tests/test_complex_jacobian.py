"""Jacobians of complex maps (README "Complex matrices"): a holomorphic F gets the single
complex Jacobian J = ∂vec F/∂vec Xᵀ; any other F gets the Wirtinger pair (J, J̄) with
dvec F = J dvec X + J̄ dvec X̄ (Hjørungnes, *Complex-Valued Matrix Derivatives*, 2011, ch. 6).

Every pair is checked against central differences at a random complex point along the real
direction E and the imaginary direction iE of every entry: vec F moves by J vec E + J̄ vec E
and by i J vec E - i J̄ vec E (``testing_complex.wirtinger_pair_error``).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import matdiff as md
from matdiff import expr as E
from matdiff.api import _pair_claim
from matdiff.check import check_claims
from matdiff.cli import main
from matdiff.testing import RandomDraw
from matdiff.testing_complex import cgen, wirtinger_pair_error

TOL = 1e-6
SH: dict[str, tuple[Any, ...]] = {
    "z": ("n", 1, "complex"), "X": ("m", "n", "complex"), "A": ("p", "m", "complex"),
    "B": ("n", "q", "complex"), "C": ("m", "m", "complex"), "D": ("n", "n", "complex"),
    "M": ("n", "n", "complex"), "x": ("n",), "R": ("n", "n")}

# (expression, variable, the pair as matdiff writes it); each a map that is not holomorphic
NOT_HOLOMORPHIC = [
    ("conj(X)", "X", "zeros(m*n, m*n)", "eye(m*n)"),
    ("X'", "X", "zeros(m*n, m*n)", "K(m, n)"),                   # conjugate transpose
    ("real(M*z)", "z", "0.5*M", "0.5*conj(M)"),
    ("imag(M*z)", "z", "-0.5*1i*M", "0.5*1i*conj(M)"),
    ("abs(z).^2", "z", "Diag(conj(z))", "Diag(z)"),               # |x|²
    ("z .* conj(z)", "z", "Diag(conj(z))", "Diag(z)"),            # x ⊙ x̄
    ("C*conj(X)*D + X", "X", "eye(m*n)", "kron(D.', C)"),
    ("exp(z) + conj(M*z)", "z", "Diag(exp(z))", "conj(M)"),       # holomorphic + anti-holomorphic
    ("z'*M*z", "z", "z'*M", "z.'*M.'"),                           # a Hermitian-type form
    ("A*X*X'", "X", None, None),
    ("real(X)'*C", "X", None, None),
    ("abs(X*B).^2", "X", None, None),
    ("X .* conj(X) + 2i*X", "X", None, None),
    ("angle(z)", "z", None, None),
    ("trace(X'*C*X)", "X", None, None),
]


@pytest.mark.parametrize("text,wrt,d,d_bar", NOT_HOLOMORPHIC,
                         ids=[c[0] for c in NOT_HOLOMORPHIC])
def test_the_pair_of_a_map_that_is_not_holomorphic(text: str, wrt: str, d: str | None,
                                                     d_bar: str | None) -> None:
    f = md.parse(text, shapes=SH)
    pair = md.jacobian(f, wrt)
    assert isinstance(pair, md.WirtingerPair)
    assert not E.is_zero(pair.d_bar)
    if d is not None:
        assert (str(pair.d), str(pair.d_bar)) == (d, d_bar)
    for seed in (0, 1):
        assert wirtinger_pair_error(f, wrt, pair.d, pair.d_bar, seed=seed) < TOL


@pytest.mark.parametrize("text,wrt", [("M*z", "z"), ("exp(X).*X", "X"), ("A*X*B", "X"),
                                      ("X.'", "X"), ("real(z) + 1i*imag(z)", "z"),
                                      ("real(M*x)", "x")])
def test_a_holomorphic_map_keeps_its_single_jacobian(text: str, wrt: str) -> None:
    """J̄ = 0: md.jacobian gives J alone; pair=True gives (J, 0); both pass the check."""
    f = md.parse(text, shapes=SH)
    j = md.jacobian(f, wrt)
    assert isinstance(j, md.Expr)
    pair = md.jacobian(f, wrt, pair=True)
    assert isinstance(pair, md.WirtingerPair) and pair.d is j and E.is_zero(pair.d_bar)
    assert wirtinger_pair_error(f, wrt, j, pair.d_bar, seed=3) < TOL


def test_the_pair_check_rejects_a_wrong_pair() -> None:
    """The check can fail: swapped, dropped or conjugated halves are far off."""
    f = md.parse("C*conj(X)*D + X", shapes=SH)
    j, j_bar = md.jacobian(f, "X")
    zero = E.zeros(j.shape)
    for d, d_bar in [(j_bar, j), (j, zero), (E.add(j, j_bar), zero), (j, E.conj(j_bar))]:
        assert wirtinger_pair_error(f, "X", d, d_bar, seed=0) > 1e-2
    assert wirtinger_pair_error(f, "X", j, j_bar, seed=0) < TOL


def test_the_pair_unpacks_and_prints() -> None:
    J, J_bar = md.jacobian("conj(z)", "z", shapes=SH)
    assert (str(J), str(J_bar)) == ("zeros(n, n)", "eye(n)")
    assert str(md.jacobian("conj(z)", "z", shapes=SH)) == "(zeros(n, n), eye(n))"
    both = md.jacobian("conj(z) + x", ["z", "x"], shapes=SH)
    assert isinstance(both, dict)
    assert isinstance(both["z"], md.WirtingerPair) and str(both["x"]) == "eye(n)"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10**6), st.sampled_from(["v", "N", "s"]))
def test_random_complex_maps_have_a_checked_pair(seed: int, key: str) -> None:
    """Random complex-valued maps (conj, transposes, Re, Im, |·|, products, entire
    functions, inv, det, ...): the pair in each complex variable against differences."""
    f = cgen(RandomDraw(seed), key, 3)
    for name, x in E.free_symbols(f).items():
        if not x.is_complex:
            continue
        try:
            pair = md.jacobian(f, name, pair=True)
        except md.MatdiffError as err:       # expm/logm/sqrtm: no closed vec form; says so
            assert "no closed vec/Kronecker form" in err.message
            continue
        assert isinstance(pair, md.WirtingerPair)
        assert wirtinger_pair_error(f, name, pair.d, pair.d_bar, seed=2) < 1e-5, str(f)


def test_report_and_cli_show_and_check_both_jacobians(capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    """The CLI prints J and J̄ for each variable F is not holomorphic in, and the check
    compares J vec V + J̄ vec V̄ with differences along real and imaginary V."""
    rep = md.report("real(M*z)", None, {"z": ("n", 1, "complex"), "M": ("n", "n", "complex")},
                    what="jacobian")
    assert rep["derivatives"]["z"]["conjugate"]["text"] == "0.5*conj(M)"
    assert {n: c["verdict"] for n, c in rep["check"].items()} == {"M": "ok", "z": "ok"}
    assert main(["jacobian", "C*conj(X)*D + X", "--wrt", "X", "--shape", "X=m,n,complex",
                 "--shape", "C=m,m,complex", "--shape", "D=n,n,complex"]) == 0
    out = capsys.readouterr().out
    assert "∂vec(f)/∂vec(X)ᵀ = I_mn" in out and "∂vec(f)/∂vec(X̄)ᵀ = Dᵀ ⊗ C" in out
    assert "OK" in out and "MISMATCH" not in out


def test_the_report_check_rejects_a_wrong_pair() -> None:
    """The claim the report checks fails for a pair with its halves swapped."""
    f = md.parse("C*conj(X)*D + X", shapes=SH)
    j, j_bar = md.jacobian(f, "X")
    v = md.parse("V", shapes={"V": ("m", "n", "complex")})
    right, wrong = (_pair_claim(f, "X", a, b, v) for a, b in [(j, j_bar), (j_bar, j)])
    assert check_claims({"X": right}, extra=[f]).verdicts["X"].status == "ok"
    assert check_claims({"X": wrong}, extra=[f]).verdicts["X"].status == "mismatch"


# real f of complex variables whose gradient ∇f = 2 ∂f/∂X̄ has X̄ in it
HESSIAN_PAIRS = [
    ("real(z.'*M*z)", "z"),                      # ∇ = conj((M + Mᵀ) z): anti-holomorphic
    ("norm(abs(F*z).^2 - y)^2", "z"),            # phase retrieval (Wirtinger flow)
    ("abs(a'*z)^4", "z"),
    ("norm(X*X - C, 'fro')^2", "X"),
    ("real(trace(C*X*X)) + norm(X, 'fro')^2", "X"),
]
HSH: dict[str, tuple[Any, ...]] = {**SH, "F": ("p", "n", "complex"), "y": ("p",),
                                   "a": ("n", 1, "complex"), "X": ("n", "n", "complex"),
                                   "C": ("n", "n", "complex")}


@pytest.mark.parametrize("text,wrt", HESSIAN_PAIRS, ids=[c[0] for c in HESSIAN_PAIRS])
def test_the_hessian_pair_is_the_pair_of_the_gradient(text: str, wrt: str) -> None:
    f = md.parse(text, shapes=HSH)
    g = md.grad(f, wrt)
    pair = md.hessian(f, wrt)
    assert isinstance(pair, md.WirtingerPair) and not E.is_zero(pair.d_bar)
    assert isinstance(g, md.Expr)
    for seed in (0, 1):
        assert wirtinger_pair_error(g, wrt, pair.d, pair.d_bar, seed=seed) < TOL
    assert wirtinger_pair_error(g, wrt, pair.d_bar, pair.d, seed=0) > 1e-2   # can fail


def test_a_hessian_of_a_holomorphic_gradient_is_one_matrix() -> None:
    f = md.parse("real(z'*M*z) + norm(z)^2", shapes=HSH)   # ∇ = (M + Mᴴ) z + 2z
    h = md.hessian(f, "z")
    assert isinstance(h, md.Expr)
    pair = md.hessian(f, "z", pair=True)
    assert isinstance(pair, md.WirtingerPair) and E.is_zero(pair.d_bar)
    g = md.grad(f, "z")
    assert isinstance(g, md.Expr)
    assert wirtinger_pair_error(g, "z", h, pair.d_bar, seed=4) < TOL
    blocks = md.hessian("real(z.'*w) + norm(z)^2", ["z", "w"],
                        shapes={"z": ("n", 1, "complex"), "w": ("n", 1, "complex")})
    assert isinstance(blocks, dict)
    assert str(blocks["z", "w"]) == "(zeros(n, n), eye(n))"   # ∇_z = conj(w) + 2z
    assert str(blocks["z", "z"]) == "2*eye(n)"


def test_report_shows_and_checks_the_hessian_pair(capsys: pytest.CaptureFixture[str]) -> None:
    rep = md.report("norm(abs(F*z).^2 - y)^2", ["z"], HSH, what="hessian")
    assert "conjugate" in rep["derivatives"]["z"]
    assert rep["check"]["z"]["verdict"] == "ok"
    assert main(["hessian", "real(z.'*S*z)", "--shape", "z=n,complex", "--shape", "S=n,n",
                 "--wrt", "z"]) == 0
    out = capsys.readouterr().out
    assert "H_z = 0_n×n" in out and "∂vec(∇f)/∂vec(z̄)ᵀ = S + Sᵀ" in out and "OK" in out


def test_the_web_page_and_notebook_show_both_halves() -> None:
    pytest.importorskip("latex2mathml")
    from matdiff.web.jobs import with_mathml  # noqa: PLC0415 - the web extra is optional
    from matdiff.web.notebook import report_html  # noqa: PLC0415

    rep = md.report("z .* conj(z)", ["z"], {"z": ("n", 1, "complex")}, what="jacobian")
    shown = with_mathml(rep)["derivatives"]["z"]["conjugate"]
    assert shown["lhs"] == "∂vec(f)/∂vec(z̄)ᵀ" and shown["mathml"].startswith("<math")
    assert "∂vec(f)/∂vec(z̄)ᵀ" in report_html(rep)


def test_report_cross_hessian_blocks_are_pairs_where_needed() -> None:
    rep = md.report("norm(abs(F*z).^2 - y)^2", ["z", "F"], HSH, what="hessian")
    (block,) = rep["blocks"]
    assert (block["rows"], block["cols"]) == ("z", "F") and "conjugate" in block
    assert block["check"]["verdict"] == "ok"
    assert {n: c["verdict"] for n, c in rep["check"].items()} == {"z": "ok", "F": "ok"}
