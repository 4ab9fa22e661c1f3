"""Simplification: named, directed rewrite rules run bottom-up to a fixed point.

Input: an ``Expr``. Output: an equal ``Expr`` in canonical form: transposes at the leaves,
scalar factors merged into one coefficient in front (``2‖N‖ X / ‖N‖ → 2X``), like terms
collected (``X + 2X → 3X``, ``X − X → 0``), repeated Hadamard factors as powers, common left
or right factors pulled out of sums (``Aᵀx + Ax → (A + Aᵀ)x``) when that makes the result
shorter, and terms in a fixed order. ``RULES`` is a table keyed by ``Op`` of
``(name, rewrite)`` rows; a rewrite returns a new node or ``None``. ``simplify(e, trace)``
appends the names of the rules that fired to ``trace`` (the derivation's steps use them).
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

from . import expr as E
from .expr import Expr, Op

__all__ = ["simplify", "RULES", "cost", "Rule"]

Rewrite = Callable[[Expr], "Expr | None"]
Rule = tuple[str, Rewrite]


def cost(e: Expr) -> int:
    """Size of the printed form: the number of nodes of the tree (shared nodes counted
    each time they occur)."""
    memo: dict[Expr, int] = {}
    for node in E.toposort([e]):
        memo[node] = 1 + sum(memo[a] for a in node.args)
    return memo[e]


# ----------------------------------------------------------------------------- transposes


def _push_transpose(e: Expr) -> Expr | None:
    """(AB)ᵀ = BᵀAᵀ, (A+B)ᵀ = Aᵀ+Bᵀ, (A⊙B)ᵀ = Aᵀ⊙Bᵀ, f(X)ᵀ = f(Xᵀ), (A⊗B)ᵀ = Aᵀ⊗Bᵀ,
    (X⁻¹)ᵀ = (Xᵀ)⁻¹ for symbols, [A B; C D]ᵀ = [Aᵀ Cᵀ; Bᵀ Dᵀ], Diag(x)ᵀ = Diag(x)."""
    x = e.args[0]
    op = x.op
    if op is Op.MATMUL:
        return E.matmul(*(E.T(f) for f in reversed(x.args)))
    if op is Op.ADD:
        return E.add(*(E.T(t) for t in x.args))
    if op is Op.HADAMARD:
        return E.hadamard(*(E.T(f) for f in x.args))
    if op is Op.HDIV:
        return E.hdiv(E.T(x.args[0]), E.T(x.args[1]))
    if op is Op.POW:
        return E.hpow(E.T(x.args[0]), x.args[1])
    if op in E.ELEMENTWISE:
        return E.apply(op, E.T(x.args[0]))
    if op is Op.KRON:
        return E.kron(E.T(x.args[0]), E.T(x.args[1]))
    if op is Op.DIAGM:
        return x
    if op is Op.MATPOW:
        return E.matpow(E.T(x.args[0]), x.attr)
    if op is Op.BLOCK:
        r, c = x.attr
        return E.block([[E.T(x.args[i * c + j]) for i in range(r)] for j in range(c)])
    if op is Op.INV and x.args[0].op is not Op.SYMBOL:
        return E.inv(E.T(x.args[0]))
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
    return (0 if b.op is Op.SYMBOL else 1, str(b))


def _merge_scalars(e: Expr) -> Expr | None:
    """a·(b·X) = (ab)·X; ‖N‖·‖N‖⁻¹ = 1; c·c = c²: one coefficient, one monomial, in front."""
    coeff, powers, body = _split_scalar(e)
    out = _join_scalar(coeff, powers, body, e.shape)
    return None if out is e else out


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
    for t in e.args:
        c, rest = _term(t)
        acc[rest] = acc.get(rest, Fraction(0)) + c
    terms = [E.scale(E.const(c), rest) if rest.shape != E.SCALAR or rest is not E.const(1)
             else E.const(c) for rest, c in acc.items() if c != 0]
    if not terms:
        return E.zeros(e.shape)
    terms.sort(key=_term_order)
    out = E.add(*terms)
    return None if out is e else out


def _term_order(t: Expr) -> tuple[int, int, str]:
    c, rest = _term(t)
    return (1 if c < 0 else 0, 1 if rest.op is Op.CONST else 0, str(rest))


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


def _factor_out(e: Expr) -> Expr | None:
    """AX + AY = A(X + Y) and XA + YA = (X + Y)A, when the result is shorter."""
    terms = [_factors(t) for t in e.args]
    best: Expr | None = None
    for side in (0, -1):
        counts: dict[Expr, int] = {}
        for _, fs in terms:
            if len(fs) >= 1:
                counts[fs[side]] = counts.get(fs[side], 0) + 1
        for f, n in counts.items():
            if n < 2:
                continue
            inside, outside = [], []
            for (s, fs), t in zip(terms, e.args, strict=True):
                if fs and fs[side] is f:
                    rest = fs[1:] if side == 0 else fs[:-1]
                    shape = (f.cols, e.cols) if side == 0 else (e.rows, f.rows)
                    inside.append(_rebuild(s, rest, shape))
                else:
                    outside.append(t)
            grouped = simplify(E.add(*inside))
            pulled = E.matmul(f, grouped) if side == 0 else E.matmul(grouped, f)
            candidate = E.add(pulled, *outside) if outside else pulled
            if cost(candidate) < cost(e) and (best is None or cost(candidate) < cost(best)):
                best = candidate
    return best


# ----------------------------------------------------------------------------- elementwise


def _hadamard_powers(e: Expr) -> Expr | None:
    """X ⊙ X = X∘², X ⊙ (1 ⊘ Y) = X ⊘ Y, and a fixed order with I first."""
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
    order = sorted(powers.items(), key=lambda bk: (bk[0].op is not Op.IDENTITY, str(bk[0])))
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


# ----------------------------------------------------------------------------- the table


def _log_det(e: Expr) -> Expr | None:
    """log(det X) = logdet X."""
    x = e.args[0]
    return E.logdet(x.args[0]) if x.op is Op.DET else None


def _trace_transpose(e: Expr) -> Expr | None:
    """tr(Aᵀ) = tr(A)."""
    x = e.args[0]
    return E.trace(x.args[0]) if x.op is Op.TRANSPOSE else None


def _det_transpose(e: Expr) -> Expr | None:
    """det(Xᵀ) = det(X), logdet(Xᵀ) = logdet(X)."""
    x = e.args[0]
    if x.op is Op.TRANSPOSE:
        return E.det(x.args[0]) if e.op is Op.DET else E.logdet(x.args[0])
    return None


def _sum_of_ones_product(e: Expr) -> Expr | None:
    """sum(c·X) = c·sum(X)."""
    x = e.args[0]
    if x.op is Op.SCALE:
        return E.scale(x.args[0], E.total(x.args[1]))
    return None


RULES: dict[Op, list[Rule]] = {
    Op.TRANSPOSE: [("transpose-to-leaves", _push_transpose)],
    Op.SCALE: [("merge-scalars", _merge_scalars)],
    Op.ADD: [("collect-terms", _collect), ("factor-common", _factor_out)],
    Op.HADAMARD: [("hadamard-powers", _hadamard_powers)],
    Op.HDIV: [("hadamard-division", _hdiv_flatten)],
    Op.POW: [("merge-scalars", lambda e: _merge_scalars(e) if e.is_scalar else None)],
    Op.LOG: [("log-det", _log_det)],
    Op.TRACE: [("trace-transpose", _trace_transpose)],
    Op.DET: [("det-transpose", _det_transpose)],
    Op.LOGDET: [("det-transpose", _det_transpose)],
    Op.SUM: [("sum-scale", _sum_of_ones_product)],
}

_MAX_PASSES = 50


def simplify(e: Expr, trace: list[str] | None = None) -> Expr:
    """Rewrite ``e`` bottom-up with ``RULES`` until nothing fires.

    >>> from matdiff.expr import sym
    >>> A, x = sym("A", ("n", "n")), sym("x", ("n",))
    >>> str(simplify((x.T @ A).T + A @ x))
    "(A + A')*x"
    """
    memo: dict[Expr, Expr] = {}
    for _ in range(_MAX_PASSES):
        out = _pass(e, memo, trace)
        if out is e:
            return out
        e = out
    return e


def _pass(root: Expr, memo: dict[Expr, Expr], trace: list[str] | None) -> Expr:
    for node in E.toposort([root]):
        if node in memo:
            continue
        args = tuple(memo[a] for a in node.args)
        new = node if args == node.args else _rebuild_node(node, args)
        for _ in range(_MAX_PASSES):
            for name, rewrite in RULES.get(new.op, ()):
                out = rewrite(new)
                if out is not None and out is not new:
                    if trace is not None:
                        trace.append(name)
                    new = out
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
    **{op: (lambda e, a: E.apply(e.op, a[0])) for op in E.ELEMENTWISE},
}


def _rebuild_node(node: Expr, args: tuple[Expr, ...]) -> Expr:
    """The same operation over new arguments, through the smart constructors."""
    return _BUILD[node.op](node, args)

