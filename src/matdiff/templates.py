"""The kinds of printing templates (``Call("tr")``, ``Postfix("ᵀ")``, ``Infix(" ⊙ ")``, ...),
the pieces they print and the precedence levels they are ranked by.

A template fills one node (``Node``: the expression, its style's ``Row``, its operands) into
a ``Piece``: the text, its level and the ``Edge`` at either end. ``matdiff.printing`` holds
the tables that say which template prints which Op or Form in which style, and the renderer
(``Renderer`` here is the part of it the templates use). Imports only the node module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum, auto
from fractions import Fraction
from typing import Any, NamedTuple, Protocol

from .expr import Dim, Expr, Op

__all__ = ["Level", "Edge", "Piece", "Row", "Node", "Template", "Renderer", "Script", "Name",
           "Number", "Sized", "Subscripted", "Call", "Wrap", "Postfix", "Prefix", "Infix",
           "Juxt", "Sum", "Power", "Grid", "Same", "Pick", "decimal", "word_edge"]


class Level(Enum):
    """Precedence levels by name; a style's ladder ranks them (loosest first)."""

    BRACKET = auto()   # a slot inside brackets: anything goes
    SUM = auto()       # a + b − c, and A ⊗ B on paper
    PRODUCT = auto()   # a slot that takes any product but no sum: −X ⊘ Y, a − BC
    ELEM = auto()      # A ⊙ B, A ⊘ B
    QUOT = auto()      # x/a, 1/3
    JUXT = auto()      # AB, 2X, a*X
    COEF = auto()      # the slot of a scalar in front of a product
    NEG = auto()       # −2
    POW = auto()       # X², x^0.5
    POSTFIX = auto()   # Xᵀ, X⁻¹, X[0:n, 0:m]
    ATOM = auto()      # names, numbers, calls, anything bracketed


def decimal(c: Fraction) -> str | None:
    """``c`` (≥ 0) as an exact decimal (``3``, ``0.25``), or None."""
    if c.denominator == 1:
        return str(c.numerator)
    d = c.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    if d == 1 and Fraction(repr(float(c))) == c:              # 0.25, not 543971/262144 as
        return repr(float(c))                                    # 2.075084686279297
    return None


class Edge(Enum):
    """What one end of a printed piece is, for what may stand next to it."""

    CLOSED = auto()  # a bracket, an operator, a glyph no letter extends: ) ] ‖ 𝟏 −
    LETTER = auto()  # a one-letter name or function: A, λ, σ(
    WORD = auto()    # a longer name or function: W1, lam, H_R, tr(, I_n
    DIGIT = auto()   # a number
    SUP = auto()     # a superscript: ᵀ ⁻¹ ² ^{T}
    SUB = auto()     # a subscript or an exponent a letter would extend: ‖X‖_F, X^a, H_{R}
    GROUP = auto()   # a LaTeX brace group: \mathit{lam}, \sqrt{x}, \end{bmatrix}


class Piece(NamedTuple):
    """Printed text, its level (as ranked by its style) and its two edges."""

    text: str
    level: int
    left: Edge = Edge.CLOSED
    right: Edge = Edge.CLOSED


class Row(NamedTuple):
    """A form as one style prints it: its template, its ``PREC`` row ranked by the style's
    ladder (the form's level, the levels its first and other slots need), its
    ``OPERANDS`` and its ``SIZING``."""

    form: Enum                    # the Op or the printing.Form this row prints
    template: Template
    level: int
    first: int
    rest: int
    operands: Callable[[Expr], tuple[Expr, ...]] | None
    sizing: Callable[..., tuple[bool, ...]] | None


class Node(NamedTuple):
    """A node as a template sees it: its row, the operands that fill the row's slots,
    whether each operand may print without its size, and whether the node itself may."""

    e: Expr
    row: Row
    args: tuple[Expr, ...]
    sizes: tuple[bool, ...]
    fixed: bool


class Template(Protocol):
    def fill(self, r: Renderer, n: Node) -> Piece: ...


def _glue(left: Edge, right: Edge) -> str:
    """Unicode juxtaposition: a space only where a longer name, a function or a subscript
    would run into a letter, a digit or a name, or two numbers would meet."""
    if right is Edge.WORD or left in (Edge.WORD, Edge.SUB) and \
            right in (Edge.LETTER, Edge.WORD, Edge.DIGIT):
        return " "
    return " " if left is Edge.DIGIT and right is Edge.DIGIT else ""


class Script(Enum):
    """What a postfix mark is, for the base it follows."""

    PLAIN = auto()    # ', [0:n, 0:m]: anything at the slot's level
    SUPER = auto()    # ᵀ ⁻¹ ² ^{T}: a base ending in a superscript is parenthesised
    TEX_SUB = auto()  # _{[...]}: a base ending in a script or a group is braced, {H_{R}}_{...}


# ----------------------------------------------------------------------------- templates


def word_edge(head: str) -> Edge:
    return Edge.LETTER if len(head) == 1 else Edge.WORD


@dataclass(frozen=True)
class Name:
    """A symbol: ``spell`` writes its name, ``edges`` says how it ends on either side."""

    spell: Callable[[str], str]
    edges: Callable[[str], tuple[Edge, Edge]]

    def fill(self, r: Renderer, n: Node) -> Piece:
        name = n.e.name
        return Piece(self.spell(name), n.row.level, *self.edges(name))


@dataclass(frozen=True)
class Number:
    """A constant: ``3``, ``0.25``, ``1/3``, or ``\\frac{1}{3}`` with ``tex``."""

    minus: str
    tex: bool = False

    def fill(self, r: Renderer, n: Node) -> Piece:
        c: Fraction = n.e.attr
        sign = self.minus if c < 0 else ""
        digits = decimal(abs(c))
        if digits is None and self.tex:
            body = f"\\frac{{{abs(c.numerator)}}}{{{c.denominator}}}"
            return Piece(sign + body, n.row.level, Edge.CLOSED, Edge.GROUP)
        body = digits or f"{abs(c.numerator)}/{c.denominator}"
        return Piece(sign + body, n.row.level, Edge.CLOSED if sign else Edge.DIGIT, Edge.DIGIT)


@dataclass(frozen=True)
class Sized:
    """``bare`` where the context shows the size (``I``, ``1``), else ``sized``."""

    bare: str
    sized: Template
    edge: Edge

    def fill(self, r: Renderer, n: Node) -> Piece:
        if n.fixed:
            return Piece(self.bare, r.atom, self.edge, self.edge)
        return self.sized.fill(r, n)


@dataclass(frozen=True)
class Subscripted:
    """A glyph with its sizes as a subscript, and a mark after: ``I_n``, ``𝟏_nᵀ``,
    ``K_{m,n}``."""

    glyph: str
    left: Edge
    after: str = ""

    def fill(self, r: Renderer, n: Node) -> Piece:
        sub = r.style.subscript([r.dim(d) for d in r.sizes(n)])
        return Piece(self.glyph + sub + self.after, n.row.level, self.left,
                     Edge.SUP if self.after else Edge.SUB)


@dataclass(frozen=True)
class Call:
    """``head(operands, sizes)``: brackets its arguments, so binds as an atom."""

    head: str

    def fill(self, r: Renderer, n: Node) -> Piece:
        args = [r.operand(n, i, bracketed=True).text for i in range(len(n.args))]
        args += [r.dim(d) for d in r.sizes(n)]
        opening, closing = r.style.brackets
        return Piece(f"{self.head}{opening}{', '.join(args)}{closing}", r.atom,
                     word_edge(self.head))


@dataclass(frozen=True)
class Wrap:
    """A format string whose slots ``{0}``, ``{1}`` it brackets itself (``\\sqrt{{{0}}}``,
    ``‖{0}‖_{p}``), with the named ``FIELDS`` of the form; binds as an atom."""

    fmt: str
    right: Edge = Edge.CLOSED

    def fill(self, r: Renderer, n: Node) -> Piece:
        args = [r.operand(n, i, bracketed=True).text for i in range(len(n.args))]
        return Piece(self.fmt.format(*args, **r.fields(n)), r.atom, Edge.CLOSED,
                     self.right)


@dataclass(frozen=True)
class Postfix:
    """``{0}`` then a mark (with the form's ``FIELDS``): ``Xᵀ``, ``X⁻¹``, ``X[0:n, 0:m]``."""

    mark: str
    script: Script = Script.PLAIN

    def fill(self, r: Renderer, n: Node) -> Piece:
        base = r.operand(n, 0, script=self.script)
        text = base.text
        if self.script is Script.TEX_SUB and base.right in (Edge.SUP, Edge.SUB, Edge.GROUP):
            text = f"{{{text}}}"
        fields = r.fields(n)
        mark = self.mark.format(**fields) if fields else self.mark
        right = {Script.PLAIN: Edge.CLOSED, Script.SUPER: Edge.SUP, Script.TEX_SUB: Edge.SUB}
        return Piece(text + mark, n.row.level, base.left, right[self.script])


@dataclass(frozen=True)
class Prefix:
    """A mark then ``{0}``: ``−X``."""

    mark: str

    def fill(self, r: Renderer, n: Node) -> Piece:
        body = r.operand(n, 0)
        return Piece(self.mark + body.text, n.row.level, Edge.CLOSED, body.right)


@dataclass(frozen=True)
class Infix:
    """Operands joined by a symbol: ``A ⊙ B ⊙ C``, ``x/a``, ``A ⊗ B``."""

    symbol: str

    def fill(self, r: Renderer, n: Node) -> Piece:
        parts = [r.operand(n, i) for i in range(len(n.args))]
        return Piece(self.symbol.join(p.text for p in parts), n.row.level, parts[0].left,
                     parts[-1].right)


@dataclass(frozen=True)
class Juxt:
    """A product written side by side: ``sep`` between factors, or (None) the Unicode
    juxtaposition rule on the factors' edges (see the module docstring)."""

    sep: str | None

    def fill(self, r: Renderer, n: Node) -> Piece:
        parts = [r.operand(n, i) for i in range(len(n.args))]
        text = parts[0].text
        for a, b in zip(parts, parts[1:], strict=False):
            text += (_glue(a.right, b.left) if self.sep is None else self.sep) + b.text
        return Piece(text, n.row.level, parts[0].left, parts[-1].right)


@dataclass(frozen=True)
class Sum:
    """``a + b − c``: a term scaled by a negative number follows a minus sign."""

    plus: str
    minus: str
    lead: str  # the sign of a negative first term

    def terms(self, r: Renderer, n: Node) -> list[tuple[str, Piece]]:
        """Each term with the sign before it: ``[("", a), (" + ", b), (" − ", c)]``; a
        positive number after only negative terms leads (``1 − σ``, not ``−σ + 1``: the
        sum's constructor puts the number last again, so the text reads back the same)."""
        order = list(range(len(n.args)))
        last = n.args[-1]
        if last.op is Op.CONST and last.attr > 0 and all(map(_negative, n.args[:-1])):
            order = order[-1:] + order[:-1]
        out = []
        for k, i in enumerate(order):
            t = n.args[i]
            if _negative(t):
                sign = self.lead if k == 0 else self.minus
                body = r.negated(t, n.sizes[i])
            else:
                sign = "" if k == 0 else self.plus
                body = r.slot(t, n.row.first, n.sizes[i])
            out.append((sign, body))
        return out

    def fill(self, r: Renderer, n: Node) -> Piece:
        parts = self.terms(r, n)
        left = Edge.CLOSED if parts[0][0] else parts[0][1].left
        return Piece("".join(sign + p.text for sign, p in parts), n.row.level, left,
                     parts[-1][1].right)


def _negative(t: Expr) -> bool:
    """A term printed after a minus sign: a negative number, or one scaled by one."""
    return t.op is Op.CONST and t.attr < 0 or \
        t.op is Op.SCALE and t.args[0].op is Op.CONST and t.args[0].attr < 0


@dataclass(frozen=True)
class Power:
    """``base`` to a power: ``int_fmt`` for an integer exponent (written with ``digits``),
    ``fmt`` for any other; ``{ew}`` is ``ew`` for an elementwise power of a matrix."""

    int_fmt: str
    fmt: str
    ew: str
    digits: dict[int, int] | None = None   # a str.translate table: 2 → ²
    exponent: Level = Level.POSTFIX            # the level a non-integer exponent needs
    int_edge: Edge = Edge.SUP
    edge: Edge = Edge.SUP

    def fill(self, r: Renderer, n: Node) -> Piece:
        base = r.operand(n, 0, script=Script.SUPER)
        p = n.args[1]
        ew = self.ew if n.e.op is Op.POW and not n.e.args[0].is_scalar else ""
        if p.op is Op.CONST and p.attr.denominator == 1:
            k = str(p.attr.numerator)
            k = k.translate(self.digits) if self.digits else k
            return Piece(self.int_fmt.format(b=base.text, ew=ew, k=k), n.row.level, base.left,
                         self.int_edge)
        k = r.slot(p, r.rank(self.exponent)).text
        return Piece(self.fmt.format(b=base.text, ew=ew, k=k), n.row.level, base.left,
                     self.edge)


@dataclass(frozen=True)
class Grid:
    """A block matrix: rows of cells between ``open`` and ``close``."""

    open: str
    col: str
    row: str
    close: str
    right: Edge = Edge.CLOSED

    def fill(self, r: Renderer, n: Node) -> Piece:
        cols = n.e.attr[1]
        cells = [r.operand(n, i, bracketed=True).text for i in range(len(n.args))]
        rows = [self.col.join(cells[i:i + cols]) for i in range(0, len(cells), cols)]
        return Piece(self.open + self.row.join(rows) + self.close, r.atom,
                     Edge.CLOSED, self.right)


@dataclass(frozen=True)
class Same:
    """The operand alone, at its own level: the ``2`` of ``X + 2``."""

    def fill(self, r: Renderer, n: Node) -> Piece:
        return r.operand(n, 0)


class Renderer(Protocol):
    """What a template asks of the renderer that runs it (``printing._Renderer``)."""

    style: Any      # the ``printing.Style``: its brackets and its ``subscript`` of sizes
    atom: int       # the rank of ``Level.ATOM`` in the style's ladder

    def rank(self, level: Level) -> int: ...
    def dim(self, d: Dim) -> str: ...
    def fields(self, n: Node) -> dict[str, str]: ...
    def sizes(self, n: Node) -> Sequence[Dim]: ...
    def slot(self, e: Expr, need: int, fixed: bool = False,
             script: Script = ...) -> Piece: ...
    def operand(self, n: Node, i: int, bracketed: bool = False,
                script: Script = ...) -> Piece: ...
    def negated(self, t: Expr, fixed: bool) -> Piece: ...


@dataclass(frozen=True)
class Pick:
    """The template for the node's attribute: ``lambda_max(S)`` or ``lambda_min(S)``."""

    by: dict[Any, Template]

    def fill(self, r: Renderer, n: Node) -> Piece:
        return self.by[n.e.attr].fill(r, n)
