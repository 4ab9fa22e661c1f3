"""The array IR: interned nodes (primitive, arguments, attribute, shape) and their cost.

A ``Graph`` interns its ``Arr`` nodes, so work shared by the value and every gradient is one
node, and it finds ``X'`` when ``X`` exists (``A' - V U'`` is ``(A - U V')'``). A shape is a
tuple of ``Dim`` s: ``()`` a scalar, ``(n, 1)`` a vector. ``cost`` is flops + WORD * words,
a polynomial in the dimension names; ``Graph.pick`` keeps the cheaper of two equal forms by
what they add to the nodes already computed, at compile time when that holds for all sizes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from enum import Enum
from fractions import Fraction
from functools import reduce
from typing import Any

from ..expr import ELEMENTWISE, Dim, Op

__all__ = ["P", "Arr", "Graph", "WORD", "nonneg", "size", "cost", "walk", "unconditional"]

ONE, ZERO = Dim.of(1), Dim({})
Shape = tuple[Dim, ...]
# The primitives: leaves; elementwise arithmetic (broadcasting); products and layout; CALL, a
# backend function with attr (key, params), the key an Op (exp, det) or a name (solve, dot);
# CHOOSE, attr (lhs, op, rhs): args[0] when ``lhs op rhs`` holds at call time, else args[1].
P = Enum("P", """INPUT LIT ARRAY EYE ZEROS ONES  ADD SUB NEG MUL DIV POW
              MATMUL TRANSPOSE PERMUTE SLICE ITEM RESHAPE CONCAT  CALL CHOOSE""")
WORD = 4                     # flops a float64 read or write is worth (a pass against a GEMM)
VIEWS = {P.INPUT, P.LIT, P.TRANSPOSE, P.PERMUTE, P.SLICE, P.ITEM, P.RESHAPE}
_FLIPS = {P.ADD, P.SUB, P.NEG, P.MUL, P.DIV, P.POW, P.MATMUL}   # (f(X, Y))' = f(X', Y') (or Y'X')


class Arr:
    """One interned IR node, built by a ``Graph``: ``is`` is equality."""

    __slots__ = ("prim", "args", "attr", "shape", "serial")

    def __init__(self, prim: P, args: tuple[Arr, ...], attr: Any, shape: Shape, serial: int):
        self.prim, self.args, self.attr, self.shape = prim, args, attr, shape
        self.serial = serial          # creation order: a deterministic order of arguments

    @property
    def key(self) -> Any:
        """The function a CALL node computes (an Op or a name); None for other nodes."""
        return self.attr[0] if self.prim is P.CALL else None

    def __repr__(self) -> str:
        return f"Arr({self.prim.name}, {self.attr!r}, {tuple(map(str, self.shape))})"


def size(shape: Shape) -> Dim:
    return reduce(lambda a, b: a * b, shape, ONE)


def nonneg(d: Dim) -> bool:
    """True when ``d >= 0`` for all dimensions >= 1: every negative term is covered by
    positive terms whose monomials it divides."""
    pos = {m: c for m, c in d.terms if c > 0}
    for m, c in d.terms:
        need = -c
        for p in sorted(pos, key=len):
            if need > 0 and not Counter(m) - Counter(p):       # m divides p
                take = min(need, pos[p])
                pos[p], need = pos[p] - take, need - take
        if need > 0:
            return False
    return True


def _einsum(x: Arr) -> Dim:                                    # every index once
    ix = dict(x.attr[1])["spec"].split("->")[0].split(",")
    return size(tuple({i: d for s, a in zip(ix, x.args, strict=True)
                       for i, d in zip(s, a.shape, strict=True)}.values()))


# CALL key -> flops (default: one per output entry). A triangular solve counts 3 n^2 flops a
# right-hand side, not 2: it runs at 1/1.4-1/1.9 of a product's speed (OpenBLAS, n = 100-400),
# so inv(A) B with B much wider than A is an inverse and a product (benchmarks/probes.py).
FLOPS: dict[Any, Any] = {
    Op.INV: lambda x: 2 * size(x.shape) * x.shape[0], "einsum": _einsum,
    "solve": lambda x: size(x.args[0].shape) * (x.shape[0] + 3 * x.shape[1]),
    "slogdet": lambda x: size(x.args[0].shape) * x.args[0].shape[0],
    "addmm": lambda x: 2 * size(x.args[1].shape) * x.shape[1],
    **dict.fromkeys(("cho_factor", "lu_factor"), lambda x: size(x.shape) * x.shape[0]),
    **dict.fromkeys(("cho_solve", "lu_solve", "lu_solve_t", "cho_inv", "lu_inv"),
                    lambda x: 3 * size(x.args[0].shape) * x.shape[1]),
}


def cost(x: Arr) -> Dim:
    """flops + WORD * words of one node; views and leaves cost nothing."""
    if x.prim in VIEWS:
        return ZERO
    words = size(x.shape) + sum((size(a.shape) for a in x.args), ZERO)
    flops = 2 * size(x.args[0].shape) * x.shape[1] if x.prim is P.MATMUL else \
        FLOPS.get(x.key, lambda x: size(x.shape))(x)
    return flops + WORD * words


def walk(roots: Iterable[Arr], stop: set[Arr] | frozenset[Arr] = frozenset()) -> list[Arr]:
    """The nodes reachable from ``roots``, not entering ``stop``, children first (iterative)."""
    seen, order = set(stop), []
    for root in roots:
        stack: list[tuple[Arr, Iterator[Arr]]] = [] if root in seen else [(root, iter(root.args))]
        seen.add(root)
        while stack:
            child = next(stack[-1][1], None)
            if child is None:
                order.append(stack.pop()[0])
            elif child not in seen:
                seen.add(child)
                stack.append((child, iter(child.args)))
    return order


_NUMBER_PRIMS = (P.LIT, P.ADD, P.SUB, P.NEG, P.MUL, P.DIV, P.POW)


def _number(x: Arr) -> bool:
    """Is ``x`` a number at run time: a literal, or arithmetic on literals only?"""
    return not x.shape and x.prim in _NUMBER_PRIMS and all(map(_number, x.args))


def _ones(x: Arr) -> Fraction | None:
    """c when ``x`` is c times a matrix of ones."""
    c, y = (x.args[0].attr, x.args[1]) if x.prim is P.MUL and x.args[0].prim is P.LIT else (1, x)
    return Fraction(c) if y.prim is P.ONES else None


def unconditional(roots: Iterable[Arr]) -> set[Arr]:
    """The nodes every call computes: reachable from ``roots`` outside any alternative."""
    sure: set[Arr] = set()
    stack = list(roots)
    while stack:
        n = stack.pop()
        if n not in sure:
            sure.add(n)
            stack.extend(n.args if n.prim is not P.CHOOSE else ())
    return sure


def _test(d: Dim) -> tuple[Dim, str, Dim]:
    """The call-time test ``d >= 0`` as (its negative terms, "<=", its positive terms)."""
    return Dim([(m, -c) for m, c in d.terms if c < 0]), "<=", Dim([(m, c) for m, c in d.terms
                                                                  if c > 0])


class Graph:
    """Interns nodes; ``live`` is what the outputs lowered so far compute."""

    def __init__(self) -> None:
        self.nodes: dict[tuple[Any, ...], Arr] = {}
        self.live: set[Arr] = set()
        self.symmetric: set[Arr] = set()          # inputs declared symmetric: X' = X
        self.diagonal: set[Arr] = set()           # inputs declared diagonal: D = Diag(diag D)
        self.concats: list[Arr] = []              # every CONCAT node, in creation order

    def node(self, prim: P, args: tuple[Arr, ...], attr: Any, shape: Shape,
             mirror: bool = True) -> Arr:
        """The node, interned; ``X'`` when ``X`` exists (with ``mirror``)."""
        found = self.nodes.get((prim, args, attr, shape))
        if found is None and mirror and len(shape) == 2 and (
                prim in _FLIPS or prim is P.CALL and attr[0] in ELEMENTWISE):
            flip = tuple(map(self.t, args[::-1] if prim is P.MATMUL else args))
            found = self.nodes.get((prim, flip, attr, shape[::-1]))
            found = None if found is None else self.t(found)
        if found is None:
            found = Arr(prim, args, attr, shape, len(self.nodes))
            self.nodes[(prim, args, attr, shape)] = found
            if prim is P.CONCAT:
                self.concats.append(found)
        return found

    def commit(self, roots: Iterable[Arr]) -> None:
        """What ``roots`` need is computed: later candidates use it free."""
        self.live.update(walk(roots, self.live))

    def pick(self, a: Arr, b: Arr, at_call_time: bool = False) -> Arr:
        """The cheaper of the equal ``a`` and ``b``: provably, else (the sizes decide) at
        call time or ``a``."""
        assert a.shape == b.shape, (a, b)
        d = sum((cost(n) for n in walk([b], self.live)), ZERO) - \
            sum((cost(n) for n in walk([a], self.live)), ZERO)
        if nonneg(d) or nonneg(-1 * d):
            return a if nonneg(d) else b
        return self.node(P.CHOOSE, (a, b), _test(d), a.shape) if at_call_time else a

    def settle(self, roots: list[Arr]) -> list[Arr]:
        """``roots`` with each call-time choice that the whole program decides replaced by
        its cheaper alternative: what the outputs compute unconditionally is free for both
        (a value's A x makes b'(A x) cheaper than (b'A) x, which lowering that value alone
        could not see); the others get their test from the same costs. Choices of equal
        cost (a kernel's layout) stay."""
        while True:
            sure = unconditional(roots)
            for c in (n for n in walk(roots) if n.prim is P.CHOOSE):
                a, b = (sum((cost(n) for n in walk([x], sure - {c})), ZERO) for x in c.args)
                if a != b and (nonneg(b - a) or nonneg(a - b)):
                    roots = self.replace(roots, c, c.args[0] if nonneg(b - a) else c.args[1])
                    break
                if a != b and c.attr != _test(b - a):         # the test, on what is computed
                    roots = self.replace(roots, c, self.node(P.CHOOSE, c.args, _test(b - a),
                                                             c.shape))
                    break
            else:
                return roots

    def replace(self, roots: list[Arr], old: Arr, new: Arr) -> list[Arr]:
        """``roots`` with the node ``old`` replaced by ``new`` (its users rebuilt)."""
        memo = {old: new}
        for n in walk(roots, {old}):
            args = tuple(memo.get(a, a) for a in n.args)
            memo[n] = n if args == n.args else self.node(n.prim, args, n.attr, n.shape, False)
        return [memo.get(r, r) for r in roots]

    def lit(self, v: Fraction | int | Dim, array: bool = False) -> Arr:
        """A number, or (``array``) a 0-d array of the backend: a function of it computes in
        floats."""
        v = v if isinstance(v, Dim) else Fraction(v)
        return self.node(P.ARRAY if array else P.LIT, (), v, ())

    def array(self, x: Arr) -> Arr:
        """x as an array of the backend when it is a number, or arithmetic on numbers only: a
        function of it computes in floats (PyTorch's need a tensor)."""
        if not _number(x):
            return x
        return self.lit(x.attr, array=True) if x.prim is P.LIT else \
            self.call("array", x, shape=())

    def fill(self, value: int, shape: Shape) -> Arr:
        return self.node(P.ONES if value else P.ZEROS, (), shape, shape)

    def ew(self, prim: P, a: Arr, b: Arr) -> Arr:
        """An elementwise op; in a sum, c * ones beside an array is the number c (X + c 11')."""
        if prim is P.MUL and a.prim is P.LIT and a.attr in (1, -1):     # 1 x = x, -1 x = -x
            return b if a.attr == 1 else self.neg(b)
        if prim is P.MUL and not a.shape and b.prim is P.MUL and b not in self.live:
            small = [x for x in b.args if x.shape and x.shape != b.shape and
                     nonneg(size(b.shape) - size(x.shape))]   # c (d ⊙ Y) = (c d) ⊙ Y: one pass
            if small:
                other = b.args[1 - b.args.index(small[0])]
                return self.ew(P.MUL, self.ew(P.MUL, a, small[0]), other)
        ca, cb = _ones(a), _ones(b)
        if prim in (P.ADD, P.SUB) and (ca is None) != (cb is None) and a.shape == b.shape:
            a, b = a if ca is None else self.lit(ca), b if cb is None else self.lit(cb)
        shape = tuple(x if x != ONE else y for x, y in zip(a.shape, b.shape, strict=True)) \
            if a.shape and b.shape else a.shape or b.shape
        if len(shape) == 2 and all(x.prim is P.TRANSPOSE or not x.shape for x in (a, b)):
            return self.t(self.ew(prim, *(x.args[0] if x.shape else x for x in (a, b))))
        if a.prim is P.SLICE is b.prim and a.attr == b.attr:    # X[r] - Y[r] = (X - Y)[r]
            whole = self.nodes.get((prim, (a.args[0], b.args[0]), None, a.args[0].shape))
            if whole in self.live:
                return self.slice(whole, *a.attr)
        if prim in (P.ADD, P.MUL):                  # b + a, b .* a when it exists
            found = self.nodes.get((prim, (b, a), None, shape))
            if found is not None:
                return found
            for x, y in ((a, b), (b, a)):                      # x .* y.^2 = (x .* y) .* y
                if prim is P.MUL and y.prim is P.POW and y.args[1].attr == 2:
                    xy = self.nodes.get((P.MUL, (x, y.args[0]), None, shape)) or \
                        self.nodes.get((P.MUL, (y.args[0], x), None, shape))
                    if xy is not None:
                        return self.node(P.MUL, (xy, y.args[0]), None, shape)
        return self.node(prim, (a, b), None, shape)

    def mul(self, a: Arr, b: Arr) -> Arr:
        return self.ew(P.MUL, a, b)

    def neg(self, x: Arr) -> Arr:
        if x.prim is P.LIT:
            return self.lit(-x.attr)
        return x.args[0] if x.prim is P.NEG else self.node(P.NEG, (x,), None, x.shape)

    def call(self, key: Any, *args: Arr, shape: Shape | None = None, **params: Any) -> Arr:
        """A backend function; the shape defaults to the first argument's (elementwise)."""
        if key != "array":                    # torch.abs(3 ** 2) is an error: numbers as arrays
            args = tuple(map(self.array, args))
        if key in ("dot", "coldot"):                           # <X, Y> = <Y, X>: one order
            args = tuple(sorted(args, key=lambda a: a.serial))
        out = args[0].shape if shape is None else shape
        return self.node(P.CALL, args, (key, tuple(sorted(params.items()))), out)

    def matmul(self, a: Arr, b: Arr, mirror: bool = True) -> Arr:
        block = self._block_of_computed_product(a, b)
        return block if block is not None else \
            self.node(P.MATMUL, (a, b), None, (a.shape[0], b.shape[-1]), mirror)

    def _block_of_computed_product(self, a: Arr, b: Arr) -> Arr | None:
        """``A M`` where ``[A; B] M`` is computed already: its row block (likewise ``M A``
        and ``M [A, B]``), so a block row of a stacked product is not computed twice."""
        for c in (c for c in self.concats if c in self.live):   # in creation order
            if a not in c.args if c.attr == 0 else b not in c.args:
                continue
            part = a if c.attr == 0 else b
            whole = self.nodes.get((P.MATMUL, (c, b) if c.attr == 0 else (a, c), None,
                                    (c.shape[0], b.shape[-1]) if c.attr == 0 else
                                    (a.shape[0], c.shape[-1])))
            if whole not in self.live:
                continue
            k = c.args.index(part)
            start = sum((x.shape[c.attr] for x in c.args[:k]), ZERO)
            end = start + part.shape[c.attr]
            return self.slice(whole, start, end) if c.attr == 0 else \
                self.slice(whole, ZERO, whole.shape[0], start, end)
        return None

    def t(self, x: Arr) -> Arr:
        """x', structure kept: x'' = x, I' = I, Diag(v)' = Diag(v), [A, B]' = [A'; B'],
        (A kron B)' = A' kron B', K(a, b)' = K(b, a)."""
        if not x.shape or x.prim is P.EYE or x.key is Op.DIAGM or x in self.symmetric:
            return x
        if x.prim in (P.TRANSPOSE, P.ZEROS, P.ONES):
            return x.args[0] if x.prim is P.TRANSPOSE else self.fill(x.prim is P.ONES,
                                                                     x.shape[::-1])
        if x.prim is P.CONCAT:
            return self.concat([self.t(p) for p in x.args], 1 - x.attr)
        if x.key in (Op.KRON, "commutation"):
            p = dict(x.attr[1])
            return self.call(x.key, *map(self.t, x.args), shape=x.shape[::-1], **(
                {**p, "a": p["b"], "b": p["a"]} if p else {}))
        return self.node(P.TRANSPOSE, (x,), None, x.shape[::-1])

    def permute(self, x: Arr, axes: tuple[int, ...]) -> Arr:
        return self.node(P.PERMUTE, (x,), axes, tuple(x.shape[i] for i in axes))

    def slice(self, x: Arr, r0: Dim, r1: Dim, c0: Dim = ZERO, c1: Dim | None = None) -> Arr:
        """x[r0:r1, c0:c1] (all columns by default), moved through transposes and slices."""
        c1 = x.shape[1] if c1 is None else c1
        if (r0, r1, c0, c1) == (ZERO, x.shape[0], ZERO, x.shape[1]):
            return x
        if x.prim is P.TRANSPOSE:                              # X'[r, c] = X[c, r]'
            return self.t(self.slice(x.args[0], c0, c1, r0, r1))
        if x.prim is P.SLICE:                                  # X[a][b] = X[a + b]
            s0, _s1, t0, _t1 = x.attr
            return self.slice(x.args[0], s0 + r0, s0 + r1, t0 + c0, t0 + c1)
        return self.node(P.SLICE, (x,), (r0, r1, c0, c1), (r1 - r0, c1 - c0))

    def reshape(self, x: Arr, shape: Shape) -> Arr:
        x = x.args[0] if x.prim is P.RESHAPE or x.prim is P.TRANSPOSE and ONE in x.shape else x
        return x if x.shape == shape else self.node(P.RESHAPE, (x,), shape, shape)

    def concat(self, parts: list[Arr], axis: int) -> Arr:
        shape = list(parts[0].shape)
        shape[axis] = sum((p.shape[axis] for p in parts), ZERO)
        return parts[0] if len(parts) == 1 else self.node(P.CONCAT, tuple(parts), axis,
                                                          tuple(shape))
