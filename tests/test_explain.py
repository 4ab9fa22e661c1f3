"""The derivation in differential form: the seed goes through the Hadamard and block steps
and reaches the gradient; every battery item's derivation ends at the verified gradient."""

from __future__ import annotations

import contextlib
import io

import pytest

import matdiff as md
from matdiff.check import evaluate, random_inputs, rel_error
from matdiff.cli import main
from matdiff.diff import LINEAR
from matdiff.explain import ADJOINT_RULE, inline
from matdiff.expr import Op
from matdiff.testing import BATTERY, SEED


def _agrees_with_grad(f: md.Expr, wrt: list[str]) -> None:
    ex = md.explain(f, wrt)
    got = inline(ex)
    ref = md.grad(f, wrt)
    for seed in (1, 2):
        env, sizes = random_inputs([f, *ref.values(), *got.values()], seed=seed)
        for name in wrt:
            assert got[name].shape == ref[name].shape
            err = rel_error(evaluate(got[name], env, sizes), evaluate(ref[name], env, sizes))
            assert err < 1e-9, f"d/d{name}: {got[name]} != {ref[name]}"


@pytest.mark.parametrize(("text", "wrt"), BATTERY, ids=[t[:30] for t, _ in BATTERY])
def test_every_derivation_reaches_the_gradient(text: str, wrt: list[str]) -> None:
    _agrees_with_grad(md.parse(text), wrt)


def test_seed_goes_through_the_hadamard_and_block_steps() -> None:
    ex = md.explain(SEED, ["R", "Q"])
    lines = [s.unicode for s in ex.steps]
    rules = " | ".join(s.rule for s in ex.steps)
    assert lines[0] == "φ = L : L + U : U"  # M, N and K are the plain output's parts
    assert lines[1] == "dφ = 2L : dL + 2U : dU"
    assert "2L : (I ⊙ (dQᵀB + dRᵀA))" in lines[2]
    assert "2U : [dR, −dQ; dQ, dR]PSᵀ" in lines[2]
    assert ADJOINT_RULE[Op.HADAMARD] in rules and ADJOINT_RULE[Op.BLOCK] in rules
    assert ADJOINT_RULE[Op.MATMUL] in rules
    assert "sum(" not in "".join(lines) and "Σ" not in "".join(lines)  # no indices
    parts = {str(n): str(d) for n, d in ex.parts}
    assert parts["L"] == "I .* (Q'*B + R'*A) - Z"
    assert parts["U"] == "[R, -Q; Q, R]*P*S' - W"
    assert parts["M"] == "Q'*B + R'*A - Z"
    assert md.to_unicode(ex.gradients["R"]) == "2(A(I ⊙ M) + NSP[m:2m, 0:q]ᵀ − KSP[0:m, 0:q]ᵀ)"
    assert md.to_unicode(ex.gradients["Q"]) == "2(B(I ⊙ M) + KSP[m:2m, 0:q]ᵀ + NSP[0:m, 0:q]ᵀ)"
    assert lines[-1].startswith("where L = I ⊙ (QᵀB + RᵀA) − Z")


def test_explanation_prints_as_text_and_latex() -> None:
    ex = md.explain("||A*X*B - C||_F^2", "X")
    text = ex.render("text")
    assert text.splitlines()[0].startswith("phi = M : M")
    assert "[A : BXC = B'AC' : X]" in text  # the text format spells its rules in ASCII
    latex = ex.render("latex")
    assert latex.startswith("\\begin{aligned}") and "\\mathrm{d}X" in latex
    assert "\\frac{\\partial \\phi}{\\partial X} &= 2 A^{T} M B^{T}" in latex
    assert str(ex) == ex.render("unicode")
    assert all("&" not in s.latex for s in ex.steps)  # each step typesets on its own
    assert "\\mathrm{d}M" in ex.steps[1].latex
    assert [s.unicode for s in ex.steps] == [
        "φ = M : M", "dφ = 2M : dM", "    = 2M : A dX B", "    = 2AᵀMBᵀ : dX",
        "so ∂φ/∂X = 2AᵀMBᵀ", "     = 2Aᵀ(AXB − C)Bᵀ", "where M = AXB − C"]


def test_scalar_terms_are_written_as_products() -> None:
    ex = md.explain("0.5*log(det(S)) + 0.5*(x-m)'*inv(S)*(x-m)", ["S", "m"])
    assert ex.steps[0].unicode == "dφ = 0.5S⁻ᵀ : dS + 0.5 d((x − m)ᵀS⁻¹(x − m))"


def test_symmetric_variable_uses_the_symmetric_part() -> None:
    f = md.parse("log(det(S)) + x'*S*x", shapes={"S": ("n", "n", "symmetric")})
    _agrees_with_grad(f, ["S"])


def test_report_steps() -> None:
    rep = md.report("x'*A*x", ["x"], verify=False, steps=True)
    assert rep["steps"] and set(rep["steps"][0]) == {"rule", "text", "unicode", "latex"}
    assert "steps" not in md.report("x'*A*x", ["x"], verify=False)


def test_cli_steps() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["grad", SEED, "--wrt", "R", "--wrt", "Q", "--steps", "--no-check"])
    assert code == 0
    text = out.getvalue()
    assert "derivation:" in text and "dφ = 2L : dL + 2U : dU" in text
    assert "where L = I ⊙ (QᵀB + RᵀA) − Z" in text


def _cli(*args: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["grad", *args, "--no-check"]) == 0
    return out.getvalue()


@pytest.mark.parametrize("style", ["text", "unicode"])
def test_steps_name_the_parts_as_the_plain_output_does(style: str) -> None:
    """Issue 13: with and without --steps the result and its ``where`` lines are the same,
    a name means one thing in the whole output, lines wrap at 100 characters, and the text
    format has no Unicode."""
    args = [SEED, "--wrt", "R", "--wrt", "Q", "--format", style]
    plain, steps = _cli(*args), _cli(*args, "--steps")
    assert steps.startswith(plain.split("\ncheck")[0].rstrip("\n"))
    derivation = steps.split("derivation:")[1]
    where = next(line for line in plain.splitlines() if "where" in line)
    definition = where.split("where ")[1].strip()  # "M = QᵀB + RᵀA − Z"
    assert definition in derivation  # the derivation's M is the plain output's M
    assert all(len(line) <= 100 for line in derivation.splitlines())
    if style == "text":
        assert derivation.isascii()


def test_every_linear_op_has_an_adjoint_rule_name() -> None:
    """The adjoint rounds move a coefficient through any linear node (``diff.LINEAR``)."""
    assert set(ADJOINT_RULE) == set(LINEAR)


def test_errors() -> None:
    with pytest.raises(md.MatdiffError, match="scalar"):
        md.explain("A*X", "X")
    with pytest.raises(md.MatdiffError, match="does not occur"):
        md.explain("x'*A*x", "y")
