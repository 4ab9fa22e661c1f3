"""An optimisation problem: objective and constraints as text, plus data, to smooth parts.

Input: an objective (text or ``Expr``), variable names, data arrays, constraints
(``spec.Constraint``), bounds and shape declarations. Output: a ``Problem`` whose objective
and constraint functions are smooth ``Expr`` s with integer dimensions, whose bounds are
arrays per variable, and whose non-smooth terms have been reformulated:

* ``c*||x||_1`` of a variable ``x`` (``c >= 0``): the split ``x = x⁺ − x⁻``, ``x⁺, x⁻ >= 0``,
  with ``c*sum(x⁺ + x⁻)`` in the objective (done by the solver's variable layout);
* ``c*||E||_1`` or ``c*sum(abs(E))`` of any other smooth ``E``: the epigraph, a new variable
  ``t >= 0`` with ``E - t <= 0``, ``-E - t <= 0`` and ``c*sum(t)`` in the objective;
* ``c*sum(relu(E))``: a new ``t >= 0`` with ``E - t <= 0`` and ``c*sum(t)``.

A constraint ``x >= c`` / ``x <= c`` / ``x == c`` between a variable and an expression without
variables is a bound. Contract: user errors raise ``MatdiffError`` (with the place in the
text where one applies); contradictory bounds are not an error but ``Problem.infeasible``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import expr as E
from .api import evaluate, parse
from .expr import Dim, Expr, MatdiffError, Op, free_symbols, toposort
from .spec import Constraint, Piece

__all__ = ["Variable", "Problem", "build", "NONSMOOTH_HINT"]

NONSMOOTH_HINT = ("matdiff reformulates ||E||_1, sum(abs(E)) and sum(relu(E)) when they are "
                  "terms of the objective with a non-negative weight (the split x = x+ - x- of "
                  "a variable, or the epigraph -t <= E <= t); write the problem that way")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_KINDS = {"scalar": 0, "vector": 1, "matrix": 2, "symmetric": 2, "sym": 2}


@dataclass
class Variable:
    """A variable with integer dimensions and entrywise bounds (arrays of shape (rows, cols))."""

    symbol: Expr
    lower: np.ndarray
    upper: np.ndarray
    l1: float = 0.0            # weight c of c*||x||_1, handled by the split x = x⁺ − x⁻
    epigraph_of: tuple[str, Expr] | None = None   # ("l1" | "relu", E) for a variable t ≥ |E|

    @property
    def name(self) -> str:
        return self.symbol.name

    @property
    def shape(self) -> tuple[int, int]:
        r, c = (d.value for d in self.symbol.shape)
        assert r is not None and c is not None
        return r, c


@dataclass
class Problem:
    """Minimise ``objective`` subject to ``equalities == 0``, ``inequalities <= 0`` and the
    variables' bounds; each constraint is ``(text, Expr)``."""

    objective: Expr
    variables: dict[str, Variable]
    data: dict[str, Any]
    equalities: list[tuple[str, Expr]] = field(default_factory=list)
    inequalities: list[tuple[str, Expr]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    infeasible: str | None = None


# ----------------------------------------------------------------------------- inputs


def as_array(name: str, value: Any) -> Any:
    """Data as float64: a float for a scalar, a 1-D array for a vector, 2-D for a matrix."""
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise MatdiffError(f"{name}: expected numbers, got {type(value).__name__}") from None
    if a.ndim > 2:
        raise MatdiffError(f"{name}: expected a scalar, a vector or a matrix, got an array "
                           f"of shape {a.shape}")
    if a.size == 0:
        raise MatdiffError(f"{name}: the array is empty")
    return float(a) if a.ndim == 0 else a


def _shape_of(a: Any) -> tuple[int, ...]:
    return tuple(np.shape(a))


def _declared(name: str, spec: Any, known: tuple[int, ...] | None) -> list[Any]:
    """A shape declaration: a kind (``"vector"``, ``"sym"``, ...) or dimensions, where a
    dimension name stands for a size solved from the data (the same name, the same size)."""
    if isinstance(spec, str):
        kind = spec.lower()
        if kind not in _KINDS:
            raise MatdiffError(f"shapes[{name!r}]: use scalar, vector, matrix, symmetric or "
                               f"dimensions such as (5, 2), not {spec!r}")
        dims: list[Any] = list(known) if known is not None and len(known) == _KINDS[kind] else \
            [Dim.var(f"_{name}{i}") for i in range(_KINDS[kind])]
        if kind in ("sym", "symmetric"):
            dims = [dims[0], dims[0], "symmetric"]
        return dims
    items = list(spec)
    out: list[Any] = []
    for d in items:
        if d is None:
            out.append(Dim.var(f"_{name}{len(out)}"))
        elif isinstance(d, str) and d.lower() in ("sym", "symmetric"):
            out.append("symmetric")
        elif isinstance(d, str) and not d.strip().isdigit():
            if not _NAME.fullmatch(d.strip()):
                raise MatdiffError(f"shapes[{name!r}]: bad dimension {d!r}")
            out.append(Dim.var(f"_{d.strip()}"))
        else:
            out.append(int(d))
    return out


def _declarations(variables: Sequence[str], data: Mapping[str, Any],
                  shapes: Mapping[str, Any], x0: Mapping[str, Any],
                  bounds: Mapping[str, Any]) -> dict[str, list[Any]]:
    decl: dict[str, list[Any]] = {}
    for name, value in data.items():
        decl[name] = list(_shape_of(value))
    for name in variables:
        known = _shape_of(as_array(name, x0[name])) if name in x0 else None
        if known is None:
            for b in bounds.get(name) or ():
                if b is not None and np.ndim(b) > 0:
                    known = _shape_of(np.asarray(b))
        if name in shapes:
            decl[name] = _declared(name, shapes[name], known)
        elif known is not None:
            decl[name] = list(known)
    for name, spec in shapes.items():
        if name in data:
            d = _declared(name, spec, _shape_of(data[name]))
            if "symmetric" in d:
                a = np.asarray(data[name])
                if a.ndim != 2 or not np.allclose(a, a.T):
                    raise MatdiffError(f"{name} is declared symmetric, but its data are not")
            decl[name] = list(_shape_of(data[name])) + (["symmetric"] if "symmetric" in d
                                                        else [])
        elif name not in variables:
            raise MatdiffError(f"shapes names {name!r}, which is neither a variable nor data")
    return decl


def _parse_piece(piece: Piece, decl: Mapping[str, Any]) -> Expr:
    try:
        return parse(piece.text, decl)
    except MatdiffError as err:
        raise piece.shift(err) from None


def _place(piece: Piece | None, word: str) -> tuple[int | None, int | None]:
    """The first place of ``word`` (a name or a function) in ``piece``'s source."""
    if piece is None:
        return None, None
    m = re.search(rf"(?<![A-Za-z0-9_]){re.escape(word)}(?![A-Za-z0-9_])", piece.text)
    if m is None:
        return None, None
    return piece.start + m.start(), piece.start + m.end()


def _fail(message: str, piece: Piece | None, word: str = "") -> MatdiffError:
    pos, end = _place(piece, word) if word else (None, None)
    return MatdiffError(message, pos=pos, end=end, text=None if piece is None else piece.source)


def _check_symbols(e: Expr, piece: Piece | None, variables: Sequence[str],
                   data: Mapping[str, Any]) -> None:
    for name in free_symbols(e):
        if name not in data and name not in variables:
            raise _fail(f"{name} is neither a variable nor given in the data "
                        f"(data={{{name!r}: ...}})", piece, name)


def _int_shape(node: Expr) -> list[Any] | None:
    dims = [d.value for d in node.shape]
    if any(v is None for v in dims):
        return None
    out: list[Any] = [] if node.is_scalar else [dims[0]] if node.is_vector else list(dims)
    return out + (["symmetric"] if node.symmetric else [])


def _fix_shapes(e: Expr, piece: Piece | None, decl: dict[str, list[Any]],
                variables: Sequence[str], strict: bool = True) -> None:
    """Declare the integer shapes ``e`` settled; a variable left with a symbolic size fails
    (when ``strict``: the constraints may still settle it)."""
    for name, node in free_symbols(e).items():
        shape = _int_shape(node)
        if shape is not None:
            decl[name] = shape
        elif name in variables and strict:
            shown = "×".join(str(d).replace("_", "") for d in node.shape)
            raise _fail(f"the size of {name} ({shown}) is not settled by the data: give x0 or "
                        f"shapes={{{name!r}: (rows, cols)}}", piece, name)


# ----------------------------------------------------------------------------- constraints


def _lifted(a: Expr, like: Expr) -> Expr:
    return a if a.shape == like.shape or not a.is_scalar else E.scale(a, E.ones(like.shape))


def _full(value: Any, shape: tuple[int, int]) -> np.ndarray:
    a = np.asarray(value, dtype=float)
    if a.size == 1:
        return np.full(shape, float(a.reshape(())))
    return np.array(a.reshape(shape), dtype=float)


def _constraint(con: Constraint, decl: dict[str, list[Any]], variables: Sequence[str],
                data: Mapping[str, Any]) -> tuple[Expr, str, Expr]:
    lhs, rhs = _parse_piece(con.lhs, decl), _parse_piece(con.rhs, decl)
    for e, piece in ((lhs, con.lhs), (rhs, con.rhs)):
        _check_symbols(e, piece, variables, data)
        _fix_shapes(e, piece, decl, variables)
    if lhs.shape != rhs.shape and not (lhs.is_scalar or rhs.is_scalar):
        shown = " and ".join("×".join(str(d) for d in s.shape) for s in (lhs, rhs))
        raise MatdiffError(f"the two sides of the constraint have different shapes, {shown}",
                           pos=con.pos, end=con.pos + len(con.op), text=con.lhs.source)
    if not any(n in variables for e in (lhs, rhs) for n in free_symbols(e)):
        raise MatdiffError("the constraint has no variable", pos=con.pos, text=con.lhs.source)
    return _lifted(lhs, rhs), con.op, _lifted(rhs, lhs)


def _as_bound(lhs: Expr, op: str, rhs: Expr, variables: Mapping[str, Variable],
              data: Mapping[str, Any]) -> bool:
    """Apply ``x op c`` (or ``c op x``) to the bounds of ``x``; False if it is no bound."""
    for var, other, flip in ((lhs, rhs, False), (rhs, lhs, True)):
        v = variables.get(var.name) if var.op is Op.SYMBOL else None
        if v is None or any(n in variables for n in free_symbols(other)):
            continue
        value = _full(evaluate(other, **{n: data[n] for n in free_symbols(other)}), v.shape)
        if v.symbol.symmetric and not np.allclose(value, value.T):
            return False
        kind = op if not flip else {"<=": ">=", ">=": "<=", "==": "=="}[op]
        if kind in ("<=", "=="):
            v.upper = np.minimum(v.upper, value)
        if kind in (">=", "=="):
            v.lower = np.maximum(v.lower, value)
        return True
    return False


def _bounds_kwarg(bounds: Mapping[str, Any], variables: dict[str, Variable]) -> None:
    for name, pair in bounds.items():
        if name not in variables:
            raise MatdiffError(f"bounds names {name!r}, which is not a variable")
        try:
            lo, hi = pair
        except (TypeError, ValueError):
            raise MatdiffError(f"bounds[{name!r}] is a pair (lower, upper); use None for "
                               "no bound") from None
        v = variables[name]
        for b, side in ((lo, "lower"), (hi, "upper")):
            if b is None:
                continue
            try:
                value = _full(b, v.shape)
            except ValueError:
                raise MatdiffError(f"bounds[{name!r}]: the {side} bound has shape "
                                   f"{np.shape(b)}; {name} is {v.shape}") from None
            if side == "lower":
                v.lower = np.maximum(v.lower, value)
            else:
                v.upper = np.minimum(v.upper, value)


def _infeasible_bounds(variables: Mapping[str, Variable]) -> str | None:
    for v in variables.values():
        bad = int(np.count_nonzero(v.lower > v.upper))
        if bad:
            return (f"infeasible: the bounds of {v.name} contradict each other (lower > upper "
                    f"at {bad} entr{'y' if bad == 1 else 'ies'})")
    return None


# ----------------------------------------------------------------------------- non-smooth terms


def _has_variable(e: Expr, variables: Mapping[str, Variable]) -> bool:
    return any(n in variables for n in free_symbols(e))


def _peel(term: Expr, variables: Mapping[str, Variable]) -> tuple[list[Expr], Expr]:
    """``c1*c2*core`` to ``([c1, c2], core)``, the coefficients free of variables."""
    coeffs: list[Expr] = []
    while term.op is Op.SCALE:
        a, b = term.args
        if not _has_variable(a, variables):
            coeffs.append(a)
            term = b
        elif b.is_scalar and not _has_variable(b, variables):
            coeffs.append(b)
            term = a
        else:
            break
    return coeffs, term


def _piecewise(core: Expr) -> tuple[str, Expr] | None:
    """``("l1", E)`` for ||E||_1, sum(abs(E)), abs(e); ``("relu", E)`` for sum(relu(E))."""
    if core.op is Op.NORM and core.attr == "1":
        return "l1", core.args[0]
    inner = core.args[0] if core.op is Op.SUM else core if core.is_scalar else None
    if inner is not None and inner.op in (Op.ABS, Op.RELU):
        return ("l1" if inner.op is Op.ABS else "relu"), inner.args[0]
    return None


def _fresh_name(base: str, taken: set[str]) -> str:
    k = 1
    while f"{base}{k}" in taken:
        k += 1
    taken.add(f"{base}{k}")
    return f"{base}{k}"


def _reformulate(problem: Problem, piece: Piece | None) -> None:
    """Replace each non-smooth term of the objective by its smooth reformulation."""
    f, variables = problem.objective, problem.variables
    taken = set(variables) | set(problem.data)
    kept: list[Expr] = []
    for term in f.args if f.op is Op.ADD else (f,):
        coeffs, core = _peel(term, variables)
        kind = _piecewise(core)
        if kind is None or not _has_variable(core, variables):
            kept.append(term)
            continue
        weight = float(np.prod([evaluate(c, **{n: problem.data[n] for n in free_symbols(c)})
                                for c in coeffs])) if coeffs else 1.0
        what, inner = kind
        shown = "||" + str(inner) + "||_1" if what == "l1" else f"sum(relu({inner}))"
        if weight < 0:
            raise _fail(f"{shown} has a negative weight ({weight:g}), which makes the "
                        "problem non-convex and non-smooth; " + NONSMOOTH_HINT, piece)
        if what == "l1" and inner.op is Op.SYMBOL and not inner.symmetric \
                and variables[inner.name].epigraph_of is None:
            variables[inner.name].l1 += weight
            problem.notes.append(f"{shown}: split {inner.name} = {inner.name}+ - "
                                 f"{inner.name}-, both >= 0, weight {weight:g} on their sum")
            continue
        t = E.sym(_fresh_name("t", taken), inner.shape)
        r, c = (int(d.value or 0) for d in inner.shape)
        variables[t.name] = Variable(t, np.zeros((r, c)), np.full((r, c), np.inf),
                                     epigraph_of=(what, inner))
        problem.inequalities.append((f"{inner} <= {t.name}", E.sub(inner, t)))
        if what == "l1":
            problem.inequalities.append((f"-({inner}) <= {t.name}", E.sub(E.neg(inner), t)))
        kept.append(E.scale(E.const(weight), E.total(t)) if weight != 1 else E.total(t))
        bounds = f"-{t.name} <= {inner} <= {t.name}" if what == "l1" else \
            f"{inner} <= {t.name}, {t.name} >= 0"
        problem.notes.append(f"{shown}: epigraph, a new variable {t.name} with {bounds}")
    problem.objective = E.add(*kept) if kept else E.const(0)


_NONSMOOTH = {Op.ABS: "abs", Op.SIGN: "sign", Op.RELU: "relu", Op.MAX: "max", Op.MIN: "min"}


def _smooth_enough(node: Expr, parents: Sequence[Expr]) -> bool:
    """|e|, relu(e) and max(e, 0) squared (or to a higher power) are continuously
    differentiable."""
    if node.op is Op.SIGN or node.op in (Op.MAX, Op.MIN) and not any(
            E.is_zero(a) for a in node.args):   # max(x, y)² still has a kink where x = y ≠ 0
        return False
    return bool(parents) and all(
        p.op is Op.POW and p.args[0] is node and p.args[1].op is Op.CONST
        and p.args[1].attr >= 2 for p in parents)


def check_smooth(e: Expr, piece: Piece | None, where: str) -> None:
    """Raise a MatdiffError naming the reformulation for a non-smooth part of ``e``."""
    parents: dict[Expr, list[Expr]] = {}
    for node in toposort([e]):
        for a in node.args:
            parents.setdefault(a, []).append(node)
    for node in toposort([e]):
        if node.op is Op.NORM and node.attr == "1":
            raise _fail(f"||{node.args[0]}||_1 is not differentiable {where}; "
                        + NONSMOOTH_HINT, piece, "norm1")
        if node.op in _NONSMOOTH and not _smooth_enough(node, parents.get(node, [])):
            word = _NONSMOOTH[node.op]
            if node.op is Op.SIGN:
                raise _fail(f"sign({node.args[0]}) is piecewise constant: its gradient is zero "
                            "wherever it exists, so no gradient method can use it", piece, word)
            shown = node if node.op in (Op.MAX, Op.MIN) else f"{word}({node.args[0]})"
            raise _fail(f"{shown} is not differentiable {where}; " + NONSMOOTH_HINT, piece,
                        word)


# ----------------------------------------------------------------------------- the problem


def _objective(f: str | Expr | Piece, decl: dict[str, list[Any]]) -> tuple[Expr, Piece | None]:
    if isinstance(f, Expr):
        return f, None
    piece = f if isinstance(f, Piece) else Piece(f, 0, f) if isinstance(f, str) else None
    if piece is None:
        raise MatdiffError(f"the objective is a string or an Expr, got {type(f).__name__}")
    return _parse_piece(piece, decl), piece


def build(f: str | Expr | Piece, variables: Sequence[str], *, data: Mapping[str, Any],
          constraints: Iterable[Constraint] = (), bounds: Mapping[str, Any] | None = None,
          shapes: Mapping[str, Any] | None = None, x0: Mapping[str, Any] | None = None,
          sense: str = "min") -> Problem:
    """The problem ``min f`` (or ``max f``) over ``variables``, smooth, with integer shapes.

    >>> import numpy as np
    >>> p = build("||A*x - b||^2 + 2*norm1(x)", ["x"], data={"A": np.eye(3), "b": np.ones(3)})
    >>> p.variables["x"].shape, p.variables["x"].l1, str(p.objective)
    ((3, 1), 2.0, '||A*x - b||_2^2')
    """
    for name in list(variables) + list(data):
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise MatdiffError(f"{name!r} is not a valid name")
    data = {name: as_array(name, value) for name, value in data.items()}
    both = sorted(set(variables) & set(data))
    if both:
        raise MatdiffError(f"{both[0]} is both a variable and data")
    decl = _declarations(variables, data, shapes or {}, x0 or {}, bounds or {})
    objective, piece = _objective(f, decl)
    if not objective.is_scalar:
        shown = "×".join(str(d) for d in objective.shape)
        raise _fail(f"the objective must be a scalar; it is {shown}", piece)
    _check_symbols(objective, piece, variables, data)
    _fix_shapes(objective, piece, decl, variables, strict=False)
    parsed = [(c, _constraint(c, decl, variables, data)) for c in constraints]
    if any(_int_shape(s) is None for s in free_symbols(objective).values()):
        objective, piece = _objective(f, decl)      # shapes the constraints settled
        _fix_shapes(objective, piece, decl, variables)
    symbols = free_symbols(objective)
    for _, (lhs, _op, rhs) in parsed:
        symbols.update(free_symbols(lhs))
        symbols.update(free_symbols(rhs))
    missing = [n for n in variables if n not in symbols]
    if missing:
        raise _fail(f"the variable {missing[0]} occurs in neither the objective nor the "
                    "constraints", piece)
    found = {n: Variable(symbols[n], *_unbounded(symbols[n])) for n in variables}
    problem = Problem(E.neg(objective) if sense == "max" else objective, found, dict(data))
    for con, (lhs, op, rhs) in parsed:
        if _as_bound(lhs, op, rhs, found, data):
            continue
        g = E.sub(lhs, rhs) if op != ">=" else E.sub(rhs, lhs)
        check_smooth(g, con.lhs, "in a constraint")
        (problem.equalities if op == "==" else problem.inequalities).append((con.text, g))
    _bounds_kwarg(bounds or {}, found)
    _reformulate(problem, piece)
    check_smooth(problem.objective, piece, "in the objective")
    problem.infeasible = _infeasible_bounds(found)
    return problem


def _unbounded(symbol: Expr) -> tuple[np.ndarray, np.ndarray]:
    r, c = (int(d.value or 0) for d in symbol.shape)
    return np.full((r, c), -np.inf), np.full((r, c), np.inf)
