"""Rules that bring results to the textbook form on problems nobody tuned for (issue 13).

One identity per rule, as in ``rules``; these are the classes where structure has to cancel
or where a textbook writes a quantity one way:

* ``CANCELLATION``: ``P P⁻¹ = I`` and ``P⁻ᵀ Pᵀ = I`` wherever they meet in a chain (powers
  included: ``Xᵏ X⁻¹ = Xᵏ⁻¹``), also against the end of an unexpanded inverse
  (``A (BXA)⁻¹ = (BX)⁻¹``), ``inv(Xᵏ) = inv(X)ᵏ``, ``det(Xᵏ) = det(X)ᵏ``, a 1×1 identity
  factor vanishes;
* ``ORIENTATION``: a 1×1 product equals its transpose (``xᵀAy = yᵀAᵀx``), kept in the
  orientation that is least in the structural order, so like terms collect; a 1×1 run
  inside a longer chain is a scalar factor (as a 1×1 factor already is);
* ``DIAGONALS``: ``diag(abᵀ) = a ⊙ b``, ``diag(Aᵀ) = diag(A)``, ``Diag(x) y = x ⊙ y``,
  ``I ⊙ (abᵀ) = Diag(a ⊙ b)``, ``sum(A ⊙ B) = tr(AᵀB)`` where that is shorter, and
  ``𝟏𝟏ᵀ = 𝟏``, so a mask that is an outer product of ones drops out of a Hadamard product;
* ``KRONECKER``: the Frobenius norm of a Kronecker product is the product of the norms;
  the block sums that the gradient with respect to a Kronecker factor produces,
  ``Σᵢⱼ bᵢⱼ Mᵢⱼ`` (written ``(𝟏ᵀ ⊗ I)(M ⊙ (B ⊗ 𝟏))(𝟏 ⊗ I)``), fold where ``M`` is a
  Kronecker product or the identity; a Kronecker product of a row and a column is their
  outer product;
* ``BLOCKS``: a slice of a product is the product of a block row and a block column, a
  slice of a sum the sum of the slices (where that is shorter), a diagonal slice of ``I``
  is an identity, a slice of a transpose the transpose of a slice;
* ``COEFFICIENTS``: a common number of the terms of a sum in front (``4X − 4Xᵀ =
  4(X − Xᵀ)``) where that is shorter.
"""

from __future__ import annotations

from . import expr as E
from .algebra import common_coefficient
from .expr import Dim, Expr, Op
from .order import cost, order_key
from .rewrite import Pat, Rule, RuleSet, Seq, build_chain, var

__all__ = ["CANCELLATION", "ORIENTATION", "DIAGONALS", "KRONECKER", "BLOCKS", "COEFFICIENTS",
           "TEXTBOOK", "cheaper", "ends_smaller"]

ONE = E.ONE
X, A, B, M = var("X"), var("A"), var("B"), var("M")


def P(op: Op, *args: Pat | Seq | type(...), **kw: object) -> Pat:  # type: ignore[valid-type]  # noqa: N802
    return Pat(op, list(args), **kw)  # type: ignore[arg-type]


def cheaper(root: Expr, new: Expr) -> bool:
    """The guard of a rule that only helps when its result costs less."""
    return cost(new) < cost(root)


def ends_smaller(root: Expr, new: Expr) -> bool:
    """The guard of an expansion that only helps when what it leads to, simplified, costs
    less: ``det(XᵀX) = det(Xᵀ) det(X)`` is worth it because it ends as ``det(X)²``."""
    from .simplify import simplify  # the rules are part of simplify: import at call time
    return cost(simplify(new)) < cost(root)


# ----------------------------------------------------------------------------- cancellation

def signed_power(f: Expr) -> tuple[Expr, bool, int]:
    """A square factor as (base, transposed, exponent): ``X⁻ᵀ`` is (X, True, −1), ``(X²)ᵀ``
    is (X, True, 2), ``X`` is (X, False, 1).

    >>> Xs = E.sym("X", ("n", "n"))
    >>> signed_power(E.T(E.inv(Xs))) == (Xs, True, -1)
    True
    """
    t, k = False, 1
    if f.op is Op.TRANSPOSE:
        t, f = True, f.args[0]
    if f.op is Op.MATPOW:
        k, f = f.attr, f.args[0]
    if f.op is Op.INV:
        k, f = -k, f.args[0]
        if f.op is Op.MATPOW:
            k, f = k * f.attr, f.args[0]
    if f.op is Op.TRANSPOSE:
        t, f = not t, f.args[0]
    return f, t, k


def _power(base: Expr, transposed: bool, k: int) -> Expr:
    out = E.matpow(base, k)
    return E.T(out) if transposed else out


def _cancel_pair(fs: tuple[Expr, ...]) -> tuple[int, Expr] | None:
    """The first adjacent pair of powers of one base with exponents of opposite signs, as
    (its position, their product)."""
    for i in range(len(fs) - 1):
        (b1, t1, k1), (b2, t2, k2) = signed_power(fs[i]), signed_power(fs[i + 1])
        if b1 is b2 and t1 == t2 and k1 * k2 < 0 and b1.rows == b1.cols:
            return i, _power(b1, t1, k1 + k2)
    return None


def _cancelled(root: Expr) -> Expr | None:
    fs = root.args
    found = _cancel_pair(fs)
    if found is None:
        return None
    i, merged = found
    return E.matmul(*fs[:i], merged, *fs[i + 2:])


def _inverse_chain(f: Expr) -> tuple[Expr, ...] | None:
    """The factors of ``f = (G₁…Gₖ)⁻¹`` when all are square (so it is Gₖ⁻¹…G₁⁻¹)."""
    if f.op is not Op.INV or f.args[0].op is not Op.MATMUL:
        return None
    gs = f.args[0].args
    return gs if all(g.rows == g.cols for g in gs) else None


def _absorbed(root: Expr) -> Expr | None:
    """``Gₖ (G₁…Gₖ)⁻¹ = (G₁…Gₖ₋₁)⁻¹`` and ``(G₁…Gₖ)⁻¹ G₁ = (G₂…Gₖ)⁻¹`` in a chain."""
    fs = root.args
    for i, f in enumerate(fs):
        gs = _inverse_chain(f)
        if gs is None:
            continue
        if i > 0 and fs[i - 1] is gs[-1]:
            return E.matmul(*fs[:i - 1], E.inv(E.matmul(*gs[:-1])), *fs[i + 1:])
        if i + 1 < len(fs) and fs[i + 1] is gs[0]:
            return E.matmul(*fs[:i], E.inv(E.matmul(*gs[1:])), *fs[i + 2:])
    return None


def _drop_unit(root: Expr) -> Expr | None:
    """A chain of scalar factors without its 1×1 identities."""
    items: list[Expr] = []
    node = root
    while node.op is Op.SCALE:
        items.append(node.args[0])
        node = node.args[1]
    items.append(node)
    kept = [f for f in items if not (f.op is Op.IDENTITY and f.is_scalar)]
    if len(kept) == len(items):
        return None
    return build_chain(Op.SCALE, kept, E.const(1))


CANCELLATION = RuleSet([
    Rule("cancel-inverse", Pat(Op.MATMUL), _cancelled),              # P P⁻¹ = I, P⁻ᵀPᵀ = I
    Rule("cancel-into-inverse", Pat(Op.MATMUL), _absorbed),           # C (ABC)⁻¹ = (AB)⁻¹
    Rule("inverse-of-power", P(Op.INV, P(Op.MATPOW, X, name="Xk")),   # (Xᵏ)⁻¹ = (X⁻¹)ᵏ
         lambda X, Xk: E.matpow(E.inv(X), Xk.attr)),
    Rule("inverse-of-transposed-power",                               # ((Xᵏ)ᵀ)⁻¹ = ((X⁻¹)ᵏ)ᵀ
         P(Op.INV, P(Op.TRANSPOSE, P(Op.MATPOW, X, name="Xk"))),
         lambda X, Xk: E.T(E.matpow(E.inv(X), Xk.attr))),
    Rule("power-of-matrix-power", P(Op.MATPOW, P(Op.MATPOW, X, name="Xk"), name="Xkj"),
         lambda X, Xk, Xkj: E.matpow(X, Xk.attr * Xkj.attr)),          # (Xᵏ)ʲ = Xᵏʲ
    Rule("det-of-inverse", P(Op.DET, P(Op.INV, X)),                   # det X⁻¹ = (det X)⁻¹
         lambda X: E.hpow(E.det(X), -1)),
    Rule("det-of-power", P(Op.DET, P(Op.MATPOW, X, name="Xk")),       # det Xᵏ = (det X)ᵏ
         lambda X, Xk: E.hpow(E.det(X), Xk.attr)),
    Rule("unit-factor", Pat(Op.SCALE), _drop_unit),                   # eye(1) s = s
])


# ----------------------------------------------------------------------------- orientation

def _oriented(root: Expr) -> Expr | None:
    """A 1×1 product in the orientation with fewer transposes (``uᵀS⁻¹u``, not
    ``uᵀS⁻ᵀu``), else the one least in the structural order."""
    if not root.is_scalar:
        return None
    flipped = E.matmul(*(E.T(f) for f in reversed(root.args)))
    if flipped.op is not Op.MATMUL or len(flipped.args) != len(root.args):
        return None
    better = (cost(flipped), order_key(flipped)) < (cost(root), order_key(root))
    return flipped if better else None


def _scalar_run(root: Expr) -> Expr | None:
    """A chain with a 1×1 run of two or more factors at either end (and more before or
    after it): the run is a scalar factor, ``A x (xᵀb) = (xᵀb) A x``."""
    fs = root.args
    if root.is_scalar or len(fs) < 3:
        return None
    for i in range(1, len(fs) - 1):  # a suffix fs[i:], then a prefix fs[:j]
        if fs[i].rows == ONE and fs[-1].cols == ONE:
            return E.scale(E.matmul(*fs[i:]), E.matmul(*fs[:i]))
    for j in range(len(fs) - 1, 1, -1):
        if fs[0].rows == ONE and fs[j - 1].cols == ONE:
            return E.scale(E.matmul(*fs[:j]), E.matmul(*fs[j:]))
    return None


ORIENTATION = RuleSet([
    Rule("scalar-orientation", Pat(Op.MATMUL), _oriented),            # xᵀAy = yᵀAᵀx
    Rule("scalar-run", Pat(Op.MATMUL), _scalar_run),                  # A x xᵀb = (xᵀb) A x
])


# ----------------------------------------------------------------------------- diagonals

def _is_ones(e: Expr, rows: bool) -> bool:
    """A column of ones (``rows``) or a row of ones."""
    return e.op is Op.ONES and (e.cols == ONE if rows else e.rows == ONE)


def _column(e: Expr) -> bool:
    return e.cols == ONE


def _diag_times(root: Expr) -> Expr | None:
    """``Diag(x) y = x ⊙ y`` where the rest of the chain after ``Diag(x)`` is a column, and
    ``yᵀ Diag(x) = (x ⊙ y)ᵀ`` where the chain before it is a row."""
    fs = root.args
    for i, f in enumerate(fs):
        if f.op is not Op.DIAGM:
            continue
        post = E.matmul(*fs[i + 1:]) if i + 1 < len(fs) else None
        if post is not None and post.cols == ONE:
            return E.matmul(*fs[:i], E.hadamard(f.args[0], post)) if i else \
                E.hadamard(f.args[0], post)
        pre = E.matmul(*fs[:i]) if i else None
        if pre is not None and pre.rows == ONE:
            row = E.T(E.hadamard(f.args[0], E.T(pre)))
            return E.matmul(row, *fs[i + 1:]) if i + 1 < len(fs) else row
    return None


def _diag_of_scaled_product(fs: tuple[Expr, ...]) -> Expr | None:
    """``diag(Diag(x) M) = x ⊙ diag(M)`` and ``diag(M Diag(x)) = diag(M) ⊙ x``."""
    if fs[0].op is Op.DIAGM:
        return E.hadamard(fs[0].args[0], E.diag(E.matmul(*fs[1:])))
    if fs[-1].op is Op.DIAGM:
        return E.hadamard(E.diag(E.matmul(*fs[:-1])), fs[-1].args[0])
    return None


def _diag_map(root: Expr) -> Expr | None:
    """``(vᵀ ⊗ I) Diag(vec I) (𝟏 ⊗ I) = Diag(v)``: the matrix of ``x ↦ Diag(x) v`` (the
    Jacobian of ``Diag(x) v`` with respect to x), anywhere in a chain."""
    fs = root.args
    for i in range(len(fs) - 2):
        k, d, o = fs[i:i + 3]
        if k.op is Op.KRON and d.op is Op.DIAGM and o.op is Op.KRON and \
                k.args[0].rows == ONE and k.args[1].op is Op.IDENTITY and \
                d.args[0].op is Op.VEC and d.args[0].args[0].op is Op.IDENTITY and \
                _is_ones(o.args[0], True) and o.args[1].op is Op.IDENTITY and \
                k.args[1] is d.args[0].args[0] is o.args[1] and o.args[0].rows == k.args[0].cols:
            return E.matmul(*fs[:i], E.diagm(E.T(k.args[0])), *fs[i + 3:])
    return None


def _ones_outer(root: Expr) -> Expr | None:
    """``𝟏𝟏ᵀ = 𝟏`` (the all-ones mask) and ``𝟏ᵀ𝟏 = n`` where they meet in a chain."""
    fs = root.args
    for i in range(len(fs) - 1):
        a, b = fs[i], fs[i + 1]
        if a.op is Op.ONES and b.op is Op.ONES:
            if a.cols == ONE:
                return E.matmul(*fs[:i], E.ones((a.rows, b.cols)), *fs[i + 2:])
            if a.rows == ONE and a.cols.value is not None:
                return E.scale(E.const(a.cols.value), E.matmul(*fs[:i], *fs[i + 2:])) \
                    if len(fs) > 2 else E.const(a.cols.value)
    return None


def _outer(e: Expr) -> bool:
    return e.op is Op.MATMUL and len(e.args) == 2 and e.args[0].cols == ONE


DIAGONALS = RuleSet([
    Rule("diag-of-outer", P(Op.DIAG, P(Op.MATMUL, A, B)),             # diag(abᵀ) = a ⊙ b
         lambda A, B: E.hadamard(A, E.T(B)), lambda A: A.cols == ONE),
    Rule("diag-of-transpose", P(Op.DIAG, P(Op.TRANSPOSE, A)),         # diag(Aᵀ) = diag(A)
         P(Op.DIAG, A)),
    Rule("diagonal-times-vector", Pat(Op.MATMUL), _diag_times),       # Diag(x) y = x ⊙ y
    Rule("diag-of-diagonal-product", P(Op.DIAG, P(Op.MATMUL, Seq("fs"))),  # diag(Diag(x)M)
         _diag_of_scaled_product),                                    #   = x ⊙ diag M
    Rule("diag-of-sum", P(Op.DIAG, P(Op.ADD, Seq("ts"))),             # diag(A + B)
         lambda ts: E.add(*(E.diag(t) for t in ts)), cheaper),        #   = diag A + diag B
    Rule("diagonal-map", Pat(Op.MATMUL), _diag_map),                  # (vᵀ⊗I)Diag(vec I)(𝟏⊗I)
                                                                      #   = Diag v
    Rule("sum-of-hadamard", P(Op.SUM, P(Op.HADAMARD, A, B)),          # sum(A ⊙ B) = tr(AᵀB)
         lambda A, B: E.trace(E.matmul(E.T(A), B))  # (with I it is sum-of-diagonal's)
         if A.cols != ONE and Op.IDENTITY not in (A.op, B.op) else None, cheaper),
    Rule("outer-of-ones", Pat(Op.MATMUL), _ones_outer),              # 𝟏𝟏ᵀ = 𝟏 (a mask)
    Rule("identity-mask-of-outer",                                    # I ⊙ abᵀ = Diag(a ⊙ b)
         P(Op.HADAMARD, Pat(Op.IDENTITY), var("O", _outer)),
         lambda O: E.diagm(E.hadamard(O.args[0], E.T(O.args[1])))),
])


# ----------------------------------------------------------------------------- Kronecker

def _block_weights(H: Expr, left: Expr) -> tuple[Expr, Expr, Expr, bool] | None:  # noqa: N803
    """For ``left = 𝟏ᵀ ⊗ I`` (block sums) or ``I ⊗ 𝟏ᵀ`` (strided sums) and ``H = M ⊙ W`` with
    ``W = B ⊗ 𝟏`` (or ``𝟏 ⊗ B``): (B, W, M, strided)."""
    if left.op is not Op.KRON:
        return None
    l1, l2 = left.args
    strided = l1.op is Op.IDENTITY and _is_ones(l2, False)
    if not strided and not (_is_ones(l1, False) and l2.op is Op.IDENTITY):
        return None
    fs = H.args if H.op is Op.HADAMARD else (H,)
    for i, w in enumerate(fs):
        if w.op is not Op.KRON:
            continue
        weight, ones = (w.args[1], w.args[0]) if strided else w.args
        if ones.op is Op.ONES and weight.rows == l2.cols if strided else \
                ones.op is Op.ONES and weight.rows == l1.cols:
            rest = fs[:i] + fs[i + 1:]
            if rest:
                return weight, w, E.hadamard(*rest) if len(rest) > 1 else rest[0], strided
    return None


def _fold_block_sum(weight: Expr, inner: Expr, strided: bool, out_shape: E.Shape) -> Expr | None:
    """``Σᵢⱼ bᵢⱼ Mᵢⱼ`` for M a Kronecker product (``sum(B ⊙ C) Y``) or an identity
    (``tr(B) I``); None where it does not fold."""
    if inner.op is Op.KRON:
        c, y = (inner.args[1], inner.args[0]) if strided else inner.args
        if c.shape == weight.shape and y.shape == out_shape:
            return E.scale(E.total(E.hadamard(weight, c)), y)
    if inner.op is Op.IDENTITY and weight.rows == weight.cols and out_shape[0] == out_shape[1]:
        return E.scale(E.trace(weight), E.eye(out_shape[0]))
    return None


def _block_sum(root: Expr) -> Expr | None:
    """``(𝟏ᵀ ⊗ I)(M ⊙ (B ⊗ 𝟏))(𝟏 ⊗ I) = Σᵢⱼ bᵢⱼ Mᵢⱼ`` folded where M is a Kronecker product,
    an identity, or a sum with such terms (the other terms keep their block sum)."""
    fs = root.args
    if len(fs) not in (2, 3) or fs[1].op not in (Op.HADAMARD, Op.KRON):
        return None
    found = _block_weights(fs[1], fs[0])
    if found is None:
        return None
    weight, w, inner, strided = found
    terms = inner.args if inner.op is Op.ADD else (inner,)
    out, kept, changed = [], [], False
    for t in terms:
        cf, body = (t.args[0], t.args[1]) if t.op is Op.SCALE else (E.const(1), t)
        folded = _fold_block_sum(weight, body, strided, root.shape)
        if folded is None:
            kept.append(t)
        else:
            out.append(E.scale(cf, folded))
            changed = True
    if not changed:
        return None
    if kept:
        out.append(E.matmul(fs[0], E.hadamard(E.add(*kept), w), *fs[2:]))
    return E.add(*out)


def _kron_outer(A: Expr, B: Expr) -> Expr | None:  # noqa: N803
    """``a ⊗ bᵀ = bᵀ ⊗ a = a bᵀ`` for a column a and a row bᵀ."""
    if A.cols == ONE and B.rows == ONE:
        return E.matmul(A, B)
    if A.rows == ONE and B.cols == ONE:
        return E.matmul(B, A)
    return None


KRONECKER = RuleSet([
    Rule("norm-of-kron", P(Op.NORM, P(Op.KRON, A, B), attr="2"),      # ‖A ⊗ B‖ = ‖A‖ ‖B‖
         lambda A, B: E.scale(E.norm(A), E.norm(B))),
    Rule("kron-block-sum", Pat(Op.MATMUL), _block_sum),               # Σ bᵢⱼ (C ⊗ Y)ᵢⱼ = ⟨B,C⟩Y
    Rule("kron-of-vectors", P(Op.KRON, A, B), _kron_outer),          # a ⊗ bᵀ = a bᵀ
])


# ----------------------------------------------------------------------------- blocks

def _bounds(S: Expr) -> tuple[Dim, Dim, Dim, Dim]:  # noqa: N803
    r0, r1, c0, c1 = S.attr
    return r0, r1, c0, c1


def _slice_of_product(S: Expr, fs: tuple[Expr, ...]) -> Expr:  # noqa: N803
    r0, r1, c0, c1 = _bounds(S)
    first, last = fs[0], fs[-1]
    return E.matmul(E.slice_(first, r0, r1, Dim({}), first.cols), *fs[1:-1],
                    E.slice_(last, Dim({}), last.rows, c0, c1))


def _slice_of_sum(S: Expr, ts: tuple[Expr, ...]) -> Expr:  # noqa: N803
    return E.add(*(E.slice_(t, *_bounds(S)) for t in ts))


def _slice_of_identity(S: Expr, I: Expr) -> Expr | None:  # noqa: N803, E741
    r0, r1, c0, c1 = _bounds(S)
    if r0 == c0 and r1 == c1:
        return E.eye(r1 - r0)
    if r1 == c0 or c1 == r0:  # rows and columns that do not meet: off the diagonal
        return E.zeros((r1 - r0, c1 - c0))
    return None


BLOCKS = RuleSet([
    Rule("slice-of-product", P(Op.SLICE, P(Op.MATMUL, Seq("fs")), name="S"),  # (AB)ᵢⱼ = AᵢBⱼ
         _slice_of_product, cheaper),
    Rule("slice-of-sum", P(Op.SLICE, P(Op.ADD, Seq("ts")), name="S"),  # (A + B)ᵢⱼ = Aᵢⱼ + Bᵢⱼ
         _slice_of_sum, cheaper),
    Rule("slice-of-identity", P(Op.SLICE, var("I", lambda e: e.op is Op.IDENTITY), name="S"),
         _slice_of_identity),                                         # I[0:n, 0:n] = Iₙ
    Rule("slice-of-transpose", P(Op.SLICE, P(Op.TRANSPOSE, A), name="S"),  # Aᵀ[r, c] = A[c, r]ᵀ
         lambda S, A: E.T(E.slice_(A, S.attr[2], S.attr[3], S.attr[0], S.attr[1]))),
])


# ----------------------------------------------------------------------------- coefficients

def _common_number(root: Expr) -> Expr | None:
    g = common_coefficient(root.args)
    if g in (0, 1):
        return None
    return E.scale(E.const(g), E.add(*(E.scale(E.const(1 / g), t) for t in root.args)))


COEFFICIENTS = RuleSet([
    Rule("coefficient-of-sum", Pat(Op.ADD), _common_number, cheaper),  # 4X − 4Y = 4(X − Y)
])

TEXTBOOK = CANCELLATION + ORIENTATION + DIAGONALS + KRONECKER + BLOCKS + COEFFICIENTS
