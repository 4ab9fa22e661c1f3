"""Numerical verification: a reference NumPy evaluator and finite-difference checks.

``evaluate`` interprets an ``Expr`` directly with NumPy (the ``EVAL`` table, one plain
formula per Op): it is the oracle the compiled code and the symbolic derivatives are
compared with. ``check(f, wrt)`` draws random inputs of the inferred shapes (each dimension
name a small random size; square matrices well conditioned; entries positive where
``log``/``sqrt`` need it) and compares the symbolic gradient with central finite
differences. It returns a ``CheckReport`` and raises ``MatdiffError`` when the error is over
the tolerance.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from . import linalg
from .expr import ELEMENTWISE, Dim, Expr, MatdiffError, Op, free_symbols, toposort

__all__ = ["EVAL", "evaluate", "evaluate_all", "random_inputs", "check", "CheckReport",
           "bind_dims", "to_user", "to_internal", "KINKS", "not_differentiable"]

Array = np.ndarray


def _commutation(m: int, n: int) -> Array:
    """K(m, n) with K vec(X) = vec(Xᵀ) for X m×n (column-major vec)."""
    k = np.zeros((m * n, m * n))
    for i in range(m):
        for j in range(n):
            k[i * n + j, j * m + i] = 1.0
    return k


def _slogdet(x: Array) -> Array:
    sign, logabs = np.linalg.slogdet(x)
    return np.array([[logabs if sign > 0 else np.nan]])


def _sigmoid(x: Array) -> Array:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


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


Dims = Callable[[Dim], int]
Rule = Callable[[Expr, list[Array], Dims], Array]

EVAL: dict[Op, Rule] = {
    Op.SYMBOL: lambda e, a, d: np.zeros(0),  # bound from the environment, never called
    Op.CONST: lambda e, a, d: np.array([[float(e.attr)]]),
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
    Op.TRIL: lambda e, a, d: np.tril(a[0]),
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
    Op.NORM: lambda e, a, d: np.array([[np.abs(a[0]).sum() if e.attr == "1"
                                        else np.sqrt((a[0] ** 2).sum())]]),
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
    Op.SIGN: lambda e, a, d: np.sign(a[0]),
    Op.SIGMOID: lambda e, a, d: _sigmoid(a[0]),
    Op.RELU: lambda e, a, d: np.maximum(a[0], 0.0),
}
assert ELEMENTWISE <= set(EVAL)


def to_internal(value: Any, shape: tuple[int, int]) -> Array:
    """A user's value (float, 1-D vector, 2-D matrix) as a 2-D float array of ``shape``."""
    arr = np.asarray(value, dtype=float)
    if arr.size != shape[0] * shape[1]:
        raise MatdiffError(f"expected an array of shape {shape}, got {arr.shape}")
    return arr.reshape(shape)


def to_user(arr: Array, e: Expr) -> Any:
    """A 2-D result as the user sees it: a float for a scalar, 1-D for a column vector."""
    if e.is_scalar:
        return float(arr[0, 0])
    if e.is_vector:
        return arr[:, 0].copy()
    return arr


def bind_dims(exprs: Sequence[Expr], env: Mapping[str, Any]) -> dict[str, int]:
    """Sizes of the dimension names, read off the input arrays."""
    sizes: dict[str, int] = {}
    for node in toposort(exprs):
        if node.op is not Op.SYMBOL or node.name not in env:
            continue
        arr = np.asarray(env[node.name])
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


def evaluate(exprs: Expr | Sequence[Expr], env: Mapping[str, Any],
             sizes: Mapping[str, int] | None = None) -> Any:
    """Evaluate expressions at the inputs ``env`` (by symbol name) with the EVAL table.

    >>> from matdiff.expr import sym
    >>> x = sym("x", ("n",)); float(evaluate(x.T @ x, {"x": np.array([3.0, 4.0])}))
    25.0
    """
    single = isinstance(exprs, Expr)
    roots: list[Expr] = [exprs] if isinstance(exprs, Expr) else list(exprs)
    values = evaluate_all(roots, env, sizes)
    out = [to_user(values[r], r) for r in roots]
    return out[0] if single else out


def evaluate_all(roots: Sequence[Expr], env: Mapping[str, Any],
                 sizes: Mapping[str, int] | None = None) -> dict[Expr, Array]:
    """The value (a 2-D array) of every node of ``roots`` at the inputs ``env``."""
    dims = dict(bind_dims(roots, env))
    dims.update(sizes or {})

    def d(dim: Dim) -> int:
        v = dim.subs(dims).value
        if v is None:
            raise MatdiffError(f"the size {dim} is not determined by the inputs")
        return v

    values: dict[Expr, Array] = {}
    for node in toposort(roots):
        if node.op is Op.SYMBOL:
            if node.name not in env:
                raise MatdiffError(f"missing input '{node.name}'")
            values[node] = to_internal(env[node.name], (d(node.rows), d(node.cols)))
        else:
            values[node] = EVAL[node.op](node, [values[a] for a in node.args], d)
    return values


# ----------------------------------------------------------------------------- kinks

Kink = tuple[str, Callable[[Expr, Array], bool]]
_REPEATED_EIGENVALUE: Kink = ("a repeated extreme eigenvalue",
                              lambda e, x: linalg.eigen_gap(x, e.attr) < linalg.GAP)
_REPEATED_SINGULAR_VALUE: Kink = ("a repeated largest singular value",
                                  lambda e, x: linalg.singular_gap(x) < linalg.GAP)
_RANK_DEFICIENT: Kink = ("a zero singular value (rank deficient)",
                         lambda e, x: linalg.rank_margin(x) < linalg.GAP)
_BRANCH_CUT: Kink = ("an eigenvalue on the branch cut (-inf, 0]",
                     lambda e, x: linalg.spectral_cut(x))

# Where an Op's argument makes it non-differentiable (or outside the domain of its
# derivative): a check draws another point there, and never compares.
KINKS: dict[Op, Kink] = {
    Op.EIGVAL: _REPEATED_EIGENVALUE, Op.EIGVEC: _REPEATED_EIGENVALUE,
    Op.SPECTRAL_NORM: _REPEATED_SINGULAR_VALUE, Op.SVD_U1: _REPEATED_SINGULAR_VALUE,
    Op.SVD_V1: _REPEATED_SINGULAR_VALUE,
    Op.NUCLEAR_NORM: _RANK_DEFICIENT, Op.POLAR: _RANK_DEFICIENT, Op.PINV: _RANK_DEFICIENT,
    Op.ADJ: _RANK_DEFICIENT,   # the derivative of adj is written with X⁻¹
    Op.LOGM: _BRANCH_CUT, Op.SQRTM: _BRANCH_CUT,
    Op.FRECHET: (_BRANCH_CUT[0], lambda e, x: e.attr != "expm" and linalg.spectral_cut(x)),
}


def not_differentiable(exprs: Expr | Sequence[Expr], env: Mapping[str, Any],
                       sizes: Mapping[str, int] | None = None) -> str | None:
    """Why ``exprs`` are not differentiable at the inputs ``env`` (a node's argument on a
    kink of ``KINKS``), or None.

    >>> from matdiff.expr import sym, eigval
    >>> S = sym("S", ("n", "n"))
    >>> not_differentiable(eigval(S, "min"), {"S": np.diag([1.0, 1.0, 3.0])})
    'a repeated extreme eigenvalue of S'
    """
    roots = [exprs] if isinstance(exprs, Expr) else list(exprs)
    nodes = [n for n in toposort(roots) if n.op in KINKS]
    if not nodes:
        return None
    with np.errstate(all="ignore"):
        values = evaluate_all(roots, env, sizes)
        for n in nodes:
            x = values[n.args[0]]
            what, at_kink = KINKS[n.op]
            if np.all(np.isfinite(x)) and at_kink(n, x):
                return f"{what} of {n.args[0]}"
    return None


# ----------------------------------------------------------------------------- random inputs


def _needs(e: Expr) -> tuple[set[str], set[str], set[str], set[str]]:
    """Symbols under log/sqrt/./ (drawn positive), under inv/det/logdet/adj and the principal
    logm/sqrtm (well conditioned, near 1.5 I: a spectrum off the branch cut), under
    arcsin/arccos (drawn small) and square ones under chol (symmetric positive definite)."""
    positive: set[str] = set()
    invertible: set[str] = set()
    small: set[str] = set()
    spd: set[str] = set()
    for node in toposort([e]):
        target = None
        if node.op in (Op.LOG, Op.SQRT, Op.POW) or node.op is Op.HDIV:
            target = positive
        elif node.op in (Op.INV, Op.DET, Op.LOGDET, Op.MATPOW, Op.ADJ, Op.LOGM, Op.SQRTM) \
                or node.op is Op.FRECHET and node.attr != "expm":
            target = invertible
        elif node.op in (Op.ARCSIN, Op.ARCCOS):
            target = small
        elif node.op is Op.CHOL:
            target = spd
        if target is not None:
            target.update(n.name for n in toposort(node.args) if n.op is Op.SYMBOL)
    return positive, invertible, small, spd


def random_inputs(exprs: Expr | Sequence[Expr], seed: int = 0,
                  sizes: Mapping[str, int] | None = None) -> tuple[dict[str, Any], dict[str, int]]:
    """Random inputs for the symbols of ``exprs`` and random sizes for its dimension names.

    >>> from matdiff.expr import sym
    >>> env, sizes = random_inputs(sym("A", ("m", "n")), seed=1)
    >>> env["A"].shape == (sizes["m"], sizes["n"])
    True
    """
    roots = [exprs] if isinstance(exprs, Expr) else list(exprs)
    rng = np.random.default_rng(seed)
    names = sorted({v for r in toposort(roots) for d in r.shape + _attr_dims(r)
                    for v in d.names})
    dims = {n: int(rng.integers(2, 5)) for n in names}
    dims.update(sizes or {})
    positive, invertible, small, spd = set(), set(), set(), set()
    for root in roots:
        p, i, s, d = _needs(root)
        positive |= p
        invertible |= i
        small |= s
        spd |= d
    env: dict[str, Any] = {}
    for node in toposort(roots):
        if node.op is not Op.SYMBOL:
            continue
        r, c = (d.subs(dims).value for d in node.shape)
        assert r is not None and c is not None
        name = node.name
        if node.symmetric or name in spd and r == c:
            a = rng.standard_normal((r, r)) * 0.3
            x = a @ a.T + r * np.eye(r) * 0.5 + np.eye(r)
        elif name in invertible and r == c:
            x = np.eye(r) * 1.5 + rng.standard_normal((r, c)) * 0.25
        elif name in small:                  # inside (-1, 1), and positive if need be
            x = rng.uniform(0.1, 0.3, (r, c)) if name in positive else \
                rng.uniform(-0.3, 0.3, (r, c))
        elif name in positive or name in invertible:
            x = rng.uniform(0.5, 1.5, (r, c))
        else:
            x = rng.standard_normal((r, c))
        env[name] = to_user(x, node)
    return env, dims


def _attr_dims(e: Expr) -> tuple[Dim, ...]:
    if isinstance(e.attr, Dim):
        return (e.attr,)
    if isinstance(e.attr, tuple):
        return tuple(x for x in e.attr if isinstance(x, Dim)) + tuple(
            d for x in e.attr if isinstance(x, tuple) for d in x if isinstance(d, Dim))
    return ()


# ----------------------------------------------------------------------------- the check


@dataclass
class CheckReport:
    """Result of a finite-difference check: max relative error per variable."""

    errors: dict[str, float] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    tolerance: float = 1e-6
    value: float = float("nan")
    notes: list[str] = field(default_factory=list)
    inconclusive: str = ""  # why nothing was compared ("not differentiable here"), or ""

    @property
    def max_rel_error(self) -> float:
        return max(self.errors.values(), default=0.0)

    @property
    def ok(self) -> bool:
        return not self.inconclusive and \
            all(np.isfinite(e) and e <= self.tolerance for e in self.errors.values())

    @property
    def mismatch(self) -> bool:
        """A gradient was compared and differs: never so where nothing was compared."""
        return not self.inconclusive and not self.ok

    def __str__(self) -> str:
        sizes = ", ".join(f"{k}={v}" for k, v in self.sizes.items())
        rows = [f"  d/d{k}: max relative error {v:.2e}" for k, v in self.errors.items()]
        verdict = "OK" if self.ok else f"inconclusive here: {self.inconclusive}" \
            if self.inconclusive else "FAILED"
        return "\n".join([f"finite-difference check ({sizes}): {verdict}", *rows, *self.notes])


def fd_gradient(f: Expr, name: str, env: dict[str, Any], sizes: Mapping[str, int],
                h: float = 1e-6, symmetric: bool = False) -> Array:
    """Central finite differences of the scalar ``f`` with respect to input ``name``.

    For a ``symmetric`` variable the steps stay symmetric (``E_ij + E_ji``), and the result
    is the gradient in the space of symmetric matrices under ``<A, B> = tr(AᵀB)``: half the
    directional derivative off the diagonal, all of it on the diagonal.
    """
    x0 = np.array(env[name], dtype=float)
    out = np.zeros_like(x0)

    def at(x: Array) -> float:
        return float(evaluate(f, {**env, name: x}, sizes))

    for idx in np.ndindex(x0.shape):
        if symmetric and idx[0] > idx[1]:
            continue
        magnitude = cast(float, abs(x0[idx]))  # a full index: an np.float64, a float subclass
        step = h * max(1.0, magnitude)
        direction = np.zeros_like(x0)
        direction[idx] = 1.0
        if symmetric:
            direction[idx[::-1]] = 1.0
        slope = (at(x0 + step * direction) - at(x0 - step * direction)) / (2 * step)
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
    arr = np.asarray(value, dtype=float)
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
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)),
                1e-8)
    return float(np.max(np.abs(a - b), initial=0.0)) / scale


def check_gradients(f: Expr, grads: Mapping[str, Expr], seed: int = 0,
                    tolerance: float = 1e-6, sizes: Mapping[str, int] | None = None,
                    tries: int = 5) -> CheckReport:
    """Compare symbolic gradients with central finite differences at random points."""
    report = CheckReport(tolerance=tolerance)
    kinks = 0
    for attempt in range(tries):
        env, dims = random_inputs([f, *grads.values()], seed=seed + attempt, sizes=sizes)
        with np.errstate(all="ignore"):
            value = evaluate(f, env, dims)
            if not np.isfinite(value):
                report.notes.append(f"  point {attempt}: f is not finite there; drew another")
                continue
            kink = not_differentiable(f, env, dims)
            if kink is not None:
                kinks += 1
                report.notes.append(f"  point {attempt}: not differentiable here ({kink}); "
                                    "drew another")
                continue
            report.sizes, report.value = dims, float(value)
            for name, g in grads.items():
                symbolic = evaluate(g, env, dims)
                symmetric = free_symbols(f)[name].symmetric
                numeric = fd_gradient(f, name, env, dims, symmetric=symmetric)
                report.errors[name] = rel_error(symbolic, numeric)
        return report
    if kinks:
        report.inconclusive = "not differentiable at any point drawn"
        report.notes.append("  no point where f is differentiable was found: nothing was "
                            "checked")
        return report
    report.notes.append("  no point where f is finite was found: nothing was checked")
    report.errors = {name: float("nan") for name in grads}
    return report


def check(f: Expr, wrt: str | Sequence[str], grads: Mapping[str, Expr] | None = None,
          seed: int = 0, tolerance: float = 1e-6, raise_on_failure: bool = True,
          sizes: Mapping[str, int] | None = None) -> CheckReport:
    """Check gradients (``grads``, or those of the ``diff`` stage passed in) of ``f``."""
    names = [wrt] if isinstance(wrt, str) else list(wrt)
    if grads is None:
        raise MatdiffError("check needs the gradients to compare")
    missing = [n for n in names if n not in free_symbols(f)]
    if missing:
        raise MatdiffError(f"'{missing[0]}' does not occur in the expression")
    report = check_gradients(f, {n: grads[n] for n in names}, seed=seed, tolerance=tolerance,
                             sizes=sizes)
    if raise_on_failure and report.mismatch:
        raise MatdiffError(f"the gradient does not match finite differences:\n{report}")
    return report
