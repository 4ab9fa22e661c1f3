"""Random well-shaped expressions for property tests, fuzzing and the soak run.

Input: a ``Draw`` (two methods, ``int(lo, hi)`` and ``pick(items)``): ``RandomDraw`` over a
``random.Random`` (the soak run, ``random_expr``), or hypothesis's ``draw`` through
``matdiff.strategies`` (``exprs``, ``texts``: the only module that imports hypothesis, a
test-only extra). Output: typed ``Expr`` trees over every ``Op`` of the language, depth up
to 6, built with the smart constructors of ``matdiff.expr``. Contract: every generated
expression is well shaped by construction, and its inputs, drawn by
``matdiff.check.random_inputs``, lie in each function's domain:

* shapes come from two named dimensions ``n`` and ``m`` (``n×n``, ``m×n``, ``n×m``, ``n``,
  ``m`` and scalars), so every symbol has one shape wherever it occurs;
* ``log``, ``sqrt``, ``./`` and powers with a non-integer exponent only see *positive*
  expressions (positive symbols ``P*``, ``p*``, ``exp``, ``sigmoid``, sums and products of
  positives, ...), whose symbols ``random_inputs`` draws positive;
* ``inv``, ``det`` and matrix powers only see *well-conditioned* expressions (symbols
  ``W*``, which ``random_inputs`` draws near ``1.5 I``, ``Dw`` declared diagonal, their
  products, transposes and inverses), and ``logdet`` only symmetric positive definite
  ones (``S`` declared symmetric, ``W Wᵀ``);
* the spectral functions see their domains: ``expm`` a bounded argument, ``logm``,
  ``sqrtm`` and ``adj`` well-conditioned ones, ``chol`` symmetric positive definite ones;
  eigenvalues, singular values and vectors, polar factors and pseudo-inverses take any
  argument, and a point on one of their kinks (``points.SPECTRAL_KINKS``) is drawn again.

``CaseResult``/``verify`` run one case through every stage (gradient against central finite
differences, simplify keeps the value, the ASCII round trip, the NumPy backend against the
reference evaluator) and classify it: ``ok``, ``mismatch`` (a bug), ``error`` (an
unexpected exception: a bug) or ``skipped`` (an honest reason: the point is not in the
domain or sits on a kink of ``abs``/``sign``/``relu`` or of a spectral function).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Protocol, TypeVar

import numpy as np

from . import expr as E
from . import points
from .api import parse, shapes_of
from .check import (
    Claim,
    check_claims,
    evaluate,
    fd_gradient,
    node_values,
    not_differentiable,
    numeric,
    random_inputs,
    rel_error,
)
from .codegen import compile as compile_code
from .diff import gradients
from .expr import Dim, Expr, MatdiffError, Op
from .points import has_branches
from .printing import to_text
from .simplify import simplify

__all__ = ["Draw", "RandomDraw", "gen", "random_expr", "random_case", "verify", "CaseResult",
           "SHAPES", "ALL_OPS", "close", "point", "run_compiled", "SIZES", "SEED", "BATTERY",
           "shapes_of"]

N, M = Dim.var("n"), Dim.var("m")
ONE = Dim.of(1)
SHAPES: dict[str, tuple[Dim, Dim]] = {
    "s": (ONE, ONE), "v": (N, ONE), "w": (M, ONE), "N": (N, N), "M": (M, N), "R": (N, M),
}
# symbol pools by role and shape: general, positive, well conditioned
_GENERAL = {"s": ["a", "b"], "v": ["x", "y"], "w": ["u"], "N": ["A", "B", "C"],
            "M": ["D", "F"], "R": ["G"]}
_POSITIVE = {"s": ["pa"], "v": ["px"], "w": ["pu"], "N": ["P", "Q"], "M": ["PM"],
             "R": ["PR"]}
_WELL = ["W", "V", "Dw"]                    # Dw: declared diagonal
_TRANSPOSED = {"s": "s", "v": None, "w": None, "N": "N", "M": "R", "R": "M"}
_SMOOTH = [Op.EXP, Op.SIN, Op.COS, Op.TANH, Op.SIGMOID, Op.ARCTAN]
_BOUNDED = [Op.TAN, Op.ARCSIN, Op.ARCCOS]   # their argument is kept inside (-1/4, 1/4)
_KINKED = [Op.ABS, Op.SIGN, Op.RELU]
ALL_OPS = frozenset(Op)

T_ = TypeVar("T_")


class Draw(Protocol):
    """Where the generator's choices come from."""

    def int(self, lo: int, hi: int) -> int:
        """An integer in ``lo..hi`` (both included)."""

    def pick(self, items: Sequence[T_]) -> T_:
        """One of ``items``."""


class RandomDraw:
    """A ``Draw`` over a ``random.Random`` (the soak run: no hypothesis engine).

    >>> d = RandomDraw(1); 0 <= d.int(0, 3) <= 3 and d.pick(["a", "b"]) in ("a", "b")
    True
    """

    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def int(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def pick(self, items: Sequence[T_]) -> T_:
        return self.rng.choice(items)


# The public battery (shared/examples/battery.md): the seed and the gradient items.
SEED = "||Z - I .* (R'*A + Q'*B)||_F^2 + ||W - [R, -Q; Q, R]*P*S'||_F^2"
BATTERY: list[tuple[str, list[str]]] = [  # its gradient items, with their variables
    ("tr(A*X*B)", ["X"]), ("x'*A*x", ["x"]), ("||A*x - b||_2^2", ["x"]),
    ("||X - A*B||_F^2", ["A"]), ("log(det(X))", ["X"]), ("det(X)", ["X"]),
    ("tr(inv(X)*A)", ["X"]), ("||Y - X*W||_F^2 + lam*||W||_F^2", ["W"]),
    ("sum(log(1 + exp(-y .* (X*w))))", ["w"]), ("||M .* X - Y||_F^2", ["X"]),
    ("||A - U*V'||_F^2", ["U", "V"]), ("tr(X'*A*X)", ["X"]), ("a'*X*b", ["X"]),
    (SEED, ["R", "Q"]), ("tr(Y' * kron(eye(p), X))", ["X"]), ("||kron(A, X) - C||_F^2", ["X"]),
    ("tr(inv(X'*X))", ["X"]), ("log(det(X'*A*X))", ["X"]), ("sum(sin(X) .* Y)", ["X"]),
    ("||W2*tanh(W1*x) - y||_2^2", ["W1", "W2"]),
    ("0.5*log(det(S)) + 0.5*(x-m)'*inv(S)*(x-m)", ["S", "m"]), ("||A*X*B - C||_F^2", ["X"]),
    ("tr(X*X*X)", ["X"]), ("||X'*X - I||_F^2", ["X"]), ("sum(X ./ Y)", ["Y"]),
    ("||diag(X) - v||_2^2", ["X"]), ("(x'*A*x)/(x'*x)", ["x"]),
]


def _sym(name: str, key: str, structure: str = "") -> Expr:
    return E.sym(name, SHAPES[key], structure)


def _const(draw: Draw) -> Expr:
    return E.const(draw.pick([Fraction(2), Fraction(-1), Fraction(1, 2), Fraction(3),
                              Fraction(-3, 4)]))


def _leaf(draw: Draw, key: str) -> Expr:
    choice = draw.int(0, 9)
    if key == "s" and choice < 2:
        return _const(draw)
    if key == "N" and choice == 2:
        return E.eye(N)
    if key in ("v", "w", "M", "R") and choice == 2:
        return E.ones(SHAPES[key])
    return _sym(draw.pick(_GENERAL[key]), key)


# ----------------------------------------------------------------------------- the generator
# gen draws one of the branches below; each builds an expression of shape SHAPES[key] from
# subexpressions of depth d (one less), or falls back to another branch where its Op does
# not give that shape.

Branch = Callable[[Draw, str, int], Expr]


def gen(draw: Draw, key: str, depth: int) -> Expr:
    """A general (real-valued) expression of shape ``SHAPES[key]``.

    >>> gen(RandomDraw(4), "N", 3).shape == SHAPES["N"]
    True
    """
    if depth <= 0:
        return _leaf(draw, key)
    return _BRANCHES[draw.int(0, len(_BRANCHES) - 1)](draw, key, depth - 1)


def _sum(draw: Draw, key: str, d: int) -> Expr:
    return E.add(gen(draw, key, d), gen(draw, key, d))


def _scaled(draw: Draw, key: str, d: int) -> Expr:
    """Scaling by a scalar expression or a constant."""
    return E.scale(gen(draw, "s", d) if draw.int(0, 1) else _const(draw), gen(draw, key, d))


def _product(draw: Draw, key: str, d: int) -> Expr:
    """A matrix product through an inner dimension (an outer product through 1)."""
    r, c = SHAPES[key]
    inner = draw.pick([N, M] if ONE in (r, c) else [N, M, ONE])
    return E.matmul(factor(draw, r, inner, d), factor(draw, inner, c, d))


def _transpose(draw: Draw, key: str, d: int) -> Expr:
    t = _TRANSPOSED[key]
    return E.T(gen(draw, t, d)) if t else E.add(gen(draw, key, d), gen(draw, key, d))


def _elementwise_product(draw: Draw, key: str, d: int) -> Expr:
    """An elementwise product, or a division by a positive expression."""
    if draw.int(0, 1):
        return E.hadamard(gen(draw, key, d), gen(draw, key, d))
    return E.hdiv(gen(draw, key, d), pos(draw, key, d))


def _elementwise_function(draw: Draw, key: str, d: int) -> Expr:
    """The smooth elementwise functions, the kinked ones, and the bounded ones on (-1/4, 1/4)."""
    op = draw.pick(_SMOOTH + _KINKED + _BOUNDED)
    arg = gen(draw, key, d)
    return E.apply(op, E.scale(E.const(Fraction(1, 4)), E.apply(Op.TANH, arg))
                   if op in _BOUNDED else arg)


def _positive_function(draw: Draw, key: str, d: int) -> Expr:
    """log, sqrt and real powers of positive expressions; integer powers of any."""
    op = draw.pick(["log", "sqrt", "pow", "ipow"])
    p = pos(draw, key, d)
    if op == "pow":
        return E.hpow(p, E.const(draw.pick([Fraction(1, 2), Fraction(-1), Fraction(3, 2)])))
    if op == "ipow":
        return E.hpow(gen(draw, key, d), E.const(draw.pick([2, 3])))
    return E.apply(Op.LOG if op == "log" else Op.SQRT, p)


def _matrix_function(draw: Draw, key: str, d: int) -> Expr:
    """inv, matrix powers, det and logdet of well-conditioned (or SPD) matrices."""
    if key == "N":
        w = well(draw, d)
        return draw.pick([E.inv, lambda x: E.matpow(x, 2), lambda x: E.matpow(x, -2),
                          lambda x: E.matpow(x, 3)])(w)
    if key == "s":
        return draw.pick([E.det, lambda w: E.logdet(spd(draw, d))])(well(draw, d))
    return gen(draw, key, d)


def _reduction(draw: Draw, key: str, d: int) -> Expr:
    """Reductions to a scalar (a matrix is scaled by one): tr, sum, norms, an entry."""
    if key != "s":
        return E.scale(gen(draw, "s", d), gen(draw, key, d))
    src = draw.pick(list(SHAPES))
    x = gen(draw, src, d)
    how = draw.pick(["tr", "sum", "norm2", "norm1", "entry"])
    if how == "tr":
        return E.trace(gen(draw, "N", d))
    if how == "sum":
        return E.total(x)
    if how == "entry" and src != "s":  # the entry (1, 0), 0-based (n, m >= 2)
        return E.slice_(x, 1, 2, 0, 1)
    return E.norm(x, "2" if how == "norm2" else "1")


def _diagonal(draw: Draw, key: str, d: int) -> Expr:
    if key == "v":
        return E.diag(gen(draw, "N", d))
    if key == "N":
        return E.diagm(gen(draw, "v", d))
    return gen(draw, key, d)


def _vec(draw: Draw, key: str, d: int) -> Expr:
    """vec, unvec and the commutation matrix: unvec(K vec(X)) = Xᵀ."""
    if key in ("M", "R"):
        src = _TRANSPOSED[key]
        assert src is not None  # M and R are each other's transpose
        r, c = SHAPES[src]
        return E.unvec(E.matmul(E.commutation(r, c), E.vec(gen(draw, src, d))), c, r)
    if key == "s":
        return E.total(E.hadamard(E.vec(gen(draw, "M", d)), E.vec(gen(draw, "M", d))))
    return gen(draw, key, d)


def _kron(draw: Draw, key: str, d: int) -> Expr:
    """Kronecker products, reduced by a trace or a sum."""
    if key == "s":
        a, b = gen(draw, "N", d), gen(draw, draw.pick(["N", "v", "M"]), d)
        kr = E.kron(a, b)
        return E.trace(kr) if kr.rows == kr.cols else E.total(kr)
    if key == "N":  # (x ⊗ yᵀ) is n×n
        return E.kron(gen(draw, "v", d), E.T(gen(draw, "v", d)))
    return gen(draw, key, d)


def _block(draw: Draw, key: str, d: int) -> Expr:
    """Block matrices and slices of them."""
    if key == "M":  # rows n..n+m of [X; Y] Z, a genuine SLICE node
        top, bottom = gen(draw, "N", d), gen(draw, "M", d)
        prod = E.matmul(E.block([[top], [bottom]]), gen(draw, "N", d))
        return E.slice_(prod, N, N + M, 0, N)
    if key == "s":
        right = E.zeros(SHAPES["R"]) if draw.int(0, 3) == 0 else gen(draw, "R", d)
        blk = E.block([[gen(draw, "N", d), right]])
        return E.norm(blk, draw.pick(["1", "2"])) if draw.int(0, 1) else E.total(blk)
    if key == "N":  # [X, Y] [Z; U]
        return E.matmul(E.block([[gen(draw, "N", d), gen(draw, "R", d)]]),
                        E.block([[gen(draw, "N", d)], [gen(draw, "M", d)]]))
    return gen(draw, key, d)


def _bounded(draw: Draw, key: str, d: int) -> Expr:
    """An expression with entries in (-1/4, 1/4): an argument e^X cannot overflow at."""
    return E.scale(E.const(Fraction(1, 4)), E.apply(Op.TANH, gen(draw, key, d)))


def _spectral(draw: Draw, key: str, d: int) -> Expr:
    """The spectral functions and factorizations, each on its domain: expm of a bounded
    matrix, logm/sqrtm/adj of a well-conditioned one (a spectrum near 1.5), chol of an spd
    one; eigenvalues, singular values and vectors, polar factors and pseudo-inverses of
    any (a random point is off their kinks almost surely)."""
    if key == "N":
        f = draw.pick(["expm", "logm", "sqrtm", "frechet", "tril", "adj", "chol", "polar"])
        if f == "expm":
            return E.expm(_bounded(draw, "N", d))
        if f in ("logm", "sqrtm", "adj"):
            return {"logm": E.logm, "sqrtm": E.sqrtm, "adj": E.adj}[f](well(draw, d))
        if f == "frechet":
            g = draw.pick(["expm", "logm", "sqrtm"])
            a = _bounded(draw, "N", d) if g == "expm" else well(draw, d)
            return E.frechet(g, a, gen(draw, "N", d))
        if f == "chol":
            return E.chol(spd(draw, d))
        return E.tril(gen(draw, key, d)) if f == "tril" else E.polar(gen(draw, key, d))
    if key in ("M", "R"):
        other = _TRANSPOSED[key]
        assert other is not None
        return draw.pick([E.polar, E.tril])(gen(draw, key, d)) if draw.int(0, 1) else \
            E.pinv(gen(draw, other, d))
    if key == "v":
        return E.eigvec(gen(draw, "N", d), draw.pick(["max", "min"])) if draw.int(0, 1) else \
            E.svd_v1(gen(draw, "M", d))
    if key == "w":
        return E.svd_u1(gen(draw, "M", d))
    x = gen(draw, draw.pick(["N", "M"]), d)
    how = draw.pick(["max", "min", "spectral", "nuclear"])
    if how in ("max", "min"):
        return E.eigval(gen(draw, "N", d), how)
    return E.spectral_norm(x) if how == "spectral" else E.nuclear_norm(x)


def _difference(draw: Draw, key: str, d: int) -> Expr:
    return E.sub(gen(draw, key, d), gen(draw, key, d))


_ML_SMOOTH = [Op.SOFTPLUS, Op.SINH, Op.COSH, Op.ARCSINH, Op.EXPM1]


def _ml_function(draw: Draw, key: str, d: int) -> Expr:
    """The ML functions: smooth elementwise ones, log1p of a positive expression, max/min
    (a side may be a broadcast number), logsumexp, mean and ||x||_inf (a matrix is scaled by
    one), softmax of a vector."""
    how = draw.pick(["smooth", "log1p", "max", "min", "lse", "mean", "softmax", "inf"])
    if how == "smooth":
        return E.apply(draw.pick(_ML_SMOOTH), gen(draw, key, d))
    if how == "log1p":
        return E.apply(Op.LOG1P, pos(draw, key, d))
    if how in ("max", "min"):
        other = E.scale(_const(draw), E.ones(SHAPES[key])) if draw.int(0, 1) else \
            gen(draw, key, d)
        return E.EXTREMES[Op.MAX if how == "max" else Op.MIN](gen(draw, key, d), other)
    if how == "softmax" and key == "v":
        return E.softmax(gen(draw, key, d))
    if key != "s":
        return E.scale(_ml_function(draw, "s", d), gen(draw, key, d))
    if how == "inf":                                    # ||x||_inf = max |x_i|
        return E.inf_norm(gen(draw, "v", d))
    x = gen(draw, draw.pick(["v", "N", "M"]), d)
    return E.logsumexp(x) if how == "lse" else E.mean(x)


def _shallower(draw: Draw, key: str, d: int) -> Expr:
    return gen(draw, key, d - 1) if d > 0 else _leaf(draw, key)


_BRANCHES: list[Branch] = [
    lambda draw, key, d: _leaf(draw, key), _sum, _scaled, _product, _transpose,
    _elementwise_product, _elementwise_function, _positive_function, _matrix_function,
    _reduction, _diagonal, _vec, _kron, _block, _difference, _shallower, _spectral,
    _ml_function,
]


def factor(draw: Draw, r: Dim, c: Dim, depth: int) -> Expr:
    """A general expression of any shape ``r × c`` over the dimensions n, m and 1."""
    for key, shape in SHAPES.items():
        if shape == (r, c):
            return gen(draw, key, depth)
    for key, shape in SHAPES.items():
        if shape == (c, r):
            return E.T(gen(draw, key, depth))
    return E.matmul(factor(draw, r, ONE, depth), factor(draw, ONE, c, depth))  # m×m


def pos(draw: Draw, key: str, depth: int) -> Expr:
    """An expression with positive entries, of shape ``SHAPES[key]``."""
    k = draw.int(0, 7) if depth > 0 else 0
    d = depth - 1
    if k == 0:
        return _sym(draw.pick(_POSITIVE[key]), key)
    if k == 1:
        return E.apply(draw.pick([Op.EXP, Op.SIGMOID]), gen(draw, key, d))
    if k == 2:
        return E.add(pos(draw, key, d), pos(draw, key, d))
    if k == 3:
        return E.hadamard(pos(draw, key, d), pos(draw, key, d))
    if k == 4:
        return E.hdiv(pos(draw, key, d), pos(draw, key, d))
    if k == 5:
        return E.apply(Op.SQRT, pos(draw, key, d))
    if k == 6:
        return E.add(E.hpow(gen(draw, key, d), 2), E.scale(E.const(1), E.ones(SHAPES[key]))
                     if key != "s" else E.const(1))
    t = _TRANSPOSED[key]
    return E.T(pos(draw, t, d)) if t else E.scale(E.const(2), pos(draw, key, d))


def well(draw: Draw, depth: int) -> Expr:
    """A well-conditioned n×n matrix."""
    k = draw.int(0, 4) if depth > 0 else 0
    if k == 0:
        name = draw.pick(_WELL)
        return _sym(name, "N", "diagonal" if name == "Dw" else "")
    if k == 1:
        return E.T(well(draw, depth - 1))
    if k == 2:
        return E.matmul(well(draw, depth - 1), well(draw, depth - 1))
    if k == 3:
        return E.inv(well(draw, depth - 1))
    return E.scale(E.const(2), well(draw, depth - 1))


def spd(draw: Draw, depth: int) -> Expr:
    """A symmetric positive definite n×n matrix."""
    k = draw.int(0, 2) if depth > 0 else 0
    if k == 0:
        return _sym("S", "N", "symmetric")
    w = well(draw, depth - 1)
    return E.matmul(w, E.T(w)) if k == 1 else E.add(spd(draw, depth - 1), E.matmul(E.T(w), w))


def random_expr(seed: int, max_depth: int = 6) -> Expr:
    """A random scalar expression from ``seed`` (the soak run's generator).

    >>> random_expr(3) is random_expr(3) and random_expr(3).is_scalar
    True
    """
    draw = RandomDraw(seed)
    return gen(draw, "s", draw.int(2, max_depth))


# ----------------------------------------------------------------------------- one case


@dataclass
class CaseResult:
    """The verdict on one expression: ``kind`` is ok | mismatch | error | skipped |
    inconclusive (the fixed-step differences disagreed and the three-way check could not
    decide at any of its points: ``reason`` is one of ``points.REASONS``)."""

    expr: Expr
    kind: str = "ok"
    detail: str = ""
    seconds: float = 0.0
    errors: dict[str, float] = field(default_factory=dict)
    stage: str = ""
    reason: str = ""
    second_opinions: int = 0


def _on_kink(e: Expr, env: dict[str, Any], sizes: dict[str, int], tol: float = 1e-3) -> bool:
    """Whether an argument of abs/sign/relu/angle/1-norm (or the vector of a 2-norm) is near 0,
    or a spectral function sits on a kink (``points.SPECTRAL_KINKS``: a repeated extreme eigenvalue,
    a zero singular value, ...)."""
    if not_differentiable(e, env, sizes) is not None:
        return True
    kinked = (Op.ABS, Op.SIGN, Op.RELU, Op.NORM, Op.ANGLE)
    nodes = [n for n in E.toposort([e]) if n.op in kinked]
    if not nodes:
        return False
    values = evaluate([n.args[0] for n in nodes], env, sizes)
    for n, v in zip(nodes, values, strict=True):
        a = np.abs(numeric(v))
        if n.op is Op.ANGLE and points.on_branch_cut(numeric(v), tol):
            return True                               # arg jumps from π to −π there
        if (n.op is Op.NORM and n.attr == "2" and float(np.sqrt((a ** 2).sum())) < tol) or \
                (n.op is not Op.NORM or n.attr == "1") and a.size and float(a.min()) < tol:
            return True
    return False


def close(a: Any, b: Any, floor: float = 0.0) -> float:
    """``rel_error`` with an absolute floor: values below ``floor`` count as zero.

    >>> close(2.0, 2.0 + 2e-9) < 1e-8, close(1e-12, 0.0, floor=1e-6)
    (True, 1e-06)
    """
    a, b = numeric(a), numeric(b)
    scale = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)),
                floor)
    return rel_error(a, b) if scale > floor else float(np.max(np.abs(a - b), initial=0.0)) / \
        max(floor, 1e-300)


def _fd_error(f: Expr, name: str, g: Any, env: dict[str, Any], sizes: dict[str, int],
              value: float) -> float:
    """The smallest error over a few finite-difference steps (roundoff against truncation),
    steps and gradient in the space of a symmetric or diagonal variable; differences resolve
    about 1e-9 |f| in absolute terms, so a gradient below 1e-4 |f| is compared absolutely
    (to 1e-9 |f| at the default tolerance) instead of relatively."""
    best = float("inf")
    kind = next((n.attr[2] for n in f.walk() if n.op is Op.SYMBOL and n.attr[0] == name), "")
    if kind == "diagonal":                 # compared in the variable's space
        g = np.diag(np.diag(np.asarray(g)))
    for h in (1e-6, 1e-5, 1e-7, 1e-4):
        fd = fd_gradient(f, name, env, sizes, h=h, symmetric=kind in ("symmetric", "spd"),
                         diagonal=kind == "diagonal")
        best = min(best, close(g, fd, 1e-4 * max(1.0, abs(value))))
        if best < 1e-6:
            break
    return best


def point(e: Expr, seed: int, tries: int = 8) -> tuple[dict[str, Any], dict[str, int]] | None:
    """A random point in the domain of ``e``, off the kinks; None when none was found. For
    odd ``seed`` where a power or a division has a variable of free sign, the first half
    of the draws gives those random signs (``points.random_inputs(signs=True)``), so the
    soak meets the other real branches (a rule that assumed a positive base shows there).

    >>> env, sizes = point(E.logdet(E.sym("S", ("n", "n"), "symmetric")), seed=0)
    >>> env["S"].shape == (sizes["n"], sizes["n"])
    True
    """
    signs = seed % 2 == 1 and has_branches([e])     # every other case: the other real branches
    for attempt in range(tries):
        flip = signs and attempt < tries // 2         # then the positive branch, if none there
        env, sizes = random_inputs(e, seed=seed * 31 + attempt, signs=flip)
        with np.errstate(all="ignore"):
            try:
                values = node_values([e], env, sizes)
                size = np.abs(np.asarray(values[e]))
                if np.all(size < 1e8) and not _on_kink(e, env, sizes) and \
                        all(np.all(np.isfinite(v)) for v in values.values()):
                    return env, sizes              # (a NaN that tr(kron(·)) drops counts)
            except (MatdiffError, ValueError, np.linalg.LinAlgError):
                continue        # singular, or a NaN that SciPy refuses (logm of log(P < 0))
    return None


SIZES = E.sym("sizes", (N, M))  # an input that gives the generated code n and m


def run_compiled(outputs: Sequence[Expr], env: dict[str, Any], sizes: dict[str, int],
                 backend: str = "numpy") -> list[Any]:
    """The values of ``outputs`` at the point ``env`` from the code ``md.compile`` generates
    for ``backend``. That code reads every size from an input's shape; one more input,
    ``SIZES`` (zeros, n×m), carries n and m where no input of the outputs does
    (``sum(ones(n))``).

    >>> run_compiled([E.total(E.ones(("n", "m")))], {}, {"n": 2, "m": 3})
    [6.0]
    """
    fn = compile_code([*outputs, SIZES], backend=backend)
    values = fn(**env, sizes=np.zeros((sizes.get("n", 2), sizes.get("m", 2))))
    return list(values[:-1])


def verify(e: Expr, seed: int = 0, tolerance: float = 1e-5,
           stages: tuple[str, ...] = ("grad", "simplify", "roundtrip", "numpy")) -> CaseResult:
    """Run ``e`` through the stages and classify it.

    >>> x = E.sym("x", ("n",)); verify(E.total(E.apply(Op.EXP, x))).kind
    'ok'
    """
    out = CaseResult(e)
    start = time.perf_counter()
    try:
        where = point(e, seed)
        if where is None:
            out.kind, out.detail = "skipped", "no point in the domain, off the kinks"
            return out
        with np.errstate(all="ignore"):
            _run_stages(out, e, *where, stages)
        bad = {k: v for k, v in out.errors.items() if not v <= tolerance}
        if bad and out.kind == "ok" and all("d/d" in k for k in bad):
            _second_opinion(out, e, bad, where[1], seed)
            bad = {k: v for k, v in out.errors.items() if not v <= tolerance}
        if bad and out.kind == "ok":
            first = next(iter(bad))
            out.kind, out.stage = "mismatch", "grad" if first.startswith("d/d") else \
                first.split(" ")[0]
            out.detail = ", ".join(f"{k}: {v:.1e}" for k, v in bad.items())
    except Exception as err:  # noqa: BLE001 - any exception here is a bug to report
        out.kind, out.detail = "error", f"{type(err).__name__}: {err}"
    finally:
        out.seconds = time.perf_counter() - start
    return out


def _run_stages(out: CaseResult, e: Expr, env: dict[str, Any], sizes: dict[str, int],
                stages: tuple[str, ...]) -> None:
    """Fill ``out.errors`` stage by stage (a round trip that fails is a mismatch at once)."""
    value = float(evaluate(e, env, sizes))
    names = list(E.free_symbols(e))
    if "simplify" in stages:
        out.stage = "simplify"
        out.errors["simplify"] = _value_error(e, env, sizes, value,
                                              float(evaluate(simplify(e), env, sizes)))
    if "roundtrip" in stages:
        out.stage = "roundtrip"
        text = to_text(e)
        back = parse(text, shapes=shapes_of(e))
        if back is not e:
            out.kind = "mismatch"
            out.detail = f"round trip: {text!r} parses to {to_text(back)!r}"
            return
    if "numpy" in stages:
        out.stage = "numpy"
        out.errors["numpy"] = _value_error(e, env, sizes, value,
                                           float(run_compiled([e], env, sizes)[0]))
    raw = gradients(e, names) if "grad" in stages or "backends" in stages else {}
    if "grad" in stages:
        out.stage = "grad"
        for name in names:
            g_raw = evaluate(raw[name], env, sizes)
            g = evaluate(simplify(raw[name]), env, sizes)
            out.errors[f"simplify d/d{name}"] = close(g_raw, g, 1e-8 * max(1.0, abs(value)))
            out.errors[f"d/d{name}"] = _fd_error(e, name, g, env, sizes, value)
    if "backends" in stages:
        out.stage = "backends"
        outputs = [e, *(simplify(raw[name]) for name in names)]
        want = run_compiled(outputs, env, sizes)
        floor = 1e-8 * max(1.0, abs(value))  # zero gradients evaluate to rounding noise
        noise: list[float] = []
        for backend in _other_backends():
            got = [numeric(a.cpu() if hasattr(a, "cpu") else a)
                   for a in run_compiled(outputs, env, sizes, backend)]
            errors = [close(a, b, floor) for a, b in zip(got, want, strict=True)]
            if max(errors) > 1e-5:                     # beyond the outputs' own rounding?
                noise = noise or _rounding_noise(outputs, env, sizes, want)
                errors = [0.0 if _gap(a, b) <= n else err
                          for a, b, n, err in zip(got, want, noise, errors, strict=True)]
            out.errors[backend] = max(errors)


def _value_error(e: Expr, env: dict[str, Any], sizes: dict[str, int], value: float,
                 other: float) -> float:
    """The relative error of ``other`` against the reference ``value``, 0 within the value's
    own rounding noise: 10 times the farthest the reference moves when every input moves by
    a relative 1e-12 (cos of an argument of 5e11 is not known to 1e-5 from float64 inputs;
    soak case 517968)."""
    err = close(value, other, 1e-9)
    if not err > 1e-9:
        return err
    rng, noise = np.random.default_rng(0), 0.0
    for _ in range(3):
        moved = {k: np.asarray(v) * (1 + 1e-12 * rng.choice([-1.0, 1.0], np.shape(v)))
                 for k, v in env.items()}
        noise = max(noise, abs(float(evaluate(e, moved, sizes)) - value))
    return 0.0 if abs(other - value) <= 10 * noise else err


def _gap(a: Any, b: Any) -> float:
    return float(np.max(np.abs(numeric(a) - numeric(b)),
                        initial=0.0))


def _rounding_noise(outputs: Sequence[Expr], env: dict[str, Any], sizes: dict[str, int],
                    want: list[Any], draws: int = 3) -> list[float]:
    """Each output's rounding noise: 10 times the farthest NumPy's own value moves when
    every input moves by a relative 1e-12 (``draws`` times). A gradient that is 0 in exact
    arithmetic (d svd_u1(bD)/db) is noise whose size its formula's conditioning sets, and
    another backend's rounding gives other noise."""
    rng = np.random.default_rng(0)
    worst = [0.0] * len(want)
    for _ in range(draws):
        moved = {k: np.asarray(v) * (1 + 1e-12 * rng.choice([-1.0, 1.0], np.shape(v)))
                 for k, v in env.items()}
        again = run_compiled(outputs, moved, sizes)
        worst = [max(w, _gap(a, b)) for w, a, b in zip(worst, again, want, strict=True)]
    return [10 * w for w in worst]


def _second_opinion(out: CaseResult, e: Expr, bad: dict[str, float],
                    sizes: dict[str, int], seed: int) -> None:
    """Where the soak's fixed-step differences disagree with a gradient (``d/dx``), or the
    raw and simplified gradients disagree (``simplify d/dx``: both may be rounding noise
    around a zero gradient), ask the three-way check (``check.check_claims``: Richardson
    steps, a measured noise floor, several points, the hazards named) about each form
    involved. OK for all clears the stage, a MISMATCH stands, and where it cannot decide
    the case is inconclusive with the reason: the soak tells a bug from its own
    ill-conditioning."""
    claims: dict[str, Claim] = {}
    for key in bad:
        name = key.split("d/d", 1)[1]
        raw = gradients(e, [name])[name]
        claims[name] = Claim(name, e, simplify(raw))
        if key.startswith("simplify"):
            claims[f"{name} (raw)"] = Claim(name, e, raw)
    report = check_claims(claims, seed=seed, tolerance=1e-6, sizes=sizes)
    out.second_opinions += 1
    if report.failed:
        return                                          # a mismatch stands, whatever else
    for key in bad:
        name = key.split("d/d", 1)[1]
        verdicts = [v for k, v in report.verdicts.items() if k.split(" ")[0] == name]
        out.errors[key] = 0.0
        unsure = next((v for v in verdicts if v.status == "inconclusive"), None)
        if unsure is not None:
            out.kind, out.stage, out.reason = "inconclusive", "grad", unsure.reason
            out.detail = f"{key}: {unsure.reason}: {unsure.detail}"[:300]


def _other_backends() -> list[str]:
    """The installed backends besides NumPy that compute in float64: PyTorch, and JAX when
    ``jax_enable_x64`` is on."""
    out = []
    try:
        import jax
        if jax.config.read("jax_enable_x64"):
            out.append("jax")
    except ImportError:
        pass
    try:
        import torch  # noqa: F401
        out.append("torch")
    except ImportError:
        pass
    return out


def random_case(seed: int, max_depth: int = 6, backends: bool = False,
                complex_numbers: bool = False) -> CaseResult:
    """Generate and verify the case numbered ``seed`` (one case of the soak run); with
    ``backends``, also the JAX and PyTorch code of the value and gradients against NumPy's;
    with ``complex_numbers``, a real-valued function of complex matrices
    (``testing_complex.random_complex_expr``).

    >>> random_case(2).kind, random_case(2, complex_numbers=True).kind
    ('ok', 'ok')
    """
    stages = ("grad", "simplify", "roundtrip", "numpy") + (("backends",) if backends else ())
    if complex_numbers:
        from .testing_complex import random_complex_expr
        return verify(random_complex_expr(seed, min(max_depth, 5)), seed, stages=stages)
    return verify(random_expr(seed, max_depth), seed, stages=stages)
