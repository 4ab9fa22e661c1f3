"""The public API: parse → shapes → grad → simplify → print → compile → check.

This module only wires the stages together; each stage lives in its own module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import check as _check
from . import diff as _diff
from . import printing
from .codegen import codegen
from .expr import Expr, MatdiffError, free_symbols
from .parse_ascii import parse_ascii
from .parse_latex import looks_like_latex, parse_latex
from .shapes import ShapeDecl, infer
from .simplify import simplify

__all__ = ["parse", "grad", "check", "report", "shapes_of", "evaluate"]


def parse(text: str, shapes: ShapeDecl | None = None, syntax: str | None = None) -> Expr:
    """Parse ASCII or LaTeX (detected, or forced with ``syntax``) to a typed expression.

    >>> import matdiff as md
    >>> f = md.parse("||A*x - b||^2")
    >>> f.is_scalar, md.shapes_of(f)
    (True, {'A': ['m', 'n'], 'x': ['n'], 'b': ['m']})
    """
    if not isinstance(text, str):
        raise MatdiffError("the expression must be a string")
    if syntax not in (None, "ascii", "latex"):
        raise MatdiffError(f"unknown syntax {syntax!r}: use 'ascii' or 'latex'")
    latex = syntax == "latex" or (syntax is None and looks_like_latex(text))
    tree = parse_latex(text) if latex else parse_ascii(text)
    try:
        return infer(tree, text, shapes)
    except MatdiffError as err:
        err.text = err.text or text
        raise


def _as_expr(f: Expr | str, shapes: ShapeDecl | None = None) -> Expr:
    return parse(f, shapes) if isinstance(f, str) else f


def grad(f: Expr | str, wrt: str | Sequence[str], *, simplified: bool = True,
         shapes: ShapeDecl | None = None) -> Expr | dict[str, Expr]:
    """The gradient of a scalar expression: an Expr with the variable's shape, or a dict
    for a list of variables.

    >>> import matdiff as md
    >>> str(md.grad("||A*X*B - C||_F^2", "X"))
    "2*A'*(A*X*B - C)*B'"
    >>> sorted(md.grad("||A - U*V'||_F^2", ["U", "V"]))
    ['U', 'V']
    """
    f = _as_expr(f, shapes)
    names = [wrt] if isinstance(wrt, str) else list(wrt)
    if not names:
        raise MatdiffError("name at least one variable to differentiate with respect to")
    raw = _diff.gradients(f, names)
    out = {k: simplify(g) if simplified else g for k, g in raw.items()}
    return out[wrt] if isinstance(wrt, str) else out


def check(f: Expr | str, wrt: str | Sequence[str], *, seed: int = 0, tolerance: float = 1e-6,
          shapes: ShapeDecl | None = None, raise_on_failure: bool = True) -> _check.CheckReport:
    """Verify the (simplified) gradients of ``f`` against central finite differences at a
    random point; raises ``MatdiffError`` over the tolerance.

    >>> import matdiff as md
    >>> md.check("x'*A*x", "x").ok
    True
    """
    f = _as_expr(f, shapes)
    names = [wrt] if isinstance(wrt, str) else list(wrt)
    grads = grad(f, names)
    assert isinstance(grads, dict)
    return _check.check(f, names, grads, seed=seed, tolerance=tolerance,
                        raise_on_failure=raise_on_failure)


def evaluate(e: Expr | Sequence[Expr], **inputs: Any) -> Any:
    """Evaluate with the reference interpreter (keyword arguments by symbol name)."""
    return _check.evaluate(e, inputs)


def shapes_of(e: Expr | Sequence[Expr], style: str = "text") -> dict[str, list[str]]:
    """The shapes of the variables: ``{name: [dims]}``, ``[]`` for a scalar, one dim for a
    column vector."""
    roots = [e] if isinstance(e, Expr) else list(e)
    out: dict[str, list[str]] = {}
    for root in roots:
        for name, node in free_symbols(root).items():
            r, c = node.shape
            dims = [] if node.is_scalar else [r] if node.is_vector else [r, c]
            out[name] = [printing.format_dim(d, style) for d in dims]
            if node.symmetric:
                out[name].append("symmetric")
    return out


def report(text: str, wrt: str | Sequence[str] | None = None,
           shapes: ShapeDecl | None = None, syntax: str | None = None, what: str = "grad",
           verify: bool = True) -> dict[str, Any]:
    """Everything the CLI's ``--format json`` and the web page show, as a dict.

    >>> r = report("x'*A*x", ["x"])
    >>> r["derivatives"]["x"]["text"], r["check"]["x"]["ok"]
    ("(A + A')*x", True)
    """
    f = parse(text, shapes, syntax)
    if what != "grad":
        raise MatdiffError(f"unknown derivative kind {what!r}")
    names = list(free_symbols(f)) if not wrt else [wrt] if isinstance(wrt, str) else list(wrt)
    grads = grad(f, names)
    assert isinstance(grads, dict)
    out: dict[str, Any] = {
        "expression": printing.to_text(f),
        "expression_unicode": printing.to_unicode(f),
        "expression_latex": printing.to_latex(f),
        "shapes": shapes_of(f),
        "what": what,
        "derivatives": {n: {"text": printing.to_text(g), "unicode": printing.to_unicode(g),
                            "latex": printing.to_latex(g)} for n, g in grads.items()},
    }
    sym_notes = [n for n in names if free_symbols(f)[n].symmetric]
    if sym_notes:
        out["notes"] = [f"{n}: {_diff.SYMMETRIC_CONVENTION}" for n in sym_notes]
    out["code"] = {b: codegen([f, *grads.values()], backend=b, name="f_and_grad")
                   for b in ("numpy", "jax", "torch")}
    if verify:
        rep = _check.check(f, names, grads, raise_on_failure=False)
        out["check"] = {n: {"max_rel_error": rep.errors[n], "ok": bool(rep.ok)} for n in names}
        out["check_sizes"] = rep.sizes
    return out
