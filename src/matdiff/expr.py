"""The node module: one interned expression node, and ``OPS``, the one place an Op is described.

Every stage of matdiff (parse, shapes, diff, simplify, printing, codegen, check) imports
this module and nothing else of matdiff.

* ``Dim`` (from ``matdiff.dims``, re-exported) is a dimension: a polynomial with integer
  coefficients over dimension names (``n``, ``2*n``, ``m*p``, ``k + n``), so block matrices
  and Kronecker products have exact symbolic sizes.
* ``Expr(op, args, attr)`` is frozen and interned: two structurally equal expressions are
  the same object, so ``is`` is equality and dicts keyed by nodes are memo tables.
* Every node has a shape ``(rows, cols)``; vectors are columns ``(n, 1)``, scalars ``(1, 1)``.
  The shape comes from the Op's shape rule (dimension equations, ``OPS[op].shape``) when the
  node is built, so an ill-shaped node cannot exist.
* ``OPS[op]`` is an ``OpSpec`` (defined in ``matdiff.opspec``, re-exported here with
  ``MatdiffError``): the Op's names (ASCII functions, LaTeX commands), arity, dimension
  attributes, shape rule and builder. The parsers and shape inference read it; ``SHAPE``
  and ``ELEMENTWISE`` are derived from it; ``rebuild`` uses its builder.
* Smart constructors (``add``, ``matmul``, ``scale``, ...) do only safe local folds: zeros,
  identities, ``T(T(x)) = x``, constant arithmetic, flattening of sums and products.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from fractions import Fraction

from .dims import (
    FRESH,
    ONE,
    SCALAR,
    Contradiction,
    Dim,
    DimSolver,
    Monomial,
    Shape,
    ShapeRule,
    as_shape,
)
from .node import (
    _STR_HOOK,  # noqa: F401 - printing installs the str() of a node here
    OPS,
    REAL_ONLY,
    REAL_VALUED,
    SHAPE,
    STRUCTURES,
    SYMMETRIC_STRUCTURES,
    Expr,
    Op,
    free_symbols,
    toposort,
)
from .node import check_shape as _check
from .opspec import MatdiffError, OpSpec, ShapeMismatch, format_shape, shape_function

__all__ = [
    "Dim", "Expr", "MatdiffError", "Op", "OPS", "OpSpec", "SHAPE", "ELEMENTWISE", "Shape",
    "STRUCTURES", "SYMMETRIC_STRUCTURES", "Monomial", "ONE", "ShapeRule", "DimSolver",
    "Contradiction", "FRESH", "ShapeMismatch",
    "sym", "const", "eye", "ones", "zeros", "add", "sub", "neg", "scale", "matmul", "T",
    "hadamard", "hdiv", "hpow", "kron", "block", "trace", "det", "logdet", "inv", "matpow",
    "diag", "diagm", "vec", "total", "norm", "apply", "commutation", "unvec", "toposort",
    "free_symbols", "SCALAR", "slice_", "block_offsets", "is_zero", "rebuild",
    "tril", "expm", "logm", "sqrtm", "MATRIX_FUNCTIONS", "derivative", "frechet",
    "frechet_block", "eigval", "eigvec", "spectral_norm", "nuclear_norm", "polar", "svd_u1",
    "svd_v1", "pinv", "adj", "chol", "mean", "maximum", "minimum", "logsumexp", "softmax",
    "inf_norm", "EXTREMES", "imag_unit", "conj", "real", "imag", "angle", "H", "REAL_VALUED",
    "REAL_ONLY",
]


def _shape(s: Iterable[int | str | Dim]) -> Shape:
    try:
        return as_shape(s)
    except ValueError as err:
        raise MatdiffError(str(err)) from None


# ----------------------------------------------------------------------------- constructors


def sym(name: str, shape: Iterable[int | str | Dim] = (), structure: str = "") -> Expr:
    """A variable. ``shape`` is ``()`` (scalar), ``(n,)`` (column vector) or ``(m, n)``;
    ``structure`` a word of ``STRUCTURES`` (kept canonical: ``"sym"`` is ``"symmetric"``).

    >>> sym("x", ("n",)).shape == (Dim.var("n"), 1), sym("S", (3, 3), "pd").structure
    (True, 'spd')
    """
    s = _shape(shape)
    if structure not in ("", *STRUCTURES):
        raise MatdiffError(f"unknown structure {structure!r} of {name} (known: "
                           f"{', '.join(STRUCTURES)})")
    structure = STRUCTURES.get(structure, "")
    if structure in SYMMETRIC_STRUCTURES and s[0] != s[1]:
        raise MatdiffError(f"{name} is declared {structure} but is {format_shape(s)}")
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
        _check(Op.ADD, terms)
        return flat[0]
    return Expr(Op.ADD, tuple(flat))


def scale(a: Expr, x: Expr) -> Expr:
    """Scalar ``a`` times ``x``; constants folded and kept in front.

    >>> X = sym("X", ("n", "n")); scale(const(2), scale(const(3), X)) is scale(const(6), X)
    True
    """
    _check(Op.SCALE, (a, x))
    if is_zero(a) or is_zero(x):
        return zeros(x.shape)
    if x.op is Op.CONST and a.op is not Op.CONST:
        a, x = x, a
    if a.op is Op.SCALE:  # (b c) X = b (c X): chains of scalar factors nest to the right
        return scale(a.args[0], scale(a.args[1], x))
    if a.op is Op.IMAG_UNIT and x.op is Op.IMAG_UNIT:                 # i i = -1
        return const(-1)
    if a.op is Op.IMAG_UNIT and x.op is Op.SCALE and x.args[0].op is Op.IMAG_UNIT:
        return neg(x.args[1])                                         # i (i X) = -X
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
    _check(Op.MATMUL, factors)
    flat: list[Expr] = []
    coeffs: list[Expr] = []
    stack = list(reversed(factors))
    zero = False
    while stack:
        g = stack.pop()
        if g.op is Op.SCALE:
            coeffs.append(g.args[0])
            stack.append(g.args[1])
        elif g.op is Op.MATMUL:
            flat.extend(g.args)  # built here: no scalar, identity or zero inside
        elif g.is_scalar and len(factors) > 1:
            coeffs.append(g)  # a 1x1 factor of a product is a scalar: it scales
        elif g.op is not Op.IDENTITY:
            zero = zero or g.op is Op.ZERO
            flat.append(g)
    shape = (factors[0].rows, factors[-1].cols)
    if zero or any(is_zero(c) for c in coeffs):
        return zeros(shape)
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
    _check(Op.HADAMARD, factors)
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
    _check(Op.HDIV, (x, y))
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
    _check(Op.TRACE, (x,))
    if x.is_scalar:
        return x
    if x.op is Op.IDENTITY and x.attr.value is not None:  # tr(I_3) = 3
        return const(x.attr.value)
    return Expr(Op.TRACE, (x,))


def det(x: Expr) -> Expr:
    _check(Op.DET, (x,))
    if x.is_scalar:
        return x
    if x.op is Op.IDENTITY:
        return const(1)
    return Expr(Op.DET, (x,))


def logdet(x: Expr) -> Expr:
    _check(Op.LOGDET, (x,))
    if x.op is Op.IDENTITY:
        return const(0)
    return Expr(Op.LOGDET, (x,))


def inv(x: Expr) -> Expr:
    _check(Op.INV, (x,))
    if x.op is Op.INV:
        return x.args[0]
    if x.op is Op.IDENTITY:
        return x
    if x.is_scalar:
        return hpow(x, const(-1))
    return Expr(Op.INV, (x,))


def matpow(x: Expr, k: int) -> Expr:
    """Integer power of a square matrix (negative powers through the inverse)."""
    _check(Op.MATPOW, (x,), k)
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
    _check(Op.DIAG, (x,))
    if x.is_scalar:
        return x
    if x.op is Op.DIAGM:
        return x.args[0]
    if x.op is Op.IDENTITY:
        return ones((x.rows, ONE))
    return Expr(Op.DIAG, (x,))


def diagm(x: Expr) -> Expr:
    _check(Op.DIAGM, (x,))
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
    """The m x n matrix whose columns are the mn-vector ``x`` cut in n pieces."""
    m, n = Dim.of(m), Dim.of(n)
    _check(Op.UNVEC, (x,), (m, n))
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


def mean(x: Expr) -> Expr:
    """The mean of all entries.

    >>> str(mean(sym("X", ("m", "n"))))
    'mean(X)'
    """
    if x.is_scalar:
        return x
    if is_zero(x):
        return const(0)
    if x.op is Op.ONES:
        return const(1)
    return Expr(Op.MEAN, (x,))


def _extreme_of(op: Op, x: Expr, y: Expr) -> Expr:
    _check(op, (x, y))
    if x is y:
        return x                                          # max(X, X) = X
    return Expr(op, (x, y))


def maximum(x: Expr, y: Expr) -> Expr:
    """The elementwise maximum of two matrices of one shape (a scalar is broadcast by the
    parser as ``c·𝟏``); at a tie each side gets half the derivative.

    >>> x = sym("x", ("n",)); str(maximum(x, zeros(x.shape))), maximum(x, x) is x
    ('max(x, 0)', True)
    """
    return _extreme_of(Op.MAX, x, y)


def minimum(x: Expr, y: Expr) -> Expr:
    """The elementwise minimum; the tie convention of ``maximum``."""
    return _extreme_of(Op.MIN, x, y)


EXTREMES: dict[Op, Callable[[Expr, Expr], Expr]] = {Op.MAX: maximum, Op.MIN: minimum}


def logsumexp(x: Expr) -> Expr:
    """log Σᵢⱼ exp(Xᵢⱼ), over all the entries of a vector or a matrix."""
    _check(Op.LOGSUMEXP, (x,))
    if x.is_scalar:
        return x
    return Expr(Op.LOGSUMEXP, (x,))


def softmax(x: Expr) -> Expr:
    """exp(x)/Σᵢ exp(xᵢ) of a column vector (one entry: 1)."""
    _check(Op.SOFTMAX, (x,))
    if x.is_scalar:
        return const(1)
    return Expr(Op.SOFTMAX, (x,))


def norm(x: Expr, p: str = "2") -> Expr:
    """``||x||_p``: p "2" is the Euclidean norm of a vector and the Frobenius norm of a
    matrix (the same sum of squares); p "1" is the sum of absolute values of the entries."""
    if p not in ("1", "2"):
        raise MatdiffError(f"unknown norm ||.||_{p}")
    return Expr(Op.NORM, (x,), p)


def inf_norm(x: Expr) -> Expr:
    """``||x||_inf = max_i |x_i|`` of a column vector; a scalar's is ``|x|``.

    >>> inf_norm(sym("x", ("n",))).shape == SCALAR, inf_norm(sym("a")) is apply(Op.ABS, sym("a"))
    (True, True)
    """
    _check(Op.INF_NORM, (x,))
    if x.is_scalar or is_zero(x):
        return apply(Op.ABS, x) if x.is_scalar else const(0)
    return Expr(Op.INF_NORM, (x,))


def tril(x: Expr) -> Expr:
    """The lower triangle of ``x`` (diagonal included), zeros above it."""
    _check(Op.TRIL, (x,))
    if x.is_scalar or is_zero(x) or x.op in (Op.IDENTITY, Op.DIAGM, Op.TRIL):
        return x
    return Expr(Op.TRIL, (x,))


# ----------------------------------------------------------------------------- spectral


def expm(x: Expr) -> Expr:
    """The matrix exponential e^X; a scalar's is ``exp``.

    >>> X = sym("X", ("n", "n")); expm(zeros(X.shape)) is eye("n"), expm(X).shape == X.shape
    (True, True)
    """
    _check(Op.EXPM, (x,))
    if x.is_scalar:
        return apply(Op.EXP, x)
    if is_zero(x):
        return eye(x.rows)                                # e^0 = I
    if x.op is Op.DIAGM:
        return diagm(apply(Op.EXP, x.args[0]))            # e^Diag(v) = Diag(e^v)
    return Expr(Op.EXPM, (x,))


def logm(x: Expr) -> Expr:
    """The principal matrix logarithm (X with no eigenvalue on (-inf, 0]); a scalar's is
    ``log``."""
    _check(Op.LOGM, (x,))
    if x.is_scalar:
        return apply(Op.LOG, x)
    if x.op is Op.IDENTITY:
        return zeros(x.shape)                             # log I = 0
    if x.op is Op.DIAGM:
        return diagm(apply(Op.LOG, x.args[0]))
    return Expr(Op.LOGM, (x,))


def sqrtm(x: Expr) -> Expr:
    """The principal square root X^(1/2) (no eigenvalue on (-inf, 0]); a scalar's is
    ``sqrt``."""
    _check(Op.SQRTM, (x,))
    if x.is_scalar:
        return apply(Op.SQRT, x)
    if is_zero(x) or x.op is Op.IDENTITY:
        return x
    if x.op is Op.DIAGM:
        return diagm(apply(Op.SQRT, x.args[0]))
    return Expr(Op.SQRTM, (x,))


MATRIX_FUNCTIONS: dict[str, Callable[[Expr], Expr]] = {
    "expm": expm, "logm": logm, "sqrtm": sqrtm}


def derivative(f: str, a: Expr) -> Expr:
    """f'(A) for the matrix function ``f`` (expm: e^A, logm: A⁻¹, sqrtm: A^(-1/2)/2);
    f'(Bᵀ) = f'(B)ᵀ, written so (the Cookbook's ∂tr F(X)/∂X = f(X)ᵀ).

    >>> str(derivative("expm", T(sym("X", ("n", "n")))))
    "expm(X)'"
    """
    if a.op is Op.TRANSPOSE:
        return T(derivative(f, a.args[0]))
    if f == "expm":
        return expm(a)
    if f == "logm":
        return inv(a)
    return scale(const(Fraction(1, 2)), inv(sqrtm(a)))


def frechet(f: str, a: Expr, e: Expr) -> Expr:
    """L_f(A, E), the Fréchet derivative of the matrix function ``f`` ("expm", "logm",
    "sqrtm") at A in the direction E: the upper right block of f([A, E; 0, A]) (Mathias
    1996; Higham, *Functions of Matrices*, 2008, ch. 3). L_f(A, cI) = c f'(A).

    >>> A, E = sym("A", ("n", "n")), sym("E", ("n", "n"))
    >>> frechet("expm", A, E).op is Op.FRECHET, frechet("expm", A, eye("n")) is expm(A)
    (True, True)
    """
    _check(Op.FRECHET, (a, e), f)
    if f not in MATRIX_FUNCTIONS:
        raise MatdiffError(f"no Fréchet derivative of {f!r}: use expm, logm or sqrtm")
    if is_zero(e):
        return zeros(a.shape)
    if a.is_scalar:
        return scale(e, derivative(f, a))                 # f'(a) e
    c = const(1) if e.op is Op.IDENTITY else \
        e.args[0] if e.op is Op.SCALE and e.args[1].op is Op.IDENTITY else None
    if c is not None:
        return scale(c, derivative(f, a))                 # L_f(A, cI) = c f'(A)
    if _function_of(e, a):
        return matmul(derivative(f, a), e)                # AE = EA: L_f(A, E) = f'(A) E
    return Expr(Op.FRECHET, (a, e), f)


def _function_of(e: Expr, a: Expr) -> bool:
    """Whether ``e`` is built from ``a`` alone by sums, products, scalings, inverses, powers
    and matrix functions (or is so transposed when ``a`` is a transpose), so AE = EA."""
    if e is a or e.op is Op.IDENTITY:
        return True
    if e.op is Op.TRANSPOSE and a.op is Op.TRANSPOSE:
        return _function_of(e.args[0], a.args[0])
    if e.op is Op.SCALE:
        return e.args[0].op is Op.CONST and _function_of(e.args[1], a)
    if e.op in (Op.EXPM, Op.LOGM, Op.SQRTM, Op.INV, Op.MATPOW, Op.ADD, Op.MATMUL):
        return all(_function_of(x, a) for x in e.args)
    return False


def frechet_block(a: Expr, e: Expr) -> Expr:
    """B = [A, E; 0, A]: f(B) = [f(A), L_f(A, E); 0, f(A)], so the derivatives of
    ``FRECHET`` are those of f at B, in the upper right block."""
    return block([[a, e], [zeros(a.shape), a]])


def _extreme(which: str) -> str:
    if which not in ("max", "min"):
        raise MatdiffError(f"unknown extreme {which!r}: use 'max' or 'min'")
    return which


def eigval(x: Expr, which: str = "max") -> Expr:
    """λ_max or λ_min of the symmetric part (X + Xᵀ)/2 (of X itself when X is symmetric)."""
    _check(Op.EIGVAL, (x,))
    if x.is_scalar:
        return x
    if x.op is Op.IDENTITY:
        return const(1)
    return Expr(Op.EIGVAL, (x,), _extreme(which))


def eigvec(x: Expr, which: str = "max") -> Expr:
    """The unit eigenvector of ``eigval(x, which)``, its largest entry (in absolute value)
    positive; defined where that eigenvalue is simple."""
    _check(Op.EIGVEC, (x,))
    if x.is_scalar:
        return const(1)
    return Expr(Op.EIGVEC, (x,), _extreme(which))


def _unit(x: Expr) -> Expr:
    return scale(hpow(norm(x), -1), x)


def spectral_norm(x: Expr) -> Expr:
    """‖X‖₂ = σ_max(X); a vector's is its Euclidean norm."""
    _check(Op.SPECTRAL_NORM, (x,))
    if x.rows == ONE or x.cols == ONE:
        return apply(Op.ABS, x) if x.is_scalar else norm(x)
    return Expr(Op.SPECTRAL_NORM, (x,))


def nuclear_norm(x: Expr) -> Expr:
    """‖X‖_* = Σ σᵢ(X); a vector's is its Euclidean norm."""
    _check(Op.NUCLEAR_NORM, (x,))
    if x.rows == ONE or x.cols == ONE:
        return apply(Op.ABS, x) if x.is_scalar else norm(x)
    return Expr(Op.NUCLEAR_NORM, (x,))


def polar(x: Expr) -> Expr:
    """UVᵀ for the thin SVD X = UΣVᵀ of a full-rank X (the orthogonal polar factor); a
    vector's is x/‖x‖."""
    _check(Op.POLAR, (x,))
    if x.is_scalar:
        return apply(Op.SIGN, x)
    if x.rows == ONE or x.cols == ONE:
        return _unit(x)
    return Expr(Op.POLAR, (x,))


def svd_u1(x: Expr) -> Expr:
    """u₁ = X v₁ / σ_max(X): the left singular vector of the largest singular value."""
    _check(Op.SVD_U1, (x,))
    return apply(Op.SIGN, x) if x.is_scalar else Expr(Op.SVD_U1, (x,))


def svd_v1(x: Expr) -> Expr:
    """v₁: the unit right singular vector of the largest singular value, its largest entry
    (in absolute value) positive; defined where that singular value is simple."""
    _check(Op.SVD_V1, (x,))
    return const(1) if x.is_scalar else Expr(Op.SVD_V1, (x,))


def pinv(x: Expr) -> Expr:
    """The Moore–Penrose pseudo-inverse X⁺ (differentiable where the rank is full)."""
    _check(Op.PINV, (x,))
    if x.is_scalar:
        return hpow(x, const(-1))
    if x.op is Op.PINV:
        return x.args[0]                                  # (X⁺)⁺ = X
    if x.op is Op.IDENTITY:
        return x
    return Expr(Op.PINV, (x,))


def adj(x: Expr) -> Expr:
    """The adjugate: adj(X) X = X adj(X) = det(X) I."""
    _check(Op.ADJ, (x,))
    if x.is_scalar:
        return const(1)
    if x.op is Op.IDENTITY:
        return x
    return Expr(Op.ADJ, (x,))


def chol(x: Expr) -> Expr:
    """The lower Cholesky factor L (positive diagonal) of the symmetric part of X:
    LLᵀ = (X + Xᵀ)/2, as NumPy's ``cholesky`` of a symmetric positive definite matrix."""
    _check(Op.CHOL, (x,))
    if x.is_scalar:
        return apply(Op.SQRT, x)
    if x.op is Op.IDENTITY:
        return x
    if x.op is Op.DIAGM:
        return diagm(apply(Op.SQRT, x.args[0]))
    return Expr(Op.CHOL, (x,))


# ----------------------------------------------------------------------------- complex


def imag_unit() -> Expr:
    """The imaginary unit i (``1i``, ``1j``; LaTeX ``i``, ``\\mathrm{i}``).

    >>> str(scale(imag_unit(), imag_unit()))
    '-1'
    """
    return Expr(Op.IMAG_UNIT)


def conj(x: Expr) -> Expr:
    """The entrywise conjugate X̄, pushed to the leaves: the conjugate of a real node is
    itself, and every Op that may take complex arguments has real coefficients, so
    conj(f(A, B)) = f(Ā, B̄); CONJ nodes sit on complex symbols only.

    >>> Z = sym("Z", ("n", "n"), "complex"); A = sym("A", ("n", "n"))
    >>> str(conj(A @ Z)), conj(conj(Z)) is Z, conj(A) is A
    ('A*conj(Z)', True, True)
    """
    if not x.is_complex:
        return x
    if x.op is Op.CONJ:
        return x.args[0]
    if x.op is Op.IMAG_UNIT:
        return neg(x)
    if x.op is Op.SYMBOL:
        return Expr(Op.CONJ, (x,))
    return rebuild(x, tuple(conj(a) for a in x.args))


def H(x: Expr) -> Expr:  # noqa: N802
    """The conjugate transpose Xᴴ (``X'``); Xᵀ for a real X."""
    return T(conj(x))


def real(x: Expr) -> Expr:
    """Re X, entrywise; X itself when X is real."""
    if not x.is_complex:
        return x
    if x.op is Op.CONJ:
        return real(x.args[0])
    return Expr(Op.REAL, (x,))


def imag(x: Expr) -> Expr:
    """Im X, entrywise; zeros when X is real."""
    if not x.is_complex:
        return zeros(x.shape)
    if x.op is Op.IMAG_UNIT:
        return const(1)
    if x.op is Op.CONJ:
        return neg(imag(x.args[0]))
    return Expr(Op.IMAG, (x,))


def angle(x: Expr) -> Expr:
    """arg X, entrywise, in (-π, π]."""
    return Expr(Op.ANGLE, (x,))


def apply(op: Op, x: Expr) -> Expr:
    """An elementwise function (exp, log, ...) applied to ``x``."""
    if op not in ELEMENTWISE:
        raise MatdiffError(f"{op.name} is not an elementwise function")
    if is_zero(x) and OPS[op].keeps_zero:
        return x
    return Expr(op, (x,))


def rebuild(node: Expr, args: tuple[Expr, ...]) -> Expr:
    """The same operation as ``node`` over new arguments, through its builder (so the
    smart constructors fold what the new arguments allow).

    >>> X = sym("X", ("n", "n"))
    >>> rebuild(trace(X), (eye(3),))
    const(3)
    >>> rebuild(X @ X.T, (X, eye("n"))) is X
    True
    """
    return OPS[node.op].build(args, node.attr)


# ----------------------------------------------------------------------------- OPS


def _elementwise(op: Op, ascii: tuple[str, ...], latex: tuple[str, ...] = (),
                 keeps_zero: bool = False, applied_latex: tuple[str, ...] = ()) -> OpSpec:
    """The spec of a scalar function applied entry by entry."""
    return OpSpec("(m,n)->(m,n)", lambda a, _: apply(op, a[0]), ascii, latex,
                  elementwise=True, keeps_zero=keeps_zero, applied_latex=applied_latex)


def _which(name: str) -> str:
    """The extreme a call's name fixes: ``lambda_max``, ``eigmax`` → "max"."""
    return "max" if name.endswith("max") else "min"


def _block_of(a: tuple[Expr, ...], rc: tuple[int, int]) -> Expr:
    return block([a[i * rc[1]:(i + 1) * rc[1]] for i in range(rc[0])])


OPS.update({
    # leaves: the attribute holds the sizes
    Op.SYMBOL: OpSpec("->(m,n)", lambda a, t: sym(*t), arity=0, dims=("m", "n"),
                      dims_of=lambda t: t[1]),
    Op.CONST: OpSpec("->(1,1)", lambda a, c: const(c), arity=0),
    Op.IDENTITY: OpSpec("->(n,n)", lambda a, n: eye(n), ("eye",), arity=0, dims=("n",)),
    Op.ONES: OpSpec("->(m,n)", lambda a, s: ones(s), ("ones",), arity=0, dims=("m", "n"),
                    optional_dims=1, bare=True),
    Op.ZERO: OpSpec("->(m,n)", lambda a, s: zeros(s), ("zeros",), arity=0, dims=("m", "n"),
                    optional_dims=1, bare=True),
    Op.COMMUTATION: OpSpec("->(m*n,m*n)", lambda a, mn: commutation(*mn), ("K",), arity=0,
                           dims=("m", "n")),
    # linear structure
    Op.ADD: OpSpec("(m,n)...->(m,n)", lambda a, _: add(*a), arity=None),
    Op.SCALE: OpSpec("(1,1),(m,n)->(m,n)", lambda a, _: scale(*a), arity=2),
    Op.MATMUL: OpSpec("(d[i],d[i+1])...->(d[0],d[k])", lambda a, _: matmul(*a), arity=None),
    Op.TRANSPOSE: OpSpec("(m,n)->(n,m)", lambda a, _: T(a[0])),
    Op.HADAMARD: OpSpec("(m,n)...->(m,n)", lambda a, _: hadamard(*a), arity=None),
    Op.HDIV: OpSpec("(m,n),(m,n)->(m,n)", lambda a, _: hdiv(*a), arity=2),
    Op.POW: OpSpec("(m,n),(1,1)->(m,n)", lambda a, _: hpow(*a), arity=2),
    Op.KRON: OpSpec("(m,n),(p,q)->(m*p,n*q)", lambda a, _: kron(*a), ("kron",), arity=2),
    Op.BLOCK: OpSpec("(h[i],w[j])...->(sum(h),sum(w))", _block_of, arity=None),
    Op.SLICE: OpSpec("(m,n)->(r1-r0,c1-c0)", lambda a, r: slice_(a[0], *r),
                     dims=("r0", "r1", "c0", "c1")),
    Op.TRIL: OpSpec("(m,n)->(m,n)", lambda a, _: tril(a[0]), ("tril",)),
    # matrix functions
    Op.TRACE: OpSpec("(n,n)->(1,1)", lambda a, _: trace(a[0]), ("tr", "trace", "Tr"),
                     ("tr", "Tr", "trace")),
    Op.DET: OpSpec("(n,n)->(1,1)", lambda a, _: det(a[0]), ("det",), ("det",)),
    Op.LOGDET: OpSpec("(n,n)->(1,1)", lambda a, _: logdet(a[0]), ("logdet",),
                      ("logdet", "log\\det")),
    Op.INV: OpSpec("(n,n)->(n,n)", lambda a, _: inv(a[0]), ("inv",)),
    Op.MATPOW: OpSpec("(n,n)->(n,n)", lambda a, k: matpow(a[0], k)),
    Op.DIAG: OpSpec("(n,n)->(n,1)", lambda a, _: diag(a[0]), ("diag",), ("diag",),
                    on_vector=Op.DIAGM),                    # diag(v) of a vector: Diag(v)
    Op.DIAGM: OpSpec("(n,1)->(n,n)", lambda a, _: diagm(a[0]), ("Diag", "diagm")),
    Op.VEC: OpSpec("(m,n)->(m*n,1)", lambda a, _: vec(a[0]), ("vec",)),
    Op.UNVEC: OpSpec("(m*n,1)->(m,n)", lambda a, mn: unvec(a[0], *mn), ("unvec",),
                     dims=("m", "n")),
    Op.SUM: OpSpec("(m,n)->(1,1)", lambda a, _: total(a[0]), ("sum",)),
    Op.MEAN: OpSpec("(m,n)->(1,1)", lambda a, _: mean(a[0]), ("mean",)),
    Op.LOGSUMEXP: OpSpec("(m,n)->(1,1)", lambda a, _: logsumexp(a[0]), ("logsumexp", "lse")),
    Op.SOFTMAX: OpSpec("(n,1)->(n,1)", lambda a, _: softmax(a[0]), ("softmax",)),
    Op.MAX: OpSpec("(m,n),(m,n)->(m,n)", lambda a, _: maximum(*a), ("max",), ("max",),
                   arity=2),
    Op.MIN: OpSpec("(m,n),(m,n)->(m,n)", lambda a, _: minimum(*a), ("min",), ("min",),
                   arity=2),
    Op.NORM: OpSpec("(m,n)->(1,1)", lambda a, p: norm(a[0], p),
                    ("norm2", "normF", "frob", "norm1"),   # norm(X, p): the parsers
                    attr_of_name=lambda name: "1" if name == "norm1" else "2"),
    Op.INF_NORM: OpSpec("(n,1)->(1,1)", lambda a, _: inf_norm(a[0])),    # ||x||_inf
    # spectral functions and factorizations
    Op.EXPM: OpSpec("(n,n)->(n,n)", lambda a, _: expm(a[0]), ("expm",)),
    Op.LOGM: OpSpec("(n,n)->(n,n)", lambda a, _: logm(a[0]), ("logm",)),
    Op.SQRTM: OpSpec("(n,n)->(n,n)", lambda a, _: sqrtm(a[0]), ("sqrtm",)),
    Op.FRECHET: OpSpec("(n,n),(n,n)->(n,n)", lambda a, f: frechet(f, *a),
                       ("expm_frechet", "logm_frechet", "sqrtm_frechet"), arity=2,
                       attr_of_name=lambda name: name.split("_")[0]),
    Op.EIGVAL: OpSpec("(n,n)->(1,1)", lambda a, w: eigval(a[0], w),
                      ("lambda_max", "lambda_min", "eigmax", "eigmin"), attr_of_name=_which),
    Op.EIGVEC: OpSpec("(n,n)->(n,1)", lambda a, w: eigvec(a[0], w), ("eigvec_max", "eigvec_min"),
                      attr_of_name=_which),
    Op.SPECTRAL_NORM: OpSpec("(m,n)->(1,1)", lambda a, _: spectral_norm(a[0])),  # ||X||_2
    Op.NUCLEAR_NORM: OpSpec("(m,n)->(1,1)", lambda a, _: nuclear_norm(a[0])),    # ||X||_*
    Op.POLAR: OpSpec("(m,n)->(m,n)", lambda a, _: polar(a[0]), ("polar",)),
    Op.SVD_U1: OpSpec("(m,n)->(m,1)", lambda a, _: svd_u1(a[0]), ("svd_u1",)),
    Op.SVD_V1: OpSpec("(m,n)->(n,1)", lambda a, _: svd_v1(a[0]), ("svd_v1",)),
    Op.PINV: OpSpec("(m,n)->(n,m)", lambda a, _: pinv(a[0]), ("pinv",)),
    Op.ADJ: OpSpec("(n,n)->(n,n)", lambda a, _: adj(a[0]), ("adj", "adjugate")),
    Op.CHOL: OpSpec("(n,n)->(n,n)", lambda a, _: chol(a[0]), ("chol", "cholesky")),
    # elementwise functions
    Op.EXP: _elementwise(Op.EXP, ("exp",), ("exp",)),
    Op.LOG: _elementwise(Op.LOG, ("log", "ln"), ("log", "ln")),
    Op.SIN: _elementwise(Op.SIN, ("sin",), ("sin",), keeps_zero=True),
    Op.COS: _elementwise(Op.COS, ("cos",), ("cos",)),
    Op.TAN: _elementwise(Op.TAN, ("tan",), ("tan",), keeps_zero=True),
    Op.TANH: _elementwise(Op.TANH, ("tanh",), ("tanh",), keeps_zero=True),
    Op.SQRT: _elementwise(Op.SQRT, ("sqrt",), keeps_zero=True),    # LaTeX: \sqrt{x}, syntax
    Op.ABS: _elementwise(Op.ABS, ("abs",), keeps_zero=True),
    Op.SIGN: _elementwise(Op.SIGN, ("sign",), ("sgn",), keeps_zero=True),
    Op.SIGMOID: _elementwise(Op.SIGMOID, ("sigmoid", "logistic"), applied_latex=("sigma",)),
    Op.RELU: _elementwise(Op.RELU, ("relu",), keeps_zero=True),
    Op.ARCSIN: _elementwise(Op.ARCSIN, ("arcsin", "asin"), ("arcsin",), keeps_zero=True),
    Op.ARCCOS: _elementwise(Op.ARCCOS, ("arccos", "acos"), ("arccos",)),
    Op.ARCTAN: _elementwise(Op.ARCTAN, ("arctan", "atan"), ("arctan",), keeps_zero=True),
    Op.SOFTPLUS: _elementwise(Op.SOFTPLUS, ("softplus",)),
    Op.LOG1P: _elementwise(Op.LOG1P, ("log1p",), keeps_zero=True),
    Op.EXPM1: _elementwise(Op.EXPM1, ("expm1",), keeps_zero=True),
    Op.SINH: _elementwise(Op.SINH, ("sinh",), ("sinh",), keeps_zero=True),
    Op.COSH: _elementwise(Op.COSH, ("cosh",), ("cosh",)),
    Op.ARCSINH: _elementwise(Op.ARCSINH, ("arcsinh", "asinh"), keeps_zero=True),
    # complex numbers
    Op.IMAG_UNIT: OpSpec("->(1,1)", lambda a, _: imag_unit(), arity=0),   # 1i, 1j
    Op.CONJ: OpSpec("(m,n)->(m,n)", lambda a, _: conj(a[0]), ("conj",)),  # LaTeX \bar{X}
    Op.REAL: OpSpec("(m,n)->(m,n)", lambda a, _: real(a[0]), ("real",), ("Re",)),
    Op.IMAG: OpSpec("(m,n)->(m,n)", lambda a, _: imag(a[0]), ("imag",), ("Im",)),
    Op.ANGLE: OpSpec("(m,n)->(m,n)", lambda a, _: angle(a[0]), ("angle",)),  # \arg: argmin
})

# derived from OPS: the constructors' shape check, and the unary elementwise functions
SHAPE.update({op: shape_function(op.name.lower(), spec) for op, spec in OPS.items()})
ELEMENTWISE: frozenset[Op] = frozenset(op for op, spec in OPS.items() if spec.elementwise)
