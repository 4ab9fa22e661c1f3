"""Numerical verification: a reference NumPy evaluator and finite-difference checks.

``evaluate`` interprets an ``Expr`` directly with NumPy (the ``EVAL`` table, one plain
formula per Op): it is the oracle the compiled code and the symbolic derivatives are
compared with. It estimates the memory an evaluation needs before it allocates and refuses
above ``points.LIMIT_BYTES``.

``check(f, wrt, grads)`` compares symbolic derivatives with finite differences at random
points of the formula's domain (``points.random_inputs``) and gives each variable its own
verdict (``Verdict``): ``ok``, ``mismatch``, or ``inconclusive`` with a reason from
``points.REASONS`` (singular by shape, singular, ill-conditioned, saturated, not
differentiable, overflow, nan, too large). The comparison is along directions (each
coordinate, or random ones for large variables): the claimed directional derivative
against central differences with Richardson extrapolation, ``(4 c(h/2) - c(h)) / 3``, whose
error is estimated from the differences themselves plus the rounding of ``f``; where that
estimate is too large, a scan over steps from 0.1 down to 1e-9 picks the best one. The
tolerance is ``tolerance * scale + 3 * (estimated error)`` plus the rounding of the symbolic
value, scaled by the condition numbers of the inverted matrices. A disagreement is a
mismatch only where the function is smooth and well-conditioned at the point; elsewhere the
check moves to another point, and says why when every point it tried was unreliable.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, cast

import numpy as np

from . import linalg, points
from .expr import ELEMENTWISE, Dim, Expr, MatdiffError, Op, free_symbols, toposort
from .points import LIMIT_BYTES, Hazard, random_inputs
from .stable import stable_form

__all__ = ["EVAL", "evaluate", "node_values", "random_inputs", "check", "check_gradients",
           "check_claims", "Claim", "CheckReport", "Verdict", "bind_dims", "to_user",
           "to_internal", "fd_gradient", "fd_jacobian", "vec_of", "rel_error", "LIMIT_BYTES",
           "not_differentiable"]

Array = np.ndarray
EPS = float(np.finfo(float).eps)


def _commutation(m: int, n: int) -> Array:
    """K(m, n) with K vec(X) = vec(Xᵀ) for X m×n (column-major vec)."""
    k = np.zeros((m * n, m * n))
    for i in range(m):
        for j in range(n):
            k[i * n + j, j * m + i] = 1.0
    return k


def _slogdet(x: Array) -> Array:
    sign, logabs = np.linalg.slogdet(x)
    if np.iscomplexobj(x):                       # the principal log det of a complex X
        return np.array([[logabs + 1j * np.angle(sign)]])
    return np.array([[logabs if sign > 0 else np.nan]])


def _sigmoid(x: Array) -> Array:
    """1/(1 + e^-x) to full relative precision on both sides (0.5(1 + tanh(x/2)) loses the
    digits of σ(x) for x below about -20: 2.5e-5 relative at x = -28): e^-|x| ≤ 1 over
    1 + e^-|x|, the numerator 1 or e^-|x| by the sign."""
    e = np.exp(-np.abs(x))
    return np.asarray(np.where(x >= 0, 1.0, e) / (1.0 + e))


def _logsumexp(x: Array) -> Array:
    """log Σ exp(xᵢ) with the max shift: no overflow at any finite x."""
    top = float(x.max())
    return np.array([[top + np.log(np.exp(x - top).sum())]])


def _softmax(x: Array) -> Array:
    w = np.exp(x - x.max())
    return w / w.sum()


def _matmul(*xs: Array) -> Array:
    out = xs[0]
    for x in xs[1:]:
        out = out @ x
    return out


def _prod(*xs: Array) -> Array:
    out = xs[0]
    for x in xs[1:]:
        out = out * x
    return out


def _const(value: Fraction) -> Array:
    """A constant as a float; beyond the float range it is ±inf, as IEEE arithmetic says."""
    try:
        return np.array([[float(value)]])
    except OverflowError:
        return np.array([[np.inf if value > 0 else -np.inf]])


Dims = Callable[[Dim], int]
Rule = Callable[[Expr, list[Array], Dims], Array]

EVAL: dict[Op, Rule] = {
    Op.SYMBOL: lambda e, a, d: np.zeros(0),  # bound from the environment, never called
    Op.CONST: lambda e, a, d: _const(e.attr),
    Op.IDENTITY: lambda e, a, d: np.eye(d(e.attr)),
    Op.ONES: lambda e, a, d: np.ones((d(e.rows), d(e.cols))),
    Op.ZERO: lambda e, a, d: np.zeros((d(e.rows), d(e.cols))),
    Op.COMMUTATION: lambda e, a, d: _commutation(d(e.attr[0]), d(e.attr[1])),
    Op.ADD: lambda e, a, d: sum(a[1:], a[0]),
    Op.SCALE: lambda e, a, d: a[0][0, 0] * a[1],
    Op.MATMUL: lambda e, a, d: _matmul(*a),
    Op.TRANSPOSE: lambda e, a, d: a[0].T,
    Op.HADAMARD: lambda e, a, d: _prod(*a),
    Op.HDIV: lambda e, a, d: a[0] / a[1],
    Op.POW: lambda e, a, d: np.power(a[0], a[1][0, 0]),
    Op.KRON: lambda e, a, d: np.kron(a[0], a[1]),
    Op.BLOCK: lambda e, a, d: np.block([a[i * e.attr[1]:(i + 1) * e.attr[1]]
                                        for i in range(e.attr[0])]),
    Op.SLICE: lambda e, a, d: a[0][d(e.attr[0]):d(e.attr[1]), d(e.attr[2]):d(e.attr[3])],
    Op.TRACE: lambda e, a, d: np.array([[np.trace(a[0])]]),
    Op.DET: lambda e, a, d: np.array([[np.linalg.det(a[0])]]),
    Op.LOGDET: lambda e, a, d: _slogdet(a[0]),
    Op.INV: lambda e, a, d: np.linalg.inv(a[0]),
    Op.MATPOW: lambda e, a, d: np.linalg.matrix_power(a[0], e.attr),
    Op.DIAG: lambda e, a, d: np.diag(a[0]).reshape(-1, 1).copy(),
    Op.DIAGM: lambda e, a, d: np.diag(a[0][:, 0]),
    Op.VEC: lambda e, a, d: a[0].reshape(-1, 1, order="F"),
    Op.UNVEC: lambda e, a, d: a[0].reshape(d(e.attr[0]), d(e.attr[1]), order="F"),
    Op.SUM: lambda e, a, d: np.array([[a[0].sum()]]),
    Op.MEAN: lambda e, a, d: np.array([[a[0].mean()]]),
    Op.MAX: lambda e, a, d: np.maximum(a[0], a[1]),
    Op.MIN: lambda e, a, d: np.minimum(a[0], a[1]),
    Op.LOGSUMEXP: lambda e, a, d: _logsumexp(a[0]),
    Op.SOFTMAX: lambda e, a, d: _softmax(a[0]),
    Op.NORM: lambda e, a, d: np.array([[np.abs(a[0]).sum() if e.attr == "1"
                                        else np.sqrt((np.abs(a[0]) ** 2).sum())]]),
    Op.INF_NORM: lambda e, a, d: np.array([[np.abs(a[0]).max()]]),
    Op.EXP: lambda e, a, d: np.exp(a[0]),
    Op.LOG: lambda e, a, d: np.log(a[0]),
    Op.SIN: lambda e, a, d: np.sin(a[0]),
    Op.COS: lambda e, a, d: np.cos(a[0]),
    Op.TAN: lambda e, a, d: np.tan(a[0]),
    Op.TANH: lambda e, a, d: np.tanh(a[0]),
    Op.ARCSIN: lambda e, a, d: np.arcsin(a[0]),
    Op.ARCCOS: lambda e, a, d: np.arccos(a[0]),
    Op.ARCTAN: lambda e, a, d: np.arctan(a[0]),
    Op.SQRT: lambda e, a, d: np.sqrt(a[0]),
    Op.ABS: lambda e, a, d: np.abs(a[0]),
    # complex numbers
    Op.IMAG_UNIT: lambda e, a, d: np.array([[1j]]),
    Op.CONJ: lambda e, a, d: np.conj(a[0]),
    Op.REAL: lambda e, a, d: np.real(a[0]).copy(),
    Op.IMAG: lambda e, a, d: np.imag(a[0]).copy(),
    Op.ANGLE: lambda e, a, d: np.angle(a[0]),
    Op.SIGN: lambda e, a, d: np.sign(a[0]),
    Op.SIGMOID: lambda e, a, d: _sigmoid(a[0]),
    Op.RELU: lambda e, a, d: np.maximum(a[0], 0.0),
    Op.SOFTPLUS: lambda e, a, d: np.logaddexp(0.0, a[0]),
    Op.LOG1P: lambda e, a, d: np.log1p(a[0]),
    Op.EXPM1: lambda e, a, d: np.expm1(a[0]),
    Op.SINH: lambda e, a, d: np.sinh(a[0]),
    Op.COSH: lambda e, a, d: np.cosh(a[0]),
    Op.ARCSINH: lambda e, a, d: np.arcsinh(a[0]),
    # spectral functions and factorizations (linalg: NaN off their domains)
    Op.TRIL: lambda e, a, d: np.tril(a[0]),
    Op.EXPM: lambda e, a, d: linalg.expm(a[0]),
    Op.LOGM: lambda e, a, d: linalg.logm(a[0]),
    Op.SQRTM: lambda e, a, d: linalg.sqrtm(a[0]),
    Op.FRECHET: lambda e, a, d: linalg.frechet(e.attr, a[0], a[1]),
    Op.EIGVAL: lambda e, a, d: linalg.eigval(a[0], e.attr),
    Op.EIGVEC: lambda e, a, d: linalg.eigvec(a[0], e.attr),
    Op.SPECTRAL_NORM: lambda e, a, d: np.array([[np.linalg.norm(a[0], 2)]]),
    Op.NUCLEAR_NORM: lambda e, a, d: np.array([[np.linalg.norm(a[0], "nuc")]]),
    Op.POLAR: lambda e, a, d: linalg.polar(a[0]),
    Op.SVD_U1: lambda e, a, d: linalg.svd_u1(a[0]),
    Op.SVD_V1: lambda e, a, d: linalg.svd_v1(a[0]),
    Op.PINV: lambda e, a, d: np.linalg.pinv(a[0]),
    Op.ADJ: lambda e, a, d: linalg.adj(a[0]),
    Op.CHOL: lambda e, a, d: linalg.chol(a[0]),
}
assert ELEMENTWISE <= set(EVAL)


def numeric(value: Any) -> Array:
    """A user's value as a float array, or a complex one where it holds complex numbers."""
    arr = np.asarray(value)
    return arr.astype(complex if np.iscomplexobj(arr) else float)


def real_view(v: Array) -> Array:
    """A complex vector as the real vector [Re v; Im v] (a real one unchanged): the finite
    differences compare real numbers."""
    return np.concatenate([v.real, v.imag]) if np.iscomplexobj(v) else v


def to_internal(value: Any, shape: tuple[int, int]) -> Array:
    """A user's value (float, 1-D vector, 2-D matrix) as a 2-D float array of ``shape``
    (complex where the value is)."""
    try:
        arr = numeric(value)
    except (TypeError, ValueError) as err:
        raise MatdiffError(f"expected real numbers of shape {shape}, got "
                           f"{type(value).__name__} ({err})") from None
    if arr.size != shape[0] * shape[1]:
        raise MatdiffError(f"expected an array of shape {shape}, got {arr.shape}")
    return arr.reshape(shape)


def to_user(arr: Array, e: Expr) -> Any:
    """A 2-D result as the user sees it: a float for a scalar, 1-D for a column vector."""
    if not e.is_complex and np.iscomplexobj(arr):
        arr = arr.real                  # a real-valued node computed in complex arithmetic
    if e.is_scalar:
        return complex(arr[0, 0]) if np.iscomplexobj(arr) else float(arr[0, 0])
    if e.is_vector:
        return arr[:, 0].copy()
    return arr


def bind_dims(exprs: Sequence[Expr], env: Mapping[str, Any]) -> dict[str, int]:
    """Sizes of the dimension names, read off the input arrays."""
    sizes: dict[str, int] = {}
    for node in toposort(exprs):
        if node.op is not Op.SYMBOL or node.name not in env:
            continue
        try:
            arr = numeric(env[node.name])
        except (TypeError, ValueError):
            raise MatdiffError(f"the input {node.name} is not an array of real numbers") \
                from None
        full = arr.shape + (1,) * (2 - arr.ndim) if arr.ndim < 2 else arr.shape
        if node.is_vector and arr.ndim == 1:
            full = (arr.shape[0], 1)
        for dim, size in zip(node.shape, full, strict=False):
            names = dim.names
            if len(dim.terms) == 1 and len(names) == 1 and dim.terms[0][1] == 1:
                name = next(iter(names))
                if sizes.setdefault(name, size) != size:
                    raise MatdiffError(f"dimension {name} is {sizes[name]} in one input and "
                                       f"{size} in {node.name}")
    return sizes


def _dims_of(dims: Mapping[str, int]) -> Dims:
    def d(dim: Dim) -> int:
        v = dim.subs(dims).value
        if v is None:
            raise MatdiffError(f"the size {dim} is not determined by the inputs")
        return v
    return d


def _eval_node(node: Expr, args: list[Array], d: Dims, strict: bool) -> Array:
    """One EVAL step; a singular matrix is an error (``strict``) or NaN, and so is a NaN or
    infinity that SciPy refuses in an argument (``logm`` of a NaN at a point of another
    real branch: not a point of the domain)."""
    try:
        return EVAL[node.op](node, args, d)
    except np.linalg.LinAlgError:
        if strict:
            raise MatdiffError(f"{node} cannot be evaluated here: its matrix is singular") \
                from None
        return np.full((d(node.rows), d(node.cols)), np.nan)
    except ValueError:
        if strict or all(np.isfinite(a).all() for a in args):
            raise
        return np.full((d(node.rows), d(node.cols)), np.nan)
    except MemoryError:
        raise MatdiffError(f"out of memory evaluating {node}") from None


def node_values(roots: Sequence[Expr], env: Mapping[str, Any],
                sizes: Mapping[str, int] | None = None, strict: bool = True
                ) -> dict[Expr, Array]:
    """The value (a 2-D array) of every node of ``roots`` at the inputs ``env``; with
    ``strict=False`` a singular inverse is NaN instead of an error."""
    dims = dict(bind_dims(roots, env))
    dims.update(sizes or {})
    d = _dims_of(dims)
    order = toposort(roots)
    for node in order:
        d(node.rows), d(node.cols)
    need = points.estimate_bytes(roots, dims)
    if need > LIMIT_BYTES:
        raise MatdiffError(points.too_large(need, "this evaluation"))
    values: dict[Expr, Array] = {}
    forms, live = _stable_forms(order, roots)
    for node in order:
        quiet = not strict or node not in live   # only inside a stable form's original
        with np.errstate(all="ignore") if quiet else contextlib.nullcontext():
            if node.op is Op.SYMBOL:
                if node.name not in env:
                    raise MatdiffError(f"missing input '{node.name}'")
                values[node] = to_internal(env[node.name], (d(node.rows), d(node.cols)))
            elif node in forms:                      # log(1 + eᶻ) = softplus z, ...
                for part in toposort([forms[node]]):
                    if part not in values:
                        values[part] = _eval_node(part, [values[a] for a in part.args], d,
                                                  strict)
                values[node] = values[forms[node]]
            else:
                values[node] = _eval_node(node, [values[a] for a in node.args], d, strict)
    return values


def _stable_forms(order: list[Expr], roots: Sequence[Expr]
                  ) -> tuple[dict[Expr, Expr], set[Expr]]:
    """The stable forms (``stable.STABLE``) of the nodes of ``order``, and the nodes whose
    values are used: the others (``exp(z)`` of ``log(1 + exp(z))``) may overflow unseen."""
    forms = {n: f for n in order if (f := stable_form(n)) is not None}
    live = set(roots)
    for node in reversed(order):
        if node in live:
            live.update(toposort([forms[node]]) if node in forms else node.args)
    return forms, live


def evaluate(exprs: Expr | Sequence[Expr], env: Mapping[str, Any],
             sizes: Mapping[str, int] | None = None) -> Any:
    """Evaluate expressions at the inputs ``env`` (by symbol name) with the EVAL table.

    >>> from matdiff.expr import sym
    >>> x = sym("x", ("n",)); float(evaluate(x.T @ x, {"x": np.array([3.0, 4.0])}))
    25.0
    """
    roots: list[Expr] = [exprs] if isinstance(exprs, Expr) else list(exprs)
    values = node_values(roots, env, sizes)
    out = [to_user(values[r], r) for r in roots]
    return out[0] if isinstance(exprs, Expr) else out


def not_differentiable(exprs: Expr | Sequence[Expr], env: Mapping[str, Any],
                       sizes: Mapping[str, int] | None = None) -> str | None:
    """Why ``exprs`` are not differentiable at the inputs ``env`` (a kink of a node,
    ``points.hazards``: a repeated extreme eigenvalue, a zero singular value, the kink of
    ``abs``), or None.

    >>> from matdiff.expr import sym, eigval
    >>> S = sym("S", ("n", "n"))
    >>> not_differentiable(eigval(S, "min"), {"S": np.diag([1.0, 1.0, 3.0])})
    'a repeated extreme eigenvalue of S'
    """
    roots = [exprs] if isinstance(exprs, Expr) else list(exprs)
    values = node_values(roots, env, sizes, strict=False)
    found = [h for h in points.hazards(toposort(roots), values)
             if h.reason == "not differentiable"]
    return found[0].detail if found else None


# ----------------------------------------------------------------------------- plain differences


def fd_gradient(f: Expr, name: str, env: dict[str, Any], sizes: Mapping[str, int],
                h: float = 1e-6, symmetric: bool = False, diagonal: bool = False) -> Array:
    """Central finite differences of the scalar ``f`` with respect to input ``name``.

    For a ``symmetric`` variable the steps stay symmetric (``E_ij + E_ji``), and the result
    is the gradient in the space of symmetric matrices under ``<A, B> = tr(AᵀB)``: half the
    directional derivative off the diagonal, all of it on the diagonal. For a ``diagonal``
    one only the diagonal is stepped (the rest of the result is 0).
    """
    x0 = numeric(env[name]).copy()
    out = np.zeros_like(x0)
    units = (1.0, 1j) if np.iscomplexobj(x0) else (1.0,)   # ∂f/∂Re + i ∂f/∂Im

    def at(x: Array) -> float:
        return float(evaluate(f, {**env, name: x}, sizes))

    for idx in np.ndindex(x0.shape):
        if symmetric and idx[0] > idx[1] or diagonal and idx[0] != idx[1]:
            continue
        magnitude = cast(float, abs(x0[idx]))  # a full index: an np.float64, a float subclass
        step = h * max(1.0, magnitude)
        slope: Any = 0.0
        for unit in units:
            direction = np.zeros_like(x0)
            direction[idx] = unit
            if symmetric:
                direction[idx[::-1]] = unit
            slope += unit * (at(x0 + step * direction) - at(x0 - step * direction)) / (2 * step)
        if symmetric and idx[0] != idx[1]:
            out[idx] = out[idx[::-1]] = slope / 2
        else:
            out[idx] = slope
    return out


def vec_of(value: Any) -> Array:
    """Column-major vec of a user value (float, 1-D vector, 2-D matrix).

    >>> vec_of(np.array([[1.0, 2.0], [3.0, 4.0]])).tolist()
    [1.0, 3.0, 2.0, 4.0]
    """
    arr = numeric(value)
    return arr.reshape(-1, order="F") if arr.ndim == 2 else arr.reshape(-1)


def fd_jacobian(f: Expr, name: str, env: Mapping[str, Any], sizes: Mapping[str, int],
                h: float = 1e-6) -> Array:
    """Central differences of vec(f) with respect to vec(env[name]): the Jacobian
    ``d vec(f) / d vec(X)ᵀ``, column-major, shape (size f, size X)."""
    x0 = np.asarray(env[name], dtype=float)
    flat, cols = vec_of(x0), []
    for i in range(flat.size):
        step = h * max(1.0, abs(flat[i]))
        ends = []
        for sign in (1.0, -1.0):
            y = flat.copy()
            y[i] += sign * step
            x = y.reshape(x0.shape, order="F") if x0.ndim == 2 else y.reshape(x0.shape)
            ends.append(vec_of(evaluate(f, {**env, name: x}, sizes)))
        cols.append((ends[0] - ends[1]) / (2 * step))
    return np.stack(cols, axis=1)


def rel_error(a: Any, b: Any) -> float:
    """max |a - b| / max(|a|, |b|, tiny): a scale-free error between two arrays."""
    a, b = numeric(a), numeric(b)
    scale = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)),
                1e-8)
    return float(np.max(np.abs(a - b), initial=0.0)) / scale


# ----------------------------------------------------------------------------- claims, verdicts


@dataclass(frozen=True)
class Claim:
    """A derivative to check: how ``target`` changes when the variable ``name`` moves along
    a direction D. ``kind`` says how ``expr`` gives that change: ``"gradient"`` (a scalar
    target; ``sum(expr ⊙ D)``), ``"matrix"`` (``expr @ vec(D)``: a Jacobian or Hessian) or
    ``"direction"`` (``expr`` evaluated with the symbol ``direction`` set to D: a
    differential or a Hessian-vector product)."""

    name: str
    target: Expr
    expr: Expr
    kind: str = "gradient"
    direction: str | None = None


@dataclass
class Verdict:
    """One variable's verdict: ``status`` "ok", "mismatch" or "inconclusive"; ``error`` the
    max relative error where a comparison was made (None where none was); ``reason`` one of
    ``points.REASONS`` when inconclusive; ``detail`` a sentence."""

    status: str
    error: float | None = None
    reason: str = ""
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe: no NaN or infinity (None instead)."""
        err = self.error if self.error is not None and np.isfinite(self.error) else None
        return {"verdict": self.status, "ok": self.status == "ok", "max_rel_error": err,
                "reason": self.reason or None, "detail": self.detail or None}

    def line(self) -> str:
        if self.status == "inconclusive":
            return f"inconclusive here ({self.reason}): {self.detail}"
        err = f"max relative error {self.error:.1e}  " if self.error is not None else ""
        tail = f" ({self.detail})" if self.detail else ""
        return f"{err}{'OK' if self.status == 'ok' else 'MISMATCH'}{tail}"


@dataclass
class CheckReport:
    """Result of a finite-difference check: a ``Verdict`` per variable (``verdicts``) and,
    as before, the max relative error per variable (``errors``; NaN where nothing was
    compared)."""

    errors: dict[str, float] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    tolerance: float = 1e-6
    value: float = float("nan")
    notes: list[str] = field(default_factory=list)
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    points: int = 0

    @property
    def max_rel_error(self) -> float:
        return max(self.errors.values(), default=0.0)

    @property
    def ok(self) -> bool:
        """Every variable checked and OK."""
        return all(v.status == "ok" for v in self.verdicts.values())

    @property
    def failed(self) -> bool:
        """Some variable's derivative disagrees with finite differences (a MISMATCH)."""
        return any(v.status == "mismatch" for v in self.verdicts.values())

    @property
    def inconclusive(self) -> dict[str, str]:
        """The variables not decided, with their reasons."""
        return {k: v.reason for k, v in self.verdicts.items() if v.status == "inconclusive"}

    def __str__(self) -> str:
        sizes = ", ".join(f"{k}={v}" for k, v in self.sizes.items())
        verdict = "MISMATCH" if self.failed else "OK" if self.ok else "INCONCLUSIVE"
        rows = [f"  d/d{k}: {v.line()}" for k, v in self.verdicts.items()]
        if self.verdicts and len(self.inconclusive) == len(self.verdicts):
            rows.append("  nothing was checked")
        return "\n".join([f"finite-difference check ({sizes}): {verdict}", *rows,
                          *self.notes])


# ----------------------------------------------------------------------------- differences


class _Point:
    """The inputs of one random point and the value of every node there; ``moved`` gives a
    target's value with one input changed, recomputing only the nodes that depend on it."""

    def __init__(self, roots: Sequence[Expr], env: dict[str, Any], dims: dict[str, int]):
        self.env, self.dims, self.order = env, dims, toposort(roots)
        self.d = _dims_of(dims)
        with np.errstate(all="ignore"):
            self.values = node_values(roots, env, dims, strict=False)
        self.hazards = points.hazards(self.order, self.values)
        self._dependent: dict[str, list[Expr]] = {}

    def dependent(self, name: str) -> list[Expr]:
        if name not in self._dependent:
            dep: set[Expr] = set()
            for node in self.order:
                if node.op is Op.SYMBOL and node.attr[0] == name or \
                        any(a in dep for a in node.args):
                    dep.add(node)
            self._dependent[name] = [n for n in self.order if n in dep]
        return self._dependent[name]

    def moved(self, target: Expr, name: str, x: Array) -> Array:
        new: dict[Expr, Array] = {}
        for node in self.dependent(name):
            if node.op is Op.SYMBOL:
                new[node] = x
            else:
                args = [new.get(a, self.values[a]) for a in node.args]
                new[node] = _eval_node(node, args, self.d, strict=False)
        return new.get(target, self.values[target])


@dataclass
class _Estimate:
    value: Array        # the derivative along the direction, vec'd
    error: float        # estimated absolute error: truncation and rounding
    noise: float        # the rounding part alone


Phi = Callable[[float], Array]


def _noise(phi: Phi, step: float = 1e-9, points: int = 9) -> float:
    """The rounding noise of the target along a direction, as ECnoise estimates it (Moré
    and Wild, 2011): the k-th differences of ``points`` values ``step`` apart hold only
    noise, whose level is sqrt(γ_k mean((Δ^k f)²)), γ_k = (k!)² / (2k)!; the largest
    estimate over k = 3..6, and at least eps |f|."""
    values = np.array([phi(step * (i - points // 2)) for i in range(points)])
    if not np.all(np.isfinite(values)):
        return float("inf")
    levels = [EPS * float(np.max(np.abs(values), initial=0.0))]
    table = values
    for k in range(1, 7):
        table = np.diff(table, axis=0)
        gamma = math.factorial(k) ** 2 / math.factorial(2 * k)
        if k >= 3:
            levels.append(float(np.max(np.sqrt(gamma * np.mean(table ** 2, axis=0)))))
    return max(levels)


def _differences(phi: Phi, steps: Sequence[float]) -> list[Array]:
    """Central differences ``c(h) = (φ(h) - φ(-h)) / 2h``."""
    return [(phi(h) - phi(-h)) / (2 * h) for h in steps]


def _fast(phi: Phi, sigma: float, h: float = 1e-3) -> _Estimate:
    """Richardson from steps h, h/2 and from h/2, h/4; its error is estimated as the gap
    between the two, plus the rounding noise (``sigma``: that of the target's values)."""
    c1, c2, c3 = _differences(phi, (h, h / 2, h / 4))
    noise = 2 * sigma / (h / 4)
    r1, r2 = (4 * c2 - c1) / 3, (4 * c3 - c2) / 3
    with np.errstate(all="ignore"):
        gap = float(np.max(np.abs(r1 - r2), initial=0.0))
    return _Estimate(r2, gap + 3 * noise, 3 * noise)


def _scan(phi: Phi, sigma: float, start: float = 0.1, levels: int = 28) -> list[_Estimate]:
    """Steps start, start/2, ... (to about 1e-9): the Richardson value at each, its error
    the larger gap to its two neighbours plus the noise, best first (Ridders' idea). A
    periodic function can alias at every step above some size, so the caller accepts any
    estimate that is reliable and agrees, not only the best one."""
    steps = [start / 2 ** j for j in range(levels)]
    c = _differences(phi, steps)
    with np.errstate(all="ignore"):
        r = [(4 * c[j + 1] - c[j]) / 3 for j in range(levels - 1)]
        gaps = [float(np.max(np.abs(r[j] - r[j + 1]), initial=0.0)) for j in range(levels - 2)]
    out = []
    for j in range(1, levels - 2):
        noise = 2 * sigma / steps[j + 1]
        error = max(gaps[j - 1], gaps[j]) + noise
        if np.isfinite(error) and np.all(np.isfinite(r[j])):
            out.append(_Estimate(r[j], error, noise))
    return sorted(out, key=lambda e: e.error) or [_Estimate(r[-1], np.inf, np.inf)]


def _judge(claimed: Array, est: _Estimate, scale: float, tolerance: float,
           sym_error: float) -> str:
    """'ok', 'bad' (a clear disagreement) or 'unsure' (the differences are not reliable)."""
    if not np.isfinite(est.error) or not np.all(np.isfinite(est.value)):
        return "unsure"
    resolvable = est.error <= max(1e-4 * scale, 30 * est.noise)
    if not np.all(np.isfinite(claimed)):
        return "bad" if resolvable else "unsure"
    gap = float(np.max(np.abs(claimed - est.value), initial=0.0))
    if gap <= tolerance * scale + 3 * est.error + sym_error:
        # agreement within an error bound as large as the derivative confirms nothing
        confirmed = est.error <= 1e-2 * scale or gap <= tolerance * scale + sym_error
        return "ok" if resolvable and confirmed else "unsure"
    return "bad" if resolvable else "unsure"


# ----------------------------------------------------------------------------- one point


_MAX_COORDINATES = 40


def _directions(x0: Array, kind: str, rng: np.random.Generator) -> list[Array]:
    """Directions in the variable's space (symmetric, diagonal or any), each scaled by the
    size of the entries it moves: every coordinate, or 16 random ones for a large variable."""
    r, c = x0.shape
    if kind in ("symmetric", "spd"):
        coords = [(i, j) for i in range(r) for j in range(i, c)]
    elif kind == "diagonal":
        coords = [(i, i) for i in range(min(r, c))]
    else:
        coords = [(i, j) for j in range(c) for i in range(r)]
    units = (1.0, 1j) if np.iscomplexobj(x0) else (1.0,)   # complex: real and imaginary
    if len(coords) * len(units) <= _MAX_COORDINATES:
        out = []
        for i, j in coords:
            for unit in units:
                d = np.zeros_like(x0)
                d[i, j] = unit * max(1.0, abs(x0[i, j]))
                if kind in ("symmetric", "spd"):
                    d[j, i] = d[i, j]                              # E_ij + E_ji
                out.append(d)
        return out
    return [_random_direction(x0, kind, rng) for _ in range(16)]


def _random_direction(x0: Array, kind: str, rng: np.random.Generator) -> Array:
    d = rng.standard_normal(x0.shape) * max(1.0, float(np.sqrt(np.mean(np.abs(x0) ** 2))))
    if np.iscomplexobj(x0):
        d = d + 1j * rng.standard_normal(x0.shape) * max(1.0, float(np.sqrt(np.mean(
            np.abs(x0) ** 2))))
    if kind in ("symmetric", "spd"):
        return (d + d.T) / 2
    return np.diag(np.diag(d)) if kind == "diagonal" else d


@dataclass
class _Outcome:
    status: str                   # "ok" | "mismatch" | "unsure"
    error: float | None = None
    reason: str = ""
    detail: str = ""


def _claimed(claim: Claim, env: Mapping[str, Any], dims: Mapping[str, int],
             values: Mapping[Expr, Array] | None = None) -> Callable[[Array], Array]:
    """The claimed change of the target along D at the inputs ``env``, as a vec."""
    if claim.kind in ("gradient", "matrix"):
        m = values[claim.expr] if values is not None else \
            node_values([claim.expr], env, dims, strict=False)[claim.expr]
        if claim.kind == "gradient":               # df = Re sum(conj(G) ⊙ D)
            return lambda d: np.array([float(np.real(np.sum(np.conj(m) * d)))])
        return lambda d: real_view(m @ d.reshape(-1, order="F"))

    def along(d: Array) -> Array:
        assert claim.direction is not None
        at = {**env, claim.direction: d}
        return real_view(vec_of(node_values([claim.expr], at, dims, strict=False)[claim.expr]))
    return along


def _jitter(value: Any, rng: np.random.Generator) -> Any:
    """An input changed by a relative 1e-12 (random signs): enough to draw the rounding
    afresh, too little to change a well-conditioned value beyond 1e-11 of itself."""
    arr = numeric(value)
    out = arr * (1 + 1e-12 * rng.choice([-1.0, 1.0], arr.shape))
    return (complex(out) if np.iscomplexobj(out) else float(out)) if arr.ndim == 0 else out


def _spread(claim: Claim, point: _Point, directions: list[Array], said: list[Array],
            rng: np.random.Generator, copies: int = 3) -> list[float]:
    """How much the claimed values move when every input is jittered (``_jitter``): their
    rounding error, cancellation and ill-conditioning included. A claimed value below its
    spread is zero to within rounding."""
    out = [0.0] * len(directions)
    for _ in range(copies):
        env = {k: _jitter(v, rng) for k, v in point.env.items()}
        claimed = _claimed(claim, env, point.dims)
        for k, (d, s) in enumerate(zip(directions, said, strict=True)):
            gap = np.max(np.abs(claimed(d) - s), initial=0.0)
            out[k] = max(out[k], float(gap) if np.isfinite(gap) else 0.0)
    return out


@dataclass
class _Hazards:
    moving: list[Hazard]     # in the target, depending on the variable
    still: list[Hazard]      # in the target, not depending on it
    claim: list[Hazard]      # singular or ill-conditioned matrices of the claim alone
    kappa: float             # the largest condition number among moving and claim ones


def _relevant(point: _Point, claim: Claim) -> _Hazards:
    """The hazards at the point that matter for this claim."""
    in_target = set(toposort([claim.target]))
    moving = in_target & set(point.dependent(claim.name))
    own = set(toposort([claim.expr])) - in_target
    in_claim = [h for h in point.hazards if h.node in own and
                h.reason in ("singular", "ill-conditioned", "")]
    found = [h for h in point.hazards if h.node in moving]
    kappa = max((h.condition for h in found + in_claim), default=1.0)
    return _Hazards([h for h in found if h.reason],
                    [h for h in point.hazards if h.node in in_target - moving and h.reason],
                    [h for h in in_claim if h.reason], kappa)


def _unsure(found: Sequence[Hazard], fallback: str) -> _Outcome:
    for reason in points.REASONS:
        for h in found:
            if h.reason == reason:
                return _Outcome("unsure", None, reason, h.detail)
    return _Outcome("unsure", None, "not differentiable", fallback)


def _compare(claim: Claim, point: _Point, tolerance: float, rng: np.random.Generator
             ) -> _Outcome:
    """The claim against finite differences at one point."""
    hazards = _relevant(point, claim)
    kappa = hazards.kappa
    if not np.all(np.isfinite(point.values[claim.target])):
        return _unsure(hazards.moving + hazards.still, "the function is not finite here")
    x = next((n for n in point.order if n.op is Op.SYMBOL and n.attr[0] == claim.name), None)
    if x is None:
        raise MatdiffError(f"the check needs the variable {claim.name} among its expressions "
                           "(pass it, or the function, in extra)")
    x0, kind = point.values[x], points.structure(x)
    claimed = _claimed(claim, point.env, point.dims, point.values)
    directions = _directions(x0, kind, rng)
    with np.errstate(all="ignore"):
        said = [claimed(d) for d in directions]
        spread = _spread(claim, point, directions, said, rng)
        phis = [_phi(point, claim, x0, d) for d in directions]
        sigma = _noise(_phi(point, claim, x0, _random_direction(x0, kind, rng)))
        estimates = [_fast(phi, sigma) for phi in phis]
    finite = [float(np.max(np.abs(s), initial=0.0)) for s in said if np.all(np.isfinite(s))]
    scale = max(finite, default=0.0)
    sym_error = [64 * EPS * (1 + kappa) * scale + 3 * sp for sp in spread]
    verdicts = [_judge(s, e, max(scale, _size(e)), tolerance, sym_error[k])
                for k, (s, e) in enumerate(zip(said, estimates, strict=True))]
    for k, verdict in enumerate(verdicts):
        if verdict != "ok":
            with np.errstate(all="ignore"):
                scanned = _scan(phis[k], sigma)
            judged = [(_judge(said[k], e, max(scale, _size(e)), tolerance, sym_error[k]), e)
                      for e in scanned]
            verdicts[k], estimates[k] = next(((v, e) for v, e in judged if v == "ok"),
                                             judged[0])
    scale = max([scale] + [_size(e) for e, v in zip(estimates, verdicts, strict=True)
                           if v != "unsure"])
    error = _max_gap(said, estimates, verdicts) / scale if scale > 0 else \
        _max_gap(said, estimates, verdicts)
    serious = [h for h in hazards.moving + hazards.claim if h.serious] + \
        [h for h in hazards.still if h.reason in ("nan", "overflow")]   # off the domain
    if all(v == "ok" for v in verdicts):
        noise = max(30 * max(e.noise for e in estimates), 3 * max(spread))
        if scale > noise or scale == 0:     # scale 0: f does not move, the claim is 0
            return _Outcome("ok", error)
        if serious:                         # noise around a singular point says nothing
            return _unsure(serious, "")
        f_size = float(np.max(np.abs(point.values[claim.target]), initial=1.0))
        if scale <= 3 * max(spread) or noise <= 1e-6 * max(1.0, f_size):
            # the claim is its own rounding, or f is flat here to a millionth of its size
            return _Outcome("ok", _max_gap(said, estimates, verdicts) / max(noise, 1e-300),
                            detail="zero to within rounding here")
        return _Outcome("unsure", None, "ill-conditioned",
                        f"the rounding noise of the differences ({noise:.1e}) exceeds the "
                        f"derivative ({scale:.1e}): they cannot resolve it here")
    if "bad" in verdicts:
        if serious:                         # the differences cannot be trusted here
            return _unsure(serious, "")
        k = verdicts.index("bad")
        detail = "the derivative is not finite here, although f is smooth" \
            if not np.all(np.isfinite(said[k])) else ""
        return _Outcome("mismatch", error if np.isfinite(error) else None, detail=detail)
    return _unsure(hazards.moving + hazards.claim,
                   "the finite differences do not settle at any step here")


def _phi(point: _Point, claim: Claim, x0: Array, d: Array) -> Phi:
    if claim.target.is_complex:
        return lambda t: real_view(vec_of(point.moved(claim.target, claim.name, x0 + t * d)))
    return lambda t: np.real(vec_of(point.moved(claim.target, claim.name, x0 + t * d)))


def _size(e: _Estimate) -> float:
    return float(np.max(np.abs(e.value), initial=0.0)) if np.all(np.isfinite(e.value)) else 0.0


def _max_gap(said: list[Array], estimates: list[_Estimate], verdicts: list[str]) -> float:
    gaps = [float(np.max(np.abs(s - e.value), initial=0.0))
            for s, e, v in zip(said, estimates, verdicts, strict=True) if v != "unsure"]
    return max(gaps, default=float("nan"))


# ----------------------------------------------------------------------------- points


def _combine(outcomes: list[_Outcome]) -> Verdict:
    """A mismatch at any point is a mismatch; otherwise OK at some point is OK; otherwise
    inconclusive, with the reason of the first point."""
    for o in outcomes:
        if o.status == "mismatch":
            return Verdict("mismatch", o.error, "", o.detail)
    for o in outcomes:
        if o.status == "ok":
            return Verdict("ok", o.error, "", o.detail)
    if not outcomes:
        return Verdict("inconclusive", None, "nan", "no point where the function is finite "
                                                    "was found")
    return Verdict("inconclusive", None, outcomes[0].reason, outcomes[0].detail)


def _budget(roots: Sequence[Expr], dims: dict[str, int], claims: int) -> str:
    """Why the check cannot run at these sizes ('' when it can)."""
    need = points.estimate_bytes(roots, dims)
    if need > LIMIT_BYTES:
        return points.too_large(need, "evaluating the expression at these sizes")
    flops = points.estimate_flops(roots, dims)
    if flops * claims * 4 * _MAX_COORDINATES > 5e10:
        return (f"one evaluation takes about {flops:.1e} floating-point operations; the "
                "finite differences would take minutes at these sizes")
    return ""


def _all(claims: Iterable[str], reason: str, detail: str) -> dict[str, Verdict]:
    return {k: Verdict("inconclusive", None, reason, detail) for k in claims}


def _validate(key: str, claim: Claim) -> None:
    """The claimed expression has the shape its kind needs."""
    x = next((n for n in toposort([claim.target]) if n.op is Op.SYMBOL
              and n.attr[0] == claim.name), None)
    if claim.kind == "gradient" and x is not None and claim.expr.shape != x.shape:
        raise MatdiffError(f"{key}: the gradient must have the shape of {claim.name}")
    if claim.kind == "matrix" and x is not None and claim.expr.shape != (
            claim.target.rows * claim.target.cols, x.rows * x.cols):
        raise MatdiffError(f"{key}: the matrix must be (size of f) × (size of {claim.name})")
    if claim.kind == "direction" and claim.direction is None:
        raise MatdiffError(f"{key}: a directional claim needs the direction's name")
    if claim.kind not in ("gradient", "matrix", "direction"):
        raise MatdiffError(f"{key}: unknown kind of claim {claim.kind!r}")


def check_claims(claims: Mapping[str, Claim], seed: int = 0, tolerance: float = 1e-6,
                 sizes: Mapping[str, int] | None = None, tries: int = 5,
                 extra: Sequence[Expr] = ()) -> CheckReport:
    """Check each claim at up to ``tries`` random points (and as many points with other
    signs where a power or a division has a real branch there), until each has a verdict.

    >>> from matdiff.expr import sym
    >>> x = sym("x", ("n",)); f = x.T @ x
    >>> check_claims({"x": Claim("x", f, x + x)}).verdicts["x"].status
    'ok'
    """
    for key, claim in claims.items():
        _validate(key, claim)
    report = CheckReport(tolerance=tolerance)
    roots = [*{c.target: None for c in claims.values()}, *(c.expr for c in claims.values()),
             *extra]
    dims = points.choose_sizes(roots, np.random.default_rng(seed), sizes)
    report.sizes = dims
    targets = list({c.target: None for c in claims.values()})
    problems = points.shape_problems(targets, dims) or \
        list(dict.fromkeys(points.shape_problems(roots, dims)))
    why = _budget(roots, dims, len(claims)) if not problems else ""
    if problems or why:
        report.verdicts = _all(claims, "singular by shape" if problems else "too large",
                               "; ".join(problems) or why)
    else:
        _run_points(report, claims, roots, seed, tries)
    report.errors = {k: v.error if v.error is not None else float("nan")
                     for k, v in report.verdicts.items()}
    return report


_BRANCH_POINTS = 2


def _run_points(report: CheckReport, claims: Mapping[str, Claim], roots: list[Expr],
                seed: int, tries: int) -> None:
    """Draw points and compare until every claim is decided; where a power or a division
    has other real branches (negative bases), also at ``_BRANCH_POINTS`` points drawn with
    random signs where the function is finite."""
    outcomes: dict[str, list[_Outcome]] = {k: [] for k in claims}
    branchy = points.has_branches(roots)
    branches = {k: 0 if branchy else _BRANCH_POINTS for k in claims}
    rng = np.random.default_rng(seed + 1)
    for attempt in range(2 * tries if branchy else tries):
        signs = branchy and attempt % 2 == 1
        todo = [k for k in claims if (branches[k] < _BRANCH_POINTS if signs else
                                      all(o.status == "unsure" for o in outcomes[k]))]
        if not todo:
            if all(n >= _BRANCH_POINTS for n in branches.values()) and \
                    all(any(o.status != "unsure" for o in v) for v in outcomes.values()):
                break
            continue
        env, _ = random_inputs(roots, seed=seed + attempt, sizes=report.sizes, signs=signs)
        point = _Point(roots, env, report.sizes)
        report.points += 1
        first = claims[todo[0]].target
        if math.isnan(report.value) and not signs and first.is_scalar and \
                np.isfinite(point.values[first][0, 0]):
            report.value = float(np.real(point.values[first][0, 0]))
        for k in todo:
            outcome = _compare(claims[k], point, report.tolerance, rng)
            if signs and outcome.status == "unsure":
                continue                                   # not a point of a real branch
            outcomes[k].append(outcome)
            branches[k] += signs
    for k in claims:
        report.verdicts[k] = _combine(outcomes[k])


def check_gradients(f: Expr, grads: Mapping[str, Expr], seed: int = 0,
                    tolerance: float = 1e-6, sizes: Mapping[str, int] | None = None,
                    tries: int = 5, extra: Sequence[Expr] = ()) -> CheckReport:
    """Compare symbolic gradients with finite differences at random points; ``extra`` are
    symbols that ``f`` does not use (their gradients are zero)."""
    return check_claims({name: Claim(name, f, g) for name, g in grads.items()}, seed=seed,
                        tolerance=tolerance, sizes=sizes, tries=tries, extra=extra)


def check(f: Expr, wrt: str | Sequence[str], grads: Mapping[str, Expr] | None = None,
          seed: int = 0, tolerance: float = 1e-6, raise_on_failure: bool = True,
          sizes: Mapping[str, int] | None = None, extra: Sequence[Expr] = ()
          ) -> CheckReport:
    """Check gradients (``grads``, or those of the ``diff`` stage passed in) of ``f``;
    raises ``MatdiffError`` on a mismatch (not when the check is inconclusive)."""
    names = [wrt] if isinstance(wrt, str) else list(wrt)
    if grads is None:
        raise MatdiffError("check needs the gradients to compare")
    known = {*free_symbols(f), *(e.attr[0] for e in extra if e.op is Op.SYMBOL)}
    missing = [n for n in names if n not in known]
    if missing:
        raise MatdiffError(f"'{missing[0]}' does not occur in the expression")
    report = check_gradients(f, {n: grads[n] for n in names}, seed=seed, tolerance=tolerance,
                             sizes=sizes, extra=extra)
    if raise_on_failure and report.failed:
        raise MatdiffError(f"the gradient does not match finite differences:\n{report}")
    return report
