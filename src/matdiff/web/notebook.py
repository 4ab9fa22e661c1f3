"""Notebook display: an ``Expr`` or a report as typeset math in Jupyter.

Input: an ``Expr`` (hooked as ``Expr._repr_latex_`` / ``_repr_html_``), or the dict of
``md.report``. Output: ``$...$`` LaTeX for Jupyter's MathJax, or HTML whose math is MathML
(from latex2mathml where installed; the escaped LaTeX otherwise). An expression large enough
to have named parts (``matdiff.names``) shows them, ``where M = …``, as the CLI does.
Nothing is evaluated.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from typing import Any

import matdiff as md
from matdiff.expr import Expr
from matdiff.names import name_parts

_latex_to_mathml: Callable[..., str] | None
try:  # a module, then its function: mypy-clean with and without the web extra
    import latex2mathml.converter as _converter
    _latex_to_mathml = _converter.convert
except ImportError:  # pragma: no cover -- the web extra is not installed
    _latex_to_mathml = None

__all__ = ["repr_latex", "repr_html", "report_html", "math_html", "LHS", "KIND_NAMES",
           "name_latex", "lhs_of", "conjugate_lhs_of", "named_latex"]

# What each derivative kind is called, and its left-hand side as (unicode, LaTeX); {x} is
# the variable's name, {v} the direction of a Hessian-vector product.
KIND_NAMES = {"grad": "gradient", "jacobian": "Jacobian", "hessian": "Hessian",
              "differential": "differential", "hvp": "Hessian-vector product"}
LHS = {
    "grad": ("∂f/∂{x}", "\\frac{{\\partial f}}{{\\partial {x}}}"),
    "jacobian": ("∂vec(f)/∂vec({x})ᵀ",
                 "\\frac{{\\partial \\operatorname{{vec}} f}}"
                 "{{\\partial \\operatorname{{vec}}({x})^{{T}}}}"),
    "hessian": ("H_{x}", "H_{{{x}}}"),
    "differential": ("d_{x} f", "d_{{{x}}} f"),
    "hvp": ("H_{x} {v}", "H_{{{x}}} {v}"),
}
# the second half of a Wirtinger pair (a map, or a gradient, that is not holomorphic)
CONJUGATE_LHS = {
    "jacobian": ("∂vec(f)/∂vec({x}\u0304)ᵀ",
                 "\\frac{{\\partial \\operatorname{{vec}} f}}"
                 "{{\\partial \\operatorname{{vec}}(\\bar{{{x}}})^{{T}}}}"),
    "hessian": ("∂vec(∇f)/∂vec({x}\u0304)ᵀ",
                "\\frac{{\\partial \\operatorname{{vec}} \\nabla f}}"
                "{{\\partial \\operatorname{{vec}}(\\bar{{{x}}})^{{T}}}}"),
}


def name_latex(name: str) -> str:
    """A symbol's name as LaTeX: ``H_R`` -> ``H_{R}``, ``lam`` -> ``\\lambda``.

    >>> name_latex("H_R"), name_latex("W1"), name_latex("lam"), name_latex("a{b")
    ('H_{R}', 'W1', '\\\\lambda', '\\\\mathrm{a\\\\{b}')
    """
    greek = {"lam": "lambda", "lambda": "lambda", "alpha": "alpha", "beta": "beta",
             "gamma": "gamma", "mu": "mu", "sigma": "sigma", "theta": "theta"}
    if name in greek:
        return "\\" + greek[name]
    m = re.fullmatch(r"([A-Za-z][A-Za-z0-9]*)(?:_([A-Za-z0-9]+))?", name)
    if m is None:
        return "\\mathrm{" + re.sub(r"([\\{}_^$&#%~])", r"\\\1", name) + "}"
    return m[1] + (f"_{{{m[2]}}}" if m[2] else "")


def lhs_of(report: Mapping[str, Any], name: str) -> tuple[str, str]:
    """The left-hand side of the derivative of ``report`` w.r.t. ``name`` as (unicode,
    LaTeX): what was computed, not always a gradient.

    >>> lhs_of({"what": "hessian"}, "X")
    ('H_X', 'H_{X}')
    >>> lhs_of({"what": "hvp", "directions": {"X": "V"}}, "X")[0]
    'H_X V'
    """
    what = report.get("what", "grad")
    unicode, latex = LHS[what if what in LHS else "grad"]
    v = str((report.get("directions") or {}).get(name, "V"))
    return unicode.format(x=name, v=v), latex.format(x=name_latex(name), v=name_latex(v))


def conjugate_lhs_of(report: Mapping[str, Any], name: str) -> tuple[str, str]:
    """The left-hand side of J̄ = ∂vec F/∂vec X̄ᵀ, the derivative's ``"conjugate"``, as
    (unicode, LaTeX).

    >>> conjugate_lhs_of({"what": "jacobian"}, "z")[0]
    '∂vec(f)/∂vec(z̄)ᵀ'
    """
    unicode, latex = CONJUGATE_LHS[report.get("what", "jacobian")]
    return unicode.format(x=name), latex.format(x=name_latex(name))


def named_latex(expr: Expr) -> tuple[str, list[tuple[str, str]]]:
    """The LaTeX of ``expr`` over its named parts, and the parts ``[(name, definition)]``.

    >>> shown, parts = named_latex(md.grad("log(det(X'*X)) + tr(inv(X'*X))", "X"))
    >>> [name for name, _ in parts]
    ['C']
    """
    named = name_parts([expr])
    return md.printing.to_latex(named.roots[0]), [
        (md.printing.to_latex(n), md.printing.to_latex(d)) for n, d in named.parts]


def repr_latex(expr: Expr) -> str:
    """``Expr._repr_latex_``: the LaTeX of ``expr`` between dollars, with its named parts
    (``where M = …``) in an aligned display when it has some."""
    shown, parts = named_latex(expr)
    if not parts:
        return f"${shown}$"
    lead = ["\\text{where } "] + ["\\quad "] * (len(parts) - 1)
    rows = [f"& {shown}"] + [f"& {w}{n} = {d}" for w, (n, d) in zip(lead, parts, strict=True)]
    return "$$\\begin{aligned}" + " \\\\ ".join(rows) + "\\end{aligned}$$"


def math_html(latex: str, display: bool = False) -> str:
    """One formula as HTML: MathML where latex2mathml is installed, else escaped LaTeX.

    >>> math_html("x^2").startswith("<math") or math_html("x^2").startswith("<code")
    True
    """
    if _latex_to_mathml is not None:
        try:
            return _latex_to_mathml(latex, display="block" if display else "inline")
        except Exception:  # noqa: BLE001 -- an unusual construct: fall back to the source
            pass
    return f'<code class="latex">{html.escape(latex)}</code>'


def report_html(report: Mapping[str, Any]) -> str:
    """A report (``md.report``'s dict) as HTML: each derivative, its named parts, the check.

    >>> out = report_html({"expression": "x'*x", "derivatives": {"x": {"latex": "2 x",
    ...     "text": "2*x"}}, "check": {"x": {"max_rel_error": 1e-12, "ok": True}}})
    >>> "∂f/∂x" in out, "checked" in out
    (True, True)
    >>> "H_x" in report_html({"what": "hessian", "derivatives": {"x": {"text": "2*A"}}})
    True
    """
    rows = []
    for name, d in report.get("derivatives", {}).items():
        math = math_html(d["latex"], display=True) if "latex" in d else html.escape(
            d.get("text", ""))
        verdict = check_html(report.get("check", {}).get(name))
        lhs = html.escape(lhs_of(report, name)[0])
        rows.append(f"<tr><th>{lhs}</th><td>{math}</td>{verdict}</tr>")
        if isinstance(d.get("conjugate"), Mapping):      # the pair's second half, J̄
            c = d["conjugate"]
            math = math_html(c["latex"], display=True) if "latex" in c else html.escape(
                c.get("text", ""))
            lhs = html.escape(conjugate_lhs_of(report, name)[0])
            rows.append(f"<tr><th>{lhs}</th><td>{math}</td></tr>")
    for part in report.get("where", []) or []:
        if isinstance(part, Mapping):
            value = math_html(part["latex"]) if "latex" in part else html.escape(
                str(part.get("text", "")))
            rows.append(f"<tr><th>where {html.escape(str(part.get('name', '')))}</th>"
                        f"<td>{value}</td></tr>")
        else:
            rows.append(f"<tr><th>where</th><td>{html.escape(str(part))}</td></tr>")
    head = html.escape(str(report.get("expression", "")))
    return (f'<div class="matdiff-report"><div><code>f = {head}</code></div>'
            f'<table>{"".join(rows)}</table></div>')


def check_html(check: Mapping[str, Any] | None) -> str:
    """A derivative's numerical check as a table cell (empty without one).

    >>> check_html({"max_rel_error": None, "ok": False, "reason": "saturated"})
    '<td>? check inconclusive here: saturated</td>'
    """
    if check is None:
        return ""
    error = check.get("max_rel_error")
    if not isinstance(error, (int, float)):
        reason = html.escape(str(check.get("reason", "no finite error")))
        return f"<td>? check inconclusive here: {reason}</td>"
    return (f'<td>{"✓" if check.get("ok") else "✗"} checked numerically '
            f"(max rel. error {error:.1e})</td>")


def repr_html(obj: Expr | Mapping[str, Any]) -> str:
    """``_repr_html_`` for an ``Expr`` (its formula) or a report (``report_html``)."""
    if isinstance(obj, Mapping):
        return report_html(obj)
    shown, parts = named_latex(obj)
    if not parts:
        return math_html(shown, display=True)
    lead = ["where"] + ["&emsp;&emsp;"] * (len(parts) - 1)
    rows = "".join(f"<div>{w} {math_html(n + ' = ' + d)}</div>"
                   for w, (n, d) in zip(lead, parts, strict=True))
    return f'<div class="matdiff-expr">{math_html(shown, display=True)}{rows}</div>'
