"""ASCII / MATLAB-style text to a syntax tree (``matdiff.syntax.Node``).

Input: a string such as ``||Z - I .* (R'*A + Q'*B)||_F^2``. Output: a ``Node`` tree with the
spans of the text. Contract: any malformed input raises ``MatdiffError`` with ``pos`` inside
the text; no other exception escapes.
"""

from __future__ import annotations

from fractions import Fraction
from importlib import resources
from typing import Any

from lark import Lark, Token, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.visitors import Transformer_NonRecursive

from .expr import MatdiffError
from .syntax import (
    Node,
    arity_message,
    call_counts,
    canonical_function,
    frobenius,
    norm_subscript,
    span_of,
)

__all__ = ["parse_ascii", "MAX_DEPTH", "MAX_LENGTH", "JUXTAPOSITION"]

MAX_DEPTH = 200          # nesting of brackets and function calls
MAX_LENGTH = 100_000     # characters

_PARSER = Lark(resources.files(__package__).joinpath("ascii.lark").read_text(),
               parser="lalr", propagate_positions=True, maybe_placeholders=True)

_OPENERS = {"(": ")", "[": "]"}
_CLOSERS = {")": "(", "]": "["}
JUXTAPOSITION = " (use * for products: matdiff does not multiply by juxtaposition)"


@v_args(meta=True)
class _ToNode(Transformer_NonRecursive):  # iterative: long sums are deep trees
    """Lark tree to Node; one method per rule alias."""

    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def _node(self, kind: str, meta: Any, args: list[Any], value: Any = None) -> Node:
        start, end = span_of(meta)
        return Node(kind, tuple(args), value, start, end)

    def num(self, meta: Any, children: list[Token]) -> Node:
        return self._node("num", meta, [], Fraction(str(children[0])))

    def imag(self, meta: Any, children: list[Token]) -> Node:
        """``2i``, ``1j``, ``0.5i``: a real number times the imaginary unit."""
        return self._node("imag", meta, [], Fraction(str(children[0])[:-1]))

    def adjoint(self, meta: Any, children: list[Node]) -> Node:
        """``X'``: the conjugate transpose (MATLAB); ``X.'`` and ``X.T`` are plain."""
        return self._node("transpose", meta, children, "H")

    def name(self, meta: Any, children: list[Token]) -> Node:
        return self._node("name", meta, [], str(children[0]))

    def call(self, meta: Any, children: list[Any]) -> Node:
        tok, *args = children
        args = [a for a in args if a is not None]
        if str(tok) == "norm":
            return self._norm_call(meta, tok, args)
        fname = canonical_function(str(tok), pos=tok.start_pos)
        counts = call_counts(fname)
        if len(args) not in counts:
            raise MatdiffError(arity_message(fname, counts, len(args)), pos=tok.start_pos)
        return self._node("call", meta, args, fname)

    def _norm_call(self, meta: Any, tok: Token, args: list[Node]) -> Node:
        """``norm(X)`` and ``norm(X, p)`` as in MATLAB: p is 2 (the default: the spectral
        norm of a matrix, the Euclidean norm of a vector), 1, Inf, 'fro', 'nuc' or a
        number p >= 1."""
        if len(args) not in (1, 2):
            raise MatdiffError(f"norm takes 1 or 2 argument(s), got {len(args)}",
                               pos=tok.start_pos)
        if len(args) == 1:
            return self._node("norm_call", meta, args, "2")
        p = args[1]
        if p.kind not in ("num", "name", "string"):
            raise MatdiffError("norm(X, p) takes a number p >= 1, Inf, 'fro' or 'nuc'",
                               pos=p.start, end=p.end)
        return self._node("norm_call", meta, args[:1],
                          norm_subscript(str(p.value), p.start, p.end))

    def frobenius(self, meta: Any, children: list[Node]) -> Node:
        a, b = children
        return frobenius(a, b, *span_of(meta))

    def string(self, meta: Any, children: list[Token]) -> Node:
        return self._node("string", meta, [], str(children[0])[1:-1])

    def norm(self, meta: Any, children: list[Any]) -> Node:
        arg, sub = children
        if sub is None:
            return self._node("norm", meta, [arg], "")
        return self._node("norm", meta, [arg],
                          norm_subscript(str(sub)[1:], sub.start_pos, sub.end_pos))

    def block(self, meta: Any, rows: list[list[Node]]) -> Node:
        rows = [r for r in rows if r is not None]
        widths = {len(r) for r in rows}
        if len(widths) != 1:
            raise MatdiffError("every row of a block matrix needs the same number of blocks",
                               pos=span_of(meta)[0], end=span_of(meta)[1])
        return self._node("block", meta, [x for r in rows for x in r], (len(rows), len(rows[0])))

    def row(self, meta: Any, children: list[Node]) -> list[Node]:
        return children

    def __default__(self, data: str, children: list[Any], meta: Any) -> Node:
        return self._node(str(data), meta, children)


def _check_brackets(text: str) -> None:
    """Unbalanced brackets and runaway nesting, reported at the bracket."""
    stack: list[tuple[str, int]] = []
    for i, ch in enumerate(text):
        if ch in _OPENERS:
            stack.append((ch, i))
            if len(stack) > MAX_DEPTH:
                raise MatdiffError(f"nesting deeper than {MAX_DEPTH} levels", pos=i)
        elif ch in _CLOSERS:
            if not stack or stack[-1][0] != _CLOSERS[ch]:
                raise MatdiffError(f"unmatched '{ch}'", pos=i)
            stack.pop()
    if stack:
        ch, i = stack[-1]
        raise MatdiffError(f"'{ch}' is never closed (expected '{_OPENERS[ch]}')", pos=i)
    if text.count("||") % 2:
        raise MatdiffError("unbalanced norm bars '||'", pos=text.rfind("||"))


def _friendly(err: UnexpectedInput, text: str) -> MatdiffError:
    if isinstance(err, UnexpectedEOF) or (isinstance(err, UnexpectedToken)
                                          and err.token.type == "$END"):
        return MatdiffError("the expression ends too early", pos=max(0, len(text.rstrip()) - 1))
    if isinstance(err, UnexpectedToken):
        tok = err.token
        hint = ""
        if tok.type in ("NAME", "NUMBER", "LPAR"):
            hint = JUXTAPOSITION
        return MatdiffError(f"unexpected '{tok}'{hint}", pos=tok.start_pos,
                            end=tok.start_pos + len(str(tok)))
    if isinstance(err, UnexpectedCharacters):
        # lark declares pos_in_stream = None on the base class; here it is the lexer's int
        return MatdiffError(f"unexpected character '{text[err.pos_in_stream]}'",  # type: ignore[index]
                            pos=err.pos_in_stream)
    return MatdiffError(str(err), pos=getattr(err, "pos_in_stream", 0))


def parse_ascii(text: str) -> Node:
    """Parse ASCII matrix notation to a syntax tree.

    >>> parse_ascii("x'*A*x").kind
    'mul'
    >>> parse_ascii("||X||_F^2").args[0].value
    'F'
    """
    if len(text) > MAX_LENGTH:
        raise MatdiffError(f"the expression is longer than {MAX_LENGTH} characters",
                           pos=MAX_LENGTH, text=text)
    if not text.strip():
        raise MatdiffError("the expression is empty", pos=0, text=text)
    try:
        _check_brackets(text)
        tree = _PARSER.parse(text)
        return _ToNode(text).transform(tree)
    except MatdiffError as e:
        e.text = text
        raise
    except UnexpectedInput as e:
        err = _friendly(e, text)
        err.text = text
        raise err from None
    except Exception as e:  # a MatdiffError raised inside the transformer arrives wrapped
        inner = getattr(e, "orig_exc", None)
        if isinstance(inner, MatdiffError):
            inner.text = text
            raise inner from None
        raise
