"""Fuzzing both grammars and the CLI with hypothesis text strategies.

The contract: whatever the text, ``md.parse`` returns an ``Expr`` or raises
``MatdiffError`` with ``0 <= pos <= len(text)`` and a renderable caret; the CLI returns 2
with a one-paragraph message on stderr and no traceback.
"""

from __future__ import annotations

import contextlib
import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import matdiff as md
from matdiff.cli import main

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

ASCII_TOKENS = ["x", "y", "A", "B", "X", "lam", "I", "1", "2", "0.5", "1e3", "(", ")", "[", "]",
                ",", ";", ":", "'", ".T", "*", ".*", "./", "/", "@", "+", "-", "^", ".^", "||",
                "||_F", "||_1", "_2", "tr(", "det(", "inv(", "log(", "exp(", "kron(", "eye(n)",
                "ones(", "vec(", "unvec(", "K(", "sum(", "diag(", "Diag(", "foo(", " ", "\t",
                "\n", "é", "∑", "\x00", "$", "\\", "{", "}", "#", "!", "=", "?"]
LATEX_TOKENS = ["x", "A", "B", "X", "H_R", "^", "_", "{", "}", "T", "\\top", "^{-1}", "^{-T}",
                "\\left(", "\\right)", "\\left\\|", "\\right\\|_F", "\\|", "|", "\\lVert",
                "\\rVert", "\\frac{", "\\sqrt{", "\\operatorname{tr}", "\\det", "\\log",
                "\\exp", "\\odot", "\\oslash", "\\otimes", "\\circ", "\\cdot", "\\times",
                "\\mathbf{1}", "\\mathbf{x}", "\\lambda", "\\sigma", "\\begin{bmatrix}",
                "\\end{bmatrix}", "&", "\\\\", "$", "$$", "\\[", "\\]", "\\mathrm{d}", "'",
                "+", "-", "2", "0", "\\,", " ", "\\foo", "\\sum", "\\langle", "(", ")", "%"]


def _texts(tokens: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.lists(st.sampled_from(tokens), max_size=25).map("".join),
                     st.text(alphabet="".join(sorted({c for t in tokens for c in t})),
                             max_size=40),
                     st.text(max_size=20))


def _only_matdiff_errors(text: str, syntax: str | None) -> None:
    try:
        assert isinstance(md.parse(text, syntax=syntax), md.Expr)
    except md.MatdiffError as err:
        assert err.pos is not None, err.message
        assert 0 <= err.pos <= len(text), (err.pos, len(text), err.message)
        rendered = err.render()
        assert rendered.startswith("error: ") and err.message in rendered


@FUZZ
@given(_texts(ASCII_TOKENS))
def test_ascii_grammar_only_raises_matdiff_errors(text):
    _only_matdiff_errors(text, "ascii")


@FUZZ
@given(_texts(LATEX_TOKENS))
def test_latex_grammar_only_raises_matdiff_errors(text):
    _only_matdiff_errors(text, "latex")


@FUZZ
@given(_texts(ASCII_TOKENS + LATEX_TOKENS))
def test_autodetected_syntax_only_raises_matdiff_errors(text):
    _only_matdiff_errors(text, None)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(_texts(ASCII_TOKENS + LATEX_TOKENS).filter(lambda t: not t.startswith("-")))
def test_cli_returns_2_without_a_traceback(text):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        rc = main(["grad", text, "--no-check", "--format", "text"])
    assert rc in (0, 2)  # with --no-check, 1 (a failed check) cannot happen
    assert "Traceback" not in err.getvalue()
    if rc == 2:
        assert err.getvalue().startswith("error: ")
    else:  # a gradient was printed
        assert "df/d" in out.getvalue() and not err.getvalue()


def test_cli_bad_options_exit_2():
    """argparse's own errors (an unknown option, no expression) also exit with status 2."""
    for argv in (["grad"], ["grad", "x'*x", "--format", "nope"], ["nope"]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            try:
                rc = main(argv)
            except SystemExit as stop:
                rc = stop.code
        assert rc == 2 and "Traceback" not in err.getvalue()
