"""Rewrite rules as data: patterns over ``Expr``, named rules, rule sets, and the rewriter.

Patterns. ``Pat(op, args, attr=, name=, where=)`` describes a node: its ``Op`` (or one of
several), its arguments (sub-patterns), its attribute (a value or a predicate), a predicate
on the node, and a capture name. A name captured twice must bind the same node, so
``Pat(Op.ADD, [X, X.T])`` with ``X = var("X")`` matches ``A + Aᵀ`` only. The arguments of
the n-ary operations (sums, matrix products, Hadamard products, and the chain
``a·(b·(c·X))`` of scalar factors, read as ``[a, b, c, X]``) may contain sequence
wildcards: ``...`` matches any run of arguments and ``Seq("rest")`` captures the run.
In a matrix product the items keep their order (``[..., A, B, ...]`` is two adjacent
factors anywhere in the chain). Sums, Hadamard products and scalar chains commute and are
kept in a canonical order, so their items are found anywhere without trying permutations:
each item is matched once against each argument, and the matches are joined on the names
they share (``[..., cX, ..., dX, ...]`` costs time linear in the number of terms). A
``View`` reads a node in a normal form of its own (a term as coefficient and rest, a factor
as base and exponent).

Rules. ``Rule(name, pattern, rewrite, guard, domain)`` is one identity. ``rewrite`` is a
function of the captures, passed by keyword as in tinygrad (``lambda A, B: ...``), or a
template ``Pat`` whose captures are filled in; a rule whose two sides are templates over the
same captures is ``reversible``: an equation a search may apply either way. With an
anonymous ``...`` in the pattern, the rewrite gives the replacement of the matched items
only (a node or a tuple of nodes) and the rest of the chain stays; a rewrite that takes
``root`` (the matched node) gives the whole new node. ``guard`` is a predicate over the same
keywords; a guard that takes ``new`` judges the candidate result (its arguments already
rewritten), as ``cost(new) < cost(root)`` does. ``domain`` states where the identity holds;
one that is not ``ALL`` is checked by the guard.

Rewriting. ``RuleSet``s compose with ``+`` and ``-`` and index their rules by the Op at the
root of the pattern. ``rewrite_fixpoint`` rewrites bottom-up until nothing fires: at each
node the first rule in table order that fires wins, except that consecutive rules judged by
cost form one choice, where every candidate of every such rule is made and the cheapest
(``order.cost``) is kept.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from types import EllipsisType
from typing import Any

from . import expr as E
from .expr import Expr, Op
from .order import cost

__all__ = ["Pat", "Seq", "View", "var", "Rule", "RuleSet", "rewrite_fixpoint", "rebuild",
           "instantiate", "build", "chain", "build_chain", "ALL", "COMMUTATIVE"]

Bindings = dict[str, Any]
ALL = "all"  # the domain of an identity that holds wherever its left side is defined


# ----------------------------------------------------------------------------- building nodes

def build(op: Op, args: tuple[Expr, ...], attr: Any) -> Expr:
    """A node of ``op`` over ``args`` through its builder in the Op spec (``expr.OPS``), so
    the smart constructors fold what they can.

    >>> X = E.sym("X", ("n", "n"))
    >>> build(Op.TRANSPOSE, (X.T,), None) is X
    True
    """
    return E.OPS[op].build(args, attr)


rebuild = E.rebuild


def chain(e: Expr) -> tuple[Expr, ...]:
    """The items of ``e`` as an n-ary product: ``a·(b·X)`` is ``(a, b, X)``; a sum, matrix
    product or Hadamard product gives its arguments.

    >>> a, b, X = E.sym("a"), E.sym("b"), E.sym("X", ("n", "n"))
    >>> [str(f) for f in chain(a * (b * X))]
    ['a', 'b', 'X']
    """
    if e.op is not Op.SCALE:
        return e.args
    items = _CHAINS.get(e)
    if items is None:
        out, node = [], e
        while node.op is Op.SCALE:
            out.append(node.args[0])
            node = node.args[1]
        out.append(node)
        items = _CHAINS[e] = tuple(out)
    return items


_CHAINS: dict[Expr, tuple[Expr, ...]] = {}  # interned nodes: chains are cached


def build_chain(op: Op, items: Sequence[Expr], like: Expr) -> Expr:
    """The inverse of ``chain``: an ``op`` node over ``items`` (a ``like``-shaped one, zero
    or identity, when there are none)."""
    if not items:
        if op is Op.ADD:
            return E.zeros(like.shape)
        if op is Op.HADAMARD:
            return E.ones(like.shape)
        return E.const(1) if like.is_scalar else E.eye(like.rows)
    if op is Op.SCALE:
        out = items[-1]
        for f in reversed(items[:-1]):
            out = E.scale(f, out)
        return out
    if len(items) == 1:
        return items[0]
    return build(op, tuple(items), None)


# ----------------------------------------------------------------------------- patterns


class _Any:
    def __repr__(self) -> str:
        return "ANY"


ANY: Any = _Any()


class Seq:
    """A sequence wildcard that captures the run of arguments it matches, as a tuple."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"*{self.name}"


class Pat:
    """A pattern: ``op`` (an Op, several, or None for any), ``args`` (None: any arguments;
    else a list of patterns and sequence wildcards), ``attr`` (ANY, a value, or a predicate
    on the attribute), ``where`` (a predicate on the node) and a capture ``name``.

    >>> X = var("X")
    >>> A = E.sym("A", ("n", "n"))
    >>> [sorted(b) for b in Pat(Op.ADD, [X, X.T]).match(A + A.T)]
    [['X']]
    """

    __slots__ = ("ops", "args", "attr", "name", "where", "splice", "simple", "_ids", "_seq")
    simple: bool

    def __init__(self, op: Op | Iterable[Op] | None = None,
                 args: Sequence[Pat | Seq | EllipsisType] | None = None, *,
                 attr: Any = ANY, name: str | None = None,
                 where: Callable[[Expr], bool] | None = None):
        self.ops: frozenset[Op] | None = (None if op is None else frozenset([op])
                                          if isinstance(op, Op) else frozenset(op))
        # Ops by id: an Enum member's hash is computed in Python, id() is not
        self._ids = None if self.ops is None else frozenset(map(id, self.ops))
        self.args = None if args is None else tuple(args)
        self.attr = attr
        self.name = name
        self.where = where
        wild = self.args is not None and any(a is ... or isinstance(a, Seq) for a in self.args)
        self._seq = any(isinstance(a, Seq) for a in self.args or ())
        self.splice = wild and not self._seq
        # A simple pattern matches in at most one way: no wildcards, no sums or Hadamard
        # products (whose items match in any order) with fixed arguments.
        self.simple = self.args is None or not wild and all(
            isinstance(a, Pat) and a.simple for a in self.args) and self.ops is not None \
            and not self.ops & {Op.ADD, Op.HADAMARD}

    @property
    def T(self) -> Pat:  # noqa: N802
        """The pattern of this pattern's transpose."""
        return Pat(Op.TRANSPOSE, [self])

    def __repr__(self) -> str:
        ops = "|".join(sorted(o.name for o in self.ops)) if self.ops else "_"
        args = "" if self.args is None else "(" + ", ".join(
            "..." if a is ... else repr(a) for a in self.args) + ")"
        return f"{ops}{args}" + (f"@{self.name}" if self.name else "")

    def quick(self, e: Expr) -> bool:
        """False when ``e`` cannot match: a cheap check of the Ops and the arity, down the
        arguments of fixed arity (no captures, no predicates)."""
        if self._ids is not None and id(e.op) not in self._ids:
            return False
        if self.args is None or self._seq:
            return True
        if self.splice:  # each item with an Op has a candidate somewhere in the chain
            ops = {id(x.op) for x in chain(e)}
            return all(not ops.isdisjoint(p._ids) for p in self.args
                       if isinstance(p, Pat) and p._ids is not None)
        if len(e.args) != len(self.args):
            return False
        if id(e.op) in _COMMUTATIVE:
            return True
        return all(p.quick(a) for p, a in zip(self.args, e.args, strict=True))  # type: ignore[union-attr]

    def match_one(self, e: Expr, b: Bindings) -> Bindings | None:
        """The one match of a simple pattern, or None."""
        if self._ids is not None and id(e.op) not in self._ids:
            return None
        if self.attr is not ANY and not (self.attr(e.attr) if callable(self.attr)
                                         else e.attr == self.attr):
            return None
        if self.where is not None and not self.where(e):
            return None
        if self.name is not None:
            bound = b.get(self.name)
            if bound is None:
                b = {**b, self.name: e}
            elif bound is not e:
                return None
        return b if self.args is None else _match_fixed(self.args, e.args, b)

    def match(self, e: Expr, b: Bindings | None = None) -> Iterator[Bindings]:
        """Every way ``e`` matches, as bindings of the capture names."""
        for out, _ in self.match_items(e, {} if b is None else b):
            yield out

    def match_items(self, e: Expr, b: Bindings) -> Iterator[tuple[Bindings, tuple[int, ...]]]:
        """Bindings, and the positions in ``chain(e)`` of the items the argument patterns
        matched (for splicing a replacement in)."""
        if self.simple:
            one = self.match_one(e, b)
            if one is not None:
                yield one, ()
            return
        if self._ids is not None and id(e.op) not in self._ids:
            return
        if self.attr is not ANY and not (self.attr(e.attr) if callable(self.attr)
                                         else e.attr == self.attr):
            return
        if self.where is not None and not self.where(e):
            return
        if self.name is not None:
            bound = b.get(self.name)
            if bound is not None and bound is not e:
                return
            if bound is None:
                b = {**b, self.name: e}
        assert self.args is not None
        wild = self.splice or self._seq
        items = chain(e) if wild else e.args
        if not wild and len(items) != len(self.args):
            return
        if id(e.op) in _COMMUTATIVE and (self.splice or not wild and e.op is not Op.SCALE):
            yield from _match_bag([a for a in self.args if isinstance(a, Pat)], items, b, ())
        else:
            yield from _match_run(self.args, 0, items, 0, b, ())


# Operations whose arguments commute: the items of their patterns are found in any order
# (for a chain of scalar factors, only in patterns with ``...``).
COMMUTATIVE = frozenset({Op.ADD, Op.HADAMARD, Op.SCALE})
_COMMUTATIVE = frozenset(map(id, COMMUTATIVE))


def _match_fixed(pats: tuple[Any, ...], items: tuple[Expr, ...], b: Bindings) -> Bindings | None:
    """Simple patterns against the items, one to one."""
    if len(items) != len(pats):
        return None
    for p, item in zip(pats, items, strict=True):
        b = p.match_one(item, b)
        if b is None:
            return None
    return b


def _match_bag(pats: list[Pat], items: tuple[Expr, ...], b: Bindings,
               pos: tuple[int, ...]) -> Iterator[tuple[Bindings, tuple[int, ...]]]:
    """Match each pattern to a different item, in any order (the ``...`` between them are
    the items left over). Each pattern is matched to every item once; the matches are then
    joined on the capture names they share (a hash join), so ``cX + … + dX`` costs time
    linear in the number of terms."""
    found: list[dict[tuple[Expr, ...], list[tuple[int, Bindings]]]] = []
    shared: list[tuple[str, ...]] = []
    named = set(b)
    for p in pats:
        if p.simple:
            cands = [(j, bj) for j, item in enumerate(items)
                     if (bj := p.match_one(item, b)) is not None]
        else:
            cands = [(j, bj) for j, item in enumerate(items) for bj, _ in p.match_items(item, b)]
        if not cands:
            return
        keys = tuple(sorted(named.intersection(cands[0][1])))  # names bound before p
        index: dict[tuple[Expr, ...], list[tuple[int, Bindings]]] = {}
        for j, bj in cands:  # the matches of p by the values of the names it shares
            index.setdefault(tuple(bj[n] for n in keys), []).append((j, bj))
        found.append(index)
        shared.append(keys)
        named.update(cands[0][1])
    yield from _join(found, shared, 0, b, pos)


def _join(found: list[dict[tuple[Expr, ...], list[tuple[int, Bindings]]]],
          shared: list[tuple[str, ...]], k: int, acc: Bindings,
          pos: tuple[int, ...]) -> Iterator[tuple[Bindings, tuple[int, ...]]]:
    if k == len(found):
        yield acc, pos
        return
    for j, bj in found[k].get(tuple(acc[n] for n in shared[k]), ()):
        if j not in pos:
            yield from _join(found, shared, k + 1, {**acc, **bj}, pos + (j,))


def _match_run(pats: tuple[Any, ...], i: int, items: tuple[Expr, ...], j: int, b: Bindings,
               pos: tuple[int, ...]) -> Iterator[tuple[Bindings, tuple[int, ...]]]:
    """Match ``pats[i:]`` against ``items[j:]`` (backtracking over the wildcards)."""
    if i == len(pats):
        if j == len(items):
            yield b, pos
        return
    p = pats[i]
    if p is ... or isinstance(p, Seq):
        if i + 1 == len(pats):  # a trailing wildcard takes the rest
            yield ({**b, p.name: items[j:]} if isinstance(p, Seq) else b), pos
            return
        # The run is bound once the rest has matched (no pattern reads a run), so trying
        # every split point costs no copies: a scan of a chain stays linear in its length.
        nxt = pats[i + 1]
        simple = isinstance(nxt, Pat) and nxt.simple
        for k in range(j, len(items) + 1):
            if simple and k < len(items):  # the next item matches here in one way or none
                bj = nxt.match_one(items[k], b)
                found = () if bj is None else \
                    _match_run(pats, i + 2, items, k + 1, bj, pos + (k,))
            else:
                found = _match_run(pats, i + 1, items, k, b, pos)
            for bk, pk in found:
                yield ({**bk, p.name: items[j:k]} if isinstance(p, Seq) else bk), pk
        return
    if j == len(items):
        return
    for bj, _ in p.match_items(items[j], b):
        yield from _match_run(pats, i + 1, items, j + 1, bj, pos + (j,))


def var(name: str, where: Callable[[Expr], bool] | None = None) -> Pat:
    """A pattern that matches any node (satisfying ``where``) and captures it as ``name``."""
    return Pat(name=name, where=where)


class View(Pat):
    """A pattern that reads a node in a normal form of its own: ``read(node)`` gives the
    node's parts (``2X`` as the coefficient and the rest ``(2, X)``, ``x`` as the base and
    exponent ``(x, 1)``), or None; ``parts`` are the patterns those parts must match.

    >>> term = View(lambda e: (e.args[0], e.args[1]) if e.op is Op.SCALE else (E.const(1), e),
    ...             Pat(Op.CONST, name="c"), var("X"))
    >>> A = E.sym("A", ("n", "n"))
    >>> [(str(b["c"]), str(b["X"])) for b in term.match(2 * A)]
    [('2', 'A')]
    >>> [str(b["c"]) for b in term.match(A)]
    ['1']
    """

    __slots__ = ("read", "parts", "_read")

    def __init__(self, read: Callable[[Expr], tuple[Expr, ...] | None],
                 *parts: Pat | Seq | EllipsisType,
                 where: Callable[[Expr], bool] | None = None, name: str | None = None):
        super().__init__(where=where, name=name)
        self.read = read
        self.parts = parts
        self.simple = all(isinstance(p, Pat) and p.simple for p in parts)
        self._read: dict[Expr, tuple[Expr, ...] | None] = {}  # nodes are interned: a cache

    def __repr__(self) -> str:
        return f"{self.read.__name__}({', '.join(map(repr, self.parts))})"

    def parts_of(self, e: Expr) -> tuple[Expr, ...] | None:
        if e in self._read:
            return self._read[e]
        return self._read.setdefault(e, self.read(e))

    def match_one(self, e: Expr, b: Bindings) -> Bindings | None:
        b0 = Pat.match_one(self, e, b)
        parts = None if b0 is None else self.parts_of(e)
        return None if parts is None else _match_fixed(self.parts, parts, b0)  # type: ignore[arg-type]

    def match_items(self, e: Expr, b: Bindings) -> Iterator[tuple[Bindings, tuple[int, ...]]]:
        if self.simple:
            one = self.match_one(e, b)
            if one is not None:
                yield one, ()
            return
        b0 = Pat.match_one(self, e, b)
        parts = None if b0 is None else self.parts_of(e)
        if parts is not None:
            yield from _match_run(self.parts, 0, parts, 0, b0, ())  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- rules


def _params(f: Callable[..., Any] | None) -> frozenset[str]:
    return frozenset() if f is None else frozenset(inspect.signature(f).parameters)


def _call(f: Callable[..., Any], params: frozenset[str], b: Bindings) -> Any:
    return f(**{k: b[k] for k in params})


def _template(p: Pat) -> bool:
    """Can ``p`` be filled in: one Op a node, captures and numbers at the leaves?"""
    if p.name is not None:  # a capture (its Op and predicate only restrict the match)
        return p.args is None and type(p) is Pat
    if p.args is None:
        return p.ops == {Op.CONST} and p.attr is not ANY and not callable(p.attr)
    return p.ops is not None and len(p.ops) == 1 and p.where is None and all(
        isinstance(a, Pat) and _template(a) for a in p.args)


def _captures(p: Pat) -> set[str]:
    names = {p.name} if p.name is not None else set()
    for a in p.args or ():
        if isinstance(a, Pat):
            names |= _captures(a)
    return names


def instantiate(template: Pat, b: Bindings) -> Expr:
    """A template pattern with its captures filled in, built by the smart constructors."""
    if template.name is not None:
        return b[template.name]
    if template.args is None:
        assert template.ops == {Op.CONST}, "a template leaf is a capture or a number"
        return E.const(template.attr)
    assert template.ops is not None and len(template.ops) == 1, "a template has one Op"
    (op,) = template.ops
    args = tuple(instantiate(a, b) for a in template.args if isinstance(a, Pat))
    return build(op, args, None if template.attr is ANY else template.attr)


@dataclass(frozen=True, eq=False)
class Rule:
    """One identity: ``pattern`` → ``rewrite`` where ``guard`` holds (see the module doc)."""

    name: str
    pattern: Pat
    rewrite: Callable[..., Any] | Pat
    guard: Callable[..., bool] | None = None
    domain: str = ALL
    _rw: frozenset[str] = field(init=False, repr=False)
    _gd: frozenset[str] = field(init=False, repr=False)
    judged: bool = field(init=False, repr=False)
    whole: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        rw = frozenset() if isinstance(self.rewrite, Pat) else _params(self.rewrite)
        object.__setattr__(self, "_rw", rw)
        object.__setattr__(self, "_gd", _params(self.guard))
        # judged: the guard takes ``new`` and so judges the result; a choice made by cost
        object.__setattr__(self, "judged", "new" in self._gd)
        # whole: the rewrite gives the whole new node (it takes ``root``), not only the
        # replacement of the items that a ``...`` pattern matched
        object.__setattr__(self, "whole", "root" in rw or not self.pattern.splice)

    @property
    def reversible(self) -> bool:
        """Both sides are templates over the same captures: the rule is an equation that a
        search may apply either way (right to left: match ``rewrite``, fill ``pattern``)."""
        return isinstance(self.rewrite, Pat) and _template(self.pattern) and \
            _captures(self.pattern) == _captures(self.rewrite)

    def candidates(self, node: Expr, finish: Callable[[Expr], Expr]) -> Iterator[Expr]:
        """The rewritten forms of ``node``, one per match that passes the guard, each with
        its arguments rewritten by ``finish`` (the rewriter's own recursion)."""
        if not self.pattern.quick(node):
            return
        if self.pattern.simple:
            one = self.pattern.match_one(node, {})
            matches: Iterable[tuple[Bindings, tuple[int, ...]]] = () if one is None else \
                ((one, ()),)
        else:
            matches = self.pattern.match_items(node, {})
        seen: set[Expr] = set()
        for b, pos in matches:
            b["root"] = node
            if self.guard is not None and not self.judged and not _call(self.guard, self._gd, b):
                continue
            out = (instantiate(self.rewrite, b) if isinstance(self.rewrite, Pat)
                   else _call(self.rewrite, self._rw, b))
            if out is None:
                continue
            if not self.whole:
                out = _splice(node, pos, out)
            if out is node or out in seen:
                continue
            seen.add(out)
            out = finish(out)
            if self.judged:
                b["new"] = out
                if not _call(self.guard, self._gd, b):  # type: ignore[arg-type]
                    continue
            if out is not node:
                yield out

    def apply(self, node: Expr, finish: Callable[[Expr], Expr] = lambda e: e) -> Expr | None:
        """The first rewritten form of ``node``, or None."""
        return next(self.candidates(node, finish), None)


def _splice(node: Expr, pos: tuple[int, ...], out: Expr | tuple[Expr, ...]) -> Expr:
    """``node`` with the items at ``pos`` replaced by ``out`` (at the first position)."""
    new = out if isinstance(out, tuple) else (out,)
    items: list[Expr] = []
    for i, item in enumerate(chain(node)):
        if i == pos[0]:
            items.extend(new)
        elif i not in pos:
            items.append(item)
    return build_chain(node.op, items, node)


class RuleSet:
    """An ordered set of rules, indexed by the Op at the root of their patterns.

    >>> a, b = RuleSet([]), RuleSet([])
    >>> len(a + b)
    0
    """

    def __init__(self, rules: Iterable[Rule]):
        self.rules: tuple[Rule, ...] = tuple(dict.fromkeys(rules))
        index: dict[Op, list[Rule]] = {}
        for r in self.rules:
            for op in r.pattern.ops if r.pattern.ops is not None else tuple(Op):
                index.setdefault(op, []).append(r)
        self._index = {id(op): tuple(rs) for op, rs in index.items()}
        self._groups: dict[int, tuple[tuple[Rule, ...], ...]] = {}

    def __add__(self, other: RuleSet) -> RuleSet:
        return RuleSet(self.rules + other.rules)

    def __sub__(self, other: RuleSet) -> RuleSet:
        drop = set(other.rules)
        return RuleSet(r for r in self.rules if r not in drop)

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def __contains__(self, rule: object) -> bool:
        return rule in self.rules

    def __repr__(self) -> str:
        return f"RuleSet({', '.join(r.name for r in self.rules)})"

    def for_op(self, op: Op) -> tuple[Rule, ...]:
        return self._index.get(id(op), ())

    def groups_for(self, op: Op) -> tuple[tuple[Rule, ...], ...]:
        """The rules for ``op`` in table order, each run of rules judged by cost as one
        group (a choice), every other rule alone."""
        groups = self._groups.get(id(op))
        if groups is None:
            out: list[list[Rule]] = []
            for r in self.for_op(op):
                if out and r.judged and out[-1][-1].judged:
                    out[-1].append(r)
                else:
                    out.append([r])
            groups = self._groups[id(op)] = tuple(tuple(g) for g in out)
        return groups


# ----------------------------------------------------------------------------- the rewriter

MAX_PASSES = 50


DIVISION_BY_ZERO = ("division by zero: a divisor simplifies to 0, so the expression (or "
                    "its derivative) is defined nowhere")


def _divides_by_zero(op: Op, args: Sequence[Expr]) -> bool:
    """Is ``op(*args)`` a division by zero: ``0^p`` with p < 0, or ``X ./ 0``?"""
    if op is Op.HDIV:
        return E.is_zero(args[1])
    return op is Op.POW and E.is_zero(args[0]) and args[1].op is Op.CONST and args[1].attr < 0


def rewrite_fixpoint(e: Expr, rules: RuleSet, trace: list[str] | None = None,
                     memo: dict[Expr, Expr] | None = None) -> Expr:
    """Rewrite ``e`` bottom-up with ``rules`` until nothing fires; the names of the rules
    that fired are appended to ``trace``.

    >>> X = var("X")
    >>> twice = RuleSet([Rule("x+x", Pat(Op.ADD, [X, X]), lambda X: 2 * X)])
    >>> A = E.sym("A", ("n", "n"))
    >>> str(rewrite_fixpoint(E.Expr(Op.ADD, (A, A)), twice).op)
    'Op.SCALE'
    """
    memo = {} if memo is None else memo
    for _ in range(MAX_PASSES):
        out = _Pass(rules, memo, trace).run(e)
        if out is e:
            break
        e = out
    return e


# A chain of more scalar factors than this, ``a·(b·(c·⋯X))``, is rewritten as one node whose
# arguments are its items (``chain``): the rules at its head see it whole and its inner
# links are not settled on their own, so sorting a chain of k factors costs time linear in
# k, not quadratic (each re-sort would make every inner link new). Shorter chains are
# settled link by link, innermost first.
LONG_CHAIN = 8


def _parts(node: Expr) -> tuple[Expr, ...]:
    """What the rewriter rewrites before ``node``: its arguments, or a long chain's items."""
    if node.op is Op.SCALE and node.args[1].op is Op.SCALE:
        items = chain(node)
        if len(items) > LONG_CHAIN:
            return items
    return node.args


def _hides_real(node: Expr, out: Expr) -> bool:
    """A rewrite of a visibly real node (``is_complex`` False: a Hermitian form, ā ⊙ a) to
    a form whose reality the flag cannot see: not taken."""
    return out.is_complex and not node.is_complex


def _keep_real(node: Expr, out: Expr) -> Expr:
    """``out`` (equal in value to the real ``node``) kept visibly real: Re of it where its
    rewritten arguments hide the structure that made ``node`` real."""
    return E.real(out) if _hides_real(node, out) else out


class _Pass:
    """One bottom-up pass: each node's arguments first, then its rules until none fires."""

    def __init__(self, rules: RuleSet, memo: dict[Expr, Expr], trace: list[str] | None):
        self.rules, self.memo, self.trace = rules, memo, trace

    def run(self, root: Expr) -> Expr:
        """``root`` rewritten: its arguments first (a walk that stops at nodes done)."""
        memo = self.memo
        stack: list[tuple[Expr, int]] = [(root, 0)]
        while stack:
            node, i = stack.pop()
            if node in memo:
                continue
            items = _parts(node)
            if i < len(items):
                stack.append((node, i + 1))
                stack.append((items[i], 0))
                continue
            memo[node] = self.settle(self._over(node, items, [memo[a] for a in items]))
        return memo[root]

    @staticmethod
    def _over(node: Expr, items: tuple[Expr, ...], new: list[Expr]) -> Expr:
        """``node`` over its rewritten arguments (or chain items)."""
        if all(a is b for a, b in zip(items, new, strict=True)):
            return node
        if _divides_by_zero(node.op, new):                # x/(a - a): defined nowhere
            raise E.MatdiffError(DIVISION_BY_ZERO)
        return _keep_real(node, build_chain(Op.SCALE, new, node) if node.op is Op.SCALE else
                          rebuild(node, tuple(new)))

    def finish(self, out: Expr) -> Expr:
        """``out`` with its arguments rewritten (the rules have not yet seen ``out``)."""
        items = _parts(out)
        return self._over(out, items, [self.run(a) for a in items])

    def settle(self, new: Expr) -> Expr:
        """Apply the rules at the root of ``new`` (whose arguments are done) until none fires."""
        for _ in range(MAX_PASSES):
            step = self.step(new)
            if step is None:
                break
            new, names = step
            if self.trace is not None:
                self.trace.extend(names)
        return new

    def step(self, node: Expr) -> tuple[Expr, list[str]] | None:
        """The first rule that fires, in table order; a run of rules judged by cost is one
        choice: every candidate of every rule in it is made, and the cheapest is kept."""
        for group in self.rules.groups_for(node.op):
            if len(group) == 1 and not group[0].judged and self.trace is None:
                out = group[0].apply(node, self.finish)  # the common case, without a trace
                if out is not None and not _hides_real(node, out):
                    return out, []
                continue
            best: tuple[Expr, list[str]] | None = None
            for rule in group:
                for out, names in self.tried(rule, node):
                    if _hides_real(node, out):
                        continue
                    if best is None or cost(out) < cost(best[0]):
                        best = out, names
                    if not rule.judged:
                        break
            if best is not None:
                return best
        return None

    def tried(self, rule: Rule, node: Expr) -> Iterator[tuple[Expr, list[str]]]:
        """``rule``'s candidates for ``node``, each with the rules that fired inside it."""
        saved = self.trace
        self.trace = [] if saved is not None else None
        try:
            for out in rule.candidates(node, self.finish):
                names = [rule.name, *(self.trace or ())]
                self.trace = [] if saved is not None else None
                yield out, names
        finally:
            self.trace = saved
