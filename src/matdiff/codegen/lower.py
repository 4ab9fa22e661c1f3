"""Lowering: expressions to the array IR, one ``LOWER`` row per Op.

Input: the value and its gradients; output: one IR node each, in one ``Graph``, lowered
children first and root by root (what a root computes is free for the next). Products apply
structured factors by the ``LEFT`` rules (Kronecker, block, diagonal, ones, inverse: never
built), order the dense chain by cost, distribute over sums when cheaper, push slices inside
and stack summed products; a Kronecker sandwich is one contraction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from functools import reduce

from .. import expr as E
from ..expr import ELEMENTWISE, SYMMETRIC_STRUCTURES, Dim, Expr, Op, toposort
from ..stable import stable_form
from .ir import ONE, ZERO, Arr, Graph, P, nonneg, unconditional, walk
from .ir import cost as node_cost

__all__ = ["LOWER", "LEFT", "Lowering", "canonical"]


def _diag_of(x: Expr) -> Expr:
    """diag(x) pushed through linear and elementwise structure."""
    if x.op is Op.ADD:
        return E.add(*map(_diag_of, x.args))                  # diag(A+B) = diag A + diag B
    if x.op is Op.SCALE:
        return E.scale(x.args[0], _diag_of(x.args[1]))        # diag(aX) = a diag X
    if x.op is Op.HADAMARD:
        return E.hadamard(*map(_diag_of, x.args))             # diag(A.*B) = diag A .* diag B
    return _diag_of(x.args[0]) if x.op is Op.TRANSPOSE else E.diag(x)   # diag(X') = diag X


def _declared_diagonal(x: Expr) -> bool:
    return x.op is Op.SYMBOL and x.attr[2] == "diagonal" and not x.is_scalar


def canonical(roots: Sequence[Expr]) -> list[Expr]:
    """I .* X = Diag(diag X) and X .* D = Diag(diag X .* diag D) for a D declared diagonal,
    throughout, so that rules see the diagonal matrix.

    >>> from matdiff.expr import sym, eye, hadamard, T, matmul
    >>> X, Y = sym("X", ("n", "n")), sym("Y", ("n", "n"))
    >>> canonical([hadamard(eye("n"), matmul(T(X), Y))])[0].op.name
    'DIAGM'
    """
    memo: dict[Expr, Expr] = {}
    for node in toposort(roots):
        args = tuple(memo[a] for a in node.args)
        new = node if args == node.args else Expr(node.op, args, node.attr)
        rest = [a for a in args if a.op is not Op.IDENTITY]
        if new.op is Op.HADAMARD and len(rest) < len(args):
            new = Expr(Op.DIAGM, (_diag_of(E.hadamard(*rest) if rest else args[0]),))
        elif new.op is Op.HADAMARD and any(map(_declared_diagonal, args)):  # X .* D
            new = Expr(Op.DIAGM, (_diag_of(new),))
        memo[node] = new
    return [memo[r] for r in roots]


def _split_scalar(g: Graph, x: Arr) -> tuple[Arr | None, Arr]:
    """(c, y) for an array ``x = c * y`` with a scalar c (-1 for a negation), else (None, x)."""
    if x.prim is P.NEG and x.shape:
        return g.lit(-1), x.args[0]
    return (x.args[0], x.args[1]) if x.prim is P.MUL and not x.args[0].shape and x.shape \
        else (None, x)


def _negated(g: Graph, x: Arr) -> Arr | None:
    """y when ``x = -y`` reads better as a subtraction (-y, (-c) * y, a negative number)."""
    if x.prim is P.NEG or x.prim is P.LIT and x.attr < 0:
        return g.neg(x)
    c, y = _split_scalar(g, x) if x.shape else (x.args[0], x.args[1]) if x.prim is P.MUL \
        else (None, x)                                        # a number times a scalar
    return g.mul(g.neg(c), y) if c is not None and c.prim is P.LIT and c.attr < 0 else None


def _takes_scale(x: Expr) -> bool:
    """Every term of the sum ``x`` takes a number without a pass over it: onto the vector of
    a Diag factor, or into the factors of several stacked products (or slices of them)."""
    cores = [t.args[1] if t.op is Op.SCALE and t.args[0].op is Op.CONST else t for t in x.args]
    cores = [t.args[0] if t.op is Op.SLICE else t for t in cores]
    stacks = [t.op is Op.MATMUL and all(f.op not in (Op.DIAGM, Op.KRON, Op.BLOCK, Op.INV) and
                                        ONE not in f.shape for f in t.args) for t in cores]
    return all(t.op is Op.MATMUL and any(f.op is Op.DIAGM for f in t.args)
               or s and sum(stacks) > 1 for t, s in zip(cores, stacks, strict=True))


def _summed(ops: list[tuple[Arr, str]], ix: str, iy: str, out: str) -> str:
    """The index two matrices alone share and a product sums over, else ''."""
    common = set(ix) & set(iy)
    s = common.pop() if len(ix) == len(iy) == 2 and len(common) == 1 else ""
    return s if s and s not in out and sum(s in i for _, i in ops) == 2 else ""


INVERSES = (Op.INV, "cho_inv", "lu_inv")     # inv(X), from X or its factorization


def _factored(roots: Sequence[Expr], parents: dict[Expr, list[Expr]]) -> dict[Expr, str]:
    """The matrices factored once for their inverse, solves, det and logdet: "cho" for one
    declared spd, "lu" for one both inverted (or solved with) and its logdet taken."""
    kinds: dict[Expr, set[Op]] = {}
    for e in toposort(roots):
        x = e.args[0].args[0] if e.op is Op.LOG and e.args[0].op is Op.DET else \
            e.args[0] if e.op in (Op.INV, Op.DET, Op.LOGDET) else None
        if x is not None and not x.is_scalar and not (e.op is Op.DET and all(
                p.op is Op.LOG for p in parents.get(e, []))):
            x = x.args[0] if x.op is Op.TRANSPOSE else x
            kinds.setdefault(x, set()).add(Op.LOGDET if e.op is Op.LOG else e.op)
    return {x: "cho" if x.op is Op.SYMBOL and x.attr[2] == "spd" else "lu" for x, k in
            kinds.items() if not _declared_diagonal(x) and (
                x.op is Op.SYMBOL and x.attr[2] == "spd" or {Op.INV, Op.LOGDET} <= k)}


def _outer(x: Arr) -> tuple[Arr, Arr] | None:
    """(u, v') when ``x`` is the outer product u .* v' (a column times a row), else None."""
    if x.prim is not P.MUL or len(x.shape) != 2 or ONE in x.shape:
        return None
    a, b = x.args
    return (a, b) if a.shape[1:] == (ONE,) and b.shape[:1] == (ONE,) else \
        (b, a) if b.shape[1:] == (ONE,) and a.shape[:1] == (ONE,) else None


def _least(options: Sequence[Dim]) -> int | None:
    """The index of an option provably no larger than every other (the last such)."""
    return next((s for s in reversed(range(len(options)))
                 if all(nonneg(o - options[s]) for o in options)), None)


class Lowering:
    """One lowering run: the roots, their uses, the IR built so far; rows and rules."""

    def __init__(self, roots: Sequence[Expr], swap: str = "thin"):
        self.g, self.swap, self.roots = Graph(), swap, canonical(roots)  # see mm
        self.parents: dict[Expr, list[Expr]] = {}
        for node in toposort(self.roots):
            for a in node.args:
                self.parents.setdefault(a, []).append(node)
        inverses: dict[Expr, list[Expr]] = {}                # inv(X) and inv(X)', by inv(X)
        for a, ps in self.parents.items():
            inverses.setdefault(a.args[0] if a.op is Op.TRANSPOSE else a, []).extend(ps)
        self.dense = {x for x, ps in inverses.items() if x.op is Op.INV and (
            x in self.roots or len(ps) > 1 or ps[0].op is not Op.MATMUL)}  # others: solves
        self.factored = _factored(self.roots, self.parents)
        self.memo: dict[Expr, Arr] = {}
        self.products: dict[tuple[Arr, ...], Arr] = {}
        self.blocks: set[Arr] = set()           # block matrices of the input: never built
        # complex arithmetic: no conjugating dot products (JAX's vdot, torch's vecdot), and
        # a real-valued output is the real part of what complex arithmetic computed
        self.complex = any(n.is_complex for n in toposort(self.roots))

    def run(self) -> list[Arr]:
        """Lower root by root, children first (no recursion over the depth of the DAG)."""
        out = []
        for root in self.roots:
            out.append(self.twice(root))
            self.g.commit(out[-1:])
        return self.rechain(self.g.settle(out))

    def twice(self, root: Expr) -> Arr:
        """``root`` lowered, then lowered again with what the first lowering computes on
        every call free (a term's order was chosen before a later term computed its
        product: b'Ax beside exp(Ax)); the second when it provably costs less."""
        before, memo, products = set(self.g.live), dict(self.memo), dict(self.products)
        first = self.lower_root(root)
        after = dict(self.memo), dict(self.products)
        self.g.live = before | unconditional([first])       # not a call-time alternative
        self.memo, self.products = memo, products
        second = self.lower_root(root)
        self.g.live = before
        a, b = (sum((node_cost(n) for n in walk([x], before)), ZERO) for x in (first, second))
        if a != b and nonneg(a - b):
            return second
        self.memo, self.products = after
        return first

    def lower_root(self, root: Expr) -> Arr:
        """One output, children first (no recursion over the depth of the DAG)."""
        out = [self.lower(n) for n in toposort([root])][-1]
        return self.g.call(Op.REAL, out, shape=out.shape) if self.complex and \
            not root.is_complex else out

    def rechain(self, roots: list[Arr]) -> list[Arr]:
        """Each ``multi_dot`` (a chain the sizes did not order) that holds a product the
        program computes anyway, as that product times the rest: c'A B x beside the same
        output's (A B x)'(A B x), which was lowered after it."""
        self.g.live = unconditional(roots)
        while True:
            dots = (n for n in walk(roots) if n.key == "multi_dot")
            found = next(((n, p) for n in dots if (p := self.free_part(list(n.args)))), None)
            if found is None:
                return roots
            (n, (i, j, x)) = found
            roots = self.g.replace(roots, n, self.chain([*n.args[:i], x, *n.args[j:]]))

    def lower(self, e: Expr) -> Arr:
        found = self.memo.get(e)
        if found is None:
            stable = stable_form(e)                  # log(1 + eᶻ): softplus z, ... (stable)
            found = self.memo[e] = self.lower(stable) if stable is not None else \
                LOWER[e.op](self, e)
            assert found.shape == (() if e.is_scalar else e.shape), (e.op, found)
        return found

    def single_use(self, x: Expr) -> bool:
        """One consumer (a node a rule made has the one that made it)."""
        return x not in self.roots and len(self.parents.get(x, [x])) == 1

    def rule(self, x: Arr) -> Callable[[Lowering, Arr, Arr], Arr] | None:
        """The ``LEFT`` rule of a structured factor not computed anyway; None if dense."""
        inv, pair = x.args[0] if x.prim is P.TRANSPOSE else x, {x, self.g.t(x)}
        if x in self.g.diagonal:
            return LEFT["diagonal"]
        if inv.key in INVERSES:
            dense = {m.args[0] if m.prim is P.TRANSPOSE else m for m in map(
                self.memo.get, self.dense) if m is not None}
            return None if inv in dense else LEFT[Op.INV]
        if x.prim is P.CONCAT and not pair & self.blocks or pair & self.g.live and x.key is not \
                Op.KRON:
            return None                      # the same answer for x and x' (see mm)
        return LEFT.get(x.key or x.prim)

    # -- products
    def mm(self, a: Arr, b: Arr) -> Arr:
        """a @ b: numbers pulled out, structured factors applied (``LEFT``; on the right as
        (b' a')'), outer products broadcast. X'Y is (Y'X)' where the backend's ``swap``
        says that runs faster ("thin", PyTorch: a tall result; "vector", XLA: a vector;
        "never", NumPy's OpenBLAS: benchmarks/orientation.py), at call time if sizes decide."""
        g, (c, a2), (d, b2) = self.g, _split_scalar(self.g, a), _split_scalar(self.g, b)
        if a.prim is P.NEG and a.shape[1:] == (ONE,):            # (-u) v' = -(u v')
            return g.neg(self.mm(a.args[0], b))
        if not a.shape or not b.shape or a.shape[1] == ONE:   # u v' = u .* v'
            return g.mul(a, b)
        if c is not None or d is not None:                     # (cX)(dY) = cd (X Y)
            return g.mul(reduce(g.mul, [k for k in (c, d) if k is not None]), self.mm(a2, b2))
        if (uv := _outer(a)) or (uv := _outer(b)):           # (u v') M = u (v' M), M (u v')
            u, v = uv
            return g.mul(u, self.mm(v, b)) if a is not b and _outer(a) else g.mul(self.mm(a, u), v)
        kind = "diagonal" if b in g.diagonal else b.key or b.prim
        left, right = self.rule(a), RIGHT.get(kind) if self.rule(b) else None
        if left or right:
            return left(self, a, b) if left else right(self, b, a)  # type: ignore[misc]
        if self.rule(b) and self.rule(g.t(b)):                 # V S = (S' V')'
            return g.t(self.mm(g.t(b), g.t(a)))
        plain, (rows, cols) = g.matmul(a, b), (a.shape[0], b.shape[1])   # (Y'X)' if computed
        vector = self.swap == "vector"
        if a.prim is P.TRANSPOSE and b in g.symmetric and plain.prim is P.MATMUL and not vector:
            return g.t(g.matmul(b, a.args[0], False))        # X'S = (S X)': no transposed operand
        if a.prim is not P.TRANSPOSE or b.prim is P.TRANSPOSE or plain.prim is P.TRANSPOSE or \
                self.swap == "never" or (cols != ONE if vector else cols == ONE or
                                         nonneg(cols - rows)):
            return plain
        swapped = g.t(g.matmul(g.t(b), a.args[0], False))
        return swapped if vector or nonneg(rows - cols - ONE) else \
            g.node(P.CHOOSE, (swapped, plain), (rows, ">", cols), plain.shape)

    def product(self, fs: Sequence[Arr], choose: bool = True) -> Arr:
        """Structured factors act on a dense neighbour (the right one first), two of them
        are multiplied out only when nothing else is left; then the dense chain."""
        fs = list(fs)
        while len(fs) > 1 and any(map(self.rule, fs)):
            ruled = [self.rule(f) is not None for f in fs]
            i = next((i for i in range(len(fs) - 1) if ruled[i] > ruled[i + 1]), None)
            i = next((i for i in range(len(fs) - 1) if ruled[i] < ruled[i + 1]),
                     len(fs) - 2) if i is None else i
            fs[i:i + 2] = [self.mm(fs[i], fs[i + 1])]
        return self.chain(fs, choose)

    def chain(self, fs: list[Arr], choose: bool = True) -> Arr:
        """A dense chain in its cheapest order (a product computed already is free): the DP on
        known sizes, a split that provably costs least, else a call-time choice (3 factors)
        or ``multi_dot``; without ``choose``, left to right."""
        fs = [h for f in fs for h in (_outer(f) or (f,))]       # u v' as two factors
        known = self.computed(fs)
        if len(fs) == 1 or known is not None and (choose or P.MATMUL in (
                known.prim, known.args[0].prim if known.prim is P.TRANSPOSE else None)):
            return known or fs[0]
        s = 1 if len(fs) == 2 else self.split(fs)
        part = self.free_part(fs) if s is None and choose else None
        if choose and self.quadratic(fs):                   # x'A'A x = (A x)' (A x)
            half = self.chain(fs[len(fs) // 2:])
            out = self.mm(self.g.t(half), half)
        elif part is not None:                        # a computed subchain as one factor
            out = self.chain([*fs[:part[0]], part[2], *fs[part[1]:]])
        elif s is None and choose and len(fs) == 3:
            out = self.g.pick(self.mm(self.chain(fs[:2]), fs[2]),
                              self.mm(fs[0], self.chain(fs[1:])), at_call_time=True)
        elif s is None and choose:
            out = self.g.call("multi_dot", *fs, shape=(fs[0].shape[0], fs[-1].shape[1]))
        else:
            s = s or len(fs) - 1
            out = self.mm(self.chain(fs[:s], choose), self.chain(fs[s:], choose))
        if choose:
            self.products[tuple(fs)] = out
        return out

    def computed(self, fs: Sequence[Arr]) -> Arr | None:
        """The product of the chain ``fs`` if lowered already, or that of its transpose's
        chain, transposed: (A B C)' = C' B' A' (the value's U'MV makes V'M'U free)."""
        known = self.products.get(tuple(fs))
        if known is None and len(fs) > 1:
            flip = self.products.get(tuple(self.g.t(f) for f in reversed(fs)))
            known = None if flip is None else self.g.t(flip)
        return known

    def free_part(self, fs: list[Arr]) -> tuple[int, int, Arr] | None:
        """(i, j, product) for the longest (then first) proper subchain ``fs[i:j]`` that
        is computed already; where the sizes do not decide the order, using it beats an
        order blind to it (``multi_dot``)."""
        spans = sorted(((i, j) for i in range(len(fs)) for j in range(i + 2, len(fs) + 1)
                        if j - i < len(fs)), key=lambda ij: (ij[0] - ij[1], ij[0]))
        found = ((i, j, self.computed(fs[i:j])) for i, j in spans)
        return next(((i, j, x) for i, j, x in found if x is not None and self.live(x)
                     and not _outer(x)), None)                # u v' would split again

    def quadratic(self, fs: list[Arr]) -> bool:
        """Is the chain ``fs`` a quadratic form H'H of a product H that ends in a vector
        (x'B'A'ABx)? Then H, computed once from the right (matrix-vector products), is the
        cheapest order whatever the sizes: another order multiplies the two halves' matrices
        out separately (the DP counts H' apart from H)."""
        half = len(fs) // 2
        return len(fs) % 2 == 0 and fs[-1].shape[1] == ONE and all(
            self.g.t(f) is h for f, h in zip(fs[:half], reversed(fs[half:]), strict=True))

    def live(self, x: Arr | None) -> bool:
        """Is ``x`` computed (or a transpose of what is)?"""
        return x is not None and (x in self.g.live or x.prim is P.TRANSPOSE and
                                  x.args[0] in self.g.live)

    def split(self, fs: list[Arr]) -> int | None:
        """Where the last multiplication of the chain ``fs`` provably costs least."""
        dims = [f.shape[0] for f in fs] + [fs[-1].shape[1]]
        memo: dict[tuple[int, int], Dim] = {}

        def options(i: int, j: int) -> list[Dim]:
            return [cost(i, k) + cost(k, j) + dims[i] * dims[k] * dims[j] for k in range(i + 1, j)]

        def cost(i: int, j: int) -> Dim:
            if j - i == 1 or self.live(self.computed(fs[i:j])):
                return ZERO
            if (i, j) not in memo:
                opts = options(i, j)
                memo[(i, j)] = opts[-1 if (least := _least(opts)) is None else least]
            return memo[(i, j)]
        best = _least(options(0, len(fs)))
        return None if best is None else best + 1

    def distributed(self, items: Sequence[Expr]) -> Arr | None:
        """A (B + C) D = A B D + A C D: always for an identity (no eye built, the chains can
        be reordered), else when that reuses a computed product and costs less (the value's
        C W makes (C + C') W = C W + C' W cheaper; at call time if the sizes decide)."""
        i = next((i for i, f in enumerate(items) if f.op is Op.ADD and len(f.args) <= 4), None)
        if i is None:
            return None
        terms = self.sum_of([self.lower(E.matmul(*items[:i], t, *items[i + 1:]))
                             for t in items[i].args])
        if any(t.op is Op.IDENTITY or t.op is Op.SCALE and t.args[1].op is Op.IDENTITY
               for t in items[i].args):
            return terms
        whole = self.product([self.lower(f) for f in items])
        whole = whole if terms.shape else self.g.node(P.ITEM, (whole,), (ZERO, ZERO), ())
        if not any(n.prim is P.MATMUL and n in self.g.live for n in walk([terms])):
            return None
        picked = self.g.pick(whole, terms, at_call_time=True)
        return None if picked is whole else picked

    def sum_of(self, terms: Sequence[Arr]) -> Arr:
        out = terms[0]
        for t in terms[1:]:
            minus = _negated(self.g, t)
            out = self.g.ew(P.ADD, out, t) if minus is None else self.g.ew(P.SUB, out, minus)
        return out

    def stacked(self, terms: Sequence[Expr], irs: Sequence[Arr]) -> Arr | None:
        """c1 X1 Y1 + c2 X2 Y2 + R = [c1 X1, c2 X2] [Y1; Y2] + R: one product with the inner
        dimensions stacked, for products with no other use."""
        g, found = self.g, {}
        for k, (t, x) in enumerate(zip(terms, irs, strict=True)):
            c, p = _split_scalar(g, x)
            if p.prim is P.CHOOSE and p.args[0].prim is P.MATMUL:   # a chain's order: (AB)C
                p = p.args[0]
            if p.prim is P.MATMUL and self.single_use(t) and x.shape and self.single_use(
                    t.args[1] if t.op is Op.SCALE else t):
                found[k] = (p.args[0] if c is None else g.mul(c, p.args[0]), p.args[1])
        if len(found) < 2:
            return None
        left = g.concat([x for x, _ in found.values()], 1)
        right = g.concat([y for _, y in found.values()], 0)
        rest = [x for k, x in enumerate(irs) if k not in found]
        if any(r.shape for r in rest):                          # torch.addmm adds to arrays
            return g.call("addmm", self.sum_of(rest), left, right)
        return self.sum_of([g.matmul(left, right), *rest])

    def dot(self, a: Arr, b: Arr) -> Arr:
        """sum(a .* b); <Y, A kron B> = sum Y4[a,i,b,j] A[a,b] B[i,j], no Kronecker product."""
        a, b = (b, a) if a.key is Op.KRON or _outer(a) or b.key is Op.DIAGM else (a, b)
        if a.key is Op.DIAGM and b.shape and b.key is not Op.KRON:   # <Diag v, Y> = <v, diag Y>
            return self.dot(a.args[0], self.diagonal_ir(b))
        if self.complex and a.shape:                       # sum(a .* b), no conjugation
            return self.g.call(Op.SUM, self.g.mul(a, b), shape=())
        if a.shape and (uv := _outer(b)):                     # <M, u v'> = u' M v
            prod = self.product([self.g.t(uv[0]), a, self.g.t(uv[1])])
            return self.g.node(P.ITEM, (prod,), (ZERO, ZERO), ())
        if not a.shape or b.key is not Op.KRON:
            return self.g.call("dot", a, b, shape=()) if a.shape else self.g.mul(a, b)
        (ka, kb), g = b.args, self.g
        y4 = g.reshape(a, (ka.shape[0], kb.shape[0], ka.shape[1], kb.shape[1]))
        return g.call("einsum", y4, ka, kb, shape=(), spec="aibj,ab,ij->")

    def diagonal_ir(self, y: Arr) -> Arr:
        """diag Y, a column: diag(u v') = u .* v, diag(F G) = rowdot(F, G') (never the outer
        product, nor a product not computed anyway), diag Y' = diag Y."""
        y, g = y.args[0] if y.prim is P.TRANSPOSE else y, self.g
        if uv := _outer(y):
            return g.mul(uv[0], g.t(uv[1]))
        if y.prim is P.MATMUL and y not in g.live:
            return g.call("rowdot", y.args[0], g.t(y.args[1]), shape=(y.shape[0], ONE))
        return g.call(Op.DIAG, y, shape=(y.shape[0], ONE))

    def sandwich(self, mats: Sequence[Expr]) -> Arr | None:
        """(L1 kron L2)(Y .* (K1 kron K2))(R1 kron R2) with identity (index kept) or ones (index
        summed) outer factors, every Kronecker-factor gradient: one contraction over the view
        Y4[a,i,b,j] = Y[a*I + i, b*J + j], or, when Y = u v' is an outer product, over U[a,i]
        = u[a*I + i] and V: never the Kronecker products, the masked Y or the outer product."""
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
        g, sizes = self.g, (l1.cols, l2.cols, r1.rows, r2.rows)
        c, uv = _split_scalar(g, self.lower(y))
        if uv.prim is P.MUL and uv.args[0].shape[1:] == (ONE,) == uv.args[1].shape[:1]:
            ops = [(g.reshape(uv.args[0], sizes[:2]), "ai"), *masks,    # Y = u v'
                   (g.reshape(uv.args[1], sizes[2:]), "bj")]
        else:
            c, ops = None, [(g.reshape(self.lower(y), sizes), "aibj"), *masks]
        out = "".join(i for i, (f, _) in outer.items() if f.op is Op.IDENTITY)
        body = g.reshape(self.contract(ops, out), (mats[0].rows, mats[2].cols))
        return body if c is None else g.mul(c, body)

    def contract(self, ops: list[tuple[Arr, str]], out: str) -> Arr:
        """The einsum ``ops -> out``: two matrices sharing one summed index are a product
        (BLAS runs these, einsum does not; a product computed already first), matrices over
        the output's indices an elementwise product, the rest one ``einsum``."""
        while pairs := [(p, q) for p in range(len(ops)) for q in range(p + 1, len(ops))
                        if _summed(ops, ops[p][1], ops[q][1], out)]:
            done = [self.pair(ops, p, q, out) for p, q in pairs]
            k = next((k for k, (x, _) in enumerate(done) if x in self.g.live), 0)
            ops = [o for i, o in enumerate(ops) if i not in pairs[k]] + [done[k]]
        if len(out) == 2 and all(sorted(ix) == sorted(out) for _, ix in ops):
            return reduce(self.g.mul, [x if ix == out else self.g.t(x) for x, ix in ops])
        sizes = {i: d for x, ix in ops for i, d in zip(ix, x.shape, strict=True)}
        return self.g.call("einsum", *(x for x, _ in ops), shape=tuple(sizes[i] for i in out),
                           spec=",".join(ix for _, ix in ops) + "->" + out)

    def pair(self, ops: list[tuple[Arr, str]], p: int, q: int, out: str) -> tuple[Arr, str]:
        """The product of ``ops[p]`` and ``ops[q]`` over the index they alone share."""
        (x, ix), (y, iy) = ops[p], ops[q]
        s = _summed(ops, ix, iy, out)
        fx, fy = ix.replace(s, ""), iy.replace(s, "")
        if fx in out and fy in out and out.index(fy) < out.index(fx):   # out's order
            (x, ix), (y, iy) = (y, iy), (x, ix)
        x, ix = (self.g.t(x), ix[::-1]) if ix[0] == s else (x, ix)
        y, iy = (self.g.t(y), iy[::-1]) if iy[1] == s else (y, iy)
        return self.mm(x, y), ix[0] + iy[1]

    def push_slice(self, x: Arr, r0: Dim, r1: Dim, c0: Dim, c1: Dim) -> Arr:
        """(H T)[r, c] = H[r, :] T[:, c], recursively, unless the product is computed anyway;
        slices sharing rows share H[r, :]."""
        if x.prim is P.TRANSPOSE:
            return self.g.t(self.push_slice(x.args[0], c0, c1, r0, r1))
        if x.prim is not P.MATMUL or x in self.g.live:
            return self.g.slice(x, r0, r1, c0, c1)
        a, b = x.args
        return self.mm(self.push_slice(a, r0, r1, ZERO, a.shape[1]),
                       self.push_slice(b, ZERO, b.shape[0], c0, c1))

    # -- rules for structured factors: s @ v, s never built
    def diagonal_of(self, d: Arr) -> Arr:
        """The column diag(D) of an input D declared diagonal: D acts through it alone."""
        return self.g.call(Op.DIAG, d, shape=(d.shape[0], ONE))

    def solve_left(self, s: Arr, v: Arr) -> Arr:
        """inv(A) V = solve(A, V), inv(A)' V = solve(A', V): with A's factorization where
        it has one (an LU solves with A' too); for V much wider than A, inv(A) and a product
        (by cost, at call time if the sizes decide)."""
        x, t = (s.args[0], True) if s.prim is P.TRANSPOSE else (s, False)
        if x.key is Op.INV:
            solved = self.g.call("solve", self.g.t(x.args[0]) if t else x.args[0], v,
                                 shape=v.shape)
        else:
            key = "cho_solve" if x.key == "cho_inv" else "lu_solve_t" if t else "lu_solve"
            solved = self.g.call(key, x.args[0], v, shape=v.shape)
        if ONE in v.shape:                              # a vector: never the inverse
            return solved
        return self.g.pick(solved, self.g.matmul(s, v), at_call_time=True)  # V much wider

    def kron_left(self, s: Arr, v: Arr) -> Arr:
        """(A kron B) M with M3[a, b, j] = M[a*q + b, j]: out[c*r + d, j] = A[c,a] B[d,b]
        M3[a,b,j]; B acts on (q, p*k), A on (p, r*k), each with its own structure."""
        (a, b), g, k = s.args, self.g, v.shape[1]
        (p, q), r = a.shape[1:] + b.shape[1:], b.shape[0]
        if k == ONE:                            # (A kron B) vec_r(X) = vec_r(A X B'): a chain
            return g.reshape(self.product([a, g.reshape(v, (p, q)), g.t(b)]), s.shape[:1] + (k,))
        m3 = g.reshape(v, (p, q, k))                                  # [a, b, j]
        if b.prim is not P.EYE:
            y = self.mm(b, g.reshape(g.permute(m3, (1, 0, 2)), (q, p * k)))
            m3 = g.permute(g.reshape(y, (r, p, k)), (1, 0, 2))        # [a, d, j]
        if a.prim is not P.EYE:
            m3 = self.mm(a, g.reshape(m3, (p, r * k)))
        return g.reshape(m3, (s.shape[0], k))

    def block_left(self, s: Arr, v: Arr) -> Arr:
        """[A; B] V = [A V; B V] and [A, B] V = A V1 + B V2 on row slices of V: a block
        matrix applied block by block, zero blocks skipped."""
        if s.attr == 0:
            return self.g.concat([self.mm(x, v) for x in s.args], 0)
        terms, off = [], ZERO
        for x in s.args:
            terms.append(self.mm(x, self.g.slice(v, off, off + x.shape[1])))
            off = off + x.shape[1]
        return self.sum_of([t for t in terms if t.prim is not P.ZEROS] or terms[:1])

    def sums(self, s: Arr, v: Arr, right: bool) -> Arr:
        """V 1 = rowsum(V) 1' and 1 V = 1 colsum(V): a matrix of ones applied as sums."""
        g, n = self.g, s.shape[1] if right else s.shape[0]
        sums = g.call("rowsum" if right else "colsum", v,
                      shape=(v.shape[0], ONE) if right else (ONE, v.shape[1]))
        ones = g.fill(1, (ONE, n) if right else (n, ONE))
        return sums if n == ONE else g.mul(sums, ones) if right else g.mul(ones, sums)

    # -- rows of LOWER
    def symbol_row(self, e: Expr) -> Arr:
        """An input; one declared symmetric (spd, diagonal) is its own transpose, and one
        declared diagonal is applied, inverted, powered and its determinant taken through its
        diagonal (``LEFT``, ``RIGHT``, ``call_row``, ``fn_row``)."""
        x = self.g.node(P.INPUT, (), e.attr[0], () if e.is_scalar else e.shape)
        if e.attr[2] in SYMMETRIC_STRUCTURES and not e.is_scalar:
            self.g.symmetric.add(x)
        if _declared_diagonal(e):
            self.g.diagonal.add(x)
        return x

    def matmul_row(self, e: Expr, extra: Sequence[Arr] = ()) -> Arr:
        """Scalars pulled out, onto a vector factor where there is one (c A u v' = A (c u) v');
        then a Kronecker sandwich, a distribution over a sum, or the structured chain."""
        g, mats = self.g, [f for f in e.args if not f.is_scalar]
        coeffs = [*extra, *(self.lower(f) for f in e.args if f.is_scalar)]
        if not mats:
            return reduce(g.mul, coeffs)
        body = self.sandwich(mats) or self.distributed(mats)
        if body is None:
            irs = [self.lower(f) for f in mats]
            vec = next((i for i, f in enumerate(irs) if ONE in f.shape and not self.rule(f)),
                       None)
            if coeffs and vec is not None:
                irs[vec], coeffs = g.mul(reduce(g.mul, coeffs), irs[vec]), []
            body = self.product(irs)
        body = g.node(P.ITEM, (body,), (ZERO, ZERO), ()) if body.shape and e.is_scalar else body
        return g.mul(reduce(g.mul, coeffs), body) if coeffs else body

    def add_row(self, e: Expr) -> Arr:
        """A sum; summed products stacked when cheaper (at call time if the sizes decide)."""
        irs = [self.lower(t) for t in e.args]
        plain, stacked = self.sum_of(irs), self.stacked(e.args, irs)
        return plain if stacked is None else self.g.pick(plain, stacked, at_call_time=True)

    def scale_row(self, e: Expr) -> Arr:
        a, x = e.args
        if x.op is Op.MATMUL and self.single_use(x) and not e.is_scalar:
            i = next((i for i, f in enumerate(x.args) if f.op is Op.DIAGM), None)
            if i is None:
                return self.matmul_row(x, [self.lower(a)])      # c (A u) = A (c u)
            d = Expr(Op.DIAGM, (E.scale(a, x.args[i].args[0]),))  # c A Diag(v) = A Diag(c v)
            return self.lower(Expr(Op.MATMUL, (*x.args[:i], d, *x.args[i + 1:])))
        if a.op is Op.CONST and x.op is Op.ADD and self.single_use(x) and _takes_scale(x):
            return self.lower(E.add(*(E.scale(a, t) for t in x.args)))   # c (A + B) = cA + cB
        return self.g.mul(self.lower(a), self.lower(x))

    def pow_row(self, e: Expr) -> Arr:
        """||X||^2 = <X, X>; ||S + c Diag(v)||^2 = (||S||^2 - ||diag S||^2) + ||diag S + cv||^2
        when the sum has no other use: no diagonal matrix, and the residual on the diagonal
        is formed before it is squared (a close fit keeps its accuracy)."""
        x, p = e.args
        if x.op is not Op.NORM or x.attr != "2" or p.op is not Op.CONST or p.attr != 2:
            return self.g.ew(P.POW, self.lower(x), self.lower(p))
        y = x.args[0]
        diagonal = [t for t in y.args if t.op is Op.DIAGM or t.op is Op.SCALE and t.args[0].op
                    is Op.CONST and t.args[1].op is Op.DIAGM] if y.op is Op.ADD else []
        if y.is_complex:                                       # ||Y||² = <|Y|, |Y|>
            m = self.g.call(Op.ABS, self.lower(y))
            return self.dot(m, m)
        if len(diagonal) != 1 or not self.single_use(y) or not self.single_use(x):
            return self.dot(self.lower(y), self.lower(y))
        d, rest = diagonal[0], E.add(*(t for t in y.args if t is not diagonal[0]))
        cv = d.args[0] if d.op is Op.DIAGM else E.scale(d.args[0], d.args[1].args[0])
        return self.lower(E.add(E.hpow(E.norm(rest), 2), E.scale(Expr(Op.CONST, (), Fraction(-1)),
                                                         E.hpow(E.norm(E.diag(rest)), 2)),
                              E.hpow(E.norm(E.add(E.diag(rest), cv)), 2)))

    def of_product(self, e: Expr, first_t: Callable[[Arr, Arr], Arr],
                   other: Callable[[Arr, Arr], Arr], dense: bool = False) -> Arr | None:
        """tr / diag of a product F R of >= 2 matrices from F and R alone (``first_t`` for
        F = X', given X), never the product; None for another argument (with ``dense``, for
        a Kronecker or outer product F or R too: the product applies it)."""
        x = e.args[0]
        mats = [f for f in x.args if not f.is_scalar] if x.op is Op.MATMUL else []
        if len(mats) < 2:
            return None
        first, rest = self.lower(mats[0]), self.product([self.lower(f) for f in mats[1:]])
        if dense and any(f.key is Op.KRON or _outer(f) for f in (first, rest)):
            return None
        body = first_t(first.args[0], rest) if first.prim is P.TRANSPOSE and rest.prim is not \
            P.TRANSPOSE else other(first, rest)
        return reduce(self.g.mul, [self.lower(f) for f in x.args if f.is_scalar] + [body])

    def trace_row(self, e: Expr) -> Arr:
        x, g = e.args[0], self.g
        if x.op is Op.IDENTITY:                                # tr(I_n) = n
            return g.lit(x.attr, array=True)
        if x.op is Op.KRON:
            (a, b), (fa, fb) = x.args, map(self.lower, x.args)
            if a.rows == a.cols and b.rows == b.cols:          # tr(A kron B) = tr A tr B
                return g.mul(self.trace_of(fa), self.trace_of(fb))
            return g.call("kron_trace", fa, fb, shape=(), n=x.rows, r=b.rows, s=b.cols)
        if _outer(self.lower(x)):                              # tr(u v') = v' u
            return self.trace_of(self.lower(x))
        return self.of_product(e, self.dot, lambda f, r: self.dot(  # tr(F R) = <F', R>
            f, r.args[0] if r.prim is P.TRANSPOSE else g.t(r))) or self.trace_of(
            self.lower(x.args[0] if x.op is Op.TRANSPOSE else x))

    def trace_of(self, x: Arr) -> Arr:
        """tr X; tr(u v') = v' u; tr Diag(v) = sum v."""
        if x.key is Op.DIAGM:
            return self.g.call(Op.SUM, x.args[0], shape=())
        uv = _outer(x)
        return self.g.call(Op.TRACE, x, shape=()) if uv is None else self.dot(self.g.t(uv[1]),
                                                                               uv[0])

    def diag_row(self, e: Expr) -> Arr:
        g, pushed = self.g, _diag_of(e.args[0])               # diag(X'Y) = colsum(X .* Y)
        if self.complex:
            return g.call(Op.DIAG, self.lower(e.args[0]), shape=e.shape)
        return self.of_product(e, lambda x, r: g.call("coldot", x, r, shape=e.shape),
                               lambda f, r: g.call("rowdot", f, g.t(r), shape=e.shape),
                               True) or (
            self.lower(pushed) if pushed is not e else g.call(Op.DIAG, self.lower(e.args[0]),
                                                              shape=e.shape))

    def slice_row(self, e: Expr) -> Arr:
        """A slice; of a product used only through slices that cover no more than it, the
        product of slices of its factors."""
        x, (r0, r1, c0, c1), users = e.args[0], e.attr, self.parents.get(e.args[0], [])
        if e.is_scalar:                                        # one entry
            return self.g.node(P.ITEM, (self.lower(x),), (r0, c0), ())
        if x.op is Op.MATMUL and x not in self.roots and all(u.op is Op.SLICE for u in users) \
                and not any(f.is_scalar for f in x.args) and nonneg(x.rows * x.cols - sum(
                    ((u.attr[1] - u.attr[0]) * (u.attr[3] - u.attr[2]) for u in users), ZERO)):
            x_ir = self.product([self.lower(f) for f in x.args], False)
            return self.push_slice(x_ir, r0, r1, c0, c1)
        return self.g.slice(self.lower(x), r0, r1, c0, c1)

    def hadamard_row(self, e: Expr) -> Arr:
        """X .* (A kron B) on 4-D views, never the Kronecker product."""
        g, k = self.g, next((x for x in e.args if x.op is Op.KRON), None)
        if k is None or e.is_scalar or [x.op for x in e.args].count(Op.KRON) > 1:
            return reduce(g.mul, map(self.lower, e.args))
        (a, b), y = k.args, reduce(g.mul, [self.lower(x) for x in e.args if x is not k])
        factors = [g.reshape(y, (a.rows, b.rows, a.cols, b.cols))]
        for f, shape in ((a, (a.rows, ONE, a.cols, ONE)), (b, (ONE, b.rows, ONE, b.cols))):
            factors += [g.reshape(self.lower(f), shape)] if f.op is not Op.ONES else []
        return g.reshape(reduce(g.mul, factors), k.shape)

    def sum_row(self, e: Expr) -> Arr:
        x, g = e.args[0], self.g
        if x.op is Op.HADAMARD and len(x.args) == 2:           # sum(X .* Y) = <X, Y>
            return self.dot(self.lower(x.args[0]), self.lower(x.args[1]))
        if x.op is Op.KRON:                                    # sum(A kron B) = sum A sum B
            return reduce(g.mul, (g.call(Op.SUM, self.lower(f), shape=()) for f in x.args))
        y = self.lower(x)
        y = y.args[0] if y.key is Op.DIAGM else y              # sum Diag(v) = sum v
        return reduce(g.mul, (g.call(Op.SUM, f, shape=()) for f in _outer(y) or (y,)))

    def norm_row(self, e: Expr) -> Arr:
        x, g = e.args[0], self.g
        if x.op is Op.CONST:                                   # ||c||_p = |c|
            return g.lit(abs(x.attr))
        y = self.lower(x)
        if not y.shape or e.attr == "1":                       # ||a|| = |a|, sum |X_ij|
            return g.call(Op.SUM, g.call(Op.ABS, y), shape=()) if y.shape else g.call(Op.ABS, y)
        if self.complex:                                       # sqrt(sum |y|²)
            y = g.call(Op.ABS, y, shape=y.shape)
        return g.call(Op.SQRT, self.dot(y, y))

    def fn_row(self, e: Expr) -> Arr:
        """f(x), a number as a 0-d array (computed in floats); log det X = logdet X; logdet
        of a 1x1 a = log|a|."""
        x, g = e.args[0], self.g
        if e.op is Op.LOGDET and x.is_complex:                 # the principal log det
            return g.call(Op.LOG, g.call(Op.DET, self.lower(x), shape=()), shape=())
        if e.op is Op.LOGDET and not x.is_scalar or e.op is Op.LOG and x.op is Op.DET:
            x = x if e.op is Op.LOGDET else x.args[0]
            if self.lower(x) in g.diagonal:                    # sum log|d|
                return g.call("diag_logdet", self.lower(x), shape=())
            kind, f = self.factor(x) or ("", self.lower(x))
            return g.call(f"{kind}_logdet" if kind else "slogdet", f, shape=())
        y = self.lower(x)                    # a number becomes an array in g.call
        return g.call(Op.LOG, g.call(Op.ABS, y)) if e.op is Op.LOGDET else g.call(e.op, y)

    def block_row(self, e: Expr) -> Arr:
        g, (r, c) = self.g, e.attr
        parts = [g.call("mat11", y, shape=(ONE, ONE)) if x.is_scalar else y
                 for x, y in zip(e.args, map(self.lower, e.args), strict=True)]
        rows = [g.concat(parts[i * c:(i + 1) * c], 1) for i in range(r)]
        self.blocks.update(rows + [g.concat(rows, 0)])
        return g.concat(rows, 0)

    def spectral_row(self, e: Expr) -> Arr:
        """A spectral function, one backend function (``spectral.ROWS``): ``{k}`` is the
        index of the eigenvalue; a Fréchet derivative is the function's own row."""
        key: object = f"{e.attr}_frechet" if e.op is Op.FRECHET else e.op
        params = {"k": -1 if e.attr == "max" else 0} if e.op in (Op.EIGVAL, Op.EIGVEC) else {}
        return self.g.call(key, *map(self.lower, e.args), shape=() if e.is_scalar else e.shape,
                           **params)

    def factor(self, x: Expr) -> tuple[str, Arr] | None:
        """("cho" or "lu", the factorization) when ``x`` has one (``_factored``)."""
        kind = self.factored.get(x)
        return None if kind is None else (kind, self.g.call(f"{kind}_factor", self.lower(x)))

    def kron_row(self, e: Expr) -> Arr:
        """A kron B; of a column and a row, the outer product (u kron v' = v' kron u = u v')."""
        a, b = e.args
        if a.cols == ONE and b.rows == ONE or a.rows == ONE and b.cols == ONE:
            return self.g.mul(*map(self.lower, e.args))
        return self.call_row(e)

    def call_row(self, e: Expr) -> Arr:
        """One backend function (det, inv, kron, Diag, matrix power); inv(X') = inv(X)'; of a
        factored matrix, from its factorization."""
        x, g = e.args[0], self.g
        if e.op in (Op.INV, Op.DET, Op.MATPOW) and (d := self.lower(x)) in g.diagonal:
            if e.op is Op.DET:                                 # det D = prod d
                return g.call("diag_det", d, shape=())
            k = g.lit(-1 if e.op is Op.INV else e.attr)        # inv D = Diag(1 ./ d), D^k
            return g.call(Op.DIAGM, g.ew(P.POW, self.diagonal_of(d), k), shape=e.shape)
        kind, f = self.factor(x.args[0] if x.op is Op.TRANSPOSE else x) or ("", None)
        if f is not None and e.op is Op.INV:
            out = g.call(f"{kind}_inv", f, g.node(P.EYE, (), e.rows, e.shape), shape=e.shape)
            if kind == "cho":                          # the inverse of an spd matrix is too
                g.symmetric.add(out)
            return g.t(out) if x.op is Op.TRANSPOSE else out
        if f is not None and kind == "cho" and e.op is Op.DET:
            return g.call("cho_det", f, shape=())
        if e.op is Op.INV and x.op is Op.TRANSPOSE:
            return self.g.t(self.g.call(Op.INV, self.lower(x.args[0])))
        return self.g.call(e.op, *map(self.lower, e.args), shape=() if e.is_scalar else e.shape,
                           **({"k": e.attr} if e.op is Op.MATPOW else {}))


LEFT: dict[object, Callable[[Lowering, Arr, Arr], Arr]] = {   # s @ v, s never built
    P.EYE: lambda L, s, v: v,
    P.ZEROS: lambda L, s, v: L.g.fill(0, (s.shape[0], v.shape[1])),
    P.ONES: lambda L, s, v: L.sums(s, v, False),
    "diagonal": lambda L, s, v: L.g.mul(L.diagonal_of(s), v),  # D V = diag(D) .* V
    P.CONCAT: Lowering.block_left,
    Op.DIAGM: lambda L, s, v: L.g.mul(s.args[0], v),         # Diag(x) V = x .* V (rows)
    **dict.fromkeys(INVERSES, Lowering.solve_left),
    Op.KRON: Lowering.kron_left,
    "commutation": lambda L, s, v: L.g.reshape(L.g.permute(L.g.reshape(v, (    # K vec X = vec X'
        dict(s.attr[1])["b"], dict(s.attr[1])["a"], v.shape[1])), (1, 0, 2)), v.shape),
}
RIGHT: dict[object, Callable[[Lowering, Arr, Arr], Arr]] = {  # v @ s: scalings and sums
    Op.DIAGM: lambda L, s, v: L.g.mul(v, L.g.t(s.args[0])),  # V Diag(x) = V .* x' (cols)
    P.ONES: lambda L, s, v: L.sums(s, v, True),
    "diagonal": lambda L, s, v: L.g.mul(v, L.g.t(L.diagonal_of(s))),  # V D = V .* diag(D)'
}
LOWER: dict[Op, Callable[[Lowering, Expr], Arr]] = {
    Op.SYMBOL: Lowering.symbol_row,
    Op.CONST: lambda L, e: L.g.lit(e.attr),
    Op.IDENTITY: lambda L, e: L.g.lit(1, array=True) if e.is_scalar else L.g.node(
        P.EYE, (), e.attr, e.shape),
    Op.ONES: lambda L, e: L.g.fill(1, e.shape),
    Op.ZERO: lambda L, e: L.g.fill(0, e.shape),
    Op.COMMUTATION: lambda L, e: L.g.lit(1, array=True) if e.is_scalar else L.g.call(
        "commutation", shape=e.shape, a=e.attr[0], b=e.attr[1], n=e.rows),   # K vec X = vec X'
    Op.ADD: Lowering.add_row,
    Op.SCALE: Lowering.scale_row,
    Op.MATMUL: Lowering.matmul_row,
    Op.TRANSPOSE: lambda L, e: L.g.t(L.lower(e.args[0])),
    Op.HADAMARD: Lowering.hadamard_row,
    Op.HDIV: lambda L, e: L.g.ew(P.DIV, L.lower(e.args[0]), L.lower(e.args[1])),
    Op.POW: Lowering.pow_row,
    Op.BLOCK: Lowering.block_row,
    Op.SLICE: Lowering.slice_row,
    Op.TRACE: Lowering.trace_row,
    Op.DIAG: Lowering.diag_row,
    Op.VEC: lambda L, e: L.g.reshape(L.g.t(L.lower(e.args[0])), e.shape),  # column-major
    Op.UNVEC: lambda L, e: L.g.t(L.g.reshape(L.lower(e.args[0]), (e.cols, e.rows))),
    Op.SUM: Lowering.sum_row,
    Op.NORM: Lowering.norm_row,
    Op.INF_NORM: Lowering.call_row,
    Op.KRON: Lowering.kron_row,
    **dict.fromkeys((Op.DET, Op.INV, Op.MATPOW, Op.DIAGM, Op.MEAN, Op.MAX, Op.MIN,
                     Op.LOGSUMEXP, Op.SOFTMAX), Lowering.call_row),
    **dict.fromkeys((*ELEMENTWISE, Op.LOGDET, Op.CONJ, Op.REAL, Op.IMAG, Op.ANGLE),
                    Lowering.fn_row),
    Op.IMAG_UNIT: lambda L, e: L.g.call("imag_unit", shape=()),
    **dict.fromkeys((Op.TRIL, Op.EXPM, Op.LOGM, Op.SQRTM, Op.FRECHET, Op.EIGVAL, Op.EIGVEC,
                     Op.SPECTRAL_NORM, Op.NUCLEAR_NORM, Op.POLAR, Op.SVD_U1, Op.SVD_V1,
                     Op.PINV, Op.ADJ, Op.CHOL), Lowering.spectral_row),
}
