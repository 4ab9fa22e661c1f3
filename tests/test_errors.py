"""Failure modes: pathological input gets a clear ``MatdiffError`` or a bounded-time answer,
never a ``RecursionError`` or a hang; the common mistakes print the documented message.

``docs/errors.md`` is generated from ``MISTAKES``: ``python tests/test_errors.py > docs/errors.md``.
"""

from __future__ import annotations

import contextlib
import io
import shlex

import numpy as np
import pytest

import matdiff as md
from matdiff import expr as E
from matdiff.cli import main
from matdiff.parse_ascii import parse_ascii
from matdiff.parse_latex import parse_latex


@pytest.mark.parametrize("parse", [parse_ascii, parse_latex], ids=["ascii", "latex"])
def test_long_sum_parses_without_recursion(parse):
    """A sum of n terms is a syntax tree n deep: the tree transformer must be iterative."""
    tree = parse(" + ".join(["x"] * 3000))
    assert tree.kind == "add"


def test_sum_of_ten_thousand_terms_is_one_flat_sum():
    """The shapes stage builds a chain ``a + b - c + ...`` as one n-ary sum (each nested sum
    it used to build was interned by hashing all its terms: quadratic time; the time itself
    is measured by benchmarks/symbolic_cost.py, not asserted here)."""
    e = md.parse(" + ".join(["x"] * 10_000))
    assert len(e.args) == 10_000
    e = md.parse("x - (y - x) + 3 - x")
    assert str(e) == "x - (y - x) + 3 - x"


def test_long_sum_parses():
    """Shape inference resolves dimension chains with path compression and decides
    ``x + x`` (equal shapes) without trial and error; ``add`` extends flat sums in bulk."""
    e = md.parse(" + ".join(["x"] * 2000))
    assert e.op is md.Op.ADD and len(e.args) == 2000


# ----------------------------------------------------------------------------- pathological


def test_ten_thousand_nested_parentheses():
    text = "(" * 10_000 + "x" + ")" * 10_000
    with pytest.raises(md.MatdiffError, match="nesting deeper than 200 levels") as info:
        md.parse(text)
    assert info.value.pos == 200


@pytest.mark.parametrize("syntax", ["ascii", "latex"])
def test_hundred_thousand_terms_and_a_megabyte(syntax):
    for text in (" + ".join(["x"] * 100_000), "x" * 1_000_000):
        with pytest.raises(md.MatdiffError, match="longer than 100000 characters") as info:
            md.parse(text, syntax=syntax)  # refused before any parsing
        assert 0 <= info.value.pos <= len(text)


def test_inv_thousand_deep_as_text():
    text = "inv(" * 1000 + "A" + ")" * 1000
    with pytest.raises(md.MatdiffError, match="nesting deeper than 200 levels"):
        md.parse(text)


def test_inv_nested_to_the_depth_limit():
    text = "tr(" + "inv(" * 190 + "A" + ")" * 191
    assert md.parse(text) is md.parse("tr(A)")  # inv(inv(X)) folds


def _chain(depth: int) -> E.Expr:
    """tr(sin(inv(sin(inv(... A))))): a DAG ``depth`` levels deep built without parsing."""
    a = E.sym("A", ("n", "n"))
    e = a
    for i in range(depth):
        e = E.Expr(E.Op.INV, (e,)) if i % 2 else E.apply(E.Op.SIN, e)
    return E.trace(e)


def test_deep_chain_through_the_iterative_stages():
    """toposort, the reverse sweep, simplify's passes, evaluate and codegen are iterative."""
    f = _chain(1000)
    raw = md.grad(f, "A", simplified=False)
    assert raw.shape == f.args[0].shape
    a = np.eye(3) * 0.5 + 0.1
    value = md.evaluate(f, A=a)
    assert np.isfinite(value)
    assert md.evaluate(md.simplify(f), A=a) == pytest.approx(value, rel=1e-9)
    assert md.compile(f)(A=a) == pytest.approx(value, rel=1e-9)


def test_deep_chain_prints():
    assert str(_chain(1000)).startswith("tr(")


def test_deep_chain_simplified_gradient():
    """Simplifying the gradient costs about depth**2.7 (str()-keyed sorts of deep nodes):
    0.7 s at depth 160, 5 s at 320, minutes at 1000; bounded, but kept short here."""
    assert md.grad(_chain(300), "A").shape == _chain(1).args[0].shape


def test_cli_deep_chain_is_a_clear_error(capsys):
    rc = main(["grad", "tr(" + "inv(" * 1000 + "A" + ")" * 1001, "--no-check"])
    err = capsys.readouterr().err
    assert rc == 2 and "nesting deeper than 200 levels" in err and "Traceback" not in err


# ----------------------------------------------------------------------------- honest checks


def test_check_is_honest_where_f_is_not_finite():
    """log det of a singular matrix: no point is found, the report says so and is not ok."""
    f = md.parse("logdet(x*x')", shapes={"x": ["n"]})
    rep = md.check(f, "x", raise_on_failure=False)
    assert not rep.ok
    assert "nothing was checked" in str(rep)


@pytest.mark.parametrize("text", ["sum(X)/(tr(A) - tr(A'))", "sum(X ./ (A - A))",
                                  "tr(X)*(sum(A') - sum(A))^-2"])
def test_a_divisor_that_simplifies_to_zero_is_an_error_not_a_gradient(text):
    """Not ones/0 for X and a zero matrix for A: the function is defined nowhere."""
    f = md.parse(text, shapes={"X": ("n", "n"), "A": ("n", "n")})
    with pytest.raises(md.MatdiffError, match="a divisor simplifies to 0"):
        md.grad(f, ["X", "A"])
    assert md.grad(f, ["X", "A"], simplified=False)     # the raw rules still apply


def test_check_raises_on_a_wrong_gradient():
    from matdiff.check import check

    f = md.parse("x'*A*x")
    s = E.free_symbols(f)
    wrong = {"x": E.matmul(s["A"], s["x"])}  # the A' x term is missing
    with pytest.raises(md.MatdiffError, match="does not match finite differences"):
        check(f, "x", wrong)


def test_generated_code_embeds_only_validated_identifiers():
    """Symbol names reach the source only through ``mangle``: ``[A-Za-z0-9_]``."""
    from matdiff.codegen import mangle

    hostile = ["__import__('os')", "x; import os", "lambda", "a\nb", "é", "", "1x", "print"]
    for name in hostile:
        out = mangle(name, set())
        assert out.isidentifier() and all(c.isascii() and (c.isalnum() or c == "_")
                                          for c in out)
    e = E.total(E.sym("__import__('os')", ("n",)))
    src = md.codegen(e)
    assert "import os" not in src and "__import__(" not in src


# ----------------------------------------------------------------------------- others' bugs


def test_round_trip_matmul_through_a_scalar():
    u = E.sym("u", ("m",))
    e = E.matmul(E.T(u), u, E.T(u), u)
    assert md.parse(str(e), shapes=md.shapes_of(e)) is e


def test_round_trip_quotient_inside_a_product():
    a, pa = E.sym("a"), E.sym("pa")
    e = E.scale(a, E.scale(E.hpow(pa, E.const(-1)), a))
    assert md.parse(str(e), shapes=md.shapes_of(e)) is e


def test_round_trip_zero_block_of_free_width():
    u, c = E.sym("u", ("m",)), E.sym("C", ("n", "n"))
    e = E.scale(E.matmul(E.T(u), u), E.total(E.block([[c, E.zeros(("n", "m"))]])))
    assert md.parse(str(e), shapes=md.shapes_of(e)) is e


def test_round_trip_ones_block():
    c = E.sym("C", ("n", "n"))
    e = E.total(E.block([[c, E.ones(("n", "m"))]]))
    assert md.parse(str(e), shapes=md.shapes_of(e)) is e


BACKENDS = ["numpy", pytest.param("jax", marks=pytest.mark.jax),
            pytest.param("torch", marks=pytest.mark.torch)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_codegen_norm_of_a_scalar(backend):
    """||a||_2 of a scalar is |a| (it lowered to einsum('ij,ij->') on a 0-d value)."""
    e = E.norm(E.sym("a"), "2")
    assert float(md.compile(e, backend=backend)(a=-0.7)) == pytest.approx(0.7)


@pytest.mark.parametrize("backend", BACKENDS)
def test_codegen_trace_of_kron_of_non_square_factors(backend):
    """tr(A kron B) = tr A tr B only for square A, B; x kron y' is n x n with trace y'x."""
    x, y = E.sym("x", ("n",)), E.sym("y", ("n",))
    e = E.trace(E.kron(x, E.T(y)))
    xv, yv = np.array([1.0, 2.0, 3.0]), np.array([1.0, -1.0, 2.0])
    f = md.compile(e, backend=backend)
    assert float(f(x=xv, y=yv)) == pytest.approx(float(yv @ xv))
    a, b = E.sym("A", ("m", "n")), E.sym("B", ("n", "m"))     # m x n kron n x m: mn x mn
    av, bv = np.arange(6.0).reshape(2, 3) - 2, np.arange(6.0).reshape(3, 2) * 0.5 + 1
    g = md.compile(E.trace(E.kron(a, b)), backend=backend)
    assert float(g(A=av, B=bv)) == pytest.approx(float(np.trace(np.kron(av, bv))))


# ----------------------------------------------------------------------------- the mistakes

# (title, explanation, argv after "matdiff", the exact stderr)
MISTAKES: list[tuple[str, str, list[str], str]] = [
    ("Unbalanced brackets", "Every bracket is matched before parsing; the caret points at "
     "the one left open.",
     ["grad", "(A*x - b", "--wrt", "x"],
     "error: '(' is never closed (expected ')')\n  (A*x - b\n  ^\n"),
    ("A closing bracket too many", "",
     ["grad", "A*x) - b", "--wrt", "x"],
     "error: unmatched ')'\n  A*x) - b\n     ^\n"),
    ("Unbalanced norm bars", "`||` must come in pairs.",
     ["grad", "||A*x - b||^2 + ||x", "--wrt", "x"],
     "error: unbalanced norm bars '||'\n  ||A*x - b||^2 + ||x\n                  ^\n"),
    ("`*` where `.*` was meant", "`*` is the matrix product; elementwise is `.*`.",
     ["grad", "sum(X*Y)", "--wrt", "X", "--shape", "X=m,n", "--shape", "Y=m,n"],
     "error: matrix product: the left side is m×n and the right side is m×n; inner "
     "dimensions differ (use .* for elementwise)\n  sum(X*Y)\n      ^^^\n"),
    ("Wrong dimension", "Declared shapes always win; the caret marks the first product that "
     "cannot be formed.",
     ["grad", "x'*A*x", "--wrt", "x", "--shape", "x=m", "--shape", "A=n,n"],
     "error: matrix product: the left side is 1×m and the right side is n×n; inner "
     "dimensions differ (use .* for elementwise)\n  x'*A*x\n  ^^^^\n"),
    ("Unknown function", "The functions are listed in the README; `trace`, `Tr`, `ln`, "
     "`norm` are accepted aliases.",
     ["grad", "trce(X)", "--wrt", "X"],
     "error: unknown function 'trce'\n  trce(X)\n  ^\n"),
    ("Differentiating with respect to a variable that is not there", "",
     ["grad", "x'*A*x", "--wrt", "z"],
     "error: 'z' does not occur in the expression; its variables are x, A\n"),
    ("Juxtaposition in ASCII", "ASCII input needs an explicit `*` (LaTeX input reads "
     "`A x` as a product).",
     ["grad", "A x", "--syntax", "ascii"],
     "error: unexpected 'x' (use * for products: matdiff does not multiply by juxtaposition)"
     "\n  A x\n    ^\n"),
    ("The induced 1-norm of a matrix", "`norm(X, 1)` of a matrix is MATLAB's and NumPy's "
     "largest column sum, which is not differentiated; `||X||_1` is the entrywise sum. "
     "(`||X||_2` and `norm(X)` of a matrix are the spectral norm, `||X||_F` the Frobenius "
     "norm, `||X||_*` the nuclear norm.)",
     ["grad", "norm(X, 1)", "--wrt", "X"],
     "error: norm(X, 1) of a matrix is the largest column sum of |X| in MATLAB and NumPy, "
     "which matdiff does not differentiate; ||X||_1 is the sum of the |X_ij| "
     "(matrixcalculus.org)\n  norm(X, 1)\n"
     "  ^^^^^^^^^^\n"),
    ("A gradient of a non-scalar", "The gradient needs a scalar; a vector or matrix "
     "function has a Jacobian.",
     ["grad", "A*x", "--wrt", "x"],
     "error: the gradient needs a scalar function, but this one is mx1; use jacobian for "
     "vector or matrix functions\n"),
    ("A non-integer matrix power", "`^` is the matrix power (`X^(1/2)` the principal "
     "square root `sqrtm(X)`); the elementwise power is `.^`.",
     ["grad", "tr(X^1.5)", "--wrt", "X"],
     "error: a matrix power needs an integer exponent or ±1/2 (the principal square root); "
     "use .^ for the elementwise power\n  tr(X^1.5)\n     ^^^^^\n"),
    ("The gradient of a complex-valued function", "With complex variables the gradient "
     "∂f/∂Re X + i ∂f/∂Im X needs a real f (README: \"Complex matrices\"); `x'*x` is real, "
     "`x.'*x` is not.",
     ["grad", "x.'*x", "--wrt", "x", "--shape", "x=n,complex"],
     "error: the gradient needs a real-valued function, but this one is complex; take "
     "real(·) or abs(·)^2 of it, or use md.wirtinger for the pair of Wirtinger derivatives "
     "(∂f/∂X, ∂f/∂X̄)\n"),
    ("The spectral norm of a complex matrix", "`norm(X)` of a matrix is the spectral norm "
     "(MATLAB), defined for real matrices only.",
     ["grad", "norm(Y - H*X)^2", "--wrt", "H", "--shape", "H=n,m,complex"],
     "error: spectral_norm of a complex matrix is not supported (matdiff defines it for real "
     "matrices only); for the Frobenius norm write ||X||_F or norm(X, 'fro')\n"
     "  norm(Y - H*X)^2\n  ^^^^^^^^^^^^^\n"),
    ("The inverse of a non-square matrix", "",
     ["grad", "tr(inv(X))", "--wrt", "X", "--shape", "X=m,n"],
     "error: inv needs a square matrix, but it is m×n\n  tr(inv(X))\n     ^^^^^^\n"),
    ("The softmax of a matrix", "`softmax` is of a vector; the message writes the "
     "softmax of each column, which matdiff differentiates.",
     ["grad", "sum(softmax(X))", "--wrt", "X", "--shape", "X=m,n"],
     "error: softmax needs a column vector, but it is m×n; softmax is of a vector: the "
     "softmax of each column of a matrix X (m x n) is exp(X) ./ (ones(m, 1)*sum(exp(X), 1))"
     "\n  sum(softmax(X))\n      ^^^^^^^^^^\n"),
    ("A size named in the text that cannot be whole", "A size written in the text (`I_p`, "
     "`eye(p)`) is solved from the declared numbers: with `X` 6x6 it would be `p = 3`.",
     ["grad", "tr(X - kron(I_p, A))", "--wrt", "X", "--shape", "X=7,7", "--shape", "A=2,2"],
     "error: difference: the left side is 7×7 but the right side is 2*p×2*p (2*p = 7 has no "
     "whole-number solution)\n  tr(X - kron(I_p, A))\n     ^^^^^^^^^^^^^^^^\n"),
    ("An expression that stops early", "",
     ["grad", "x'*A*", "--wrt", "x"],
     "error: the expression ends too early\n  x'*A*\n      ^\n"),
    ("An unmatched `\\left` in LaTeX", "",
     ["grad", r"\left( A x - b", "--wrt", "x"],
     "error: '\\left(' has no matching '\\right'\n  \\left( A x - b\n  ^^^^^^\n"),
    ("Nesting beyond the limit", "Brackets and calls nest at most 200 deep; input is at "
     "most 100,000 characters.",
     ["grad", "tr(" + "inv(" * 200 + "A" + ")" * 201],
     "error: nesting deeper than 200 levels\n"),
]


def run(argv: list[str]) -> tuple[int, str]:
    """Run the CLI (without the numerical check) and capture its exit status and stderr."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main([*argv, "--no-check"])
    return rc, err.getvalue()


def markdown() -> str:
    out = ["# Common mistakes and what matdiff says", "",
           "Every user-facing error is a `matdiff.MatdiffError` with a position; the CLI "
           "prints the message, the expression and a caret under the offending spot, and "
           "exits with status 2. No traceback reaches a user. (Generated from "
           "`MISTAKES` in `tests/test_errors.py`, which checks every message below.)", ""]
    for i, (title, why, argv, _expected) in enumerate(MISTAKES, 1):
        _rc, err = run(argv)
        shown = shlex.join(argv)
        if len(shown) > 100:
            shown = shown[:60] + " …"
        out += [f"## {i}. {title}", ""] + ([why, ""] if why else [])
        lines = err.rstrip("\n").splitlines()
        if len(lines) > 1 and len(lines[1]) > 100:  # the expression and caret, too wide
            lines = [lines[0], "  (the expression follows, with a caret under the offending "
                               "bracket)"]
        out += ["```", f"$ matdiff {shown}", *lines, "```", ""]
    return "\n".join(out)




@pytest.mark.parametrize("title,why,argv,expected", MISTAKES, ids=[m[0] for m in MISTAKES])
def test_common_mistake_message(title, why, argv, expected):
    rc, err = run(argv)
    assert rc == 2
    if title.startswith("Nesting"):
        assert err.startswith(expected)
    else:
        assert err == expected


if __name__ == "__main__":  # python tests/test_errors.py > docs/errors.md
    print(markdown())
