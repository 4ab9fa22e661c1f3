"""The simplifier's rewrite rules: one identity per rule, grouped by the Op they rewrite.

Each row is ``Rule(name, pattern, rewrite, guard, domain)`` (the pattern language is in
``rewrite``) with the identity as a trailing comment and a source where one applies:
Petersen & Pedersen, *The Matrix Cookbook*, 2012 (MC, equation or section numbers) and
Magnus & Neudecker, *Matrix Differential Calculus* (MN). A rewrite written as a pattern (a
template) makes the rule data that a search can apply in either direction.

Domains: an identity that holds wherever its left side is defined (``x·x⁻¹ = 1``,
``(AB)⁻¹ = B⁻¹A⁻¹``) has the domain "all". Any other states its domain, and its guard asks
``domain`` whether the domain is known to hold, from declarations (``pos``, ``spd``) or from
the form (``exp``, ``x∘² + 1``, ``|·|``); elsewhere the general form stays: ``(u²)^½`` is
``|u|``, not ``u``, and ``(uv)^½`` stays whole when the signs of u and v are unknown.

``cheaper`` is the guard of the rules that only help when their result costs less
(factoring); the rewriter then keeps the cheapest of their candidates (``order.cost``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

from . import expr as E
from .algebra import (
    coefficient,
    common_coefficient,
    common_scalar_factor,
    diagonal_free,
    factor_out,
    hadamard_factors,
    is_symbolic_identity,
    leading_factor,
    matrix_power,
    negate_inside,
    power,
    quotient,
    sorted_factors,
    sorted_hadamard,
    sorted_terms,
    trailing_factor,
    without,
)
from .domain import det_positive, is_nonneg, is_nonzero, is_positive
from .expr import Expr, Op
from .order import cost, order_key
from .rewrite import Pat, Rule, RuleSet, Seq, View, build_chain, chain, var
from .textbook import TEXTBOOK, ends_smaller

__all__ = ["RULES", "TRANSPOSES", "SUMS", "SCALARS", "POWERS", "PRODUCTS", "HADAMARD",
           "FUNCTIONS", "ML", "cheaper"]


# ----------------------------------------------------------------------------- vocabulary

def P(op: Op, *args: Pat | Seq | type(...), **kw: object) -> Pat:  # type: ignore[valid-type]  # noqa: N802
    """The pattern (or template) ``op(args)``: ``P(Op.KRON, A, B)`` is ``A ⊗ B``."""
    return Pat(op, list(args), **kw)  # type: ignore[arg-type]


def T(x: Pat) -> Pat:  # noqa: N802
    """The pattern ``xᵀ``."""
    return Pat(Op.TRANSPOSE, [x])


def const(value: int) -> Pat:
    """The number ``value`` (in a pattern or a template)."""
    return Pat(Op.CONST, attr=value)


A, B, C, D, F, M, N = (var(n) for n in "ABCDFMN")
X, Y, U, V_ = var("X"), var("Y"), var("U"), var("V")
s, u = var("s"), var("u")
c, d, k, p, q = (Pat(Op.CONST, name=n) for n in "cdkpq")
square = (lambda name: var(name, lambda e: e.rows == e.cols))

# Views: a term as (numeric coefficient, rest); a factor as (base, numeric exponent), for a
# scalar, a Hadamard factor (not 𝟏) and a reciprocal; a matrix power as (base, k); a
# Hadamard product as its factors (any other node is one factor); a term of a sum as its
# first or last matrix factor.
term = (lambda cf, rest: View(coefficient, cf, rest))
pw = (lambda base, ex, **kw: View(power, base, ex, **kw))
scalar_pw = (lambda base, ex, **kw: View(power, base, ex, where=lambda e: e.is_scalar, **kw))
hadamard_pw = (lambda base, ex, **kw: View(power, base, ex, where=lambda e: e.op is not Op.ONES,
                                           **kw))
any_pw = (lambda base, ex: View(lambda e: (e.args[0], e.args[1]) if e.op is Op.POW else
                                (e, E.const(1)), base, ex, where=lambda e: e.is_scalar))
reciprocal = (lambda base, ex: View(power, base, ex, where=lambda e: e.is_scalar and (
    e.op is Op.POW and e.args[1].op is Op.CONST and e.args[1].attr < 0)))
matrix_pw = (lambda base, ex: View(matrix_power, base, ex, where=lambda e: e.rows == e.cols))
hadamard = (lambda *items: View(hadamard_factors, *items))
first = (lambda f: View(leading_factor, f))
last = (lambda f: View(trailing_factor, f))


def cheaper(root: Expr, new: Expr) -> bool:
    """The guard of a rule that only helps when its result costs less."""
    return cost(new) < cost(root)


def _integer(x: Expr) -> bool:
    return x.op is Op.CONST and x.attr.denominator == 1


def _even(x: Expr) -> bool:
    return _integer(x) and x.attr.numerator % 2 == 0


def _product(fs: Sequence[Expr]) -> Expr:
    return build_chain(Op.SCALE, fs, E.const(1))


# ----------------------------------------------------------------------------- transposes

TRANSPOSES = RuleSet([
    Rule("transpose-of-product", T(P(Op.MATMUL, Seq("fs"))),          # (AB)ᵀ = BᵀAᵀ  MC 5
         lambda fs: E.matmul(*(E.T(f) for f in reversed(fs)))),
    Rule("transpose-of-sum", T(P(Op.ADD, Seq("ts"))),                 # (A + B)ᵀ = Aᵀ + Bᵀ  MC 4
         lambda ts: E.add(*(E.T(t) for t in ts)), cheaper),
    Rule("transpose-of-hadamard", T(P(Op.HADAMARD, Seq("fs"))),        # (A ⊙ B)ᵀ = Aᵀ ⊙ Bᵀ
         lambda fs: E.hadamard(*(E.T(f) for f in fs))),
    Rule("transpose-of-quotient", T(P(Op.HDIV, A, B)),                 # (A ⊘ B)ᵀ = Aᵀ ⊘ Bᵀ
         P(Op.HDIV, T(A), T(B))),
    Rule("transpose-of-power", T(P(Op.POW, A, p)),                     # (A∘ᵖ)ᵀ = (Aᵀ)∘ᵖ
         P(Op.POW, T(A), p)),
    Rule("transpose-of-elementwise", T(Pat(E.ELEMENTWISE, [A], name="f")),  # f(A)ᵀ = f(Aᵀ)
         lambda f, A: E.apply(f.op, E.T(A)), cheaper),
    Rule("transpose-of-matrix-power", T(P(Op.MATPOW, A, name="Ak")),   # (Aᵏ)ᵀ = (Aᵀ)ᵏ
         lambda Ak, A: E.matpow(E.T(A), Ak.attr), cheaper),
    Rule("transpose-of-kron", T(P(Op.KRON, A, B)),                # (A ⊗ B)ᵀ = Aᵀ ⊗ Bᵀ  MC 10.2.1
         P(Op.KRON, T(A), T(B))),
    Rule("transpose-of-diagonal", T(P(Op.DIAGM, A)),                   # Diag(a)ᵀ = Diag(a)
         P(Op.DIAGM, A)),
    Rule("transpose-of-block", T(Pat(Op.BLOCK, name="M")),  # [A B; C D]ᵀ = [Aᵀ Cᵀ; Bᵀ Dᵀ]
         lambda M: E.block([[E.T(M.args[i * M.attr[1] + j]) for i in range(M.attr[0])]
                            for j in range(M.attr[1])])),
    Rule("transpose-of-inverse", T(P(Op.INV, A)),                      # (A⁻¹)ᵀ = (Aᵀ)⁻¹  MC 3
         P(Op.INV, T(A)), lambda A: A.op is not Op.SYMBOL or A.symmetric),  # X⁻ᵀ stays
])


# ----------------------------------------------------------------------------- sums

def _all_negative(e: Expr) -> bool:
    return all(coefficient(t)[0].attr < 0 for t in e.args)


def _all_transposed(e: Expr) -> bool:
    return all(coefficient(t)[1].op is Op.TRANSPOSE for t in e.args)


def _fold_transposes(root: Expr) -> Expr:
    return E.T(E.add(*(E.scale(cf, rest.args[0]) for cf, rest in map(coefficient, root.args))))


def _same_partition(M: Expr, N: Expr) -> bool:  # noqa: N803
    return M.attr == N.attr and all(x.shape == y.shape for x, y in zip(M.args, N.args,
                                                                       strict=True))


def _add_blocks(M: Expr, N: Expr) -> Expr:  # noqa: N803
    return E.Expr(Op.BLOCK, tuple(E.add(x, y) for x, y in zip(M.args, N.args, strict=True)),
                  M.attr)


SUMS = RuleSet([
    Rule("expand-scaled-sum", P(Op.ADD, ..., P(Op.SCALE, c, Pat(Op.ADD, name="V")), ...),
         lambda c, V: tuple(E.scale(c, t) for t in V.args)),          # c(A + B) = cA + cB
    Rule("collect-terms", P(Op.ADD, ..., term(c, X), ..., term(d, X), ...),  # cX + dX = (c+d)X
         lambda c, d, X: E.scale(E.const(c.attr + d.attr), X)),
    Rule("negate-sum", Pat(Op.ADD, where=_all_negative),              # −A − B = −(A + B)
         lambda root: E.neg(E.add(*(E.neg(t) for t in root.args)))),
    Rule("transposed-sum", Pat(Op.ADD, where=_all_transposed),        # Aᵀ + Bᵀ = (A + B)ᵀ
         _fold_transposes),
    Rule("add-blocks", P(Op.ADD, ..., Pat(Op.BLOCK, name="M"), ..., Pat(Op.BLOCK, name="N"), ...),
         _add_blocks, _same_partition),                               # [A B] + [C D] = [A+C B+D]
    Rule("factor-left", P(Op.ADD, ..., first(F), ..., first(F), ...),  # AX + AY = A(X + Y)
         lambda root, F: factor_out(root, F, 0), cheaper),
    Rule("factor-right", P(Op.ADD, ..., last(F), ..., last(F), ...),  # XA + YA = (X + Y)A
         lambda root, F: factor_out(root, F, -1), cheaper),
    Rule("factor-scalar", Pat(Op.ADD), common_scalar_factor, cheaper),  # sX + sY = s(X + Y)
    Rule("sort-terms", Pat(Op.ADD), sorted_terms),                    # A + B = B + A
])


# ----------------------------------------------------------------------------- scalar factors

def _power_splits(p: Expr, u: Expr, pre: tuple[Expr, ...], post: tuple[Expr, ...]) -> bool:
    """(ur)ᵖ = uᵖ rᵖ where p is an integer (not −1: u⁻¹r⁻¹ is written (ur)⁻¹), or u > 0, or
    r > 0, or u, r >= 0."""
    r = _product(pre + post)
    return p.attr != -1 and (_integer(p) or is_positive(u) or is_positive(r) or
                             is_nonneg(u) and is_nonneg(r))


def _abs_expands(k: Expr, s: Expr, root: Expr) -> bool:
    """|s|ᵏ = sᵏ sign(s)ᵏ (k an integer) is worth it where s or sign(s) is a factor too."""
    if s.is_complex:
        return False                                  # |s| is no power of s for complex s
    bases = {power(f)[0] for f in chain(root)}
    return _integer(k) and (s in bases or E.apply(Op.SIGN, s) in bases)


def _cancel(D: Expr, xq: Expr, X: Expr, p: Expr, q: Expr) -> tuple[Expr, ...]:  # noqa: N803
    return E.hpow(X, E.const(p.attr - q.attr)), E.hpow(without(D, xq), E.const(-1))


def _common_factor(c: Expr, d: Expr) -> Fraction:
    """The number c and d share, to cancel from c (d r)⁻¹: their gcd for integers, d where
    it divides c (1 when nothing cancels, or c is ±1)."""
    if abs(c.attr) == 1 or d.attr == 1:
        return Fraction(1)
    if c.attr.denominator == d.attr.denominator == 1:
        return Fraction(math.gcd(c.attr.numerator, d.attr.numerator)) * (1 if d.attr > 0 else -1)
    return d.attr if (c.attr / d.attr).denominator == 1 else Fraction(1)


def _cancel_number(c: Expr, d: Expr, rest: tuple[Expr, ...]) -> tuple[Expr, Expr]:
    """c (d r)⁻¹ = (c/g) ((d/g) r)⁻¹, g the factor they share."""
    g = _common_factor(c, d)
    return E.const(c.attr / g), E.hpow(E.scale(E.const(d.attr / g), _product(rest)),
                                        E.const(-1))


def _join(X: Expr, Y: Expr, p: Expr, q: Expr) -> Expr:  # noqa: N803
    return E.hpow(E.scale(E.hpow(X, E.const(-p.attr)), E.hpow(Y, E.const(-q.attr))), -1)


def _has_common_coefficient(e: Expr) -> bool:
    return common_coefficient(e.args) not in (0, 1)


def _divided(V: Expr) -> tuple[Expr, Expr]:  # noqa: N803
    """A sum ``gA + gB`` as (g, A + B), g the common coefficient of its terms."""
    g = common_coefficient(V.args)
    return E.const(g), E.add(*(E.scale(E.const(1 / g), t) for t in V.args))


def _pull_coefficient(c: Expr, V: Expr) -> Expr:  # noqa: N803
    g, rest = _divided(V)
    return E.scale(E.const(c.attr * g.attr), rest)


SUM_WITH_COEFFICIENT = Pat(Op.ADD, name="V", where=_has_common_coefficient)


def _flip(c: Expr, X: Expr) -> Expr | None:  # noqa: N803
    flipped = negate_inside(X)
    return None if flipped is None else E.scale(E.const(-c.attr), flipped)


SIGN_SQUARED = P(Op.POW, P(Op.SIGN, s), const(2))
POWER_OF_POWER = P(Op.POW, P(Op.POW, u, p), q)

SCALARS = RuleSet([
    Rule("merge-powers", P(Op.SCALE, ..., scalar_pw(X, p), ..., scalar_pw(X, q), ...),
         lambda X, p, q: E.hpow(X, E.const(p.attr + q.attr))),        # xᵖ xᵠ = xᵖ⁺ᵠ
    Rule("merge-expression-powers",                               # xᵖ xᵠ = xᵖ⁺ᵠ, p an expression
         P(Op.SCALE, ..., any_pw(X, U), ..., any_pw(X, D), ...),      # det X · det X^(1/n − 1)
         lambda X, U, D: E.hpow(X, E.add(U, D)),                      #   = det X^(1/n)
         lambda U, D: U.op is not Op.CONST or D.op is not Op.CONST),
    Rule("join-reciprocals", P(Op.SCALE, ..., reciprocal(X, p), ..., reciprocal(Y, q), ...),
         _join),                                                      # x⁻ᵖ y⁻ᵠ = (xᵖ yᵠ)⁻¹
    Rule("cancel-reciprocal",                                         # xᵖ (xᵠ r)⁻¹ = xᵖ⁻ᵠ r⁻¹
         P(Op.SCALE, ..., P(Op.POW, P(Op.SCALE, ..., scalar_pw(X, q, name="xq"), ..., name="D"),
                            const(-1)), ..., scalar_pw(X, p), ...), _cancel),
    Rule("cancel-number",                                 # c (d r)⁻¹ = (c/g) ((d/g) r)⁻¹
         P(Op.SCALE, c, ..., P(Op.POW, P(Op.SCALE, d, Seq("rest")), const(-1)), ...),
         _cancel_number, lambda c, d: _common_factor(c, d) != 1),
    Rule("abs-as-sign", P(Op.SCALE, ..., pw(P(Op.ABS, s), k), ...),   # |s|ᵏ = sᵏ sign(s)ᵏ, k ∈ ℤ
         lambda s, k: (E.hpow(s, k), E.hpow(E.apply(Op.SIGN, s), k)), _abs_expands),
    Rule("sign-square-absorbed",                                      # sign(s)² sᵖ = sᵖ, p > 0
         P(Op.SCALE, ..., SIGN_SQUARED, ..., scalar_pw(s, p), ...),
         lambda s, p: E.hpow(s, p), lambda p: p.attr > 0),
    Rule("coefficient-into-scale",                                    # c(gA + gB) = (cg)(A + B)
         P(Op.SCALE, c, SUM_WITH_COEFFICIENT), _pull_coefficient),
    Rule("flip-difference", P(Op.SCALE, Pat(Op.CONST, attr=lambda a: a < 0, name="c"), X),
         _flip),                                                      # −c(Y − X) = c(X − Y)
    Rule("sort-scalar-factors", Pat(Op.SCALE), sorted_factors),       # ab = ba
])


# ----------------------------------------------------------------------------- powers, |.|, sign

POWERS = RuleSet([
    Rule("power-of-product", P(Op.POW, P(Op.SCALE, Seq("pre"), u, Seq("post")), p),
         lambda p, u, pre, post: E.scale(E.hpow(u, p), E.hpow(_product(pre + post), p)),
         _power_splits, "p ∈ ℤ, or u > 0, or r > 0, or u, r >= 0"),  # (ur)ᵖ = uᵖ rᵖ
    Rule("power-of-power", POWER_OF_POWER,                            # (uᵖ)ᵠ = uᵖᵠ
         lambda u, p, q: E.hpow(u, E.const(p.attr * q.attr)),
         lambda u, p, q: _integer(q) or not _even(p) or is_nonneg(u),
         "q ∈ ℤ, or p ∉ 2ℤ (uᵖ has the sign of u), or u >= 0"),
    Rule("power-of-even-power", POWER_OF_POWER,                       # (uᵖ)ᵠ = |u|ᵖᵠ, p ∈ 2ℤ
         lambda u, p, q: E.hpow(E.apply(Op.ABS, u), E.const(p.attr * q.attr)),
         lambda u, p, q: _even(p) and not _integer(q) and not u.is_complex),
    Rule("abs-even-power", P(Op.POW, P(Op.ABS, u), k),                # |u|ᵏ = uᵏ, k ∈ 2ℤ
         P(Op.POW, u, k), lambda u, k: _even(k) and not u.is_complex),
    Rule("sign-odd-power", P(Op.POW, P(Op.SIGN, s), k),               # sign(s)²ʲ⁺¹ = sign(s)
         P(Op.SIGN, s), lambda k: _integer(k) and k.attr % 2 == 1 and k.attr != 1),
    Rule("sign-even-power", P(Op.POW, P(Op.SIGN, s), k),              # sign(s)²ʲ = sign(s)²
         P(Op.POW, P(Op.SIGN, s), const(2)), lambda k: _even(k) and k.attr not in (0, 2)),
    Rule("sign-square", SIGN_SQUARED, lambda s: E.ones(s.shape),      # sign(s)² = 1
         lambda s: is_nonzero(s), "s ≠ 0"),
    Rule("sqrt-of-even-power", P(Op.SQRT, P(Op.POW, u, k)),           # √(u²ʲ) = |u|ʲ
         lambda u, k: E.hpow(E.apply(Op.ABS, u), E.const(k.attr / 2)),
         lambda u, k: _even(k) and not u.is_complex),
    Rule("abs-of-nonneg", P(Op.ABS, u), lambda u: u,                  # |u| = u
         lambda u: is_nonneg(u), "u >= 0"),
    Rule("sign-of-scaled", P(Op.SIGN, P(Op.SCALE, c, u)),       # sign(cu) = sign(c) sign(u)
         lambda c, u: E.scale(E.const(1 if c.attr > 0 else -1), E.apply(Op.SIGN, u))),
    Rule("sign-of-positive", P(Op.SIGN, u), lambda u: E.ones(u.shape),  # sign(u) = 1
         lambda u: is_positive(u), "u > 0"),
])


# ----------------------------------------------------------------------------- matrix products

def _kron_conform(A: Expr, B: Expr, C: Expr, D: Expr) -> bool:  # noqa: N803
    return A.cols == C.rows and B.cols == D.rows


def _vec_conform(Bt: Expr, A: Expr, X: Expr) -> bool:  # noqa: N803
    return A.cols == X.rows and Bt.rows == X.cols


def _blocks_conform(M: Expr, N: Expr) -> bool:  # noqa: N803
    return M.attr[0] == 1 and N.attr[1] == 1 and M.attr[1] == N.attr[0] and \
        all(x.cols == y.rows for x, y in zip(M.args, N.args, strict=True))


def _block_product(M: Expr, N: Expr) -> Expr:  # noqa: N803
    return E.add(*(x @ y for x, y in zip(M.args, N.args, strict=True)))


def _has_identity_term(e: Expr) -> bool:
    return any(is_symbolic_identity(t) for t in e.args)


PRODUCTS = RuleSet([
    Rule("scalar-factor-out",                                         # A s B = s AB
         P(Op.MATMUL, Seq("pre"), var("s", lambda e: e.is_scalar), Seq("post")),
         lambda s, pre, post: E.scale(s, E.matmul(*pre, *post)),
         lambda pre, post: any(not f.is_scalar for f in pre + post)),
    Rule("mixed-product", P(Op.MATMUL, ..., P(Op.KRON, A, B), P(Op.KRON, C, D), ...),
         P(Op.KRON, P(Op.MATMUL, A, C), P(Op.MATMUL, B, D)),
         _kron_conform),                                       # (A⊗B)(C⊗D) = AC⊗BD  MC 10.2.1
    Rule("kron-vec", P(Op.MATMUL, ..., P(Op.KRON, var("Bt"), A), P(Op.VEC, X), ...),
         P(Op.VEC, P(Op.MATMUL, A, X, T(var("Bt")))),
         _vec_conform),                                      # (Bᵀ⊗A) vec X = vec(AXB)  MC 10.2.2
    Rule("block-product", P(Op.MATMUL, ..., Pat(Op.BLOCK, name="M"), Pat(Op.BLOCK, name="N"),
                            ...),
         _block_product, _blocks_conform),                            # [A B][C; D] = AC + BD
    Rule("repeated-factor", P(Op.MATMUL, ..., matrix_pw(X, p), matrix_pw(X, q), ...),
         lambda X, p, q: E.matpow(X, int(p.attr + q.attr))),          # Xᵖ Xᵠ = Xᵖ⁺ᵠ
    Rule("distribute-identity",                                       # (A + sI)B = AB + sB
         P(Op.MATMUL, Seq("pre"), Pat(Op.ADD, name="V", where=_has_identity_term), Seq("post")),
         lambda pre, V, post: E.add(*(E.matmul(*pre, t, *post) for t in V.args))),
    Rule("power-transpose", P(Op.MATPOW, T(X), name="M"),             # (Xᵀ)ᵏ = (Xᵏ)ᵀ
         lambda X, M: E.T(E.matpow(X, M.attr))),
    Rule("kron-of-identities",                                        # I_m ⊗ I_n = I_mn
         P(Op.KRON, Pat(Op.IDENTITY, name="Im"), Pat(Op.IDENTITY, name="In")),
         lambda Im, In: E.eye(Im.attr * In.attr)),
    Rule("kron-of-ones", P(Op.KRON, Pat(Op.ONES), Pat(Op.ONES)),      # 𝟏 ⊗ 𝟏 = 𝟏
         lambda root: E.ones(root.shape)),
])


# ----------------------------------------------------------------------------- Hadamard products

def _mask(e: Expr) -> bool:
    return e.op in (Op.IDENTITY, Op.DIAGM)


def _unmasked(root: Expr) -> Expr | None:
    """I ⊙ X with X replaced by the simplest expression that has X's diagonal."""
    if not any(_mask(f) for f in root.args):
        return None
    return E.hadamard(*(f if _mask(f) else diagonal_free(f) for f in root.args))


def _one_removed(factors: tuple[Expr, ...], item: Expr) -> list[Expr]:
    """``factors`` without one occurrence of ``item`` (``x ⊙ x ⊘ x`` keeps one ``x``: soak
    case 627160, where every copy was dropped)."""
    out = list(factors)
    out.remove(item)
    return out


def _cancel_quotient(root: Expr, n: Expr, d: Expr, X: Expr, p: Expr, q: Expr) -> Expr:  # noqa: N803
    num = _one_removed(hadamard_factors(root.args[0]), n)
    den = _one_removed(hadamard_factors(root.args[1]), d)
    k = p.attr - q.attr
    if k:
        (num if k > 0 else den).append(E.hpow(X, E.const(abs(k))))
    return quotient(num, den, root)


EXP_U = P(Op.EXP, U)

HADAMARD = RuleSet([
    Rule("hadamard-merge-powers",                                      # X∘ᵖ ⊙ X∘ᵠ = X∘⁽ᵖ⁺ᵠ⁾
         P(Op.HADAMARD, ..., hadamard_pw(X, p), ..., hadamard_pw(X, q), ...),
         lambda X, p, q: E.hpow(X, E.const(p.attr + q.attr))),
    Rule("identity-power", P(Op.POW, Pat(Op.IDENTITY, name="Id"), p),  # I∘ᵖ = I (entries 0, 1)
         lambda Id: Id, lambda p: p.attr > 0),
    Rule("hadamard-of-quotient",                                       # X ⊙ (A ⊘ B) = (X ⊙ A) ⊘ B
         P(Op.HADAMARD, Seq("pre"), P(Op.HDIV, A, B), Seq("post")),
         lambda pre, A, B, post: E.hdiv(E.hadamard(*pre, A, *post), B)),
    Rule("hadamard-negative-power",                                    # A ⊙ X∘⁻ᵖ = A ⊘ X∘ᵖ
         P(Op.HADAMARD, Seq("pre"), P(Op.POW, X, Pat(Op.CONST, attr=lambda a: a < 0, name="p")),
           Seq("post")),
         lambda pre, X, p, post: E.hdiv(E.hadamard(*pre, *post), E.hpow(X, -p.attr))),
    Rule("diagonal-mask", Pat(Op.HADAMARD), _unmasked),  # I ⊙ X = I ⊙ X̃ where diag X̃ = diag X
    Rule("diagonal-absorbs-identity",                                  # I ⊙ Diag(v) = Diag(v)
         P(Op.HADAMARD, ..., Pat(Op.IDENTITY), ..., Pat(Op.DIAGM, name="Dv"), ...),
         lambda Dv: Dv),
    Rule("quotient-of-quotient", P(Op.HDIV, P(Op.HDIV, A, B), C),      # (A ⊘ B) ⊘ C = A ⊘ (B ⊙ C)
         P(Op.HDIV, A, P(Op.HADAMARD, B, C))),
    Rule("quotient-by-quotient", P(Op.HDIV, A, P(Op.HDIV, B, C)),      # A ⊘ (B ⊘ C) = (A ⊙ C) ⊘ B
         P(Op.HDIV, P(Op.HADAMARD, A, C), B)),
    Rule("quotient-cancel",                                            # X∘ᵖ ⊘ X∘ᵠ = X∘⁽ᵖ⁻ᵠ⁾
         P(Op.HDIV, hadamard(..., hadamard_pw(X, p, name="n"), ...),
           hadamard(..., hadamard_pw(X, q, name="d"), ...)), _cancel_quotient),
    Rule("quotient-scaled-denominator", P(Op.HDIV, A, P(Op.SCALE, c, B)),  # A ⊘ (cB) = c⁻¹(A ⊘ B)
         lambda A, c, B: E.scale(E.const(1 / c.attr), E.hdiv(A, B))),
    Rule("sigmoid", P(Op.HDIV, hadamard(Seq("pre"), EXP_U, Seq("post")),  # eᵘ ⊘ (eᵘ + 𝟏) = σ(u)
                      P(Op.ADD, EXP_U, Pat(Op.ONES))),
         lambda U, pre, post: E.hadamard(E.apply(Op.SIGMOID, U), *pre, *post)),
    Rule("diagonal-part", P(Op.DIAGM, P(Op.DIAG, X)),                 # Diag(diag X) = I ⊙ X
         lambda X: E.hadamard(E.eye(X.rows), X)),
    Rule("sort-hadamard-factors", Pat(Op.HADAMARD), sorted_hadamard),  # A ⊙ B = B ⊙ A
])


# ----------------------------------------------------------------------------- matrix functions

def _rotation(fs: tuple[Expr, ...]) -> Expr | None:
    """tr(ABC) = tr(BCA) = tr(CAB): the rotation that is a 1×1 product, else the least one
    in the structural order."""
    rotations = [fs[i:] + fs[:i] for i in range(len(fs))]
    for r in rotations:
        if r[0].rows == E.ONE:
            return E.matmul(*r)
    best = min(rotations, key=lambda r: order_key(E.matmul(*r)))
    return None if best == fs else E.trace(E.matmul(*best))


def _all_square(fs: tuple[Expr, ...]) -> bool:
    return all(f.rows == f.cols for f in fs)


def _logdet_splits(fs: tuple[Expr, ...]) -> bool:
    """logdet(AB) = logdet A + logdet B (logdet X = log det X) where at most one factor can
    have a negative determinant."""
    return _all_square(fs) and sum(not det_positive(f) for f in fs) <= 1


FUNCTIONS = RuleSet([
    Rule("trace-of-zero", P(Op.TRACE, Pat(Op.ZERO)), const(0)),       # tr 0 = 0
    Rule("trace-of-sum", P(Op.TRACE, P(Op.ADD, Seq("ts"))),    # tr(A + B) = tr A + tr B  MC 15
         lambda ts: E.add(*(E.trace(t) for t in ts))),
    Rule("trace-of-scaled", P(Op.TRACE, P(Op.SCALE, s, A)),           # tr(sA) = s tr A
         P(Op.SCALE, s, P(Op.TRACE, A))),
    Rule("trace-of-transpose", P(Op.TRACE, T(X)), P(Op.TRACE, X)),    # tr Xᵀ = tr X  MC 16
    Rule("trace-of-kron", P(Op.TRACE, P(Op.KRON, square("A"), square("B"))),
         P(Op.SCALE, P(Op.TRACE, A), P(Op.TRACE, B))),         # tr(A⊗B) = tr A tr B  MC 10.2.1
    Rule("trace-cyclic", P(Op.TRACE, P(Op.MATMUL, Seq("fs"))),        # tr(ABC) = tr(BCA)  MC 16
         _rotation),
    Rule("det-of-product", P(Op.DET, P(Op.MATMUL, Seq("fs"))),        # det(AB) = det A det B  MC 21
         lambda fs: _product([E.det(f) for f in fs]) if _all_square(fs) else None,
         ends_smaller),  # where it ends smaller
    Rule("det-of-transpose", P(Op.DET, T(X)), P(Op.DET, X)),          # det Xᵀ = det X  MC 20
    Rule("logdet-of-product", P(Op.LOGDET, P(Op.MATMUL, Seq("fs"))),  # logdet AB = Σ logdet
         lambda fs: E.add(*(E.logdet(f) for f in fs)), _logdet_splits,
         "at most one factor with det < 0"),
    Rule("logdet-of-transpose", P(Op.LOGDET, T(X)), P(Op.LOGDET, X)),  # logdet Xᵀ = logdet X
    Rule("log-det", P(Op.LOG, P(Op.DET, X)), P(Op.LOGDET, X)),        # log det X = logdet X
    Rule("inverse-of-product", P(Op.INV, P(Op.MATMUL, Seq("fs"))),    # (AB)⁻¹ = B⁻¹A⁻¹  MC 1
         lambda fs: E.matmul(*(E.inv(f) for f in reversed(fs))) if _all_square(fs) else None,
         ends_smaller),  # where it ends smaller
    Rule("inverse-of-scaled", P(Op.INV, P(Op.SCALE, s, A)),           # (sA)⁻¹ = s⁻¹A⁻¹
         P(Op.SCALE, P(Op.POW, s, const(-1)), P(Op.INV, A))),
    Rule("sum-of-scaled", P(Op.SUM, P(Op.SCALE, s, A)),               # sum(sA) = s sum A
         P(Op.SCALE, s, P(Op.SUM, A))),
    Rule("sum-of-transpose", P(Op.SUM, T(X)), P(Op.SUM, X)),          # sum Xᵀ = sum X
    Rule("sum-of-diagonal",                                           # sum(I ⊙ X) = tr X
         P(Op.SUM, P(Op.HADAMARD, Seq("pre"), Pat(Op.IDENTITY), Seq("post"))),
         lambda pre, post: E.trace(E.hadamard(*pre, *post))),
])


# ----------------------------------------------------------------------------- ML functions

def _one_plus(x: Expr) -> Expr | None:
    """u when ``x`` is 𝟏 + u (the 1 a number or an all-ones matrix)."""
    if x.op is not Op.ADD or len(x.args) != 2:
        return None
    a, b = x.args
    is_one = (lambda e: e.op is Op.ONES or e.op is Op.CONST and e.attr == 1)
    return b if is_one(a) else a if is_one(b) else None


def _log_one_plus_exp(U: Expr) -> Expr | None:  # noqa: N803
    u = _one_plus(U)
    return E.apply(Op.SOFTPLUS, u.args[0]) if u is not None and u.op is Op.EXP else None


def _log_one_minus_sigmoid(U: Expr) -> Expr | None:  # noqa: N803
    u = _one_plus(U)
    c, core = coefficient(u) if u is not None else (None, U)
    if c is None or c.attr != -1 or core.op is not Op.SIGMOID:
        return None
    return E.neg(E.apply(Op.SOFTPLUS, core.args[0]))


def _cancelling_sum(e: Expr) -> bool:
    """A Hadamard product with a sum factor, a term of which divides by another factor."""
    others = set(e.args)
    return any(f.op is Op.ADD and any(coefficient(t)[1].op is Op.HDIV and
                                      coefficient(t)[1].args[1] in others for t in f.args)
               for f in e.args)


def _distributed(t: Expr) -> tuple[Expr, ...] | None:
    """The terms of c (A ⊙ (B + C) ⊙ D) = c A⊙B⊙D + c A⊙C⊙D, or None for another term."""
    c, core = coefficient(t)
    i = next((i for i, f in enumerate(hadamard_factors(core)) if f.op is Op.ADD), None)
    if core.op is not Op.HADAMARD or i is None:
        return None
    fs = core.args
    return tuple(E.scale(c, E.hadamard(*fs[:i], u, *fs[i + 1:])) for u in fs[i].args)


def _expandable(e: Expr) -> bool:
    return sum(_distributed(t) is not None for t in e.args) >= 2


def _expand_terms(root: Expr) -> Expr:
    """The distributed terms, like terms collected (cX + dX = (c + d)X): the rule is kept
    only where that makes the sum cheaper."""
    collected: dict[Expr, Fraction] = {}
    for term in (u for t in root.args for u in (_distributed(t) or (t,))):
        c, rest = coefficient(term)
        if rest.op is Op.HADAMARD:
            rest = sorted_hadamard(rest) or rest
        collected[rest] = collected.get(rest, Fraction(0)) + c.attr
    return E.add(*(E.scale(E.const(c), rest) for rest, c in collected.items()))


def _column(name: str) -> Pat:
    return var(name, lambda e: e.cols == E.ONE and e.rows != E.ONE)


ML = RuleSet([
    Rule("log-sigmoid", P(Op.LOG, P(Op.SIGMOID, U)),                  # log σ(u) = −softplus(−u)
         lambda U: E.neg(E.apply(Op.SOFTPLUS, E.neg(U)))),
    Rule("log-one-plus-exp", P(Op.LOG, U), _log_one_plus_exp),        # log(𝟏 + eᵘ) = softplus u
    Rule("log-one-minus-sigmoid", P(Op.LOG, U),                       # log(𝟏 − σ(u)) = −softplus u
         _log_one_minus_sigmoid),
    Rule("log-sum-exp", P(Op.LOG, P(Op.SUM, P(Op.EXP, U))),           # log Σ eᵘ = logsumexp u
         P(Op.LOGSUMEXP, U)),
    Rule("softmax", P(Op.SCALE, P(Op.POW, P(Op.SUM, P(Op.EXP, _column("u"))), const(-1)),
                      P(Op.EXP, _column("u"))),                       # eᵘ/Σ eᵘ = softmax u
         P(Op.SOFTMAX, var("u"))),
    Rule("inner-of-quotient", P(Op.MATMUL, T(_column("u")),            # uᵀ(v ⊘ u) = Σ v
                                P(Op.HDIV, V_, _column("u"))),
         P(Op.SUM, V_)),
    Rule("distribute-into-quotients",                                 # A ⊙ (B ⊘ A + C) = B + A ⊙ C
         Pat(Op.HADAMARD, [Seq("pre"), P(Op.ADD, Seq("ts")), Seq("post")],
             where=_cancelling_sum),
         lambda pre, ts, post: E.add(*(E.hadamard(*pre, t, *post) for t in ts)), cheaper),
    Rule("expand-hadamard-terms", Pat(Op.ADD, where=_expandable),     # (A + B) ⊙ C = A⊙C + B⊙C
         _expand_terms, cheaper),                                     # where terms then cancel
])

RULES = TRANSPOSES + SUMS + SCALARS + POWERS + PRODUCTS + TEXTBOOK + HADAMARD + FUNCTIONS + ML
