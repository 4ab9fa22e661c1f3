"""Random points in a formula's domain, and what can spoil a numerical comparison there.

Input: expressions. Output: sizes for their dimension names and values for their symbols.

* ``random_inputs(exprs, seed)`` draws sizes under which every matrix that is inverted
  (``inv``, ``det``, ``logdet``) can be invertible: a product ``A*X*B`` of sizes m×n, n×p,
  p×m has rank at most ``min(m, n, p)``, so m ≤ n and m ≤ p are chosen.
  ``shape_problems`` says when no such sizes exist (declared sizes, or constraints that
  contradict each other): ``det(X'*X)`` is 0 for every 2×3 ``X``. Values: positive under
  ``log``/``sqrt``/powers/divisions, near ``1.5 I`` under inverses (and ``adj``, ``logm``,
  ``sqrtm``), inside (-1, 1) under ``arcsin``/``arccos``, symmetric positive definite under
  ``chol``, of the declared structure (``symmetric``, ``spd``, ``pos``, ``diagonal``: the
  SYMBOL's ``attr[2]``). ``signs=True`` draws the bases of powers and
  the arguments of divisions with random signs: the other real branches of a formula.
* ``hazards(order, values)`` lists what makes a finite-difference comparison at a point
  unreliable, each with a reason from ``REASONS``: a singular or ill-conditioned matrix,
  a saturated sigmoid, a kink within reach of the steps (of ``abs``, a tie of ``max`` or
  ``min``, or of a spectral function, ``SPECTRAL_KINKS``: a repeated extreme eigenvalue, a
  zero singular value), a periodic function of a huge argument, an overflow, a NaN.
* ``estimate_bytes`` and ``estimate_flops`` bound the cost of evaluating expressions at
  given sizes, before anything is allocated; ``LIMIT_BYTES`` is the evaluation limit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import linalg
from .expr import Dim, Expr, MatdiffError, Op, toposort

__all__ = ["random_inputs", "choose_sizes", "shape_problems", "rank_bounds", "hazards",
           "Hazard", "REASONS", "structure", "on_branch_cut", "estimate_bytes", "estimate_flops",
           "LIMIT_BYTES", "too_large"]

Array = np.ndarray

LIMIT_BYTES = 1 << 30
"""Evaluation-time limit: the estimated bytes of all the arrays one evaluation holds."""

REASONS = ("singular by shape", "singular", "ill-conditioned", "saturated",
           "not differentiable", "overflow", "nan", "too large")
"""Why a comparison can be inconclusive, from the most to the least specific."""


def structure(node: Expr) -> str:
    """The declared structure of a symbol: '', 'symmetric', 'spd', 'pos' or 'diagonal'."""
    if node.op is not Op.SYMBOL or len(node.attr) < 3 or not isinstance(node.attr[2], str):
        return ""
    return node.attr[2]


# ----------------------------------------------------------------------------- sizes


def _size(dims: Mapping[str, int]) -> Callable[[Dim], int]:
    def size(d: Dim) -> int:
        v = d.subs(dims).value
        if v is None:
            raise MatdiffError(f"the size {d} is not determined")
        return v
    return size


def _attr_dims(e: Expr) -> tuple[Dim, ...]:
    if isinstance(e.attr, Dim):
        return (e.attr,)
    if isinstance(e.attr, tuple):
        return tuple(x for x in e.attr if isinstance(x, Dim)) + tuple(
            d for x in e.attr if isinstance(x, tuple) for d in x if isinstance(d, Dim))
    return ()


def dimension_names(roots: Sequence[Expr]) -> list[str]:
    """The dimension names of ``roots`` (shapes and attributes), sorted."""
    return sorted({v for r in toposort(roots) for d in r.shape + _attr_dims(r)
                   for v in d.names})


Bound = tuple[int, Expr]  # (rank bound, the node that limits it)
_SAME_RANK = (Op.MATMUL, Op.TRANSPOSE, Op.MATPOW)


def _rank_bound(node: Expr, args: list[Bound], full: int) -> Bound:
    """An upper bound of the rank of ``node`` for every value of its variables."""
    op = node.op
    if op is Op.ZERO or op is Op.CONST and node.attr == 0:
        return 0, node
    if op is Op.ONES:
        return min(1, full), node
    if op in _SAME_RANK:
        return min(args, key=lambda b: b[0])                  # rank(AB) <= min(rank A, rank B)
    if op is Op.SLICE:
        return args[0] if args[0][0] < full else (full, node)
    if op is Op.SCALE:
        return args[1]
    if op is Op.ADD:
        return sum(b[0] for b in args), node                  # rank(A + B) <= rank A + rank B
    if op is Op.KRON:
        return args[0][0] * args[1][0], node                  # rank(A ⊗ B) = rank A rank B
    if op is Op.HADAMARD:
        return int(np.prod([b[0] for b in args])), node       # rank(A ⊙ B) <= rank A rank B
    return full, node


def rank_bounds(roots: Sequence[Expr], dims: Mapping[str, int]) -> dict[Expr, Bound]:
    """Upper bounds of the ranks of all nodes at the sizes ``dims``, with the node that
    limits each (a thin factor, a vector, a sum of few terms).

    >>> from matdiff.expr import sym
    >>> X = sym("X", ("m", "n"))
    >>> rank_bounds([X.T @ X], {"m": 2, "n": 3})[X.T @ X][0]
    2
    """
    size = _size(dims)
    out: dict[Expr, Bound] = {}
    for node in toposort(roots):
        full = min(size(node.rows), size(node.cols))
        rank, why = _rank_bound(node, [out[a] for a in node.args], full)
        if rank >= full:               # full rank; a transpose keeps its argument's witness
            why = out[node.args[0]][1] if node.op is Op.TRANSPOSE else node
        out[node] = (min(rank, full), why)
    return out


_NEEDS_FULL_RANK = {Op.INV: "singular", Op.DET: "0", Op.LOGDET: "undefined"}


def _violations(roots: Sequence[Expr], dims: Mapping[str, int]) -> list[tuple[Expr, Bound]]:
    bounds = rank_bounds(roots, dims)
    size = _size(dims)
    return [(node, bounds[node.args[0]]) for node in toposort(roots)
            if node.op in _NEEDS_FULL_RANK and bounds[node.args[0]][0] < size(node.args[0].rows)]


def _shape_text(e: Expr, dims: Mapping[str, int]) -> str:
    return "×".join(str(d.subs(dims).value) for d in e.shape)


def shape_problems(roots: Sequence[Expr], dims: Mapping[str, int]) -> list[str]:
    """Why some matrix that is inverted is singular for every value of the variables at
    the sizes ``dims``; [] when there is no such matrix.

    >>> from matdiff.expr import sym, logdet
    >>> X = sym("X", (2, 3))
    >>> shape_problems([logdet(X.T @ X)], {})[0]
    "logdet(X'*X) is undefined for every X: X'*X is 3×3 but has rank at most 2 (X is 2×3)"
    """
    out = []
    for node, (rank, why) in _violations(roots, dims):
        arg = node.args[0]
        names = sorted({n.attr[0] for n in toposort([arg]) if n.op is Op.SYMBOL})
        head = f"{node} is {_NEEDS_FULL_RANK[node.op]} for every {', '.join(names) or 'value'}"
        thin = min(why.shape, key=lambda d: d.subs(dims).value or 0)
        if why.op is Op.SYMBOL and arg.rows.value is None and thin.value is None:
            out.append(f"{head} when {arg.rows} > {thin}: {arg} is {arg.rows}×{arg.cols} but "
                       f"has rank at most {thin} ({why} is {why.rows}×{why.cols})")
            continue
        free = sorted(set().union(*(d.names for d in arg.shape + why.shape)))
        at = f" (at {', '.join(f'{n}={dims[n]}' for n in free)})" if free else ""
        because = f" ({why} is {_shape_text(why, dims)})" if why is not arg else ""
        out.append(f"{head}{at}: {arg} is {_shape_text(arg, dims)} but has rank at most "
                   f"{rank}{because}")
    return out


def choose_sizes(roots: Sequence[Expr], rng: np.random.Generator,
                 given: Mapping[str, int] | None = None, tries: int = 300) -> dict[str, int]:
    """Sizes 2..4 for the dimension names (``given`` ones kept); where a matrix that is
    inverted would be singular by shape, other sizes (2..6) under which it is not, when
    some exist. ``rng`` is advanced as by the plain draw, so values drawn next do not
    depend on the search.

    >>> from matdiff.expr import sym, det
    >>> A, X, B = sym("A", ("m", "n")), sym("X", ("n", "p")), sym("B", ("p", "m"))
    >>> d = choose_sizes([det(A @ X @ B)], np.random.default_rng(0))
    >>> d["m"] <= min(d["n"], d["p"])
    True
    """
    names = dimension_names(roots)
    dims = {n: int(rng.integers(2, 5)) for n in names}
    dims.update(given or {})
    free = [n for n in names if n not in (given or {})]
    if not free or not _violations(roots, dims):
        return dims
    search = np.random.default_rng([len(names), *dims.values()])
    for i in range(tries):
        trial = {**dims, **{n: int(search.integers(2, 5 if i < tries // 2 else 7))
                            for n in free}}
        if not _violations(roots, trial):
            return trial
    return dims


# ----------------------------------------------------------------------------- values


@dataclass
class _Needs:
    positive: set[str]     # under log, sqrt (and powers, divisions: ``signed``)
    signed: set[str]       # under powers and divisions only: a sign is a real branch
    invertible: set[str]   # under inv, det, logdet, matrix powers, adj; near 1.5 I, so also
    #                        under the principal logm and sqrtm (a spectrum off (-inf, 0])
    small: set[str]        # under arcsin, arccos
    spd: set[str]          # square ones under chol: symmetric positive definite


_INVERTIBLE = (Op.INV, Op.DET, Op.LOGDET, Op.MATPOW, Op.ADJ, Op.LOGM, Op.SQRTM)


def _needs(roots: Sequence[Expr]) -> _Needs:
    """What the symbols under each function need."""
    need = _Needs(set(), set(), set(), set(), set())
    strict: set[str] = set()
    for node in toposort(roots):
        target = None
        if node.op in (Op.LOG, Op.SQRT, Op.LOG1P):        # log1p: x > -1, drawn positive
            target = strict
        elif node.op in (Op.POW, Op.HDIV):
            target = need.signed
        elif node.op in _INVERTIBLE or node.op is Op.FRECHET and node.attr != "expm":
            target = need.invertible
        elif node.op in (Op.ARCSIN, Op.ARCCOS):
            target = need.small
        elif node.op is Op.CHOL:
            target = need.spd
        if target is not None:
            target.update(n.attr[0] for n in toposort(node.args) if n.op is Op.SYMBOL)
    need.positive = strict | need.signed
    need.signed -= strict
    return need


def _spd(rng: np.random.Generator, r: int) -> Array:
    a = rng.standard_normal((r, r)) * 0.3
    return a @ a.T + r * np.eye(r) * 0.5 + np.eye(r)


def _draw(node: Expr, r: int, c: int, need: _Needs, rng: np.random.Generator,
          signs: bool) -> Array:
    name, kind = node.attr[0], structure(node)
    if kind == "diagonal":                  # positive: spd and well-conditioned where needed
        return np.diag(rng.uniform(0.5, 1.5, r))
    if (kind == "pos" or kind == "" and name in need.positive) and r == c and (
            name in need.spd or name in need.invertible):
        a = rng.uniform(0.05, 0.25, (r, r))         # positive entries, diagonally dominant
        a = (a + a.T) / 2 if name in need.spd else a
        return a + np.eye(r) * (0.5 + 0.25 * r)
    if kind in ("symmetric", "spd") or name in need.spd and r == c:
        return _spd(rng, r)
    if name in need.invertible and r == c:
        return np.eye(r) * 1.5 + rng.standard_normal((r, c)) * 0.25
    if name in need.small:                  # inside (-1, 1), and positive if need be
        return rng.uniform(0.1, 0.3, (r, c)) if name in need.positive else \
            rng.uniform(-0.3, 0.3, (r, c))
    if kind == "pos" or name in need.positive or name in need.invertible:
        x = rng.uniform(0.5, 1.5, (r, c))
        if signs and kind != "pos" and name in need.signed:
            x *= rng.choice([-1.0, 1.0], (r, c))
        return x
    return rng.standard_normal((r, c))


def _complex_draw(node: Expr, r: int, c: int, need: _Needs, rng: np.random.Generator
                  ) -> Array:
    """A complex symbol: real and imaginary parts drawn apart; a square one that must be
    invertible (or has a logarithm or a root) near 1.5 I, a small one inside the unit
    disc."""
    name = node.attr[0]
    z = rng.standard_normal((r, c)) + 1j * rng.standard_normal((r, c))
    if name in need.invertible | need.spd and r == c:
        return np.eye(r) * 1.5 + z * 0.25
    if name in need.small:
        return z * 0.15
    if name in need.positive:
        return z * 0.3 + 1.0
    return z


def random_inputs(exprs: Expr | Sequence[Expr], seed: int = 0,
                  sizes: Mapping[str, int] | None = None, signs: bool = False
                  ) -> tuple[dict[str, Any], dict[str, int]]:
    """Random inputs for the symbols of ``exprs`` and random sizes for its dimension names
    (see the module's docstring); ``signs`` gives the bases of powers and the arguments of
    divisions random signs.

    >>> from matdiff.expr import sym
    >>> env, sizes = random_inputs(sym("A", ("m", "n")), seed=1)
    >>> env["A"].shape == (sizes["m"], sizes["n"])
    True
    """
    roots = [exprs] if isinstance(exprs, Expr) else list(exprs)
    rng = np.random.default_rng(seed)
    dims = choose_sizes(roots, rng, sizes)
    need = _needs(roots)
    symbols = [n for n in toposort(roots) if n.op is Op.SYMBOL]
    size = _size(dims)
    shapes = {n.attr[0]: (size(n.rows), size(n.cols)) for n in symbols}
    wanted = sum(8 * r * c for r, c in shapes.values())
    if wanted > LIMIT_BYTES:
        raise MatdiffError(too_large(wanted, "drawing random inputs"))
    env: dict[str, Any] = {}
    flipped = False
    for node in symbols:
        r, c = shapes[node.attr[0]]
        if node.is_complex:
            z = _complex_draw(node, r, c, need, rng)
            env[node.attr[0]] = z[:, 0].copy() if c == 1 and r != 1 else \
                complex(z[0, 0]) if (r, c) == (1, 1) else z
            continue
        x = _draw(node, r, c, need, rng, signs)
        if signs and node.attr[0] in need.signed and structure(node) == "":
            if not flipped and np.all(x > 0):
                x[0, 0] = -x[0, 0]                 # some base is negative: another branch
            flipped = flipped or bool(np.any(x < 0))
        env[node.attr[0]] = x[:, 0].copy() if c == 1 and r != 1 else \
            float(x[0, 0]) if (r, c) == (1, 1) else x
    return env, dims


def has_branches(roots: Sequence[Expr]) -> bool:
    """Whether ``signs=True`` draws differ: some power or division has a variable whose
    sign is free."""
    need = _needs(roots)
    return any(structure(n) not in ("pos", "spd", "symmetric", "diagonal")
               for n in toposort(roots) if n.op is Op.SYMBOL and n.attr[0] in need.signed)


# ----------------------------------------------------------------------------- costs


def too_large(nbytes: int, what: str) -> str:
    """The message for a computation over ``LIMIT_BYTES``."""
    return (f"{what} needs about {_gib(nbytes)} of memory, over the limit of "
            f"{_gib(LIMIT_BYTES)} (matdiff.points.LIMIT_BYTES); declare smaller sizes")


def _gib(nbytes: int) -> str:
    return f"{nbytes / (1 << 30):.3g} GiB" if nbytes >= 1 << 24 else f"{nbytes / 1024:.3g} KiB"


def estimate_bytes(roots: Sequence[Expr], dims: Mapping[str, int]) -> int:
    """Bytes of all the float64 arrays an evaluation of ``roots`` holds at once.

    >>> from matdiff.expr import sym, kron
    >>> x = sym("x", ("n",)); estimate_bytes([kron(x, x)], {"n": 1000})
    8008000
    """
    size = _size(dims)
    return sum(8 * size(n.rows) * size(n.cols) for n in toposort(roots))


def estimate_flops(roots: Sequence[Expr], dims: Mapping[str, int]) -> int:
    """Floating-point operations of one evaluation of ``roots`` (products left to right,
    n³ for an inverse or a determinant, one per entry otherwise)."""
    size = _size(dims)
    total = 0
    for node in toposort(roots):
        r, c = size(node.rows), size(node.cols)
        if node.op is Op.MATMUL:
            rows = size(node.args[0].rows)
            total += sum(2 * rows * size(a.rows) * size(a.cols) for a in node.args[1:])
        elif node.op in (Op.INV, Op.DET, Op.LOGDET, Op.MATPOW):
            total += 4 * r ** 3 + 4 * size(node.args[0].rows) ** 3
        total += r * c
    return total


# ----------------------------------------------------------------------------- hazards


@dataclass(frozen=True)
class Hazard:
    """Something at a point that can spoil finite differences: ``reason`` (one of
    ``REASONS``), a sentence, the node, for an inverse its condition number, and whether
    it can spoil differences that look converged (``serious``: a singular or
    ill-conditioned matrix, a kink, a NaN) or only explains differences that do not
    converge (a saturated function, a periodic function of a large argument)."""

    reason: str
    detail: str
    node: Expr
    condition: float = 1.0
    serious: bool = True     # False: explains unreliable differences, excuses no mismatch


def _short(e: Expr) -> str:
    text = str(e)
    return text if len(text) <= 60 else text[:57] + "..."


def _condition(a: Array) -> float:
    with np.errstate(all="ignore"):
        try:
            k = float(np.linalg.cond(a))
        except np.linalg.LinAlgError:
            return float("inf")
    return k if np.isfinite(k) else float("inf")


def _matrix_hazard(node: Expr, arg: Array) -> Hazard | None:
    k = _condition(arg)
    if k > 1e13:
        return Hazard("singular", f"{_short(node.args[0])} is singular here "
                                  f"(condition number {k:.1e})", node, k)
    if k > 1e7:
        return Hazard("ill-conditioned", f"{_short(node.args[0])} has condition number "
                                         f"{k:.1e} here", node, k)
    return Hazard("", "", node, k) if k > 1 else None


def on_branch_cut(z: Array, tol: float = 1e-6) -> bool:
    """Whether an entry of ``z`` is near the negative real axis (or 0), where arg z jumps
    from π to −π."""
    a = np.abs(z)
    return bool(np.any((np.real(z) < 0) & (np.abs(np.imag(z)) <= tol * np.maximum(1.0, a))))


def _kink(node: Expr, arg: Array) -> Hazard | None:
    if node.op is Op.ANGLE and on_branch_cut(arg):
        return Hazard("not differentiable", f"{_short(node)} has an argument on its branch "
                      "cut (the negative real axis)", node)
    a = np.abs(arg)
    if node.op is Op.NORM and node.attr != "1":
        near = float(np.sqrt((a ** 2).sum())) < 1e-6
    else:                                   # exact zeros are structural: I, zero blocks
        moving = a[a != 0]
        near = moving.size > 0 and float(moving.min()) < 1e-3 * max(1.0, float(a.max()))
    return Hazard("not differentiable", f"{_short(node)} has its kink within "
                  "reach of the finite-difference steps", node) if near else None


_GAP = 1e-3   # a relative gap this small is within reach of the finite-difference steps
_REPEATED_EIGENVALUE = ("a repeated extreme eigenvalue",
                        lambda e, x: linalg.eigen_gap(x, e.attr) < _GAP)
_REPEATED_SINGULAR_VALUE = ("a repeated largest singular value",
                            lambda e, x: linalg.singular_gap(x) < _GAP)
_RANK_DEFICIENT = ("a zero singular value (rank deficient)",
                   lambda e, x: linalg.rank_margin(x) < _GAP)
_BRANCH_CUT = ("an eigenvalue on the branch cut (-inf, 0]",   # expm and its L_exp have none
               lambda e, x: e.attr != "expm" and linalg.spectral_cut(x))
# A unit vector's sign is fixed by its entry of largest |.| (``linalg.canonical_sign``): where
# two entries tie for it, the vector flips (a sign matrix makes exact ties).
_SIGN_TIE = ("two equally largest |entries| (the sign convention flips the vector there) in "
             "the vector",
             lambda e, x: _top_gap(np.abs(linalg.eigvec(x, e.attr) if e.op is Op.EIGVEC
                                          else linalg.svd_v1(x))) < _GAP)
# Where a spectral function is not differentiable (or its derivative formula does not
# hold, or it jumps): what its argument has there, and the test of the argument's value.
SPECTRAL_KINKS: dict[Op, tuple[tuple[str, Callable[[Expr, Array], bool]], ...]] = {
    Op.EIGVAL: (_REPEATED_EIGENVALUE,), Op.EIGVEC: (_REPEATED_EIGENVALUE, _SIGN_TIE),
    Op.SPECTRAL_NORM: (_REPEATED_SINGULAR_VALUE,),
    Op.SVD_U1: (_REPEATED_SINGULAR_VALUE, _SIGN_TIE),
    Op.SVD_V1: (_REPEATED_SINGULAR_VALUE, _SIGN_TIE),
    Op.NUCLEAR_NORM: (_RANK_DEFICIENT,), Op.POLAR: (_RANK_DEFICIENT,),
    Op.PINV: (_RANK_DEFICIENT,), Op.LOGM: (_BRANCH_CUT,), Op.SQRTM: (_BRANCH_CUT,),
    Op.FRECHET: (_BRANCH_CUT,),
    Op.INF_NORM: (("a tie for the largest |x_i|", lambda e, x: _top_gap(np.abs(x)) < _GAP),),
}


def _top_gap(a: Array) -> float:
    """The relative gap between the two largest entries of ``a`` (inf for one entry)."""
    top = np.sort(a.reshape(-1))[::-1]
    return float((top[0] - top[1]) / max(top[0], 1e-300)) if top.size > 1 else np.inf


def _spectral_kink(node: Expr, arg: Array) -> Hazard | None:
    return next((Hazard("not differentiable", f"{what} of {_short(node.args[0])}", node)
                 for what, at_kink in SPECTRAL_KINKS[node.op] if at_kink(node, arg)), None)


def _elementwise_hazard(node: Expr, arg: Array) -> Hazard | None:
    op, big = node.op, float(np.max(np.abs(arg), initial=0.0))
    if op in (Op.SIGMOID, Op.TANH) and big > 15 or op is Op.ARCTAN and big > 1e6:
        return Hazard("saturated", f"{_short(node)} is saturated here (an argument of "
                                   f"{big:.3g})", node, serious=False)
    if op in (Op.SIN, Op.COS, Op.TAN) and big > 1e4:
        # past 1e7 the argument's own rounding (eps·|x|) is a visible share of the smallest
        # steps' change, and those steps still cross periods: no difference is reliable
        return Hazard("ill-conditioned", f"{_short(node)} has an argument of {big:.3g}: "
                                         "a period is a small step there", node,
                      serious=big > 1e7)
    small = float(np.min(np.abs(arg), initial=np.inf))
    if op in (Op.LOG, Op.SQRT) and small < 1e-8 * max(1.0, big) or \
            op is Op.TAN and float(np.min(np.abs(np.cos(arg)), initial=1.0)) < 1e-6 or \
            op in (Op.ARCSIN, Op.ARCCOS) and 1.0 - big < 1e-8 or \
            op is Op.LOG1P and float(np.min(np.abs(1.0 + arg), initial=np.inf)) < 1e-8:
        return Hazard("singular", f"{_short(node)} is near a singularity here", node)
    return None


def _hazard(node: Expr, value: Array, args: list[Array]) -> Hazard | None:
    if node.op is Op.CONST and not np.all(np.isfinite(value)):
        digits = len(str(abs(node.attr.numerator))) - len(str(node.attr.denominator))
        return Hazard("overflow", f"the constant 1e{digits} is beyond the floating-point "
                                  "range", node)
    op = node.op
    if op in (Op.INV, Op.DET, Op.LOGDET, Op.ADJ, Op.CHOL):   # adj, chol: derivatives invert
        found = _matrix_hazard(node, args[0])
        if found is not None and found.reason or np.all(np.isfinite(value)):
            return found
    if not np.all(np.isfinite(value)):
        kind = "nan" if np.any(np.isnan(value)) else "overflow"
        what = "NaN" if kind == "nan" else "infinite"
        return Hazard(kind, f"{_short(node)} is {what} here", node)
    if op in (Op.ABS, Op.SIGN, Op.RELU, Op.ANGLE) or op is Op.NORM:
        return _kink(node, args[0])
    if op in (Op.MAX, Op.MIN):                             # a tie X = Y is a kink
        return _kink(node, args[0] - args[1])
    if op in SPECTRAL_KINKS:
        return _spectral_kink(node, args[0])
    if op is Op.HDIV:
        small = float(np.min(np.abs(args[1]), initial=np.inf))
        big = float(np.max(np.abs(args[1]), initial=0.0))
        return Hazard("singular", f"{_short(node)} divides by nearly 0 here", node) \
            if small < 1e-8 * max(1.0, big) else None
    if op in (Op.SIGMOID, Op.TANH, Op.ARCTAN, Op.SIN, Op.COS, Op.TAN, Op.LOG, Op.SQRT,
              Op.ARCSIN, Op.ARCCOS, Op.LOG1P):
        return _elementwise_hazard(node, args[0])
    if float(np.max(np.abs(value), initial=0.0)) > 1e150:
        return Hazard("overflow", f"{_short(node)} is near overflow here", node)
    return None


def hazards(order: Sequence[Expr], values: Mapping[Expr, Array]) -> list[Hazard]:
    """What can spoil finite differences at a point, given the value of every node in
    ``order`` (children first). A NaN or infinity is reported where it first appears.
    Inverted matrices appear with their condition number (reason '' when harmless)."""
    out: list[Hazard] = []
    with np.errstate(all="ignore"):
        for node in order:
            args = [values[a] for a in node.args]
            if any(not np.all(np.isfinite(a)) for a in args):
                continue                       # reported where it first appeared
            found = _hazard(node, values[node], args)
            if found is not None:
                out.append(found)
    return out
