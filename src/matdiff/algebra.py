"""Normal forms the rewrite rules read and write: terms, scalar monomials, Hadamard factors.

* A term of a sum is ``c · rest`` with a numeric ``c`` (``coefficient``).
* A chain of scalar factors ``a·(b·(c·X))`` is kept as: the number first, then the one
  reciprocal ``(d₁d₂)⁻¹`` that collects every factor with a negative exponent, then the
  other factors (symbols first, then in the structural order), then the matrix body
  (``sorted_factors``; ``join_monomial`` builds it from exponents).
* A Hadamard product is kept with ``I`` first and the other factors in the structural order
  (``sorted_hadamard``); the terms of a sum positive first, constants last (``sorted_terms``).

Nothing here prints an expression: every order comes from ``order.order_key``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

from . import expr as E
from .domain import is_nonneg
from .expr import Expr, Op
from .order import order_key
from .rewrite import build_chain, chain

__all__ = ["coefficient", "power", "power_of", "hadamard_factors", "leading_factor",
           "trailing_factor", "factor_out", "common_scalar_factor", "sorted_terms",
           "sorted_factors", "sorted_hadamard", "negate_inside", "without", "diagonal_free",
           "is_symbolic_identity", "join_monomial", "matrix_power", "monomial",
           "common_coefficient"]

ONE = E.const(1)


# ----------------------------------------------------------------------------- views

def coefficient(e: Expr) -> tuple[Expr, Expr]:
    """A term as (numeric coefficient, the rest): ``2X`` is (2, X), ``3`` is (3, 1)."""
    if e.op is Op.SCALE and e.args[0].op is Op.CONST:
        return e.args[0], e.args[1]
    if e.op is Op.CONST:
        return e, ONE
    return ONE, e


def power(e: Expr) -> tuple[Expr, Expr]:
    """A factor as (base, numeric exponent): ``x²`` is (x, 2), ``x`` is (x, 1)."""
    if e.op is Op.POW and e.args[1].op is Op.CONST:
        return e.args[0], e.args[1]
    return e, ONE


power_of = power


def matrix_power(e: Expr) -> tuple[Expr, Expr]:
    """A matrix factor as (base, integer exponent): ``X³`` is (X, 3), ``(X³)ᵀ`` is (Xᵀ, 3)
    (as ``(Xᵏ)ᵀ = (Xᵀ)ᵏ``), any other factor ``F`` is (F, 1).

    >>> X = E.sym("X", ("n", "n"))
    >>> [str(p) for p in matrix_power(E.T(E.matpow(X, 3)))]
    ["X'", '3']
    """
    if e.op is Op.MATPOW:
        return e.args[0], E.const(e.attr)
    if e.op is Op.TRANSPOSE and e.args[0].op is Op.MATPOW:
        return E.T(e.args[0].args[0]), E.const(e.args[0].attr)
    return e, ONE


def hadamard_factors(e: Expr) -> tuple[Expr, ...]:
    """The factors of a Hadamard product; any other node is a product of one factor."""
    return e.args if e.op is Op.HADAMARD else (e,)


def split_term(t: Expr) -> tuple[Expr, list[Expr]]:
    """A matrix term as (its scalar factor, its matrix-product factors); a scalar term has
    no matrix factors."""
    if t.is_scalar:
        return t, []
    items = chain(t) if t.op is Op.SCALE else (t,)
    scalar = build_chain(Op.SCALE, items[:-1], ONE) if len(items) > 1 else ONE
    body = items[-1]
    return scalar, list(body.args) if body.op is Op.MATMUL else [body]


def leading_factor(t: Expr) -> tuple[Expr] | None:
    """The first matrix factor of a term, when factoring it out leaves something: a term
    with a symbolic scalar and a single factor (``(xᵀAx) x``) keeps its factor."""
    s, fs = split_term(t)
    return (fs[0],) if len(fs) >= 2 or fs and s.op is Op.CONST else None


def trailing_factor(t: Expr) -> tuple[Expr] | None:
    s, fs = split_term(t)
    return (fs[-1],) if len(fs) >= 2 or fs and s.op is Op.CONST else None


def _rebuild(scalar: Expr, factors: Sequence[Expr], shape: E.Shape) -> Expr:
    if factors:
        return E.scale(scalar, E.matmul(*factors))
    return E.scale(scalar, E.eye(shape[0])) if shape != E.SCALAR else scalar


def factor_out(root: Expr, f: Expr, side: int) -> Expr:
    """Σ f Xᵢ + rest = f (Σ Xᵢ) + rest (``side`` 0), or Σ Xᵢ f + rest = (Σ Xᵢ) f + rest
    (``side`` −1), over every term of the sum ``root`` that starts (ends) with ``f``."""
    inside, outside = [], []
    for t in root.args:
        view = leading_factor(t) if side == 0 else trailing_factor(t)
        if view is not None and view[0] is f:
            s, fs = split_term(t)
            rest = fs[1:] if side == 0 else fs[:-1]
            shape = (f.cols, root.cols) if side == 0 else (root.rows, f.rows)
            inside.append(_rebuild(s, rest, shape))
        else:
            outside.append(t)
    grouped = E.add(*inside)
    pulled = E.matmul(f, grouped) if side == 0 else E.matmul(grouped, f)
    return E.add(pulled, *outside) if outside else pulled


# ----------------------------------------------------------------------------- orders

def term_key(t: Expr) -> tuple[Any, ...]:
    """Positive terms first, then negative ones, each with ones last, and a number last of
    all (where ``add`` puts it); within those, the structural order."""
    cf, rest = coefficient(t)
    return (rest.op is Op.CONST, cf.attr < 0, rest.op is Op.ONES, order_key(rest))


def scalar_key(f: Expr) -> tuple[Any, ...]:
    """The number, then the reciprocal, then symbols, then other factors (by base)."""
    base, ex = power(f)
    rank = 0 if f.op is Op.CONST else 1 if ex.attr < 0 else 2
    return (rank, base.op is not Op.SYMBOL, order_key(base), ex.attr)


def hadamard_key(f: Expr) -> tuple[Any, ...]:
    """The masks ``I`` and ``Diag(v)`` first, then the structural order of the bases."""
    base, ex = power(f)
    return (base.op is not Op.IDENTITY, base.op is not Op.DIAGM, order_key(base), ex.attr)


def _in_order(items: Sequence[Expr], key: Callable[[Expr], Any]) -> list[Expr] | None:
    """``items`` sorted by ``key``, or None when they already are."""
    keys = [key(x) for x in items]
    if all(a <= b for a, b in zip(keys, keys[1:], strict=False)):
        return None
    return [items[i] for _, i in sorted(zip(keys, range(len(items)), strict=True))]


def sorted_terms(root: Expr) -> Expr | None:
    """A + B = B + A: the terms of a sum in canonical order."""
    terms = _in_order(root.args, term_key)
    return None if terms is None else E.add(*terms)


def sorted_factors(root: Expr) -> Expr | None:
    """ab = ba: a chain of scalar factors in canonical order (the matrix body stays last)."""
    items = chain(root)
    body = [] if items[-1].is_scalar else [items[-1]]
    scalars = _in_order(items[:len(items) - len(body)], scalar_key)
    return None if scalars is None else build_chain(Op.SCALE, scalars + body, root)


def sorted_hadamard(root: Expr) -> Expr | None:
    """A ⊙ B = B ⊙ A: the factors of a Hadamard product in canonical order."""
    factors = _in_order(root.args, hadamard_key)
    return None if factors is None else E.hadamard(*factors)


# ----------------------------------------------------------------------------- monomials

Powers = dict[Expr, Fraction]


def monomial(e: Expr) -> tuple[Fraction, Powers, Expr | None]:
    """``e = c · ∏ bᵢ^kᵢ · body``: the numeric coefficient, the exponent of each scalar
    base, and the matrix body (None for a scalar). A power of a product is split only
    where ``(uv)ᵏ = uᵏvᵏ`` holds (k an integer, or positive factors)."""
    coeff = Fraction(1)
    powers: Powers = {}
    body: Expr | None = None
    stack = [(e, Fraction(1))]
    while stack:
        node, kk = stack.pop()
        if node.op is Op.CONST and kk == 1:
            coeff *= node.attr
        elif node.op is Op.SCALE and (kk.denominator == 1 or all(  # (uv)ᵏ = uᵏvᵏ
                is_nonneg(f) for f in chain(node))):
            stack.append((node.args[1], kk))
            stack.append((node.args[0], kk))
        elif node.is_scalar:
            base, ex = power(node)
            if base is not node and (kk.denominator == 1 or not _even(ex.attr) or
                                     is_nonneg(base)):  # (uᵃ)ᵏ = uᵃᵏ
                stack.append((base, kk * ex.attr))
            else:
                powers[node] = powers.get(node, Fraction(0)) + kk
        else:
            body = node
    return coeff, powers, body


def join_monomial(coeff: Fraction, powers: Powers, body: Expr | None,
                  shape: E.Shape) -> Expr:
    """The canonical chain ``c · (∏ dⱼ)⁻¹ · ∏ bᵢ^kᵢ · body``."""
    if coeff == 0:
        return E.zeros(shape)
    factors = [E.hpow(b, E.const(kk)) for b, kk in powers.items() if kk != 0]
    num = sorted((f for f in factors if power(f)[1].attr > 0), key=scalar_key)
    den = [E.hpow(power(f)[0], E.const(-power(f)[1].attr))
           for f in factors if power(f)[1].attr < 0]
    items: list[Expr] = [E.const(coeff)] if coeff != 1 else []
    if den:
        den.sort(key=scalar_key)
        items.append(E.hpow(build_chain(Op.SCALE, den, ONE), E.const(-1)))
    items += num
    if body is not None:
        items.append(body)
    return build_chain(Op.SCALE, items, E.zeros(shape)) if items else E.const(1)


def _even(k: Fraction) -> bool:
    return k.denominator == 1 and k.numerator % 2 == 0


def _gcd(a: Fraction, b: Fraction) -> Fraction:
    return Fraction(math.gcd(a.numerator, b.numerator), math.lcm(a.denominator, b.denominator))


def common_coefficient(terms: Sequence[Expr]) -> Fraction:
    """The greatest common divisor of the numeric coefficients of ``terms`` (positive)."""
    g = Fraction(0)
    for t in terms:
        g = _gcd(g, abs(coefficient(t)[0].attr))
    return g


def common_scalar_factor(root: Expr) -> Expr | None:
    """Σ s·tᵢ = s·Σ tᵢ for the largest common numeric and symbolic scalar factor ``s``
    (2X + 2Y = 2(X + Y), X/s + Y/s² = (X + Y/s)/s); None if there is none."""
    split = [monomial(t) for t in root.args]
    g = Fraction(0)
    for cf, _, _ in split:
        g = _gcd(g, abs(cf))
    common: Powers = {}
    for base in split[0][1]:
        ks = [pw.get(base, Fraction(0)) for _, pw, _ in split]
        if all(x > 0 for x in ks):
            common[base] = min(ks)
        elif all(x < 0 for x in ks):
            common[base] = max(ks)
    if g.denominator == 1 and len(split) < 3 and any(cf < 0 for cf, _, _ in split):
        g = Fraction(1)  # 2X − 2Y stays; 2X + 2Y, 2A + 2B − 2C and X/2 − Y/2 are factored
    if g in (0, 1) and not common:
        return None
    inner = [join_monomial(cf / g, {b: kk - common.get(b, Fraction(0)) for b, kk in pw.items()},
                           body, root.shape) for cf, pw, body in split]
    return join_monomial(g, common, E.add(*inner), root.shape)


# ----------------------------------------------------------------------------- small helpers

def without(d: Expr, item: Expr) -> Expr:
    """The chain ``d`` without one occurrence of ``item``."""
    items = list(chain(d))
    items.remove(item)
    return build_chain(Op.SCALE, items, d) if items else ONE


def is_symbolic_identity(t: Expr) -> bool:
    """Is ``t`` a symbolic scalar times the identity (``(xᵀAx) I``)?"""
    items = chain(t) if t.op is Op.SCALE else (t,)
    return len(items) > 1 and items[-1].op is Op.IDENTITY and \
        any(f.op is not Op.CONST for f in items[:-1])


def negate_inside(x: Expr) -> Expr | None:
    """−x, written without a leading minus by negating one difference inside a linear slot
    (product factor, Hadamard factor, transpose, slice) that has more negative than positive
    terms, or None."""
    if x.op is Op.ADD:
        negs = sum(1 for t in x.args if coefficient(t)[0].attr < 0)
        return E.add(*(E.neg(t) for t in x.args)) if 2 * negs > len(x.args) else None
    if x.op is Op.SCALE:
        inner = negate_inside(x.args[1])
        return None if inner is None else E.scale(x.args[0], inner)
    if x.op in (Op.TRANSPOSE, Op.SLICE):
        inner = negate_inside(x.args[0])
        return None if inner is None else (E.T(inner) if x.op is Op.TRANSPOSE
                                           else E.slice_(inner, *x.attr))
    if x.op in (Op.MATMUL, Op.HADAMARD):
        for i, f in enumerate(x.args):
            inner = negate_inside(f)
            if inner is not None:
                args = x.args[:i] + (inner,) + x.args[i + 1:]
                return E.matmul(*args) if x.op is Op.MATMUL else E.hadamard(*args)
    return None


def diagonal_free(x: Expr) -> Expr:
    """An expression with the same diagonal as ``x``, without transposes or inner ``I ⊙``
    masks (``I ⊙ (A + Bᵀ) = I ⊙ (A + B)``)."""
    if x.op is Op.TRANSPOSE and x.rows == x.cols:
        return diagonal_free(x.args[0])
    if x.op is Op.SCALE:
        return E.scale(x.args[0], diagonal_free(x.args[1]))
    if x.op is Op.ADD:
        return E.add(*(diagonal_free(t) for t in x.args))
    if x.op is Op.HADAMARD and any(f.op is Op.IDENTITY for f in x.args):
        rest = [f for f in x.args if f.op is not Op.IDENTITY]
        return diagonal_free(E.hadamard(*rest) if len(rest) > 1 else rest[0])
    return x


def quotient(num: Sequence[Expr], den: Sequence[Expr], like: Expr) -> Expr:
    """``(⊙ num) ⊘ (⊙ den)``, with ``𝟏`` for an empty product."""
    top = E.hadamard(*num) if num else E.ones(like.shape)
    if not den:
        return top
    return E.hdiv(top, E.hadamard(*den) if len(den) > 1 else den[0])
