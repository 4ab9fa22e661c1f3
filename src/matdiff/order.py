"""The simplifier's two measures of a node: its ``cost`` and its place in the canonical order.

``cost(e)`` is the textbook cost: the size of the printed form as a reader counts it, the
one judge of which of two equal forms is kept (by the rules and by the search's
extraction). Its parts and their reasons:

* every symbol, number, identity and ones counts 1, and every operator counts 1, an n-ary
  sum or product as its n − 1 operators (``A + B + C`` has two ``+``); a function,
  transpose, power or slice counts 1. A textbook form is short in exactly these tokens, so
  ``X(bcᵀ + cbᵀ)`` (11) is cheaper than ``Xbcᵀ + Xcbᵀ`` (13): factoring wins when it
  removes a symbol;
* a negation ``−X`` counts nothing, so a difference costs what a sum costs (``A − B`` and
  ``A + B`` are read alike);
* a Kronecker product counts 3 (``KRON_WEIGHT``): it is a block matrix of copies, read
  and computed as such, so a textbook prefers ``tr A tr B`` (5) to ``tr(A ⊗ B)`` (6) and
  ``‖A‖‖B‖`` to ``‖A ⊗ B‖``;
* shared subtrees count each time they are printed; the printer names a repeated part
  (``where M = …``), and the search compares whole results by ``search.named_cost``, which counts
  a named part once and each further use as one symbol, so a form with a repeated part
  that gets a name is preferred to an expanded one that is longer on the page.

``order_key(e)`` places ``e`` in the canonical order of the terms of a sum and the factors
of Hadamard and scalar products. It is structural and never reads printed text. It is the
triple (lead, prefix, digest):

* lead: what is read first, as a short string: a symbol's name (``A`` for ``AᵀB`` and for
  ``2A``), ``(`` for a product that starts with a sum (``(A + B)C``), a function's name in
  lowercase (``exp``, ``inv``; after the capital letters, as ``Y ⊙ cos X`` reads), ``I``,
  ``1`` and ``0`` for identities, ones and zeros, and numbers last;
* prefix: the first tokens (Op rank, attribute) of the tree in reading order (pre-order):
  leaves, then transposes (``A`` before ``Aᵀ`` before ``AB``), then the other Ops;
* digest: a hash of the whole tree (Op names, attributes, the children's digests), the same
  in every process; it orders trees that agree in their first tokens.

Keys are cached per interned node, built from the children's keys, and compare in time
bounded by the prefix length whatever the depth of the trees (a key is never nested).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from . import expr as E
from .expr import Dim, Expr, Op

__all__ = ["cost", "order_key", "unseen", "KRON_WEIGHT"]

_MINUS_ONE = E.const(-1)


def unseen(e: Expr, memo: Mapping[Expr, Any]) -> list[Expr]:
    """The nodes of ``e`` that are not keys of ``memo``, children before parents; the walk
    does not enter nodes that are (so a cache costs nothing to consult again)."""
    out: list[Expr] = []
    seen: set[Expr] = set()
    stack: list[tuple[Expr, int]] = [(e, 0)]
    while stack:
        node, i = stack.pop()
        if i == 0 and (node in memo or node in seen):
            continue
        if i < len(node.args):
            stack.append((node, i + 1))
            stack.append((node.args[i], 0))
        else:
            seen.add(node)
            out.append(node)
    return out
_COST: dict[Expr, int] = {}
KRON_WEIGHT = 3  # the operator ⊗ (see the module doc)


def cost(e: Expr) -> int:
    """Symbols and operators of the printed form (see the module doc).

    >>> from matdiff.expr import sym
    >>> X = sym("X", ("n", "n")); cost(X + X.T), cost(-X), cost(X @ X @ X)
    (4, 1, 5)
    """
    memo = _COST
    if e in memo:
        return memo[e]
    for node in unseen(e, memo):
        if node.op is Op.SCALE and node.args[0] is _MINUS_ONE:
            memo[node] = memo[node.args[1]]
        elif not node.args:
            memo[node] = 1
        elif node.op is Op.KRON:
            memo[node] = KRON_WEIGHT + sum(memo[a] for a in node.args)
        else:
            memo[node] = max(1, len(node.args) - 1) + sum(memo[a] for a in node.args)
    return memo[e]


# ----------------------------------------------------------------------------- the order

PREFIX = 12  # node tokens compared before the digest decides

# What a node reads first: a symbol its name; a function its name in lowercase (after the
# capital letters); an identity "I", ones "1", zeros "0"; a commutation matrix and a number
# after every name. Other nodes read their first argument, and a sum as the first factor of
# a product, power or transpose reads as its bracket (before every name).
_LEAD: dict[Op, str] = {Op.BLOCK: "[", Op.IDENTITY: "I", Op.ONES: "1", Op.ZERO: "0",
                        Op.COMMUTATION: "\x7fK", Op.CONST: "\x7f\x7f", Op.IMAG_UNIT: "\x7fi"}
_FUNCTIONS = (Op.TRACE, Op.DET, Op.LOGDET, Op.INV, Op.DIAG, Op.DIAGM, Op.VEC, Op.UNVEC, Op.SUM,
              Op.NORM, Op.KRON, Op.MEAN, Op.MAX, Op.MIN, Op.LOGSUMEXP, Op.SOFTMAX,
              Op.REAL, Op.IMAG, Op.ANGLE, *E.ELEMENTWISE)
_LEAD.update({op: op.name.lower() for op in _FUNCTIONS})
# Leaves first, then a transpose (A before Aᵀ before AB), then the Ops in declaration order.
_LEAVES = (Op.SYMBOL, Op.CONST, Op.IDENTITY, Op.ONES, Op.ZERO, Op.COMMUTATION, Op.IMAG_UNIT)
_RANK = {op: 0 if op in _LEAVES else 1 if op is Op.TRANSPOSE else 2 + i
         for i, op in enumerate(Op)}

Key = tuple[str, tuple[Any, ...], bytes]
_KEY: dict[Expr, Key] = {}


def order_key(e: Expr) -> Key:
    """The structural sort key of ``e`` (cached); see the module doc.

    >>> from matdiff.expr import sym
    >>> A, B, x = sym("A", ("n", "n")), sym("B", ("n", "n")), sym("x", ("n",))
    >>> sorted([B @ x, A.T @ x, A @ x, x], key=order_key) == [A @ x, A.T @ x, B @ x, x]
    True
    """
    key = _KEY.get(e)
    if key is not None:
        return key
    for node in unseen(e, _KEY):
        _KEY[node] = _key_of(node)
    return _KEY[e]


def _key_of(node: Expr) -> Key:
    """The key from the keys of the arguments (already cached)."""
    args = [_KEY[a] for a in node.args]
    if node.op is Op.SYMBOL:
        lead = node.attr[0]
    elif node.op in _LEAD:
        lead = _LEAD[node.op]
    elif node.op is Op.SCALE and node.args[0].op is Op.CONST:
        lead = args[1][0]  # 2X reads as X
    elif node.op is not Op.ADD and node.args[0].op is Op.ADD:
        lead = "("
    else:
        lead = args[0][0]
    attr = _ATTR.get((node.op, node.attr))
    if attr is None:
        attr = _ATTR[node.op, node.attr] = _attr_text(node.attr)
    tokens: tuple[Any, ...] = (_RANK[node.op], attr)
    for a in args:
        if len(tokens) >= 2 * PREFIX:
            break
        tokens += a[1]
    digest = hashlib.blake2b(f"{node.op.name}|{attr}".encode(), digest_size=8)
    for a in args:
        digest.update(a[2])
    return lead, tokens[:2 * PREFIX], digest.digest()


_ATTR: dict[tuple[Op, Any], str] = {}


def _attr_text(attr: Any) -> str:
    """A deterministic text for an attribute (names, dimensions, numbers), without printing
    any ``Expr``."""
    if attr is None:
        return ""
    if isinstance(attr, Dim):
        return attr.format()
    if isinstance(attr, (str, int, Fraction)):
        return str(attr)
    if isinstance(attr, tuple):
        return "(" + ",".join(_attr_text(a) for a in attr) + ")"
    raise TypeError(f"no order for the attribute {attr!r}")
