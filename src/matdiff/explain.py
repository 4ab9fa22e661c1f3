"""The derivation, step by step, in differential form (Magnus & Neudecker's method).

Input: a scalar ``Expr`` φ and the variables. Output: an ``Explanation``: a list of
``Step`` (the rule used, and the line in ASCII, Unicode and LaTeX), the named parts, and the
gradients it reaches. The derivation goes

1. ``φ = M : M + N : N`` — squared norms written as Frobenius inner products
   ``A : B = tr(AᵀB)``, their arguments named (each written the way round that puts the
   variables first, since ``‖−M‖ = ‖M‖``);
2. ``dφ = 2M : dM + 2N : dN`` — the outer rules (``d(M : M) = 2M : dM``,
   ``d tr Y = I : dY``, ``d log det Y = Y⁻ᵀ : dY``);
3. ``= 2M : (I ⊙ (dRᵀA + dQᵀB)) + …`` — the differentials of the parts (forward mode, the
   ``JVP`` table: ``d(AB) = dA B + A dB``, ``d(A ⊙ B) = dA ⊙ B + A ⊙ dB``, blockwise);
4. then, round by round, the outermost operation around each ``dX`` moves to the left of
   the colon by its adjoint (``A : BXC = BᵀACᵀ : X``, ``A : (B ⊙ X) = (A ⊙ B) : X``,
   ``A : [X, Y; Z, W] = A₁₁ : X + …``: the node's row of the ``VJP`` table, through
   ``diff.adjoint``; ``ADJOINT_RULE`` names it) until every term is ``G : dX``;
5. ``dφ = G : dX``, so ``∂φ/∂X = G``.

No index is ever expanded: every line is a matrix expression.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from . import expr as E
from . import printing
from .diff import adjoint, gradients
from .expr import Expr, MatdiffError, Op
from .forward import jvp
from .names import NamedParts, Namer, name_parts, substitute
from .simplify import simplify

__all__ = ["explain", "Explanation", "Step", "ADJOINT_RULE", "inline", "render_steps", "wrap",
           "ascii_text", "WIDTH"]


@dataclass
class Step:
    """One line of the derivation and the rule that produced it."""

    rule: str
    text: str
    unicode: str
    latex: str

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "text": self.text, "unicode": self.unicode,
                "latex": self.latex}


@dataclass
class Explanation:
    """The derivation: ``steps``, the named ``parts`` and the ``gradients`` reached."""

    steps: list[Step]
    parts: list[tuple[Expr, Expr]] = field(default_factory=list)
    gradients: dict[str, Expr] = field(default_factory=dict)

    def render(self, style: str = "unicode") -> str:
        """The derivation as lines of text (``style`` "text", "unicode" or "latex")."""
        lines = [getattr(s, style) for s in self.steps]
        if style == "latex":  # aligned at the first "=" (each step alone has no "&")
            lines = [("&" + line) if line.startswith("=") or line.startswith("\\text")
                     else line.replace(" = ", " &= ", 1) for line in lines]
            body = " \\\\\n".join(lines)
            return f"\\begin{{aligned}}\n{body}\n\\end{{aligned}}"
        return "\n".join(render_steps([s.as_dict() for s in self.steps], style))

    def __str__(self) -> str:
        return self.render("unicode")


# ----------------------------------------------------------------------------- layout

WIDTH = 100  # a derivation line, with its rule, is at most this wide
_BREAKS = (" + ", " − ", " - ", ", ", " : ")
# The rules are written in Unicode; in the text format they are spelt in ASCII.
_ASCII = [("⁻ᵀ", "^-T"), ("⁻¹", "^-1"), ("ᵀ", "'"), ("⊙", ".*"), ("⊘", "./"), ("⊗", " kron "),
          ("‖", "||"), ("²", "^2"), ("∂", "d"), ("φ", "phi"), ("⇒", "=>"), ("−", "-"),
          ("Σᵢⱼ", "sum_ij"), ("ᵢⱼ", "_ij"), ("₁₁", "_11"), ("₁₂", "_12"), ("₂₁", "_21"),
          ("₂₂", "_22"), ("𝟏", "1")]


def ascii_text(s: str) -> str:
    """A rule's Unicode spelt in ASCII, for the text format.

    >>> ascii_text("A : BXC = BᵀACᵀ : X")
    "A : BXC = B'AC' : X"
    """
    for uni, text in _ASCII:
        s = s.replace(uni, text)
    return s


def wrap(line: str, width: int = WIDTH, indent: int = 8) -> list[str]:
    """``line`` cut before a ``+``, ``−``, ``:`` or after a comma, outside brackets where
    possible, so that no piece is wider than ``width``; continuation lines are indented by
    ``indent``.

    >>> wrap("= " + " + ".join(["A"] * 6), width=12, indent=2)
    ['= A + A + A', '  + A + A', '  + A']
    >>> wrap("f(a, b), c", width=8, indent=0)
    ['f(a, b),', 'c']
    """
    out: list[str] = []
    while len(line) > width:
        cut = _cut(line, width)
        if cut <= indent:
            break  # no place to cut: the line stays long
        comma = line[cut] == ","
        out.append(line[:cut + comma].rstrip())
        line = " " * indent + line[cut + comma:].lstrip()
    return out + [line]


def _cut(line: str, width: int) -> int:
    """The last place to cut ``line`` within ``width``: outside brackets if there is one."""
    depth, best, best_any = 0, -1, -1
    for i in range(min(len(line), width + 1)):
        ch = line[i]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif any(line.startswith(b, i) for b in _BREAKS) and i + (ch == ",") <= width:
            best_any = i
            if depth <= 0:
                best = i
    return best if best > 0 else best_any


def render_steps(steps: Sequence[dict[str, str]], style: str, width: int = WIDTH,
                 margin: str = "") -> list[str]:
    """Steps (``Step.as_dict()``) as lines of at most ``width`` characters: each line with
    its rule in brackets beside it, or below it where it does not fit; in the text format
    the rule in ASCII (the formats are never mixed)."""
    lines: list[str] = []
    rules = [ascii_text(st["rule"]) if style == "text" else st["rule"] for st in steps]
    fits = [len(margin + st[style]) for st, rule in zip(steps, rules, strict=True)
            if len(margin + st[style]) + len(rule) + 5 <= width]
    column = max(fits, default=0)  # the rules beside their lines line up where they fit
    for st, rule in zip(steps, rules, strict=True):
        body = wrap(margin + st[style], width, len(margin) + 8)
        tag = f"   [{rule}]"
        if column + len(tag) <= width and len(body[-1]) <= column:
            body[-1] = body[-1].ljust(column) + tag
        elif len(body[-1]) + len(tag) <= width:
            body[-1] += tag
        else:  # the rule on lines of its own, in one pair of brackets
            pieces = wrap(f"{margin}     {rule}", width - 1, len(margin) + 5)
            pieces[0] = pieces[0][:len(margin) + 4] + "[" + pieces[0][len(margin) + 5:]
            body += pieces[:-1] + [pieces[-1] + "]"]
        lines += body
    return lines


# ----------------------------------------------------------------------------- adjoints

ADJOINT_RULE: dict[Op, str] = {
    Op.ADD: "A : (X + Y) = A : X + A : Y",
    Op.SCALE: "A : cX = cA : X",
    Op.MATMUL: "A : BXC = BᵀACᵀ : X",
    Op.TRANSPOSE: "A : Xᵀ = Aᵀ : X",
    Op.HADAMARD: "A : (B ⊙ X) = (A ⊙ B) : X",
    Op.HDIV: "A : (X ⊘ B) = (A ⊘ B) : X",
    Op.BLOCK: "A : [X, Y; Z, W] = A₁₁ : X + A₁₂ : Y + A₂₁ : Z + A₂₂ : W",
    Op.SLICE: "A : X[rows, cols] = (A padded with zeros) : X",
    Op.KRON: "A : (B ⊗ X) = Σᵢⱼ Bᵢⱼ Aᵢⱼ : X (blocks Aᵢⱼ)",
    Op.TRACE: "a : tr X = aI : X",
    Op.DIAG: "a : diag X = Diag(a) : X",
    Op.DIAGM: "A : Diag x = diag(A) : x",
    Op.VEC: "a : vec X = unvec(a) : X",
    Op.UNVEC: "A : unvec(x) = vec(A) : x",
    Op.SUM: "a : sum(X) = a𝟏𝟏ᵀ : X",
    Op.MEAN: "a : mean(X) = (a/mn)𝟏𝟏ᵀ : X",
    Op.TRIL: "A : tril X = tril A : X",
    Op.FRECHET: "A : L_f(B, X) = L_f(Bᵀ, A) : X",
    Op.MEAN: "a : mean(X) = (a/mn)𝟏𝟏ᵀ : X",
    Op.CONJ: "A : X̄ = Ā : X",
    Op.REAL: "A : Re X = A : X (A real)",
    Op.IMAG: "A : Im X = iA : X (A real)",
}
# with complex matrices, A : B = Re tr(AᴴB): the adjoints conjugate
COMPLEX_ADJOINT_RULE: dict[Op, str] = {
    Op.SCALE: "A : cX = c̄A : X",
    Op.MATMUL: "A : BXC = BᴴACᴴ : X",
    Op.HADAMARD: "A : (B ⊙ X) = (A ⊙ B̄) : X",
    Op.HDIV: "A : (X ⊘ B) = (A ⊘ B̄) : X",
}


def _has_d(e: Expr, dsyms: set[Expr]) -> bool:
    return any(n in dsyms for n in E.toposort([e]))


def _adjoint_round(terms: list[tuple[Expr, Expr]], dsyms: set[Expr]
                   ) -> tuple[list[tuple[Expr, Expr]], list[str]]:
    """Move the outermost operation around each differential to the left of the colon: the
    node's adjoint, read from the VJP table (``diff.adjoint``), applied to the coefficient."""
    out: list[tuple[Expr, Expr]] = []
    used: list[str] = []
    complex_inner = any(d.is_complex for d in dsyms)
    for g, lin in terms:
        if lin in dsyms:
            out.append((g, lin))
            continue
        slots = [i for i, a in enumerate(lin.args) if _has_d(a, dsyms)]
        if not slots:  # a differential that is zero
            continue
        out.extend((simplify(x_bar), lin.args[i]) for i, x_bar in
                   zip(slots, adjoint(g, lin, slots, complex_inner), strict=True))
        rule = COMPLEX_ADJOINT_RULE.get(lin.op) if complex_inner else None
        rule = rule or ADJOINT_RULE[lin.op]
        if rule not in used:
            used.append(rule)
    moved = []
    for g, lin in out:  # A : (−X) = −A : X at once
        if lin.op is Op.SCALE and lin.args[0].op is Op.CONST:
            g, lin = simplify(E.scale(lin.args[0], g)), lin.args[1]
        moved.append((g, lin))
    return _merge(moved), used


def _merge(terms: list[tuple[Expr, Expr]]) -> list[tuple[Expr, Expr]]:
    """G₁ : L + G₂ : L = (G₁ + G₂) : L."""
    acc: dict[Expr, list[Expr]] = {}
    for g, lin in terms:
        acc.setdefault(lin, []).append(g)
    return [(simplify(E.add(*gs)) if len(gs) > 1 else gs[0], lin) for lin, gs in acc.items()
            if not E.is_zero(E.add(*gs))]


# ----------------------------------------------------------------------------- printing


class _Lines:
    """Prints inner-product sums ``G₁ : L₁ + G₂ : L₂`` in the three styles."""

    def __init__(self, dnames: dict[str, str]):
        self.dnames = dnames  # "dR" → "R"
        self.held: dict[str, Expr] = {}  # placeholder name → the term d(…) stands for

    def hold(self, e: Expr) -> Expr:
        """A placeholder symbol printed as ``d(e)``."""
        name = f"dHELD{len(self.held)}Z"  # Z ends it: dHELD1Z is not inside dHELD10Z
        self.held[name] = e
        return E.sym(name, e.shape)

    def expr(self, e: Expr, style: str, grouped: bool = False) -> str:
        s = printing.render(e, style)
        for name, held in self.held.items():
            shown = printing.latex_name(name) if style == "latex" else name
            if shown not in s:
                continue
            inner = printing.render(held, style)
            s = s.replace(shown, f"\\mathrm{{d}}\\left({inner}\\right)" if style == "latex"
                          else f"d({inner})")
        if style == "latex":
            for dname, base in self.dnames.items():
                s = s.replace(printing.latex_name(dname),
                              "\\mathrm{d}" + printing.latex_name(base))
        if grouped and (e.op in (Op.ADD, Op.HADAMARD, Op.HDIV) or
                        e.op is Op.KRON and style != "text"):
            s = f"\\left({s}\\right)" if style == "latex" else f"({s})"
        return s

    def inner(self, terms: Sequence[tuple[Expr, Expr]], style: str) -> str:
        if not terms:
            return "0"
        colon = " : "
        minus = " − " if style == "unicode" else " - "
        out = ""
        for i, (g, lin) in enumerate(terms):
            if lin.is_scalar and g.op is Op.CONST:  # a : b = ab for scalars
                g, lin = E.const(1), E.scale(g, lin)
                if lin.op is Op.SCALE and lin.args[0].op is Op.CONST:
                    g, lin = lin.args[0], lin.args[1]
            negative = g.op is Op.SCALE and g.args[0].op is Op.CONST and g.args[0].attr < 0 \
                or g.op is Op.CONST and g.attr < 0
            g = E.neg(g) if negative else g
            if lin.is_scalar:
                body = self.expr(lin, style, grouped=True) if g is E.const(1) else \
                    self.expr(g, style, grouped=True) + " " + self.expr(lin, style, True)
            else:
                body = self.expr(g, style, grouped=True) + colon + \
                    self.expr(lin, style, grouped=True)
            if i == 0:
                out = (minus.strip() + " " if negative else "") + body
            else:
                out += (minus if negative else " + ") + body
        return out

    def lhs(self, what: str, style: str) -> str:
        table = {"phi": ("phi", "φ", "\\phi"), "dphi": ("dphi", "dφ", "\\mathrm{d}\\phi"),
                 "same": ("    ", "   ", "")}
        text, uni, tex = table[what]
        return {"text": text, "unicode": uni, "latex": tex}[style]


def _line(lines: _Lines, rule: str, lhs: str, body: Callable[[str], str]) -> Step:
    out = {}
    for style in ("text", "unicode", "latex"):
        left = lines.lhs(lhs, style)
        sep = " = "
        if style == "latex" and lhs == "same":
            out[style] = f"= {body(style)}"
        else:
            out[style] = f"{left}{sep}{body(style)}"
    return Step(rule, out["text"], out["unicode"], out["latex"])


# ----------------------------------------------------------------------------- explain

_OUTER = {
    "norm": "‖M‖² = M : M,  A : B = tr(AᵀB)",
    "d-norm": "d(M : M) = 2M : dM",
    "d-trace": "d tr Y = I : dY",
    "d-logdet": "d log det Y = Y⁻ᵀ : dY",
    "d-scalar": "dφ = 1 : dφ",
}


def _variables_first(m: Expr, variables: set[Expr]) -> Expr:
    """±m, whichever puts the terms that depend on the variables first with a plus sign."""
    if m.op is not Op.ADD:
        return m
    signs = [(_coefficient(t) < 0) for t in m.args
             if any(n in variables for n in E.toposort([t]))]
    if signs and all(signs):
        return simplify(E.add(*(E.neg(t) for t in m.args)))
    return m


def _coefficient(t: Expr) -> Fraction:
    return t.args[0].attr if t.op is Op.SCALE and t.args[0].op is Op.CONST else Fraction(1)


@dataclass
class _Outer:
    """Step 1: φ = Σ G : L (``phi``), its named ``parts``, and for dφ = Σ G : dY the triples
    (G, Y or the name of Y, Y) in ``outer``, with the outer ``rules`` used."""

    parts: list[tuple[Expr, Expr]] = field(default_factory=list)
    phi: list[tuple[Expr, Expr]] = field(default_factory=list)
    outer: list[tuple[Expr, Expr, Expr]] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)


def _outer_terms(f: Expr, variables: set[Expr], plain: NamedParts) -> _Outer:
    """φ as inner products of named parts, and the outer rules of dφ, term by term; a part
    that the plain output names keeps its name there, any other takes a name the plain
    output does not use."""
    namer = Namer([f, *plain.roots, *(d for _, d in plain.parts)])
    namer.taken |= {n.name for n, _ in plain.parts}
    namer.known = {d: n for n, d in plain.parts}
    out = _Outer()
    for t in f.args if f.op is Op.ADD else (f,):
        _outer_term(t, variables, namer, out)
    return out


def _outer_term(t: Expr, variables: set[Expr], namer: Namer, out: _Outer) -> None:
    t = simplify(t) if t.op is not Op.POW else t  # log det X → logdet X
    c, body = (t.args[0], t.args[1]) if t.op is Op.SCALE and not any(
        n in variables for n in E.toposort([t.args[0]])) else (E.const(1), t)
    if body.op is Op.POW and body.args[1] is E.const(2) and body.args[0].op is Op.NORM \
            and body.args[0].attr == "2":
        m = _variables_first(body.args[0].args[0], variables)
        name = m if m.op is Op.SYMBOL else namer.known.get(m) or namer.fresh(m)
        if name is not m and (name, m) not in out.parts:
            out.parts.append((name, m))
        out.phi.append((E.scale(c, name), name))
        out.outer.append((E.scale(E.scale(E.const(2), c), name), name, m))
        out.rules.append("d-norm")
    elif body.op is Op.TRACE:
        out.phi.append((E.scale(c, E.eye(body.args[0].rows)), body.args[0]))
        out.outer.append((E.scale(c, E.eye(body.args[0].rows)), body.args[0], body.args[0]))
        out.rules.append("d-trace")
    elif body.op is Op.LOGDET:
        y = body.args[0]
        out.phi.append((c, body))
        out.outer.append((E.scale(c, E.T(E.inv(y))), y, y))
        out.rules.append("d-logdet")
    else:
        out.phi.append((c, body))
        out.outer.append((c, body, body))
        out.rules.append("d-scalar")


def _adjoint_steps(lines: _Lines, steps: list[Step], work: list[tuple[Expr, Expr]],
                   dsyms: set[Expr]) -> list[tuple[Expr, Expr]]:
    """Step 4: adjoint rounds until every term is G : dX, one line each."""
    for _ in range(64):
        if all(lin in dsyms for _, lin in work):
            break
        work, used = _adjoint_round(work, dsyms)
        current = list(work)

        def round_body(st: str, cur: list[tuple[Expr, Expr]] = current) -> str:
            return lines.inner(cur, st)
        step = _line(lines, "; ".join(used), "same", round_body)
        if step.unicode == steps[-1].unicode:  # only a coefficient moved: one line, both rules
            step.rule = f"{steps[-1].rule}; {step.rule}"
            steps.pop()
        steps.append(step)
    return work


def _conclusions(lines: _Lines, steps: list[Step], variables: dict[str, Expr],
                 dsym: dict[Expr, Expr], work: list[tuple[Expr, Expr]],
                 parts: list[tuple[Expr, Expr]], plain: NamedParts
                 ) -> tuple[dict[str, Expr], list[tuple[Expr, Expr]]]:
    """Step 5: dφ = G : dX, so ∂φ/∂X = G (the symmetric part for a symmetric X), then the
    gradient as ``matdiff.grad`` prints it, over the same named parts, where that differs;
    and the named parts, the derivation's and the plain output's."""
    grads = {n: next((g for g, lin in work if lin is dsym[x]), E.zeros(x.shape))
             for n, x in variables.items()}
    for n, x in variables.items():
        if x.symmetric:
            grads[n] = simplify(E.scale(E.const(Fraction(1, 2)), E.add(grads[n], E.T(grads[n]))))
    final = dict(zip(variables, plain.roots, strict=True))
    for n in variables:
        steps.append(_conclusion(lines, n, grads[n]))
        if final[n] is not grads[n]:
            steps.append(Step("the same gradient, as matdiff.grad prints it",
                              f"     = {lines.expr(final[n], 'text')}",
                              f"     = {lines.expr(final[n], 'unicode')}",
                              f"= {lines.expr(final[n], 'latex')}"))
    taken = {p for p, _ in parts}
    all_parts = parts + [(n, d) for n, d in plain.parts if n not in taken]
    if all_parts:
        steps.append(_where(lines, all_parts))
    return final, all_parts


def explain(f: Expr, wrt: str | Sequence[str]) -> Explanation:
    """The derivation of ``∂f/∂X`` in differential form, as a list of steps.

    >>> import matdiff as md
    >>> ex = explain(md.parse("||A*X*B - C||_F^2"), "X")
    >>> [s.unicode for s in ex.steps][:2]
    ['φ = M : M', 'dφ = 2M : dM']
    >>> str(ex.gradients["X"])  # as matdiff.grad prints it
    "2*A'*(A*X*B - C)*B'"
    """
    if not f.is_scalar:
        raise MatdiffError("a derivation needs a scalar function")
    symbols = E.free_symbols(f)
    for n in [wrt] if isinstance(wrt, str) else wrt:
        if n not in symbols:
            raise MatdiffError(f"'{n}' does not occur in the expression")
    variables = {n: symbols[n] for n in ([wrt] if isinstance(wrt, str) else wrt)}
    dsym = {x: E.sym("d" + n, x.shape, x.attr[2]) for n, x in variables.items()}
    lines = _Lines({"d" + n: n for n in variables})
    # the gradients named as the plain output names them: the derivation's own parts take
    # other names (one name, one meaning, in both modes)
    reference = gradients(f, list(variables))
    plain = name_parts([simplify(reference[n]) for n in variables])
    # 1. φ as inner products of named parts; 2. the outer rules: dφ = Σ G : dY
    o = _outer_terms(f, set(variables.values()), plain)
    steps: list[Step] = []
    if any(x.is_complex for x in variables.values()):
        steps.append(Step("complex matrices: the real inner product; ∂φ/∂X = ∂φ/∂Re X + "
                          "i ∂φ/∂Im X = 2∂φ/∂X̄", "A : B = Re tr(A'*B)",
                          "A : B = Re tr(AᴴB)", "A : B = \\Re \\operatorname{tr}"
                          "\\left(A^{H} B\\right)"))
    if o.parts:
        steps.append(_line(lines, _OUTER["norm"], "phi", lambda st: lines.inner(
            o.phi, st) if any(g.op is not Op.CONST for g, _ in o.phi) else _plain(f, st)))
    shown = [(simplify(g), _dname(y, dsym, lines)) for g, y, _ in o.outer]
    steps.append(_line(lines, "; ".join(dict.fromkeys(_OUTER[r] for r in o.rules)), "dphi",
                       lambda st: lines.inner(shown, st)))
    # 3. the differentials of the parts (forward mode)
    tangents = {n: dsym[x] for n, x in variables.items()}
    work = [(simplify(g), simplify(jvp(body, tangents))) for g, _, body in o.outer]
    work = _merge([(g, lin) for g, lin in work if not E.is_zero(lin)])
    steps.append(_line(lines, "differentials of the parts: d(AB) = dA B + A dB, "
                       "d(A ⊙ B) = dA ⊙ B + A ⊙ dB, d[A, B] = [dA, dB]", "same",
                       lambda st: lines.inner(work, st)))
    # 4. adjoint rounds; 5. the gradients
    work = _adjoint_steps(lines, steps, work, set(dsym.values()))
    final, all_parts = _conclusions(lines, steps, variables, dsym, work, o.parts, plain)
    return Explanation(steps, all_parts, final)


def _plain(e: Expr, style: str) -> str:
    return printing.render(e, style)


def _dname(y: Expr, dsym: dict[Expr, Expr], lines: _Lines) -> Expr:
    """The differential of a part, shown as ``dM`` (a symbol ``dM``) or ``d(Y)``."""
    if y in dsym:
        return dsym[y]
    if y.op is Op.SYMBOL:
        lines.dnames["d" + y.name] = y.name
        return E.sym("d" + y.name, y.shape, "complex" if y.is_complex else "")
    return lines.hold(y)


def _conclusion(lines: _Lines, name: str, g: Expr) -> Step:
    text = f"so df/d{name} = {lines.expr(g, 'text')}"
    uni = f"so ∂φ/∂{printing.render(E.sym(name), 'unicode')} = {lines.expr(g, 'unicode')}"
    tex = (f"\\frac{{\\partial \\phi}}{{\\partial {printing.latex_name(name)}}} = "
           f"{lines.expr(g, 'latex')}")
    return Step(f"dφ = G : d{name}  ⇒  ∂φ/∂{name} = G", text, uni, tex)


def _where(lines: _Lines, parts: list[tuple[Expr, Expr]]) -> Step:
    out = {}
    for style in ("text", "unicode", "latex"):
        defs = [f"{lines.expr(n, style)} = {lines.expr(d, style)}" for n, d in parts]
        out[style] = ("\\text{where } " + ",\\; ".join(defs)) if style == "latex" \
            else "where " + ", ".join(defs)
    return Step("named parts", out["text"], out["unicode"], out["latex"])


def _inline(g: Expr, parts: Sequence[tuple[Expr, Expr]]) -> Expr:
    env: dict[Expr, Expr] = {}
    for name, body in parts:
        env[name] = substitute(body, env)
    return simplify(substitute(g, env))


def inline(ex: Explanation) -> dict[str, Expr]:
    """The gradients of an explanation with every named part substituted back.

    >>> import matdiff as md
    >>> str(inline(explain(md.parse("||A*X*B - C||_F^2"), "X"))["X"])
    "2*A'*(A*X*B - C)*B'"
    """
    return {n: _inline(g, ex.parts) for n, g in ex.gradients.items()}
