"""Emission: the scheduled IR to lines of Python, one backend template per primitive.

A backend is a table ``{key: Row}``: a key is a primitive ``P``, an ``Op`` (a function the
Op names: ``Op.EXP``, ``Op.DET``, ...) or a name (``"solve"``, ``"dot"``, ``"einsum"``) for
``P.CALL`` nodes. A row is a ``str.format`` template over the operands ``{0}, {1}, ...``, the
module alias ``{m}`` and fields from the node's attribute, with the precedence of its result
and the import line of any module it needs besides the backend's own (``scipy.linalg``,
``jax.scipy.linalg``). An operand is parenthesised by the operator next to its placeholder.

Emission walks the nodes children first: a node used once is written into its consumer when
its code is short (or when only a call-time choice uses it), every other node gets a line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ..expr import Dim, Op
from .ir import Arr, P, walk

__all__ = ["Row", "Backend", "BACKENDS", "NUMPY", "JAX", "TORCH", "Emitter", "literal"]

LOWEST, SUM, PRODUCT, UNARY, POWER, ATOM = range(6)   # Python's operator precedence


@dataclass(frozen=True)
class Row:
    """A template, the precedence of what it writes, the import line it needs."""

    text: str
    prec: int = ATOM
    module: str = ""


Key = Any   # P | Op | str

_COMMON: dict[Key, str | Row] = {
    P.ARRAY: "float({lit})",
    P.EYE: "{m}.eye({n})",
    P.ZEROS: "{m}.zeros(({shape}))",
    P.ONES: "{m}.ones(({shape}))",
    P.ADD: Row("{0} + {1}", SUM),
    P.SUB: Row("{0} - {1}", SUM),
    P.NEG: Row("-{0}", UNARY),
    P.MUL: Row("{0} * {1}", PRODUCT),
    P.DIV: Row("{0} / {1}", PRODUCT),
    P.POW: Row("{0} ** {1}", POWER),
    P.MATMUL: Row("{0} @ {1}", PRODUCT),
    P.TRANSPOSE: "{0}.T",
    P.PERMUTE: "{0}.transpose({axes})",
    P.SLICE: "{0}[{idx}]",
    P.ITEM: "{0}[{idx}]",
    P.RESHAPE: "{0}.reshape({shape})",
    P.CONCAT: "{m}.concatenate([{args}], axis={axis})",
    P.CHOOSE: "({0} if {cond} else {1})",
    # functions, keyed by the Op they compute
    Op.EXP: "{m}.exp({0})", Op.LOG: "{m}.log({0})", Op.SIN: "{m}.sin({0})",
    Op.COS: "{m}.cos({0})", Op.TAN: "{m}.tan({0})", Op.TANH: "{m}.tanh({0})",
    Op.ARCSIN: "{m}.arcsin({0})", Op.ARCCOS: "{m}.arccos({0})", Op.ARCTAN: "{m}.arctan({0})",
    Op.SQRT: "{m}.sqrt({0})", Op.ABS: "{m}.abs({0})", Op.SIGN: "{m}.sign({0})",
    Op.SIGMOID: Row("1 / (1 + {m}.exp(-{0}))", PRODUCT), Op.RELU: "{m}.maximum({0}, 0)",
    Op.TRACE: "{m}.trace({0})", Op.DET: "{m}.linalg.det({0})", Op.INV: "{m}.linalg.inv({0})",
    Op.MATPOW: "{m}.linalg.matrix_power({0}, {k})", Op.KRON: "{m}.kron({0}, {1})",
    Op.DIAG: "{m}.diagonal({0})[:, None]", Op.DIAGM: "{m}.diagflat({0})", Op.SUM: "{m}.sum({0})",
    # functions the lowering uses, by name
    "slogdet": "{m}.linalg.slogdet({0})[1]",                # log|det X|
    "solve": "{m}.linalg.solve({0}, {1})",
    "dot": "{m}.einsum('ij,ij->', {0}, {1})",               # sum(X .* Y); BLAS dot is slower
    "coldot": "{m}.einsum('ij,ij->j', {0}, {1})[:, None]",  # diag(X'Y)
    "rowdot": "{m}.einsum('ij,ij->i', {0}, {1})[:, None]",  # diag(XY')
    "einsum": "{m}.einsum({spec}, {args})",
    "multi_dot": "{m}.linalg.multi_dot([{args}])",
    "colsum": "{0}.sum(axis=0, keepdims=True)",
    "rowsum": "{0}.sum(axis=1, keepdims=True)",
    "addmm": Row("{0} + {1} @ {2}", SUM),                   # NumPy reuses the product's buffer
    "mat11": "{m}.reshape({0}, (1, 1))",
    "kron_trace": "{m}.sum({0}[{m}.arange({n}) // {r}, {m}.arange({n}) // {s}] * "
                  "{1}[{m}.arange({n}) % {r}, {m}.arange({n}) % {s}])",
    "cho_factor": Row("scipy.linalg.cho_factor({0})", module="import scipy.linalg"),
    "cho_solve": Row("scipy.linalg.cho_solve({0}, {1})", module="import scipy.linalg"),
    "number": "float({0})",                                 # a constant output
    "scalar": "{0}",                                        # a scalar output
}

NUMPY: dict[Key, str | Row] = {**_COMMON, "scalar": "float({0})"}
JAX: dict[Key, str | Row] = {
    **_COMMON,
    "dot": "{m}.vdot({0}, {1})",
    "cho_factor": Row("jax.scipy.linalg.cho_factor({0})", module="import jax.scipy.linalg"),
    "cho_solve": Row("jax.scipy.linalg.cho_solve({0}, {1})", module="import jax.scipy.linalg"),
}
TORCH: dict[Key, str | Row] = {
    **_COMMON,
    P.ARRAY: "{m}.tensor(float({lit}), dtype=dtype, device=device)",
    P.EYE: "{m}.eye({n}, dtype=dtype, device=device)",
    P.ZEROS: "{m}.zeros(({shape}), dtype=dtype, device=device)",
    P.ONES: "{m}.ones(({shape}), dtype=dtype, device=device)",
    P.PERMUTE: "{0}.permute({axes})",
    P.CONCAT: "{m}.cat([{args}], dim={axis})",
    Op.SIGMOID: "{m}.sigmoid({0})", Op.RELU: "{m}.relu({0})",
    Op.KRON: "{m}.kron({0}.contiguous(), {1}.contiguous())",   # views a transposed factor
    "dot": "{m}.linalg.vecdot({0}.reshape(-1), {1}.reshape(-1))",
    "coldot": "{m}.linalg.vecdot({0}, {1}, dim=0)[:, None]",   # torch.einsum is slow here
    "rowdot": "{m}.linalg.vecdot({0}, {1}, dim=1)[:, None]",
    "colsum": "{0}.sum(dim=0, keepdim=True)",
    "rowsum": "{0}.sum(dim=1, keepdim=True)",
    "addmm": "{m}.addmm({0}, {1}, {2})",                        # one output buffer, not two
    "mat11": "{m}.as_tensor({0}, dtype=dtype, device=device).reshape(1, 1)",
    "kron_trace": "{m}.sum({0}[{m}.arange({n}, device=device) // {r}, {m}.arange({n}, "
                  "device=device) // {s}] * {1}[{m}.arange({n}, device=device) % {r}, "
                  "{m}.arange({n}, device=device) % {s}])",
    "cho_factor": "{m}.linalg.cholesky({0})",
    "cho_solve": "{m}.cholesky_solve({1}, {0})",
    "number": "{m}.tensor(float({0}), dtype=dtype, device=device)",
}


@dataclass(frozen=True)
class Backend:
    """A target: its import line, module alias, rows, and where X'Y is written (Y'X)'."""

    name: str
    imports: str
    m: str
    rows: dict[Key, str | Row]
    swap: str = "thin"

    def row(self, key: Key) -> Row:
        r = self.rows[key]
        return r if isinstance(r, Row) else Row(r)


BACKENDS: dict[str, Backend] = {
    "numpy": Backend("numpy", "import numpy as np", "np", NUMPY),
    "jax": Backend("jax", "import jax.numpy as jnp", "jnp", JAX, "vector"),
    "torch": Backend("torch", "import torch", "torch", TORCH),
}


def literal(v: Fraction) -> tuple[str, int]:
    """A number as Python code, with its precedence."""
    if v.denominator == 1:
        text = str(v.numerator)
    elif Fraction(float(v)) == v:
        text = repr(float(v))
    else:
        return f"({v.numerator} / {v.denominator})", ATOM
    return text, UNARY if v < 0 else ATOM


def _needs(text: str, i: int) -> int:
    """The precedence operand ``{i}`` needs where it stands in ``text``."""
    k = text.find(f"{{{i}}}")
    if k < 0:                                                  # in {args}: a list item
        return LOWEST
    before, after = text[:k], text[k + len(str(i)) + 2:]
    if after.startswith((".", "[", " ** ")):
        return ATOM
    if before.endswith((" ** ", " @ ", " * ", " / ", "-")):
        return UNARY
    if after.startswith((" @ ", " * ", " / ")) or before.endswith((" + ", " - ")):
        return PRODUCT
    return SUM if after.startswith((" + ", " - ")) else LOWEST


class Emitter:
    """Writes the code of IR nodes for one backend; dimension and input names are given."""

    def __init__(self, backend: Backend, inputs: dict[str, str], dims: dict[str, str]):
        self.b, self.inputs, self.dims = backend, inputs, dims
        self.modules: set[str] = set()

    def dim(self, d: Dim, bare: bool = False) -> str:
        """A dimension as code: names are the ones bound from the input shapes."""
        if d.value is not None:
            return str(d.value)
        parts = [self._mono(m, c) for m, c in d.terms]
        text = parts[0] + "".join(f" - {p[1:]}" if p.startswith("-") else f" + {p}"
                                  for p in parts[1:])
        return text if bare or len(parts) == 1 else f"({text})"

    def _mono(self, mono: tuple[str, ...], c: int) -> str:
        body = "*".join(([str(abs(c))] if abs(c) != 1 or not mono else []) +
                        [self.dims[v] for v in mono])
        return ("-" if c < 0 else "") + body

    def fields(self, x: Arr) -> dict[str, str]:
        a, p = x.attr, x.prim
        if p in (P.ZEROS, P.ONES):
            return {"shape": ", ".join(self.dim(d) for d in a)}
        if p is P.RESHAPE:
            free = next((i for i, d in enumerate(a) if d.value is None and (len(d.terms) > 1
                         or d.terms[0][1] != 1 or len(d.terms[0][0]) > 1)), None)
            return {"shape": ", ".join("-1" if i == free else self.dim(d)
                                       for i, d in enumerate(a))}
        if p is P.SLICE:
            return {"idx": self._index(x)}
        if p is P.ITEM:
            return {"idx": f"{self.dim(a[0])}, {self.dim(a[1])}"}
        if p is P.CHOOSE:
            return {"cond": f"{self.dim(a[0], True)} {a[1]} {self.dim(a[2], True)}"}
        if p is P.CALL:
            return {k: repr(v) if isinstance(v, str) else self.dim(v) if isinstance(v, Dim)
                    else str(v) for k, v in a[1]}
        if p is P.ARRAY:
            return {"lit": self.dim(a) if isinstance(a, Dim) else literal(a)[0]}
        return {"n": self.dim(a)} if p is P.EYE else \
            {"axes": ", ".join(map(str, a))} if p is P.PERMUTE else {"axis": str(a)}

    def _index(self, x: Arr) -> str:
        r0, r1, c0, c1 = x.attr
        rows, cols = x.args[0].shape

        def bounds(start: Dim, stop: Dim, total: Dim) -> str:
            return f"{'' if start == Dim({}) else self.dim(start)}:" \
                   f"{'' if stop == total else self.dim(stop)}"
        c = bounds(c0, c1, cols)
        return bounds(r0, r1, rows) + ("" if c == ":" else f", {c}")

    def code(self, x: Arr, args: Sequence[tuple[str, int]]) -> tuple[str, int]:
        """The code of ``x`` given its operands' code and precedence."""
        if x.prim is P.INPUT:
            return self.inputs[x.attr[0]], ATOM
        if x.prim is P.LIT:
            return literal(x.attr)
        row = self.b.row(x.key if x.prim is P.CALL else x.prim)
        if row.module:
            self.modules.add(row.module)
        ops = [c if p >= _needs(row.text, i) else f"({c})" for i, (c, p) in enumerate(args)]
        text = row.text.format(*ops, m=self.b.m, args=", ".join(c for c, _ in args),
                               **self.fields(x))
        return text, row.prec

    def lines(self, roots: Sequence[Arr], taken: set[str],
              mangle: Any) -> tuple[list[str], list[tuple[str, int]]]:
        """One line per node that is not written into its consumer; the roots' code."""
        nodes = walk(roots)
        uses: dict[Arr, list[Arr]] = {}
        for n in nodes:
            for a in n.args:
                uses.setdefault(a, []).append(n)
        forced: set[Arr] = set()                 # used only inside a call-time choice
        for n in reversed(nodes):
            u = uses.get(n, [])
            if n not in roots and len(u) == 1 and (u[0].prim is P.CHOOSE or u[0] in forced):
                forced.add(n)
        ref: dict[Arr, tuple[str, int]] = {}
        free: set[Arr] = set()               # names, numbers, and views of them: repeatable
        out: list[str] = []
        for n in nodes:
            text, prec = self.code(n, [ref[a] for a in n.args])
            if n.prim in (P.INPUT, P.LIT) or n.prim in (P.TRANSPOSE, P.SLICE, P.ITEM) \
                    and free.issuperset(n.args) and len(text) <= 60:
                free.add(n)
            if n in free or n in forced or n not in roots and len(uses.get(n, [])) == 1 \
                    and len(text) <= 60:
                ref[n] = text, prec
            else:
                name = mangle(f"t{len(out)}", taken)
                out.append(f"{name} = {text}")
                ref[n] = name, ATOM
                free.add(n)
        return out, [ref[r] for r in roots]
