r"""LaTeX math to a syntax tree (``matdiff.syntax.Node``): the tree the ASCII grammar makes.

Input: LaTeX as pasted from a paper or a Q&A post, bare or inside ``$ $``, ``$$ $$``,
``\[ \]``, ``\( \)`` or an ``equation`` environment, e.g.
``\left\| Z - I\odot(H_R^TA) \right\|_F^2``. Output: a ``Node`` tree whose spans are offsets
into the original text. Contract: every malformed input (an unbalanced ``\left``, an unknown
command, a missing ``}``) raises ``MatdiffError`` with ``pos`` and ``text`` set; no other
exception escapes.

Reading conventions (the grammar is ``latex.lark``):

* symbols are single letters with an optional subscript (``H_R``, ``x_{ij}``), Greek letters
  by name (``\lambda`` is ``lambda``); ``\mathbf``/``\boldsymbol``/``\bm`` name the same
  symbol as the plain letter; ``\mathbf{1}`` is ``ones()``, ``\mathbf{0}`` the number 0,
  and with a size subscript (``\mathbf{1}_{m,n}``) ``ones(m, n)``, ``zeros(m, n)``;
* juxtaposition is the product and binds tighter than ``\cdot \times \odot \circ \oslash
  \otimes \oplus``; a function without parentheses takes the rest of the product
  (``\operatorname{tr} X^TAX`` is ``tr(X'*A*X)``), with parentheses only those;
* ``^T ^\top ^{\mathsf T} ^\intercal '`` transpose, ``^{-1}`` inverts, ``^{-T}`` both;
  ``e^{x}`` is ``exp(x)`` (``e`` with a subscript or transposed stays a symbol);
* ``\|x\|`` and ``|x|`` open or close by position: a bar right after an operand closes
  the innermost bar of its kind; ``\left``/``\right``, ``\lVert``/``\rVert`` say it outright.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from fractions import Fraction
from importlib import resources
from typing import Any

from lark import Lark, Token, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.visitors import Transformer_NonRecursive

from .expr import MatdiffError, Op
from .syntax import (
    FILLS,
    FUNCTIONS,
    LATEX_APPLIED,
    LATEX_FUNCTIONS,
    LATEX_PAIRS,
    Node,
    arity_message,
    call_counts,
    call_name,
    canonical_function,
    frobenius,
    norm_subscript,
    span_of,
)

__all__ = ["imaginary_units", "IMAGINARY_UNIT", "parse_latex", "looks_like_latex",
           "MAX_LENGTH", "MAX_DEPTH"]

MAX_LENGTH = 100_000     # characters
MAX_DEPTH = 200          # nesting of delimiters and environments

_RAW = ("RAW_BEGIN_ARRAY", "RAW_BEGIN", "RAW_END", "RAW_NAMED", "RAW_OLDNAMED", "RAW_BOLD",
        "RAW_CMD", "RAW_WORD", "RAW_LETTER", "RAW_NUMBER", "RAW_CHAR")


IMAGINARY_UNIT = "\\imath"   # the SYM of \mathrm{i} and \imath


def _bar_groups(toks: list[Token]) -> list[Token]:
    """``\\bar{X}``, ``\\overline{AB}``, ``\\bar X``: the conjugate of exactly that group
    (or letter), written as a call ``conj(...)``."""
    out = list(toks)
    for i in range(len(out) - 1):
        t, nxt = out[i], out[i + 1]
        if t.type != "FUNC" or str(t) != call_name(Op.CONJ):
            continue
        if nxt.type == "SYM":                                       # \bar X
            out[i + 1:i + 2] = [Token.new_borrow_pos("_LPAR", "(", nxt), nxt,
                                Token.new_borrow_pos("_RPAR", ")", nxt)]
        elif nxt.type == "_LBRACE":                                 # \bar{...}
            depth = 0
            for j in range(i + 1, len(out)):
                depth += {"_LBRACE": 1, "_RBRACE": -1}.get(out[j].type, 0)
                if depth == 0:
                    out[i + 1] = Token.new_borrow_pos("_LPAR", "(", nxt)
                    out[j] = Token.new_borrow_pos("_RPAR", ")", out[j])
                    break
    return out


def imaginary_units(tree: Node) -> Node:
    """The tree with every name ``i`` as the imaginary unit (LaTeX, where ``i`` is not
    declared a variable)."""
    done: dict[int, Node] = {}
    stack: list[tuple[Node, bool]] = [(tree, False)]
    while stack:
        node, ready = stack.pop()
        if ready:
            args = tuple(done[id(a)] if isinstance(a, Node) else a for a in node.args)
            done[id(node)] = Node("imag", (), Fraction(1), node.start, node.end) \
                if node.kind == "name" and node.value == "i" else \
                node if args == node.args else dataclasses.replace(node, args=args)
        else:
            stack.append((node, True))
            stack.extend((a, False) for a in node.args if isinstance(a, Node))
    return done[id(tree)]


class _KeepRaw:
    """Lark drops terminals no rule uses; the raw pieces are used by ``_Cook`` instead."""

    always_accept = _RAW

    def process(self, stream: Iterable[Token]) -> Iterable[Token]:
        return stream


_PARSER = Lark(resources.files(__package__).joinpath("latex.lark").read_text(),
               parser="lalr", lexer="basic", propagate_positions=True, postlex=_KeepRaw())

# ----------------------------------------------------------------------------- command table

GREEK = frozenset(
    "alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu "
    "nu xi pi varpi rho varrho sigma varsigma tau upsilon phi varphi chi psi omega Gamma "
    "Delta Theta Lambda Xi Pi Sigma Upsilon Phi Psi Omega ell".split())
_SPACING = frozenset(", ; : ! > quad qquad displaystyle textstyle hline nonumber".split()
                     + [" "])
# f^{-1} of these LaTeX functions is the inverse function, as in \sin^{-1}(x) = arcsin x
INVERSE_FUNCTIONS = {Op.SIN: Op.ARCSIN, Op.COS: Op.ARCCOS, Op.TAN: Op.ARCTAN,
                     Op.SINH: Op.ARCSINH}


def _inverse_end(raw: list[Token], i: int) -> int | None:
    """The index after ``^{-1}`` or ``^-1`` that follows raw[i], else None."""
    texts = [str(t) for t in raw[i + 1:i + 6]]
    if texts[:5] == ["^", "{", "-", "1", "}"]:
        return i + 6
    if texts[:3] == ["^", "-", "1"]:
        return i + 4
    return None


_SIZES = ("big", "Big", "bigg", "Bigg")
_SIZING = {s + m: m or "big" for s in _SIZES for m in ("", "l", "r", "m")}
_BINOP = {"cdot": "mul", "times": "mul", "ast": "mul", "div": "div", "odot": "hadamard",
          "circ": "hadamard", "oslash": "hdiv", "otimes": "kron", "oplus": "oplus"}
_SIMPLE = {"top": ("TRANS", "T"), "intercal": ("TRANS", "T"), "prime": ("PRIME", "'"),
           "frac": ("FRAC", "frac"), "tfrac": ("FRAC", "frac"), "dfrac": ("FRAC", "frac"),
           "cfrac": ("FRAC", "frac"), "sqrt": ("SQRT", "sqrt"), "dagger": ("TRANS", "+")}
_HINTS = {"sum": "sums with limits are not supported; \\sum x is the sum of the entries",
          "mathcal": "write the plain letter",
          "infty": "the infinity norm is \\|x\\|_\\infty",
          **{k: "paste the objective alone" for k in ("min", "max", "arg", "argmin", "argmax")},
          **{k: "paste the expression alone" for k in ("in", "le", "leq", "ge", "geq")}}
# delimiter text -> (kind, side); side "either" is decided by position
_DELIMS = {"(": ("paren", "open"), ")": ("paren", "close"), "[": ("sqb", "open"),
           "]": ("sqb", "close"), "\\lbrack": ("sqb", "open"), "\\rbrack": ("sqb", "close"),
           "\\{": ("set", "open"), "\\}": ("set", "close"), "\\lbrace": ("set", "open"),
           "\\rbrace": ("set", "close"), "|": ("abs", "either"), "\\vert": ("abs", "either"),
           "\\lvert": ("abs", "open"), "\\rvert": ("abs", "close"), "\\|": ("norm", "either"),
           "\\Vert": ("norm", "either"), "\\lVert": ("norm", "open"),
           "\\rVert": ("norm", "close"), "{": ("brace", "open"), "}": ("brace", "close"),
           "\\langle": ("angle", "open"), "\\rangle": ("angle", "close")}
_OPEN = {"paren": "_LPAR", "sqb": "_LSQB", "set": "_LSET", "brace": "_LBRACE",
         "norm": "NORM_OPEN", "abs": "ABS_OPEN", "angle": "_LANGLE"}
_CLOSE = {"paren": "_RPAR", "sqb": "_RSQB", "set": "_RSET", "brace": "_RBRACE",
          "norm": "NORM_CLOSE", "abs": "ABS_CLOSE", "angle": "_RANGLE"}
_CHAR = {"+": ("_PLUS", "+"), "-": ("_MINUS", "-"), "*": ("BINOP", "mul"),
         "/": ("BINOP", "div"), "'": ("PRIME", "'"), ",": ("_COMMA", ","),
         "^": ("_CARET", "^"), "_": ("_USCORE", "_"), ":": ("_COLON", ":")}
_ENVS = frozenset("matrix pmatrix bmatrix Bmatrix vmatrix smallmatrix array".split())
# what may end an operand: a bar right after one of these closes
_OPERAND_END = frozenset("SYM NUMBER ONES ZERO SUBTOK _RPAR _RSQB _RSET _RBRACE NORM_CLOSE "
                         "ABS_CLOSE END PRIME TRANS".split())
_TRANSPOSE_WORDS = frozenset(["T", "\\top", "\\intercal"])
# functions written as a name with a subscript: \lambda_{\max}(S), L_{\exp}(A, E)
SCRIPTED = {"\\lambda": {"max": "lambda_max", "min": "lambda_min"},
             "L": {"exp": "expm_frechet", "log": "logm_frechet", "sqrt": "sqrtm_frechet"}}


def _span(t: Token) -> tuple[int, int]:
    """A token's ``[start, end)``: Lark types the positions optional, but its lexer and
    ``_tok`` always set them."""
    assert t.start_pos is not None and t.end_pos is not None
    return t.start_pos, t.end_pos


def _tok(kind: str, value: str, start: int, end: int) -> Token:
    return Token(kind, value, start_pos=start, end_pos=end, line=1, column=start + 1,
                 end_line=1, end_column=end + 1)


def _paren_follows(raw: list[Token], i: int) -> bool:
    """Whether ``(`` (maybe after ``\\left`` or ``\\big``) follows the piece ``raw[i]``."""
    j = i + 1
    if j < len(raw) and str(raw[j])[1:] in ("left", *_SIZING):
        j += 1
    return j < len(raw) and str(raw[j]) == "("


class _Cook:
    """Raw lexer pieces to the parser's terminals: the command table, delimiter pairing,
    subscript text, ``\\log\\det``, and ``FUNC_P`` for a function followed by a bracket."""

    def __init__(self, text: str, functions: frozenset[str], variables: frozenset[str]):
        self.text = text
        self.functions = functions
        self.variables = variables      # declared names: \sigma(z) is then sigma*z
        self.out: list[Token] = []
        # open delimiters: (kind, how, start, end, is_subscript_brace); how: plain|left|env
        self.stack: list[tuple[str, str, int, int, bool]] = []

    def fail(self, message: str, start: int, end: int | None = None) -> MatdiffError:
        return MatdiffError(message, pos=start, end=end, text=self.text)

    def emit(self, kind: str, value: str, start: int, end: int) -> None:
        if kind in ("SYM", "NUMBER", "WORD") and self._in_subscript():
            kind = "SUBTOK"
        elif kind == "WORD":
            raise self.fail(f"'{self.text[start:end]}' is not a function or symbol matdiff "
                            "knows", start, end)
        self.out.append(_tok(kind, value, start, end))

    def _in_subscript(self) -> bool:
        if self.out and self.out[-1].type == "_USCORE":
            return True
        return bool(self.stack) and self.stack[-1][4]

    def run(self, raw: list[Token]) -> list[Token]:
        i = 0
        while i < len(raw):
            i = self.step(raw, i)
        if self.stack:
            kind, how, start, end, _ = self.stack[-1]
            opener = self.text[start:end]
            if how == "env":
                raise self.fail(f"'{opener}' has no matching '\\end{{{kind[4:]}}}'", start, end)
            if how == "left":
                raise self.fail(f"'{opener}' has no matching '\\right'", start, end)
            closer = {"brace": "}", "paren": ")", "sqb": "]", "angle": "\\rangle"}.get(kind, opener)
            raise self.fail(f"'{opener}' is never closed (missing '{closer}')", start, end)
        return self.finish(self.out)

    def step(self, raw: list[Token], i: int) -> int:
        t = raw[i]
        kind, value, (start, end) = t.type, str(t), _span(t)
        scripted = self.scripted_function(raw, i)
        if scripted is not None:
            return scripted
        if value == "|" and i + 1 < len(raw) and str(raw[i + 1]) == "|" \
                and _span(raw[i + 1])[0] == end:                    # ||x||_\infty is \|x\|
            self.delimiter(None, "\\|", start, start, _span(raw[i + 1])[1])
            return i + 2
        if kind == "RAW_LETTER":
            self.emit("SYM", value, start, end)
        elif kind == "RAW_NUMBER":
            self.number(value, start)
        elif kind == "RAW_CHAR":
            self.char(value, start, end)
        elif kind == "RAW_CMD":
            return self.command(raw, i)
        elif kind == "RAW_WORD":
            self.word(value, start)
        elif kind in ("RAW_NAMED", "RAW_OLDNAMED"):
            self.named(value, start, end)
        elif kind == "RAW_BOLD":
            self.bold(value, start, end)
        else:
            self.environment(kind, value, start, end)
        return i + 1

    def number(self, value: str, start: int) -> None:
        prev = self.out[-1].type if self.out else ""
        pieces = [value]
        if prev in ("_CARET", "_USCORE"):
            pieces = [value[:1], value[1:]]                 # TeX: x^12 is x^1 2
        elif prev == "FRAC" and value.isdigit():
            pieces = [value[:1], value[1:2], value[2:]]     # TeX: \frac123 is (1/2) 3
        for piece in filter(None, pieces):
            if piece == ".":                                # x^2. is x^2 then a lone dot
                raise self.fail("unexpected '.'", start, start + 1)
            self.emit("NUMBER", piece, start, start + len(piece))
            start += len(piece)

    def char(self, value: str, start: int, end: int) -> None:
        if value in _DELIMS:
            self.delimiter(None, value, start, start, end)
        elif value in ",+-*" and self.stack and self.stack[-1][4] or \
                value == "*" and self.out and self.out[-1].type == "_USCORE":   # \|X\|_*
            self.emit("SUBTOK", value, start, end)     # \mathbf{1}_{m,n}, \mathbf{1}_{m + 2n}
        elif value == ":" and not any(entry[4] for entry in self.stack):
            self.emit("FROB", value, start, end)            # A : B, not in X_{[0:n, 0:m]}
        elif value == "*" and self._after_caret():                   # X^*, X^{*}: Xᴴ
            self.emit("TRANS", "H", start, end)
        elif value in _CHAR:
            self.emit(*_CHAR[value], start, end)
        elif value == "&":
            self.require_env("'&'", start, end)
            self.emit("_AMP", "&", start, end)
        elif value in "=<>":
            raise self.fail(f"unexpected '{value}': paste the expression alone", start, end)
        else:
            raise self.fail(f"unexpected character '{value}'", start, end)

    def _after_caret(self) -> bool:
        """Whether the next piece is a superscript: after ``^`` or ``^{``."""
        kinds = [t.type for t in self.out[-2:]]
        return kinds[-1:] == ["_CARET"] or kinds == ["_CARET", "_LBRACE"]

    def require_env(self, what: str, start: int, end: int) -> None:
        if not self.stack or self.stack[-1][1] != "env":
            raise self.fail(f"{what} outside a matrix environment", start, end)

    def scripted_function(self, raw: list[Token], i: int) -> int | None:
        """A function written as a subscripted name, ``\\lambda_{\\max}`` (``lambda_max``) or
        ``L_{\\exp}`` (the Fréchet derivative ``expm_frechet``): emits it and returns the
        index after it; None for anything else."""
        head = str(raw[i])
        if head not in SCRIPTED or i + 2 >= len(raw) or str(raw[i + 1]) != "_":
            return None
        j, sub = i + 2, str(raw[i + 2])
        if sub == "{" and i + 4 < len(raw) and str(raw[i + 4]) == "}":
            j, sub = i + 3, str(raw[i + 3])
        name = SCRIPTED[head].get(re.sub(r"\\(mathrm|text|operatorname)\s*\{(\w+)\}", r"\2",
                                          sub).lstrip("\\"))
        if name is None:
            return None
        end = _span(raw[j + 1 if j == i + 3 else j])[1]
        self.emit("FUNC", name, _span(raw[i])[0], end)
        return j + 2 if j == i + 3 else j + 1

    def command(self, raw: list[Token], i: int) -> int:
        t = raw[i]
        name, (start, end) = str(t)[1:], _span(t)
        if name in _SPACING:
            return i + 1
        if name in ("left", "right") or name in _SIZING:
            if i + 1 >= len(raw) or self.delim_text(raw[i + 1]) is None:
                raise self.fail(f"'\\{name}' must be followed by a delimiter", start, end)
            nxt = raw[i + 1]
            how = _SIZING.get(name, name)
            self.delimiter(how, self.delim_text(nxt) or "", start, *_span(nxt))
            return i + 2
        if "\\" + name in _DELIMS:
            self.delimiter(None, "\\" + name, start, start, end)
        elif name == "\\":
            self.require_env("'\\\\'", start, end)
            self.emit("_ROWSEP", "\\\\", start, end)
        elif name == "ast" and self._in_subscript():                 # \|X\|_{\ast}
            self.emit("SUBTOK", "*", start, end)
        elif name == "infty" and self._in_subscript():               # \|x\|_\infty
            self.emit("SUBTOK", "inf", start, end)
        elif name == "ast" and self._after_caret():                  # X^{\ast}: Xᴴ
            self.emit("TRANS", "H", start, end)
        elif name in ("bar", "overline"):                            # \bar{X}: conj(X)
            self.emit("FUNC", call_name(Op.CONJ), start, end)
        elif name == "imath":                                        # the unit i
            self.emit("SYM", IMAGINARY_UNIT, start, end)
        elif name in _BINOP:
            self.emit("BINOP", _BINOP[name], start, end)
        elif name == "sqrt" and i + 1 < len(raw) and str(raw[i + 1]) == "[":
            self.emit("ROOT", name, start, end)                     # \sqrt[n]{x}
        elif name in _SIMPLE:
            self.emit(*_SIMPLE[name], start, end)
        elif name in self.functions:
            self.emit("FUNC", call_name(Op.SIGMOID), start, end)
        elif name in LATEX_FUNCTIONS and name in _HINTS and i + 1 < len(raw) \
                and str(raw[i + 1]) == "_":                 # \min_X f: a problem, not min(X, Y)
            raise self.fail(f"'\\{name}_' is an optimisation problem ({_HINTS[name]}); "
                            f"\\{name}(X, Y) is the elementwise {name}", start, end)
        elif name in LATEX_FUNCTIONS and (j := _inverse_end(raw, i)) is not None:
            return self.inverse_function(name, start, _span(raw[j - 1])[1], j)
        elif name in LATEX_APPLIED and name not in self.variables and _paren_follows(raw, i):
            self.emit("FUNC", call_name(LATEX_APPLIED[name]), start, end)   # \sigma(Xw)
        elif name in LATEX_FUNCTIONS:                       # \det, \tr, \sgn: from OPS
            self.emit("FUNC", call_name(LATEX_FUNCTIONS[name]), start, end)
        elif name in GREEK:
            self.emit("SYM", name, start, end)
        elif name == "sum" and (i + 1 >= len(raw) or str(raw[i + 1]) not in "_^"):
            self.emit("FUNC", call_name(Op.SUM), start, end)   # \sum x: the sum of entries
        else:
            hint = f" ({_HINTS[name]})" if name in _HINTS else ""
            raise self.fail(f"unknown command '\\{name}'{hint}", start, end)
        return i + 1

    def inverse_function(self, name: str, start: int, end: int, after: int) -> int:
        """``\\sin^{-1}``, ``\\sinh^{-1}``: the inverse function (``INVERSE_FUNCTIONS``), never
        a reciprocal; ``after`` is the index after the ``^{-1}``."""
        op = INVERSE_FUNCTIONS.get(LATEX_FUNCTIONS[name])
        if op is None:
            raise self.fail(f"'\\{name}^{{-1}}' is the inverse function of {name}, which "
                            "matdiff lacks; write 1/... for the reciprocal", start, end)
        self.emit("FUNC", call_name(op), start, end)
        return after

    @staticmethod
    def delim_text(t: Token) -> str | None:
        """The delimiter a raw piece is, if it is one (``.`` is the null delimiter)."""
        s = str(t)
        if t.type == "RAW_CHAR" and (s in _DELIMS or s == "."):
            return s
        if t.type == "RAW_CMD" and s in _DELIMS:
            return s
        return None

    def delimiter(self, how: str | None, delim: str, start: int, dstart: int, dend: int) -> None:
        """One delimiter, maybe after ``\\left``, ``\\right``, ``\\bigl``... (``how``)."""
        if delim == "." or delim not in _DELIMS:
            raise self.fail(f"the delimiter '{self.text[start:dend]}' is not supported",
                            start, dend)
        kind, side = _DELIMS[delim]
        if kind == "brace" and how is not None:
            raise self.fail(f"'{self.text[start:dend]}' is not a delimiter; write \\{delim}",
                            start, dend)
        pairing = "left" if how in ("left", "right") else "plain"
        if how in ("left", "l"):
            if side == "close":
                raise self.fail(f"'{self.text[start:dend]}' opens with a closing delimiter",
                                start, dend)
            side = "open"
        elif how in ("right", "r"):
            if side == "open":
                raise self.fail(f"'{self.text[start:dend]}' closes with an opening delimiter",
                                start, dend)
            side = "close"
        elif side == "either":
            top = self.stack[-1] if self.stack else None
            closes = (top is not None and top[0] == kind and top[1] == "plain"
                      and bool(self.out) and self.out[-1].type in _OPERAND_END)
            side = "close" if closes else "open"
        if side == "open":
            if len(self.stack) >= MAX_DEPTH:
                raise self.fail(f"nesting deeper than {MAX_DEPTH} levels", start, dend)
            if kind == "paren" and len(self.out) >= 2 and self.out[-1].type == "_LBRACE" \
                    and self.out[-2].type == "_CARET":
                raise self.fail("a superscript in parentheses is an index, not a power; "
                                "name the symbol instead (x_k)", start, dend)
            sub_brace = kind == "brace" and bool(self.out) and self.out[-1].type == "_USCORE"
            self.emit(_OPEN[kind], delim, start, dend)
            self.stack.append((kind, pairing, start, dend, sub_brace))
            return
        closer = self.text[start:dend]
        if not self.stack:
            raise self.fail(f"'{closer}' has no matching opening delimiter", start, dend)
        okind, ohow, ostart, oend, _ = self.stack[-1]
        opener = self.text[ostart:oend]
        if ohow == "env":
            raise self.fail(f"'{closer}' inside '{opener}' closes nothing", start, dend)
        if ohow != pairing:
            want = "\\right" if ohow == "left" else "a plain closing delimiter, no \\right"
            raise self.fail(f"'{closer}' cannot close '{opener}' (expected {want})", start, dend)
        if okind != kind:
            raise self.fail(f"'{closer}' does not match '{opener}'", start, dend)
        self.stack.pop()
        self.out.append(_tok(_CLOSE[kind], delim, start, dend))

    def named(self, value: str, start: int, end: int) -> None:
        """``\\operatorname{tr}``, ``\\mathrm{Tr}``, ``\\text{tr}``, ``\\mathsf T``, ``{\\rm tr}``:
        a function, the transpose mark, a letter, or a word for a subscript."""
        m = re.match(r"\{?\s*\\([a-zA-Z]+\*?)\s*\{?\s*(.*?)\s*\}?\s*\}?$", value, re.S)
        cmd, content = (m.group(1), m.group(2)) if m else ("", value)
        if content in _TRANSPOSE_WORDS:
            self.emit("TRANS", "T", start, end)
            return
        fname = canonical_function(content) if content in FUNCTIONS or content in FILLS else \
            call_name(LATEX_FUNCTIONS[content]) if content in LATEX_FUNCTIONS else ""
        if cmd == "mathit" and re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", content):
            self.emit("SYM", content, start, end)       # an italic name: \mathit{lam}, \mathit{W1}
        elif len(content) > 1 and fname:
            self.emit("FUNC", fname, start, end)
        elif cmd.startswith("operatorname"):
            raise self.fail(f"unknown function '{value}'", start, end)
        elif content == "i" and cmd in ("mathrm", "text", "textrm", "textup", "textnormal"):
            self.emit("SYM", IMAGINARY_UNIT, start, end)             # \mathrm{i}: the unit
        elif len(content) == 1 and content.isalpha():
            self.emit("SYM", content, start, end)
        elif re.fullmatch(r"[A-Za-z0-9]+", content):
            self.emit("WORD", content, start, end)
        else:
            raise self.fail(f"'{value}' is not supported", start, end)

    def word(self, value: str, start: int) -> None:
        """A word before a bracket: a function written without its backslash, as in text
        mixing ASCII and LaTeX (``trace(X^T X)``, ``log(x^T x)``, ``sigmoid(w^T x)``);
        another word, or a declared name, is its letters, a product as in TeX."""
        fname = canonical_function(value) if value in FUNCTIONS or value in FILLS else \
            call_name(LATEX_FUNCTIONS[value]) if value in LATEX_FUNCTIONS else ""
        if fname and value not in self.variables:
            self.emit("FUNC", fname, start, start + len(value))
            return
        if value == "norm" and value not in self.variables:
            raise self.fail("norm(...) is ASCII: in LaTeX write \\|x\\|, \\|X\\|_F, ...",
                            start, start + len(value))
        for k, letter in enumerate(value):
            self.emit("SYM", letter, start + k, start + k + 1)

    def bold(self, value: str, start: int, end: int) -> None:
        """``\\mathbf{X}``, ``\\boldsymbol{\\Sigma}``, ``\\bm x``: the plain symbol;
        ``\\mathbf{1}`` the ones, ``\\mathbf{0}`` zero."""
        m = re.match(r"\\([a-zA-Z]+)\s*\{?\s*(.*?)\s*\}?$", value, re.S)
        cmd, content = (m.group(1), m.group(2)) if m else ("", value)
        if content == "1":
            self.emit("ONES", "1", start, end)
        elif content == "0":
            self.emit("ZERO", "0", start, end)
        elif cmd == "mathbb" and content != "I":
            raise self.fail(f"'{value}' is not supported (only \\mathbb{{1}}, \\mathbb{{I}}, "
                            "\\mathbb{0})", start, end)
        elif content.startswith("\\") and content[1:] in GREEK:
            self.emit("SYM", content[1:], start, end)
        elif len(content) == 1 and content.isalpha():
            self.emit("SYM", content, start, end)
        else:
            raise self.fail(f"'{value}': write one symbol per \\{cmd}", start, end)

    def environment(self, kind: str, value: str, start: int, end: int) -> None:
        m = re.match(r"\\(begin|end)\s*\{([a-zA-Z]+\*?)\}", value)
        env = m.group(2) if m else ""
        if env not in _ENVS:
            raise self.fail(f"unsupported environment '{env}' (use pmatrix, bmatrix, "
                            "vmatrix, matrix or array)", start, end)
        if kind != "RAW_END":
            if len(self.stack) >= MAX_DEPTH:
                raise self.fail(f"nesting deeper than {MAX_DEPTH} levels", start, end)
            self.stack.append(("env:" + env, "env", start, end, False))
            self.emit("BEGIN", env, start, end)
            return
        if not self.stack or self.stack[-1][1] != "env":
            opener = self.text[self.stack[-1][2]:self.stack[-1][3]] if self.stack else ""
            where = f" ('{opener}' is still open)" if opener else ""
            raise self.fail(f"'{value}' has no matching '\\begin{{{env}}}'{where}", start, end)
        okind, _, ostart, oend, _ = self.stack[-1]
        if okind != "env:" + env:
            raise self.fail(f"'{value}' does not match '{self.text[ostart:oend]}'", start, end)
        self.stack.pop()
        self.emit("END", env, start, end)

    @staticmethod
    def finish(toks: list[Token]) -> list[Token]:
        """``\\log\\det`` is one function; a function followed by a bracket is ``FUNC_P``."""
        out: list[Token] = []
        toks = _bar_groups(toks)
        for i, t in enumerate(toks):
            if t.type == "_PLUS" and [x.type for x in out[-2:]] == ["_CARET", "_LBRACE"] \
                    and i + 1 < len(toks) and toks[i + 1].type == "_RBRACE":
                t = Token.new_borrow_pos("TRANS", "+", t)               # X^{+}: pinv(X)
            if t.type == "FUNC" and out and out[-1].type == "FUNC":
                pair = (FUNCTIONS[str(out[-1])], FUNCTIONS[str(t)])
                if pair in LATEX_PAIRS:                         # \log\det: one function
                    name = call_name(LATEX_PAIRS[pair])
                    t = _tok("FUNC", name, _span(out.pop())[0], _span(t)[1])
            if t.type in ("_LPAR", "_LSQB") and out and out[-1].type == "FUNC":
                out[-1] = Token.new_borrow_pos("FUNC_P", str(out[-1]), out[-1])
            out.append(t)
        return out


# ----------------------------------------------------------------------------- tree to Node

_T, _INV_T, _PINV, _H = "T", "-T", "+", "H"  # superscript markers: transpose, its inverse,
#                                             X⁺, the conjugate transpose Xᴴ
_DIM_TERM = re.compile(r"([-+]?)(\d*(?:[A-Za-z]\d*)*)")   # a term of a printed dimension: 2n


@v_args(meta=True)
class _ToNode(Transformer_NonRecursive):  # iterative: long sums are deep trees
    """Lark tree to Node; one method per rule alias of ``latex.lark``."""

    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def fail(self, message: str, start: int, end: int | None = None) -> MatdiffError:
        return MatdiffError(message, pos=start, end=end, text=self.text)

    @staticmethod
    def _node(kind: str, meta: Any, args: Iterable[Node], value: Any = None) -> Node:
        start, end = span_of(meta)
        return Node(kind, tuple(args), value, start, end)

    def name(self, meta: Any, children: list[Token]) -> Node:
        if str(children[0]) == IMAGINARY_UNIT:
            return self._node("imag", meta, [], Fraction(1))
        return self._node("name", meta, [], str(children[0]))

    def num(self, meta: Any, children: list[Token]) -> Node:
        return self._node("num", meta, [], Fraction(str(children[0])))

    def ones(self, meta: Any, children: list[Token]) -> Node:
        return self._node("call", meta, [], call_name(Op.ONES))

    def zero(self, meta: Any, children: list[Token]) -> Node:
        return self._node("num", meta, [], Fraction(0))

    def norm(self, meta: Any, children: list[Any]) -> Node:
        return self._node("norm", meta, [children[1]], "")

    def inner(self, meta: Any, children: list[Any]) -> Node:
        """<A, B> = tr(A'B): the Frobenius inner product, a'b for vectors."""
        a, b = children
        product = Node("mul", (Node("transpose", (a,), None, a.start, a.end), b), None,
                       a.start, b.end)
        return self._node("call", meta, [product], call_name(Op.TRACE))

    def frobenius(self, meta: Any, children: list[Any]) -> Node:
        a, _, b = children
        return frobenius(a, b, *span_of(meta))

    def abs(self, meta: Any, children: list[Any]) -> Node:
        return self._node("bars", meta, [children[1]])      # det or abs: decided by shapes

    def _call(self, meta: Any, fname: str, args: list[Node], at: Token) -> Node:
        counts = call_counts(fname)
        if len(args) not in counts:
            raise self.fail(arity_message(fname, counts, len(args)), *_span(at))
        return self._node("call", meta, args, fname)

    def call(self, meta: Any, children: list[Any]) -> Node:
        return self._call(meta, str(children[0]), children[1:], children[0])

    def bare_call(self, meta: Any, children: list[Any]) -> Node:
        return self._call(meta, str(children[0]), children[1:], children[0])

    def frac(self, meta: Any, children: list[Any]) -> Node:
        return self._node("div", meta, children[1:])

    def sqrt(self, meta: Any, children: list[Any]) -> Node:
        return self._node("call", meta, children[1:], call_name(Op.SQRT))

    def root(self, meta: Any, children: list[Any]) -> Node:
        """``\\sqrt[n]{x}``: the elementwise power ``x .^ (1/n)``."""
        _, n, x = children
        one = Node("num", (), Fraction(1), n.start, n.end)
        return self._node("hpow", meta, [x, Node("div", (one, n), None, n.start, n.end)])

    def row(self, meta: Any, children: list[Node]) -> list[Node]:
        return children

    def matrix(self, meta: Any, children: list[Any]) -> Node:
        begin, *rows, _ = children
        if len({len(r) for r in rows}) != 1:
            start, end = span_of(meta)
            raise self.fail("every row of a matrix needs the same number of entries",
                            start, end)
        block = self._node("block", meta, [x for r in rows for x in r], (len(rows), len(rows[0])))
        if str(begin) == "vmatrix":
            return self._node("call", meta, [block], call_name(Op.DET))
        return block

    def binop(self, meta: Any, children: list[Any]) -> Node:
        a, op, b = children
        kind = str(op)
        if kind == "kron":
            return self._node("call", meta, [a, b], call_name(Op.KRON))
        if kind == "oplus":                              # A ⊕ B = [A 0; 0 B]
            # two distinct zero nodes: later stages key per-node tables by id()
            zeros = [Node("num", (), Fraction(0), op.start_pos, op.end_pos) for _ in "01"]
            return self._node("block", meta, [a, zeros[0], zeros[1], b], (2, 2))
        return self._node(kind, meta, [a, b])

    def trans(self, meta: Any, children: list[Any]) -> str:
        return {"+": _PINV, "H": _H}.get(str(children[0]), _T)

    def invtrans(self, meta: Any, children: list[Any]) -> str:
        return _INV_T

    def circ(self, meta: Any, children: list[Any]) -> tuple[str, Node]:
        op, p = children
        if self.text[op.start_pos:op.end_pos] != "\\circ":
            raise self.fail(f"unexpected '{self.text[op.start_pos:op.end_pos]}' in a superscript",
                            op.start_pos, op.end_pos)
        return ("circ", p)

    def superscript(self, meta: Any, children: list[Any]) -> tuple[str, Any, int, int]:
        return ("sup", children[0], *span_of(meta))

    def slice_script(self, meta: Any, children: list[Node]) -> tuple[str, Any, int, int]:
        return ("slice", tuple(children), *span_of(meta))   # X_{[r0:r1,\,c0:c1]}

    def prime(self, meta: Any, children: list[Any]) -> tuple[str, Any, int, int]:
        return ("sup", _T, *span_of(meta))             # X' in LaTeX: Xᵀ (in ASCII: Xᴴ)

    def subscript(self, meta: Any, children: list[Token]) -> tuple[str, Any, int, int]:
        return ("sub", "".join(str(t) for t in children), *span_of(meta))

    def scripted(self, meta: Any, children: list[Any]) -> Node:
        base, *scripts = children
        subs = [s for s in scripts if s[0] == "sub"]
        if len(subs) > 1:
            raise self.fail("double subscript", subs[1][2], subs[1][3])
        if subs:
            base = self._subscript(base, *subs[0][1:])
        for tag, x, sup_start, end in scripts:          # in written order: X^T_{[0:2, 0:n]}
            if tag == "slice":                          # is (X^T)[0:2, 0:n]
                base = Node("slice", (base, *x), None, base.start, max(end, base.end))
            elif tag == "sup":
                base = self._power(base, x, sup_start, end)
        return base

    def _subscript(self, base: Node, text: str, start: int, end: int) -> Node:
        if base.kind == "name" and base.value == "K" and "," in text:     # K_{m,n}
            sizes = tuple(self._dim(part, start, end) for part in text.split(","))
            if len(sizes) != 2:
                raise self.fail("the commutation matrix K_{m,n} takes two sizes", start, end)
            return Node("call", sizes, call_name(Op.COMMUTATION), base.start, end)
        if base.kind == "name":
            if "_" in base.value:
                raise self.fail("double subscript", start, end)
            if not text.isalnum():
                raise self.fail(f"a symbol's subscript is letters and digits, not '{text}'",
                                start, end)
            return dataclasses.replace(base, value=f"{base.value}_{text}", end=end)
        if base.kind == "norm" and base.value == "":
            return dataclasses.replace(base, value=norm_subscript(text, start, end), end=end)
        filled = base.kind == "call" and base.value == call_name(Op.ONES) and not base.args \
            or base.kind == "num" and base.value == 0
        if filled:                                   # \mathbf{1}_n, \mathbf{0}_{m,n}
            sizes = tuple(self._dim(part, start, end) for part in text.split(","))
            if len(sizes) > 2:
                raise self.fail("a size subscript has one or two dimensions", start, end)
            fname = call_name(Op.ONES if base.kind == "call" else Op.ZERO)
            return Node("call", sizes, fname, base.start, end)
        raise self.fail("only symbols and norms take a subscript here", start, end)

    def _dim(self, text: str, start: int, end: int) -> Node:
        """A printed dimension: ``n``, ``2n``, ``np`` (n*p), ``m + 2n``, ``d1``."""
        compact, terms, at = text.replace(" ", ""), [], 0
        while at < len(compact):
            m = _DIM_TERM.match(compact, at)
            if m is None or not m.group(2) or (at and not m.group(1)):
                raise self.fail(f"'{text}' is not a dimension", start, end)
            terms.append(m.groups())
            at = m.end()
        total: Node | None = None
        for sign, term in terms:
            factors = [Node("num", (), Fraction(f), start, end) if f.isdigit()
                       else Node("name", (), f, start, end)
                       for f in re.findall(r"\d+|[A-Za-z]\d*", term)]
            node = factors[0]
            for f in factors[1:]:
                node = Node("mul", (node, f), None, start, end)
            if total is None:
                total = Node("neg", (node,), None, start, end) if sign == "-" else node
            else:
                total = Node("sub" if sign == "-" else "add", (total, node), None, start, end)
        if total is None:
            raise self.fail("an empty size subscript", start, end)
        return total

    def _power(self, base: Node, x: Any, sup_start: int, end: int) -> Node:
        start, end = base.start, max(end, base.end)          # x^2_i: the subscript came first
        if isinstance(x, Node) and x.kind == "name" and x.value == "T":
            x = _T
        if isinstance(x, Node) and x.kind == "neg" and x.args[0].kind == "name" \
                and x.args[0].value == "T":
            x = _INV_T
        if x == _T:
            return Node("transpose", (base,), None, start, end)
        if x == _H or isinstance(x, Node) and x.kind == "name" and x.value == "H":
            return Node("transpose", (base,), "H", start, end)             # X^H, X^*
        if x == _INV_T:
            minus_one = Node("num", (), Fraction(-1), sup_start, end)          # ^{-T}
            inv = Node("pow", (base, minus_one), None, start, end)
            return Node("transpose", (inv,), None, start, end)
        if x == _PINV:                                                      # X^{+}, X^\dagger
            return Node("call", (base,), call_name(Op.PINV), start, end)
        kind = "pow"
        if isinstance(x, tuple):                                            # ^{\circ p}
            kind, x = "hpow", x[1]
        if x.kind == "neg" and x.args[0].kind == "num":                     # ^{-1}
            x = dataclasses.replace(x.args[0], value=-x.args[0].value, start=x.start)
        if kind == "hpow":
            return Node("hpow", (base, x), None, start, end)
        if base.kind == "name" and base.value == "e":          # e^{x}: exp, or expm of a
            return Node("epow", (x,), None, start, end)          # square matrix (shapes)
        return Node("pow", (base, x), None, start, end)

    def __default__(self, data: str, children: list[Any], meta: Any) -> Node:
        return self._node(str(data), meta, children)


# ----------------------------------------------------------------------------- entry points

_MATH_DELIMS = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"))
_EQUATION = re.compile(r"\s*(\\begin\{(equation|displaymath|math)\*?\})(.*)(\\end\{\2\*?\})\s*$",
                       re.S)
# a command, \| \, \\ ..., ^{ or _{ (not the ASCII ||x||_{2}), $, and what ASCII cannot
# mean: ^T as the transpose (x^TAx, X^T), ^H and ^* (the conjugate transpose), a prime then
# a letter (x'Ax, not the 'nuc' of norm(X, 'nuc'))
_LATEX_HINT = re.compile(r"\\[a-zA-Z]{2,}|\\[|,;!{}()\[\]\\ ]|\^\{|(?<!\|\|)_\{|\$"
                         r"|\^[TH](?![a-z0-9_])|\^\*|(?<![\s,(])'[A-Za-z(]")


def _strip_math(text: str) -> str:
    """Blank out math delimiters and trailing punctuation, keeping every offset."""
    chars = list(text)
    lo, hi = len(text) - len(text.lstrip()), len(text.rstrip())
    for opener, closer in _MATH_DELIMS:
        body = text[lo:hi]
        if len(body) >= len(opener) + len(closer) and body.startswith(opener) \
                and body.endswith(closer):
            chars[lo:lo + len(opener)] = " " * len(opener)
            chars[hi - len(closer):hi] = " " * len(closer)
            break
    m = _EQUATION.match(text)
    if m:
        for g in (1, 4):
            chars[m.start(g):m.end(g)] = " " * (m.end(g) - m.start(g))
    stripped = "".join(chars)
    last = len(stripped.rstrip()) - 1
    if last >= 0 and stripped[last] in ",.;" and not stripped[:last].endswith("\\"):
        chars[last] = " "
    return "".join(chars)


def looks_like_latex(text: str) -> bool:
    r"""Whether the text is LaTeX rather than ASCII: a command, ``^{``, ``_{``, ``$``, ``\|``,
    or a product by juxtaposition ASCII cannot mean (``x^TAx``, ``x'Ax``).

    >>> looks_like_latex(r"\|X\|_F^2"), looks_like_latex("||X||_F^2")
    (True, False)
    """
    return _LATEX_HINT.search(text) is not None


def _friendly(err: UnexpectedInput, text: str) -> MatdiffError:
    if isinstance(err, UnexpectedToken) and err.token.type != "$END":
        tok = err.token
        shown = text[tok.start_pos:tok.end_pos] or str(tok)
        return MatdiffError(f"unexpected '{shown}'", pos=tok.start_pos, end=tok.end_pos,
                            text=text)
    if isinstance(err, UnexpectedCharacters):
        # lark declares pos_in_stream = None on the base class; here it is the lexer's int
        return MatdiffError(f"unexpected character '{text[err.pos_in_stream]}'",  # type: ignore[index]
                            pos=err.pos_in_stream, text=text)
    return MatdiffError("the expression ends too early", pos=max(0, len(text.rstrip()) - 1),
                        text=text)


def parse_latex(text: str, functions: Iterable[str] = (), variables: Iterable[str] = ()
                ) -> Node:
    r"""Parse LaTeX math to a syntax tree; ``functions`` names Greek letters meant as the
    sigmoid everywhere. ``\sigma`` followed by a parenthesis is the sigmoid
    (``\sigma(Wx)`` is ``sigmoid(W*x)``) unless ``variables`` (the declared names) has it.

    >>> parse_latex(r"\left\| X \right\|_F^2").args[0].value
    'F'
    >>> parse_latex(r"H_R^TA").args[0].args[0].value
    'H_R'
    """
    if len(text) > MAX_LENGTH:
        raise MatdiffError(f"the expression is longer than {MAX_LENGTH} characters",
                           pos=MAX_LENGTH, text=text)
    body = _strip_math(text)
    if not body.strip():
        raise MatdiffError("the expression is empty", pos=0, text=text)
    try:
        cook = _Cook(text, frozenset(functions), frozenset(variables))
        tokens = cook.run(list(_PARSER.lex(body)))
        interactive = _PARSER.parse_interactive("")
        for tok in tokens:
            interactive.feed_token(tok)
        tree = interactive.feed_eof()
        return _ToNode(text).transform(tree)
    except MatdiffError as e:
        e.text = text
        raise
    except UnexpectedInput as e:
        raise _friendly(e, text) from None
    except RecursionError:
        raise MatdiffError("the expression is nested too deeply", pos=0, text=text) from None
    except Exception as e:  # a MatdiffError raised inside the transformer arrives wrapped
        inner = getattr(e, "orig_exc", None)
        if isinstance(inner, MatdiffError):
            inner.text = text
            raise inner from None
        raise
