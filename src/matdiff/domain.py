"""What is known about the signs of an expression's entries: the domains of the rewrite rules.

``signs(e)`` is the set of signs (``NEG``, ``ZERO``, ``POS`` as bits) that an entry of ``e``
can take wherever ``e`` is defined. It is read from declarations (a symbol declared ``pos``;
a scalar declared ``spd``) and from the form: ``exp``, ``σ``, ``|·|``, ``√·``, even powers,
``xᵀx``, norms, positive constants, and sums, products and quotients of known signs.
``is_positive``, ``is_nonneg`` and ``is_nonzero`` ask it; ``det_positive`` asks whether a
square matrix is known to have a positive determinant (``spd``, ``I``, and products,
transposes, inverses and powers of those). Results are cached per interned node.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

from . import expr as E
from .expr import Expr, Op
from .order import unseen

__all__ = ["signs", "is_positive", "is_nonneg", "is_nonzero", "det_positive",
           "NEG", "ZERO", "POS", "ANY_SIGN"]

NEG, ZERO, POS = 1, 2, 4
ANY_SIGN = NEG | ZERO | POS
_SIGNS: dict[Expr, int] = {}


def is_positive(e: Expr) -> bool:
    """Every entry of ``e`` is > 0 wherever ``e`` is defined.

    >>> x = E.sym("x", ("n",))
    >>> is_positive(E.apply(Op.EXP, x)), is_positive(x), is_positive(E.hpow(x, 2) + 1)
    (True, False, True)
    """
    return signs(e) == POS


def is_nonneg(e: Expr) -> bool:
    """Every entry of ``e`` is >= 0 wherever ``e`` is defined.

    >>> x = E.sym("x", ("n",)); is_nonneg(x.T @ x), is_nonneg(x)
    (True, False)
    """
    return not signs(e) & NEG


def is_nonzero(e: Expr) -> bool:
    """No entry of ``e`` is 0 wherever ``e`` is defined.

    >>> lam = E.sym("lam"); is_nonzero(lam), is_nonzero(E.sym("s", (), "pos"))
    (False, True)
    """
    return not signs(e) & ZERO


def signs(e: Expr) -> int:
    """The signs an entry of ``e`` can take (a set of NEG, ZERO, POS bits); cached."""
    memo = _SIGNS
    if e not in memo:
        for node in unseen(e, memo):
            rule = _RULES.get(node.op)
            memo[node] = rule(node, [memo[a] for a in node.args]) \
                if rule and not node.is_complex else ANY_SIGN        # complex: no sign
    return memo[e]


def _times(a: int, b: int) -> int:
    """The signs of a product of two numbers with signs ``a`` and ``b``."""
    out = ZERO if (a & ZERO or b & ZERO) else 0
    if a & POS and b & POS or a & NEG and b & NEG:
        out |= POS
    if a & POS and b & NEG or a & NEG and b & POS:
        out |= NEG
    return out


def _plus(a: int, b: int) -> int:
    """The signs of a sum of two numbers with signs ``a`` and ``b``."""
    if (a | b) & POS and (a | b) & NEG:
        return ANY_SIGN
    out = (a | b) & (POS | NEG)
    return out if out and not (a & ZERO and b & ZERO) else out | ZERO


def _product(ss: list[int]) -> int:
    out = POS
    for s in ss:
        out = _times(out, s)
    return out


def _total(ss: list[int]) -> int:
    out = ZERO
    for s in ss:
        out = _plus(out, s)
    return out


def _flip(s: int) -> int:
    return (s & ZERO) | (POS if s & NEG else 0) | (NEG if s & POS else 0)


def _const(e: Expr, _: list[int]) -> int:
    return POS if e.attr > 0 else NEG if e.attr < 0 else ZERO


def _symbol(e: Expr, _: list[int]) -> int:
    structure = e.attr[2]
    if structure == "pos" or structure == "spd" and e.is_scalar:
        return POS
    return ANY_SIGN


def _power(e: Expr, ss: list[int]) -> int:
    """``x^p``: an even power is >= 0, a fractional one needs x >= 0 to be defined, a
    negative one needs x != 0."""
    base, p = ss[0], e.args[1]
    if p.op is not Op.CONST:
        return POS if base == POS else ANY_SIGN
    k: Fraction = p.attr
    if k.denominator != 1:
        base &= ZERO | POS
    elif k.numerator % 2 == 0:
        base = (base & ZERO) | (POS if base & (POS | NEG) else 0)
    if k < 0:
        base &= NEG | POS
    return base or POS


def _quotient(e: Expr, ss: list[int]) -> int:
    return _times(ss[0], ss[1] & (NEG | POS) or POS)


def _matmul(e: Expr, ss: list[int]) -> int:
    """A product of matrices: entries are sums of products; ``xᵀx`` and ``xᵀSx`` (S spd)
    are >= 0."""
    f = e.args
    k = len(f)
    if e.is_scalar and all(f[i] is E.T(f[k - 1 - i]) for i in range(k // 2)) and \
            (k % 2 == 0 or _spd(f[k // 2])):
        return ZERO | POS
    s = _product(ss)
    return s if s in (POS, ZERO | POS, ZERO) else ANY_SIGN


def _spd(e: Expr) -> bool:
    return e.op is Op.SYMBOL and e.attr[2] == "spd" or e.op is Op.IDENTITY


def _diagonal(e: Expr, ss: list[int]) -> int:
    """tr, det, diag: positive for an spd matrix."""
    x = e.args[0]
    if _spd(x):
        return POS
    if e.op is Op.DET:
        return POS if det_positive(x) else ANY_SIGN
    return _total([ss[0]]) if e.op is Op.TRACE else ss[0]


_RULES: dict[Op, Callable[[Expr, list[int]], int]] = {
    Op.SYMBOL: _symbol,
    Op.CONST: _const,
    Op.IDENTITY: lambda e, ss: ZERO | POS,
    Op.ONES: lambda e, ss: POS,
    Op.ZERO: lambda e, ss: ZERO,
    Op.COMMUTATION: lambda e, ss: ZERO | POS,
    Op.ADD: lambda e, ss: _total(ss),
    Op.SCALE: lambda e, ss: _times(ss[0], ss[1]),
    Op.HADAMARD: lambda e, ss: _product(ss),
    Op.KRON: lambda e, ss: _times(ss[0], ss[1]),
    Op.HDIV: _quotient,
    Op.POW: _power,
    Op.MATMUL: _matmul,
    Op.TRANSPOSE: lambda e, ss: ss[0],
    Op.SLICE: lambda e, ss: ss[0],
    Op.VEC: lambda e, ss: ss[0],
    Op.UNVEC: lambda e, ss: ss[0],
    Op.BLOCK: lambda e, ss: _union(ss),
    Op.DIAGM: lambda e, ss: ss[0] | ZERO,
    Op.DIAG: _diagonal,
    Op.TRACE: _diagonal,
    Op.DET: _diagonal,
    Op.SUM: lambda e, ss: _total([ss[0]]),
    Op.NORM: lambda e, ss: ZERO | POS,
    Op.EXP: lambda e, ss: POS,
    Op.SIGMOID: lambda e, ss: POS,
    Op.ABS: lambda e, ss: (ss[0] & ZERO) | (POS if ss[0] & (POS | NEG) else 0),
    Op.SQRT: lambda e, ss: ss[0] & (ZERO | POS) or POS,
    Op.RELU: lambda e, ss: ZERO | (ss[0] & POS),
    Op.SIGN: lambda e, ss: ss[0],
    Op.TANH: lambda e, ss: ss[0],
    Op.ARCTAN: lambda e, ss: ss[0],
    Op.ARCSIN: lambda e, ss: ss[0],
    Op.ARCCOS: lambda e, ss: ZERO | POS,
    Op.SOFTPLUS: lambda e, ss: POS,
    Op.COSH: lambda e, ss: POS,
    Op.SOFTMAX: lambda e, ss: POS,
    Op.SINH: lambda e, ss: ss[0],
    Op.ARCSINH: lambda e, ss: ss[0],
    Op.EXPM1: lambda e, ss: ss[0],
    Op.LOG1P: lambda e, ss: ss[0],                        # on its domain x > -1
    Op.MEAN: lambda e, ss: _total([ss[0]]),
    Op.MAX: lambda e, ss: POS if POS in ss else _union(ss),   # max ≥ each argument
    Op.MIN: lambda e, ss: NEG if NEG in ss else _union(ss),   # min ≤ each argument
}


def _union(ss: list[int]) -> int:
    out = 0
    for s in ss:
        out |= s
    return out


def det_positive(x: Expr) -> bool:
    """``det(x) > 0`` is known: ``x`` is spd or an identity, or a product, transpose, inverse
    or power of such matrices, or a positive multiple of one.

    >>> S, X = E.sym("S", ("n", "n"), "spd"), E.sym("X", ("n", "n"))
    >>> det_positive(E.inv(S) @ S.T), det_positive(X)
    (True, False)
    """
    if _spd(x):
        return True
    if x.op in (Op.TRANSPOSE, Op.INV, Op.MATPOW):
        return det_positive(x.args[0])
    if x.op is Op.MATMUL:
        return all(f.rows == f.cols and det_positive(f) for f in x.args)
    if x.op is Op.SCALE:
        return is_positive(x.args[0]) and det_positive(x.args[1])
    return False
