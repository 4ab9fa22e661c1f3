"""The node module: one interned expression node, its dimensions, and the SHAPE table.

Every stage of matdiff (parse, shapes, diff, simplify, printing, codegen, check) imports
this module and nothing else of matdiff.

* ``Dim`` is a dimension: a polynomial with integer coefficients over dimension names
  (``n``, ``2*n``, ``m*p``, ``k + n``), so block matrices and Kronecker products have exact
  symbolic sizes.
* ``Expr(op, args, attr)`` is frozen and interned: two structurally equal expressions are
  the same object, so ``is`` is equality and dicts keyed by nodes are memo tables.
* Every node has a shape ``(rows, cols)``; vectors are columns ``(n, 1)``, scalars ``(1, 1)``.
  The shape is computed from ``op``, ``args`` and ``attr`` by the ``SHAPE`` table when the
  node is built, so an ill-shaped node cannot exist.
* Smart constructors (``add``, ``matmul``, ``scale``, ...) do only safe local folds: zeros,
  identities, ``T(T(x)) = x``, constant arithmetic, flattening of sums and products.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from enum import Enum, auto
from fractions import Fraction
from typing import Any

__all__ = [
    "Dim", "Expr", "MatdiffError", "Op", "SHAPE", "ELEMENTWISE", "Shape",
    "sym", "const", "eye", "ones", "zeros", "add", "sub", "neg", "scale", "matmul", "T",
    "hadamard", "hdiv", "hpow", "kron", "block", "trace", "det", "logdet", "inv", "matpow",
    "diag", "diagm", "vec", "total", "norm", "apply", "commutation", "unvec", "toposort",
    "free_symbols", "SCALAR", "slice_", "block_offsets", "is_zero",
]


class MatdiffError(ValueError):
    """A user-facing error. ``pos`` is the offset in the input text, where one applies.

    >>> str(MatdiffError("unknown function 'foo'", pos=3))
    "unknown function 'foo'"
    """

    def __init__(self, message: str, pos: int | None = None, text: str | None = None,
                 end: int | None = None):
        super().__init__(message)
        self.message = message
        self.pos = pos
        self.end = end
        self.text = text

    def render(self) -> str:
        """The message, with the text and a caret under ``pos`` where both are known."""
        if self.text is None or self.pos is None:
            return f"error: {self.message}"
        line_start = self.text.rfind("\n", 0, self.pos) + 1
        line_end = self.text.find("\n", self.pos)
        line = self.text[line_start: None if line_end < 0 else line_end]
        col = self.pos - line_start
        width = max(1, min((self.end or self.pos + 1) - self.pos, len(line) - col))
        return f"error: {self.message}\n  {line}\n  {' ' * col}{'^' * width}"


# ----------------------------------------------------------------------------- dimensions

Monomial = tuple[str, ...]  # sorted dimension names; () is the constant term


class Dim:
    """An exact dimension: a polynomial with integer coefficients over names.

    >>> n = Dim.var("n")
    >>> str(2 * n + 1), str(n * Dim.var("m")), (n + n) == 2 * n
    ('2*n + 1', 'm*n', True)
    """

    __slots__ = ("terms", "_hash")

    def __init__(self, terms: dict[Monomial, int] | Iterable[tuple[Monomial, int]]):
        items = terms.items() if isinstance(terms, dict) else terms
        self.terms: tuple[tuple[Monomial, int], ...] = tuple(
            sorted(((m, c) for m, c in items if c != 0), key=lambda mc: (-len(mc[0]), mc[0])))
        self._hash = hash(self.terms)

    @staticmethod
    def of(value: int | str | Dim) -> Dim:
        if isinstance(value, Dim):
            return value
        if isinstance(value, int):
            constant: dict[Monomial, int] = {(): value}
            return Dim(constant)
        return Dim.var(value)

    @staticmethod
    def var(name: str) -> Dim:
        linear: dict[Monomial, int] = {(name,): 1}
        return Dim(linear)

    @property
    def value(self) -> int | None:
        """The integer value when the dimension is a constant, else None."""
        if not self.terms:
            return 0
        if len(self.terms) == 1 and self.terms[0][0] == ():
            return self.terms[0][1]
        return None

    @property
    def names(self) -> set[str]:
        return {v for m, _ in self.terms for v in m}

    def __add__(self, other: object) -> Dim:
        o = Dim.of(other)  # type: ignore[arg-type]
        acc = dict(self.terms)
        for m, c in o.terms:
            acc[m] = acc.get(m, 0) + c
        return Dim(acc)

    __radd__ = __add__

    def __sub__(self, other: object) -> Dim:
        return self + (-1) * Dim.of(other)  # type: ignore[arg-type]

    def __mul__(self, other: object) -> Dim:
        o = Dim.of(other)  # type: ignore[arg-type]
        acc: dict[Monomial, int] = {}
        for (m1, c1), (m2, c2) in itertools.product(self.terms, o.terms):
            m = tuple(sorted(m1 + m2))
            acc[m] = acc.get(m, 0) + c1 * c2
        return Dim(acc)

    __rmul__ = __mul__

    def __eq__(self, other: object) -> bool:
        if isinstance(other, int):
            other = Dim.of(other)
        return isinstance(other, Dim) and self.terms == other.terms

    def __hash__(self) -> int:
        return self._hash

    def subs(self, env: Mapping[str, Dim | int]) -> Dim:
        """Replace names by dimensions or integers."""
        acc = Dim({})
        for m, c in self.terms:
            term = Dim.of(c)
            for v in m:
                term = term * Dim.of(env.get(v, Dim.var(v)))
            acc = acc + term
        return acc

    def format(self, times: str = "*") -> str:
        if not self.terms:
            return "0"
        parts = []
        for m, c in self.terms:
            body = times.join(m)
            if not m:
                parts.append(str(c))
            elif c == 1:
                parts.append(body)
            elif c == -1:
                parts.append("-" + body)
            else:
                parts.append(f"{c}{times}{body}")
        out = parts[0]
        for p in parts[1:]:
            out += f" - {p[1:]}" if p.startswith("-") else f" + {p}"
        return out

    def __str__(self) -> str:
        return self.format()

    def __repr__(self) -> str:
        return f"Dim({self.format()!r})"


Shape = tuple[Dim, Dim]
ONE = Dim.of(1)
SCALAR: Shape = (ONE, ONE)


def _shape(s: Iterable[int | str | Dim]) -> Shape:
    dims = tuple(Dim.of(d) for d in s)
    if len(dims) == 0:
        return SCALAR
    if len(dims) == 1:
        return (dims[0], ONE)
    if len(dims) == 2:
        return (dims[0], dims[1])
    raise MatdiffError(f"a shape has at most two dimensions, got {len(dims)}")


# ----------------------------------------------------------------------------- the node


class Op(Enum):
    """The closed set of operations. Every stage has a table keyed by these."""

    # leaves
    SYMBOL = auto()       # attr (name, shape, structure)   structure: "" | "symmetric"
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
    NORM = auto()         # attr p: "2" (Euclidean / Frobenius) | "1" (entrywise)
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


ELEMENTWISE = frozenset({Op.EXP, Op.LOG, Op.SIN, Op.COS, Op.TAN, Op.TANH, Op.SQRT, Op.ABS,
                         Op.SIGN, Op.SIGMOID, Op.RELU, Op.ARCSIN, Op.ARCCOS, Op.ARCTAN})

_INTERN: dict[tuple[Any, ...], Expr] = {}


class Expr:
    """An interned expression node ``(op, args, attr)`` with its ``shape``.

    >>> X = sym("X", ("m", "n"))
    >>> (X.T.T is X, str(X.T.shape[0]), (X + X) is add(X, X))
    (True, 'n', True)
    """

    __slots__ = ("op", "args", "attr", "shape", "_hash", "__weakref__")
    op: Op
    args: tuple[Expr, ...]
    attr: Any
    shape: Shape
    _hash: int

    def __new__(cls, op: Op, args: tuple[Expr, ...] = (), attr: Any = None) -> Expr:
        key = (op, args, attr)
        node = _INTERN.get(key)
        if node is None:
            node = object.__new__(cls)
            object.__setattr__(node, "op", op)
            object.__setattr__(node, "args", args)
            object.__setattr__(node, "attr", attr)
            object.__setattr__(node, "shape", SHAPE[op](args, attr))
            object.__setattr__(node, "_hash", hash(key))
            _INTERN[key] = node
        return node

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Expr is immutable")

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return self is other

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
        return self.shape == SCALAR

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
    def symmetric(self) -> bool:
        return self.op is Op.SYMBOL and self.attr[2] == "symmetric"

    # -- operators, so rules and tests read like math
    @property
    def T(self) -> Expr:  # noqa: N802
        return T(self)

    def __add__(self, other: Expr | int | Fraction) -> Expr:
        return add(self, _lift(other, self))

    def __radd__(self, other: int | Fraction) -> Expr:
        return add(_lift(other, self), self)

    def __sub__(self, other: Expr | int | Fraction) -> Expr:
        return sub(self, _lift(other, self))

    def __rsub__(self, other: int | Fraction) -> Expr:
        return sub(_lift(other, self), self)

    def __neg__(self) -> Expr:
        return neg(self)

    def __matmul__(self, other: Expr) -> Expr:
        return matmul(self, other)

    def __mul__(self, other: Expr | int | Fraction) -> Expr:
        if not isinstance(other, Expr):
            return scale(const(other), self)
        if other.is_scalar:
            return scale(other, self)
        if self.is_scalar:
            return scale(self, other)
        return hadamard(self, other)

    def __rmul__(self, other: int | Fraction) -> Expr:
        return scale(const(other), self)

    def __truediv__(self, other: Expr | int | Fraction) -> Expr:
        if not isinstance(other, Expr):
            return scale(const(Fraction(1) / Fraction(other)), self)
        if other.is_scalar:
            return scale(hpow(other, const(-1)), self)
        return hdiv(self, other)

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


def _lift(value: Expr | int | Fraction, like: Expr) -> Expr:
    if isinstance(value, Expr):
        return value
    c = const(value)
    return c if like.is_scalar else scale(c, ones(like.shape))


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


# ----------------------------------------------------------------------------- the SHAPE table


class ShapeMismatch(MatdiffError):
    """Raised by the SHAPE table when a node would be ill-shaped (an internal invariant)."""


def _need(cond: bool, what: str) -> None:
    if not cond:
        raise ShapeMismatch(what)


def _same(args: tuple[Expr, ...], _attr: Any) -> Shape:
    first = args[0].shape
    for a in args[1:]:
        if a.shape != first:  # the message is formatted only on failure: sums can be long
            _need(False, f"shapes differ: {_fmt(first)} and {_fmt(a.shape)}")
    return first


def _fmt(s: Shape) -> str:
    return f"{s[0]}x{s[1]}"


def _matmul_shape(args: tuple[Expr, ...], _attr: Any) -> Shape:
    for a, b in itertools.pairwise(args):
        _need(a.cols == b.rows, f"matrix product of {_fmt(a.shape)} and {_fmt(b.shape)}")
    return (args[0].rows, args[-1].cols)


def _scale_shape(args: tuple[Expr, ...], _attr: Any) -> Shape:
    _need(args[0].is_scalar, "scaling by a non-scalar")
    return args[1].shape


def _square(args: tuple[Expr, ...], _attr: Any) -> Shape:
    _need(args[0].rows == args[0].cols, f"square matrix needed, got {_fmt(args[0].shape)}")
    return args[0].shape


def _square_scalar(args: tuple[Expr, ...], attr: Any) -> Shape:
    _square(args, attr)
    return SCALAR


def _block_shape(args: tuple[Expr, ...], attr: Any) -> Shape:
    r, c = attr
    _need(len(args) == r * c, "block grid size")
    grid = [args[i * c:(i + 1) * c] for i in range(r)]
    for row in grid:
        for x in row:
            _need(x.rows == row[0].rows, "blocks in a row must have equal heights")
    for j in range(c):
        for i in range(r):
            _need(grid[i][j].cols == grid[0][j].cols, "blocks in a column must have equal widths")
    rows = sum((row[0].rows for row in grid), Dim({}))
    cols = sum((x.cols for x in grid[0]), Dim({}))
    return (rows, cols)


def _slice_shape(args: tuple[Expr, ...], attr: Any) -> Shape:
    r0, r1, c0, c1 = attr
    return (r1 - r0, c1 - c0)


def _pow_shape(args: tuple[Expr, ...], _attr: Any) -> Shape:
    _need(args[1].is_scalar, "the exponent of an elementwise power must be a scalar")
    return args[0].shape


def _unvec_shape(args: tuple[Expr, ...], attr: Any) -> Shape:
    m, n = attr
    _need(args[0].cols == ONE and args[0].rows == m * n, "unvec size")
    return (m, n)


def _diagm_shape(args: tuple[Expr, ...], _attr: Any) -> Shape:
    _need(args[0].cols == ONE, "Diag needs a vector")
    return (args[0].rows, args[0].rows)


SHAPE: dict[Op, Callable[[tuple[Expr, ...], Any], Shape]] = {
    Op.SYMBOL: lambda a, attr: attr[1],
    Op.CONST: lambda a, attr: SCALAR,
    Op.IDENTITY: lambda a, n: (n, n),
    Op.ONES: lambda a, s: s,
    Op.ZERO: lambda a, s: s,
    Op.COMMUTATION: lambda a, mn: (mn[0] * mn[1], mn[0] * mn[1]),
    Op.ADD: _same,
    Op.SCALE: _scale_shape,
    Op.MATMUL: _matmul_shape,
    Op.TRANSPOSE: lambda a, _: (a[0].cols, a[0].rows),
    Op.HADAMARD: _same,
    Op.HDIV: _same,
    Op.POW: _pow_shape,
    Op.KRON: lambda a, _: (a[0].rows * a[1].rows, a[0].cols * a[1].cols),
    Op.BLOCK: _block_shape,
    Op.SLICE: _slice_shape,
    Op.TRACE: _square_scalar,
    Op.DET: _square_scalar,
    Op.LOGDET: _square_scalar,
    Op.INV: _square,
    Op.MATPOW: _square,
    Op.DIAG: lambda a, _: (_square(a, _)[0], ONE),
    Op.DIAGM: _diagm_shape,
    Op.VEC: lambda a, _: (a[0].rows * a[0].cols, ONE),
    Op.UNVEC: _unvec_shape,
    Op.SUM: lambda a, _: SCALAR,
    Op.NORM: lambda a, p: SCALAR,
    **{op: (lambda a, _: a[0].shape) for op in ELEMENTWISE},
}


# ----------------------------------------------------------------------------- constructors


def sym(name: str, shape: Iterable[int | str | Dim] = (), structure: str = "") -> Expr:
    """A variable. ``shape`` is ``()`` (scalar), ``(n,)`` (column vector) or ``(m, n)``.

    >>> sym("x", ("n",)).shape == (Dim.var("n"), 1)
    True
    """
    s = _shape(shape)
    if structure == "symmetric" and s[0] != s[1]:
        raise MatdiffError(f"{name} is declared symmetric but is {_fmt(s)}")
    return Expr(Op.SYMBOL, (), (name, s, structure))


def const(value: int | float | Fraction | str) -> Expr:
    """A scalar constant, kept exact as a Fraction.

    >>> const("0.5").attr
    Fraction(1, 2)
    """
    if isinstance(value, float):
        value = Fraction(value).limit_denominator(10**12)
    return Expr(Op.CONST, (), Fraction(value))


def eye(n: int | str | Dim) -> Expr:
    return Expr(Op.IDENTITY, (), Dim.of(n))


def ones(shape: Iterable[int | str | Dim]) -> Expr:
    s = _shape(shape)
    return const(1) if s == SCALAR else Expr(Op.ONES, (), s)


def zeros(shape: Iterable[int | str | Dim]) -> Expr:
    s = _shape(shape)
    return const(0) if s == SCALAR else Expr(Op.ZERO, (), s)


def commutation(m: int | str | Dim, n: int | str | Dim) -> Expr:
    """The commutation matrix K(m, n): ``K vec(X) = vec(X')`` for X m x n."""
    return Expr(Op.COMMUTATION, (), (Dim.of(m), Dim.of(n)))


def is_zero(e: Expr) -> bool:
    return e.op is Op.ZERO or (e.op is Op.CONST and e.attr == 0)


def add(*terms: Expr) -> Expr:
    """Sum, flattened, zeros dropped, constants folded.

    >>> x = sym("x", ("n",)); add(x, zeros(x.shape)) is x
    True
    """
    flat: list[Expr] = []
    total_const = Fraction(0)
    has_const = False
    for t in terms:
        if t.op is Op.ADD and t.args[-1].op is not Op.CONST:
            flat.extend(t.args)  # already flat, without zeros: long sums stay fast
            continue
        for u in (t.args if t.op is Op.ADD else (t,)):
            if u.op is Op.CONST:
                total_const += u.attr
                has_const = True
            elif not is_zero(u):
                flat.append(u)
    if has_const and total_const != 0:
        flat.append(const(total_const))
    if not flat:
        return zeros(terms[0].shape)
    if len(flat) == 1:
        _same(tuple(terms), None)
        return flat[0]
    return Expr(Op.ADD, tuple(flat))


def scale(a: Expr, x: Expr) -> Expr:
    """Scalar ``a`` times ``x``; constants folded and kept in front.

    >>> X = sym("X", ("n", "n")); scale(const(2), scale(const(3), X)) is scale(const(6), X)
    True
    """
    _need(a.is_scalar, "scaling by a non-scalar")
    if is_zero(a) or is_zero(x):
        return zeros(x.shape)
    if x.op is Op.CONST and a.op is not Op.CONST:
        a, x = x, a
    if a.op is Op.SCALE:  # (b c) X = b (c X): chains of scalar factors nest to the right
        return scale(a.args[0], scale(a.args[1], x))
    if a.op is Op.CONST:
        if a.attr == 1:
            return x
        if x.op is Op.CONST:
            return const(a.attr * x.attr)
        if x.op is Op.SCALE and x.args[0].op is Op.CONST:
            return scale(const(a.attr * x.args[0].attr), x.args[1])
    elif x.op is Op.SCALE and x.args[0].op is Op.CONST:
        return scale(x.args[0], scale(a, x.args[1]))
    return Expr(Op.SCALE, (a, x))


def neg(x: Expr) -> Expr:
    return scale(const(-1), x)


def sub(a: Expr, b: Expr) -> Expr:
    return add(a, neg(b))


def matmul(*factors: Expr) -> Expr:
    """Matrix product, flattened; identities dropped, zeros absorbed, scalar factors of
    ``SCALE`` nodes pulled in front (``A (cB) = c AB``).

    >>> A = sym("A", ("m", "n")); matmul(eye("m"), A, eye("n")) is A
    True
    """
    _matmul_shape(factors, None)
    flat: list[Expr] = []
    coeffs: list[Expr] = []
    stack = list(reversed(factors))
    while stack:
        g = stack.pop()
        if g.op is Op.SCALE:
            coeffs.append(g.args[0])
            stack.append(g.args[1])
        elif g.op is Op.MATMUL:
            stack.extend(reversed(g.args))
        elif g.is_scalar and len(factors) > 1:
            coeffs.append(g)  # a 1x1 factor of a product is a scalar: it scales
        else:
            flat.append(g)
    shape = (factors[0].rows, factors[-1].cols)
    if any(is_zero(g) for g in flat) or any(is_zero(c) for c in coeffs):
        return zeros(shape)
    flat = [g for g in flat if g.op is not Op.IDENTITY]
    if not flat:
        out = eye(shape[0]) if shape != SCALAR else const(1)
    elif len(flat) == 1:
        out = flat[0]
    else:
        out = Expr(Op.MATMUL, tuple(flat))
    for c in reversed(coeffs):
        out = scale(c, out)
    return out


def T(x: Expr) -> Expr:  # noqa: N802
    """Transpose; ``T(T(x)) = x``, symmetric symbols and scalars are their own transpose."""
    if x.op is Op.TRANSPOSE:
        return x.args[0]
    if x.is_scalar or x.op in (Op.IDENTITY, Op.ZERO, Op.ONES) and x.rows == x.cols:
        return x
    if x.op is Op.ZERO:
        return zeros((x.cols, x.rows))
    if x.op is Op.ONES:
        return ones((x.cols, x.rows))
    if x.symmetric or x.op is Op.INV and x.args[0].symmetric:
        return x
    if x.op is Op.SCALE:
        return scale(x.args[0], T(x.args[1]))
    return Expr(Op.TRANSPOSE, (x,))


def hadamard(*factors: Expr) -> Expr:
    """Elementwise product, flattened; zeros absorb, all-ones drop, scalar factors of SCALE
    nodes pulled in front (``A ⊙ (cB) = c (A ⊙ B)``)."""
    _same(factors, None)
    flat: list[Expr] = []
    coeffs: list[Expr] = []
    stack = list(reversed(factors))
    while stack:
        g = stack.pop()
        if g.op is Op.SCALE and not factors[0].is_scalar:
            coeffs.append(g.args[0])
            stack.append(g.args[1])
        elif g.op is Op.HADAMARD:
            stack.extend(reversed(g.args))
        else:
            flat.append(g)
    if any(is_zero(f) for f in flat):
        return zeros(factors[0].shape)
    kept = [f for f in flat if f.op is not Op.ONES]
    if not kept:
        out = ones(factors[0].shape)
    elif len(kept) == 1:
        out = kept[0]
    elif factors[0].is_scalar:
        out = kept[0]
        for k in kept[1:]:
            out = scale(out, k)
    else:
        out = Expr(Op.HADAMARD, tuple(kept))
    for c in reversed(coeffs):
        out = scale(c, out)
    return out


def hdiv(x: Expr, y: Expr) -> Expr:
    """Elementwise division; a scalar factor of the numerator goes in front."""
    _same((x, y), None)
    if x.is_scalar:
        return scale(x, hpow(y, const(-1)))
    if is_zero(x):
        return x
    if y.op is Op.ONES:
        return x
    if x.op is Op.SCALE:
        return scale(x.args[0], hdiv(x.args[1], y))
    return Expr(Op.HDIV, (x, y))


def hpow(x: Expr, p: Expr | int | Fraction) -> Expr:
    """Elementwise power ``x .^ p`` (also the power of a scalar)."""
    p = p if isinstance(p, Expr) else const(p)
    if p.op is Op.CONST:
        if p.attr == 1:
            return x
        if p.attr == 0:
            return ones(x.shape)
        if x.op is Op.CONST and p.attr.denominator == 1 and (x.attr != 0 or p.attr > 0):
            return const(x.attr ** int(p.attr))
        if x.op is Op.POW and x.args[1].op is Op.CONST and p.attr.denominator == 1 \
                and x.args[1].attr.denominator == 1:
            return hpow(x.args[0], const(x.args[1].attr * p.attr))
    return Expr(Op.POW, (x, p))


def kron(a: Expr, b: Expr) -> Expr:
    if is_zero(a) or is_zero(b):
        return zeros((a.rows * b.rows, a.cols * b.cols))
    if a.is_scalar:
        return scale(a, b)
    if b.is_scalar:
        return scale(b, a)
    return Expr(Op.KRON, (a, b))


def block(rows: Iterable[Iterable[Expr]]) -> Expr:
    """A block matrix from a grid of blocks."""
    grid = [tuple(r) for r in rows]
    args = tuple(x for r in grid for x in r)
    if len(args) == 1:
        return args[0]
    return Expr(Op.BLOCK, args, (len(grid), len(grid[0])))


def block_offsets(e: Expr) -> tuple[list[Dim], list[Dim]]:
    """Row and column offsets of the blocks of a BLOCK node (one more than the grid size)."""
    r, c = e.attr
    rows, cols = [Dim({})], [Dim({})]
    for i in range(r):
        rows.append(rows[-1] + e.args[i * c].rows)
    for j in range(c):
        cols.append(cols[-1] + e.args[j].cols)
    return rows, cols


def slice_(x: Expr, r0: Dim | int, r1: Dim | int, c0: Dim | int, c1: Dim | int) -> Expr:
    """The sub-matrix ``x[r0:r1, c0:c1]`` (0-based, end exclusive); aligned blocks of a
    block matrix and zeros are folded.

    >>> A, B = sym("A", ("m", "n")), sym("B", ("m", "n"))
    >>> slice_(block([[A, B]]), 0, "m", "n", 2 * Dim.var("n")) is B
    True
    """
    r0, r1, c0, c1 = (Dim.of(d) for d in (r0, r1, c0, c1))
    if (r0, r1, c0, c1) == (Dim({}), x.rows, Dim({}), x.cols):
        return x
    if x.op in (Op.ZERO, Op.ONES):
        return zeros((r1 - r0, c1 - c0)) if x.op is Op.ZERO else ones((r1 - r0, c1 - c0))
    if x.op is Op.BLOCK:
        rows, cols = block_offsets(x)
        if r0 in rows and r1 in rows and c0 in cols and c1 in cols:
            i0, i1, j0, j1 = rows.index(r0), rows.index(r1), cols.index(c0), cols.index(c1)
            c = x.attr[1]
            return block([[x.args[i * c + j] for j in range(j0, j1)] for i in range(i0, i1)])
    if x.op is Op.SCALE:
        return scale(x.args[0], slice_(x.args[1], r0, r1, c0, c1))
    return Expr(Op.SLICE, (x,), (r0, r1, c0, c1))


def trace(x: Expr) -> Expr:
    _square((x,), None)
    if x.is_scalar:
        return x
    if x.op is Op.IDENTITY and x.attr.value is not None:  # tr(I_3) = 3
        return const(x.attr.value)
    return Expr(Op.TRACE, (x,))


def det(x: Expr) -> Expr:
    _square((x,), None)
    if x.is_scalar:
        return x
    if x.op is Op.IDENTITY:
        return const(1)
    return Expr(Op.DET, (x,))


def logdet(x: Expr) -> Expr:
    _square((x,), None)
    if x.op is Op.IDENTITY:
        return const(0)
    return Expr(Op.LOGDET, (x,))


def inv(x: Expr) -> Expr:
    _square((x,), None)
    if x.op is Op.INV:
        return x.args[0]
    if x.op is Op.IDENTITY:
        return x
    if x.is_scalar:
        return hpow(x, const(-1))
    return Expr(Op.INV, (x,))


def matpow(x: Expr, k: int) -> Expr:
    """Integer power of a square matrix (negative powers through the inverse)."""
    _square((x,), None)
    if x.is_scalar:
        return hpow(x, const(k))
    if k == 0:
        return eye(x.rows)
    if k < 0:
        return matpow(inv(x), -k)
    if k == 1:
        return x
    return Expr(Op.MATPOW, (x,), k)


def diag(x: Expr) -> Expr:
    _square((x,), None)
    if x.is_scalar:
        return x
    if x.op is Op.DIAGM:
        return x.args[0]
    if x.op is Op.IDENTITY:
        return ones((x.rows, ONE))
    return Expr(Op.DIAG, (x,))


def diagm(x: Expr) -> Expr:
    _need(x.cols == ONE, "Diag needs a vector")
    if x.is_scalar:
        return x
    if x.op is Op.ONES:
        return eye(x.rows)
    if is_zero(x):
        return zeros((x.rows, x.rows))
    return Expr(Op.DIAGM, (x,))


def vec(x: Expr) -> Expr:
    if x.cols == ONE:
        return x
    if x.op is Op.UNVEC:
        return x.args[0]
    if is_zero(x):
        return zeros((x.rows * x.cols, ONE))
    return Expr(Op.VEC, (x,))


def unvec(x: Expr, m: int | str | Dim, n: int | str | Dim) -> Expr:
    m, n = Dim.of(m), Dim.of(n)
    if n == ONE:
        return x
    if x.op in (Op.ONES, Op.ZERO):
        return ones((m, n)) if x.op is Op.ONES else zeros((m, n))
    if x.op is Op.VEC and x.args[0].shape == (m, n):
        return x.args[0]
    return Expr(Op.UNVEC, (x,), (m, n))


def total(x: Expr) -> Expr:
    """Sum of all entries."""
    if x.is_scalar:
        return x
    if is_zero(x):
        return const(0)
    return Expr(Op.SUM, (x,))


def norm(x: Expr, p: str = "2") -> Expr:
    """``||x||_p``: p "2" is the Euclidean norm of a vector and the Frobenius norm of a
    matrix (the same sum of squares); p "1" is the sum of absolute values of the entries."""
    if p not in ("1", "2"):
        raise MatdiffError(f"unknown norm ||.||_{p}")
    return Expr(Op.NORM, (x,), p)


def apply(op: Op, x: Expr) -> Expr:
    """An elementwise function (exp, log, ...) applied to ``x``."""
    if op not in ELEMENTWISE:
        raise MatdiffError(f"{op.name} is not an elementwise function")
    if is_zero(x) and op in (Op.SIN, Op.TAN, Op.TANH, Op.SQRT, Op.ABS, Op.SIGN, Op.RELU,
                             Op.ARCSIN, Op.ARCTAN):
        return x
    return Expr(op, (x,))
