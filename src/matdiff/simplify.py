"""Simplification: named, directed rewrite rules run bottom-up to a fixed point.

Input: an ``Expr``. Output: an equal ``Expr`` in canonical form: transposes at the leaves
(``(AB)ᵀ = BᵀAᵀ``; a sum whose terms are all transposed is kept as ``(x − m)ᵀ``, and
``f(X)ᵀ`` of an elementwise ``f`` is pushed only when that removes a transpose), scalar
factors merged into one coefficient in front (``2‖N‖ X / ‖N‖ → 2X``), like terms collected
(``X + 2X → 3X``, ``X − X → 0``), repeated Hadamard factors as powers, common left or right
factors and common scalar factors pulled out of sums when that makes the result shorter
(``Aᵀx + Ax → (A + Aᵀ)x``), a negated difference written the other way round when that
removes minus signs, domain identities (Kronecker, block, trace, det, Hadamard with ``I``),
and terms in a fixed order.

``RULES`` is a table keyed by ``Op`` of ``(name, rewrite)`` rows; a rewrite returns a new,
equal node or ``None``. Each rewrite's docstring states its identity. ``simplify(e, trace)``
appends the names of the rules that fired to ``trace``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction

from . import expr as E
from .expr import Expr, Op

__all__ = ["simplify", "RULES", "cost", "Rule", "rebuild"]

Rewrite = Callable[[Expr], "Expr | None"]
Rule = tuple[str, Rewrite]


def cost(e: Expr) -> int:
    """Size of the printed form: the number of nodes of the tree (shared nodes counted
    each time they occur); a negation ``−X`` costs what ``X`` costs.

    >>> from matdiff.expr import sym
    >>> X = sym("X", ("n", "n")); cost(X + X.T), cost(-X)
    (4, 1)
    """
    memo = _COST
    if e in memo:
        return memo[e]
    for node in E.toposort([e]):
        if node in memo:
            continue
        if node.op is Op.SCALE and node.args[0] is _MINUS_ONE:
            memo[node] = memo[node.args[1]]
        else:
            memo[node] = 1 + sum(memo[a] for a in node.args)
    return memo[e]


# Interned nodes never change, so these are plain caches: cost, printed text (the canonical
# order's key) and simplified form of a node.
_COST: dict[Expr, int] = {}
_TEXT: dict[Expr, str] = {}
_SIMPLE: dict[Expr, Expr] = {}


def _text(e: Expr) -> str:
    """``str(e)``, cached: the key of the canonical order of terms and factors."""
    out = _TEXT.get(e)
    if out is None:
        out = _TEXT[e] = str(e)
    return out


_MINUS_ONE = E.const(-1)


# ----------------------------------------------------------------------------- transposes


def _push_transpose(e: Expr) -> Expr | None:
    """(AB)ᵀ = BᵀAᵀ, (A+B)ᵀ = Aᵀ+Bᵀ, (A⊙B)ᵀ = Aᵀ⊙Bᵀ, f(X)ᵀ = f(Xᵀ), (A⊗B)ᵀ = Aᵀ⊗Bᵀ,
    (X⁻¹)ᵀ = (Xᵀ)⁻¹ except for plain symbols (X⁻ᵀ), so S⁻ᵀ = S⁻¹ for a symmetric S,
    [A B; C D]ᵀ = [Aᵀ Cᵀ; Bᵀ Dᵀ], Diag(x)ᵀ = Diag(x)."""
    x = e.args[0]
    op = x.op
    if op is Op.MATMUL:
        return E.matmul(*(E.T(f) for f in reversed(x.args)))
    if op is Op.ADD:
        pushed = E.add(*(simplify(E.T(t)) for t in x.args))
        return pushed if _transposes(pushed) <= _transposes(x) else None
    if op is Op.HADAMARD:
        return E.hadamard(*(E.T(f) for f in x.args))
    if op is Op.HDIV:
        return E.hdiv(E.T(x.args[0]), E.T(x.args[1]))
    if op is Op.POW:
        return E.hpow(E.T(x.args[0]), x.args[1])
    if op in E.ELEMENTWISE:
        pushed = E.apply(op, simplify(E.T(x.args[0])))
        return pushed if _transposes(pushed) < _transposes(e) else None
    if op is Op.MATPOW:
        pushed = E.matpow(simplify(E.T(x.args[0])), x.attr)
        return pushed if _transposes(pushed) < _transposes(e) else None
    if op is Op.KRON:
        return E.kron(E.T(x.args[0]), E.T(x.args[1]))
    if op is Op.DIAGM:
        return x
    if op is Op.BLOCK:
        r, c = x.attr
        return E.block([[E.T(x.args[i * c + j]) for i in range(r)] for j in range(c)])
    if op is Op.INV and (x.args[0].op is not Op.SYMBOL or x.args[0].symmetric):
        return E.inv(E.T(x.args[0]))
    return None


def _transposes(e: Expr) -> int:
    """Number of transpose nodes in the printed tree of ``e``."""
    memo = _TRANSPOSES
    if e not in memo:
        for node in E.toposort([e]):
            if node not in memo:
                memo[node] = (node.op is Op.TRANSPOSE) + sum(memo[a] for a in node.args)
    return memo[e]


_TRANSPOSES: dict[Expr, int] = {}


def _tree(e: Expr) -> list[Expr]:
    """Every occurrence of every node of ``e`` (a tree walk, shared nodes repeated)."""
    out, stack = [], [e]
    while stack:
        n = stack.pop()
        out.append(n)
        stack.extend(n.args)
    return out


def _fold_transposed_sum(e: Expr) -> Expr | None:
    """Aᵀ + Bᵀ = (A + B)ᵀ, when every term is a transpose (up to a numeric coefficient)."""
    parts = [_term(t) for t in e.args]
    if all(rest.op is Op.TRANSPOSE for _, rest in parts):
        return E.T(E.add(*(E.scale(E.const(c), rest.args[0]) for c, rest in parts)))
    return None


# ----------------------------------------------------------------------------- scalars


def _split_scalar(e: Expr) -> tuple[Fraction, dict[Expr, Fraction], Expr | None]:
    """e = c · ∏ bᵢ^kᵢ · body, with the scalar factors of nested SCALE / POW nodes."""
    coeff = Fraction(1)
    powers: dict[Expr, Fraction] = {}
    body: Expr | None = None
    stack = [(e, Fraction(1))]
    while stack:
        node, k = stack.pop()
        if node.op is Op.CONST and k == 1:
            coeff *= node.attr
        elif node.op is Op.SCALE:
            stack.append((node.args[1], k))
            stack.append((node.args[0], k))
        elif node.is_scalar and node.op is Op.POW and node.args[1].op is Op.CONST:
            stack.append((node.args[0], k * node.args[1].attr))
        elif node.is_scalar:
            powers[node] = powers.get(node, Fraction(0)) + k
        else:
            body = node
    return coeff, powers, body


def _join_scalar(coeff: Fraction, powers: dict[Expr, Fraction], body: Expr | None,
                 shape: tuple[E.Dim, E.Dim]) -> Expr:
    factors = [E.hpow(b, E.const(k)) for b, k in sorted(powers.items(), key=_scalar_order)
               if k != 0]
    num = [f for f in factors if not _is_reciprocal(f)]
    den = [f.args[0] if f.args[1].attr == -1 else E.hpow(f.args[0], E.const(-f.args[1].attr))
           for f in factors if _is_reciprocal(f)]
    out = body if body is not None else E.const(1)
    for f in reversed(num):
        out = E.scale(f, out)
    if den:
        d = den[0]
        for f in den[1:]:
            d = E.scale(d, f)
        out = E.scale(E.hpow(d, E.const(-1)), out)
    if coeff == 0:
        return E.zeros(shape)
    return E.scale(E.const(coeff), out) if out.shape == shape else out


def _is_reciprocal(f: Expr) -> bool:
    return f.op is Op.POW and f.args[1].op is Op.CONST and f.args[1].attr < 0


def _scalar_order(item: tuple[Expr, Fraction]) -> tuple[int, str]:
    b = item[0]
    return (0 if b.op is Op.SYMBOL else 1, _text(b))


def _merge_scalars(e: Expr) -> Expr | None:
    """a·(b·X) = (ab)·X; ‖N‖·‖N‖⁻¹ = 1; c·c = c²: one coefficient, one monomial, in front;
    |s| = sign(s)·s when s or sign(s) is a factor too, and sign(s)² = 1 (s ≠ 0 a.e.)."""
    coeff, powers, body = _split_scalar(e)
    for base in [b for b in powers if b.op is Op.ABS]:
        inner, sign = base.args[0], E.apply(Op.SIGN, base.args[0])
        if inner in powers or sign in powers:
            k = powers.pop(base)
            powers[inner] = powers.get(inner, Fraction(0)) + k
            powers[sign] = powers.get(sign, Fraction(0)) + k
    for base, k in list(powers.items()):
        if base.op is Op.SIGN and k.denominator == 1:
            powers[base] = Fraction(k.numerator % 2)
    _merge_exponents(powers)
    out = _join_scalar(coeff, powers, body, e.shape)
    return None if out is e else out


def _merge_exponents(powers: dict[Expr, Fraction]) -> None:
    """b^p · b^q = b^(p + q) where an exponent is an expression (det(X)·det(X)^(1/n − 1) =
    det(X)^(1/n)), the factors taken an integer number of times; in place."""
    exponents: dict[Expr, list[tuple[Expr, Expr]]] = {}
    for key, k in powers.items():
        if k.denominator != 1:
            continue
        base, p = (key.args[0], key.args[1]) if key.op is Op.POW else (key, E.const(1))
        exponents.setdefault(base, []).append((key, E.scale(E.const(k), p)))
    for base, items in exponents.items():
        if len(items) < 2 or all(p.op is Op.CONST for _, p in items):
            continue
        for key, _ in items:
            del powers[key]
        merged = E.hpow(base, simplify(E.add(*(p for _, p in items))))
        powers[merged] = powers.get(merged, Fraction(0)) + 1


# ----------------------------------------------------------------------------- sums


def _term(e: Expr) -> tuple[Fraction, Expr]:
    """A term as (numeric coefficient, the rest)."""
    if e.op is Op.SCALE and e.args[0].op is Op.CONST:
        return e.args[0].attr, e.args[1]
    if e.op is Op.CONST:
        return e.attr, E.const(1)
    return Fraction(1), e


def _collect(e: Expr) -> Expr | None:
    """X + 2X = 3X, X − X = 0, terms in canonical order (positive first, then by text)."""
    acc: dict[Expr, Fraction] = {}
    stack = [(Fraction(1), t) for t in reversed(e.args)]
    while stack:
        k, t = stack.pop()
        c, rest = _term(t)
        if rest.op is Op.ADD:  # c(A + B) inside a sum: c A + c B
            stack.extend((k * c, u) for u in reversed(rest.args))
            continue
        acc[rest] = acc.get(rest, Fraction(0)) + k * c
    terms = [E.scale(E.const(c), rest) if rest.shape != E.SCALAR or rest is not E.const(1)
             else E.const(c) for rest, c in acc.items() if c != 0]
    if not terms:
        return E.zeros(e.shape)
    terms.sort(key=_term_order)
    if len(terms) > 1 and all(_term(t)[0] < 0 for t in terms):  # −A − B = −(A + B)
        return E.neg(E.add(*(E.neg(t) for t in terms)))
    out = E.add(*terms)
    return None if out is e else out


def _term_order(t: Expr) -> tuple[int, int, str]:
    c, rest = _term(t)
    return (1 if c < 0 else 0, 1 if rest.op is Op.CONST else 0, _text(rest))


def _factors(t: Expr) -> tuple[Expr, list[Expr]]:
    """A term as (scalar coefficient expression, list of matrix-product factors)."""
    coeff, powers, body = _split_scalar(t)
    scalar = _join_scalar(coeff, powers, None, E.SCALAR)
    if body is None:
        return scalar, []
    return scalar, list(body.args) if body.op is Op.MATMUL else [body]


def _rebuild(scalar: Expr, factors: list[Expr], shape: tuple[E.Dim, E.Dim]) -> Expr:
    if factors:
        return E.scale(scalar, E.matmul(*factors))
    return E.scale(scalar, E.eye(shape[0])) if shape != E.SCALAR else scalar


def _shorter(a: Expr, b: Expr) -> bool:
    """Fewer nodes, or as many nodes and fewer symbol occurrences (X(bcᵀ + cbᵀ))."""
    return (cost(a), _leaves(a)) < (cost(b), _leaves(b))


def _leaves(e: Expr) -> int:
    return sum(1 for n in _tree(e) if not n.args)


def _factor_out(e: Expr) -> Expr | None:
    """AX + AY = A(X + Y) and XA + YA = (X + Y)A, when the result is shorter."""
    terms = [_factors(t) for t in e.args]
    best: Expr | None = None
    for side in (0, -1):
        counts: dict[Expr, int] = {}
        for s, fs in terms:
            if len(fs) >= 2 or fs and s.op is Op.CONST:  # (xᵀAx) x keeps its x
                counts[fs[side]] = counts.get(fs[side], 0) + 1
        for f, n in counts.items():
            if n < 2:
                continue
            inside, outside = [], []
            for (s, fs), t in zip(terms, e.args, strict=True):
                if fs and fs[side] is f and (len(fs) >= 2 or s.op is Op.CONST):
                    rest = fs[1:] if side == 0 else fs[:-1]
                    shape = (f.cols, e.cols) if side == 0 else (e.rows, f.rows)
                    inside.append(_rebuild(s, rest, shape))
                else:
                    outside.append(t)
            counts_in: dict[Expr, int] = {}
            for t in inside:
                counts_in[t] = counts_in.get(t, 0) + 1
            grouped = simplify(E.add(*(E.scale(E.const(k), t) for t, k in counts_in.items())))
            pulled = E.matmul(f, grouped) if side == 0 else E.matmul(grouped, f)
            candidate = E.add(pulled, *outside) if outside else pulled
            if _shorter(candidate, e) and (best is None or _shorter(candidate, best)):
                best = candidate
    return best


# ----------------------------------------------------------------------------- elementwise


def _hadamard_powers(e: Expr) -> Expr | None:
    """X ⊙ X = X∘², X ⊙ (1 ⊘ Y) = X ⊘ Y, I ⊙ I = I, X ⊘ (cY) = c⁻¹ X ⊘ Y, and a fixed order
    with I first."""
    powers: dict[Expr, Fraction] = {}
    scal: list[Expr] = []
    stack = list(e.args)
    while stack:
        f = stack.pop(0)
        if f.op is Op.HADAMARD:
            stack.extend(f.args)
        elif f.op is Op.SCALE:
            scal.append(f.args[0])
            stack.append(f.args[1])
        elif f.op is Op.HDIV:
            stack.append(f.args[0])
            powers[f.args[1]] = powers.get(f.args[1], Fraction(0)) - 1
        elif f.op is Op.POW and f.args[1].op is Op.CONST and f.args[0].op is not Op.ONES:
            powers[f.args[0]] = powers.get(f.args[0], Fraction(0)) + f.args[1].attr
        elif f.op is Op.ONES:
            continue
        else:
            powers[f] = powers.get(f, Fraction(0)) + 1
    for base in [b for b in powers if b.op is Op.SCALE and b.args[0].op is Op.CONST]:
        k = powers.pop(base)  # (cX)∘ᵏ = cᵏ X∘ᵏ
        if k.denominator != 1:
            powers[base] = k
            continue
        scal.append(E.const(base.args[0].attr ** k.numerator))
        powers[base.args[1]] = powers.get(base.args[1], Fraction(0)) + k
    for base in powers:  # I ⊙ I = I: the entries of I are 0 and 1
        if base.op is Op.IDENTITY and powers[base] > 0:
            powers[base] = Fraction(1)
    order = sorted(powers.items(), key=lambda bk: (bk[0].op is not Op.IDENTITY, _text(bk[0])))
    num = [E.hpow(b, E.const(k)) for b, k in order if k > 0]
    den = [E.hpow(b, E.const(-k)) for b, k in order if k < 0]
    out = E.hadamard(*num) if num else E.ones(e.shape)
    if den:
        out = E.hdiv(out, E.hadamard(*den) if len(den) > 1 else den[0])
    for s in reversed(scal):
        out = E.scale(s, out)
    return None if out is e else out


def _hdiv_flatten(e: Expr) -> Expr | None:
    """(A ⊘ B) ⊘ C = A ⊘ (B ⊙ C), through the Hadamard normal form."""
    x, y = e.args
    if x.op in (Op.HADAMARD, Op.HDIV, Op.SCALE) or y.op in (Op.HDIV, Op.HADAMARD):
        return _hadamard_powers(Expr(Op.HADAMARD, (x, E.hpow(y, E.const(-1)))))
    return None


# ----------------------------------------------------------------------------- sums, continued


def _gcd(a: Fraction, b: Fraction) -> Fraction:
    return Fraction(math.gcd(a.numerator, b.numerator), math.lcm(a.denominator, b.denominator))


def _factor_scalar(e: Expr) -> Expr | None:
    """2X + 2Y = 2(X + Y),  X/s + Y/s² = (X + Y/s)/s: common scalar factors pulled out,
    when the result is shorter."""
    split = [_split_scalar(t) for t in e.args]
    g = Fraction(0)
    for c, _, _ in split:
        g = _gcd(g, abs(c))
    common: dict[Expr, Fraction] = {}
    for base in split[0][1]:
        ks = [p.get(base, Fraction(0)) for _, p, _ in split]
        if all(x > 0 for x in ks):
            common[base] = min(ks)
        elif all(x < 0 for x in ks):
            common[base] = max(ks)
    if g.denominator == 1 and len(split) < 3 and any(c < 0 for c, _, _ in split):
        g = Fraction(1)  # 2X − 2Y stays; 2X + 2Y, 2A + 2B − 2C and X/2 − Y/2 are factored
    if g in (0, 1) and not common:
        return None
    inner = []
    for c, powers, body in split:
        rest = {b: k - common.get(b, Fraction(0)) for b, k in powers.items()}
        inner.append(_join_scalar(c / g, rest, body, e.shape))
    candidate = _join_scalar(g, common, E.add(*inner), e.shape)
    return candidate if cost(candidate) < cost(e) else None


def _flip_sign(e: Expr) -> Expr | None:
    """−c·A(Y − X₁ − X₂)B = c·A(X₁ + X₂ − Y)B: a negative coefficient absorbed by a
    difference inside a linear slot (product factor, Hadamard factor, transpose, slice)
    that has more negative than positive terms."""
    c, body = e.args
    if c.op is not Op.CONST or c.attr >= 0:
        return None
    flipped = _negate_inside(body)
    return None if flipped is None else E.scale(E.const(-c.attr), flipped)


def _negate_inside(x: Expr) -> Expr | None:
    """−x, written without a leading minus by negating one difference inside, or None."""
    if x.op is Op.ADD:
        negs = sum(1 for t in x.args if _term(t)[0] < 0)
        if 2 * negs > len(x.args):
            return E.add(*(E.neg(t) for t in x.args))
        return None
    if x.op is Op.SCALE:
        inner = _negate_inside(x.args[1])
        return None if inner is None else E.scale(x.args[0], inner)
    if x.op in (Op.TRANSPOSE, Op.SLICE):
        inner = _negate_inside(x.args[0])
        return None if inner is None else _rebuild_node(x, (inner,))
    if x.op in (Op.MATMUL, Op.HADAMARD):
        for i, f in enumerate(x.args):
            inner = _negate_inside(f)
            if inner is not None:
                return _rebuild_node(x, x.args[:i] + (inner,) + x.args[i + 1:])
    return None


def _add_blocks(e: Expr) -> Expr | None:
    """[A, B; C, D] + [E, F; G, H] = [A + E, B + F; C + G, D + H] (same partition)."""
    blocks = [t for t in e.args if t.op is Op.BLOCK]
    if len(blocks) < 2:
        return None
    first = blocks[0]
    same = [b for b in blocks if b.attr == first.attr and
            all(x.shape == y.shape for x, y in zip(b.args, first.args, strict=True))]
    if len(same) < 2:
        return None
    summed = Expr(Op.BLOCK, tuple(E.add(*parts) for parts in zip(*(b.args for b in same),
                                                                  strict=True)), first.attr)
    return E.add(summed, *(t for t in e.args if t not in same))


# ----------------------------------------------------------------------------- products


def _scalar_factor_out(e: Expr) -> Expr | None:
    """A s B = s·AB for a 1×1 factor s of a matrix product."""
    scalars = [f for f in e.args if f.is_scalar]
    if not scalars or len(scalars) == len(e.args):
        return None
    rest = [f for f in e.args if not f.is_scalar]
    out = E.matmul(*rest)
    for s in reversed(scalars):
        out = E.scale(s, out)
    return out


def _mixed_product(e: Expr) -> Expr | None:
    """(A ⊗ B)(C ⊗ D) = AC ⊗ BD when the factors conform; (Bᵀ ⊗ A) vec X = vec(AXB)
    (Magnus & Neudecker, ch. 2); [A, B][C; D] = AC + BD for conforming partitions."""
    f = e.args
    for i in range(len(f) - 1):
        a, b = f[i], f[i + 1]
        new: Expr | None = None
        if a.op is Op.KRON and b.op is Op.KRON:
            (p, q), (r, s) = a.args, b.args
            if p.cols == r.rows and q.cols == s.rows:
                new = E.kron(E.matmul(p, r), E.matmul(q, s))
        elif a.op is Op.KRON and b.op is Op.VEC:
            bt, left = a.args
            x = b.args[0]
            if left.cols == x.rows and bt.rows == x.cols:
                new = E.vec(E.matmul(left, x, E.T(bt)))
        elif a.op is Op.BLOCK and b.op is Op.BLOCK and a.attr[0] == 1 and b.attr[1] == 1 \
                and a.attr[1] == b.attr[0] \
                and all(x.cols == y.rows for x, y in zip(a.args, b.args, strict=True)):
            new = E.add(*(E.matmul(x, y) for x, y in zip(a.args, b.args, strict=True)))
        if new is not None:
            return E.matmul(*f[:i], new, *f[i + 2:])
    return None


def _distribute_identity(e: Expr) -> Expr | None:
    """(A + sI)B = AB + sB for a symbolic scalar s: the identity is not left inside."""
    f = e.args
    for i, x in enumerate(f):
        if x.op is Op.ADD and any(_symbolic_identity(t) for t in x.args):
            return E.add(*(E.matmul(*f[:i], t, *f[i + 1:]) for t in x.args))
    return None


def _symbolic_identity(t: Expr) -> bool:
    """Is ``t`` a symbolic scalar times the identity (``(xᵀAx) I``)?"""
    _, powers, body = _split_scalar(t)
    return bool(powers) and body is not None and body.op is Op.IDENTITY


def _repeated_factor(e: Expr) -> Expr | None:
    """A A = A²,  A Aᵏ = Aᵏ⁺¹ (adjacent equal square factors)."""
    f = e.args
    for i in range(len(f) - 1):
        (a, j), (b, k) = _power_of(f[i]), _power_of(f[i + 1])
        if a is b and a.rows == a.cols:
            return E.matmul(*f[:i], E.matpow(a, j + k), *f[i + 2:])
    return None


def _power_of(x: Expr) -> tuple[Expr, int]:
    return (x.args[0], x.attr) if x.op is Op.MATPOW else (x, 1)


def _power_transpose(e: Expr) -> Expr | None:
    """(Xᵀ)ᵏ = (Xᵏ)ᵀ."""
    x = e.args[0]
    return E.T(E.matpow(x.args[0], e.attr)) if x.op is Op.TRANSPOSE else None


def _kron_identities(e: Expr) -> Expr | None:
    """I_m ⊗ I_n = I_mn,  𝟏 ⊗ 𝟏 = 𝟏."""
    a, b = e.args
    if a.op is Op.IDENTITY and b.op is Op.IDENTITY:
        return E.eye(a.attr * b.attr)
    if a.op is Op.ONES and b.op is Op.ONES:
        return E.ones(e.shape)
    return None


# ----------------------------------------------------------------------------- Hadamard with I


def _diagonal_mask(e: Expr) -> Expr | None:
    """I ⊙ Xᵀ = I ⊙ X,  I ⊙ (I ⊙ X) = I ⊙ X,  I ⊙ (A + I ⊙ B) = I ⊙ (A + B),  I ⊙ I = I
    (likewise for a diagonal Diag(v) in place of I): only the diagonal of X is seen."""
    masks = [f for f in e.args if f.op in (Op.IDENTITY, Op.DIAGM)]
    if not masks:
        return None
    others = [_off_diagonal_free(f) for f in e.args if f.op not in (Op.IDENTITY, Op.DIAGM)]
    kept_masks = list(dict.fromkeys(m for m in masks if m.op is Op.DIAGM))
    if not kept_masks or any(m.op is Op.IDENTITY for m in masks) and not others:
        kept_masks = [m for m in masks if m.op is Op.IDENTITY][:1] + kept_masks
    out = E.hadamard(*kept_masks, *others) if len(kept_masks) + len(others) > 1 \
        else (kept_masks + others)[0]
    return None if out is e else out


def _off_diagonal_free(x: Expr) -> Expr:
    """An expression with the same diagonal as ``x``, without transposes or inner masks."""
    if x.op is Op.TRANSPOSE and x.rows == x.cols:
        return _off_diagonal_free(x.args[0])
    if x.op is Op.SCALE:
        return E.scale(x.args[0], _off_diagonal_free(x.args[1]))
    if x.op is Op.ADD:
        return E.add(*(_off_diagonal_free(t) for t in x.args))
    if x.op is Op.HADAMARD and any(f.op is Op.IDENTITY for f in x.args):
        rest = [f for f in x.args if f.op is not Op.IDENTITY]
        return _off_diagonal_free(E.hadamard(*rest) if len(rest) > 1 else rest[0])
    return x


def _diagonal_part(e: Expr) -> Expr | None:
    """Diag(diag X) = I ⊙ X."""
    x = e.args[0]
    return E.hadamard(E.eye(x.rows), x.args[0]) if x.op is Op.DIAG else None


def _sigmoid(e: Expr) -> Expr | None:
    """exp(u) ⊘ (exp(u) + 𝟏) = σ(u)."""
    num, den = e.args
    if den.op is not Op.ADD or len(den.args) != 2:
        return None
    ex, one = den.args
    if one.op is Op.ONES and ex.op is Op.EXP:
        u = ex.args[0]
        factors = list(num.args) if num.op is Op.HADAMARD else [num]
        if ex in factors:
            factors.remove(ex)
            sig = E.apply(Op.SIGMOID, u)
            return E.hadamard(sig, *factors) if factors else sig
    return None


# ----------------------------------------------------------------------------- the table


def _trace_linear(e: Expr) -> Expr | None:
    """tr 0 = 0,  tr(A + B) = tr A + tr B,  tr(cA) = c tr A,  tr(A ⊗ B) = tr A tr B,
    tr(ABC) = tr(BCA) = tr(CAB): the rotation that is a scalar product, else the first in
    text order."""
    x = e.args[0]
    if E.is_zero(x):
        return E.const(0)
    if x.op is Op.ADD:
        return E.add(*(E.trace(t) for t in x.args))
    if x.op is Op.SCALE:
        return E.scale(x.args[0], E.trace(x.args[1]))
    if x.op is Op.KRON and all(a.rows == a.cols for a in x.args):
        return E.scale(E.trace(x.args[0]), E.trace(x.args[1]))
    if x.op is Op.MATMUL:
        f = x.args
        rotations = [f[i:] + f[:i] for i in range(len(f))]
        for r in rotations:
            if r[0].rows == E.ONE:
                return E.matmul(*r)
        best = min(rotations, key=lambda r: _text(E.matmul(*r)))
        return None if best == f else E.trace(E.matmul(*best))
    return None


def _of_product(e: Expr) -> Expr | None:
    """det(AB) = det A det B,  logdet(AB) = logdet A + logdet B,  (AB)⁻¹ = B⁻¹A⁻¹
    (square factors), (cA)⁻¹ = c⁻¹A⁻¹, det(Xᵀ) = det X, logdet(Xᵀ) = logdet X."""
    x = e.args[0]
    if x.op is Op.TRANSPOSE and e.op in (Op.DET, Op.LOGDET):
        return _rebuild_node(e, (x.args[0],))
    if x.op is Op.MATMUL and all(f.rows == f.cols for f in x.args):
        if e.op is Op.DET:
            out = E.det(x.args[0])
            for f in x.args[1:]:
                out = E.scale(out, E.det(f))
            return out
        if e.op is Op.LOGDET:
            return E.add(*(E.logdet(f) for f in x.args))
        return E.matmul(*(E.inv(f) for f in reversed(x.args)))
    if e.op is Op.INV and x.op is Op.SCALE:
        return E.scale(E.hpow(x.args[0], E.const(-1)), E.inv(x.args[1]))
    return None


def _log_det(e: Expr) -> Expr | None:
    """log(det X) = logdet X."""
    x = e.args[0]
    return E.logdet(x.args[0]) if x.op is Op.DET else None


def _sum_of_ones_product(e: Expr) -> Expr | None:
    """sum(c·X) = c·sum(X)."""
    x = e.args[0]
    if x.op is Op.SCALE:
        return E.scale(x.args[0], E.total(x.args[1]))
    return None


RULES: dict[Op, list[Rule]] = {
    Op.TRANSPOSE: [("transpose-to-leaves", _push_transpose)],          # (AB)ᵀ = BᵀAᵀ, ...
    Op.SCALE: [("merge-scalars", _merge_scalars),                      # a(bX) = (ab)X
               ("flip-difference", _flip_sign)],                       # −(Y − X) = X − Y
    Op.ADD: [("collect-terms", _collect),                              # X + 2X = 3X
             ("transposed-sum", _fold_transposed_sum),                 # Aᵀ + Bᵀ = (A + B)ᵀ
             ("add-blocks", _add_blocks),                              # [A B] + [C D] = [A+C B+D]
             ("factor-common", _factor_out),                           # AX + AY = A(X + Y)
             ("factor-scalar", _factor_scalar)],                       # 2X + 2Y = 2(X + Y)
    Op.MATMUL: [("scalar-factor-out", _scalar_factor_out),             # A s B = s AB
                ("mixed-product", _mixed_product),                     # (A⊗B)(C⊗D) = AC⊗BD
                ("repeated-factor", _repeated_factor),                 # A A = A²
                ("distribute-identity", _distribute_identity)],        # (A + sI)B = AB + sB
    Op.MATPOW: [("power-transpose", _power_transpose)],                # (Xᵀ)ᵏ = (Xᵏ)ᵀ
    Op.KRON: [("kron-identities", _kron_identities)],                  # I ⊗ I = I
    Op.HADAMARD: [("hadamard-powers", _hadamard_powers),               # X ⊙ X = X∘²
                  ("diagonal-mask", _diagonal_mask)],                  # I ⊙ Xᵀ = I ⊙ X
    Op.DIAGM: [("diagonal-part", _diagonal_part)],                     # Diag(diag X) = I ⊙ X
    Op.HDIV: [("hadamard-division", _hdiv_flatten),                    # (A ⊘ B) ⊘ C = A ⊘ (B⊙C)
              ("sigmoid", _sigmoid)],                                  # eᵘ ⊘ (eᵘ + 1) = σ(u)
    Op.POW: [("merge-scalars", lambda e: _merge_scalars(e) if e.is_scalar else None)],
    Op.LOG: [("log-det", _log_det)],                                   # log det X = logdet X
    Op.TRACE: [("trace-linear-cyclic", _trace_linear)],                # tr(AB) = tr(BA)
    Op.DET: [("det-of-product", _of_product)],                         # det(AB) = det A det B
    Op.LOGDET: [("logdet-of-product", _of_product)],                   # logdet(AB) = Σ logdet
    Op.INV: [("inverse-of-product", _of_product)],                     # (AB)⁻¹ = B⁻¹A⁻¹
    Op.SUM: [("sum-scale", _sum_of_ones_product)],                     # sum(cX) = c sum X
}

_MAX_PASSES = 50


def simplify(e: Expr, trace: list[str] | None = None,
             rules: Mapping[Op, Sequence[Rule]] | None = None) -> Expr:
    """Rewrite ``e`` bottom-up with ``RULES`` (or a subset of them: ``rules``) until
    nothing fires.

    >>> from matdiff.expr import sym
    >>> A, x = sym("A", ("n", "n")), sym("x", ("n",))
    >>> str(simplify((x.T @ A).T + A @ x))
    "(A + A')*x"
    """
    cached = trace is None and rules is None
    if cached and e in _SIMPLE:
        return _SIMPLE[e]
    start = e
    memo: dict[Expr, Expr] = {}
    for _ in range(_MAX_PASSES):
        out = _pass(e, memo, trace, RULES if rules is None else rules)
        if out is e:
            break
        e = out
    if cached:
        _SIMPLE[start] = _SIMPLE[e] = e
    return e


def _pass(root: Expr, memo: dict[Expr, Expr], trace: list[str] | None,
          rules: Mapping[Op, Sequence[Rule]]) -> Expr:
    for node in E.toposort([root]):
        if node in memo:
            continue
        args = tuple(memo[a] for a in node.args)
        new = node if args == node.args else _rebuild_node(node, args)
        for _ in range(_MAX_PASSES):
            for name, rewrite in rules.get(new.op, ()):
                out = rewrite(new)
                if out is not None and out is not new:
                    if trace is not None:
                        trace.append(name)
                    args = tuple(_pass(a, memo, trace, rules) for a in out.args)
                    new = out if args == out.args else _rebuild_node(out, args)
                    break
            else:
                break
        memo[node] = new
    return memo[root]


_BUILD: dict[Op, Callable[[Expr, tuple[Expr, ...]], Expr]] = {
    Op.ADD: lambda e, a: E.add(*a),
    Op.SCALE: lambda e, a: E.scale(*a),
    Op.MATMUL: lambda e, a: E.matmul(*a),
    Op.TRANSPOSE: lambda e, a: E.T(a[0]),
    Op.HADAMARD: lambda e, a: E.hadamard(*a),
    Op.HDIV: lambda e, a: E.hdiv(*a),
    Op.POW: lambda e, a: E.hpow(*a),
    Op.KRON: lambda e, a: E.kron(*a),
    Op.BLOCK: lambda e, a: E.block([a[i * e.attr[1]:(i + 1) * e.attr[1]]
                                    for i in range(e.attr[0])]),
    Op.SLICE: lambda e, a: E.slice_(a[0], *e.attr),
    Op.TRACE: lambda e, a: E.trace(a[0]),
    Op.DET: lambda e, a: E.det(a[0]),
    Op.LOGDET: lambda e, a: E.logdet(a[0]),
    Op.INV: lambda e, a: E.inv(a[0]),
    Op.MATPOW: lambda e, a: E.matpow(a[0], e.attr),
    Op.DIAG: lambda e, a: E.diag(a[0]),
    Op.DIAGM: lambda e, a: E.diagm(a[0]),
    Op.VEC: lambda e, a: E.vec(a[0]),
    Op.UNVEC: lambda e, a: E.unvec(a[0], *e.attr),
    Op.SUM: lambda e, a: E.total(a[0]),
    Op.NORM: lambda e, a: E.norm(a[0], e.attr),
    **{op: (lambda e, a: E.OPS[e.op].build(a, e.attr)) for op in (
        Op.TRIL, Op.EXPM, Op.LOGM, Op.SQRTM, Op.FRECHET, Op.EIGVAL, Op.EIGVEC,
        Op.SPECTRAL_NORM, Op.NUCLEAR_NORM, Op.POLAR, Op.SVD_U1, Op.SVD_V1, Op.PINV, Op.ADJ,
        Op.CHOL)},
    **{op: (lambda e, a: E.apply(e.op, a[0])) for op in E.ELEMENTWISE},
}


def _rebuild_node(node: Expr, args: tuple[Expr, ...]) -> Expr:
    """The same operation over new arguments, through the smart constructors."""
    return _BUILD[node.op](node, args)


rebuild = _rebuild_node

