"""The syntax tree that both grammars (ASCII and LaTeX) produce, before shapes are known.

A ``Node(kind, args, value, start, end)`` keeps the span ``[start, end)`` of the text it came
from, so the shapes stage can point at the place of a mismatch. The shapes stage turns a
``Node`` tree into a typed ``Expr``.

Kinds (``args`` are Nodes; ``value`` as noted):

========== ======================== =================================================
kind       args                     meaning
========== ======================== =================================================
name       ()                       identifier as written (value: str); ``I``, ``I_n``
                                    and ``ones`` name the identity / all-ones unless
                                    declared in ``shapes``
num        ()                       number (value: Fraction)
imag       ()                       imaginary number ``2i``, ``1j``, LaTeX ``\\mathrm{i}``
                                    (value: the real Fraction that multiplies i)
add, sub   (a, b)                   a + b, a - b (a scalar side broadcasts)
neg        (a,)                     -a
mul        (a, b)                   ``*`` or juxtaposition: matrix product, or scaling
                                    when one side is a scalar
matmul     (a, b)                   ``@``: always the matrix product
hadamard   (a, b)                   ``.*``, ``\\odot``, ``\\circ``
hdiv       (a, b)                   ``./``, ``\\oslash``
hpow       (a, b)                   ``.^`` (b scalar)
pow        (a, b)                   ``^``: power of a scalar; integer power of a square
                                    matrix (``^-1`` is the inverse, ``^(1/2)`` sqrtm)
div        (a, b)                   ``/`` by a scalar (``\\frac``)
transpose  (a,)                     value "H": ``'``, ``^H``, ``^*`` (conjugate transpose);
                                    None: ``.'``, ``.T``, ``^T`` (plain)
norm       (a,)                     value "F" | "2" | "1" | "*" | "inf" | a number p as
                                    text ("3", "3/2") | "" (unsubscripted); "2" of a
                                    matrix is the spectral norm, "*" the nuclear
norm_call  (a,)                     ``norm(X, p)``: value "2" (also for ``norm(X)``), "1",
                                    "F" ('fro'), "*" ('nuc'), "inf" (Inf) or a number
string     ()                       a quoted word, the p of ``norm(X, 'nuc')``
epow       (a,)                     LaTeX ``e^{a}``: expm of a square matrix, else exp
call       args                     value: a name in FUNCTIONS (an Op's call: the
                                    expressions, then the sizes its attribute holds,
                                    ``unvec(x, m, n)``), or in FILLS (``vector(1)``)
bars       (a,)                     LaTeX ``|a|``: the determinant of a matrix, the
                                    absolute value of a scalar or (elementwise) a vector
block      row-major blocks         value (rows, cols); a ``num`` 0 block is a zero block
slice      (x, r0, r1, c0, c1)      ``X[r0:r1, c0:c1]``: rows r0..r1-1, columns c0..c1-1
                                    (0-based, end excluded); bounds are dimensions
========== ======================== =================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from .expr import OPS, MatdiffError, Op

__all__ = ["Node", "FUNCTIONS", "FILLS", "AXIS_CALLS", "LATEX_FUNCTIONS", "LATEX_PAIRS",
           "LATEX_APPLIED", "call_counts", "call_name", "canonical_function", "frobenius",
           "norm_subscript", "NORMS", "span_of"]


@dataclass(frozen=True)
class Node:
    """One node of the syntax tree, with its span in the source text.

    >>> Node("name", value="X", start=0, end=1).value
    'X'
    """

    kind: str
    args: tuple[Node, ...] = ()
    value: Any = None
    start: int = 0
    end: int = 0
    text: str | None = field(default=None, compare=False, repr=False)


def span_of(meta: Any) -> tuple[int, int]:
    """The ``[start, end)`` offsets of a Lark tree's ``meta`` (``(0, 0)`` when empty)."""
    return (meta.start_pos, meta.end_pos) if not meta.empty else (0, 0)


# ----------------------------------------------------------------------------- names, from OPS

# every function name of the ASCII language (and of \operatorname{...}) -> its Op
FUNCTIONS: dict[str, Op] = {name: op for op, spec in OPS.items() for name in spec.ascii}
# LaTeX commands that are functions (\det, \tr, \sgn) -> the Op
LATEX_FUNCTIONS: dict[str, Op] = {cmd: op for op, spec in OPS.items() for cmd in spec.latex
                                  if "\\" not in cmd}
# LaTeX commands that are a function only when a parenthesis follows (\sigma(z)) -> the Op
LATEX_APPLIED: dict[str, Op] = {cmd: op for op, spec in OPS.items() for cmd in spec.applied_latex}
# two commands in a row that are one function: \log\det -> (LOG, DET) -> LOGDET
LATEX_PAIRS: dict[tuple[Op, Op], Op] = {
    (LATEX_FUNCTIONS[first], LATEX_FUNCTIONS[second]): op
    for op, spec in OPS.items() for cmd in spec.latex if "\\" in cmd
    for first, second in [cmd.split("\\")]}
# syntax that looks like a call but is no single Op: vector(c), matrix(c) are the constant c
# (1: all ones, 0: zeros) of a size taken from the place, a column or any matrix
FILLS: frozenset[str] = frozenset({"vector", "matrix"})
# calls that may name an axis after their argument, as in MATLAB: sum(X, 1) sums each column
# (a row), sum(X, 2) each row (a column)
AXIS_CALLS: frozenset[str] = frozenset({"sum"})


# the p of ||x||_p, norm(x, p), \|x\|_p as written -> canonical: F, 1, 2, * (nuclear), inf
_NORM_WORDS = {"F": "F", "fro": "F", "2": "2", "1": "1", "*": "*", "nuc": "*", "inf": "inf",
               "Inf": "inf", "infty": "inf", "\\infty": "inf", "∞": "inf"}
NORMS = ("||x||_p for a number p >= 1, ||x||_inf, ||X||_F, ||X||_1 (entrywise), ||X||_2 "
         "(spectral), ||X||_* (nuclear)")


def norm_subscript(text: str, pos: int | None = None, end: int | None = None) -> str:
    r"""The canonical p of a norm: F, 1, 2, *, inf, or a number > 2 or between 1 and 2 as a
    fraction; anything else (``||x||_p``, ``||x||_{1/2}``) is a MatdiffError.

    >>> [norm_subscript(p) for p in ("{fro}", "\\infty", "3", "1.5")]
    ['F', 'inf', '3', '3/2']
    """
    word = text.strip().strip("{}").strip()
    if word in _NORM_WORDS:
        return _NORM_WORDS[word]
    try:
        p = Fraction(word)
    except (ValueError, ZeroDivisionError):
        raise MatdiffError(f"unsupported norm subscript '{word}': matdiff has {NORMS}",
                           pos=pos, end=end) from None
    if p < 1:
        raise MatdiffError(f"||x||_{word} is not a norm (p < 1); matdiff has {NORMS}",
                           pos=pos, end=end)
    return _NORM_WORDS.get(str(p), str(p))


def frobenius(a: Node, b: Node, start: int, end: int) -> Node:
    """``A : B`` (and ``<A, B>``) = ``tr(AᵀB)``, the Frobenius inner product; ``AᵀB`` is
    the matrix product (``@``), so A and B have the same shape."""
    product = Node("matmul", (Node("transpose", (a,), None, a.start, a.end), b), None,
                   a.start, b.end)
    return Node("call", (product,), call_name(Op.TRACE), start, end)


def call_name(op: Op) -> str:
    """The name a call of ``op`` is written with (its first ASCII name).

    >>> call_name(Op.TRACE)
    'tr'
    """
    return OPS[op].ascii[0]


def canonical_function(name: str, pos: int | None = None) -> str:
    """The canonical name of a function: the first ASCII name of its Op that means the same
    call (``norm1`` stays itself, its attribute differs), or a MatdiffError naming the
    unknown one.

    >>> canonical_function("trace"), canonical_function("frob"), canonical_function("norm1")
    ('tr', 'norm2', 'norm1')
    """
    if name in FILLS:
        return name
    if name not in FUNCTIONS:
        raise MatdiffError(f"unknown function '{name}'", pos=pos)
    spec = OPS[FUNCTIONS[name]]
    if spec.attr_of_name is None:
        return spec.ascii[0]
    attr = spec.attr_of_name(name)
    return next(n for n in spec.ascii if spec.attr_of_name(n) == attr)


# what a call with an unsupported number of arguments was likely meant to be
_ARITY_HINTS = {(name, 1): f"{name}(x, y) is the elementwise {word}; the {adj} entry of x, "
                           f"{name}(x) in MATLAB and NumPy, is not supported (its gradient "
                           f"is a one-hot vector; {smooth} is a smooth {word})"
                for name, word, adj, smooth in (
                    ("max", "maximum", "largest", "logsumexp(x)"),
                    ("min", "minimum", "smallest", "-logsumexp(-x)"))}


def arity_message(name: str, counts: tuple[int, ...], got: int) -> str:
    """The error for a call of ``name`` with ``got`` arguments, and what was meant.

    >>> arity_message("max", (2,), 1)[:60]
    'max takes 2 argument(s), got 1: max(x, y) is the elementwise'
    """
    hint = _ARITY_HINTS.get((name, got))
    return f"{name} takes {' or '.join(map(str, counts))} argument(s), got {got}" + (
        f": {hint}" if hint else "")


def call_counts(name: str, pos: int | None = None) -> tuple[int, ...]:
    """The numbers of arguments a call of ``name`` may have, or a MatdiffError naming the
    unknown function.

    >>> call_counts("trace"), call_counts("ones"), call_counts("unvec")
    ((1,), (0, 1, 2), (3,))
    """
    if name in FILLS:
        return (1,)
    if name not in FUNCTIONS:
        raise MatdiffError(f"unknown function '{name}'", pos=pos)
    counts = OPS[FUNCTIONS[name]].counts
    return counts + (2,) if name in AXIS_CALLS else counts
