"""A bounded search for shorter equal forms: a small e-graph, equality saturation under node
and time budgets, and extraction by ``order.cost``.

The rule tables rewrite greedily, one node at a time, and keep a rewrite only where it is
shorter right away. Some textbook forms are reached only through a step that is not shorter
by itself: ``a xᵀb + b xᵀa`` is ``(abᵀ + baᵀ)x`` only after each term is read as a chain
that ends in ``x`` (``a (xᵀb) = a bᵀx``, an equal-cost step). The search finds such forms.

* The e-graph (``EGraph``) holds classes of equal expressions; an e-node is an Op, its
  attribute and the classes of its arguments, kept unique (hash-consing), and classes are
  merged by union-find with congruence closure (``rebuild``).
* The equations (``EQUATIONS``) are over products, traces, inverses and Hadamard factors: a
  1×1 product equals its transpose; a scalar that is a 1×1 product joins a chain at its
  column end (``a (bᵀx) = a bᵀx``) and leaves it again; ``(AB)ᵀ = BᵀAᵀ`` both ways; the
  rotations of a trace; ``(AB)⁻¹ = B⁻¹A⁻¹`` for square factors; ``Diag(a) b = a ⊙ b``.
  Chains stay n-ary (associativity is never an equation: a chain is rewritten in windows of
  adjacent factors), so a chain of n factors has at most n rotations and 2 orientations,
  never the Catalan number of bracketings that blew up a binary prototype past ~10 terms.
* Saturation stops at ``NODE_BUDGET`` e-nodes, ``ROUNDS`` rounds or ``TIME_BUDGET`` seconds.
* Extraction: each class's cheapest e-node by ``order.cost`` (a fixed point); a class's
  alternatives are its e-nodes with their arguments' cheapest forms.

Sums stay canonical outside the search (the rules in ``rules`` keep them): ``improve``
takes each sum of a simplified expression, looks among the alternatives of its terms for a
first or last factor that two or more terms share and factors it out, or, where every term
has a transposed form, writes the sum as one transpose (``BᵀXᵀ + XᵀBᵀ = (XB + BX)ᵀ``, as
the rules already write ``Aᵀ + Bᵀ = (A + B)ᵀ``), and keeps the result where it is cheaper
as printed (``named_cost``: with its named parts, then ``order.cost``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from . import expr as E
from .algebra import coefficient
from .expr import Expr, Op
from .order import cost, unseen

__all__ = ["EGraph", "EQUATIONS", "improve", "alternatives", "NODE_BUDGET", "TIME_BUDGET",
           "ROUNDS", "named_cost"]

NODE_BUDGET = 200     # e-nodes per e-graph
ROUNDS = 4            # saturation rounds
TIME_BUDGET = 0.02    # seconds per e-graph
SLACK = 1             # alternatives of a term may cost this much more than its best form
MAX_TERMS = 24        # longer sums are left to the rules ...
MAX_COST = 40         # ... and so are larger terms

ENode = tuple[Op, Any, tuple[int, ...]]


@dataclass
class EGraph:
    """Classes of equal expressions (see the module doc).

    >>> x, y = E.sym("x", ("n",)), E.sym("y", ("n",))
    >>> g = EGraph()
    >>> c = g.add(x.T @ y)
    >>> g.saturate()
    >>> sorted(str(e) for e in g.forms(c))
    ["x'*y", "y'*x"]
    """

    parent: list[int] = field(default_factory=list)
    nodes: dict[int, set[ENode]] = field(default_factory=dict)
    memo: dict[ENode, int] = field(default_factory=dict)
    shapes: list[E.Shape] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)

    def find(self, c: int) -> int:
        while self.parent[c] != c:
            self.parent[c] = self.parent[self.parent[c]]
            c = self.parent[c]
        return c

    def size(self) -> int:
        return len(self.memo)

    def add(self, e: Expr) -> int:
        """The class of ``e`` (its arguments added first)."""
        classes: dict[Expr, int] = {}
        for node in unseen(e, classes):
            classes[node] = self.add_node(node.op, node.attr,
                                          tuple(classes[a] for a in node.args), node.shape)
        return classes[e]

    def add_node(self, op: Op, attr: Any, kids: tuple[int, ...], shape: E.Shape) -> int:
        node = (op, attr, tuple(self.find(k) for k in kids))
        c = self.memo.get(node)
        if c is not None:
            return self.find(c)
        c = len(self.parent)
        self.parent.append(c)
        self.shapes.append(shape)
        self.nodes[c] = {node}
        self.memo[node] = c
        return c

    def union(self, a: int, b: int) -> int:
        a, b = self.find(a), self.find(b)
        if a == b:
            return a
        if len(self.nodes[a]) < len(self.nodes[b]):
            a, b = b, a
        self.parent[b] = a
        self.nodes[a] |= self.nodes.pop(b)
        self.pending.append(a)
        return a

    def rebuild(self) -> None:
        """Congruence closure: nodes whose arguments became equal are merged."""
        while self.pending:
            self.pending.clear()
            memo: dict[ENode, int] = {}
            for c in list(self.nodes):
                if self.find(c) != c:
                    continue
                fresh = {(op, attr, tuple(self.find(k) for k in kids))
                         for op, attr, kids in self.nodes[c]}
                self.nodes[c] = fresh
                for node in fresh:
                    other = memo.get(node)
                    if other is not None and self.find(other) != self.find(c):
                        self.union(other, c)
                    memo[node] = c
            self.memo = {n: self.find(c) for n, c in memo.items()}

    # ------------------------------------------------------------------ extraction

    def best(self) -> dict[int, tuple[int, Expr]]:
        """Each class's cheapest form and its cost (a fixed point over the e-nodes)."""
        out: dict[int, tuple[int, Expr]] = {}
        changed = True
        while changed:
            changed = False
            for c, nodes in self.nodes.items():
                for node in nodes:
                    e = self._build(node, out)
                    if e is None:
                        continue
                    k = cost(e)
                    if c not in out or k < out[c][0]:
                        out[c] = (k, e)
                        changed = True
        return out

    def _build(self, node: ENode, best: dict[int, tuple[int, Expr]]) -> Expr | None:
        op, attr, kids = node
        args = []
        for k in kids:
            got = best.get(self.find(k))
            if got is None:
                return None
            args.append(got[1])
        try:
            return E.OPS[op].build(tuple(args), attr)
        except E.MatdiffError:
            return None

    def forms(self, c: int, best: dict[int, tuple[int, Expr]] | None = None) -> list[Expr]:
        """The alternatives of class ``c``: each e-node over its arguments' best forms."""
        best = self.best() if best is None else best
        c = self.find(c)
        out = {e for node in self.nodes[c] if (e := self._build(node, best)) is not None}
        return sorted(out, key=lambda e: (cost(e), str(e)))

    # ------------------------------------------------------------------ saturation

    def saturate(self, equations: tuple[Equation, ...] | None = None) -> None:
        """Apply the equations to every class until nothing is new or a budget is spent."""
        equations = EQUATIONS if equations is None else equations
        start = time.perf_counter()
        for _ in range(ROUNDS):
            best = self.best()
            before = self.size()
            for c in list(self.nodes):
                if self.size() > NODE_BUDGET or time.perf_counter() - start > TIME_BUDGET:
                    self.rebuild()
                    return
                c = self.find(c)
                for node in list(self.nodes.get(c, ())):
                    e = self._build(node, best)
                    if e is None:
                        continue
                    for eq in equations:
                        for new in eq(e):
                            self.union(c, self.add(new))
            self.rebuild()
            if self.size() == before:
                return


# ----------------------------------------------------------------------------- equations

Equation = Callable[[Expr], Iterator[Expr]]


def _raw_matmul(fs: list[Expr]) -> Expr:
    return fs[0] if len(fs) == 1 else E.Expr(Op.MATMUL, tuple(fs))


def transposed_scalar(e: Expr) -> Iterator[Expr]:
    """``xᵀAy = yᵀAᵀx``: a 1×1 product equals its transpose."""
    if e.op is Op.MATMUL and e.is_scalar:
        yield _raw_matmul([E.T(f) for f in reversed(e.args)])


def scalar_into_chain(e: Expr) -> Iterator[Expr]:
    """``(bᵀx) a = a bᵀx`` and ``(bᵀx) aᵀ = bᵀx aᵀ``: a 1×1 product joins a chain at the
    chain's end of size 1."""
    if e.op is not Op.SCALE or e.args[0].op is not Op.MATMUL or not e.args[0].is_scalar:
        return
    s, m = e.args
    fs = list(m.args) if m.op is Op.MATMUL else [m]
    if m.cols == E.ONE:
        yield _raw_matmul(fs + list(s.args))
    if m.rows == E.ONE:
        yield _raw_matmul(list(s.args) + fs)


def scalar_out_of_chain(e: Expr) -> Iterator[Expr]:
    """``a bᵀx = (bᵀx) a``: a 1×1 run at the end of a chain is a scalar factor."""
    if e.op is not Op.MATMUL or e.is_scalar:
        return
    fs = e.args
    for i in range(1, len(fs) - 1):
        if fs[i].rows == E.ONE and fs[-1].cols == E.ONE:
            yield E.Expr(Op.SCALE, (_raw_matmul(list(fs[i:])), _raw_matmul(list(fs[:i]))))
        if fs[0].rows == E.ONE and fs[i].cols == E.ONE:
            yield E.Expr(Op.SCALE, (_raw_matmul(list(fs[:i + 1])),
                                    _raw_matmul(list(fs[i + 1:]))))


def transpose_of_chain(e: Expr) -> Iterator[Expr]:
    """``(AB)ᵀ = BᵀAᵀ``, both ways."""
    if e.op is Op.TRANSPOSE and e.args[0].op is Op.MATMUL:
        yield _raw_matmul([E.T(f) for f in reversed(e.args[0].args)])
    elif e.op is Op.MATMUL and all(f.op is Op.TRANSPOSE for f in e.args):
        yield E.Expr(Op.TRANSPOSE, (_raw_matmul([f.args[0] for f in reversed(e.args)]),))


def trace_rotations(e: Expr) -> Iterator[Expr]:
    """``tr(ABC) = tr(BCA)``."""
    if e.op is Op.TRACE and e.args[0].op is Op.MATMUL:
        fs = e.args[0].args
        for i in range(1, len(fs)):
            r = fs[i:] + fs[:i]
            if r[0].rows == r[-1].cols:
                yield E.Expr(Op.TRACE, (_raw_matmul(list(r)),))


def inverse_of_chain(e: Expr) -> Iterator[Expr]:
    """``(AB)⁻¹ = B⁻¹A⁻¹`` for square factors, both ways."""
    if e.op is Op.INV and e.args[0].op is Op.MATMUL and all(
            f.rows == f.cols for f in e.args[0].args):
        yield _raw_matmul([E.inv(f) for f in reversed(e.args[0].args)])
    elif e.op is Op.MATMUL and all(f.op is Op.INV for f in e.args):
        yield E.Expr(Op.INV, (_raw_matmul([f.args[0] for f in reversed(e.args)]),))


def diagonal_hadamard(e: Expr) -> Iterator[Expr]:
    """``a ⊙ b = Diag(a) b`` for columns, both ways."""
    if e.op is Op.HADAMARD and len(e.args) == 2 and e.cols == E.ONE:
        a, b = e.args
        yield E.Expr(Op.MATMUL, (E.diagm(a), b))
        yield E.Expr(Op.MATMUL, (E.diagm(b), a))
    elif e.op is Op.MATMUL and len(e.args) == 2 and e.args[0].op is Op.DIAGM and \
            e.cols == E.ONE:
        yield E.Expr(Op.HADAMARD, (e.args[0].args[0], e.args[1]))


EQUATIONS: tuple[Equation, ...] = (transposed_scalar, scalar_into_chain, scalar_out_of_chain,
                                   transpose_of_chain, trace_rotations, inverse_of_chain,
                                   diagonal_hadamard)


# ----------------------------------------------------------------------------- using it

_ALTERNATIVES: dict[Expr, tuple[Expr, ...]] = {}


def alternatives(e: Expr) -> tuple[Expr, ...]:
    """``e`` and the equal forms the search finds within ``SLACK`` of its cost (cached).

    >>> a, b, x = (E.sym(s, ("n",)) for s in "abx")
    >>> [str(f) for f in alternatives(E.scale(b.T @ x, a))]
    ["b'*x*a", "a*b'*x"]
    """
    got = _ALTERNATIVES.get(e)
    if got is not None:
        return got
    if cost(e) > MAX_COST or not any(next(eq(n), None) is not None for n in unseen(e, {})
                                     for eq in EQUATIONS):
        _ALTERNATIVES[e] = (e,)  # too large, or no equation applies anywhere in it
        return (e,)
    g = EGraph()
    c = g.add(e)
    g.saturate()
    limit = cost(e) + SLACK
    forms = [e] + [f for f in g.forms(c) if f is not e and cost(f) <= limit]
    _ALTERNATIVES[e] = out = tuple(forms)
    return out


def _chain(e: Expr) -> tuple[Expr, ...]:
    return e.args if e.op is Op.MATMUL else (e,)


def _factored(root: Expr, side: int) -> Expr | None:
    """The sum ``root`` with a first (``side`` 0) or last (−1) factor taken out that two or
    more of its terms share in a form the search found (not as written: a term as written
    beside one rewritten is the rules' call, and they keep ``Ax + (xᵀAx)x``); None where
    there is none."""
    terms = [coefficient(t) for t in root.args]
    options: list[dict[Expr, tuple[Expr, bool]]] = []  # per term: factor → (rest, found)
    for _, body in terms:
        found: dict[Expr, tuple[Expr, bool]] = {}
        for alt in alternatives(body):
            fs = _chain(alt)
            if len(fs) < 2:
                continue
            rest = fs[:-1] if side == -1 else fs[1:]
            found.setdefault(fs[side], (_raw_matmul(list(rest)), alt is not body))
        options.append(found)
    counts: dict[Expr, int] = {}
    for found in options:
        for f, (_, searched) in found.items():
            counts[f] = counts.get(f, 0) + searched
    shared = [f for f, k in counts.items() if k >= 2]
    if not shared:
        return None
    f = max(shared, key=lambda f: (counts[f], cost(f)))
    inner = [E.scale(cf, options[i][f][0]) for i, (cf, _) in enumerate(terms)
             if f in options[i]]
    others = [t for i, t in enumerate(root.args) if f not in options[i]]
    pulled = E.add(*inner)
    return E.add(E.matmul(pulled, f) if side == -1 else E.matmul(f, pulled), *others)


def _transposed(root: Expr) -> Expr | None:
    """``BᵀXᵀ + XᵀBᵀ = (XB + BX)ᵀ``: a sum whose every term has a transposed form."""
    inner = []
    for t in root.args:
        cf, body = coefficient(t)
        found = next((alt.args[0] for alt in alternatives(body)
                      for alt in (alt, *transpose_of_chain(alt)) if alt.op is Op.TRANSPOSE), None)
        if found is None:
            return None
        inner.append(E.scale(cf, found))
    return E.T(E.add(*inner))


def named_cost(e: Expr) -> int:
    """The cost of ``e`` as printed with named parts: the result over its names plus each
    part's definition once (a name counts 1 each time it is used).

    >>> X = E.sym("X", ("n", "n"))
    >>> named_cost(X @ X.T) == cost(X @ X.T)
    True
    """
    from .names import name_parts  # names prints through simplify: import at call time
    named = name_parts([e])
    return cost(named.roots[0]) + sum(1 + cost(d) for _, d in named.parts)


def improve(e: Expr, simplify: Callable[[Expr], Expr]) -> Expr:
    """``e`` with each sum (innermost first) replaced by a factored form that the search
    finds, where that is cheaper after ``simplify``.

    >>> from matdiff.simplify import simplify
    >>> a, b, x = (E.sym(s, ("n",)) for s in "abx")
    >>> str(improve(simplify(E.scale(b.T @ x, a) + E.scale(a.T @ x, b)), simplify))
    "(a*b' + b*a')*x"
    """
    memo: dict[Expr, Expr] = {}
    return _improve(e, simplify, memo)


def _improve(e: Expr, simplify: Callable[[Expr], Expr], memo: dict[Expr, Expr]) -> Expr:
    """Bottom-up without recursion (results can be thousands of levels deep)."""
    for node in unseen(e, memo):
        args = tuple(memo[a] for a in node.args)
        out = node if args == node.args else simplify(E.rebuild(node, args))
        memo[node] = _factor_sum(out, simplify)
    return memo[e]


def _factor_sum(out: Expr, simplify: Callable[[Expr], Expr]) -> Expr:
    if out.op is not Op.ADD or len(out.args) > MAX_TERMS or out.is_scalar:
        return out
    for side in (-1, 0, None):
        new = _factored(out, side) if side is not None else _transposed(out)
        if new is None:
            continue
        new = simplify(new)
        if (named_cost(new), cost(new)) < (named_cost(out), cost(out)):
            return new
    return out
