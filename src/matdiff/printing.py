"""Printers: ``Expr`` to ASCII (valid input), Unicode, and LaTeX.

Input: an ``Expr``. Output: a string. Contract: ``to_text(e)`` parses back, with the same
shape declarations, to the very same (interned) node, so ``str(e)`` is always valid input.
One precedence table ``PREC`` serves the three styles; each style is a table of templates
keyed by ``Op``. Sub-matrices print as ``X[r0:r1, c0:c1]`` (0-based, end excluded).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction

from . import expr as _expr
from .expr import ONE, Dim, Expr, Op
from .names import name_parts

__all__ = ["to_text", "to_unicode", "to_latex", "PREC", "format_shape", "format_dim",
           "latex_name", "FORMATS", "render", "with_names"]

# precedence levels: a child printed below its slot's level is parenthesised
SUM, PROD, NEG, POW, POSTFIX, ATOM = 1, 2, 3, 4, 5, 6

PREC: dict[Op, int] = {
    Op.ADD: SUM, Op.SCALE: PROD, Op.MATMUL: PROD, Op.HADAMARD: PROD, Op.HDIV: PROD,
    Op.KRON: ATOM, Op.POW: POW, Op.MATPOW: POW, Op.TRANSPOSE: POSTFIX, Op.SLICE: POSTFIX,
    **{op: ATOM for op in Op if op not in (Op.ADD, Op.SCALE, Op.MATMUL, Op.HADAMARD,
                                            Op.HDIV, Op.KRON, Op.POW, Op.MATPOW,
                                            Op.TRANSPOSE, Op.SLICE)},
}

_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
_GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
          "lambda", "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi",
          "psi", "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon",
          "Phi", "Psi", "Omega", "varepsilon", "varphi"}
_GREEK_UNICODE = dict(zip(
    ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
     "lambda", "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi",
     "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi",
     "Psi", "Omega"],
    "αβγδεζηθικλμνξπρστυφχψωΓΔΘΛΞΠΣΥΦΨΩ", strict=True))

_ELEMENTWISE_PROD = (Op.HADAMARD, Op.HDIV)

_FUNC_NAMES = {Op.TRACE: "tr", Op.DET: "det", Op.LOGDET: "logdet", Op.INV: "inv",
               Op.DIAG: "diag", Op.DIAGM: "Diag", Op.VEC: "vec", Op.SUM: "sum",
               Op.EXP: "exp", Op.LOG: "log", Op.SIN: "sin", Op.COS: "cos", Op.TAN: "tan",
               Op.TANH: "tanh", Op.SQRT: "sqrt", Op.ABS: "abs", Op.SIGN: "sign",
               Op.SIGMOID: "sigmoid", Op.RELU: "relu", Op.ARCSIN: "arcsin",
               Op.ARCCOS: "arccos", Op.ARCTAN: "arctan"}


def format_dim(d: Dim, style: str = "text") -> str:
    """A dimension as text (``2*n``) or for display (``2n``).

    >>> format_dim(2 * Dim.var("n"), "unicode")
    '2n'
    """
    return d.format("*" if style == "text" else "")


def format_shape(shape: tuple[Dim, Dim], style: str = "unicode") -> str:
    """``m×n``; a column vector shows its length alone, a scalar as ``scalar``."""
    if shape == (ONE, ONE):
        return "scalar"
    if shape[1] == ONE:
        return format_dim(shape[0], style)
    sep = "x" if style == "text" else "×"
    return f"{format_dim(shape[0], style)}{sep}{format_dim(shape[1], style)}"


def _fraction(c: Fraction) -> str:
    if c.denominator == 1:
        return str(c.numerator)
    d = c.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    if d == 1 and Fraction(repr(float(c))) == c:              # 0.25, not 543971/262144 as
        return repr(float(c))                                    # 2.075084686279297
    return f"{c.numerator}/{c.denominator}"


def _quotient(e: Expr) -> bool:
    """``x/a``: a scaling by a negative power, printed as a quotient."""
    if e.op is not Op.SCALE or e.args[0].op is not Op.POW:
        return False
    p = e.args[0].args[1]
    return p.op is Op.CONST and p.attr < 0


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


class _Printer:
    """One printing style: ASCII ("text"), Unicode ("unicode") or LaTeX ("latex")."""

    def __init__(self, style: str):
        self.style = style
        self.memo: dict[tuple[Expr, bool], tuple[str, int]] = {}

    def paren(self, s: str) -> str:
        return f"\\left({s}\\right)" if self.style == "latex" else f"({s})"

    def sub(self, e: Expr, level: int, fixed: bool = False) -> str:
        s, p = self.print(e, fixed)
        return self.paren(s) if p < level else s

    def print(self, e: Expr, fixed: bool = False) -> tuple[str, int]:
        key = (e, fixed)
        if key not in self.memo:
            self.memo[key] = self.node(e, fixed)
        return self.memo[key]

    def node(self, e: Expr, fixed: bool) -> tuple[str, int]:  # noqa: C901 - a table
        op, a, st = e.op, e.args, self.style
        tex, uni = st == "latex", st == "unicode"
        if op is Op.SYMBOL:
            name = e.name
            if uni:  # marked, so juxtaposition knows where one name ends (stripped at the end)
                return f"{_OPEN}{_unicode_name(name)}{_CLOSE}", ATOM
            return (latex_name(name) if tex else name), ATOM
        if op is Op.CONST:
            return self.const(e.attr)
        if op is Op.IDENTITY:
            if fixed:
                return "I", ATOM
            n = format_dim(e.attr, st)
            return (f"I_{{{n}}}" if tex else f"I_{_subscript(n)}" if uni
                    else f"eye({format_dim(e.attr)})"), ATOM
        if op in (Op.ONES, Op.ZERO):
            return self.filled(e, fixed)
        if op is Op.COMMUTATION:
            m, n = (format_dim(d, st) for d in e.attr)
            return (f"K_{{{m},{n}}}" if tex else f"K({m}, {n})"), ATOM
        if op is Op.ADD:
            return self.add(e, fixed)
        if op is Op.SCALE:
            return self.scale(e, fixed)
        if op is Op.MATMUL:  # (A ⊙ B)C: ⊙ and juxtaposition never share a level on paper
            parts = [self.sub(f, PROD if i == 0 and (st == "text" or f.op not in _ELEMENTWISE_PROD)
                              else PROD + 1) for i, f in enumerate(a)]
            if a[0].rows == ONE and any(f.cols == ONE for f in a[:-1]):
                # uᵀ(uuᵀu): a 1x1 partial product would read back as a scaling
                parts[1:] = [self.sub(_expr.matmul(*a[1:]), PROD + 1)]
            return self.juxtapose(parts, "*"), PROD
        if op is Op.TRANSPOSE:
            return self.transpose(a[0]), POSTFIX
        if op in (Op.HADAMARD, Op.HDIV):
            sym = {"text": (" .* ", " ./ "), "unicode": (" ⊙ ", " ⊘ "),
                   "latex": (" \\odot ", " \\oslash ")}[st][op is Op.HDIV]
            sib_fixed = any(not _floating(x) for x in a)
            parts = [self.sub(f, PROD if i == 0 else PROD + 1, self.bare(f, sib_fixed))
                     for i, f in enumerate(a)]
            return sym.join(parts), PROD
        if op is Op.POW:
            return self.power(a[0], a[1], elementwise=not a[0].is_scalar), POW
        if op is Op.MATPOW:
            if a[0].op is Op.INV and st != "text":  # (XᵀX)⁻²
                b = self.sub(a[0].args[0], self.base_level(a[0].args[0]))
                k = str(-e.attr)
                return b + (f"^{{{k}}}" if tex else k.translate(_SUPERSCRIPT)), POW
            return self.power(a[0], _expr.const(e.attr), elementwise=False), POW
        if op is Op.KRON:
            if st == "text":
                return f"kron({self.sub(a[0], 0)}, {self.sub(a[1], 0)})", ATOM
            sym = " \\otimes " if tex else " ⊗ "  # parenthesised inside any product
            return self.sub(a[0], PROD + 1) + sym + self.sub(a[1], PROD + 1), SUM
        if op is Op.BLOCK:
            return self.block(e), ATOM
        if op is Op.SLICE:
            r0, r1, c0, c1 = (format_dim(d, st) for d in e.attr)
            inner = self.sub(a[0], POSTFIX)
            if tex:
                inner = f"{{{inner}}}" if inner.endswith("}") else inner  # {H_{R}}_{[0:n,\,0:m]}
                return f"{inner}_{{[{r0}:{r1},\\,{c0}:{c1}]}}", POSTFIX
            return f"{inner}[{r0}:{r1}, {c0}:{c1}]", POSTFIX
        if op is Op.NORM:
            return self.norm(e), ATOM
        if op is Op.INV and st != "text":
            if a[0].op is Op.TRANSPOSE and tex:  # X^{-T} reads back as the transpose of X^{-1}
                return self.paren(self.transpose(a[0].args[0])) + "^{-1}", POSTFIX
            if a[0].op is Op.TRANSPOSE:  # (Xᵀ)⁻¹ = X⁻ᵀ
                return self.sub(a[0].args[0], POSTFIX) + ("^{-T}" if tex else "⁻ᵀ"), POSTFIX
            return self.sub(a[0], POSTFIX) + ("^{-1}" if tex else "⁻¹"), POSTFIX
        if op is Op.UNVEC:
            m, n = (format_dim(d, st) for d in e.attr)
            if tex:
                return f"\\operatorname{{unvec}}\\left({self.sub(a[0], 0)}, {m}, {n}\\right)", ATOM
            return f"unvec({self.sub(a[0], 0)}, {m}, {n})", ATOM
        return self.function(e), ATOM

    # -- pieces
    def const(self, c: Fraction) -> tuple[str, int]:
        if self.style == "latex" and c.denominator != 1 and "/" in _fraction(c):
            s = f"\\frac{{{abs(c.numerator)}}}{{{c.denominator}}}"
            return ("-" + s, NEG) if c < 0 else (s, ATOM)
        s = _fraction(c)
        if self.style == "unicode":
            s = s.replace("-", "−")
        if c < 0:
            return s, NEG
        return s, PROD if "/" in s else ATOM

    def filled(self, e: Expr, fixed: bool) -> tuple[str, int]:
        st = self.style
        ones = e.op is Op.ONES
        if fixed:
            return ("1" if ones else "0") if st == "text" else \
                ("\\mathbf{1}" if ones else "\\mathbf{0}") if st == "latex" else \
                ("𝟏" if ones else "0"), ATOM
        dims = [e.rows] if e.cols == ONE else [e.rows, e.cols]
        if st == "text":
            return f"{'ones' if ones else 'zeros'}({', '.join(format_dim(d) for d in dims)})", \
                ATOM
        if e.rows == ONE and e.op is Op.ONES:  # a row of ones: 𝟏ₙᵀ
            n = format_dim(e.cols, st)
            return (f"\\mathbf{{1}}_{{{n}}}^{{T}}" if st == "latex"
                    else f"𝟏_{_subscript(n)}ᵀ"), POSTFIX
        size = "×".join(format_dim(d, st) for d in dims)
        if st == "latex":
            return f"\\mathbf{{{'1' if ones else '0'}}}_{{{size.replace('×', ',')}}}", ATOM
        return f"{'𝟏' if ones else '0'}_{size}", ATOM

    def add(self, e: Expr, fixed: bool) -> tuple[str, int]:
        minus = {"text": " - ", "unicode": " − ", "latex": " - "}[self.style]
        sib_fixed = fixed or any(not _floating(t) for t in e.args)
        if self.style == "text" and sum(_floating(t) for t in e.args) > 1:
            sib_fixed = False  # 1 + 1 + X reads as 2 + X: a bare 1 is the number
        out = ""
        for i, t in enumerate(e.args):
            negative = t.op is Op.SCALE and t.args[0].op is Op.CONST and t.args[0].attr < 0 or \
                t.op is Op.CONST and t.attr < 0
            if negative:
                pos = _expr.scale(_expr.const(-1), t)
                body = self.sub(pos, PROD, self.bare(pos, sib_fixed))
                out += (minus.strip() if i == 0 else minus) + body
            else:
                body = self.sub(t, SUM, self.bare(t, sib_fixed))
                out += body if i == 0 else " + " + body
        return out, SUM

    def bare(self, e: Expr, fixed: bool) -> bool:
        """Whether ``e``, an operand of a sum or an elementwise product, may print as a bare
        ``I``, ``1`` or ``0``. The LaTeX reader learns the size of a bare ``\\mathbf{1}``
        there only after deciding the products around it (in ``yᵀ(x + 𝟏) c F`` it would
        take ``c`` for the scaled side), so in LaTeX the ones show their size."""
        return fixed and not (self.style == "latex" and _unscaled(e).op is Op.ONES)

    def scale(self, e: Expr, fixed: bool) -> tuple[str, int]:
        a, x = e.args
        st = self.style
        if x.op is Op.ONES and fixed:  # X + 2: a scalar broadcast where siblings fix the size
            text, level = self.print(a)
            return (self.paren(text), ATOM) if level <= SUM else (text, level)
        if _quotient(e):
            base = a.args[0] if a.args[1].attr == -1 else \
                _expr.hpow(a.args[0], _expr.const(-a.args[1].attr))
            num, den = self.sub(x, PROD, fixed), self.sub(base, PROD + 1)
            if st == "latex":
                return f"\\frac{{{self.print(x, fixed)[0]}}}{{{self.print(base)[0]}}}", ATOM
            return f"{num}/{den}", PROD
        inner_level = PROD if x.op in (Op.MATMUL, Op.SCALE) or st == "text" and x.op in \
            _ELEMENTWISE_PROD else PROD + 1
        if a.op is not Op.CONST and _quotient(x):  # a*(b/c): a*b/c reads as (a*b)/c
            inner_level = PROD + 1
        if a.op is Op.CONST and a.attr == -1:
            body = self.sub(x, PROD if x.op in _ELEMENTWISE_PROD else inner_level, fixed)
            return ("−" if st == "unicode" else "-") + body, PROD
        coeff = self.sub(a, PROD if a.op is not Op.MATMUL or st == "text" else PROD + 1)
        body = self.sub(x, inner_level, fixed)
        return self.juxtapose([coeff, body], "*"), PROD

    def juxtapose(self, parts: list[str], text_sep: str) -> str:
        if self.style == "text":
            return text_sep.join(parts)
        if self.style == "latex":
            return " ".join(parts)
        out = parts[0]
        for prev, p in zip(parts, parts[1:], strict=False):
            left, right = _last_word(prev), _first_word(p)
            glue = " " if len(left) > 1 and right or len(right) > 1 or \
                left.isdigit() and right.isdigit() else ""
            out += glue + p
        return out

    def transpose(self, x: Expr) -> str:
        st = self.style
        if x.op is Op.INV and st != "text":
            return self.sub(x.args[0], POSTFIX) + ("^{-T}" if st == "latex" else "⁻ᵀ")
        base = self.sub(x, POSTFIX)
        return base + {"text": "'", "unicode": "ᵀ", "latex": "^{T}"}[st]

    def base_level(self, base: Expr) -> int:
        """The level a power's base needs: on paper a base that ends in a superscript is
        parenthesised, (X⁻¹)², (Xᵀ)⁻², not X⁻¹², Xᵀ⁻²."""
        return POSTFIX if self.style == "text" or base.op is Op.SLICE else ATOM

    def power(self, base: Expr, p: Expr, elementwise: bool) -> str:
        st = self.style
        b = self.sub(base, self.base_level(base))
        circ = "\\circ " if elementwise else ""
        if p.op is Op.CONST and p.attr.denominator == 1:
            k = str(p.attr.numerator)
            if st == "unicode":
                return b + ("∘" if elementwise else "") + k.translate(_SUPERSCRIPT)
            if st == "latex":
                return f"{b}^{{{circ}{k}}}"
            return f"{b}{'.^' if elementwise else '^'}{k}"
        e, level = self.print(p)
        if st == "latex":
            return f"{b}^{{{circ}{e}}}"
        exp = e if level >= POSTFIX else f"({e})"
        return f"{b}{'.^' if elementwise and st == 'text' else '^'}{exp}"

    def block(self, e: Expr) -> str:
        r, c = e.attr
        grid = [e.args[i * c:(i + 1) * c] for i in range(r)]
        sized = [[not _floating(x) or _unscaled(x).op is Op.IDENTITY for x in row] for row in grid]
        # a bare 1 or 0 only where a block printed with its size fixes its height (in its
        # row) and its width (in its column); the identity always shows its size, and so do
        # the ones in ASCII (where a bare 1 is the number)
        sizeless = (Op.ZERO,) if self.style == "text" else (Op.ZERO, Op.ONES)
        cells = [[self.sub(x, 0, fixed=_unscaled(x).op in sizeless and any(sized[i])
                           and any(sized[k][j] for k in range(r)))
                  for j, x in enumerate(row)] for i, row in enumerate(grid)]
        if self.style == "latex":
            body = " \\\\ ".join(" & ".join(row) for row in cells)
            return f"\\begin{{bmatrix}} {body} \\end{{bmatrix}}"
        return "[" + "; ".join(", ".join(row) for row in cells) + "]"

    def norm(self, e: Expr) -> str:
        x = e.args[0]
        sub = "1" if e.attr == "1" else "2" if x.cols == ONE or x.rows == ONE else "F"
        inner = self.print(x)[0]
        if self.style == "latex":
            return f"\\left\\| {inner} \\right\\|_{{{sub}}}"
        if self.style == "unicode":
            return f"‖{inner}‖_{sub}"
        return f"||{inner}||_{sub}"

    def function(self, e: Expr) -> str:
        name = _FUNC_NAMES[e.op]
        arg = self.print(e.args[0])[0]
        if self.style == "latex":
            known = {"det": "\\det", "exp": "\\exp", "log": "\\log", "sin": "\\sin",
                     "cos": "\\cos", "tan": "\\tan", "tanh": "\\tanh", "logdet": "\\log\\det",
                     "arcsin": "\\arcsin", "arccos": "\\arccos", "arctan": "\\arctan"}
            if name == "sqrt":
                return f"\\sqrt{{{arg}}}"
            head = known.get(name, f"\\operatorname{{{name}}}")
            return f"{head}\\left({arg}\\right)"
        if self.style == "unicode":
            name = {"logdet": "log det", "sigmoid": "σ"}.get(name, name)
        return f"{name}({arg})"


def _subscript(s: str) -> str:
    """A subscript that reads unambiguously after ``_``: ``m``, ``3``, ``(2n)``."""
    return s if s.isalnum() else f"({s})"


def _word_char(c: str) -> bool:
    return c.isascii() and (c.isalnum() or c == "_") or c in _GREEK_UNICODE.values()


_OPEN, _CLOSE = "\x01", "\x02"


def _last_word(s: str) -> str:
    if s.endswith(_CLOSE):
        return s[s.rindex(_OPEN) + 1:-1]
    i = len(s)
    while i > 0 and _word_char(s[i - 1]):
        i -= 1
    return s[i:]


def _first_word(s: str) -> str:
    if s.startswith(_OPEN):
        return s[1:s.index(_CLOSE)]
    i = 0
    while i < len(s) and _word_char(s[i]):
        i += 1
    return s[:i]


def render(e: Expr, style: str = "text") -> str:
    """Print ``e`` in one of the styles "text", "unicode", "latex".

    >>> from matdiff.expr import sym
    >>> render(sym("W1", ("m", "n")) @ sym("x", ("n",)), "unicode")
    'W1 x'
    """
    if style not in ("text", "unicode", "latex"):
        raise ValueError(f"unknown style {style!r}")
    printer = _Printer(style)
    for node in _expr.toposort([e]):  # children first: printing a deep DAG never recurses deeply
        printer.print(node)
    return printer.print(e)[0].replace(_OPEN, "").replace(_CLOSE, "")


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


def with_names(exprs: Sequence[Expr], style: str = "unicode"
               ) -> tuple[list[str], list[tuple[str, str]]]:
    """The expressions printed over named parts, and the ``where`` list ``[(name, text)]``
    (each part uses only earlier ones). ``str(expr)`` itself never uses names.

    >>> import matdiff as md
    >>> f = md.parse("||Z - I .* (R'*A + Q'*B)||_F^2 + ||W - [R, -Q; Q, R]*P*S'||_F^2")
    >>> g = md.grad(f, ["R", "Q"])
    >>> shown, where = with_names([g["R"], g["Q"]], "unicode")
    >>> shown[0]
    '2(A(I ⊙ M) + C[0:n, 0:m] + C[n:2n, m:2m])'
    >>> where
    [('M', 'QᵀB + RᵀA − Z'), ('N', '[R, −Q; Q, R]PSᵀ − W'), ('C', 'NSPᵀ')]
    """
    named = name_parts(list(exprs))
    shown = [render(r, style) for r in named.roots]
    return shown, [(render(n, style), render(d, style)) for n, d in named.parts]


FORMATS: dict[str, Callable[[Expr], str]] = {"text": to_text, "unicode": to_unicode,
                                             "latex": to_latex}

_expr._STR_HOOK[0] = to_text
