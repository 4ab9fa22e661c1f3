"""The public API: parse → shapes → grad → simplify → print → compile → check.

This module only wires the stages together; each stage lives in its own module. Every
public function validates its arguments and lets only ``MatdiffError`` reach its caller:
a singular matrix, an overflow, running out of memory or nesting too deep become messages.

A variable that does not occur in ``f`` has a zero derivative of its shape, as in SymPy and
JAX, when its shape is known: declared in ``shapes`` or passed as a symbol
(``md.grad(f, md.parse("z"))``). A name that is neither, such as a typo, is an error that
lists the variables.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from typing import Any, NamedTuple, ParamSpec, TypeVar

import numpy as np

from . import diff as _diff
from . import expr as E
from . import forward as _forward
from . import printing
from .check import CheckReport, Claim, check_claims
from .check import check as _check_gradients
from .check import evaluate as _evaluate
from .codegen import codegen
from .explain import Explanation
from .explain import explain as _derivation
from .expr import Dim, Expr, MatdiffError, Op, free_symbols, sym, toposort, zeros
from .names import NamedParts, name_parts
from .parse_ascii import parse_ascii
from .parse_latex import imaginary_units, looks_like_latex, parse_latex
from .parse_unicode import looks_like_unicode, parse_unicode
from .shapes import Reading, ShapeDecl, normalize_shapes, read
from .simplify import simplify
from .syntax import Node

__all__ = ["parse", "parse_with_notes", "grad", "check", "report", "shapes_of", "evaluate",
           "explain", "differential", "jacobian", "WirtingerPair", "hessian", "hvp",
           "unused_declarations"]

P = ParamSpec("P")
R = TypeVar("R")


def _public(fn: Callable[P, R]) -> Callable[P, R]:
    """Numerical and resource failures of ``fn`` as ``MatdiffError``."""
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except np.linalg.LinAlgError as err:
            raise MatdiffError(f"a matrix is singular at these values ({err})") from None
        except OverflowError as err:
            raise MatdiffError(f"a number is beyond the floating-point range ({err})") from None
        except MemoryError:
            raise MatdiffError("out of memory: the computation is too large for this machine; "
                               "declare smaller sizes") from None
        except RecursionError:
            raise MatdiffError("the expression is nested too deeply") from None
    return wrapper


# ----------------------------------------------------------------------------- arguments


def _kind(value: Any) -> str:
    return type(value).__name__


def _need_flag(value: Any, what: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise MatdiffError(f"{what} must be True or False, got {_kind(value)}")
    return bool(value)


def _need_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise MatdiffError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _need_tolerance(tolerance: Any) -> float:
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float, np.floating)) \
            or not math.isfinite(tolerance) or tolerance <= 0:
        raise MatdiffError(f"tolerance must be a positive number, got {tolerance!r}")
    return float(tolerance)


_DIM_TYPES = (str, int, np.integer, Dim)


def _need_shapes(shapes: Any) -> dict[str, tuple[Any, ...]] | None:
    """``shapes``: None or {name: dims}, dims a tuple/list of sizes (int or str), one size,
    or () for a scalar; a structure ('sym', 'spd', ...) may end the tuple. Returns a copy
    with plain tuples and ints."""
    if shapes is None:
        return None
    if not isinstance(shapes, Mapping):
        raise MatdiffError(f"shapes must be a dict {{name: dims}}, got {_kind(shapes)}")
    out: dict[str, tuple[Any, ...]] = {}
    for name, spec in shapes.items():
        if not isinstance(name, str) or not name.strip():
            raise MatdiffError(f"shapes: a name must be a non-empty string, got {name!r}")
        items = [spec] if isinstance(spec, _DIM_TYPES) else spec
        if isinstance(spec, bool) or not isinstance(items, (list, tuple)) or any(
                isinstance(d, (bool, np.bool_)) or not isinstance(d, _DIM_TYPES)
                for d in items):
            raise MatdiffError(f"shapes[{name!r}] must be a tuple of sizes such as ('m', 'n'),"
                               f" (3,) or () for a scalar, got {spec!r}")
        symbol = symbol_name(name)
        if symbol in out:
            raise MatdiffError(f"shapes: {name!r} declares {symbol!r} a second time")
        out[symbol] = tuple(int(d) if isinstance(d, np.integer) else d for d in items)
    return out


def symbol_name(name: str) -> str:
    r"""The name of the symbol that ``name`` writes: itself for a plain name, else the one
    the parsers read it as (LaTeX ``\Sigma``, ``\mathbf{x}``, ``H_{R}``; Unicode ``Σ``),
    so a declaration or a variable may be written as in the pasted text.

    >>> symbol_name("\\mathbf{x}"), symbol_name("H_{R}"), symbol_name("Σ"), symbol_name("X")
    ('x', 'H_R', 'Sigma', 'X')
    """
    if name.isascii() and name.replace("_", "a").isalnum():
        return name
    try:
        tree = _syntax_tree(name, None, (), {})
    except MatdiffError:
        return name
    return tree.value if tree.kind == "name" else name


def _need_text(text: Any, what: str = "the expression") -> str:
    if not isinstance(text, str):
        raise MatdiffError(f"{what} must be a string, got {_kind(text)}")
    return text


def _unknown(name: str, symbols: Mapping[str, Expr]) -> str:
    return (f"'{name}' does not occur in the expression; its variables are "
            + ", ".join(symbols) if symbols else
            f"'{name}' does not occur in the expression; it has no variables")


def _variables(f: Expr, wrt: Any, shapes: ShapeDecl | None = None
               ) -> tuple[list[str], dict[str, Expr]]:
    """The names in ``wrt`` (a name, a symbol, or a list of them), and the symbols of those
    that ``f`` does not use: declared in ``shapes``, or given as symbols."""
    items = [wrt] if isinstance(wrt, (str, Expr)) else wrt
    if not isinstance(items, (list, tuple)):
        raise MatdiffError(f"wrt must be a variable name or a list of names, got {_kind(wrt)}")
    if not items:
        raise MatdiffError("name at least one variable to differentiate with respect to")
    symbols = free_symbols(f)
    declared = normalize_shapes(_need_shapes(shapes))
    names: list[str] = []
    extra: dict[str, Expr] = {}
    for item in items:
        if isinstance(item, Expr):
            if item.op is not Op.SYMBOL:
                raise MatdiffError(f"wrt must name variables; {item} is an expression")
            name = item.attr[0]
            if symbols.get(name, item) is not item:
                raise MatdiffError(f"{name} has another shape in the expression")
            if name not in symbols:
                extra[name] = item
        elif isinstance(item, str):
            name = item if item in symbols or item in declared else symbol_name(item)
            if name not in symbols and name in declared:
                (rows, cols), structure = declared[name]
                extra[name] = sym(name, (rows, cols), structure)
            elif name not in symbols:
                raise MatdiffError(_unknown(name, symbols))
        else:
            raise MatdiffError(f"wrt must be variable names, got {_kind(item)}")
        if name not in names:
            names.append(name)
    return names, extra


def _absent_note(extra: Mapping[str, Expr]) -> list[str]:
    return [f"{n} does not occur in the expression: its derivative is zero" for n in extra]


# ----------------------------------------------------------------------------- parse, grad


@_public
def parse(text: str, shapes: ShapeDecl | None = None, syntax: str | None = None,
          sigmoid_names: Sequence[str] = ()) -> Expr:
    """Parse ASCII or LaTeX (detected, or forced with ``syntax``) to a typed expression.
    ``sigmoid_names`` are LaTeX names meaning the logistic function (``\\sigma``).

    >>> import matdiff as md
    >>> f = md.parse("||A*x - b||^2")
    >>> f.is_scalar, md.shapes_of(f)
    (True, {'A': ['m', 'n'], 'x': ['n'], 'b': ['m']})
    """
    return parse_with_notes(text, shapes, syntax, sigmoid_names).expr


def parse_with_notes(text: str, shapes: ShapeDecl | None = None, syntax: str | None = None,
          sigmoid_names: Sequence[str] = (), scalar: bool = False) -> Reading:
    """``parse``, with the notes on every guess it made (``shapes.read``, then how an
    exponential was read). With ``scalar`` (the function of a gradient, a Hessian), an
    expression whose shapes leave it open is read as a scalar where it can be: ``C`` in
    ``w'*w/2 + C*sum(w)`` is then a number, not a matrix the sum broadcasts over.

    >>> parse_with_notes("x - mu").notes[1][:27]
    'mu has the shape of x - mu:'
    >>> md_c = parse_with_notes("w'*w/2 + C*sum(w)", scalar=True)
    >>> md_c.expr.is_scalar, md_c.notes[-1][:62]
    (True, 'read as a scalar function (a gradient needs one): C a scalar; ')
    """
    _need_text(text)
    shapes = _need_shapes(shapes)
    if syntax is not None and not isinstance(syntax, str) or syntax not in (None, *_SYNTAXES):
        raise MatdiffError(f"unknown syntax {syntax!r}: use 'ascii', 'latex' or 'unicode'")
    names = [sigmoid_names] if isinstance(sigmoid_names, str) else sigmoid_names
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise MatdiffError("sigmoid_names must be a list of names")
    tree = _syntax_tree(text, syntax, names, shapes or {})
    declared = _with_differentials(text, shapes)
    try:
        reading = read(tree, text, declared)
    except MatdiffError as err:
        err.text = err.text or text
        raise
    if scalar and not reading.expr.is_scalar:
        reading = _as_scalar_function(tree, text, declared, reading)
    return Reading(reading.expr, (*reading.notes, *reading_notes(reading.expr)),
                   reading.defaulted)


_SYNTAXES = ("ascii", "latex", "unicode")


def _syntax_tree(text: str, syntax: str | None, sigmoid_names: Sequence[str],
                 shapes: ShapeDecl) -> Node:
    """The syntax tree in the syntax given, or detected: LaTeX by its commands, Unicode by
    its characters (Unicode with none, ``W1 x``, needs ``syntax="unicode"``)."""
    if syntax is None:
        syntax = "latex" if looks_like_latex(text) else \
            "unicode" if looks_like_unicode(text) else "ascii"
    if syntax == "ascii":
        return parse_ascii(text)
    tree = parse_latex(text, functions=sigmoid_names, variables=shapes) if syntax == "latex" \
        else parse_unicode(text, shapes)
    # LaTeX and Unicode (read by the LaTeX reader): an undeclared i is the imaginary unit
    return tree if "i" in shapes else imaginary_units(tree)


def _with_differentials(text: str, shapes: ShapeDecl | None) -> ShapeDecl | None:
    """A differential ``dX`` (a name in ``text``) gets the declared shape of ``X``."""
    if not shapes:
        return shapes
    words = set(re.findall(r"\bd\w+\b", text))  # one scan of the text, whatever the names
    extra = {"d" + name: [d for d in ([dims] if isinstance(dims, _DIM_TYPES) else dims)
                          if d not in ("sym", "symmetric")]
             for name, dims in shapes.items()
             if "d" + name not in shapes and ("d" + name in words if _WORD.fullmatch(name)
                                              else re.search(rf"\bd{re.escape(name)}\b", text))}
    return {**shapes, **extra} if extra else shapes


_WORD = re.compile(r"\w+")


def _as_expr(f: Any, shapes: ShapeDecl | None = None, scalar: bool = False) -> Expr:
    if isinstance(f, Expr):
        return f
    if isinstance(f, str):
        return parse_with_notes(f, shapes, scalar=scalar).expr
    raise MatdiffError(f"f must be an expression (a string or an Expr), got {_kind(f)}")


def _gradients(f: Expr, names: Sequence[str], extra: Mapping[str, Expr],
               simplified: bool = True) -> dict[str, Expr]:
    raw = _diff.gradients(f, names, declared=extra)
    return {k: simplify(g) if simplified else g for k, g in raw.items()}


@_public
def grad(f: Expr | str, wrt: str | Expr | Sequence[str | Expr], *, simplified: bool = True,
         shapes: ShapeDecl | None = None) -> Expr | dict[str, Expr]:
    """The gradient of a scalar expression: an Expr with the variable's shape, or a dict
    for a list of variables. A declared variable that ``f`` does not use gets zeros.

    >>> import matdiff as md
    >>> str(md.grad("||A*X*B - C||_F^2", "X"))
    "2*A'*(A*X*B - C)*B'"
    >>> sorted(md.grad("||A - U*V'||_F^2", ["U", "V"]))
    ['U', 'V']
    >>> str(md.grad("x'*x", "z", shapes={"z": ("n",)}))
    'zeros(n)'
    """
    f = _as_expr(f, shapes, scalar=True)
    names, extra = _variables(f, wrt, shapes)
    out = _gradients(f, names, extra, _need_flag(simplified, "simplified"))
    return out[names[0]] if isinstance(wrt, (str, Expr)) else out


@_public
def wirtinger(f: Expr | str, wrt: str | Expr, *,
              shapes: ShapeDecl | None = None) -> tuple[Expr, Expr]:
    """The Wirtinger derivatives ``(∂f/∂X, ∂f/∂X̄)`` of a scalar ``f``, complex-valued or
    not: with ``f = u + iv`` and ∇ the gradient ``∂/∂Re X + i ∂/∂Im X`` (``md.grad``),
    ``∂f/∂X̄ = (∇u + i∇v)/2`` and ``∂f/∂X = (conj(∇u) + i conj(∇v))/2`` (Brandwood 1983;
    Hjørungnes 2011, ch. 3). A holomorphic f has ``∂f/∂X̄ = 0``.

    >>> import matdiff as md
    >>> [str(d) for d in md.wirtinger("z.'*z", "z", shapes={"z": ("n", 1, "complex")})]
    ['2*z', 'zeros(n)']
    """
    f = _as_expr(f, shapes, scalar=True)
    names, extra = _variables(f, wrt, shapes)
    x = {**free_symbols(f), **extra}[names[0]]
    u, v = E.real(f), E.imag(f)
    grad_u, grad_v = (_diff.gradients(part, names, declared={names[0]: x})[names[0]]
                      for part in (u, v))
    i, half = E.imag_unit(), E.const(Fraction(1, 2))
    d_bar = E.scale(half, E.add(grad_u, E.scale(i, grad_v)))
    d = E.scale(half, E.add(E.conj(grad_u), E.scale(i, E.conj(grad_v))))
    return simplify(d), simplify(d_bar)


# ----------------------------------------------------------------------------- forward mode


@_public
def differential(f: Expr | str, wrt: str | Expr | Sequence[str | Expr], *,
                 shapes: ShapeDecl | None = None) -> Expr:
    """The differential ``dF``, linear in the symbol ``d<wrt>`` (Magnus & Neudecker); for a
    list of variables, the total differential (the sum over them).

    >>> import matdiff as md
    >>> str(md.differential("||A*X*B - C||_F^2", "X"))
    "2*tr((A*X*B - C)'*A*dX*B)"
    """
    f = _as_expr(f, shapes)
    names, extra = _variables(f, wrt, shapes)
    parts = [_forward.differential(f, n) for n in names if n not in extra]
    return simplify(sum(parts[1:], parts[0])) if len(parts) > 1 else \
        parts[0] if parts else zeros(f.shape)


def _size(x: Expr) -> Dim:
    return x.rows * x.cols


class WirtingerPair(NamedTuple):
    """The Jacobians of a map that is not holomorphic: ``d = ∂vec F/∂vec Xᵀ`` and
    ``d_bar = ∂vec F/∂vec X̄ᵀ``, with ``dvec F = d · dvec X + d_bar · dvec X̄`` (Wirtinger;
    Hjørungnes 2011, ch. 6). A tuple: ``J, J_bar = md.jacobian(...)``."""

    d: Expr
    d_bar: Expr

    def __str__(self) -> str:
        return f"({self.d}, {self.d_bar})"


def _jacobian(f: Expr, name: str, extra: Mapping[str, Expr], pair: bool
              ) -> Expr | WirtingerPair:
    """The complex Jacobian, or the Wirtinger pair where F is not holomorphic (or asked)."""
    if name in extra:
        j, j_bar = (zeros((_size(f), _size(extra[name]))),) * 2
    else:
        j, j_bar = _forward.jacobian_pair(f, name)
    return WirtingerPair(j, j_bar) if pair or not E.is_zero(j_bar) else j


@_public
def jacobian(f: Expr | str, wrt: str | Expr | Sequence[str | Expr], *, pair: bool = False,
             shapes: ShapeDecl | None = None
             ) -> Expr | WirtingerPair | dict[str, Expr | WirtingerPair]:
    """``d vec(F) / d vec(X)ᵀ`` in closed form: (size F) × (size X), column-major ``vec``;
    for a vector function of a vector, the ordinary m×n Jacobian; a dict for a list.
    For a complex X and an F that is not holomorphic (``conj(X)``, ``X'``, ``|x|.^2``,
    ``real(A*x)``), the Wirtinger pair ``WirtingerPair(d, d_bar)``: ∂vec F/∂vec Xᵀ and
    ∂vec F/∂vec X̄ᵀ; ``pair=True`` gives the pair always (``d_bar`` zero where F is
    holomorphic).

    >>> import matdiff as md
    >>> str(md.jacobian("A*X*B", "X")), str(md.jacobian("sigmoid(W*x)", "x"))
    ("kron(B', A)", 'Diag(sigmoid(W*x) .* (1 - sigmoid(W*x)))*W')
    >>> J, J_bar = md.jacobian("z .* conj(z)", "z", shapes={"z": ("n", 1, "complex")})
    >>> str(J), str(J_bar)
    ('Diag(conj(z))', 'Diag(z)')
    """
    f = _as_expr(f, shapes)
    names, extra = _variables(f, wrt, shapes)
    pair = _need_flag(pair, "pair")
    out = {n: _jacobian(f, n, extra, pair) for n in names}
    return out[names[0]] if isinstance(wrt, (str, Expr)) else out


def _symbols(f: Expr, extra: Mapping[str, Expr]) -> dict[str, Expr]:
    return {**free_symbols(f), **extra}


def _scalar(f: Expr, what: str) -> None:
    if not f.is_scalar:
        raise MatdiffError(f"the {what} needs a scalar function, but this one is "
                           f"{f.rows}x{f.cols}; use jacobian for vector or matrix functions")


def _hessian_pairs(f: Expr, names: Sequence[str], extra: Mapping[str, Expr], pair: bool,
                   blocks: Sequence[tuple[str, str]] | None = None
                   ) -> dict[tuple[str, str], Expr | WirtingerPair]:
    """The ``blocks`` (default: all) ``d vec(∇_A f)/d vec(B)ᵀ``, or their Wirtinger pairs
    where the gradient is not holomorphic in B (or ``pair``)."""
    _scalar(f, "Hessian")
    symbols = _symbols(f, extra)
    grads: dict[str, Expr] = {}
    out: dict[tuple[str, str], Expr | WirtingerPair] = {}
    for a, b in [(a, b) for a in names for b in names] if blocks is None else blocks:
        if a in extra or b in extra:
            h = h_bar = zeros((_size(symbols[a]), _size(symbols[b])))
        elif a == b:
            h, h_bar = _forward.hessian_pair(f, a)
        else:
            if a not in grads:
                grads[a] = _gradients(f, [a], dict(extra))[a]
            h, h_bar = _forward.jacobian_pair(grads[a], symbols[b])
        out[a, b] = WirtingerPair(h, h_bar) if pair or not E.is_zero(h_bar) else h
    return out


@_public
def hessian(f: Expr | str, wrt: str | Expr | Sequence[str | Expr], *, pair: bool = False,
            shapes: ShapeDecl | None = None
            ) -> Expr | WirtingerPair | dict[tuple[str, str], Expr | WirtingerPair]:
    """``d vec(∇f) / d vec(X)ᵀ`` of a scalar ``f``: n×n for a vector, mn×mn for a matrix.
    For a list of variables, a dict of all the blocks ``(A, B) ↦ d²f / dvec(A) dvec(B)ᵀ``
    (the cross Hessians; ``(B, A)`` is the transpose of ``(A, B)``). Where the gradient of
    a real f of a complex X has X̄ in it, the Wirtinger pair of the gradient,
    ``WirtingerPair(∂vec ∇f/∂vec Xᵀ, ∂vec ∇f/∂vec X̄ᵀ)``; ``pair=True`` gives it always.

    >>> import matdiff as md
    >>> str(md.hessian("||A*x - b||^2", "x")), str(md.hessian("log(det(X))", "X"))
    ("2*A'*A", "-kron(inv(X), inv(X)')*K(m, m)")
    >>> str(md.hessian("x'*A*y", ["x", "y"])["x", "y"])
    'A'
    >>> str(md.hessian("real(z.'*S*z)", "z", shapes={"z": ("n", 1, "complex")}))
    "(zeros(n, n), S + S')"
    """
    f = _as_expr(f, shapes, scalar=True)
    names, extra = _variables(f, wrt, shapes)
    blocks = _hessian_pairs(f, names, extra, _need_flag(pair, "pair"))
    return blocks[names[0], names[0]] if isinstance(wrt, (str, Expr)) else blocks


@_public
def hvp(f: Expr | str, wrt: str | Expr | Sequence[str | Expr], direction: str | None = None,
        *, shapes: ShapeDecl | None = None) -> Expr | dict[str, Expr]:
    """The Hessian of ``f`` applied to a direction (a new symbol with ``wrt``'s shape: V, or
    V1, V2, ... when ``f`` uses V), as a matrix expression: forward over reverse, never a
    Kronecker product. For a list of variables, the block rows ``Σ_B H_AB vec(V_B)`` with
    one direction per variable (V, V1, ...), as a dict.

    >>> import matdiff as md
    >>> str(md.hvp("||A*X*B - C||_F^2", "X"))
    "2*A'*A*V*B*B'"
    >>> str(md.hvp("x'*A*y", ["x", "y"])["x"])
    'A*V1'
    """
    f = _as_expr(f, shapes, scalar=True)
    names, extra = _variables(f, wrt, shapes)
    if direction is not None and not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*",
                                                  _need_text(direction, "direction")):
        raise MatdiffError(f"the direction must be a name such as V, got {direction!r}")
    if isinstance(wrt, (str, Expr)):
        return zeros(extra[names[0]].shape) if extra else \
            _forward.hvp(f, names[0], direction)
    _scalar(f, "Hessian")
    if direction is not None:
        raise MatdiffError("with several variables, the directions are named V, V1, ...; "
                           "leave direction out")
    directions = hvp_directions(f, names, extra)
    grads = _gradients(f, names, extra)
    return {a: simplify(_forward.jvp(grads[a], {b: directions[b] for b in names}))
            for a in names}


def hvp_directions(f: Expr, names: Sequence[str], extra: Mapping[str, Expr]
                   ) -> dict[str, Expr]:
    """One direction symbol per variable, with its shape: V, V1, V2, ..., none used by
    ``f`` or by another variable."""
    symbols = _symbols(f, extra)
    used = set(symbols)
    out: dict[str, Expr] = {}
    for n in names:
        name = next(v for v in ("V", *(f"V{i}" for i in range(1, 999))) if v not in used)
        used.add(name)
        out[n] = sym(name, symbols[n].shape, "complex" if symbols[n].is_complex else "")
    return out


# ----------------------------------------------------------------------------- check, evaluate


@_public
def check(f: Expr | str, wrt: str | Expr | Sequence[str | Expr], *, seed: int = 0,
          tolerance: float = 1e-6, shapes: ShapeDecl | None = None,
          raise_on_failure: bool = True) -> CheckReport:
    """Verify the (simplified) gradients of ``f`` against finite differences at random
    points: a verdict per variable (OK, MISMATCH, or inconclusive with its reason). Raises
    ``MatdiffError`` on a mismatch when ``raise_on_failure``.

    >>> import matdiff as md
    >>> md.check("x'*A*x", "x").ok
    True
    >>> md.check("log(det(X'*X))", "X", shapes={"X": (2, 3)}).inconclusive
    {'X': 'singular by shape'}
    """
    guesses = parse_with_notes(f, shapes, scalar=True).notes if isinstance(f, str) else ()
    f = _as_expr(f, shapes, scalar=True)
    names, extra = _variables(f, wrt, shapes)
    grads = _gradients(f, names, extra)
    report = _check_gradients(f, names, grads, seed=_need_seed(seed),
                              tolerance=_need_tolerance(tolerance),
                              raise_on_failure=_need_flag(raise_on_failure, "raise_on_failure"),
                              extra=list(extra.values()))
    report.notes += [f"  note: {n}" for n in (*guesses, *_absent_note(extra))]
    return report


@_public
def evaluate(e: Expr | Sequence[Expr], **inputs: Any) -> Any:
    """Evaluate with the reference interpreter (keyword arguments by symbol name); refuses
    above ``matdiff.points.LIMIT_BYTES`` of estimated memory.

    >>> import matdiff as md
    >>> md.evaluate(md.parse("x'*x"), x=[3.0, 4.0])
    25.0
    """
    roots = [e] if isinstance(e, Expr) else e
    if not isinstance(roots, (list, tuple)) or not all(isinstance(r, Expr) for r in roots):
        raise MatdiffError(f"evaluate takes an Expr or a list of them, got {_kind(e)}")
    return _evaluate(e if isinstance(e, Expr) else list(roots), inputs)


@_public
def shapes_of(e: Expr | Sequence[Expr], style: str = "text") -> dict[str, list[str]]:
    """The shapes of the variables: ``{name: [dims]}``, ``[]`` for a scalar, one dim for a
    column vector; a declared structure (``symmetric``, ...) follows the dims."""
    roots = [e] if isinstance(e, Expr) else e
    if not isinstance(roots, (list, tuple)) or not all(isinstance(r, Expr) for r in roots):
        raise MatdiffError(f"shapes_of takes an Expr or a list of them, got {_kind(e)}")
    if not isinstance(style, str) or style not in ("text", "unicode", "latex"):
        raise MatdiffError(f"unknown style {style!r}: use 'text', 'unicode' or 'latex'")
    out: dict[str, list[str]] = {}
    for root in roots:
        for name, node in free_symbols(root).items():
            out[name] = _shape_list(node, style)
    return out


def _shape_list(node: Expr, style: str = "text") -> list[str]:
    r, c = node.shape
    dims = [] if node.is_scalar else [r] if node.is_vector else [r, c]
    structure = node.attr[2] if len(node.attr) > 2 and isinstance(node.attr[2], str) else ""
    return [printing.format_dim(d, style) for d in dims] + ([structure] if structure else [])


@_public
def explain(f: Expr | str, wrt: str | Sequence[str], *,
            shapes: ShapeDecl | None = None) -> Explanation:
    """The derivation of the gradient in differential form, step by step.

    >>> import matdiff as md
    >>> print(md.explain("||A*X*B - C||_F^2", "X").render("text"))  # doctest: +ELLIPSIS
    phi = M : M ...
    """
    f = _as_expr(f, shapes)
    names, extra = _variables(f, wrt, shapes)
    if extra:
        raise MatdiffError(_unknown(next(iter(extra)), free_symbols(f)))
    return _derivation(f, wrt if isinstance(wrt, str) else names)


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


def unused_declarations(f: Expr, shapes: ShapeDecl | None, wrt: Sequence[str] = ()
                        ) -> list[str]:
    """A note per declared shape that the expression does not use (a typo, or a leftover);
    a variable named in ``wrt`` has its own note (its derivative is zero).

    >>> unused_declarations(parse("x'*x"), {"x": ("n",), "y": ("n",)})
    ['y is declared but does not occur in the expression']
    """
    used = free_symbols(f)
    return [f"{name} is declared but does not occur in the expression" for name in shapes or {}
            if name not in used and name not in wrt]


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


# ----------------------------------------------------------------------------- report


def _forms(e: Expr) -> dict[str, str]:
    return {"text": printing.to_text(e), "unicode": printing.to_unicode(e),
            "latex": printing.to_latex(e)}


_KINDS = ("grad", "differential", "jacobian", "hessian", "hvp")


def _derivatives(f: Expr, what: str, names: list[str], extra: dict[str, Expr],
                 directions: Mapping[str, str]) -> dict[str, Expr]:
    """Each variable's derivative of the kind ``what`` (for hvp, each in its own
    direction; for differential, the partial differential in d<name>)."""
    if what == "grad":
        return _gradients(f, names, extra)
    if what == "hvp":
        _scalar(f, "Hessian")
        return {n: zeros(extra[n].shape) if n in extra else
                _forward.hvp(f, n, directions[n]) for n in names}
    return {n: zeros(f.shape) if n in extra else _forward.differential(f, n) for n in names}


def _with_conjugates(f: Expr, what: str, names: list[str], extra: dict[str, Expr]
                     ) -> tuple[dict[str, Expr], dict[str, Expr]]:
    """Each variable's Jacobian (``what`` "jacobian") or Hessian J, and J̄ = ∂vec F/∂vec X̄ᵀ
    for those where F (the gradient) is not holomorphic: the Wirtinger pair."""
    diagonal = [(n, n) for n in names]
    found = {n: _jacobian(f, n, extra, False) for n in names} if what == "jacobian" else \
        {n: h for (n, _), h in _hessian_pairs(f, names, extra, False, diagonal).items()}
    return ({n: j.d if isinstance(j, WirtingerPair) else j for n, j in found.items()},
            {n: j.d_bar for n, j in found.items() if isinstance(j, WirtingerPair)})


def _pair_claim(f: Expr, name: str, j: Expr, j_bar: Expr, v: Expr) -> Claim:
    """vec F moves by J vec V + J̄ vec V̄ along V: a directional claim."""
    moved = E.add(E.matmul(j, E.vec(v)), E.matmul(j_bar, E.vec(E.conj(v))))
    return Claim(name, f, moved if f.is_complex else E.real(moved), "direction", v.name)


def _claims(f: Expr, what: str, derivs: Mapping[str, Expr], extra: Mapping[str, Expr],
            directions: Mapping[str, str], conjugates: Mapping[str, Expr]
            ) -> dict[str, Claim]:
    """What the check compares for each derivative."""
    if what == "grad":
        return {n: Claim(n, f, g) for n, g in derivs.items()}
    v = hvp_directions(f, list(conjugates), extra)   # one direction symbol per pair
    if what == "jacobian":
        return {n: _pair_claim(f, n, j, conjugates[n], v[n]) if n in conjugates else
                Claim(n, f, j, "matrix") for n, j in derivs.items()}
    if what == "differential":
        return {n: Claim(n, f, d, "direction", "d" + n) for n, d in derivs.items()}
    grads = _gradients(f, list(derivs), dict(extra))
    if what == "hessian":
        return {n: _pair_claim(grads[n], n, h, conjugates[n], v[n]) if n in conjugates else
                Claim(n, grads[n], h, "matrix") for n, h in derivs.items()}
    return {n: Claim(n, grads[n], v, "direction", directions[n]) for n, v in derivs.items()}


def _blocks(f: Expr, names: list[str], extra: dict[str, Expr], verify: bool
            ) -> list[dict[str, Any]]:
    """The cross Hessians d²f/dvec(A)dvec(B)ᵀ for the pairs A before B, with their check."""
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    blocks = _hessian_pairs(f, names, extra, False, pairs)
    out: list[dict[str, Any]] = [
        {"rows": a, "cols": b, **_forms(h.d), "conjugate": _forms(h.d_bar)}
        if isinstance(h, WirtingerPair) else {"rows": a, "cols": b, **_forms(h)}
        for (a, b), h in blocks.items()]
    if verify and pairs:
        grads = _gradients(f, names, extra)
        v = hvp_directions(f, names, extra)
        claims = {f"{a},{b}": _pair_claim(grads[a], b, *h, v[b])
                  if isinstance(h, WirtingerPair) else Claim(b, grads[a], h, "matrix")
                  for (a, b), h in blocks.items()}
        rep = check_claims(claims, extra=[f, *extra.values()])
        for block, key in zip(out, claims, strict=True):
            block["check"] = rep.verdicts[key].as_dict()
    return out


def _named(out: dict[str, Any], f: Expr, names: list[str], grads: Mapping[str, Expr],
           steps: bool) -> None:
    """The named parts of the gradients (``where``) and the derivation (``steps``)."""
    ex = _derivation(f, [n for n in names if n in free_symbols(f)]) if steps else None
    named = name_parts(list(grads.values()))  # the same names with and without the steps
    if named.parts or named.factors:       # and the factorizations: UΣVᵀ = X (thin SVD)
        out["where"] = _where(named)
        for n, g in zip(grads, named.roots, strict=True):
            out["derivatives"][n]["named"] = {
                style: named.render(g, style) for style in ("text", "unicode", "latex")}
    if ex is not None:
        out["steps"] = [s.as_dict() for s in ex.steps]


def _code(f: Expr, derivs: Sequence[Expr], what: str, out: dict[str, Any]) -> None:
    try:
        out["code"] = {b: codegen([f, *derivs], backend=b, name=f"f_and_{what}")
                       for b in ("numpy", "jax", "torch")}
    except MatdiffError as err:  # the formulas stand; say why there is no code
        out["notes"] = [*out.get("notes", []), f"no generated code: {err.message}"]


def _as_scalar_function(tree: Node, text: str, declared: ShapeDecl | None, reading: Reading
                        ) -> Reading:
    """The reading of a gradient's function: a scalar where only names without a default
    shape (``C``, not ``x`` or ``lam``) become numbers for it; else ``reading``."""
    try:
        as_scalar = read(tree, text, declared, scalar=True)
    except MatdiffError:
        return reading
    before, after = free_symbols(reading.expr), free_symbols(as_scalar.expr)
    changed = [n for n, x in after.items() if _kind_of_shape(before[n]) != _kind_of_shape(x)]
    if not as_scalar.expr.is_scalar or not changed or any(
            not after[n].is_scalar or n in reading.defaulted for n in changed):
        return reading
    return Reading(as_scalar.expr, (*as_scalar.notes, (
        f"read as a scalar function (a gradient needs one): {', '.join(changed)} "
        f"{'a scalar' if len(changed) == 1 else 'scalars'}; alone, the expression would "
        f"read as {printing.format_shape(reading.expr.shape)}")), as_scalar.defaulted)


def _kind_of_shape(x: Expr) -> tuple[bool, bool]:
    """A scalar, a column, a row or a matrix: which sides are 1."""
    return x.rows == 1, x.cols == 1


_SCALAR_KINDS = ("grad", "hessian", "hvp")     # derivatives of a scalar function


@_public
def report(text: str, wrt: str | Sequence[str] | None = None,
           shapes: ShapeDecl | None = None, syntax: str | None = None, what: str = "grad",
           verify: bool = True, steps: bool = False) -> dict[str, Any]:
    """Everything the CLI's ``--format json`` and the web page show, as a JSON-safe dict.
    ``"where"`` lists the named parts; each derivative's ``"named"`` is written over them;
    ``steps`` adds the derivation (``"steps"``). For a Hessian in two or more requested
    variables, ``"blocks"`` holds the cross Hessians. A Jacobian of a map that is not
    holomorphic has ``"conjugate"`` (J̄ = ∂vec F/∂vec X̄ᵀ) beside J. ``"check"`` has a
    verdict per variable: ``{"verdict", "ok", "max_rel_error", "reason", "detail"}``.

    >>> r = report("x'*A*x", ["x"])
    >>> r["derivatives"]["x"]["text"], r["check"]["x"]["verdict"]
    ("(A + A')*x", 'ok')
    """
    if not isinstance(what, str) or what not in _KINDS:
        raise MatdiffError(f"unknown derivative kind {what!r}: use " + ", ".join(_KINDS))
    verify, steps = _need_flag(verify, "verify"), _need_flag(steps, "steps")
    reading = parse_with_notes(text, shapes, syntax, scalar=what in _SCALAR_KINDS)
    f = reading.expr
    names, extra = _variables(f, wrt, shapes) if wrt else (list(free_symbols(f)), {})
    if not names:
        raise MatdiffError("the expression has no variables: there is nothing to "
                           "differentiate (name one with --wrt and declare its shape)")
    directions = {n: v.name for n, v in hvp_directions(f, names, extra).items()} \
        if what == "hvp" else {}
    derivs, conjugates = _with_conjugates(f, what, names, extra) \
        if what in ("jacobian", "hessian") else \
        (_derivatives(f, what, names, extra, directions), {})
    symbols = _symbols(f, extra)
    out: dict[str, Any] = {
        "expression": printing.to_text(f),
        "expression_unicode": printing.to_unicode(f),
        "expression_latex": printing.to_latex(f),
        "shapes": {**shapes_of(f), **{n: _shape_list(x) for n, x in extra.items()}},
        "what": what,
        "derivatives": {n: _forms(g) for n, g in derivs.items()},
    }
    for n, j_bar in conjugates.items():      # not holomorphic: J̄ = ∂vec F/∂vec X̄ᵀ beside J
        out["derivatives"][n]["conjugate"] = _forms(j_bar)
    if what == "grad":
        _named(out, f, names, derivs, steps)
    if what == "hvp":
        out["directions"] = directions
    if what == "hessian" and wrt and len(names) > 1:
        out["blocks"] = _blocks(f, names, extra, verify)
    notes = [f"{n}: {_diff.SYMMETRIC_CONVENTION}" for n in names
             if symbols[n].symmetric and what in ("grad", "hessian", "hvp")]
    notes += [f"{n}: {_diff.COMPLEX_GRADIENT}" for n in names
              if symbols[n].is_complex and what == "grad"]
    notes += reading.notes                 # the guesses: default shapes, exp elementwise
    notes += unused_declarations(f, shapes, names)
    if notes or extra:
        out["notes"] = notes + _absent_note(extra)
    _code(f, [*derivs.values(), *conjugates.values()], what, out)
    if verify:
        tolerance = 1e-6
        claims = _claims(f, what, derivs, extra, directions, conjugates)
        rep = check_claims(claims, tolerance=tolerance,
                           extra=[f, *extra.values()])   # f holds every variable
        out["check"] = {n: v.as_dict() for n, v in rep.verdicts.items()}
        out["check_sizes"] = rep.sizes
        if rep.notes:
            out["check_notes"] = [n.strip() for n in rep.notes]
    return out
