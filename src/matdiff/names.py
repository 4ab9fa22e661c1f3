"""Named parts: the ``where M = …`` clauses of a printed result.

Input: a list of expressions (the derivatives of one problem, printed together). Output: the
same expressions written over new symbols, and the definitions of those symbols, so that

* a subexpression that occurs more than once (in one result or across results) is named,
  the largest saving first;
* then, in a large result, each large sum inside a product (a residual such as
  ``[R, −Q; Q, R]PSᵀ − W``) is named, the innermost first; parts that became tiny
  (``D = I ⊙ M``) are written out again;
* each named difference is written the way round that leaves the fewest minus signs
  (``N = BPSᵀ − W`` rather than ``W − BPSᵀ`` when that turns ``−2N…`` into ``2N…``);
* names are given in order of first appearance.

Substituting the definitions back (``NamedParts.inline``) gives expressions equal to the
input. Names are capital letters for matrices, lowercase for vectors, Greek for scalars,
never one already used by a variable or a dimension. Plain ``str(expr)`` never uses names.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import expr as E
from .expr import Expr, Op
from .printing import STYLES, Style, render
from .simplify import cost, rebuild, simplify
from .templates import Edge, Level, Node, Piece, Renderer, Template

__all__ = ["NamedParts", "Namer", "name_parts", "name_factors", "substitute", "with_names",
           "Factor",
           "FACTORIZATIONS", "factor_style"]

SUM_NAMES = "MNKLUV"           # residuals (sums) ...
MATRIX_NAMES = "CDEFGHJKLTUV"   # ... and other matrices
VECTOR_NAMES = "uvwzrtehg"
SCALAR_NAMES = ("alpha", "beta", "gamma", "delta", "kappa", "rho", "tau")

SHARED_MIN = 4      # a repeated subexpression of at least this many nodes is named
LARGE_SUM = 9       # a sum of at least this many nodes inside a product is named ...
LARGE_CONTEXT = 60  # ... when the results together have at least this many nodes
CONTEXT_MIN = 15    # results smaller than this are printed without names


@dataclass
class NamedParts:
    """Expressions over named parts, and the parts' definitions (each only uses earlier ones).

    >>> from matdiff.expr import sym
    >>> A, x = sym("A", ("n", "n")), sym("x", ("n",))
    >>> named = name_parts([A @ x + A.T @ x])
    >>> named.parts, str(named.roots[0])
    ([], "A*x + A'*x")
    """

    roots: list[Expr]
    parts: list[tuple[Expr, Expr]] = field(default_factory=list)
    factors: list[Factor] = field(default_factory=list)   # UΣVᵀ = X, v = eigenvector of ...

    def inline(self) -> list[Expr]:
        """The roots with every name replaced by its definition."""
        env: dict[Expr, Expr] = {}
        for name, body in self.parts:
            env[name] = substitute(body, env)
        return [substitute(r, env) for r in self.roots]

    def __iter__(self) -> Iterator[tuple[Expr, Expr]]:
        return iter(self.parts)

    def printed(self, style: str = "unicode") -> tuple[list[str], list[tuple[str, str]]]:
        """The roots and the ``where`` list ``[(name, text)]`` printed in ``style``, the
        factorizations first (``("UΣVᵀ", "X (thin SVD)")``); one ``NamedParts`` prints the
        same names in every style."""
        look = factor_style(style, self.factors)
        return ([render(r, look) for r in self.roots],
                [f.clause(style) for f in self.factors]
                + [(render(n, look), render(d, look)) for n, d in self.parts])

    def render(self, e: Expr, style: str = "unicode") -> str:
        """``e`` printed with the factor nodes as their names (``UVᵀ``)."""
        return render(e, factor_style(style, self.factors))


def with_names(exprs: Sequence[Expr], style: str = "unicode"
               ) -> tuple[list[str], list[tuple[str, str]]]:
    """The expressions printed over named parts, and the ``where`` list ``[(name, text)]``
    (each part uses only earlier ones). ``str(expr)`` itself never uses names.

    >>> import matdiff as md
    >>> f = md.parse("||Z - I .* (R'*A + Q'*B)||_F^2 + ||W - [R, -Q; Q, R]*P*S'||_F^2")
    >>> g = md.grad(f, ["R", "Q"])
    >>> shown, where = with_names([g["R"], g["Q"]], "unicode")
    >>> shown[0]
    '2(A(I ⊙ M) + NSP[m:2m, 0:q]ᵀ − KSP[0:m, 0:q]ᵀ)'
    >>> where  # doctest: +NORMALIZE_WHITESPACE
    [('M', 'QᵀB + RᵀA − Z'), ('N', '[Q, R]PSᵀ − W[n:2n, 0:p]'),
     ('K', 'W[0:n, 0:p] − [R, −Q]PSᵀ')]
    """
    return name_parts(list(exprs)).printed(style)


def substitute(e: Expr, env: dict[Expr, Expr]) -> Expr:
    """``e`` with each node that is a key of ``env`` replaced by its value (bottom-up).

    >>> from matdiff.expr import sym
    >>> A, M = sym("A", ("n", "n")), sym("M", ("n", "n"))
    >>> str(substitute(A @ (A + A.T), {A + A.T: M}))
    'A*M'
    """
    if not env:
        return e
    memo: dict[Expr, Expr] = {}
    for node in E.toposort([e]):
        if node in env:
            memo[node] = env[node]
            continue
        args = tuple(memo[a] for a in node.args)
        memo[node] = node if args == node.args else rebuild(node, args)
    return memo[e]


def _occurrences(roots: Sequence[Expr]) -> dict[Expr, int]:
    """How often each node occurs in the printed trees of ``roots``."""
    occ: dict[Expr, int] = {}
    for r in roots:
        occ[r] = occ.get(r, 0) + 1
    for node in reversed(E.toposort(roots)):
        for a in node.args:
            occ[a] = occ.get(a, 0) + occ.get(node, 0)
    return occ


def _core(e: Expr) -> Expr:
    """``e`` without its scalar coefficients: the node a definition would stand for."""
    while e.op is Op.SCALE:
        e = e.args[1]
    return e


def _trivial(e: Expr) -> bool:
    """Leaves, transposed or negated leaves, short products of leaves and factors (named
    by their factorization) are never named."""
    if e.op in FACTORIZATIONS:
        return True
    while e.op in (Op.TRANSPOSE, Op.SCALE, Op.POW) and (e.op is Op.TRANSPOSE or
                                                        e.args[0 if e.op is Op.SCALE else 1]
                                                        .op is Op.CONST):
        e = e.args[-1] if e.op is not Op.POW else e.args[0]
    if not e.args:
        return True
    if e.op is Op.MATMUL and len(e.args) <= 2:
        return all(not (f.args[0].args if f.op is Op.TRANSPOSE else f.args) for f in e.args)
    return e.op is Op.HADAMARD and any(f.op is Op.IDENTITY for f in e.args) and \
        all(not f.args for f in e.args)


class Namer:
    """Fresh names for parts, avoiding the variables and dimensions of ``roots``."""

    def __init__(self, roots: Sequence[Expr]):
        self.taken: set[str] = set()
        self.known: dict[Expr, Expr] = {}  # parts named already elsewhere: their names
        for r in roots:
            for node in E.toposort([r]):
                if node.op is Op.SYMBOL:
                    self.taken.add(node.name)
                for d in node.shape:
                    self.taken |= d.names

    def fresh(self, like: Expr) -> Expr:
        pool: Sequence[str] = SCALAR_NAMES if like.is_scalar else \
            VECTOR_NAMES if like.is_vector else \
            SUM_NAMES + MATRIX_NAMES if _core(like).op is Op.ADD else MATRIX_NAMES
        for name in pool:
            if name not in self.taken:
                self.taken.add(name)
                return E.sym(name, like.shape)
        i = 1
        while f"T{i}" in self.taken:
            i += 1
        self.taken.add(f"T{i}")
        return E.sym(f"T{i}", like.shape)


def name_parts(exprs: Sequence[Expr]) -> NamedParts:
    """Name the large sums and the repeated subexpressions of ``exprs`` (see the module).

    >>> import matdiff as md
    >>> f = md.parse("||Z - I .* (R'*A + Q'*B)||_F^2 + ||W - [R, -Q; Q, R]*P*S'||_F^2")
    >>> g = md.grad(f, ["R", "Q"])
    >>> named = name_parts([g["R"], g["Q"]])
    >>> [f"{n} = {d}" for n, d in named]  # doctest: +NORMALIZE_WHITESPACE
    ["M = Q'*B + R'*A - Z", "N = [Q, R]*P*S' - W[n:2*n, 0:p]",
     "K = W[0:n, 0:p] - [R, -Q]*P*S'"]
    >>> str(named.roots[0])
    "2*(A*(I .* M) + N*S*P[m:2*m, 0:q]' - K*S*P[0:m, 0:q]')"
    """
    roots = list(exprs)
    if not roots or max(cost(r) for r in roots) < CONTEXT_MIN:
        return NamedParts(roots, [], _factors(roots, Namer(roots)))
    namer = Namer(roots)
    defs: list[tuple[Expr, Expr]] = []

    def apply(target: Expr) -> None:
        nonlocal roots, defs
        name = namer.fresh(target)
        env = {target: name}
        defs = [(n, substitute(d, env)) for n, d in defs]
        roots = [substitute(r, env) for r in roots]
        defs.append((name, target))

    # 1. repeated subexpressions, the largest saving first
    while True:
        everything = roots + [d for _, d in defs]
        occ = _occurrences(everything)
        tops = {_core(r) for r in everything}
        shared = [n for n, k in occ.items()
                  if k >= 2 and n not in tops and cost(n) >= SHARED_MIN and not _trivial(n)
                  and n.op is not Op.SYMBOL]
        if not shared:
            break
        apply(_first_best(shared, functools.partial(_saving, occ)))
    # 2. in a large result, the sums (residuals) inside products, the innermost first
    while sum(cost(r) for r in exprs) >= LARGE_CONTEXT:
        everything = roots + [d for _, d in defs]
        tops = {_core(r) for r in everything}
        inner = [n for n in E.toposort(everything)
                 if n.op is Op.ADD and n not in tops and cost(n) >= LARGE_SUM]
        if not inner:
            break
        apply(_first_best(inner, cost))
    # 3. parts that became tiny (D = I ⊙ M) are written out again
    tiny: dict[Expr, Expr] = {}
    for n, d in _dependency_order(defs):
        if cost(d) < SHARED_MIN:
            tiny[n] = substitute(d, tiny)
    if tiny:
        defs = [(n, substitute(d, tiny)) for n, d in defs if n not in tiny]
        roots = [substitute(r, tiny) for r in roots]
    named = _renamed(_fewest_minus_signs(NamedParts(roots, _dependency_order(defs))),
                     Namer(list(exprs)))
    return name_factors(named)


def _saving(occ: dict[Expr, int], n: Expr) -> int:
    """Minus the printed size that naming ``n`` saves."""
    return -(occ[n] - 1) * cost(n)


def _first_best(nodes: Sequence[Expr], measure: Callable[[Expr], int]) -> Expr:
    """The first node with the least ``measure``, ties broken by the shortest text: only
    the tied nodes are printed (printing every candidate made naming quadratic in the
    printed size of a deep composition)."""
    least = min(measure(n) for n in nodes)
    tied = [n for n in nodes if measure(n) == least]
    return tied[0] if len(tied) == 1 else min(tied, key=lambda n: len(str(n)))


def name_factors(named: NamedParts) -> NamedParts:
    """``named`` with the factorizations its roots and parts use named (names that neither
    a variable nor a part has)."""
    namer = Namer(named.roots)
    namer.taken |= {n.name for n, _ in named.parts}
    named.factors = _factors(named.roots + [d for _, d in named.parts], namer)
    return named


def _renamed(named: NamedParts, namer: Namer) -> NamedParts:
    """Names given again in order of first appearance in the printed results."""
    bodies = dict(named.parts)
    order: list[Expr] = []

    def visit(e: Expr) -> None:
        stack = [e]
        while stack:
            n = stack.pop()
            if n in bodies and n not in order:
                order.append(n)
                stack.append(bodies[n])
            stack.extend(reversed(n.args))

    for r in named.roots:
        visit(r)
    order += [n for n in bodies if n not in order]
    env = {old: namer.fresh(bodies[old]) for old in order}
    rank = {n: i for i, n in enumerate(order)}
    parts = [(env[n], substitute(d, env))
             for n, d in _dependency_order(sorted(named.parts, key=lambda nd: rank[nd[0]]))]
    return NamedParts([substitute(r, env) for r in named.roots], parts)


def _dependency_order(defs: list[tuple[Expr, Expr]]) -> list[tuple[Expr, Expr]]:
    """Definitions ordered so that each uses only earlier names."""
    names = {n for n, _ in defs}
    done: list[tuple[Expr, Expr]] = []
    placed: set[Expr] = set()
    pending = list(defs)
    while pending:  # the first pending definition whose names are all placed
        for i, (n, d) in enumerate(pending):
            uses = {s for s in E.toposort([d]) if s in names}
            if uses <= placed:
                done.append((n, d))
                placed.add(n)
                del pending[i]
                break
        else:  # pragma: no cover - definitions never refer to later ones in a cycle
            done.extend(pending)
            break
    return done


def _minus_signs(exprs: Sequence[Expr]) -> int:
    occ = _occurrences(exprs)
    return sum(k for n, k in occ.items()
               if n.op is Op.SCALE and n.args[0].op is Op.CONST and n.args[0].attr < 0)


def _fewest_minus_signs(named: NamedParts) -> NamedParts:
    """Write named parts P as −P' (P' = −P) wherever that leaves fewer minus signs: a
    difference alone (N = W − BPSᵀ → BPSᵀ − W), or a product together with the difference
    inside it (C = NSPᵀ with N), so that no part is a bare negation."""
    roots, parts = list(named.roots), list(named.parts)
    improved = True
    while improved:
        improved = False
        before = _minus_signs(roots + [d for _, d in parts])
        for flip in _flip_sets(parts):
            env = {n: E.neg(n) for n in flip}
            new_parts = [(n, _negated(substitute(d, env)) if n in flip else
                          simplify(substitute(d, env))) for n, d in parts]
            new_roots = [simplify(substitute(r, env)) for r in roots]
            if _minus_signs(new_roots + [d for _, d in new_parts]) < before and \
                    all(_negation_free(d) for n, d in new_parts if n in flip):
                roots, parts = new_roots, new_parts
                improved = True
                break
    return NamedParts(roots, parts)


def _flip_sets(parts: list[tuple[Expr, Expr]]) -> Iterator[set[Expr]]:
    sums = {n for n, d in parts if d.op is Op.ADD}
    for n, d in parts:
        if n in sums:
            yield {n}
        else:
            for m in sums & set(E.toposort([d])):
                yield {n, m}


def _negated(e: Expr) -> Expr:
    """−e, with the minus taken into a sum's terms."""
    return simplify(E.add(*(E.neg(t) for t in e.args)) if e.op is Op.ADD else E.neg(e))


def _negation_free(e: Expr) -> bool:
    return not (e.op is Op.SCALE and e.args[0].op is Op.CONST and e.args[0].attr < 0)


# ----------------------------------------------------------------------------- factorizations

# How a factorization prints: (text, unicode, latex) of a factor node and of the left side of
# its where-clause, and the right side as a phrase around the printed argument ({0}).
_STYLE_INDEX = {"text": 0, "unicode": 1, "latex": 2}


@dataclass(frozen=True)
class _Factorization:
    """One kind of factorization: the names it introduces and how it is described."""

    pools: tuple[tuple[str, ...], ...]                  # name tuples, the first free is taken
    shown: Callable[[Expr, tuple[str, ...]], tuple[str, str, str]]   # a factor node, printed
    lhs: Callable[[tuple[str, ...]], tuple[str, str, str]]
    rhs: tuple[str, str, str]                           # "{0} (thin SVD)", {0} the argument
    level: Level = Level.ATOM


def _greek(name: str, style: int) -> str:
    return ("Sigma", "Σ", "\\Sigma")[style] if name == "Sigma" else name


FACTORIZATIONS: dict[Op, _Factorization] = {
    Op.POLAR: _Factorization(                                 # UVᵀ where UΣVᵀ = X (thin SVD)
        (("U", "V"), ("U1", "V1"), ("U2", "V2")),
        lambda e, n: (f"{n[0]}*{n[1]}'", f"{n[0]}{n[1]}ᵀ", f"{n[0]} {n[1]}^{{T}}"),
        lambda n: (f"{n[0]}*Sigma*{n[1]}'", f"{n[0]}Σ{n[1]}ᵀ", f"{n[0]} \\Sigma {n[1]}^{{T}}"),
        ("{0} (thin SVD)",) * 3, Level.JUXT),
    Op.EIGVEC: _Factorization(                                # v = eigenvector of λ_max(S)
        (("v",), ("w",), ("z",), ("v1",), ("v2",), ("v3",)),
        lambda e, n: (n[0],) * 3, lambda n: (n[0],) * 3,
        ("unit eigenvector of {0}",) * 2 + ("\\text{{unit eigenvector of }} {0}",)),
    Op.SVD_U1: _Factorization(                                # u, v = singular vectors of σ₁
        (("u", "v"), ("u1", "v1"), ("u2", "v2")),
        lambda e, n: (n[0 if e.op is Op.SVD_U1 else 1],) * 3, lambda n: (f"{n[0]}, {n[1]}",) * 3,
        ("singular vectors of the largest singular value {0}",) * 2
        + ("\\text{{singular vectors of the largest singular value }} {0}",)),
    Op.CHOL: _Factorization((("L",), ("L1",), ("L2",)),       # L = chol(S)
                            lambda e, n: (n[0],) * 3, lambda n: (n[0],) * 3,
                            ("{0}",) * 3),
}
FACTORIZATIONS[Op.SVD_V1] = FACTORIZATIONS[Op.SVD_U1]


def _described(e: Expr) -> Expr:
    """What a factorization's where-clause shows on its right: X for UΣVᵀ = X, λ_max(S) for
    the eigenvector, ‖X‖₂ for the singular vectors, chol(S) for L."""
    x = e.args[0]
    if e.op is Op.EIGVEC:
        return E.eigval(x, e.attr)
    if e.op in (Op.SVD_U1, Op.SVD_V1):
        return E.spectral_norm(x)
    return e if e.op is Op.CHOL else x


@dataclass
class Factor:
    """A factorization a printed result is written over: its names, the factor nodes with
    what each prints as per style, and the where-clause ``lhs = rhs``."""

    names: tuple[str, ...]
    nodes: dict[Expr, tuple[str, str, str]]
    lhs: tuple[str, str, str]
    described: Expr
    rhs: tuple[str, str, str]
    level: Level

    def clause(self, style: str) -> tuple[str, str]:
        i = _STYLE_INDEX[style]
        return self.lhs[i], self.rhs[i].format(render(self.described, style))


def _preorder(roots: Sequence[Expr]) -> list[Expr]:
    """The distinct nodes of ``roots`` in the order a printer meets them (left to right)."""
    seen: set[Expr] = set()
    out: list[Expr] = []
    stack = list(reversed(roots))
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            out.append(node)
            stack.extend(reversed(node.args))
    return out


def _free_pool(pools: Sequence[tuple[str, ...]], taken: set[str]) -> tuple[str, ...]:
    """The first pool of names none of which is taken; past the listed pools, the first
    one's names numbered on (``u3, v3``, ``u4, v4``, ...).

    >>> _free_pool([("u", "v"), ("u1", "v1")], {"u", "v1"})
    ('u2', 'v2')
    """
    listed = (p for p in pools if not set(p) & taken)
    numbered = (tuple(f"{n}{k}" for n in pools[0]) for k in itertools.count(len(pools)))
    return next(p for p in itertools.chain(listed, numbered) if not set(p) & taken)


def _factors(roots: Sequence[Expr], namer: Namer) -> list[Factor]:
    """The factorizations the nodes of ``roots`` use (one per argument and kind), named in
    the order a reader meets them."""
    found: dict[tuple[Any, ...], Factor] = {}
    for node in _preorder(roots):
        kind = FACTORIZATIONS.get(node.op)
        if kind is None:
            continue
        key = (id(kind), node.args[0], node.attr)
        if key not in found:
            names = _free_pool(kind.pools, namer.taken)
            namer.taken |= set(names)
            found[key] = Factor(names, {}, kind.lhs(names), _described(node), kind.rhs,
                                kind.level)
        f = found[key]
        f.nodes[node] = kind.shown(node, f.names)
    return list(found.values())


@dataclass(frozen=True)
class _Named:
    """A template that prints a factor node as its name and any other node as before."""

    names: dict[Expr, str]
    level: Level
    otherwise: Template

    def fill(self, r: Renderer, n: Node) -> Piece:
        text = self.names.get(n.e)
        if text is None:
            return self.otherwise.fill(r, n)
        edge = Edge.LETTER if len(text) == 1 else Edge.WORD
        right = Edge.SUP if text.endswith(("ᵀ", "}")) else edge
        return Piece(text, r.rank(self.level), edge, right)


def factor_style(style: str, factors: Sequence[Factor]) -> Style:
    """``STYLES[style]`` with the factor nodes printed as their names (``UVᵀ``, ``v``, ``L``).

    >>> S = E.sym("S", ("n", "n"), "symmetric"); v = E.eigvec(S, "max")
    >>> render(v @ v.T, factor_style("unicode", _factors([v], Namer([v]))))
    'vvᵀ'
    """
    base = STYLES[style]
    if not factors:
        return base
    i = _STYLE_INDEX[style]
    rows = dict(base.rows)
    for f in factors:
        for node, shown in f.nodes.items():
            row = rows[node.op]
            names = dict(row.names) if isinstance(row, _Named) else {}
            names[node] = shown[i]
            rows[node.op] = _Named(names, f.level,
                                   row.otherwise if isinstance(row, _Named) else row)
    return dataclasses.replace(base, rows=rows)
