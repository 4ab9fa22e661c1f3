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
add, sub   (a, b)                   a + b, a - b (a scalar side broadcasts)
neg        (a,)                     -a
mul        (a, b)                   ``*`` or juxtaposition: matrix product, or scaling
                                    when one side is a scalar
matmul     (a, b)                   ``@``: always the matrix product
hadamard   (a, b)                   ``.*``, ``\\odot``, ``\\circ``
hdiv       (a, b)                   ``./``, ``\\oslash``
hpow       (a, b)                   ``.^`` (b scalar)
pow        (a, b)                   ``^``: power of a scalar; integer power of a square
                                    matrix (``^-1`` is the inverse)
div        (a, b)                   ``/`` by a scalar (``\\frac``)
transpose  (a,)                     ``'``, ``.T``, ``^T``
norm       (a,)                     value "F" | "2" | "1" | "" (unsubscripted)
call       args                     value: a name in FUNCTIONS
bars       (a,)                     LaTeX ``|a|``: the determinant of a matrix, the
                                    absolute value of a scalar or (elementwise) a vector
block      row-major blocks         value (rows, cols); a ``num`` 0 block is a zero block
slice      (x, r0, r1, c0, c1)      ``X[r0:r1, c0:c1]``: rows r0..r1-1, columns c0..c1-1
                                    (0-based, end excluded); bounds are dimensions
========== ======================== =================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .expr import MatdiffError

__all__ = ["Node", "FUNCTIONS", "ALIASES", "canonical_function", "span_of"]


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


# name -> allowed argument counts
FUNCTIONS: dict[str, tuple[int, ...]] = {
    "tr": (1,), "det": (1,), "logdet": (1,), "inv": (1,), "diag": (1,), "Diag": (1,),
    "vec": (1,), "sum": (1,), "kron": (2,), "norm1": (1,), "norm2": (1,), "normF": (1,),
    "exp": (1,), "log": (1,), "sin": (1,), "cos": (1,), "tan": (1,), "tanh": (1,),
    "sqrt": (1,), "abs": (1,), "sign": (1,), "sigmoid": (1,), "relu": (1,),
    "arcsin": (1,), "arccos": (1,), "arctan": (1,),
    "eye": (1,), "ones": (0, 1, 2), "zeros": (1, 2), "vector": (1,), "matrix": (1,),
    "K": (2,), "unvec": (3,),
}

ALIASES: dict[str, str] = {
    "trace": "tr", "Tr": "tr", "ln": "log", "logistic": "sigmoid", "diagm": "Diag",
    "norm": "norm2", "frob": "normF", "asin": "arcsin", "acos": "arccos", "atan": "arctan",
}


def canonical_function(name: str, pos: int | None = None) -> str:
    """The canonical name of a function, or a MatdiffError naming the unknown one.

    >>> canonical_function("trace")
    'tr'
    """
    name = ALIASES.get(name, name)
    if name not in FUNCTIONS:
        raise MatdiffError(f"unknown function '{name}'", pos=pos)
    return name
