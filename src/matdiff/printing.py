"""Printers: ``Expr`` to ASCII (valid input), Unicode, and LaTeX.

Input: an ``Expr``. Output: a string. Contract: ``to_text(e)`` parses back, with the same
shape declarations, to the very same (interned) node, so ``str(e)`` is always valid input;
``to_latex(e)`` parses back through the LaTeX reader wherever that reader has the construct.
Sub-matrices print as ``X[r0:r1, c0:c1]`` (0-based, end excluded). This module imports only
the node module.

How a node is printed, all from tables:

* ``FORMS`` picks what is printed: the node's ``Op``, or a finer ``Form`` of it that the
  structure asks for (``x/a`` and ``−x`` are forms of SCALE; ``X⁻ᵀ`` is INV of TRANSPOSE).
  A style that has no row for a form prints the node by the next coarser one.
* ``TEMPLATES`` has one row per Op or Form: its template in text, Unicode and LaTeX (one
  template where the styles agree), built from a dozen kinds of ``matdiff.templates``
  (``Postfix("ᵀ")``, ``Infix(" ⊙ ")``, ``Wrap("‖{0}‖_{p}")``, ...), whose pieces know their
  ``Edge`` on either side. A function call needs only its name, in
  ``FUNCTIONS``. Each style (``TEXT``, ``UNICODE``, ``LATEX``) is one column of these.
* ``PREC[form]`` is the level of the printed form and the level each child slot needs; a
  child printed below its slot's level is parenthesised. A template that brackets a slot
  itself (a call, a norm, ``\\frac``) needs nothing there and binds as an atom. Levels are
  names that each style ranks: in MATLAB text ``.*`` binds like ``*``; on paper ⊙ binds
  looser than juxtaposition (``AB ⊙ C``, ``2(A ⊙ B)``), and a scalar product in front of
  a product is bracketed (``(xᵀAx)y``).
* Templates report the ``Edge`` at either end of what they print (a one-letter name, a
  longer name, a digit, a superscript, a subscript, a brace group). The juxtaposition rule
  and the superscript rules read these edges, never the printed text.

Unicode juxtaposition (a product written without a sign), so that a reader can split it:

* one-letter names (Latin or Greek) and one-letter functions run together: ``AXB``,
  ``xᵀAx``, ``2Aᵀ``, ``det(X)X⁻ᵀ``, ``σ(z)``; a run of letters with nothing between them
  is always a product of one-letter names;
* a longer name (``lam``, ``W1``, ``H_R``, ``I_n``), a function name of more than one
  letter (``tr``, ``log det``), a subscript (``‖X‖_F``) and a non-integer exponent
  (``X^a``) are set off by a space from a neighbouring letter, digit or name:
  ``lam W``, ``W2 tanh(W1 x)``, ``‖X‖_F Y``, ``X^a Y``; next to a bracket, an operator or
  a superscript no space is needed (``lam‖W‖_F²``, ``W2ᵀv``);
* a number runs into a following letter (``2X``, ``0.25X``); a fraction in front of a
  product is bracketed (``(1/3)X``), since ``1/3X`` would read as ``1/(3X)``.

A longer name standing alone (``lam``) looks like the product of one-letter names ``l``,
``a``, ``m``; a reader settles that by the declared names, as the LaTeX reader does for
``\\mathit{lam}``.

Adding an operation to the printers (each a row or two):

* a function: ``Op.SOFTPLUS: "softplus"`` in ``FUNCTIONS`` prints ``softplus(x)`` and
  ``\\operatorname{softplus}\\left(x\\right)``; ``expm`` likewise (its PREC row comes with it);
* an operator: a ``Prec`` row in ``OPERATORS`` and a row in ``TEMPLATES``, e.g. the
  conjugate ``Op.CONJ: Prec(L.POSTFIX, L.POSTFIX)`` with
  ``(Call("conj"), Postfix("\\u0304"), Wrap("\\\\bar{{{0}}}", Edge.GROUP))`` for ``conj(X)``,
  ``X̄``, ``\\bar{X}``; the adjoint ``(Postfix("'"), Postfix("ᴴ", Script.SUPER),
  Postfix("^{H}", Script.SUPER))``;
* a norm: a row of ``NORM_SUBSCRIPTS``, ``"*": ("*", "*")`` for ``‖X‖_*``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum, auto
from functools import cached_property

from . import expr as _expr
from .expr import ONE, OPS, Dim, Expr, Op
from .templates import (
    Call,
    Edge,
    Grid,
    Infix,
    Juxt,
    Level,
    Name,
    Node,
    Number,
    Pick,
    Piece,
    Postfix,
    Power,
    Prefix,
    Row,
    Same,
    Script,
    Sized,
    Subscripted,
    Sum,
    Template,
    Wrap,
    decimal,
    word_edge,
)

__all__ = ["to_text", "to_unicode", "to_latex", "render", "terms", "FORMATS", "format_shape",
           "format_dim", "latex_name", "PREC", "Prec", "Level", "Form", "FORMS", "FUNCTIONS",
           "TEXT", "UNICODE", "LATEX", "STYLES", "Style", "Edge", "Piece"]


# ----------------------------------------------------------------------------- levels


def _ladder(*steps: Level | tuple[Level, ...]) -> dict[Level, int]:
    return {lv: i for i, step in enumerate(steps)
            for lv in (step if isinstance(step, tuple) else (step,))}


L = Level
# MATLAB: .* and * share a level; a quotient or a coefficient takes any product
TEXT_LADDER = _ladder(L.BRACKET, L.SUM, (L.PRODUCT, L.QUOT, L.COEF), (L.ELEM, L.JUXT), L.NEG,
                      L.POW, L.POSTFIX, L.ATOM)
# paper: AB ⊙ C is (AB) ⊙ C; 2(A ⊙ B); (xᵀAx)y and (1/3)X bracket their scalar
PAPER_LADDER = _ladder(L.BRACKET, L.SUM, (L.PRODUCT, L.ELEM), L.QUOT, L.JUXT, (L.COEF, L.NEG),
                       L.POW, L.POSTFIX, L.ATOM)


@dataclass(frozen=True)
class Prec:
    """How tightly a printed form binds, and the level its first and other slots need."""

    level: Level
    first: Level = Level.BRACKET
    rest: Level | None = None  # None: as ``first``

    def slot(self, i: int) -> Level:
        return self.first if i == 0 or self.rest is None else self.rest


class Form(Enum):
    """Finer things to print than an ``Op``, each recognised by a row of ``FORMS``."""

    FRACTION = auto()     # 1/3, -3/4: a number that is no finite decimal
    NEGATIVE = auto()     # −2
    ROW_OF_ONES = auto()  # 𝟏ₙᵀ
    BROADCAST = auto()    # the 2 of X + 2: a scaled ones whose size its siblings show
    QUOTIENT = auto()     # x/a, x/a²: SCALE(a⁻ᵏ, x)
    NEGATION = auto()     # −x: SCALE(-1, x)
    NUMERIC = auto()      # 2X: SCALE by a number
    T_INV = auto()        # X⁻ᵀ: TRANSPOSE(INV(X))
    INV_T = auto()        # X⁻ᵀ: INV(TRANSPOSE(X))
    MATPOW_INV = auto()   # X⁻²: MATPOW(INV(X), 2)
    INV_SQRTM = auto()    # X^(-1/2): INV(SQRTM(X))
    ADJOINT = auto()      # Xᴴ = X' (MATLAB): TRANSPOSE(CONJ(X)), printed from conj's operand
    PLAIN_T = auto()      # Xᵀ = X.' of a complex X: the transpose without conjugation


# Function calls f(x) in every style; the LaTeX head is \f where LaTeX has one (TEX_HEADS),
# else \operatorname{f}. A new function needs only its row here.
FUNCTIONS: dict[Op, str] = {op: OPS[op].ascii[0] for op in (   # printed by their spec name
    Op.TRACE, Op.DET, Op.LOGDET, Op.DIAG, Op.DIAGM, Op.VEC, Op.UNVEC, Op.SUM, Op.EXP, Op.LOG,
    Op.SIN, Op.COS, Op.TAN, Op.TANH, Op.SQRT, Op.ABS, Op.SIGN, Op.SIGMOID, Op.RELU,
    Op.ARCSIN, Op.ARCCOS, Op.ARCTAN, Op.TRIL, Op.EXPM, Op.LOGM, Op.POLAR, Op.SVD_U1, Op.SVD_V1,
    Op.ADJ, Op.CHOL, Op.MEAN, Op.MAX, Op.MIN, Op.LOGSUMEXP, Op.SOFTMAX, Op.SOFTPLUS, Op.LOG1P,
    Op.EXPM1, Op.SINH, Op.COSH, Op.ARCSINH, Op.REAL, Op.IMAG, Op.ANGLE,
)}
TEX_HEADS = {"det", "exp", "log", "sin", "cos", "tan", "sinh", "cosh", "tanh", "arcsin",
             "arccos", "arctan", "max", "min"}

_ATOM = Prec(L.ATOM)
# The operators, and the leaves with the forms of both; every Op is in exactly one of
# LEAVES, OPERATORS and FUNCTIONS (a test checks that PREC covers Op and Form).
LEAVES: dict[Op | Form, Prec] = {
    Op.SYMBOL: _ATOM, Op.CONST: _ATOM, Op.IDENTITY: _ATOM, Op.ONES: _ATOM, Op.ZERO: _ATOM,
    Op.COMMUTATION: _ATOM,                          # K(m, n)
    Op.IMAG_UNIT: _ATOM,                            # 1i | i
    Form.FRACTION: Prec(L.QUOT),                    # 1/3
    Form.NEGATIVE: Prec(L.NEG),                     # −2
    Form.ROW_OF_ONES: Prec(L.POSTFIX),              # 𝟏ₙᵀ
}
OPERATORS: dict[Op | Form, Prec] = {
    Op.ADD: Prec(L.SUM, L.SUM),                     # a + b; a − (b + c)
    Op.SCALE: Prec(L.JUXT, L.COEF, L.JUXT),         # a BC; a (b/c); (xᵀAx)y
    Form.NUMERIC: Prec(L.JUXT, L.COEF, L.QUOT),     # 2BC; 2x/a; (1/3)X
    Form.NEGATION: Prec(L.ELEM, L.PRODUCT),         # −X ⊘ Y; −(A + B)
    Form.QUOTIENT: Prec(L.QUOT, L.PRODUCT, L.NEG),  # Ax/(xᵀx)
    Form.BROADCAST: Prec(L.ATOM, L.PRODUCT),        # X + 2 (keeps the level of its 2)
    Op.MATMUL: Prec(L.JUXT, L.JUXT, L.NEG),         # AB(C + D); (A ⊙ B)C on paper
    Op.HADAMARD: Prec(L.ELEM, L.ELEM, L.NEG),       # AB ⊙ C ⊙ (D + E)
    Op.HDIV: Prec(L.ELEM, L.ELEM, L.NEG),           # A ⊙ B ⊘ C
    Op.KRON: Prec(L.SUM, L.NEG),                    # (A + B) ⊗ C; kron(A, B) in text
    Op.POW: Prec(L.POW, L.POSTFIX),                 # Xᵀ.^2; x^(1/2)
    Op.MATPOW: Prec(L.POW, L.POSTFIX),              # X²
    Form.MATPOW_INV: Prec(L.POW, L.POSTFIX),        # X⁻²
    Op.TRANSPOSE: Prec(L.POSTFIX, L.POSTFIX),       # X[0:n, 0:m]ᵀ
    Form.T_INV: Prec(L.POSTFIX, L.POSTFIX),         # X⁻ᵀ
    Form.ADJOINT: Prec(L.POSTFIX, L.POSTFIX),       # Xᴴ; X' in text
    Form.PLAIN_T: Prec(L.POSTFIX, L.POSTFIX),       # Xᵀ; X.' in text
    Op.CONJ: Prec(L.POSTFIX, L.ATOM),               # X̄; conj(X) in text
    Op.INV: Prec(L.POSTFIX, L.POSTFIX),             # X⁻¹; inv(X) in text
    Form.INV_T: Prec(L.POSTFIX, L.POSTFIX),         # X⁻ᵀ
    Op.SLICE: Prec(L.POSTFIX, L.POSTFIX),           # Xᵀ[0:n, 0:m]
    Op.BLOCK: _ATOM,                                # [A, B; C, D]
    Op.NORM: _ATOM,                                 # ‖X‖_F
    Op.SPECTRAL_NORM: _ATOM,                        # ‖X‖_2
    Op.NUCLEAR_NORM: _ATOM,                         # ‖X‖_*
    Op.INF_NORM: _ATOM,                             # ‖x‖_∞
    Op.EIGVAL: _ATOM,                               # λ_max(S)
    Op.EIGVEC: _ATOM,                               # eigvec_max(S)
    Op.FRECHET: _ATOM,                              # L_exp(A, E)
    Op.SQRTM: Prec(L.POSTFIX, L.POSTFIX),           # X^½; sqrtm(X) in text
    Form.INV_SQRTM: Prec(L.POSTFIX, L.POSTFIX),     # X^-½
    Op.PINV: Prec(L.POSTFIX, L.POSTFIX),            # X⁺; pinv(X) in text
}
PREC: dict[Op | Form, Prec] = {**LEAVES, **OPERATORS, **{op: _ATOM for op in FUNCTIONS}}


# ----------------------------------------------------------------------------- forms


def _quotient(e: Expr) -> bool:
    """``x/a``: a scaling by a negative power, printed as a quotient."""
    if e.op is not Op.SCALE or e.args[0].op is not Op.POW:
        return False
    p = e.args[0].args[1]
    return p.op is Op.CONST and p.attr < 0


def _conjugates(e: Expr) -> int:
    return sum(1 for n in e.walk() if n.op is Op.CONJ)


def _adjoint(e: Expr) -> bool:
    """``Tᵀ`` of a complex ``Y`` prints as ``(Ȳ)ᴴ`` where Ȳ has fewer conjugates than Y."""
    y = e.args[0]
    return y.is_complex and _conjugates(_expr.conj(y)) < _conjugates(y)


def _is_number(e: Expr, value: int | None = None) -> bool:
    return e.op is Op.CONST and (value is None or e.attr == value)


Match = Callable[[Expr, bool], bool]  # (node, printed without its size?) -> applies

# (form, the Op it refines, when): the first that applies and that the style has a row
# for is printed; the order matters only between forms of one Op.
FORMS: list[tuple[Form, Op, Match]] = [
    (Form.FRACTION, Op.CONST, lambda e, _: e.attr.denominator != 1 and
     decimal(abs(e.attr)) is None),
    (Form.NEGATIVE, Op.CONST, lambda e, _: e.attr < 0),
    (Form.ROW_OF_ONES, Op.ONES, lambda e, fixed: not fixed and e.rows == ONE),
    (Form.BROADCAST, Op.SCALE, lambda e, fixed: fixed and e.args[1].op is Op.ONES),
    (Form.QUOTIENT, Op.SCALE, lambda e, _: _quotient(e)),
    (Form.NEGATION, Op.SCALE, lambda e, _: _is_number(e.args[0], -1)),
    (Form.NUMERIC, Op.SCALE, lambda e, _: _is_number(e.args[0])),
    (Form.ADJOINT, Op.TRANSPOSE, lambda e, _: _adjoint(e)),
    (Form.PLAIN_T, Op.TRANSPOSE, lambda e, _: e.args[0].is_complex),
    (Form.T_INV, Op.TRANSPOSE, lambda e, _: e.args[0].op is Op.INV),
    (Form.INV_T, Op.INV, lambda e, _: e.args[0].op is Op.TRANSPOSE),
    (Form.MATPOW_INV, Op.MATPOW, lambda e, _: e.args[0].op is Op.INV),
    (Form.INV_SQRTM, Op.INV, lambda e, _: e.args[0].op is Op.SQRTM),
]
_FORMS_OF: dict[Op, list[tuple[Form, Match]]] = {}
for _form, _op, _match in FORMS:
    _FORMS_OF.setdefault(_op, []).append((_form, _match))


def _denominator(e: Expr) -> Expr:
    """The ``a²`` of ``x/a²`` = SCALE(a⁻², x)."""
    base, p = e.args[0].args
    return base if p.attr == -1 else _expr.hpow(base, _expr.const(-p.attr))


def _matmul_operands(e: Expr) -> tuple[Expr, ...]:
    a = e.args
    if a[0].rows == ONE and any(f.cols == ONE for f in a[:-1]):
        return (a[0], _expr.matmul(*a[1:]))  # uᵀ(uuᵀu): a 1x1 partial product would read
    return a                                  # back as a scaling


# what fills a form's slots, where that is not the node's arguments
OPERANDS: dict[Op | Form, Callable[[Expr], tuple[Expr, ...]]] = {
    Op.MATMUL: _matmul_operands,
    Op.MATPOW: lambda e: (e.args[0], _expr.const(e.attr)),
    Form.MATPOW_INV: lambda e: (e.args[0].args[0], _expr.const(-e.attr)),
    Form.T_INV: lambda e: (e.args[0].args[0],),
    Form.ADJOINT: lambda e: (_expr.conj(e.args[0]),),
    Form.INV_T: lambda e: (e.args[0].args[0],),
    Form.INV_SQRTM: lambda e: (e.args[0].args[0],),
    Form.QUOTIENT: lambda e: (e.args[1], _denominator(e)),
    Form.NEGATION: lambda e: (e.args[1],),
    Form.BROADCAST: lambda e: (e.args[0],),
}


def _vector_or_matrix(e: Expr) -> list[Dim]:
    return [e.rows] if e.cols == ONE else [e.rows, e.cols]


# the sizes a leaf or a call shows: eye(n), ones(m, n), K(m, n), unvec(x, m, n)
SIZES: dict[Op | Form, Callable[[Expr], Sequence[Dim]]] = {
    Op.IDENTITY: lambda e: [e.attr], Op.ONES: _vector_or_matrix, Op.ZERO: _vector_or_matrix,
    Form.ROW_OF_ONES: lambda e: [e.cols], Op.COMMUTATION: lambda e: e.attr,
    Op.UNVEC: lambda e: e.attr,
}
# p → the subscript of ‖·‖_p for (a vector, a matrix)
NORM_SUBSCRIPTS = {"1": ("1", "1"), "2": ("2", "F")}


def _norm_subscript(e: Expr) -> str:
    x = e.args[0]
    return NORM_SUBSCRIPTS[e.attr][0 if x.cols == ONE or x.rows == ONE else 1]


# named fields of templates: X[{r0}:{r1}, {c0}:{c1}], ‖X‖_{p}
FIELDS: dict[Op | Form, Callable[[Expr, Callable[[Dim], str]], dict[str, str]]] = {
    Op.SLICE: lambda e, dim: dict(zip(("r0", "r1", "c0", "c1"), map(dim, e.attr),
                                      strict=True)),
    Op.NORM: lambda e, dim: {"p": _norm_subscript(e)},
}


# ----------------------------------------------------------------------------- sizes


def _unscaled(e: Expr) -> Expr:
    while e.op is Op.SCALE:
        e = e.args[1]
    return e


def _floating(e: Expr) -> bool:
    """Nodes whose size is not visible in their printed form (``I``, ``1``, ``0``)."""
    e = _unscaled(e)
    if e.op in (Op.ADD, Op.HADAMARD, Op.HDIV):
        return all(_floating(x) for x in e.args)
    return e.op in (Op.IDENTITY, Op.ONES, Op.ZERO)


Sizing = Callable[[Expr, tuple[Expr, ...], bool, "Style"], tuple[bool, ...]]


def _siblings(e: Expr, args: tuple[Expr, ...], fixed: bool, style: Style) -> tuple[bool, ...]:
    """Operands of a sum or an elementwise product: a bare ``I``, ``1`` or ``0`` where
    another operand shows the size (in a sum, also where the sum's context shows it)."""
    shown = fixed and e.op is Op.ADD or any(not _floating(x) for x in args)
    if style.numbers_fold and e.op is Op.ADD and sum(map(_floating, args)) > 1:
        shown = False  # 1 + 1 + X reads as 2 + X: a bare 1 is the number
    return tuple(shown and style.bare(x) for x in args)


def _grid(e: Expr, args: tuple[Expr, ...], fixed: bool, style: Style) -> tuple[bool, ...]:
    """Blocks: a bare 1 or 0 only where a block printed with its size fixes its height (in
    its row) and its width (in its column); the identity always shows its size."""
    c = e.attr[1]
    sized = [not _floating(x) or _unscaled(x).op is Op.IDENTITY for x in args]
    return tuple(_unscaled(x).op in style.sizeless and any(sized[k // c * c:k // c * c + c])
                 and any(sized[k % c::c]) for k, x in enumerate(args))


def _scaled(i: int) -> Sizing:
    """A scaling (``a X``, ``x/a``, ``−x``): operand ``i``, the scaled one, prints as the
    node does (``X + 2I`` shows the size of ``I`` through the 2)."""
    def sizes(e: Expr, args: tuple[Expr, ...], fixed: bool, style: Style) -> tuple[bool, ...]:
        return tuple(fixed and k == i for k in range(len(args)))
    return sizes


SIZING: dict[Op | Form, Sizing] = {
    Op.ADD: _siblings, Op.HADAMARD: _siblings, Op.HDIV: _siblings, Op.BLOCK: _grid,
    Op.MAX: _siblings, Op.MIN: _siblings,
    Op.SCALE: _scaled(1), Form.NUMERIC: _scaled(1), Form.NEGATION: _scaled(0),
    Form.QUOTIENT: _scaled(0),
}


# ----------------------------------------------------------------------------- names

_GREEK_UNICODE = dict(zip(
    ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
     "lambda", "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi",
     "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi",
     "Psi", "Omega"],
    "αβγδεζηθικλμνξπρστυφχψωΓΔΘΛΞΠΣΥΦΨΩ", strict=True))
_GREEK = {*_GREEK_UNICODE, "varepsilon", "varphi"}


def latex_name(name: str) -> str:
    """A symbol name in LaTeX: ``H_R`` → ``H_{R}``, ``lambda`` → ``\\lambda``, ``W1`` →
    ``\\mathit{W1}``.

    >>> latex_name("H_R"), latex_name("lambda"), latex_name("x")
    ('H_{R}', '\\\\lambda', 'x')
    """
    base, _, sub = name.partition("_")
    if base in _GREEK:
        head = "\\" + base
    elif len(base) == 1:
        head = base
    else:
        head = f"\\mathit{{{base}}}"
    return f"{head}_{{{sub}}}" if sub else head


def _unicode_name(name: str) -> str:
    base, _, sub = name.partition("_")
    return _GREEK_UNICODE.get(base, base) + (f"_{sub}" if sub else "")


def _name_edges(name: str) -> tuple[Edge, Edge]:
    """A name as Unicode prints it: one letter (``x``, ``λ`` for lambda) or longer
    (``W1``, ``lam``, ``λ_1``, ``varepsilon``)."""
    edge = Edge.LETTER if len(name) == 1 or name in _GREEK_UNICODE else Edge.WORD
    return edge, edge


def _latex_name_edges(name: str) -> tuple[Edge, Edge]:
    """``x``, ``\\lambda``; ``H_{R}`` ends in a subscript and ``\\mathit{W1}`` in a group."""
    base, _, sub = name.partition("_")
    if sub:
        return word_edge(base), Edge.SUB
    if len(base) == 1:
        return Edge.LETTER, Edge.LETTER
    return (Edge.WORD, Edge.WORD) if base in _GREEK else (Edge.WORD, Edge.GROUP)


def _subscript(s: str) -> str:
    """A subscript that reads unambiguously after ``_``: ``m``, ``3``, ``(2n)``."""
    return s if s.isalnum() else f"({s})"


def _unicode_sizes(dims: list[str]) -> str:
    return "_" + "×".join(map(_subscript, dims))  # I_n, 𝟏_m×n, 0_(m - 2)×n


def _latex_sizes(dims: list[str]) -> str:
    return "_{" + ",".join(dims) + "}"


# ----------------------------------------------------------------------------- styles


@dataclass(frozen=True)
class Style:
    """One way to print: its template table, its ladder of levels, and a few glyphs."""

    name: str
    rows: Mapping[Op | Form, Template]
    ladder: Mapping[Level, int]
    brackets: tuple[str, str]
    times: str                                   # in a dimension: 2*n | 2n
    subscript: Callable[[list[str]], str]        # sizes as a subscript: _n, _{m,n}
    sizeless: frozenset[Op]                      # blocks that may print without their size
    bare_ones: bool = True                       # may 1 stand for ones(...) beside a size?
    numbers_fold: bool = False                   # is a bare 1 the number (1 + 1 = 2)?

    @cached_property
    def plan(self) -> dict[Op, tuple[tuple[tuple[Match, Row], ...], Row]]:
        """For each Op: its forms this style prints (with when each applies), and its own
        row; every row with its ``PREC`` levels ranked by the ladder."""
        def row(form: Op | Form) -> Row:
            if form not in PREC:
                raise KeyError(f"{form.name} has no PREC row")
            if form not in self.rows:
                raise KeyError(f"{form.name} has no template in the {self.name} style")
            p, rank = PREC[form], self.ladder
            return Row(form, self.rows[form], rank[p.level], rank[p.slot(0)], rank[p.slot(1)],
                       OPERANDS.get(form), SIZING.get(form))
        return {op: (tuple((applies, row(form)) for form, applies in _FORMS_OF.get(op, ())
                           if form in self.rows), row(op)) for op in Op}

    def bare(self, e: Expr) -> bool:
        """Whether ``e``, beside an operand that shows the size, may print as a bare ``I``,
        ``1`` or ``0``. The LaTeX reader learns the size of a bare ``\\mathbf{1}`` only
        after deciding the products around it, so in LaTeX the ones show their size."""
        return self.bare_ones or _unscaled(e).op is not Op.ONES


def _tex_head(name: str) -> str:
    return "\\" + name if name in TEX_HEADS else f"\\operatorname{{{name}}}"


_SUPER, _SUPERSCRIPT = Script.SUPER, str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
_POWERS = (Power("{b}{ew}^{k}", "{b}{ew}^{k}", "."),                       # X.^2, X^3, x^0.5
           Power("{b}{ew}{k}", "{b}^{k}", "∘", _SUPERSCRIPT, edge=Edge.SUB),  # X∘², X³, x^0.5
           Power("{b}^{{{ew}{k}}}", "{b}^{{{ew}{k}}}", "\\circ ", exponent=L.BRACKET))
_I = Sized("I", Subscripted("I", Edge.WORD), Edge.LETTER)                   # I, I_n, I_{n}
_BLOCK = Grid("[", ", ", "; ", "]")                                         # [A, B; C, D]
_SLICE = Postfix("[{r0}:{r1}, {c0}:{c1}]")                                  # X[0:n, 0:m]

_MATRIX_FUNCTIONS = ("expm", "logm", "sqrtm")


def _norm_row(p: str) -> tuple[Template, Template, Template]:
    """‖X‖ with a fixed subscript: ``||X||_2``, ``‖X‖_*``, ``\\left\\| X \\right\\|_{*}``."""
    return (Wrap("||{0}||_" + p), Wrap("‖{0}‖_" + p, Edge.SUB),
            Wrap("\\left\\| {0} \\right\\|_{{" + p + "}}", Edge.SUB))


def _by_extreme(head: str) -> Pick:
    """A call whose head names the extreme: ``lambda_max(S)``, ``λ_min(S)``."""
    return Pick({w: Call(head.format(w)) for w in ("max", "min")})


Column = Template | None  # None: the style has no row (a call from FUNCTIONS, or the Op's)
# One row per Op or Form: its template in (text, unicode, latex), or one for all three.
# A function call needs no row (FUNCTIONS); a row here overrides its call in a style.
TEMPLATES: dict[Op | Form, Template | tuple[Column, Column, Column]] = {
    Op.SYMBOL: (Name(str, _name_edges), Name(_unicode_name, _name_edges),
                Name(latex_name, _latex_name_edges)),                     # lambda, λ, \lambda
    Op.CONST: (Number("-"), Number("−"), Number("-", tex=True)),
    Form.FRACTION: (Number("-"), Number("−"), None),                      # 1/3 | \frac{1}{3}
    Form.NEGATIVE: (Number("-"), Number("−"), Number("-", tex=True)),
    Op.IDENTITY: (Sized("I", Call("eye"), Edge.LETTER), _I, _I),
    Op.ONES: (Sized("1", Call("ones"), Edge.DIGIT),
              Sized("𝟏", Subscripted("𝟏", Edge.CLOSED), Edge.CLOSED),
              Sized("\\mathbf{1}", Subscripted("\\mathbf{1}", Edge.CLOSED), Edge.GROUP)),
    Form.ROW_OF_ONES: (None, Subscripted("𝟏", Edge.CLOSED, "ᵀ"),
                       Subscripted("\\mathbf{1}", Edge.CLOSED, "^{T}")),
    Op.ZERO: (Sized("0", Call("zeros"), Edge.DIGIT),
              Sized("0", Subscripted("0", Edge.DIGIT), Edge.DIGIT),
              Sized("\\mathbf{0}", Subscripted("\\mathbf{0}", Edge.CLOSED), Edge.GROUP)),
    Op.COMMUTATION: (Call("K"), Call("K"), Subscripted("K", Edge.WORD)),   # K(m, n), K_{m,n}
    Op.ADD: (Sum(" + ", " - ", "-"), Sum(" + ", " − ", "−"), Sum(" + ", " - ", "-")),
    Op.SCALE: (Juxt("*"), Juxt(None), Juxt(" ")),
    Form.NUMERIC: (Juxt("*"), Juxt(None), Juxt(" ")),
    Form.NEGATION: (Prefix("-"), Prefix("−"), Prefix("-")),
    Form.QUOTIENT: (Infix("/"), Infix("/"), Wrap("\\frac{{{0}}}{{{1}}}", Edge.GROUP)),
    Form.BROADCAST: Same(),
    Op.MATMUL: (Juxt("*"), Juxt(None), Juxt(" ")),
    Op.HADAMARD: (Infix(" .* "), Infix(" ⊙ "), Infix(" \\odot ")),
    Op.HDIV: (Infix(" ./ "), Infix(" ⊘ "), Infix(" \\oslash ")),
    Op.KRON: (Call("kron"), Infix(" ⊗ "), Infix(" \\otimes ")),
    Op.TRANSPOSE: (Postfix("'"), Postfix("ᵀ", _SUPER), Postfix("^{T}", _SUPER)),
    Form.T_INV: (None, Postfix("⁻ᵀ", _SUPER), Postfix("^{-T}", _SUPER)),
    Form.ADJOINT: (Postfix("'"), Postfix("ᴴ", _SUPER), Postfix("^{H}", _SUPER)),
    Form.PLAIN_T: (Postfix(".'"), Postfix("ᵀ", _SUPER), Postfix("^{T}", _SUPER)),
    Op.CONJ: (Call("conj"), Postfix("\u0304"), Wrap("\\overline{{{0}}}", Edge.GROUP)),
    Op.IMAG_UNIT: (Wrap("1i"), Wrap("i", Edge.LETTER), Wrap("\\mathrm{{i}}", Edge.GROUP)),
    Op.REAL: (None, Call("Re"), Call("\\Re")),
    Op.IMAG: (None, Call("Im"), Call("\\Im")),
    Op.ANGLE: (None, Call("arg"), None),                                 # \operatorname{angle}
    Op.INV: (Call("inv"), Postfix("⁻¹", _SUPER), Postfix("^{-1}", _SUPER)),
    Form.INV_T: (None, Postfix("⁻ᵀ", _SUPER), None),      # LaTeX: \left(X^{T}\right)^{-1}
    Op.POW: _POWERS,
    Op.MATPOW: _POWERS,
    Form.MATPOW_INV: (None, *_POWERS[1:]),                 # X⁻², X^{-2}
    Op.BLOCK: (_BLOCK, _BLOCK, Grid("\\begin{bmatrix} ", " & ", " \\\\ ", " \\end{bmatrix}",
                                    Edge.GROUP)),
    Op.SLICE: (_SLICE, _SLICE, Postfix("_{{[{r0}:{r1},\\,{c0}:{c1}]}}", Script.TEX_SUB)),
    Op.NORM: (Wrap("||{0}||_{p}"), Wrap("‖{0}‖_{p}", Edge.SUB),
              Wrap("\\left\\| {0} \\right\\|_{{{p}}}", Edge.SUB)),
    Op.LOGDET: (None, Call("log det"), Call("\\log\\det")),
    Op.SIGMOID: (None, Call("σ"), None),
    Op.SQRT: (None, None, Wrap("\\sqrt{{{0}}}", Edge.GROUP)),
    Op.EXPM: (None, None, Wrap("e^{{{0}}}", Edge.SUP)),                   # expm(X) | e^{X}
    Op.SQRTM: (Call("sqrtm"), Postfix("^½", _SUPER), Postfix("^{1/2}", _SUPER)),
    Form.INV_SQRTM: (None, Postfix("^-½", _SUPER), Postfix("^{-1/2}", _SUPER)),
    Op.PINV: (Call("pinv"), Postfix("⁺", _SUPER), Postfix("^{+}", _SUPER)),
    Op.SPECTRAL_NORM: _norm_row("2"),
    Op.NUCLEAR_NORM: _norm_row("*"),
    Op.INF_NORM: (Wrap("||{0}||_inf"), Wrap("‖{0}‖_∞", Edge.SUB),
                  Wrap("\\left\\| {0} \\right\\|_{{\\infty}}", Edge.SUB)),
    Op.EIGVAL: (_by_extreme("lambda_{}"), _by_extreme("λ_{}"),
                _by_extreme("\\lambda_{{\\{}}}")),                   # \lambda_{\max}
    Op.EIGVEC: (_by_extreme("eigvec_{}"), _by_extreme("eigvec_{}"),
                _by_extreme("\\operatorname{{eigvec_{}}}")),
    Op.FRECHET: (Pick({f: Call(f + "_frechet") for f in _MATRIX_FUNCTIONS}),
                 Pick({f: Call(f"L_{f[:-1]}") for f in _MATRIX_FUNCTIONS}),        # L_exp(A, E)
                 Pick({"expm": Call("L_{\\exp}"), "logm": Call("L_{\\log}"),
                       "sqrtm": Call("L_{\\mathrm{sqrt}}")})),
}


def _column(i: int, head: Callable[[str], str]) -> dict[Op | Form, Template]:
    """Style ``i``'s table: a call per function (its head written by ``head``), then the
    ``TEMPLATES`` column."""
    rows: dict[Op | Form, Template] = {op: Call(head(name)) for op, name in FUNCTIONS.items()}
    for form, row in TEMPLATES.items():
        template = row[i] if isinstance(row, tuple) else row
        if template is not None:
            rows[form] = template
    return rows


TEXT, UNICODE, LATEX = _column(0, str), _column(1, str), _column(2, _tex_head)
STYLES: dict[str, Style] = {
    "text": Style("text", TEXT, TEXT_LADDER, ("(", ")"), "*", _unicode_sizes,
                  frozenset({Op.ZERO}), numbers_fold=True),
    "unicode": Style("unicode", UNICODE, PAPER_LADDER, ("(", ")"), "", _unicode_sizes,
                     frozenset({Op.ZERO, Op.ONES})),
    "latex": Style("latex", LATEX, PAPER_LADDER, ("\\left(", "\\right)"), "", _latex_sizes,
                   frozenset({Op.ZERO, Op.ONES}), bare_ones=False),
}


# ----------------------------------------------------------------------------- render


class _Renderer:
    """Prints the nodes of one expression in one style, each once per sizing (memo)."""

    def __init__(self, style: Style):
        self.style = style
        self.plan = style.plan
        self.atom = style.ladder[L.ATOM]
        self.memo: tuple[dict[Expr, Piece], dict[Expr, Piece]] = ({}, {})

    def rank(self, level: Level) -> int:
        return self.style.ladder[level]

    def dim(self, d: Dim) -> str:
        return d.format(self.style.times)

    def fields(self, n: Node) -> dict[str, str]:
        make = FIELDS.get(n.row.form)  # type: ignore[call-overload]
        return make(n.e, self.dim) if make else {}

    def sizes(self, n: Node) -> Sequence[Dim]:
        """The sizes a leaf or a call shows (``SIZES``): ``eye(n)``, ``K(m, n)``."""
        make = SIZES.get(n.row.form)  # type: ignore[call-overload]
        return make(n.e) if make else ()

    def negated(self, t: Expr, fixed: bool) -> Piece:
        """−t printed for the slot after a minus sign."""
        return self.slot(_expr.neg(t), self.rank(PREC[Form.NEGATION].first), fixed)

    def piece(self, e: Expr, fixed: bool = False) -> Piece:
        memo = self.memo[fixed]
        p = memo.get(e)
        if p is None:
            forms, row = self.plan[e.op]
            for applies, candidate in forms:  # the first form of e's Op that applies
                if applies(e, fixed):
                    row = candidate
                    break
            args = row.operands(e) if row.operands else e.args
            sizes = row.sizing(e, args, fixed, self.style) if row.sizing else \
                (False,) * len(args)
            p = memo[e] = row.template.fill(self, Node(e, row, args, sizes, fixed))
        return p

    def slot(self, e: Expr, need: int, fixed: bool = False,
             script: Script = Script.PLAIN) -> Piece:
        """``e`` printed for a slot that needs the rank ``need``: parenthesised below it,
        and where a superscript would follow a superscript (``(Xᵀ)²``, not ``Xᵀ²``)."""
        p = self.memo[fixed].get(e) or self.piece(e, fixed)
        if p.level < need or script is Script.SUPER and p.right is Edge.SUP:
            opening, closing = self.style.brackets
            return Piece(f"{opening}{p.text}{closing}", self.atom)
        return p

    def operand(self, n: Node, i: int, bracketed: bool = False,
                script: Script = Script.PLAIN) -> Piece:
        """Operand ``i`` of ``n`` at its slot's level in ``PREC`` (anything where the
        template brackets it)."""
        need = 0 if bracketed else n.row.first if i == 0 else n.row.rest
        return self.slot(n.args[i], need, n.sizes[i], script)


def render(e: Expr, style: str | Style = "text") -> str:
    """Print ``e`` in one of the styles "text", "unicode", "latex" (or a ``Style`` of one's
    own, such as a copy of one of ``STYLES`` with other rows).

    >>> from matdiff.expr import sym
    >>> render(sym("W1", ("m", "n")) @ sym("x", ("n",)), "unicode")
    'W1 x'
    """
    if isinstance(style, str) and style not in STYLES:
        raise ValueError(f"unknown style {style!r}")
    r = _Renderer(STYLES[style] if isinstance(style, str) else style)
    for node in _expr.toposort([e]):  # children first: printing a deep DAG never recurses deeply
        r.piece(node)
    return r.piece(e).text


def terms(e: Expr, style: str = "text") -> list[str]:
    """The terms of a sum as ``render`` prints them, each with the sign before it, so that
    a long result can be broken between terms; any other expression is one term.

    >>> from matdiff.expr import sym
    >>> A, B = sym("A", ("n", "n")), sym("B", ("n", "n"))
    >>> terms(A - 2 * B.T + B, "unicode")
    ['A', ' − 2Bᵀ', ' + B']
    """
    style_ = STYLES[style]
    template = style_.rows[Op.ADD]
    if e.op is not Op.ADD or not isinstance(template, Sum):
        return [render(e, style)]
    r = _Renderer(style_)
    for node in _expr.toposort([e]):
        r.piece(node)
    n = Node(e, style_.plan[Op.ADD][1], e.args, _siblings(e, e.args, False, style_), False)
    return [sign + p.text for sign, p in template.terms(r, n)]


def to_text(e: Expr) -> str:
    """ASCII that ``matdiff.parse`` reads back to the same expression.

    >>> from matdiff.expr import sym
    >>> A, x = sym("A", ("n", "n")), sym("x", ("n",))
    >>> to_text(x.T @ A @ x), to_text(2 * (A - A.T))
    ("x'*A*x", "2*(A - A')")
    """
    return render(e, "text")


def to_unicode(e: Expr) -> str:
    """Unicode for reading: ``2Aᵀ(AXB − C)Bᵀ``, ``‖X‖_F²``, ``X⁻¹``.

    >>> from matdiff.expr import sym, inv
    >>> X, x = sym("X", ("n", "n")), sym("x", ("n",))
    >>> to_unicode(2 * inv(X).T @ x)
    '2X⁻ᵀx'
    """
    return render(e, "unicode")


def to_latex(e: Expr) -> str:
    """LaTeX for papers: ``A^{T}``, ``\\odot``, ``\\otimes``, ``\\left\\| X \\right\\|_{F}``.

    >>> from matdiff.expr import sym, hadamard, eye
    >>> X = sym("X", ("n", "n"))
    >>> to_latex(hadamard(eye("n"), X.T @ X))
    'I \\\\odot \\\\left(X^{T} X\\\\right)'
    """
    return render(e, "latex")


def format_dim(d: Dim, style: str = "text") -> str:
    """A dimension as text (``2*n``) or for display (``2n``).

    >>> format_dim(2 * Dim.var("n"), "unicode")
    '2n'
    """
    return d.format("*" if style == "text" else "")


def format_shape(shape: tuple[Dim, Dim], style: str = "unicode") -> str:
    """``m×n``; a column vector shows its length alone, a scalar as ``scalar``.

    >>> format_shape((Dim.var("m"), Dim.var("n")))
    'm×n'
    """
    if shape == (ONE, ONE):
        return "scalar"
    if shape[1] == ONE:
        return format_dim(shape[0], style)
    sep = "x" if style == "text" else "×"
    return f"{format_dim(shape[0], style)}{sep}{format_dim(shape[1], style)}"


FORMATS: dict[str, Callable[[Expr], str]] = {"text": to_text, "unicode": to_unicode,
                                             "latex": to_latex}

_expr._STR_HOOK[0] = to_text
