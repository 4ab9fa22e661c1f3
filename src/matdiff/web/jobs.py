"""The computations the web service runs in its worker processes, and their outcomes.

Input: plain arguments (text, names, shapes), never code. Output: JSON-ready dicts, in
which every float is finite (a NaN or infinity becomes ``null`` with a ``"reason"`` beside
it). ``run_job`` turns any exception into an outcome the server answers with: bad input
(a ``MatdiffError``, or an expression too deep or too large to compute) or a crash (a bug).
Nothing here imports FastAPI, so a worker process loads only matdiff and latex2mathml.
"""

from __future__ import annotations

import math
import re
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
from latex2mathml.converter import convert as latex_to_mathml

import matdiff as md
from matdiff.web.notebook import conjugate_lhs_of, lhs_of, name_latex

__all__ = ["parse_info", "render", "derive", "with_mathml", "finite",
           "run_job", "presented", "name_latex", "equation", "top_level_terms"]

# Errors of the numerical check that leave the formulas standing (a random point where a
# product is singular, an overflow): the report is made again without the check.
CHECK_ERRORS = (np.linalg.LinAlgError, OverflowError, FloatingPointError, ZeroDivisionError)


# ----------------------------------------------------------------------------- jobs


def parse_info(expr: str, shapes: dict[str, list[str]] | None = None,
               syntax: str | None = None) -> dict[str, Any]:
    """The input typeset (LaTeX; MathML of ``f = ...``) and the inferred shape of each of its
    symbols.

    >>> parse_info("x'*S*x", {"S": ["n", "n", "symmetric"]})["shapes"]
    {'x': ['n'], 'S': ['n', 'n', 'symmetric']}
    """
    e = md.parse(expr, shapes=shapes, syntax=syntax)
    latex = md.to_latex(e)
    return {"latex": latex, "mathml": latex_to_mathml(equation("f =", latex, width=45)),
            "shapes": md.shapes_of(e)}


def render(latex: str) -> dict[str, str]:
    """LaTeX to MathML, which browsers typeset natively.

    >>> render("x^2")["mathml"].count("<msup>")
    1
    """
    try:
        return {"mathml": latex_to_mathml(latex)}
    except Exception as err:  # the converter raises many kinds; all mean "bad LaTeX"
        raise md.MatdiffError(f"cannot typeset this LaTeX ({type(err).__name__})") from err


def derive(expr: str, wrt: list[str], shapes: dict[str, list[str]] | None = None,
           syntax: str | None = None, what: str = "grad") -> dict[str, Any]:
    """``md.report``, the JSON of ``matdiff grad --format json``. Where the numerical check
    itself fails (a singular matrix at its random point, an overflow), the formulas are
    returned without it and a note says why.

    >>> derive("x'*A*x", ["x"])["derivatives"]["x"]["text"]
    "(A + A')*x"
    """
    try:
        return md.report(expr, wrt, shapes, syntax, what)
    except CHECK_ERRORS as err:
        reason = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
    report = md.report(expr, wrt, shapes, syntax, what, verify=False)
    report["notes"] = [*report.get("notes", []),
                       f"the numerical check could not run at its random point ({reason})"]
    return report


def presented(fn: Callable[..., dict[str, Any]], kwargs: dict[str, Any],
              mathml: bool = False) -> dict[str, Any]:
    """The report ``fn(**kwargs)``; where ``mathml`` is true, typeset as MathML and each
    derivative labelled with its left-hand side (``"lhs"``: ``∂f/∂X``, ``H_X``, ...)."""
    report = fn(**kwargs)
    return with_mathml(report) if mathml else report


# ----------------------------------------------------------------------------- labels


def with_labels(report: Any) -> Any:
    """``report`` with ``"lhs"`` (unicode) added to each derivative."""
    if isinstance(report, dict) and isinstance(report.get("derivatives"), dict):
        for name, d in report["derivatives"].items():
            if isinstance(d, dict):
                d["lhs"] = lhs_of(report, name)[0]
    return report


def with_mathml(obj: Any) -> Any:
    """A copy of a report where each dict with a ``"latex"`` string gains ``"mathml"``
    (where latex2mathml can typeset it; the page shows the plain text otherwise).

    A derivative's MathML is the whole equation, ``∂f/∂X = ...``, ``H_X = ...``, etc.

    >>> with_mathml({"derivatives": {"x": {"latex": "2x"}}})["derivatives"]["x"]["mathml"][:5]
    '<math'
    """
    if isinstance(obj, list):
        return [with_mathml(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    out = {k: with_mathml(v) for k, v in obj.items()}
    if isinstance(out.get("latex"), str):
        _set_mathml(out, out["latex"])
    if isinstance(out.get("derivatives"), dict):
        for name, d in with_labels(out)["derivatives"].items():
            if isinstance(d, dict) and isinstance(d.get("latex"), str):
                lhs = lhs_of(out, name)[1] + " ="
                named = d.get("named") if out.get("where") else None
                body = named["latex"] if isinstance(named, dict) else d["latex"]
                _set_mathml(d, equation(lhs, body))  # the equation, over the named parts
                conjugate = d.get("conjugate")
                if isinstance(conjugate, dict) and isinstance(conjugate.get("latex"), str):
                    conjugate["lhs"] = conjugate_lhs_of(out, name)[0]
                    _set_mathml(conjugate, equation(conjugate_lhs_of(out, name)[1] + " =",
                                                    conjugate["latex"]))
    return out


def _set_mathml(item: dict[str, Any], latex: str) -> None:
    try:
        item["mathml"] = render(latex)["mathml"]
    except md.MatdiffError:
        item.pop("mathml", None)


def top_level_terms(latex: str) -> list[str]:
    r"""``latex`` cut before each ``+``/``-`` that is outside braces, ``\left..\right``
    and environments (and is not a sign after an operator).

    >>> top_level_terms("-2 a + {b - c} - d^{-1}")
    ['-2 a ', '+ {b - c} ', '- d^{-1}']
    >>> len(top_level_terms(r"\left( a - b \right) \begin{bmatrix} a & -b \end{bmatrix}"))
    1
    """
    terms, depth, start, i = [], 0, 0, 0
    while i < len(latex):
        m = re.match(r"\\(left|right|begin|end)(?![A-Za-z])|\\([A-Za-z]+|.)", latex[i:])
        if m:
            depth += {"left": 1, "begin": 1, "right": -1, "end": -1}.get(m[1] or "", 0)
            i += len(m[0])
            continue
        c = latex[i]
        depth += {"{": 1, "}": -1}.get(c, 0)
        before = latex[start:i].rstrip()
        if depth == 0 and c in "+-" and before and before[-1] not in "+-=(,&":
            terms.append(latex[start:i])
            start = i
        i += 1
    return terms + [latex[start:]]


def equation(lhs: str, rhs: str, width: int = 70) -> str:
    r"""``lhs rhs`` as LaTeX, broken before top-level terms into lines of about ``width``
    characters of LaTeX, since MathML renderers do not break long formulas.

    >>> print(equation("y =", "a + b"))
    y = a + b
    >>> print(equation("y =", "a + b - c", width=6))
    \begin{array}{rl} y = & a + b \\ & - c \end{array}
    """
    if len(rhs) <= width:
        return f"{lhs} {rhs}"
    lines: list[str] = []
    for term in top_level_terms(rhs):
        if lines and len(lines[-1]) + len(term) <= width:
            lines[-1] += term
        else:
            lines.append(term)
    body = " \\\\ & ".join(line.strip() for line in lines)
    return f"\\begin{{array}}{{rl}} {lhs} & {body} \\end{{array}}"


# ----------------------------------------------------------------------------- outcomes


def finite(obj: Any) -> Any:
    """A copy of ``obj`` that JSON can hold: each NaN or infinity becomes ``None``, and the
    dict that held it gains a ``"reason"`` (unless it has one).

    >>> finite({"check": {"x": {"max_rel_error": float("nan"), "ok": False}}})["check"]["x"]
    {'max_rel_error': None, 'ok': False, 'reason': 'max_rel_error is nan (not a number)'}
    """
    if isinstance(obj, dict):
        out = {k: finite(v) for k, v in obj.items()}
        bad = [k for k, v in obj.items() if isinstance(v, float) and not math.isfinite(v)]
        if bad and "reason" not in out:
            what = "not a number" if math.isnan(obj[bad[0]]) else "an overflow"
            out["reason"] = f"{bad[0]} is {obj[bad[0]]} ({what})"
        return out
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if isinstance(obj, float):
        return float(obj) if math.isfinite(obj) else None
    return obj


Outcome = tuple[str, Any]  # ("ok", result) | ("bad", (message, pos, end)) | ("crash", text)


def run_job(fn: Callable[..., Any], kwargs: dict[str, Any]) -> Outcome:
    """``fn(**kwargs)`` as an outcome; never raises (except ``KeyboardInterrupt``/``SystemExit``).

    >>> run_job(render, {"latex": "x"})[0], run_job(md.parse, {"text": "x +"})[0]
    ('ok', 'bad')
    """
    try:
        return ("ok", finite(fn(**kwargs)))
    except md.MatdiffError as err:
        return ("bad", (err.message, err.pos, err.end))
    except RecursionError:
        return ("bad", ("the expression is nested too deeply to compute", None, None))
    except MemoryError:
        return ("bad", ("the computation needs more memory than this server allows; "
                        "declare smaller sizes", None, None))
    except Exception as err:  # a bug: reported to the server, which answers 500 and logs it
        return ("crash", f"{type(err).__name__}: {err}\n{traceback.format_exc()}")
