"""Lowering: expressions to the array IR, one ``LOWER`` row per Op.

Input: the expressions to compute (a value and its gradients). Output: one IR node per
expression, in one ``Graph``, so every shared subexpression is one node.

First ``canonical`` rewrites the DAG so structure is explicit (``REWRITE``: ``I .* X =
Diag(diag X)``, ``log det X = logdet X``, transposes through Kronecker and block matrices).
Then each node is lowered by its ``LOWER`` row, bottom-up and root by root; after a root its
nodes count as computed. Structure is used where a row finds it: products apply Kronecker,
block, diagonal, ones and inverse factors as operators (never materialised), order their
dense chain by cost, distribute over a sum when that is cheaper given what is computed,
push slices into products and stack summed products; traces and diagonals of products are
sums of elementwise products; Kronecker sandwiches are contractions (``contract``).
Choices between equal forms go through ``Graph.pick`` (flops and words).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from fractions import Fraction
from functools import reduce

from ..expr import (
    ELEMENTWISE, Dim, Expr, Op, T, add, block, commutation, diag, hadamard, hpow, logdet,
    matmul, norm, scale, toposort,
)
from .ir import ONE, Arr, Graph, P, nonneg, size

__all__ = ["LOWER", "REWRITE", "Lowering", "canonical"]

ZERO_DIM = Dim({})
SPECIAL = frozenset({Op.INV, Op.DIAGM, Op.KRON, Op.BLOCK, Op.ONES, Op.COMMUTATION, Op.IDENTITY,
                     Op.ZERO})   # factors applied as operators, never multiplied out

# ----------------------------------------------------------------------------- canonical form


def _diag_of(x: Expr) -> Expr:
    """diag(x) pushed through linear and elementwise structure."""
    if x.op is Op.ADD:
        return add(*(_diag_of(a) for a in x.args))           # diag(A+B) = diag A + diag B
    if x.op is Op.SCALE:
        return scale(x.args[0], _diag_of(x.args[1]))        # diag(aX) = a diag X
    if x.op is Op.HADAMARD:
        return hadamard(*(_diag_of(a) for a in x.args))      # diag(A.*B) = diag A .* diag B
    return _diag_of(x.args[0]) if x.op is Op.TRANSPOSE else diag(x)   # diag(X') = diag X


def _identity_hadamard(e: Expr) -> Expr | None:
    eyes = [a for a in e.args if a.op is Op.IDENTITY]
    if not eyes or e.rows != e.cols:
        return None
    rest = [a for a in e.args if a.op is not Op.IDENTITY]
    return Expr(Op.DIAGM, (_diag_of(hadamard(*rest) if rest else eyes[0]),))  # I.*X = Diag(diag X)


def _transpose(e: Expr) -> Expr | None:
    x = e.args[0]
    if x.op is Op.KRON:                                     # (A kron B)' = A' kron B'
        return Expr(Op.KRON, (T(x.args[0]), T(x.args[1])))
    if x.op is Op.COMMUTATION:                              # K(m,n)' = K(n,m)
        return commutation(x.attr[1], x.attr[0])
    if x.op is Op.DIAGM:                                    # Diag(x)' = Diag(x)
        return x
    if x.op is Op.BLOCK:                                    # [A B; C D]' = [A' C'; B' D']
        r, c = x.attr
        return block([[T(x.args[i * c + j]) for i in range(r)] for j in range(c)])
    return None


def _scaled_identity(x: Expr) -> bool:
    return x.op is Op.IDENTITY or x.op is Op.SCALE and x.args[1].op is Op.IDENTITY


def _distribute_identity(e: Expr) -> Expr | None:
    """A (cI + Y) B = c A B + A Y B: no identity materialised, and the chain can be reordered."""
    for i, f in enumerate(e.args):
        if f.op is Op.ADD and any(_scaled_identity(t) for t in f.args):
            left, right = e.args[:i], e.args[i + 1:]
            return add(*(matmul(*left, t, *right) if not _scaled_identity(t) else
                         scale(t.args[0], matmul(*left, *right)) if t.op is Op.SCALE else
                         matmul(*left, *right) for t in f.args))
    return None


REWRITE: dict[Op, Callable[[Expr], Expr | None]] = {
    Op.HADAMARD: _identity_hadamard,                                    # I .* X = Diag(diag X)
    Op.DIAG: lambda e: None if e.args[0].op is Op.MATMUL else _diag_of(e.args[0]),
    Op.LOG: lambda e: logdet(e.args[0].args[0]) if e.args[0].op is Op.DET else None,
    Op.TRANSPOSE: _transpose,
    Op.INV: lambda e: T(Expr(Op.INV, e.args[0].args)) if e.args[0].op is Op.TRANSPOSE
    else None,                                                          # inv(X') = inv(X)'
    Op.MATMUL: _distribute_identity,
}


def canonical(roots: Sequence[Expr]) -> list[Expr]:
    """``REWRITE`` bottom-up.

    >>> from matdiff.expr import sym, eye, hadamard, T, matmul
    >>> X, Y = sym("X", ("n", "n")), sym("Y", ("n", "n"))
    >>> canonical([hadamard(eye("n"), matmul(T(X), Y))])[0].op.name
    'DIAGM'
    """
    memo: dict[Expr, Expr] = {}
    for node in toposort(roots):
        args = tuple(memo[a] for a in node.args)
        new = node if args == node.args else Expr(node.op, args, node.attr)
        rule = REWRITE.get(new.op)
        memo[node] = (rule(new) if rule else None) or new
    return [memo[r] for r in roots]


def _shared_inverses(roots: Sequence[Expr]) -> set[Expr]:
    """Inverses used more than once, or not only as a factor of a product: computed once with
    ``inv``; every other inverse becomes a ``solve``."""
    uses: dict[Expr, list[Op]] = {}
    for node in toposort(roots):
        for a in node.args:
            target = a.args[0] if a.op is Op.TRANSPOSE and a.args[0].op is Op.INV else a
            if target.op is Op.INV:
                uses.setdefault(target, []).append(node.op)
    return {x for x, ops in uses.items() if x in roots or len(ops) > 1 or ops != [Op.MATMUL]}


# ----------------------------------------------------------------------------- helpers


def _ones_const(x: Expr) -> Fraction | None:
    """c for ``c * ones``, so a sum can broadcast the number instead of building the matrix."""
    if x.op is Op.ONES:
        return Fraction(1)
    if x.op is Op.SCALE and x.args[0].op is Op.CONST and x.args[1].op is Op.ONES:
        return Fraction(x.args[0].attr)
    return None


def _split_scalar(g: Graph, x: Arr) -> tuple[Arr | None, Arr]:
    """(c, y) for an array ``x = c * y`` with a scalar c (-1 for a negation), else (None, x)."""
    if x.prim is P.NEG and x.shape:
        return g.lit(-1), x.args[0]
    if x.prim is P.MUL and not x.args[0].shape and x.args[1].shape:
        return x.args[0], x.args[1]
    return None, x


def _negated(g: Graph, x: Arr) -> Arr | None:
    """y when ``x = -y`` is written better as a subtraction (-y, (-c) * y, a negative number)."""
    if x.prim is P.NEG:
        return x.args[0]
    if x.prim is P.LIT and x.attr < 0:
        return g.lit(-x.attr)
    if x.prim is P.MUL and x.args[0].prim is P.LIT and x.args[0].attr < 0:
        return g.mul(g.lit(-x.args[0].attr), x.args[1])
    return None


def _outer(x: Arr) -> tuple[Arr | None, Arr, Arr] | None:
    """(c, u, v) when ``x = c u v'`` is an outer product written as a broadcast."""
    c, y = (x.args[0], x.args[1]) if x.prim is P.MUL and not x.args[0].shape else (None, x)
    if y.prim is P.MUL and len(y.shape) == 2 and [a.shape[1] for a in y.args][0] == ONE \
            and y.args[1].shape[0] == ONE and ONE not in y.shape:
        return c, y.args[0], y.args[1]
    return None


def _dense_pair(t: Expr) -> bool:
    """A product of two dense matrices, or a slice of a product: a term that stacks."""
    t = t.args[0] if t.op is Op.SLICE else t
    mats = [f for f in t.args if not f.is_scalar] if t.op is Op.MATMUL else []
    return len(mats) >= 2 and all(f.op not in SPECIAL and ONE not in f.shape for f in mats)


def _takes_scale(x: Expr) -> bool:
    """Whether every term of the sum ``x`` takes a number without a pass over it: a product
    with a Diag factor (the number goes onto the vector) or one of several stacked products."""
    cores = [t.args[1] if t.op is Op.SCALE and t.args[0].op is Op.CONST else t for t in x.args]
    pairs = sum(_dense_pair(t) for t in cores)
    return all(t.op is Op.MATMUL and any(f.op is Op.DIAGM for f in t.args)
               or (pairs > 1 and _dense_pair(t)) for t in cores)


def _shared(ix: str, iy: str, count: Counter[str], out: str) -> str:
    """The one index two matrices share and a product sums over, else ''."""
    common = set(ix) & set(iy)
    if len(ix) != 2 or len(iy) != 2 or len(common) != 1 or set(ix) == set(iy):
        return ""
    (s,) = common
    return "" if s in out or count[s] != 2 else s


def _contract_size(ops: list[tuple[Arr, str]], p: int, q: int) -> Dim:
    sizes = {i: d for x, ix in (ops[p], ops[q]) for i, d in zip(ix, x.shape, strict=True)}
    return reduce(lambda a, b: a * b, sizes.values(), ONE)


def _least(options: Sequence[Dim]) -> int | None:
    """The index of an option provably no larger than every other (the last such)."""
    for s in reversed(range(len(options))):
        if all(nonneg(o - options[s]) for o in options):
            return s
    return None


# ----------------------------------------------------------------------------- the lowering


class Lowering:
    """One lowering run: the canonical roots, their uses, and the IR built so far."""

    def __init__(self, roots: Sequence[Expr], swap: str = "thin"):
        self.g = Graph()
        self.swap = swap            # X'Y as (Y'X)': "thin" when the result is tall, "vector"
        self.roots = canonical(roots)
        self.parents: dict[Expr, list[Expr]] = {}
        for node in toposort(self.roots):
            for a in node.args:
                self.parents.setdefault(a, []).append(node)
        self.dense_inv = _shared_inverses(self.roots)
        self.memo: dict[Expr, Arr] = {}
        self.products: dict[tuple[Arr, ...], Arr] = {}

    def run(self) -> list[Arr]:
        """Lower root by root, children first (no recursion over the depth of the DAG)."""
        out = []
        for root in self.roots:
            for node in toposort([root]):
                self.lower(node)
            out.append(self.memo[root])
            self.g.commit(out[-1:])
        return out

    def lower(self, e: Expr) -> Arr:
        found = self.memo.get(e)
        if found is None:
            found = self.memo[e] = LOWER[e.op](self, e)
            assert found.shape == (() if e.is_scalar else e.shape), (e.op, found)
        return found

    # -- uses in the canonical DAG
    def single_use(self, x: Expr) -> bool:
        """Whether ``x`` has one consumer (a node a rule made has the one that made it)."""
        return x not in self.roots and len(self.parents.get(x, [x])) == 1

    def only_sliced(self, x: Expr) -> bool:
        """Used only through slices that together cover no more than ``x``."""
        users = self.parents.get(x, [])
        if x in self.roots or not users or any(u.op is not Op.SLICE for u in users):
            return False
        area = sum(((u.attr[1] - u.attr[0]) * (u.attr[3] - u.attr[2]) for u in users), ZERO_DIM)
        return nonneg(x.rows * x.cols - area)

    def special(self, f: Expr) -> bool:
        x = f.args[0] if f.op is Op.TRANSPOSE and f.args[0].op is Op.INV else f
        return x.op in SPECIAL and x not in self.dense_inv

    # -- products
    def mm(self, a: Arr, b: Arr) -> Arr:
        """a @ b: scalars and outer products broadcast; X'Y is (Y'X)' where that runs faster
        (OpenBLAS and MKL for a tall result, XLA for a vector: benchmarks/README.md), decided
        at call time when the sizes are symbolic."""
        g = self.g
        if not a.shape or not b.shape or a.shape[1] == ONE:   # u v' = u .* v'
            return g.mul(a, b)
        if a.prim is not P.TRANSPOSE or b.prim is P.TRANSPOSE:
            return g.matmul(a, b)
        plain, swapped = g.matmul(a, b, False), g.t(g.matmul(g.t(b), a.args[0], False))
        rows, cols = plain.shape
        if self.swap == "vector" or cols == ONE or nonneg(cols - rows):
            return swapped if self.swap == "vector" and cols == ONE else plain
        if nonneg(rows - cols - ONE):
            return swapped
        return g.node(P.CHOOSE, (swapped, plain), (rows, ">", cols), plain.shape)

    def product(self, items: Sequence[Expr | Arr], choose: bool = True) -> Arr:
        """A matrix product: structured factors act on a dense neighbour (the right one first),
        so two are multiplied out only when nothing else is left; then the dense chain."""
        ops = [f if isinstance(f, Arr) or self.special(f) else self.lower(f) for f in items]

        def special(i: int) -> bool:
            return isinstance(ops[i], Expr)
        while len(ops) > 1 and any(map(special, range(len(ops)))):
            pairs = [(i, i + 1) for i in range(len(ops) - 1) if special(i) and not special(i + 1)]
            pairs += [(i - 1, i) for i in range(1, len(ops)) if special(i) and not special(i - 1)]
            lo, hi = pairs[0] if pairs else (len(ops) - 2, len(ops) - 1)
            a, b = ops[lo], ops[hi]
            ops[lo:hi + 1] = [self.apply_left(a, self.arr(b)) if isinstance(a, Expr)
                              else self.apply_right(a, b)]  # type: ignore[arg-type]
        return self.chain([self.arr(f) for f in ops], choose)

    def arr(self, f: Expr | Arr) -> Arr:
        return f if isinstance(f, Arr) else self.lower(f)

    def chain(self, fs: list[Arr], choose: bool = True) -> Arr:
        """A dense chain in its cheapest order: the DP on known sizes (a product computed
        already is free), a split that provably costs least, else for three factors a
        call-time choice and for more ``multi_dot``; without ``choose``, left to right."""
        key, known = tuple(fs), self.products.get(tuple(fs))
        if len(fs) == 1 or known is not None and (choose or known.prim is P.MATMUL):
            return known or fs[0]
        s = 1 if len(fs) == 2 else self.split(fs)
        if s is None and choose and len(fs) == 3:
            out = self.g.pick(self.mm(self.chain(fs[:2]), fs[2]),
                              self.mm(fs[0], self.chain(fs[1:])), at_call_time=True)
        elif s is None and choose:
            out = self.g.call("multi_dot", *fs, shape=(fs[0].shape[0], fs[-1].shape[1]))
        else:
            s = s or len(fs) - 1
            out = self.mm(self.chain(fs[:s], choose), self.chain(fs[s:], choose))
        if choose:
            self.products[key] = out
        return out

    def split(self, fs: list[Arr]) -> int | None:
        """Where the last multiplication of the chain ``fs`` provably costs least."""
        dims = [f.shape[0] for f in fs] + [fs[-1].shape[1]]
        memo: dict[tuple[int, int], Dim] = {}

        def options(i: int, j: int) -> list[Dim]:
            return [cost(i, k) + cost(k, j) + dims[i] * dims[k] * dims[j] for k in range(i + 1, j)]

        def cost(i: int, j: int) -> Dim:
            if j - i == 1 or self.products.get(tuple(fs[i:j])) in self.g.live:
                return ZERO_DIM
            if (i, j) not in memo:
                opts = options(i, j)
                least = _least(opts)
                memo[(i, j)] = opts[-1 if least is None else least]
            return memo[(i, j)]
        best = _least(options(0, len(fs)))
        return None if best is None else best + 1

    def distributed(self, items: Sequence[Expr]) -> Arr | None:
        """A (B + C) D as A B D + A C D when that costs less, given what is computed already
        (the value's ``C W`` makes ``(C + C')W = C W + C' W`` cheaper)."""
        i = next((i for i, f in enumerate(items) if f.op is Op.ADD and len(f.args) <= 4), None)
        if i is None:
            return None
        whole = self.product(items)
        left, right = items[:i], items[i + 1:]
        split = self.sum_of([self.lower(matmul(*left, t, *right)) for t in items[i].args])
        return self.g.pick(whole, split)

    def sum_of(self, terms: Sequence[Arr]) -> Arr:
        out = terms[0]
        for t in terms[1:]:
            minus = _negated(self.g, t)
            out = self.g.add(out, t) if minus is None else self.g.ew(P.SUB, out, minus)
        return out

    def stacked(self, terms: Sequence[Expr], irs: Sequence[Arr]) -> Arr | None:
        """c1 X1 Y1 + c2 X2 Y2 + R = [c1 X1, c2 X2] [Y1; Y2] + R: one product with the inner
        dimensions stacked, for products that have no other use."""
        g, found = self.g, {}
        for k, (t, x) in enumerate(zip(terms, irs, strict=True)):
            c, p = _split_scalar(g, x)
            core = t.args[1] if t.op is Op.SCALE else t
            if p.prim is P.MATMUL and self.single_use(t) and self.single_use(core) and x.shape:
                found[k] = (p.args[0] if c is None else g.mul(c, p.args[0]), p.args[1])
        if len(found) < 2:
            return None
        left = g.concat([x for x, _ in found.values()], 1)
        right = g.concat([y for _, y in found.values()], 0)
        rest = [x for k, x in enumerate(irs) if k not in found]
        if rest and any(r.shape for r in rest):                  # torch.addmm adds to arrays
            return g.call("addmm", self.sum_of(rest), left, right)
        return self.sum_of([g.matmul(left, right), *rest])

    def dot(self, a: Arr, b: Arr) -> Arr:
        """sum(a .* b); a Kronecker factor is never materialised:
        <Y, A kron B> = sum_{a,i,b,j} Y4[a,i,b,j] A[a,b] B[i,j]."""
        if not a.shape:
            return self.g.mul(a, b)
        if a.key is Op.KRON:
            a, b = b, a
        if b.key is not Op.KRON:
            return self.g.call("dot", a, b, shape=())
        ka, kb = b.args
        y4 = self.g.reshape(a, (ka.shape[0], kb.shape[0], ka.shape[1], kb.shape[1]))
        return self.contract([(y4, "aibj"), (ka, "ab"), (kb, "ij")], "")

    def contract(self, ops: list[tuple[Arr, str]], out: str) -> Arr:
        """The einsum ``ops -> out``: pairs of matrices sharing one summed index become
        products (cheapest first), matrices over the same indices an elementwise product;
        whatever is left is one ``einsum``."""
        ops = list(ops)
        while True:
            count = Counter(i for _, ix in ops for i in ix)
            pairs = [(p, q) for p in range(len(ops)) for q in range(p + 1, len(ops))
                     if _shared(ops[p][1], ops[q][1], count, out)]
            if not pairs:
                break
            p, q = pairs[_least([_contract_size(ops, *pq) for pq in pairs]) or 0]
            (x, ix), (y, iy) = ops[p], ops[q]
            s = _shared(ix, iy, count, out)
            fx, fy = ix.replace(s, ""), iy.replace(s, "")
            if fx in out and fy in out and out.index(fy) < out.index(fx):   # keep out's order
                (x, ix), (y, iy) = (y, iy), (x, ix)
            x, ix = (self.g.t(x), ix[::-1]) if ix[0] == s else (x, ix)
            y, iy = (self.g.t(y), iy[::-1]) if iy[1] == s else (y, iy)
            ops = [o for k, o in enumerate(ops) if k not in (p, q)] + [(self.mm(x, y), ix[0] + iy[1])]
        if len(out) == 2 and all(sorted(ix) == sorted(out) for _, ix in ops):
            return reduce(self.g.mul, [x if ix == out else self.g.t(x) for x, ix in ops])
        sizes = {i: d for x, ix in ops for i, d in zip(ix, x.shape, strict=True)}
        spec = ",".join(ix for _, ix in ops) + "->" + out
        return self.g.call("einsum", *(x for x, _ in ops), shape=tuple(sizes[i] for i in out),
                           spec=spec)

    def sandwich(self, mats: Sequence[Expr]) -> Arr | None:
        """(L1 kron L2) (Y .* (K1 kron K2)) (R1 kron R2) with identity (an index kept) or ones
        (an index summed) outer factors, the form of every Kronecker-factor gradient: one
        contraction over the 4-D view Y4[a, i, b, j] = Y[a*I + i, b*J + j], or over U and V
        when Y = u v' is an outer product (U[a, i] = u[a*I + i]): never the Kronecker
        products, the masked Y, or the outer product."""
        if len(mats) != 3 or mats[0].op is not Op.KRON or mats[2].op is not Op.KRON:
            return None
        (l1, l2), (r1, r2) = mats[0].args, mats[2].args
        outer = {"a": (l1, l1.rows), "i": (l2, l2.rows), "b": (r1, r1.cols), "j": (r2, r2.cols)}
        if not all(f.op is Op.IDENTITY or f.op is Op.ONES and n == ONE for f, n in outer.values()):
            return None
        y, masks = mats[1], []
        if y.op is Op.HADAMARD and len(y.args) == 2 and [x.op for x in y.args].count(Op.KRON) == 1:
            k = next(x for x in y.args if x.op is Op.KRON)
            y = next(x for x in y.args if x is not k)
            if k.args[0].shape != (l1.cols, r1.rows) or any(f.op is Op.IDENTITY for f in k.args):
                return None
            masks = [(self.lower(f), ix) for f, ix in zip(k.args, ("ab", "ij"), strict=True)
                     if f.op is not Op.ONES]
        g, yir = self.g, self.lower(y)
        sizes = (l1.cols, l2.cols, r1.rows, r2.rows)
        uv = _outer(yir)
        ops = [(g.reshape(yir, sizes), "aibj")] if uv is None else \
            [(g.reshape(uv[1], sizes[:2]), "ai"), (g.reshape(uv[2], sizes[2:]), "bj")]
        out = "".join(i for i, (f, _) in outer.items() if f.op is Op.IDENTITY)
        body = g.reshape(self.contract(ops + masks, out), (mats[0].rows, mats[2].cols))
        return body if uv is None or uv[0] is None else g.mul(uv[0], body)

    # -- structured factors applied as operators
    def apply_left(self, s: Expr, v: Arr) -> Arr:
        """s @ v for a structured factor s."""
        g, k = self.g, v.shape[1]
        if s.op is Op.IDENTITY:
            return v
        if s.op is Op.ZERO:
            return g.fill(0, (s.rows, k))
        if s.op in (Op.INV, Op.TRANSPOSE):                      # inv(A) B = solve(A, B)
            a = self.lower(s.args[0]) if s.op is Op.INV else g.t(self.lower(s.args[0].args[0]))
            return g.call("solve", a, v, shape=(s.rows, k))
        if s.op is Op.DIAGM:                                   # Diag(x) B = x .* B (rows)
            return g.mul(self.lower(s.args[0]), v)
        if s.op is Op.ONES:                                    # 1 B = 1 colsum(B)
            sums = g.call("colsum", v, shape=(ONE, k))
            return sums if s.rows == ONE else g.mul(g.fill(1, (s.rows, ONE)), sums)
        if s.op is Op.KRON:
            return self.kron_left(s, v)
        if s.op is Op.BLOCK:
            return self.block_left(s, v)
        a, b = s.attr                                          # K(a, b) vec X = vec X'
        return g.reshape(g.permute(g.reshape(v, (b, a, k)), (1, 0, 2)), (s.rows, k))

    def apply_right(self, v: Arr, s: Expr) -> Arr:
        """v @ s for a structured factor s: row and column scalings and sums directly, the
        others as (s' v')'."""
        g, k = self.g, v.shape[0]
        if s.op is Op.DIAGM:                                   # B Diag(x) = B .* x' (cols)
            return g.mul(v, g.t(self.lower(s.args[0])))
        if s.op is Op.ONES:                                    # B 1 = rowsum(B) 1'
            sums = g.call("rowsum", v, shape=(k, ONE))
            return sums if s.cols == ONE else g.mul(sums, g.fill(1, (ONE, s.cols)))
        return g.t(self.apply_left(REWRITE[Op.TRANSPOSE](T(s)) or T(s), g.t(v)))

    def kron_left(self, e: Expr, v: Arr) -> Arr:
        """(A kron B) M with M3[a, b, j] = M[a*s + b, j]: out[c*r + d, j] = A[c,a] B[d,b]
        M3[a,b,j]; B acts on (s, q*k), A on (q, r*k), each with its own structure."""
        (a, b), g, k = e.args, self.g, v.shape[1]
        q, s, r = a.cols, b.cols, b.rows
        m3 = g.reshape(v, (q, s, k))                                   # [a, b, j]
        if b.op is not Op.IDENTITY:
            y = self.product([b, g.reshape(g.permute(m3, (1, 0, 2)), (s, q * k))])
            m3 = g.permute(g.reshape(y, (r, q, k)), (1, 0, 2))          # [a, d, j]
        if a.op is Op.IDENTITY:
            return g.reshape(m3, (e.rows, k))
        return g.reshape(self.product([a, g.reshape(m3, (q, r * k))]), (e.rows, k))

    def block_left(self, e: Expr, v: Arr) -> Arr:
        """[A B; C D] V block by block on row slices of V: the block matrix is never built,
        zero blocks are skipped."""
        g, (r, c) = self.g, e.attr
        grid, parts, off = [e.args[i * c:(i + 1) * c] for i in range(r)], [], ZERO_DIM
        for x in grid[0]:
            parts.append(g.slice(v, off, off + x.cols))
            off = off + x.cols
        rows = []
        for line in grid:
            terms = [t for t in map(self.block_term, line, parts) if t is not None]
            rows.append(self.sum_of(terms) if terms else g.fill(0, (line[0].rows, v.shape[1])))
        return g.concat(rows, 0)

    def block_term(self, x: Expr, part: Arr) -> Arr | None:
        """One block times one slice; None for a zero block."""
        c = None
        if x.op is Op.SCALE and x.args[0].op is Op.CONST:
            c, x = self.g.lit(x.args[0].attr), x.args[1]
        if x.op is Op.ZERO:
            return None
        body = part if x.op is Op.IDENTITY else self.product([x, part])
        return body if c is None else self.g.mul(c, body)

    def push_slice(self, x: Arr, r0: Dim, r1: Dim, c0: Dim, c1: Dim) -> Arr:
        """(H T)[r, c] = H[r, :] T[:, c], recursively, unless the product is computed anyway;
        slices sharing rows share ``H[r, :]``."""
        g = self.g
        if x.prim is P.TRANSPOSE:
            return g.t(self.push_slice(x.args[0], c0, c1, r0, r1))
        if x.prim is not P.MATMUL or x in g.live:
            return g.slice(x, r0, r1, c0, c1)
        a, b = x.args
        return self.mm(self.push_slice(a, r0, r1, ZERO_DIM, a.shape[1]),
                       self.push_slice(b, ZERO_DIM, b.shape[0], c0, c1))


# ----------------------------------------------------------------------------- the table


def _matmul(L: Lowering, e: Expr, extra: Sequence[Arr] = ()) -> Arr:
    """Scalars pulled out (and put onto a vector factor: c A u v' = A (c u) v'), then a
    Kronecker sandwich, a distribution over a sum, or the structured chain."""
    g = L.g
    coeffs = [*extra, *(L.lower(f) for f in e.args if f.is_scalar)]
    mats: list[Expr | Arr] = [f for f in e.args if not f.is_scalar]
    if not mats:
        return reduce(g.mul, coeffs)
    body = L.sandwich(mats)  # type: ignore[arg-type]
    vectors = [i for i, f in enumerate(mats) if isinstance(f, Expr) and ONE in f.shape
               and not L.special(f)]
    if body is None and coeffs and vectors:
        i = vectors[0]
        mats[i] = g.mul(reduce(g.mul, coeffs), L.lower(mats[i]))  # type: ignore[arg-type]
        coeffs = []
    if body is None and all(isinstance(f, Expr) for f in mats):
        body = L.distributed(mats)  # type: ignore[arg-type]
    body = body or L.product(mats)
    body = g.item(body) if body.shape and e.is_scalar else body
    return g.mul(reduce(g.mul, coeffs), body) if coeffs else body


def _add(L: Lowering, e: Expr) -> Arr:
    """A sum, ``c * ones`` broadcast as the number c, summed products stacked when cheaper."""
    dense = any(_ones_const(t) is None for t in e.args)
    irs = [L.g.lit(c) if dense and (c := _ones_const(t)) is not None else L.lower(t)
           for t in e.args]
    plain, stacked = L.sum_of(irs), L.stacked(e.args, irs)
    return plain if stacked is None else L.g.pick(plain, stacked, at_call_time=True)


def _scale(L: Lowering, e: Expr) -> Arr:
    a, x = e.args
    if x.op is Op.MATMUL and L.single_use(x) and not e.is_scalar:
        i = next((i for i, f in enumerate(x.args) if f.op is Op.DIAGM), None)
        if i is None:
            return _matmul(L, x, [L.lower(a)])                  # c (A u) = A (c u)
        d = Expr(Op.DIAGM, (scale(a, x.args[i].args[0]),))     # c A Diag(v) = A Diag(c v)
        return L.lower(Expr(Op.MATMUL, (*x.args[:i], d, *x.args[i + 1:])))
    if a.op is Op.CONST and x.op is Op.ADD and L.single_use(x) and _takes_scale(x):
        return L.lower(add(*(scale(a, t) for t in x.args)))   # c (A + B) = c A + c B
    return L.g.mul(L.lower(a), L.lower(x))


def _norm_with_diagonal(L: Lowering, x: Expr) -> Expr | None:
    """||S + c Diag(v)||_F^2 = (||S||_F^2 - ||diag S||^2) + ||diag S + c v||^2: the diagonal
    matrix is never built (when the sum has no other use). The residual on the diagonal is
    formed before it is squared, so a close fit keeps its accuracy."""
    y = x.args[0]
    if y.op is not Op.ADD or not L.single_use(y) or not L.single_use(x):
        return None
    diagonal = [t for t in y.args if t.op is Op.DIAGM or t.op is Op.SCALE
                and t.args[0].op is Op.CONST and t.args[1].op is Op.DIAGM]
    if len(diagonal) != 1:
        return None
    (d,) = diagonal
    cv = d.args[0] if d.op is Op.DIAGM else scale(d.args[0], d.args[1].args[0])
    rest = add(*(t for t in y.args if t is not d))
    return add(hpow(norm(rest), 2), scale(Expr(Op.CONST, (), Fraction(-1)),
                                          hpow(norm(diag(rest)), 2)),
               hpow(norm(add(diag(rest), cv)), 2))


def _pow(L: Lowering, e: Expr) -> Arr:
    x, p = e.args
    if x.op is Op.NORM and x.attr == "2" and p.op is Op.CONST and p.attr == 2:
        other = _norm_with_diagonal(L, x)
        y = L.lower(x.args[0])
        return L.lower(other) if other is not None else L.dot(y, y)  # ||X||^2 = <X, X>
    return L.g.ew(P.POW, L.lower(x), L.lower(p))


def _products(L: Lowering, x: Expr) -> tuple[list[Arr], Expr, Arr] | None:
    """(coefficients, first factor, product of the rest) of a product of >= 2 matrices."""
    mats = [f for f in x.args if not f.is_scalar] if x.op is Op.MATMUL else []
    if len(mats) < 2:
        return None
    return [L.lower(f) for f in x.args if f.is_scalar], mats[0], L.product(mats[1:])


def _scaled(L: Lowering, coeffs: list[Arr], body: Arr) -> Arr:
    return L.g.mul(reduce(L.g.mul, coeffs), body) if coeffs else body


def _trace(L: Lowering, e: Expr) -> Arr:
    x, g = e.args[0], L.g
    if x.op is Op.IDENTITY:                                    # tr(I_n) = n
        return g.array(x.attr)
    if x.op is Op.KRON:
        a, b = (L.lower(f) for f in x.args)
        if x.args[0].rows == x.args[0].cols and x.args[1].rows == x.args[1].cols:
            return g.mul(*(g.call(Op.TRACE, f, shape=()) for f in (a, b)))  # tr A tr B
        return g.call("kron_trace", a, b, shape=(), n=x.rows, r=x.args[1].rows,
                      s=x.args[1].cols)           # A[i // r, i // s] B[i % r, i % s] summed
    parts = _products(L, x)
    if parts is None:                                          # tr(X') = tr X
        return g.call(Op.TRACE, L.lower(x.args[0] if x.op is Op.TRANSPOSE else x), shape=())
    coeffs, first, rest = parts                                # tr(A B) = <A', B>
    if first.op is Op.TRANSPOSE and rest.prim is not P.TRANSPOSE:
        return _scaled(L, coeffs, L.dot(L.lower(first.args[0]), rest))
    if rest.prim is P.TRANSPOSE:
        return _scaled(L, coeffs, L.dot(L.lower(first), rest.args[0]))
    return _scaled(L, coeffs, L.dot(L.lower(first), g.t(rest)))


def _diag(L: Lowering, e: Expr) -> Arr:
    x, g = e.args[0], L.g
    parts = _products(L, x)
    if parts is None:
        return g.call(Op.DIAG, L.lower(x), shape=e.shape)
    coeffs, first, rest = parts
    if first.op is Op.TRANSPOSE:                               # diag(X'Y) = colsum(X .* Y)
        return _scaled(L, coeffs, g.call("coldot", L.lower(first.args[0]), rest, shape=e.shape))
    return _scaled(L, coeffs, g.call("rowdot", L.lower(first), g.t(rest), shape=e.shape))


def _slice(L: Lowering, e: Expr) -> Arr:
    x, (r0, r1, c0, c1) = e.args[0], e.attr
    if e.is_scalar:                                            # one entry
        return L.g.item(L.lower(x), r0, c0)
    if x.op is Op.MATMUL and L.only_sliced(x) and not any(f.is_scalar for f in x.args):
        return L.push_slice(L.product(x.args, choose=False), r0, r1, c0, c1)
    return L.g.slice(L.lower(x), r0, r1, c0, c1)


def _hadamard(L: Lowering, e: Expr) -> Arr:
    """X .* (A kron B) on 4-D views, never the Kronecker product; else a product."""
    g, krons = L.g, [x for x in e.args if x.op is Op.KRON]
    if len(krons) != 1 or e.is_scalar:
        return reduce(g.mul, [L.lower(x) for x in e.args])
    (a, b), k = krons[0].args, krons[0]
    rest = reduce(g.mul, [L.lower(x) for x in e.args if x is not k])
    factors = [g.reshape(rest, (a.rows, b.rows, a.cols, b.cols))]
    factors += [g.reshape(L.lower(a), (a.rows, ONE, a.cols, ONE))] if a.op is not Op.ONES else []
    factors += [g.reshape(L.lower(b), (ONE, b.rows, ONE, b.cols))] if b.op is not Op.ONES else []
    return g.reshape(reduce(g.mul, factors), k.shape)


def _sum(L: Lowering, e: Expr) -> Arr:
    x, g = e.args[0], L.g
    if x.op is Op.HADAMARD and len(x.args) == 2:               # sum(X .* Y) = <X, Y>
        return L.dot(L.lower(x.args[0]), L.lower(x.args[1]))
    if x.op is Op.KRON:                                        # sum(A kron B) = sum A sum B
        return g.mul(*(g.call(Op.SUM, L.lower(f), shape=()) for f in x.args))
    return g.call(Op.SUM, L.lower(x), shape=())


def _norm(L: Lowering, e: Expr) -> Arr:
    x, g = e.args[0], L.g
    if x.op is Op.CONST:                                       # ||c||_p = |c|
        return g.lit(abs(x.attr))
    y = L.lower(x)
    if not y.shape:                                            # ||a||_p = |a|
        return g.call(Op.ABS, y)
    if e.attr == "1":
        return g.call(Op.SUM, g.call(Op.ABS, y), shape=())
    return g.call(Op.SQRT, L.dot(y, y))


def _array(g: Graph, x: Arr) -> Arr:
    """A number as a 0-d array (a function of it computes in floats, in every backend)."""
    return g.array(x.attr) if x.prim is P.LIT else x


def _logdet(L: Lowering, e: Expr) -> Arr:
    y, g = L.lower(e.args[0]), L.g
    if not y.shape:                                            # logdet of 1x1 a = log|a|
        return g.call(Op.LOG, g.call(Op.ABS, _array(g, y)))
    return g.call("slogdet", y, shape=())                      # log|det X|


def _block(L: Lowering, e: Expr) -> Arr:
    g, (r, c) = L.g, e.attr
    entries = [g.call("mat11", _array(g, L.lower(x)), shape=(ONE, ONE)) if x.is_scalar
               else L.lower(x) for x in e.args]
    return g.concat([g.concat(entries[i * c:(i + 1) * c], 1) for i in range(r)], 0)


def _commutation(L: Lowering, e: Expr) -> Arr:
    g, (a, b), n = L.g, e.attr, e.rows                         # K vec(X) = vec(X')
    if e.is_scalar:
        return g.array(Fraction(1))
    return g.reshape(g.permute(g.reshape(g.eye(n), (b, a, n)), (1, 0, 2)), (n, n))


def _shape(e: Expr) -> tuple[Dim, ...]:
    return () if e.is_scalar else e.shape


LOWER: dict[Op, Callable[[Lowering, Expr], Arr]] = {
    Op.SYMBOL: lambda L, e: L.g.input(e.attr[0], _shape(e)),
    Op.CONST: lambda L, e: L.g.lit(e.attr),
    Op.IDENTITY: lambda L, e: L.g.array(Fraction(1)) if e.is_scalar else L.g.eye(e.attr),
    Op.ONES: lambda L, e: L.g.fill(1, e.shape),
    Op.ZERO: lambda L, e: L.g.fill(0, e.shape),
    Op.COMMUTATION: _commutation,
    Op.ADD: _add,
    Op.SCALE: _scale,
    Op.MATMUL: _matmul,
    Op.TRANSPOSE: lambda L, e: L.g.t(L.lower(e.args[0])),
    Op.HADAMARD: _hadamard,
    Op.HDIV: lambda L, e: L.g.ew(P.DIV, L.lower(e.args[0]), L.lower(e.args[1])),
    Op.POW: _pow,
    Op.KRON: lambda L, e: L.g.call(Op.KRON, *map(L.lower, e.args), shape=e.shape),
    Op.BLOCK: _block,
    Op.SLICE: _slice,
    Op.TRACE: _trace,
    Op.DET: lambda L, e: L.g.call(Op.DET, L.lower(e.args[0]), shape=()),
    Op.LOGDET: _logdet,
    Op.INV: lambda L, e: L.g.call(Op.INV, L.lower(e.args[0])),
    Op.MATPOW: lambda L, e: L.g.call(Op.MATPOW, L.lower(e.args[0]), k=e.attr),
    Op.DIAG: _diag,
    Op.DIAGM: lambda L, e: L.g.call(Op.DIAGM, L.lower(e.args[0]), shape=e.shape),
    Op.VEC: lambda L, e: L.g.reshape(L.g.t(L.lower(e.args[0])), e.shape),  # column-major
    Op.UNVEC: lambda L, e: L.g.t(L.g.reshape(L.lower(e.args[0]), (e.cols, e.rows))),
    Op.SUM: _sum,
    Op.NORM: _norm,
    **{op: (lambda L, e: L.g.call(e.op, _array(L.g, L.lower(e.args[0])))) for op in ELEMENTWISE},
}
