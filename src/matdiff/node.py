"""The node: the closed set of operations ``Op`` and the interned ``Expr``.

Imports nothing of matdiff but ``dims`` and ``opspec``; ``matdiff.expr`` re-exports all of it,
holds the smart constructors and fills ``OPS`` (one ``OpSpec`` per Op) and ``SHAPE`` (the
shape check derived from it), the two tables this module reads when a node is built or
combined with an operator (``X + Y`` is the ``ADD`` builder of ``OPS``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from enum import Enum, auto
from fractions import Fraction
from typing import Any

from .dims import ONE, Dim, Shape
from .opspec import OpSpec

__all__ = ["Op", "Expr", "OPS", "SHAPE", "STRUCTURES", "SYMMETRIC_STRUCTURES", "toposort",
           "free_symbols", "check_shape", "REAL_VALUED", "REAL_ONLY", "complex_valued"]

# declared structure of a variable: alias -> the canonical word kept in the SYMBOL's attr
STRUCTURES: dict[str, str] = {
    "symmetric": "symmetric", "sym": "symmetric",
    "spd": "spd", "posdef": "spd", "pd": "spd",          # symmetric positive definite
    "pos": "pos", "positive": "pos",                      # every entry > 0, any shape
    "diagonal": "diagonal", "diag": "diagonal",           # square, zero off the diagonal
    "complex": "complex",                                 # complex entries, any shape
}
SYMMETRIC_STRUCTURES = frozenset({"symmetric", "spd", "diagonal"})  # Xᵀ = X, so square

# ----------------------------------------------------------------------------- the node


class Op(Enum):
    """The closed set of operations. Every stage has a table keyed by these."""

    __hash__ = object.__hash__  # members are singletons: hashed by identity, in C

    # leaves
    SYMBOL = auto()       # attr (name, shape, structure); structure: "" or a STRUCTURES word
    CONST = auto()        # attr Fraction; a 1x1 scalar
    IDENTITY = auto()     # attr n
    ONES = auto()         # attr shape
    ZERO = auto()         # attr shape
    COMMUTATION = auto()  # attr (m, n): K vec(X) = vec(X') for X m x n
    # linear structure
    ADD = auto()          # n-ary, same shapes
    SCALE = auto()        # (a, X): scalar a times X
    MATMUL = auto()       # n-ary matrix product, flattened
    TRANSPOSE = auto()
    HADAMARD = auto()     # n-ary elementwise product
    HDIV = auto()         # X ./ Y
    POW = auto()          # (X, p): elementwise power, p a scalar expression
    KRON = auto()         # Kronecker product, binary
    BLOCK = auto()        # attr (r, c), args row-major
    SLICE = auto()        # attr (r0, r1, c0, c1): rows r0..r1-1, columns c0..c1-1 (0-based)
    TRIL = auto()         # the lower triangle, diagonal included
    # matrix functions
    TRACE = auto()
    DET = auto()
    LOGDET = auto()
    INV = auto()
    MATPOW = auto()       # attr k: integer power k >= 2 of a square matrix
    DIAG = auto()         # diagonal of a square matrix, as a column vector
    DIAGM = auto()        # vector to diagonal matrix
    VEC = auto()          # column-major stacking
    UNVEC = auto()        # attr (m, n): inverse of vec
    SUM = auto()          # sum of all entries
    MEAN = auto()         # mean of all entries
    MAX = auto()          # (X, Y): elementwise max; ties give each side half the derivative
    MIN = auto()          # (X, Y): elementwise min; the same tie convention
    LOGSUMEXP = auto()    # log Σ exp(X_ij) over all entries (a scalar)
    SOFTMAX = auto()      # exp(x)/Σ exp(x_i) of a column vector
    NORM = auto()         # attr p: "2" (Euclidean / Frobenius) | "1" (entrywise)
    INF_NORM = auto()     # ||x||_inf = max |x_i| of a vector
    # spectral functions and factorizations (README: "Spectral functions" for the domains)
    EXPM = auto()         # the matrix exponential e^X
    LOGM = auto()         # the principal logarithm (no eigenvalue on (-inf, 0])
    SQRTM = auto()        # the principal square root X^(1/2) (no eigenvalue on (-inf, 0])
    FRECHET = auto()      # attr "expm" | "logm" | "sqrtm": (A, E) -> L_f(A, E), the Fréchet
    #                       derivative of f at A in the direction E
    EIGVAL = auto()       # attr "max" | "min": extreme eigenvalue of the symmetric part of X
    EIGVEC = auto()       # attr "max" | "min": its unit eigenvector, largest |entry| > 0
    SPECTRAL_NORM = auto()  # ||X||_2 = sigma_max(X)
    NUCLEAR_NORM = auto()   # ||X||_* = sum of the singular values
    POLAR = auto()        # U V' for the thin SVD X = U S V' (the orthogonal polar factor)
    SVD_U1 = auto()       # u1 = X v1 / sigma_max: the left singular vector of sigma_max
    SVD_V1 = auto()       # v1: the right singular vector of sigma_max, largest |entry| > 0
    PINV = auto()         # the Moore-Penrose pseudo-inverse
    ADJ = auto()          # the adjugate: adj(X) X = det(X) I
    CHOL = auto()         # the lower Cholesky factor L of the symmetric part: L L' = (X + X')/2
    # elementwise functions
    EXP = auto()
    LOG = auto()
    SIN = auto()
    COS = auto()
    TAN = auto()
    TANH = auto()
    SQRT = auto()
    ABS = auto()
    SIGN = auto()
    SIGMOID = auto()
    RELU = auto()
    ARCSIN = auto()
    ARCCOS = auto()
    ARCTAN = auto()
    SOFTPLUS = auto()     # log(1 + e^x)
    LOG1P = auto()        # log(1 + x), x > -1
    EXPM1 = auto()        # e^x - 1
    SINH = auto()
    COSH = auto()
    ARCSINH = auto()
    # complex numbers (README: "Complex matrices")
    IMAG_UNIT = auto()    # the imaginary unit i, a 1x1 scalar
    CONJ = auto()         # the entrywise complex conjugate X̄ (Xᴴ is TRANSPOSE of CONJ)
    REAL = auto()         # Re X, entrywise
    IMAG = auto()         # Im X, entrywise
    ANGLE = auto()        # arg X, entrywise, in (-pi, pi]


_INTERN: dict[tuple[Any, ...], Expr] = {}


class Expr:
    """An interned expression node ``(op, args, attr)`` with its ``shape``.

    >>> from matdiff.expr import add, sym
    >>> X = sym("X", ("m", "n"))
    >>> (X.T.T is X, str(X.T.shape[0]), (X + X) is add(X, X))
    (True, 'n', True)
    """

    __slots__ = ("op", "args", "attr", "shape", "is_complex", "__weakref__")
    op: Op
    args: tuple[Expr, ...]
    attr: Any
    shape: Shape
    is_complex: bool      # may hold non-real values (``complex_valued``); False: real

    def __new__(cls, op: Op, args: tuple[Expr, ...] = (), attr: Any = None) -> Expr:
        key = (op, args, attr)
        node = _INTERN.get(key)
        if node is None:
            node = object.__new__(cls)
            object.__setattr__(node, "op", op)
            object.__setattr__(node, "args", args)
            object.__setattr__(node, "attr", attr)
            object.__setattr__(node, "shape", SHAPE[op](args, attr))
            object.__setattr__(node, "is_complex", complex_valued(op, args, attr))
            _INTERN[key] = node
        return node

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Expr is immutable")

    # Interned: equal nodes are one object, so equality is identity and the hash is the
    # identity's (object's own __eq__ and __hash__, without a Python call per look-up).
    __hash__ = object.__hash__
    __eq__ = object.__eq__

    def __reduce__(self) -> tuple[Any, ...]:
        return (Expr, (self.op, self.args, self.attr))

    # -- shape helpers
    @property
    def rows(self) -> Dim:
        return self.shape[0]

    @property
    def cols(self) -> Dim:
        return self.shape[1]

    @property
    def is_scalar(self) -> bool:
        rows, cols = self.shape
        return rows is ONE and cols is ONE  # dimensions are interned

    @property
    def is_vector(self) -> bool:
        return self.shape[1] == ONE and self.shape[0] != ONE

    @property
    def name(self) -> str:
        """The name of a SYMBOL."""
        if self.op is not Op.SYMBOL:
            raise AttributeError("only symbols have names")
        return self.attr[0]

    @property
    def structure(self) -> str:
        """The declared structure of a SYMBOL (``"symmetric"``, ``"spd"``, ``"pos"``,
        ``"diagonal"``), ``""`` for none and for every other node."""
        return self.attr[2] if self.op is Op.SYMBOL else ""

    @property
    def symmetric(self) -> bool:
        """A SYMBOL declared symmetric, spd or diagonal: ``Xᵀ = X``."""
        return self.op is Op.SYMBOL and self.attr[2] in SYMMETRIC_STRUCTURES

    # -- operators, so rules and tests read like math
    @property
    def T(self) -> Expr:  # noqa: N802
        return _build(Op.TRANSPOSE, self)

    def __add__(self, other: Expr | int | Fraction) -> Expr:
        return _build(Op.ADD, self, _lift(other, self))

    def __radd__(self, other: int | Fraction) -> Expr:
        return _build(Op.ADD, _lift(other, self), self)

    def __sub__(self, other: Expr | int | Fraction) -> Expr:
        return _build(Op.ADD, self, -_lift(other, self))

    def __rsub__(self, other: int | Fraction) -> Expr:
        return _build(Op.ADD, _lift(other, self), -self)

    def __neg__(self) -> Expr:
        return _build(Op.SCALE, _number(-1), self)

    def __matmul__(self, other: Expr) -> Expr:
        return _build(Op.MATMUL, self, other)

    def __mul__(self, other: Expr | int | Fraction) -> Expr:
        if not isinstance(other, Expr):
            return _build(Op.SCALE, _number(other), self)
        if other.is_scalar:
            return _build(Op.SCALE, other, self)
        if self.is_scalar:
            return _build(Op.SCALE, self, other)
        return _build(Op.HADAMARD, self, other)

    def __rmul__(self, other: int | Fraction) -> Expr:
        return _build(Op.SCALE, _number(other), self)

    def __truediv__(self, other: Expr | int | Fraction) -> Expr:
        if not isinstance(other, Expr):
            return _build(Op.SCALE, _number(Fraction(1) / Fraction(other)), self)
        if other.is_scalar:
            return _build(Op.SCALE, _build(Op.POW, other, _number(-1)), self)
        return _build(Op.HDIV, self, other)

    def __repr__(self) -> str:
        if self.op is Op.SYMBOL:
            return f"sym({self.attr[0]!r})"
        if self.op is Op.CONST:
            return f"const({self.attr})"
        inner = ", ".join(repr(a) for a in self.args)
        extra = "" if self.attr is None else (", " if inner else "") + repr(self.attr)
        return f"{self.op.name.lower()}({inner}{extra})"

    def __str__(self) -> str:
        return _STR_HOOK[0](self)

    def walk(self) -> Iterator[Expr]:
        """Every node of the DAG once, children before parents."""
        return iter(toposort([self]))


def _default_str(e: Expr) -> str:
    return repr(e)


# The printing module installs the ASCII printer here, so str(expr) is valid input.
_STR_HOOK: list[Callable[[Expr], str]] = [_default_str]


def _build(op: Op, *args: Expr) -> Expr:
    """``op`` over ``args`` through its smart constructor in ``OPS``."""
    return OPS[op].build(args, None)


def _number(value: int | Fraction) -> Expr:
    return Expr(Op.CONST, (), Fraction(value))


def _lift(value: Expr | int | Fraction, like: Expr) -> Expr:
    if isinstance(value, Expr):
        return value
    c = _number(value)
    return c if like.is_scalar else _build(Op.SCALE, c, OPS[Op.ONES].build((), like.shape))


def toposort(roots: Iterable[Expr]) -> list[Expr]:
    """All nodes reachable from ``roots``, each once, children before parents (iterative)."""
    seen: set[int] = set()
    order: list[Expr] = []
    for root in roots:
        if id(root) in seen:
            continue
        stack: list[tuple[Expr, int]] = [(root, 0)]
        seen.add(id(root))
        while stack:
            node, i = stack.pop()
            if i < len(node.args):
                stack.append((node, i + 1))
                child = node.args[i]
                if id(child) not in seen:
                    seen.add(id(child))
                    stack.append((child, 0))
            else:
                order.append(node)
    return order


def free_symbols(e: Expr) -> dict[str, Expr]:
    """The SYMBOL leaves of ``e`` by name, in order of first appearance."""
    return {n.attr[0]: n for n in toposort([e]) if n.op is Op.SYMBOL}

# ----------------------------------------------------------------------------- complexity

# Ops whose value is real for complex arguments too (moduli, parts, norms)
REAL_VALUED = frozenset({Op.ABS, Op.REAL, Op.IMAG, Op.ANGLE, Op.NORM})
# Ops matdiff defines for real arguments only: a complex argument is an error at the node
REAL_ONLY = frozenset({Op.RELU, Op.SIGN, Op.EIGVAL, Op.EIGVEC, Op.SPECTRAL_NORM,
                       Op.NUCLEAR_NORM, Op.POLAR, Op.SVD_U1, Op.SVD_V1, Op.PINV, Op.CHOL,
                       Op.TRIL, Op.MAX, Op.MIN, Op.LOGSUMEXP, Op.SOFTMAX, Op.INF_NORM,
                       Op.SIGMOID, Op.SOFTPLUS})   # σ, softplus: computed stably in reals


def complex_valued(op: Op, args: tuple[Expr, ...], attr: Any) -> bool:
    """Whether the node ``op(args)`` may hold non-real values: a symbol declared
    ``complex``, the unit i, and (inferred) every node with a complex argument, except the
    real-valued Ops (``REAL_VALUED``) and the Hermitian forms ``aᴴ M a`` (1×1, ``M``
    Hermitian) and ``ā ⊙ a``. A complex argument of a ``REAL_ONLY`` Op is an error."""
    if op is Op.SYMBOL:
        return bool(attr[2] == "complex")
    if op is Op.IMAG_UNIT:
        return True
    if op in REAL_VALUED or not any(a.is_complex for a in args):
        return False
    if op in REAL_ONLY:
        from .opspec import MatdiffError
        hint = "; for the Frobenius norm write ||X||_F or norm(X, 'fro')" \
            if op in (Op.SPECTRAL_NORM, Op.NUCLEAR_NORM) else ""
        raise MatdiffError(f"{op.name.lower()} of a complex matrix is not supported "
                           f"(matdiff defines it for real matrices only){hint}")
    if op is Op.MATMUL:                               # aᴴ M a, 1×1
        return not (args[0].rows.value == 1 and args[-1].cols.value == 1 and _hermitian(args))
    if op is Op.TRACE and args[0].op is Op.MATMUL:    # tr(AᴴMA)
        return not _hermitian(args[0].args)
    if op in (Op.HADAMARD, Op.SCALE) and len(args) == 2:
        return not _conjugates(*args)                 # ā ⊙ a, ā a
    return True


def _conjugates(a: Expr, b: Expr) -> bool:
    """Whether ``b`` is structurally the conjugate of ``a`` (CONJ sits on symbols; real
    nodes are their own conjugates). False where it cannot tell: the flag stays complex."""
    if not a.is_complex or not b.is_complex:
        return a is b
    if a.op is Op.CONJ or b.op is Op.CONJ:
        return a.op is Op.CONJ and a.args[0] is b or b.op is Op.CONJ and b.args[0] is a
    if not a.args:                                    # a complex leaf: Z, i
        return False
    return a.op is b.op and a.attr == b.attr and len(a.args) == len(b.args) and \
        all(_conjugates(x, y) for x, y in zip(a.args, b.args, strict=True))


def _factors(args: tuple[Expr, ...]) -> list[tuple[Expr, bool]]:
    """A product's factors as (node, transposed), transposed products opened."""
    out: list[tuple[Expr, bool]] = []
    for a in args:
        if a.op is Op.TRANSPOSE and a.args[0].op is Op.MATMUL:
            out.extend((f, True) for f in reversed(a.args[0].args))
        elif a.op is Op.TRANSPOSE:
            out.append((a.args[0], True))
        else:
            out.append((a, False))
    return out


def _hermitian(args: tuple[Expr, ...]) -> bool:
    """Whether the product ``f1 ... fk`` equals its conjugate transpose: f_i = f_(k+1-i)ᴴ,
    and the middle factor (k odd) is real symmetric."""
    fs = _factors(args)
    k = len(fs)
    for (p, tp), (q, tq) in zip(fs[:k // 2], reversed(fs[k - k // 2:]), strict=True):
        if tp is tq or not _conjugates(p, q):
            return False
    if k % 2 == 0:
        return True
    mid, _ = fs[k // 2]
    return not mid.is_complex and (mid.symmetric or mid.op is Op.IDENTITY)

# ----------------------------------------------------------------------------- the tables

# filled by matdiff.expr: one OpSpec per Op, and the shape check derived from each
OPS: dict[Op, OpSpec] = {}
SHAPE: dict[Op, Callable[[tuple[Expr, ...], Any], Shape]] = {}


def check_shape(op: Op, args: tuple[Expr, ...], attr: Any = None) -> Shape:
    """The shape of ``op`` over ``args``, or ``ShapeMismatch``: constructors check first,
    then fold."""
    return SHAPE[op](args, attr)
