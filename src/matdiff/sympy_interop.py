"""SymPy interop: a SymPy matrix expression in, an ``Expr`` out, and back.

``from_sympy`` reads SymPy's matrix expressions (``MatrixSymbol``, ``MatMul``, ``MatAdd``,
``Transpose``, ``Inverse``, ``Trace``, ``Determinant``, ``HadamardProduct``,
``HadamardPower``, ``KroneckerProduct``, ``BlockMatrix``, ``MatPow``, ``MatrixSlice``,
``Identity``, ``ZeroMatrix``, ``OneMatrix``, ``DiagonalOf``, ``DiagMatrix``), numbers, scalar
``Symbol``s, scalar functions (``exp``, ``log``, ``sqrt``, ...) and scalar functions applied
entry by entry (``X.applyfunc(exp)``, any ``Lambda``). Shapes come from the symbols'
dimensions: a SymPy symbol ``n`` becomes the dimension name ``n`` (polynomials such as
``2*n`` stay polynomials), a number stays a number. Each SymPy class is read by one row of
``READ``; a class without a row is a ``MatdiffError`` naming it.

``to_sympy`` writes an ``Expr`` with SymPy's nodes, one row of ``WRITE`` per ``Op``. Where
SymPy has no node it writes an exact formula of its nodes (``log(det X)``, ``sqrt(tr(XᵀX))``,
``X ∘ Y^∘-1``, ``1/(1 + e⁻ˣ)``); for ``vec``, ``unvec`` and ``K(m, n)``, which SymPy cannot
write, it raises a ``MatdiffError`` naming the Op. Over the Ops SymPy has (``SHARED``),
``from_sympy(to_sympy(e)) is e``.

matdiff's variables are real: ``Adjoint`` is read as the transpose. SymPy's ``MatrixSymbol``
carries no structure; ``from_sympy(..., structures={"S": "symmetric"})`` declares one.
SymPy is imported here only (the ``sympy`` extra); ``import matdiff`` does not load it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any

import sympy as sp
from sympy.core.numbers import Exp1
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.matrices.expressions.diagonal import DiagMatrix, DiagonalMatrix, DiagonalOf
from sympy.matrices.expressions.matexpr import MatrixElement

from . import expr as E
from .expr import Dim, Expr, MatdiffError, Op

__all__ = ["from_sympy", "to_sympy", "READ", "WRITE", "FUNCTIONS", "SHARED", "NO_FORM"]

# an elementwise Op and SymPy's scalar function
FUNCTIONS: dict[Op, Any] = {
    Op.EXP: sp.exp, Op.LOG: sp.log, Op.SIN: sp.sin, Op.COS: sp.cos, Op.TAN: sp.tan,
    Op.TANH: sp.tanh, Op.ABS: sp.Abs, Op.SIGN: sp.sign, Op.ARCSIN: sp.asin,
    Op.ARCCOS: sp.acos, Op.ARCTAN: sp.atan, Op.SINH: sp.sinh, Op.COSH: sp.cosh,
    Op.ARCSINH: sp.asinh,
}
_OP_OF_FUNCTION = {f: op for op, f in FUNCTIONS.items()}


def _unevaluated(f: Any) -> Callable[[Any], Any]:
    """``f(x)`` as written: SymPy would fold ``exp(log x)`` to ``x``."""
    return lambda x: f(x, evaluate=False)


# every elementwise Op as the SymPy formula to_sympy writes
_WRITTEN: dict[Op, Callable[[Any], Any]] = {
    **{op: _unevaluated(f) for op, f in FUNCTIONS.items()},
    Op.SQRT: lambda x: sp.Pow(x, sp.S.Half, evaluate=False),          # sqrt(x) = x^(1/2)
    Op.SIGMOID: lambda x: sp.Pow(sp.Add(1, sp.exp(sp.Mul(-1, x, evaluate=False),
                                                   evaluate=False), evaluate=False),
                                 -1, evaluate=False),                  # σ(x) = 1/(1 + e⁻ˣ)
    Op.RELU: lambda x: sp.Max(0, x, evaluate=False),                   # relu(x) = max(0, x)
}

# Ops SymPy cannot write: to_sympy raises, naming them
NO_FORM: dict[Op, str] = {
    Op.VEC: "vec", Op.UNVEC: "unvec", Op.COMMUTATION: "the commutation matrix K(m, n)",
    # the spectral functions and factorizations (sp.exp of a MatrixSymbol is no matrix
    # exponential, and SymPy's matrix expressions have no eigenvector, SVD or Cholesky node)
    Op.TRIL: "a lower-triangle node (tril)", Op.EXPM: "matrix exponential expm",
    Op.LOGM: "matrix logarithm logm", Op.SQRTM: "principal matrix square root sqrtm",
    Op.FRECHET: "Fréchet derivative of a matrix function",
    Op.EIGVAL: "extreme eigenvalue lambda_max/lambda_min",
    Op.EIGVEC: "eigenvector eigvec_max/eigvec_min", Op.SPECTRAL_NORM: "spectral norm",
    Op.NUCLEAR_NORM: "nuclear norm", Op.POLAR: "polar factor (UV' of the SVD)",
    Op.SVD_U1: "singular vector svd_u1", Op.SVD_V1: "singular vector svd_v1",
    Op.PINV: "pseudo-inverse node (pinv)", Op.ADJ: "adjugate node (adj)",
    Op.CHOL: "Cholesky factor (chol)",
    # the ML functions: SymPy would read a formula back as its parts, and its Max/Min of
    # matrices and its mean are no matrix-expression nodes
    Op.SOFTPLUS: "softplus", Op.LOG1P: "log1p", Op.EXPM1: "expm1",
    Op.MAX: "elementwise max of matrices", Op.MIN: "elementwise min of matrices",
    Op.LOGSUMEXP: "logsumexp", Op.SOFTMAX: "softmax", Op.MEAN: "mean of the entries",
    Op.INF_NORM: "max-norm ||x||_inf",
    # complex numbers: SymPy's MatrixSymbol carries no complex declaration to read back
    Op.IMAG_UNIT: "the imaginary unit (complex matrices)", Op.CONJ: "the conjugate conj(X)",
    Op.REAL: "the real part real(X)", Op.IMAG: "the imaginary part imag(X)",
    Op.ANGLE: "the phase angle(X)",
}
# Ops written as a formula of other SymPy nodes, read back as that formula (same value)
_FORMULA = frozenset({Op.HDIV, Op.LOGDET, Op.SUM, Op.NORM})
# Ops with a SymPy node of their own: from_sympy(to_sympy(e)) is e over these. Exceptions:
# a scalar x^(1/2) is SymPy's sqrt(x), read as sqrt; a declared structure other than a
# scalar's "pos" is not kept (pass structures= to from_sympy)
SHARED = frozenset(Op) - _FORMULA - frozenset(NO_FORM)

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_D = sp.Dummy("d")  # the variable of every elementwise Lambda that to_sympy writes

# ----------------------------------------------------------------------------- SymPy -> Expr


def from_sympy(expr: Any, structures: Mapping[str, str] | None = None) -> Expr:
    """A SymPy (matrix) expression as a typed ``Expr``; ``structures`` declares a symbol's
    structure by name (``{"S": "symmetric"}``), which SymPy's ``MatrixSymbol`` lacks.

    >>> import sympy as sp
    >>> n = sp.Symbol("n"); X = sp.MatrixSymbol("X", n, n); x = sp.MatrixSymbol("x", n, 1)
    >>> str(from_sympy(sp.Trace(X.T * X) + 2)), str(from_sympy(x.T * X * x))
    ("tr(X'*X) + 2", "x'*X*x")
    >>> import matdiff as md
    >>> str(md.grad(from_sympy(sp.log(sp.Determinant(X))), "X"))
    "inv(X)'"
    """
    expr = sp.sympify(expr)
    return _Reader(structures or {}, _size_names(expr)).read(expr)


def _size_names(expr: Any) -> set[str]:
    """The names in the sizes of the matrices in ``expr``."""
    return {v.name for node in sp.preorder_traversal(expr) if getattr(node, "is_Matrix", False)
            for d in node.shape for v in sp.sympify(d).free_symbols}


class _Reader:
    """One conversion: the size names of the whole expression, the symbols met so far (a
    name has one shape), the variables of the Lambdas being read (bound to the matrix they
    run over), and a memo."""

    def __init__(self, structures: Mapping[str, str], sizes: set[str]):
        self.structures = structures
        self.sizes = sizes
        self.symbols: dict[str, Expr] = {}
        self.bound: dict[Any, Expr] = {}
        self.memo: dict[tuple[Any, ...], Expr] = {}

    def read(self, s: Any) -> Expr:
        key = (s, *self.bound.items())
        out = self.memo.get(key)
        if out is None:
            rule = next((READ[c] for c in type(s).__mro__ if c in READ), None)
            if rule is None:
                raise MatdiffError(f"from_sympy: SymPy's {type(s).__name__} ({s}) has no "
                                   "counterpart in matdiff")
            out = self.memo[key] = rule(self, s)
        return out

    def dim(self, d: Any) -> Dim:
        """A SymPy size (an integer, a symbol, a polynomial with integer coefficients)."""
        d = sp.sympify(d)
        if d.is_Integer:
            return Dim.of(int(d))
        gens = sorted(d.free_symbols, key=str)
        try:
            poly = sp.Poly(d, *gens) if gens else None
        except sp.PolynomialError:
            poly = None
        if poly is None or not all(c.is_Integer for c in poly.coeffs()):
            raise MatdiffError(f"from_sympy: the size {d} is not a polynomial with integer "
                               "coefficients in dimension names")
        for g in gens:
            self.check_name(g.name, "a dimension")
        return Dim({tuple(sorted(g.name for g, k in zip(gens, monom, strict=True)
                                 for _ in range(k))): int(c) for monom, c in poly.terms()})

    @staticmethod
    def check_name(name: str, what: str) -> None:
        if not _NAME.fullmatch(name):
            raise MatdiffError(f"from_sympy: {what} is named {name!r}; matdiff names are a "
                               "letter, then letters, digits or _ (rename it in SymPy)")

    def symbol(self, name: str, shape: tuple[Dim, Dim], structure: str = "") -> Expr:
        self.check_name(name, "a symbol")
        out = E.sym(name, shape, self.structures.get(name, structure))
        seen = self.symbols.setdefault(name, out)
        if seen is not out:
            raise MatdiffError(f"from_sympy: {name} is used with two shapes (or structures), "
                               f"{_fmt(seen.shape)} and {_fmt(out.shape)}")
        return out

    def function(self, f: Any, x: Expr) -> Expr:
        """``f`` (a SymPy function or a ``Lambda``) applied to each entry of ``x``."""
        if isinstance(f, sp.Lambda):
            if len(f.variables) != 1:
                raise MatdiffError(f"from_sympy: {f} takes {len(f.variables)} arguments")
            saved = self.bound.get(f.variables[0])
            self.bound[f.variables[0]] = x
            try:
                return self.read(f.expr)
            finally:
                self.bound.pop(f.variables[0])
                if saved is not None:
                    self.bound[f.variables[0]] = saved
        if f in _OP_OF_FUNCTION:
            return E.apply(_OP_OF_FUNCTION[f], x)
        raise MatdiffError(f"from_sympy: the function {f} has no counterpart in matdiff")


def _fmt(shape: tuple[Dim, Dim]) -> str:
    return f"{shape[0]}×{shape[1]}"


def _times(a: Expr, b: Expr) -> Expr:
    """A SymPy product of scalars; in an elementwise ``Lambda``, entry by entry."""
    if a.is_scalar:
        return E.scale(a, b)
    return E.scale(b, a) if b.is_scalar else E.hadamard(a, b)


def _plus(terms: list[Expr]) -> Expr:
    """A SymPy sum of scalars; in an elementwise ``Lambda`` a scalar is added to each entry."""
    shape = next((t.shape for t in terms if not t.is_scalar), None)
    if shape is None:
        return E.add(*terms)
    return E.add(*(E.scale(t, E.ones(shape)) if t.is_scalar else t for t in terms))


def _symbol(r: _Reader, s: Any) -> Expr:
    if s in r.bound:
        return r.bound[s]
    if s.name in r.sizes:                         # a size as a number (SymPy's tr(Iₙ) = n)
        return E.trace(E.eye(r.dim(s)))
    return r.symbol(s.name, E.SCALAR, "pos" if s.is_positive else "")


def _pow(r: _Reader, s: Any) -> Expr:
    base, p = s.args
    if p == sp.S.Half:                                               # x^(1/2) = sqrt(x)
        return E.apply(Op.SQRT, r.read(base))
    if p == -1 and isinstance(base, sp.Add) and len(base.args) == 2 and 1 in base.args:
        other = base.args[1] if base.args[0] == 1 else base.args[0]
        if isinstance(other, sp.exp):                                # 1/(1 + e^-u) = σ(u)
            t = other.args[0]
            u = t.args[1] if isinstance(t, sp.Mul) and len(t.args) == 2 and t.args[0] == -1 \
                else -t
            return E.apply(Op.SIGMOID, r.read(u))
    return E.hpow(r.read(base), r.read(p))


def _max(r: _Reader, s: Any) -> Expr:
    if len(s.args) == 2 and 0 in s.args:                             # max(0, u) = relu(u)
        return E.apply(Op.RELU, r.read(s.args[1] if s.args[0] == 0 else s.args[0]))
    raise MatdiffError(f"from_sympy: {s}: matdiff has max(0, x) only (relu)")


def _matmul(r: _Reader, s: Any) -> Expr:
    scalars = [r.read(a) for a in s.args if not a.is_Matrix]
    out = E.matmul(*(r.read(a) for a in s.args if a.is_Matrix))
    for c in reversed(scalars):
        out = E.scale(c, out)
    return out


def _matpow(r: _Reader, s: Any) -> Expr:
    base, k = s.args
    if not k.is_Integer:
        raise MatdiffError(f"from_sympy: {s}: a matrix power needs an integer exponent")
    return E.matpow(r.read(base), int(k))


def _slice(r: _Reader, s: Any) -> Expr:
    parent, rows, cols = s.args
    if rows[2] != 1 or cols[2] != 1:
        raise MatdiffError(f"from_sympy: {s}: matdiff takes slices with step 1")
    return E.slice_(r.read(parent), r.dim(rows[0]), r.dim(rows[1]), r.dim(cols[0]),
                    r.dim(cols[1]))


def _entry(r: _Reader, s: Any) -> Expr:
    parent, i, j = s.args
    if parent.shape == (1, 1) and i == 0 and j == 0:                 # a 1×1 matrix's entry
        return r.read(parent)
    raise MatdiffError(f"from_sympy: {s}: matdiff works with whole matrices, not entries")


def _number(r: _Reader, s: Any) -> Expr:
    raise MatdiffError(f"from_sympy: {s}: matdiff's constants are rational numbers")


def _function(r: _Reader, s: Any) -> Expr:
    if len(s.args) != 1:
        raise MatdiffError(f"from_sympy: {s}: matdiff's functions take one argument")
    return r.function(type(s), r.read(s.args[0]))


def _kron(r: _Reader, s: Any) -> Expr:
    out = r.read(s.args[0])
    for a in s.args[1:]:
        out = E.kron(out, r.read(a))
    return out


READ: dict[type, Callable[[_Reader, Any], Expr]] = {
    sp.MatrixSymbol: lambda r, s: r.symbol(s.name, (r.dim(s.rows), r.dim(s.cols))),
    sp.Symbol: _symbol,
    sp.Rational: lambda r, s: E.const(Fraction(int(s.p), int(s.q))),
    sp.Float: lambda r, s: E.const(float(s)),
    Exp1: lambda r, s: E.apply(Op.EXP, E.const(1)),               # e = exp(1)
    sp.Number: _number,
    sp.NumberSymbol: _number,
    sp.Add: lambda r, s: _plus([r.read(a) for a in s.args]),
    sp.Mul: lambda r, s: _fold(_times, [r.read(a) for a in s.args]),
    sp.Pow: _pow,
    sp.Max: _max,
    sp.Function: _function,
    sp.MatAdd: lambda r, s: E.add(*(r.read(a) for a in s.args)),
    sp.MatMul: _matmul,
    sp.Transpose: lambda r, s: E.T(r.read(s.arg)),
    sp.Adjoint: lambda r, s: E.T(r.read(s.arg)),                     # real: Xᴴ = Xᵀ
    sp.Inverse: lambda r, s: E.inv(r.read(s.arg)),
    sp.MatPow: _matpow,
    sp.Trace: lambda r, s: E.trace(r.read(s.arg)),
    sp.Determinant: lambda r, s: E.det(r.read(s.arg)),
    sp.HadamardProduct: lambda r, s: E.hadamard(*(r.read(a) for a in s.args)),
    sp.HadamardPower: lambda r, s: E.hpow(r.read(s.base), r.read(s.exp)),
    sp.KroneckerProduct: _kron,
    sp.BlockMatrix: lambda r, s: E.block([[r.read(b) for b in s.blocks.row(i)]
                                          for i in range(s.blocks.rows)]),
    sp.MatrixSlice: _slice,
    MatrixElement: _entry,
    sp.Identity: lambda r, s: E.eye(r.dim(s.rows)),
    sp.ZeroMatrix: lambda r, s: E.zeros((r.dim(s.rows), r.dim(s.cols))),
    sp.OneMatrix: lambda r, s: E.ones((r.dim(s.rows), r.dim(s.cols))),
    DiagonalOf: lambda r, s: E.diag(r.read(s.arg)),
    DiagMatrix: lambda r, s: E.diagm(r.read(s.args[0])),
    DiagonalMatrix: lambda r, s: E.hadamard(E.eye(r.dim(s.rows)), r.read(s.arg)),
    ElementwiseApplyFunction: lambda r, s: r.function(s.function, r.read(s.expr)),
    sp.MatrixBase: lambda r, s: E.block([[r.read(x) for x in s.row(i)] for i in range(s.rows)]),
}


def _fold(f: Callable[[Expr, Expr], Expr], items: list[Expr]) -> Expr:
    out = items[0]
    for x in items[1:]:
        out = f(out, x)
    return out

# ----------------------------------------------------------------------------- Expr -> SymPy


def to_sympy(e: Expr, namespace: Mapping[str, Any] | None = None) -> Any:
    """``e`` as a SymPy expression. Dimension names become SymPy integer symbols, and
    variables ``MatrixSymbol``s or scalar ``Symbol``s, unless ``namespace`` maps the name to
    one of yours (so the result uses your ``n``).

    >>> import matdiff as md
    >>> g = to_sympy(md.grad("||A*x - b||^2", "x")); g
    2*A.T*(A*x - b)
    >>> type(g).__name__, g.shape
    ('MatMul', (n, 1))
    """
    writer = _Writer(namespace or {})
    values: dict[Expr, Any] = {}
    for node in E.toposort([e]):
        if node.op in NO_FORM:
            raise MatdiffError(f"to_sympy: SymPy has no {NO_FORM[node.op]} (Op.{node.op.name}),"
                               f" which {node} needs")
        values[node] = WRITE[node.op](writer, node, [values[a] for a in node.args])
    return values[e]


class _Writer:
    """One conversion: the SymPy symbols of the dimension names and variables."""

    def __init__(self, namespace: Mapping[str, Any]):
        self.names: dict[str, Any] = dict(namespace)

    def dim(self, d: Dim) -> Any:
        return sp.Add(*(c * sp.Mul(*(self.name(v) for v in m)) for m, c in d.terms))

    def name(self, v: str) -> Any:
        if v not in self.names:
            self.names[v] = sp.Symbol(v, integer=True, positive=True)
        return self.names[v]

    def shape(self, e: Expr) -> tuple[Any, Any]:
        return self.dim(e.rows), self.dim(e.cols)

    def symbol(self, e: Expr) -> Any:
        name, _, structure = e.attr
        if e.is_scalar:
            made = sp.Symbol(name, positive=True) if structure == "pos" else sp.Symbol(name)
        else:
            made = sp.MatrixSymbol(name, *self.shape(e))
        out = self.names.setdefault(name, made)
        if getattr(out, "shape", (1, 1)) != getattr(made, "shape", (1, 1)):
            raise MatdiffError(f"to_sympy: the namespace's {name} is {out.shape[0]}×"
                               f"{out.shape[1]}, but {name} is {_fmt(e.shape)}")
        return out


def _scalar(x: Any) -> Any:
    """A SymPy value in a scalar place: a 1×1 matrix expression becomes its trace."""
    return sp.Trace(x) if getattr(x, "is_Matrix", False) else x


def _matrix(x: Any) -> Any:
    """A SymPy value in a matrix place (a block): a scalar becomes a 1×1 matrix."""
    return x if getattr(x, "is_Matrix", False) else sp.ImmutableMatrix([[x]])


def _elementwise(f: Callable[[Any], Any]) -> Callable[[_Writer, Expr, list[Any]], Any]:
    def write(w: _Writer, e: Expr, a: list[Any]) -> Any:
        if e.is_scalar:
            return f(_scalar(a[0]))
        return ElementwiseApplyFunction(sp.Lambda(_D, f(_D)), a[0])
    return write


def _add(w: _Writer, e: Expr, a: list[Any]) -> Any:
    if e.is_scalar:
        return sp.Add(*map(_scalar, a), evaluate=False)
    return sp.MatAdd(*a)


def _scale(w: _Writer, e: Expr, a: list[Any]) -> Any:
    if e.is_scalar:
        return sp.Mul(_scalar(a[0]), _scalar(a[1]), evaluate=False)
    x = a[1].args if isinstance(a[1], sp.MatMul) else (a[1],)  # c(AB) is written cAB
    return sp.MatMul(_scalar(a[0]), *x)


def _pow_of(w: _Writer, e: Expr, a: list[Any]) -> Any:
    if e.is_scalar:
        return sp.Pow(_scalar(a[0]), _scalar(a[1]), evaluate=False)
    return sp.HadamardPower(a[0], _scalar(a[1]))


def _block(w: _Writer, e: Expr, a: list[Any]) -> Any:
    r, c = e.attr
    return sp.BlockMatrix([[_matrix(a[i * c + j]) for j in range(c)] for i in range(r)])


def _entry_sum(w: _Writer, x: Expr, xs: Any) -> Any:
    """The sum of the entries of ``x``: tr(𝟏ᵀ X) with 𝟏 of X's shape."""
    return sp.Trace(sp.MatMul(sp.OneMatrix(w.dim(x.cols), w.dim(x.rows)), xs))


def _norm(w: _Writer, e: Expr, a: list[Any]) -> Any:
    x = e.args[0]
    if x.is_scalar:
        return sp.Abs(_scalar(a[0]))
    if e.attr == "2":
        return sp.sqrt(sp.Trace(sp.MatMul(sp.Transpose(a[0]), a[0])))   # ‖X‖ = √tr(XᵀX)
    return _entry_sum(w, x, ElementwiseApplyFunction(sp.Lambda(_D, sp.Abs(_D)), a[0]))


WRITE: dict[Op, Callable[[_Writer, Expr, list[Any]], Any]] = {
    Op.SYMBOL: lambda w, e, a: w.symbol(e),
    Op.CONST: lambda w, e, a: sp.Rational(e.attr.numerator, e.attr.denominator),
    Op.IDENTITY: lambda w, e, a: sp.Identity(w.dim(e.attr)),
    Op.ONES: lambda w, e, a: sp.OneMatrix(*w.shape(e)),
    Op.ZERO: lambda w, e, a: sp.ZeroMatrix(*w.shape(e)),
    Op.ADD: _add,
    Op.SCALE: _scale,
    Op.MATMUL: lambda w, e, a: sp.MatMul(*a),
    Op.TRANSPOSE: lambda w, e, a: sp.Transpose(a[0]),
    Op.HADAMARD: lambda w, e, a: sp.HadamardProduct(*a),
    Op.HDIV: lambda w, e, a: sp.HadamardProduct(a[0], sp.HadamardPower(a[1], -1)),  # X ∘ Y^∘-1
    Op.POW: _pow_of,
    Op.KRON: lambda w, e, a: sp.KroneckerProduct(*a),
    Op.BLOCK: _block,
    Op.SLICE: lambda w, e, a: sp.MatrixSlice(a[0], tuple(map(w.dim, e.attr[:2])),
                                             tuple(map(w.dim, e.attr[2:]))),
    Op.TRACE: lambda w, e, a: sp.Trace(a[0]),
    Op.DET: lambda w, e, a: sp.Determinant(a[0]),
    Op.LOGDET: lambda w, e, a: sp.log(sp.Determinant(a[0])),                      # log det X
    Op.INV: lambda w, e, a: sp.Inverse(a[0]),
    Op.MATPOW: lambda w, e, a: sp.MatPow(a[0], e.attr),
    Op.DIAG: lambda w, e, a: DiagonalOf(a[0]),
    Op.DIAGM: lambda w, e, a: DiagMatrix(a[0]),
    Op.SUM: lambda w, e, a: _entry_sum(w, e.args[0], a[0]),                       # tr(𝟏ᵀX)
    Op.NORM: _norm,
    **{op: _elementwise(f) for op, f in _WRITTEN.items()},
}
