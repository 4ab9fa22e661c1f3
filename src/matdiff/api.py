"""The public API: parse → shapes → grad → simplify → print → compile → check.

This module only wires the stages together; each stage lives in its own module.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import diff as _diff
from . import forward as _forward
from . import printing
from .check import CheckReport, fd_jacobian, random_inputs, rel_error, vec_of
from .check import check as _check_gradients
from .check import evaluate as _evaluate
from .codegen import codegen
from .explain import Explanation
from .explain import explain as _derivation
from .expr import Expr, MatdiffError, Op, free_symbols, toposort
from .names import NamedParts, name_factors, name_parts
from .parse_ascii import parse_ascii
from .parse_latex import looks_like_latex, parse_latex
from .shapes import ShapeDecl, infer
from .simplify import simplify

__all__ = ["parse", "grad", "check", "report", "shapes_of", "evaluate", "explain", "differential",
           "jacobian", "hessian", "hvp"]


def parse(text: str, shapes: ShapeDecl | None = None, syntax: str | None = None,
          sigmoid_names: Sequence[str] = ()) -> Expr:
    """Parse ASCII or LaTeX (detected, or forced with ``syntax``) to a typed expression.
    ``sigmoid_names`` are LaTeX names meaning the logistic function (``\\sigma``).

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
    tree = parse_latex(text, functions=sigmoid_names) if latex else parse_ascii(text)
    try:
        return infer(tree, text, _with_differentials(text, shapes))
    except MatdiffError as err:
        err.text = err.text or text
        raise


def _with_differentials(text: str, shapes: ShapeDecl | None) -> ShapeDecl | None:
    """A differential ``dX`` (a name in ``text``) gets the declared shape of ``X``."""
    if not shapes:
        return shapes
    extra = {"d" + name: [d for d in dims if d not in ("sym", "symmetric")]
             for name, dims in shapes.items()
             if "d" + name not in shapes and re.search(rf"\bd{re.escape(name)}\b", text)}
    return {**shapes, **extra} if extra else shapes


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


def differential(f: Expr | str, wrt: str, *, shapes: ShapeDecl | None = None) -> Expr:
    """The differential ``dF``, linear in the symbol ``d<wrt>`` (Magnus & Neudecker).

    >>> import matdiff as md
    >>> str(md.differential("||A*X*B - C||_F^2", "X"))
    "2*tr((A*X*B - C)'*A*dX*B)"
    """
    return _forward.differential(_as_expr(f, shapes), wrt)


def jacobian(f: Expr | str, wrt: str, *, shapes: ShapeDecl | None = None) -> Expr:
    """``d vec(F) / d vec(X)ᵀ`` in closed form: (size F) × (size X), column-major ``vec``;
    for a vector function of a vector, the ordinary m×n Jacobian.

    >>> import matdiff as md
    >>> str(md.jacobian("A*X*B", "X")), str(md.jacobian("sigmoid(W*x)", "x"))
    ("kron(B', A)", 'Diag(sigmoid(W*x) .* (1 - sigmoid(W*x)))*W')
    """
    return _forward.jacobian(_as_expr(f, shapes), wrt)


def hessian(f: Expr | str, wrt: str, *, shapes: ShapeDecl | None = None) -> Expr:
    """``d vec(∇f) / d vec(X)ᵀ`` of a scalar ``f``: n×n for a vector, mn×mn for a matrix.

    >>> import matdiff as md
    >>> str(md.hessian("||A*x - b||^2", "x")), str(md.hessian("log(det(X))", "X"))
    ("2*A'*A", "-kron(inv(X), inv(X)')*K(m, m)")
    """
    return _forward.hessian(_as_expr(f, shapes), wrt)


def hvp(f: Expr | str, wrt: str, direction: str | None = None, *,
        shapes: ShapeDecl | None = None) -> Expr:
    """The Hessian of ``f`` applied to a direction (a new symbol with ``wrt``'s shape: V, or
    V1, V2, ... when ``f`` uses V), as a matrix expression: forward over reverse, never a
    Kronecker product.

    >>> import matdiff as md
    >>> str(md.hvp("||A*X*B - C||_F^2", "X"))
    "2*A'*A*V*B*B'"
    """
    return _forward.hvp(_as_expr(f, shapes), wrt, direction)


_FORWARD = {"differential": differential, "jacobian": jacobian, "hessian": hessian,
            "hvp": hvp}


def _check_forward(f: Expr, name: str, what: str, d: Expr, seed: int = 0,
                   hvp_direction: str | None = None) -> tuple[float, dict[str, int]]:
    """Relative error of a forward-mode result against finite differences: of ``f`` for a
    Jacobian or a differential, of the gradient for a Hessian or an HVP."""
    target = f if what in ("jacobian", "differential") else grad(f, name)
    assert isinstance(target, Expr)
    direction = _forward.differential_name(f, name) if what == "differential" else \
        _forward.hvp_direction(f, name, hvp_direction) if what == "hvp" else f
    for attempt in range(5):
        env, sizes = random_inputs([f, target, d, direction], seed=seed + attempt)
        with np.errstate(all="ignore"):
            numeric = fd_jacobian(target, name, env, sizes)
            if not np.all(np.isfinite(numeric)):
                continue
            got = np.asarray(_evaluate(d, env, sizes), dtype=float)
            if what in ("jacobian", "hessian"):
                return rel_error(got.reshape(numeric.shape), numeric), sizes
            return rel_error(vec_of(got), numeric @ vec_of(env[direction.name])), sizes
    return float("nan"), {}


def check(f: Expr | str, wrt: str | Sequence[str], *, seed: int = 0, tolerance: float = 1e-6,
          shapes: ShapeDecl | None = None, raise_on_failure: bool = True) -> CheckReport:
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
    return _check_gradients(f, names, grads, seed=seed, tolerance=tolerance,
                        raise_on_failure=raise_on_failure)


def evaluate(e: Expr | Sequence[Expr], **inputs: Any) -> Any:
    """Evaluate with the reference interpreter (keyword arguments by symbol name)."""
    return _evaluate(e, inputs)


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


def explain(f: Expr | str, wrt: str | Sequence[str], *,
            shapes: ShapeDecl | None = None) -> Explanation:
    """The derivation of the gradient in differential form, step by step.

    >>> import matdiff as md
    >>> print(md.explain("||A*X*B - C||_F^2", "X").render("text"))  # doctest: +ELLIPSIS
    phi = M : M ...
    """
    return _derivation(_as_expr(f, shapes), wrt)


def reading_notes(f: Expr) -> list[str]:
    """Notes on how an exponential was read: ``expm`` (LaTeX ``e^{X}`` of a square matrix) is
    the matrix exponential, ``exp`` (and ``\\exp``) elementwise.

    >>> reading_notes(parse("tr(exp(X))", shapes={"X": ("n", "n")}))[0][:34]
    'exp(X) of a matrix is elementwise;'
    """
    ops = {n.op for n in toposort([f]) if n.op is Op.EXPM or n.op is Op.EXP
           and n.rows == n.cols and not n.is_scalar}
    notes = []
    if Op.EXP in ops:
        notes.append("exp(X) of a matrix is elementwise; the matrix exponential is expm(X) "
                     "(LaTeX: e^{X})")
    if Op.EXPM in ops:
        notes.append("expm(X) is the matrix exponential (LaTeX e^{X} of a square matrix is "
                     "read so); exp(X) and \\exp(X) are elementwise")
    return notes


def _where(named: NamedParts) -> list[dict[str, Any]]:
    """The ``where`` list of a report: the factorizations (``UΣVᵀ = X (thin SVD)``, their
    left side per style in ``"lhs"``), then the named parts."""
    styles = ("text", "unicode", "latex")
    out: list[dict[str, Any]] = []
    for f in named.factors:
        clauses = {style: f.clause(style) for style in styles}
        out.append({"name": clauses["text"][0], **{s: c[1] for s, c in clauses.items()},
                    "lhs": {s: c[0] for s, c in clauses.items()}})
    out += [{"name": printing.to_text(n), **{s: named.render(d, s) for s in styles}}
            for n, d in named.parts]
    return out


def report(text: str, wrt: str | Sequence[str] | None = None,
           shapes: ShapeDecl | None = None, syntax: str | None = None, what: str = "grad",
           verify: bool = True, steps: bool = False) -> dict[str, Any]:
    """Everything the CLI's ``--format json`` and the web page show, as a dict. ``"where"``
    lists the named parts; each derivative's ``"named"`` is written over them; ``steps``
    adds the derivation (``"steps"``: a list of ``{"rule", "text", "unicode", "latex"}``).

    >>> r = report("x'*A*x", ["x"])
    >>> r["derivatives"]["x"]["text"], r["check"]["x"]["ok"]
    ("(A + A')*x", True)
    """
    f = parse(text, shapes, syntax)
    if what != "grad" and what not in _FORWARD:
        raise MatdiffError(f"unknown derivative kind {what!r}: use grad, "
                           + ", ".join(_FORWARD))
    symbols = free_symbols(f)
    names = list(symbols) if not wrt else [wrt] if isinstance(wrt, str) else list(wrt)
    directions: dict[str, str] = {}
    for n in names if what == "hvp" else ():    # one direction per variable, names distinct
        directions[n] = _forward.hvp_direction(f, n, avoid=directions.values()).name
    if what == "grad":
        grads = grad(f, names)
    elif what == "hvp":
        grads = {n: hvp(f, n, directions[n]) for n in names}
    else:
        grads = {n: _FORWARD[what](f, n) for n in names}
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
    if what == "grad":
        ex = _derivation(f, names) if steps else None
        named = name_parts(list(grads.values())) if ex is None else \
            name_factors(NamedParts([ex.gradients[n] for n in grads], ex.parts))  # its names
        if named.parts or named.factors:
            out["where"] = _where(named)
            for n, g in zip(grads, named.roots, strict=True):
                out["derivatives"][n]["named"] = {
                    style: named.render(g, style) for style in ("text", "unicode", "latex")}
        if ex is not None:
            out["steps"] = [s.as_dict() for s in ex.steps]
    if what == "hvp":
        out["directions"] = directions
    sym_notes = [n for n in names if n in symbols and symbols[n].symmetric]
    if sym_notes and what in ("grad", "hessian", "hvp"):
        out["notes"] = [f"{n}: {_diff.SYMMETRIC_CONVENTION}" for n in sym_notes]
    out["notes"] = [*out.get("notes", []), *reading_notes(f)]
    if not out["notes"]:
        del out["notes"]
    try:
        out["code"] = {b: codegen([f, *grads.values()], backend=b, name=f"f_and_{what}")
                       for b in ("numpy", "jax", "torch")}
    except MatdiffError as err:  # the formulas stand; say why there is no code
        out["notes"] = [*out.get("notes", []), f"no generated code: {err.message}"]
    if verify and what != "grad":
        checked = {n: _check_forward(f, n, what, g, hvp_direction=directions.get(n))
                   for n, g in grads.items()}
        out["check"] = {n: {"max_rel_error": e, "ok": bool(np.isfinite(e) and e <= 1e-6)}
                        for n, (e, _) in checked.items()}
        out["check_sizes"] = next(iter(checked.values()))[1] if checked else {}
    elif verify:
        rep = _check_gradients(f, names, grads, raise_on_failure=False)
        out["check"] = {n: {"max_rel_error": rep.errors.get(n, float("nan")),
                            "ok": bool(rep.ok)} for n in names}
        for n in names if rep.inconclusive else ():   # not differentiable: never a mismatch
            out["check"][n].update(max_rel_error=None, verdict="inconclusive",
                                   reason=rep.inconclusive)
        out["check_sizes"] = rep.sizes
    return out
