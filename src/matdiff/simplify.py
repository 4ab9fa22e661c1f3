"""Simplification: named rewrite rules, one identity each, run bottom-up to a fixed point.

Input: an ``Expr``. Output: an equal ``Expr`` in canonical form: transposes at the leaves
(``(AB)ᵀ = BᵀAᵀ``; a sum whose terms are all transposed is kept as ``(x − m)ᵀ``, and
``f(X)ᵀ`` of an elementwise ``f`` is pushed only when that removes a transpose), scalar
factors merged into one coefficient in front (``2‖N‖ X / ‖N‖ → 2X``), like terms collected
(``X + 2X → 3X``, ``X − X → 0``), repeated Hadamard factors as powers, common left or right
factors and common scalar factors pulled out of sums when that makes the result cheaper
(``Aᵀx + Ax → (A + Aᵀ)x``), a negated difference written the other way round when that
removes minus signs, domain identities (Kronecker, block, trace, det, Hadamard with ``I``),
and terms in a fixed, structural order.

The parts: ``rules`` (the rule tables: ``RULES`` = ``TRANSPOSES + SUMS + SCALARS + POWERS +
PRODUCTS + TEXTBOOK + HADAMARD + FUNCTIONS + ML``, ``TEXTBOOK`` the rules of issue 13 in
``textbook`` (cancellation, orientation, diagonals, Kronecker, blocks), the last the ML
functions: log σ(u) = −softplus(−u), uᵀ(v ⊘ u) = Σv, Hadamard products distributed where
the terms then cancel), ``rewrite``
(the pattern matcher, ``Rule``, ``RuleSet`` and the rewriter), ``order`` (``cost``, the one
judge of which equal form is kept, and the structural ``order_key``; nothing here reads
printed text), ``domain`` (the signs an expression can take: a rule that holds only for
positive, nonzero or invertible arguments fires only where that is known) and ``algebra``
(the normal forms the rules read and write). ``simplify(e, trace)`` appends the names of the
rules that fired to ``trace``; ``simplify(e, rules=RULES - TRANSPOSES)`` runs a chosen rule
set. With the full rule set, the bounded search of ``search`` (an e-graph) then factors sums
through equal forms the greedy rules do not reach (``set_search`` turns it off).
"""
from __future__ import annotations

from .expr import Expr
from .order import cost, order_key
from .rewrite import Rule, RuleSet, rebuild, rewrite_fixpoint
from .rules import FUNCTIONS, HADAMARD, ML, POWERS, PRODUCTS, RULES, SCALARS, SUMS, TRANSPOSES
from .search import improve

__all__ = ["simplify", "RULES", "TRANSPOSES", "SUMS", "SCALARS", "POWERS", "PRODUCTS",
           "HADAMARD", "FUNCTIONS", "ML", "cost", "order_key", "Rule", "RuleSet", "rebuild"]


# Interned nodes never change: the simplified form of a node under the full rule set (and
# the search, where it is on).
_SIMPLE: dict[Expr, Expr] = {}
_RULED: dict[Expr, Expr] = {}
SEARCH = True  # run the bounded search (``search.improve``) after the rules


def simplify(e: Expr, trace: list[str] | None = None, rules: RuleSet | None = None) -> Expr:
    """Rewrite ``e`` bottom-up with ``RULES`` (or another rule set: ``rules``) until
    nothing fires; with the full rule set, then look for shorter forms with the bounded
    search (``search.improve``, where ``SEARCH`` is on).

    >>> from matdiff.expr import sym
    >>> A, x = sym("A", ("n", "n")), sym("x", ("n",))
    >>> str(simplify((x.T @ A).T + A @ x))
    "(A + A')*x"
    """
    cached = trace is None and rules is None
    if cached and e in _SIMPLE:
        return _SIMPLE[e]
    out = rewrite_fixpoint(e, RULES if rules is None else rules, trace)
    if rules is None and SEARCH:
        out = improve(out, _by_rules)
    if cached:
        _SIMPLE[e] = _SIMPLE[out] = out
    return out


def _by_rules(e: Expr) -> Expr:
    """``e`` under the full rule set, without the search (cached)."""
    out = _RULED.get(e)
    if out is None:
        out = _RULED[e] = rewrite_fixpoint(e, RULES)
        _RULED[out] = out
    return out


def set_search(on: bool) -> None:
    """Turn the bounded search on or off (and forget what was simplified with the other
    setting); for measuring what the search costs and gives."""
    global SEARCH
    SEARCH = on
    _SIMPLE.clear()
