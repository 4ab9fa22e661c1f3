"""Code generation: expressions to a standalone NumPy / JAX / PyTorch function.

Input: one ``Expr`` or a list of them (typically a value and its gradients).
Output: ``codegen`` returns the source of a readable Python function; ``compile`` execs it.

Contract of the generated function:

* its parameters are the free symbols, names mangled to safe ASCII identifiers (``lambda`` ->
  ``lambda_``); no other user text reaches the source;
* inputs: matrices are 2-D arrays, vectors 1-D (or ``(n, 1)``), scalars floats or 0-d arrays;
* outputs: a scalar is a float / 0-d array, an ``(n, 1)`` vector 1-D, anything else 2-D; one
  expression gives one value, a list gives a tuple;
* every shared DAG node is computed once (CSE across all outputs), one line per node; a light
  node used once (a sum, a scaling, a transpose, a slice) is written into its one consumer;
* dimension names are read from the input shapes at call time.

Lowering happens in two steps. ``RESTRUCTURE`` rewrites the DAG so structure is explicit
(``I .* X -> Diag(diag(X))``, ``log(det X) -> logdet X``). Then each node is lowered to one
line by a structural rule where one applies (diagonal-only products, ``solve`` for ``inv``,
Kronecker and block products without materialising, row scaling, sums for ones, chain
order) and by the backend table ``NUMPY`` / ``JAX`` / ``TORCH`` otherwise.
"""

from __future__ import annotations

import builtins
import keyword
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from .expr import (
    ELEMENTWISE,
    Dim,
    Expr,
    MatdiffError,
    Op,
    T,
    add,
    apply,
    block,
    commutation,
    const,
    diag,
    hadamard,
    hpow,
    logdet,
    matmul,
    norm,
    scale,
    slice_,
    toposort,
)
from .spectral_code import TEMPLATES as SPECTRAL
from .spectral_code import attr_code as spectral_attr
from .spectral_code import needs as spectral_needs

__all__ = ["codegen", "compile", "NUMPY", "JAX", "TORCH", "BACKENDS", "mangle"]

ONE = Dim.of(1)

# ----------------------------------------------------------------------------- backend tables
# Templates: ``{m}`` is the module alias, ``{0}``, ``{1}`` the operands, ``{k}`` an attribute.
# n-ary ops are folded pairwise with their template; leaves and attribute ops receive their
# formatted sizes. The structural rules further down take precedence over these defaults.

_COMMON: dict[Op, str] = {
    Op.SYMBOL: "{name}",
    Op.CONST: "{lit}",
    Op.IDENTITY: "{m}.eye({n})",
    Op.ONES: "{m}.ones(({r}, {c}))",
    Op.ZERO: "{m}.zeros(({r}, {c}))",
    Op.COMMUTATION: "{m}.eye({r}).reshape({b}, {a}, -1){perm}.reshape({r}, {r})",  # K vecX=vecX'
    Op.ADD: "{0} + {1}",
    Op.SCALE: "{0} * {1}",
    Op.MATMUL: "{0} @ {1}",
    Op.TRANSPOSE: "{0}.T",
    Op.HADAMARD: "{0} * {1}",
    Op.HDIV: "{0} / {1}",
    Op.POW: "{0} ** {1}",
    Op.KRON: "{m}.kron({0}, {1})",
    Op.BLOCK: "{m}.block({grid})",
    Op.SLICE: "{0}[{idx}]",
    Op.TRACE: "{m}.trace({0})",
    Op.DET: "{m}.linalg.det({0})",
    Op.LOGDET: "{m}.linalg.slogdet({0})[1]",                # log|det X|
    Op.INV: "{m}.linalg.inv({0})",
    Op.MATPOW: "{m}.linalg.matrix_power({0}, {k})",
    Op.DIAG: "{m}.diagonal({0})[:, None]",
    Op.DIAGM: "{m}.diagflat({0})",
    Op.VEC: "{0}.T.reshape(-1, 1)",                         # column-major stacking
    Op.UNVEC: "{0}.reshape({c}, {r}).T",
    Op.SUM: "{m}.sum({0})",
    Op.NORM: "{m}.sqrt({m}.sum({0} * {0}))",                # p = "1": sum(abs(X))
    Op.EXP: "{m}.exp({0})",
    Op.LOG: "{m}.log({0})",
    Op.SIN: "{m}.sin({0})",
    Op.COS: "{m}.cos({0})",
    Op.TAN: "{m}.tan({0})",
    Op.TANH: "{m}.tanh({0})",
    Op.ARCSIN: "{m}.arcsin({0})",
    Op.ARCCOS: "{m}.arccos({0})",
    Op.ARCTAN: "{m}.arctan({0})",
    Op.SQRT: "{m}.sqrt({0})",
    Op.ABS: "{m}.abs({0})",
    Op.SIGN: "{m}.sign({0})",
    Op.SIGMOID: "1 / (1 + {m}.exp(-{0}))",
    Op.RELU: "{m}.maximum({0}, 0)",
}

NUMPY: dict[Op, str] = {**_COMMON, **{op: t for op, (t, _) in SPECTRAL["numpy"].items()}}
JAX: dict[Op, str] = {**_COMMON, **{op: t for op, (t, _) in SPECTRAL["jax"].items()}}
TORCH: dict[Op, str] = {
    **_COMMON,
    **{op: t for op, (t, _) in SPECTRAL["torch"].items()},
    Op.IDENTITY: "{m}.eye({n}, dtype=dtype, device=device)",
    Op.ONES: "{m}.ones(({r}, {c}), dtype=dtype, device=device)",
    Op.ZERO: "{m}.zeros(({r}, {c}), dtype=dtype, device=device)",
    Op.COMMUTATION: "{m}.eye({r}, dtype=dtype, device=device).reshape({b}, {a}, -1)"
                    "{perm}.reshape({r}, {r})",
    Op.KRON: "{m}.kron({0}.contiguous(), {1}.contiguous())",   # views a transposed factor
    Op.BLOCK: "{grid}",
    Op.SIGMOID: "{m}.sigmoid({0})",
    Op.RELU: "{m}.relu({0})",
}


@dataclass(frozen=True)
class Backend:
    """A target: its import line, module alias, op table and a few helper templates."""

    name: str
    imports: str
    m: str
    ops: dict[Op, str]
    helpers: dict[str, str] = field(default_factory=dict)


_HELPERS: dict[str, str] = {
    "solve": "{m}.linalg.solve({0}, {1})",
    "einsum": "{m}.einsum({spec}, {args})",
    "multi_dot": "{m}.linalg.multi_dot([{args}])",
    "cat0": "{m}.concatenate([{args}], axis=0)",
    "cat1": "{m}.concatenate([{args}], axis=1)",
    "add_product": "{0} + {1} @ {2}",                      # NumPy reuses the product's buffer
    "sum0": "{0}.sum(axis=0, keepdims=True)",
    "sum1": "{0}.sum(axis=1, keepdims=True)",
    "dot_all": "{m}.einsum('ij,ij->', {0}, {1})",           # sum(X .* Y); BLAS dot is slower
    "diag_tn": "{m}.einsum('ij,ij->j', {0}, {1})",          # diag(X'Y)
    "diag_nn": "{m}.einsum('ij,ji->i', {0}, {1})",          # diag(XY)
    "perm": ".transpose(1, 0, 2)",
    "perm021": ".transpose(0, 2, 1)",
    "mat11": "{m}.reshape({0}, (1, 1))",
    "scalar": "float({0})",
    "arange": "{m}.arange({0})",
}
_JAX_HELPERS: dict[str, str] = {**_HELPERS, "dot_all": "{m}.vdot({0}, {1})"}
_TORCH_HELPERS: dict[str, str] = {
    **_HELPERS,
    "cat0": "{m}.cat([{args}], dim=0)",
    "cat1": "{m}.cat([{args}], dim=1)",
    "add_product": "{m}.addmm({0}, {1}, {2})",             # one output buffer, not two
    "sum0": "{0}.sum(dim=0, keepdim=True)",
    "sum1": "{0}.sum(dim=1, keepdim=True)",
    "dot_all": "{m}.linalg.vecdot({0}.reshape(-1), {1}.reshape(-1))",
    "diag_tn": "{m}.linalg.vecdot({0}, {1}, dim=0)",         # torch.einsum is slow here
    "diag_nn": "{m}.linalg.vecdot({0}, {1}.T, dim=1)",
    "perm": ".permute(1, 0, 2)",
    "perm021": ".permute(0, 2, 1)",
    "mat11": "{m}.as_tensor({0}, dtype=dtype, device=device).reshape(1, 1)",
    "scalar": "{m}.tensor(float({0}), dtype=dtype, device=device)",
    "arange": "{m}.arange({0}, device=device)",
}

BACKENDS: dict[str, Backend] = {
    "numpy": Backend("numpy", "import numpy as np", "np", NUMPY, _HELPERS),
    "jax": Backend("jax", "import jax.numpy as jnp", "jnp", JAX, _JAX_HELPERS),
    "torch": Backend("torch", "import torch", "torch", TORCH, _TORCH_HELPERS),
}

# ----------------------------------------------------------------------------- restructuring


def _diag_of(x: Expr) -> Expr:
    """diag(x) pushed through linear and elementwise structure."""
    if x.op is Op.ADD:
        return add(*(_diag_of(a) for a in x.args))           # diag(A+B) = diag A + diag B
    if x.op is Op.SCALE:
        return scale(x.args[0], _diag_of(x.args[1]))        # diag(aX) = a diag X
    if x.op is Op.HADAMARD:
        return hadamard(*(_diag_of(a) for a in x.args))      # diag(A.*B) = diag A .* diag B
    if x.op is Op.TRANSPOSE:
        return _diag_of(x.args[0])                          # diag(X') = diag X
    d = diag(x)
    return (_diag_canonical(d) or d) if d.op is Op.DIAG and x.op is Op.MATMUL else d


def _identity_hadamard(e: Expr) -> Expr | None:
    eyes = [a for a in e.args if a.op is Op.IDENTITY]
    if not eyes or e.rows != e.cols:
        return None
    rest = [a for a in e.args if a.op is not Op.IDENTITY]
    inner = hadamard(*rest) if rest else eyes[0]
    return Expr(Op.DIAGM, (_diag_of(inner),))              # I .* X = Diag(diag X)


def _diag_canonical(e: Expr) -> Expr | None:
    """diag(X'Y) = diag(Y'X): one order for both, so CSE finds them."""
    f = e.args[0].args
    if len(f) == 2 and f[0].op is Op.TRANSPOSE and f[1].op is not Op.TRANSPOSE:
        x, y = f[0].args[0], f[1]
        if repr(y) < repr(x):
            return diag(matmul(T(y), x))
    return None


def _transpose(e: Expr) -> Expr | None:
    x = e.args[0]
    if x.op is Op.KRON:                                     # (A kron B)' = A' kron B'
        return Expr(Op.KRON, (T(x.args[0]), T(x.args[1])))
    if x.op is Op.COMMUTATION:                              # K(m,n)' = K(n,m)
        return commutation(x.attr[1], x.attr[0])
    if x.op is Op.DIAGM:                                    # Diag(x)' = Diag(x)
        return x
    if x.op is Op.BLOCK:                                    # [A B; C D]' = [A' C'; B' D']
        r, c = x.attr
        return block([[T(x.args[i * c + j]) for i in range(r)] for j in range(c)])
    return None


def _sliced(x: Expr, r0: Dim, r1: Dim, c0: Dim, c1: Dim) -> Expr:
    """``x[r0:r1, c0:c1]`` with the slice moved through a transpose: ``X'[r, c] = X[c, r]'``."""
    if x.op is Op.TRANSPOSE:
        return T(slice_(x.args[0], c0, c1, r0, r1))
    return slice_(x, r0, r1, c0, c1)


def _chain_split(factors: Sequence[Expr]) -> int:
    """Where a product ``f1 ... fn`` is best cut in two for its last multiplication: by the
    chain DP when every size is known, else the cut whose cost (each side left to right)
    provably never exceeds the others', else before the last factor."""
    dims = [f.rows for f in factors] + [factors[-1].cols]

    def cost(s: int) -> Dim:
        total = dims[0] * dims[s] * dims[-1]
        for lo, hi in ((0, s), (s, len(factors))):
            for i in range(lo + 1, hi):
                total = total + dims[lo] * dims[i] * dims[i + 1]
        return total
    cuts = range(1, len(factors))
    if all(d.value is not None for d in dims):
        return min(cuts, key=lambda s: (cost(s).value, -s))
    for s in reversed(cuts):
        if all(_nonneg(cost(t) - cost(s)) for t in cuts):
            return s
    return len(factors) - 1


def _push_slice(x: Expr, r0: Dim, r1: Dim, c0: Dim, c1: Dim) -> Expr:
    """``(H T)[r, c] = H[r, :] T[:, c]``, recursively; the cut parts are nodes of their own,
    so slices sharing rows share ``H[r, :]`` (CSE) and no part is computed twice."""
    if x.op is not Op.MATMUL or x.args[0].is_scalar or x.args[-1].is_scalar:
        return _sliced(x, r0, r1, c0, c1)
    s = _chain_split(x.args)
    head, tail = matmul(*x.args[:s]), matmul(*x.args[s:])
    return Expr(Op.MATMUL, (_push_slice(head, r0, r1, Dim({}), head.cols),
                            _push_slice(tail, Dim({}), tail.rows, c0, c1)))


def _slice(e: Expr, ctx: _Uses) -> Expr | None:
    x = e.args[0]
    r0, r1, c0, c1 = e.attr
    if x.op is Op.SLICE:                                    # X[a][b] = X[a + b]
        s0, _s1, t0, _t1 = x.attr
        return slice_(x.args[0], s0 + r0, s0 + r1, t0 + c0, t0 + c1)
    if x.op is Op.TRANSPOSE:                                # X'[r, c] = X[c, r]'
        return T(slice_(x.args[0], c0, c1, r0, r1))
    if x.op is Op.MATMUL and ctx.only_sliced(x) and not x.args[0].is_scalar \
            and not x.args[-1].is_scalar:                  # (A..B)[r, c] = A[r, :]..B[:, c]
        return _push_slice(x, r0, r1, c0, c1)
    return None


def _is_scaled_identity(x: Expr) -> bool:
    return x.op is Op.IDENTITY or x.op is Op.SCALE and x.args[1].op is Op.IDENTITY


def _distribute_identity(e: Expr) -> Expr | None:
    """A (cI + Y) B = c A B + A Y B: no identity materialised, and the chain can be reordered."""
    for i, f in enumerate(e.args):
        if f.op is Op.ADD and any(_is_scaled_identity(t) for t in f.args):
            left, right = e.args[:i], e.args[i + 1:]
            terms = []
            for t in f.args:
                if t.op is Op.IDENTITY:
                    terms.append(matmul(*left, *right))
                elif _is_scaled_identity(t):
                    terms.append(scale(t.args[0], matmul(*left, *right)))
                else:
                    terms.append(matmul(*left, t, *right))
            return add(*terms)
    return None


class _Uses:
    """How a node is used in the DAG being restructured, for rules that are only worth it
    when a node has no other consumer. Rules see rewritten nodes; ``origin`` maps them back."""

    def __init__(self, nodes: Sequence[Expr], roots: Sequence[Expr]):
        self.parents: dict[Expr, list[Expr]] = {}
        for node in nodes:
            for a in node.args:
                self.parents.setdefault(a, []).append(node)
        self.roots = set(roots)
        self.origin: dict[Expr, Expr] = {}

    def consumers(self, x: Expr) -> list[Expr] | None:
        """The nodes using ``x``; None when ``x`` is an output (the caller sees it too)."""
        x = self.origin.get(x, x)
        return None if x in self.roots else self.parents.get(x, [])

    def single_use(self, x: Expr) -> bool:
        users = self.consumers(x)
        return users is not None and len(users) == 1

    def only_sliced(self, x: Expr) -> bool:
        """Used only through slices that together cover no more than ``x``: computing each
        slice by itself costs no more than computing ``x``."""
        users = self.consumers(x)
        if not users or any(u.op is not Op.SLICE for u in users):
            return False
        area = Dim({})
        for u in users:
            r0, r1, c0, c1 = u.attr
            area = area + (r1 - r0) * (c1 - c0)
        return _nonneg(x.rows * x.cols - area)


def _diagm_factor(t: Expr) -> int | None:
    """The position of a ``Diag(v)`` factor of the product ``t``, if any."""
    return next((i for i, f in enumerate(t.args) if f.op is Op.DIAGM), None) \
        if t.op is Op.MATMUL else None


def _dense_pair(t: Expr) -> bool:
    """A product of exactly two dense matrices (no structure a scalar could go onto)."""
    mats = [f for f in t.args if not f.is_scalar] if t.op is Op.MATMUL else []
    return len(mats) == 2 and all(f.op not in _SPECIAL and f.rows != ONE and f.cols != ONE
                                  for f in mats)


def _distribute_scale(e: Expr, ctx: _Uses) -> Expr | None:
    """c (A Diag(v) + X Y + U V) = A Diag(c v) + (c X) Y + (c U) V: the number goes onto
    a vector or, for products summed together, into their concatenated factors (see
    ``_add``), instead of a pass over the whole sum. Only when every term takes it."""
    c, x = e.args
    if c.op is not Op.CONST or x.op is not Op.ADD or not ctx.single_use(x):
        return None
    cores = [t.args[1] if t.op is Op.SCALE and t.args[0].op is Op.CONST else t for t in x.args]
    pairs = sum(_dense_pair(t) for t in cores)
    takes = [_diagm_factor(t) is not None or (pairs > 1 and _dense_pair(t)) for t in cores]
    if not all(takes):
        return None
    terms = []
    for t, core in zip(x.args, cores, strict=True):
        i = _diagm_factor(core)
        if i is None:
            terms.append(scale(c, t))
            continue
        k = c if t is core else scale(c, t.args[0])
        scaled = Expr(Op.DIAGM, (scale(k, core.args[i].args[0]),))
        terms.append(Expr(Op.MATMUL, (*core.args[:i], scaled, *core.args[i + 1:])))
    return add(*terms)


def _norm_with_diagonal(e: Expr, ctx: _Uses) -> Expr | None:
    """||S + c Diag(v)||_F^2 = (||S||_F^2 - ||diag S||^2) + ||diag S + c v||^2: the diagonal
    matrix is never built (when the sum has no other use). The residual on the diagonal is
    formed before it is squared, so a close fit keeps its accuracy."""
    x, p = e.args
    if x.op is not Op.NORM or x.attr != "2" or p.op is not Op.CONST or p.attr != 2:
        return None
    y = x.args[0]
    if y.op is not Op.ADD or not ctx.single_use(y) or not ctx.single_use(x):
        return None
    diagonal = [t for t in y.args if t.op is Op.DIAGM or t.op is Op.SCALE
                and t.args[0].op is Op.CONST and t.args[1].op is Op.DIAGM]
    if len(diagonal) != 1:
        return None
    (d,) = diagonal
    cv = d.args[0] if d.op is Op.DIAGM else scale(d.args[0], d.args[1].args[0])
    rest = add(*(t for t in y.args if t is not d))
    return add(hpow(norm(rest), 2), scale(const(-1), hpow(norm(diag(rest)), 2)),
               hpow(norm(add(diag(rest), cv)), 2))


Rule = Callable[[Expr, _Uses], "Expr | None"]

RESTRUCTURE: list[tuple[str, Op, Rule]] = [
    ("identity-hadamard", Op.HADAMARD, lambda e, _: _identity_hadamard(e)),
    ("diag-push", Op.DIAG, lambda e, _: _diag_canonical(e) if e.args[0].op is Op.MATMUL
     else _diag_of(e.args[0])),
    ("log-det", Op.LOG, lambda e, _: logdet(e.args[0].args[0]) if e.args[0].op is Op.DET
     else None),                                            # log(det X) = logdet X
    ("transpose-structure", Op.TRANSPOSE, lambda e, _: _transpose(e)),
    ("slice-push", Op.SLICE, _slice),
    ("inverse-transpose", Op.INV, lambda e, _: T(Expr(Op.INV, e.args[0].args))
     if e.args[0].op is Op.TRANSPOSE else None),           # inv(X') = inv(X)', one inverse
    ("distribute-identity", Op.MATMUL, lambda e, _: _distribute_identity(e)),
    ("distribute-scale", Op.SCALE, _distribute_scale),
    ("norm-with-diagonal", Op.POW, _norm_with_diagonal),
]


def _pushed_transpose(x: Expr, memo: dict[Expr, Expr]) -> Expr:
    """The transpose of ``x`` with transposes pushed to the leaves, as the simplifier writes it."""
    if x.is_scalar:
        return x
    if x in memo:
        return memo[x]
    args = x.args
    if x.op is Op.TRANSPOSE:
        out = args[0]
    elif x.op is Op.ADD:                                    # (A + B)' = A' + B'
        out = add(*(_pushed_transpose(a, memo) for a in args))
    elif x.op is Op.MATMUL:                                 # (AB)' = B'A'
        out = matmul(*(_pushed_transpose(a, memo) for a in reversed(args)))
    elif x.op is Op.HADAMARD:
        out = hadamard(*(_pushed_transpose(a, memo) for a in args))
    elif x.op is Op.SCALE:
        out = scale(args[0], _pushed_transpose(args[1], memo))
    elif x.op in ELEMENTWISE:                               # f(X)' = f(X')
        out = apply(x.op, _pushed_transpose(args[0], memo))
    else:
        out = T(x)
    memo[x] = out
    return out


def share_transposes(roots: Sequence[Expr]) -> list[Expr]:
    """Where both ``X`` and (a pushed form of) ``X'`` occur, compute one and transpose it.

    >>> from matdiff.expr import sym, matmul, T
    >>> A, U, V = sym("A", ("m", "n")), sym("U", ("m", "r")), sym("V", ("n", "r"))
    >>> out = share_transposes([A - U @ V.T, A.T - V @ U.T])
    >>> out[1].op.name, out[1].args[0] is out[0]
    ('TRANSPOSE', True)
    """
    nodes = toposort(roots)
    index = {n: i for i, n in enumerate(nodes)}
    pushed: dict[Expr, Expr] = {}
    memo: dict[Expr, Expr] = {}
    for node in nodes:
        args = tuple(memo[a] for a in node.args)
        new = node if args == node.args else Expr(node.op, args, node.attr)
        if node.op in (Op.ADD, Op.MATMUL, Op.HADAMARD) or node.op in ELEMENTWISE:
            p = _pushed_transpose(node, pushed)
            if p is not node and index.get(p, len(nodes)) < index[node]:
                new = T(memo[p])
        memo[node] = new
    return [memo[r] for r in roots]


def restructure(roots: Sequence[Expr]) -> list[Expr]:
    """Rewrite the DAG bottom-up with ``RESTRUCTURE`` so structure is explicit.

    >>> from matdiff.expr import sym, eye, hadamard, T, matmul
    >>> X = sym("X", ("n", "n")); Y = sym("Y", ("n", "n"))
    >>> restructure([hadamard(eye("n"), matmul(T(X), Y))])[0].op.name
    'DIAGM'
    """
    roots = share_transposes(roots)
    nodes = toposort(roots)
    ctx = _Uses(nodes, roots)
    memo: dict[Expr, Expr] = {}
    for node in nodes:
        args = tuple(memo[a] for a in node.args)
        new = node if args == node.args else Expr(node.op, args, node.attr)
        for _name, op, rule in RESTRUCTURE:
            if new.op is op:
                out = rule(new, ctx)
                if out is not None:
                    new = out
        memo[node] = new
        ctx.origin.setdefault(new, node)
    return [memo[r] for r in roots]


# ----------------------------------------------------------------------------- names

_RESERVED = {"np", "jnp", "torch", "dtype", "device", "float", "int", "range", "len", "sum",
             "abs", "min", "max", "None", "True", "False"}


def mangle(name: str, taken: set[str]) -> str:
    """A fresh ASCII identifier for ``name``; only ``[A-Za-z0-9_]`` survives.

    >>> mangle("lambda", set()), mangle("H_R", set()), mangle("2x'", set())
    ('lambda_', 'H_R', 'v_2x_')
    """
    s = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not s or s[0].isdigit():
        s = "v_" + s
    if keyword.iskeyword(s) or keyword.issoftkeyword(s) or s in _RESERVED:
        s += "_"
    base, i = s, 1
    while s in taken:
        s, i = f"{base}_{i}", i + 1
    taken.add(s)
    return s


def _literal(v: Fraction) -> str:
    if v.denominator == 1:
        return str(v.numerator)
    if Fraction(float(v)) == v:
        return repr(float(v))
    return f"({v.numerator} / {v.denominator})"


# ----------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Val:
    """A piece of generated code: its text, whether it needs parentheses, its shape, and the
    node it computes (None for intermediate products)."""

    code: str
    atomic: bool
    rows: Dim
    cols: Dim
    expr: Expr | None = None

    def __str__(self) -> str:
        return self.code if self.atomic else f"({self.code})"

    @property
    def scalar(self) -> bool:
        return self.rows == ONE and self.cols == ONE


_SPECIAL = {Op.INV, Op.DIAGM, Op.KRON, Op.BLOCK, Op.ONES, Op.COMMUTATION, Op.IDENTITY,
            Op.ZERO}
_TOKEN = re.compile("\x00(\\d+)\x00")
_DIM_TOKEN = re.compile("\x01([^\x01]*)\x01")
_ATOMIC = re.compile(r"[\w.]+(\[[^\[\]]*\])*(\.T)?")


def _atomic(code: str) -> bool:
    """Whether ``code`` can stand as an operand without parentheses: a name, an index, or a
    call whose parenthesis closes at the end."""
    code = _TOKEN.sub("t", code)
    if _ATOMIC.fullmatch(code):
        return True
    head = re.match(r"[\w.]+\(", code)
    if head is None:
        return False
    depth = 0
    for i, ch in enumerate(code[head.end() - 1:], head.end() - 1):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if depth == 0:
            return i == len(code) - 1
    return False
_INLINE = {Op.ADD, Op.SCALE, Op.HADAMARD, Op.HDIV, Op.POW, Op.TRANSPOSE, Op.SLICE,
           Op.DIAGM} | ELEMENTWISE
_LITERAL = re.compile(r"\(?-?\d[\d.]*(e[-+]?\d+)?( / \d+)?\)?")     # as _literal writes
_RESHAPES = re.compile(r"\.reshape\([^()]*\)(?=\.reshape\()")


class _Gen:
    """One code-generation run: demand-driven lowering of the needed nodes."""

    def __init__(self, backend: Backend, symbols: dict[str, Expr], taken: set[str]):
        self.b = backend
        self.m = backend.m
        self.taken = taken
        self.sym_names = {e: mangle(n, taken) for n, e in symbols.items()}
        self.dim_names: dict[str, str] = {}
        self.index: dict[Expr, int] = {}
        self.code: dict[Expr, str] = {}
        self.nodes: list[Expr] = []
        self.uses: dict[Expr, int] = {}
        self.dense_inv: set[Expr] = set()

    # -- references
    def ref(self, e: Expr) -> Val:
        if e.op is Op.SYMBOL:
            return Val(self.sym_names[e], True, e.rows, e.cols, e)
        if e.op is Op.CONST:
            lit = _literal(e.attr)
            return Val(lit, e.attr >= 0, ONE, ONE, e)
        if e not in self.index:
            self.index[e] = len(self.index)
            self.nodes.append(e)
        return Val(f"\x00{self.index[e]}\x00", True, e.rows, e.cols, e)

    def dim(self, d: Dim) -> str:
        """Python code for a dimension; names are bound from input shapes at call time."""
        if d.value is not None:
            return str(d.value)
        parts = []
        for mono, c in d.terms:
            for v in mono:
                self.dim_names.setdefault(v, "")
            body = "*".join(([] if c == 1 else [str(c)]) + ["\x01" + v + "\x01" for v in mono])
            parts.append(body or str(c))
        return " + ".join(parts) if len(parts) == 1 else "(" + " + ".join(parts) + ")"

    def helper(self, key: str, *args: object, **kw: str) -> str:
        return self.b.helpers[key].format(*args, m=self.m, **kw)

    def template(self, op: Op, *args: object, **kw: object) -> str:
        return self.b.ops[op].format(*args, m=self.m, **kw)

    def val(self, code: str, rows: Dim, cols: Dim, atomic: bool = False) -> Val:
        return Val(code, atomic, rows, cols)

    # -- lowering of one node to one expression
    def lower(self, e: Expr) -> str:
        for op, rule in RULES:
            if e.op is op:
                out = rule(self, e)
                if out is not None:
                    return out
        return self.default(e)

    def default(self, e: Expr) -> str:
        a = [self.ref(x) for x in e.args]
        op = e.op
        if op in ELEMENTWISE and e.args[0].op is Op.CONST:     # relu(2) ** -1: a float, as
            a = [Val(repr(float(e.args[0].attr)), True, ONE, ONE, e.args[0])]  # ints overflow
        if op in (Op.IDENTITY, Op.COMMUTATION) and e.is_scalar:  # I_1 = K(1,1) = 1, 0-d
            return self.helper("scalar", 1)
        if op in (Op.IDENTITY,):
            return self.template(op, n=self.dim(e.attr))
        if op in (Op.ONES, Op.ZERO):
            return self.template(op, r=self.dim(e.rows), c=self.dim(e.cols))
        if op is Op.COMMUTATION:
            return self.template(op, r=self.dim(e.rows), a=self.dim(e.attr[0]),
                                 b=self.dim(e.attr[1]), perm=self.helper("perm"))
        if op in (Op.ADD, Op.HADAMARD, Op.MATMUL):
            out = str(a[0])
            for x in a[1:]:
                out = self.template(op, out, x)
            return out
        if op is Op.BLOCK:
            return self.block(e)
        if op is Op.MATPOW:
            return self.template(op, a[0], k=e.attr)
        if op is Op.UNVEC:
            return self.template(op, a[0], r=self.dim(e.attr[0]), c=self.dim(e.attr[1]))
        if op in SPECTRAL[self.b.name]:                       # expm, eigvec, ... (attr: k)
            return self.template(op, *a, k=spectral_attr(e))
        if op is Op.NORM and e.attr == "1":
            return f"{self.m}.sum({self.m}.abs({a[0]}))"
        if op in ELEMENTWISE and e.is_scalar and self.b.name == "torch":
            a = [self.val(self.helper("mat11", x), ONE, ONE) for x in a]
            return self.template(op, *a) + ".reshape(())"
        return self.template(op, *a)

    # -- blocks
    def block(self, e: Expr) -> str:
        r, c = e.attr
        grid = [[self.block_entry(x) for x in e.args[i * c:(i + 1) * c]] for i in range(r)]
        if self.b.name == "torch":
            rows = [x[0] if len(x) == 1 else self.helper("cat1", args=", ".join(x))
                    for x in grid]
            return rows[0] if len(rows) == 1 else self.helper("cat0", args=", ".join(rows))
        return self.template(Op.BLOCK, grid="[" + ", ".join(
            "[" + ", ".join(row) + "]" for row in grid) + "]")

    def block_entry(self, x: Expr) -> str:
        if x.is_scalar:
            return self.helper("mat11", self.ref(x))
        return str(self.ref(x))

    def slice_rows(self, v: Val, start: Dim, stop: Dim, cols: bool = False) -> Val:
        total = v.cols if cols else v.rows
        lo = "" if start == Dim({}) else self.dim(start)
        hi = "" if stop == total else self.dim(stop)
        idx = f"{lo}:{hi}"
        if idx == ":":
            return v
        code = f"{v}[:, {idx}]" if cols else f"{v}[{idx}]"
        return Val(code, True, v.rows if cols else stop - start, stop - start if cols else v.cols)

    # -- products
    def mul(self, left: Val, right: Val) -> Val:
        """``left @ right``, exploiting the structure of either factor."""
        rows, cols = left.rows, right.cols
        if left.scalar or right.scalar:
            return self.val(f"{left} * {right}", rows, cols)
        if self.is_special(left):
            return self.apply_left(left, right)
        if self.is_special(right):
            return self.apply_right(left, right)
        if left.cols == ONE:                                   # outer product u v' = u .* v'
            return self.val(f"{left} * {right}", rows, cols)
        plain = self.val(f"{left} @ {right}", rows, cols)
        if not _transposed(left) or _transposed(right):
            return plain
        # X'Y = (Y'X)': the same product, which OpenBLAS and MKL run 2x to 3x faster when
        # the result is tall and thin, and XLA 8x faster when Y is a vector
        # (benchmarks/README.md); decided at call time when the sizes are symbolic
        x = self.ref(left.expr.args[0])                        # type: ignore[union-attr]
        swapped = self.val(f"({right}.T @ {x}).T", rows, cols, True)
        if cols == ONE or self.b.name == "jax":
            return swapped if cols == ONE and self.b.name == "jax" else plain
        if _nonneg(cols - rows):
            return plain
        if _nonneg(rows - cols - ONE):
            return swapped
        # parenthesised: a conditional binds looser than the + of a block row (case 97233)
        return self.val(f"({swapped} if {self.dim(rows)} > {self.dim(cols)} else {plain})",
                        rows, cols, True)

    def is_special(self, v: Val) -> bool:
        """A factor applied as an operator (never multiplied out as a dense matrix); an
        inverse only when its product is its single use (else it is computed once)."""
        e = v.expr
        if e is not None and e.op is Op.TRANSPOSE and e.args[0].op is Op.INV:
            e = e.args[0]
        if e is None or e.op not in _SPECIAL:
            return False
        return e.op is not Op.INV or e not in self.dense_inv

    def apply_left(self, s: Val, v: Val) -> Val:
        e = s.expr
        assert e is not None
        rows, cols = s.rows, v.cols
        if e.op is Op.IDENTITY:
            return v
        if e.op is Op.ZERO:
            zero = self.template(Op.ZERO, r=self.dim(rows), c=f"{v}.shape[1]")
            return self.val(zero, rows, cols, True)
        if e.op is Op.INV:                                     # inv(A) B = solve(A, B)
            return self.val(self.helper("solve", self.ref(e.args[0]), v), rows, cols, True)
        if e.op is Op.TRANSPOSE:                               # inv(A)' B = solve(A', B)
            a = self.ref(e.args[0].args[0])
            return self.val(self.helper("solve", f"{a}.T", v), rows, cols, True)
        if e.op is Op.DIAGM:                                   # Diag(x) B = x .* B (rows)
            return self.val(f"{self.ref(e.args[0])} * {v}", rows, cols)
        if e.op is Op.ONES:                                    # 1 B = 1 colsum(B)
            sums = self.helper("sum0", v)
            if e.rows == ONE:
                return self.val(sums, rows, cols, True)
            ones = self.template(Op.ONES, r=self.dim(e.rows), c="1")
            return self.val(f"{ones} * {sums}", rows, cols)
        if e.op is Op.KRON:                                    # (A kron B) vec-style
            return self.kron_left(e, v)
        if e.op is Op.BLOCK:                                   # block by block, slices
            return self.block_left(e, v)
        if e.op is Op.COMMUTATION:                             # K(a,b) vecX = vec X'
            da, db = self.dim(e.attr[0]), self.dim(e.attr[1])
            code = f"{v}.reshape({db}, {da}, -1){self.helper('perm')}.reshape({self.dim(rows)}, -1)"
            return self.val(code, rows, cols, True)
        raise AssertionError(e.op)

    def apply_right(self, v: Val, s: Val) -> Val:
        e = s.expr
        assert e is not None
        rows, cols = v.rows, s.cols
        if e.op is Op.IDENTITY:
            return v
        if e.op is Op.INV:                                     # B inv(A) = solve(A', B')'
            code = self.helper("solve", f"{self.ref(e.args[0])}.T", f"{v}.T")
            return self.val(code + ".T", rows, cols, True)
        if e.op is Op.TRANSPOSE:                               # B inv(A)' = solve(A, B')'
            code = self.helper("solve", self.ref(e.args[0].args[0]), f"{v}.T")
            return self.val(code + ".T", rows, cols, True)
        if e.op is Op.DIAGM:                                   # B Diag(x) = B .* x' (cols)
            return self.val(f"{v} * {self.ref(e.args[0])}.T", rows, cols)
        if e.op is Op.ONES:                                    # B 1 = rowsum(B) 1'
            sums = self.helper("sum1", v)
            if e.cols == ONE:
                return self.val(sums, rows, cols, True)
            ones = self.template(Op.ONES, r="1", c=self.dim(e.cols))
            return self.val(f"{sums} * {ones}", rows, cols)
        if e.op is Op.KRON:
            return self.kron_right(v, e)
        if e.op is Op.BLOCK:
            return self.block_right(v, e)
        if e.op is Op.COMMUTATION:                             # B K(a,b) = (K(b,a) B')'
            a, b = self.dim(e.attr[0]), self.dim(e.attr[1])
            perm = self.helper("perm")
            code = f"{v}.T.reshape({a}, {b}, -1){perm}.reshape({self.dim(cols)}, -1).T"
            return self.val(code, rows, cols, True)
        if e.op is Op.ZERO:
            return self.val(self.template(Op.ZERO, r=f"{v}.shape[0]", c=self.dim(cols)),
                            rows, cols, True)
        raise AssertionError(e.op)

    def dot(self, x: Val, y: Val) -> str:
        """sum(X .* Y); a Kronecker factor is never materialised:
        <Y, A kron B> = sum_{a,i,b,j} Y4[a,i,b,j] A[a,b] B[i,j]."""
        if x.expr is not None and x.expr.op is Op.KRON:
            x, y = y, x
        k = y.expr
        if k is None or k.op is not Op.KRON:
            return self.helper("dot_all", x, y)
        a, b = k.args
        y4 = f"{x}.reshape({self.dim(a.rows)}, {self.dim(b.rows)}, {self.dim(a.cols)}, " \
             f"{self.dim(b.cols)})"
        return self.einsum("aibj,ab,ij->", y4, self.ref(a), self.ref(b))

    def kron_hadamard(self, others: list[Val], k: Expr) -> str:
        """X .* (A kron B) = (X4 * A[:, None, :, None] * B[None, :, None, :]) reshaped."""
        a, b = k.args
        x = others[0].code if len(others) == 1 else " * ".join(str(o) for o in others)
        x = x if len(others) == 1 and others[0].atomic else f"({x})"
        y4 = f"{x}.reshape({self.dim(a.rows)}, {self.dim(b.rows)}, {self.dim(a.cols)}, " \
             f"{self.dim(b.cols)})"
        factors = [y4]
        if a.op is not Op.ONES:
            factors.append(f"{self.ref(a)}[:, None, :, None]")
        if b.op is not Op.ONES:
            factors.append(f"{self.ref(b)}[None, :, None, :]")
        return f"({' * '.join(factors)}).reshape({self.dim(k.rows)}, {self.dim(k.cols)})"

    def einsum(self, spec: str, *args: object) -> str:
        return self.helper("einsum", spec=repr(spec), args=", ".join(str(a) for a in args))

    def kron_left(self, e: Expr, v: Val) -> Val:
        # (A kron B) M, M3[a, b, j] = M[a*s + b, j]:  out[c*r + d, j] = A[c,a] B[d,b] M3[a,b,j]
        # B acts on (s, q*k), A on (q, r*k); each factor keeps its own structure (mul).
        a, b = e.args
        q, s, r, k = a.cols, b.cols, b.rows, v.cols
        perm = self.helper("perm")
        if b.op is Op.IDENTITY:
            m3 = f"{v}.reshape({self.dim(q)}, {self.dim(s)}, -1)"
        else:
            x = Val(f"{v}.reshape({self.dim(q)}, {self.dim(s)}, -1){perm}"
                    f".reshape({self.dim(s)}, -1)", True, s, q * k)
            y = self.mul(self.ref(b), x)
            m3 = f"{y}.reshape({self.dim(r)}, {self.dim(q)}, -1){perm}"
        if a.op is Op.IDENTITY:
            return self.val(f"{m3}.reshape({self.dim(e.rows)}, -1)", e.rows, k, True)
        z = self.mul(self.ref(a), Val(f"{m3}.reshape({self.dim(q)}, -1)", True, q, r * k))
        return self.val(f"{z}.reshape({self.dim(e.rows)}, -1)", e.rows, k, True)

    def kron_right(self, v: Val, e: Expr) -> Val:
        # M (A kron B), M3[j, c, d] = M[j, c*r + d]:  out[j, a*s + b] = M3[j,c,d] A[c,a] B[d,b]
        a, b = e.args
        p, q, r, k = a.rows, a.cols, b.rows, v.rows
        perm = self.helper("perm021")
        m3 = f"{v}.reshape(-1, {self.dim(p)}, {self.dim(r)})"        # [j, c, d]
        if a.op is not Op.IDENTITY:
            x = Val(f"{m3}{perm}.reshape(-1, {self.dim(p)})", True, k * r, p)
            y = self.mul(x, self.ref(a))                             # [(j, d), a]
            m3 = f"{y}.reshape(-1, {self.dim(r)}, {self.dim(q)}){perm}"   # [j, a, d]
        if b.op is Op.IDENTITY:
            return self.val(f"{m3}.reshape(-1, {self.dim(e.cols)})", k, e.cols, True)
        z = self.mul(Val(f"{m3}.reshape(-1, {self.dim(r)})", True, k * q, r), self.ref(b))
        return self.val(f"{z}.reshape(-1, {self.dim(e.cols)})", k, e.cols, True)

    def block_product(self, x: Expr, part: Val, left: bool) -> Val | None:
        """One block times one slice; None for a zero block."""
        coeff = ""
        if x.op is Op.SCALE and x.args[0].op is Op.CONST:
            c = x.args[0].attr
            coeff = "-" if c == -1 else f"{_literal(c)} * "
            x = x.args[1]
        if x.op is Op.ZERO:
            return None
        if x.op is Op.IDENTITY:
            body = part
        else:
            body = self.mul(self.ref(x), part) if left else self.mul(part, self.ref(x))
        return self.val(f"{coeff}{body}", body.rows, body.cols) if coeff else body

    def block_left(self, e: Expr, v: Val) -> Val:
        r, c = e.attr
        grid = [e.args[i * c:(i + 1) * c] for i in range(r)]
        parts, off = [], Dim({})
        for x in grid[0]:
            parts.append(self.slice_rows(v, off, off + x.cols))
            off = off + x.cols
        rows_out = []
        for row in grid:
            products = (self.block_product(x, p, True) for x, p in zip(row, parts, strict=True))
            terms = [t for t in products if t is not None]
            if not terms:
                terms = [self.val(self.template(Op.ZERO, r=self.dim(row[0].rows),
                                                c=f"{v}.shape[1]"), row[0].rows, v.cols, True)]
            rows_out.append(self._sum(terms))
        if len(rows_out) == 1:
            return rows_out[0]
        args = ", ".join(x.code for x in rows_out)
        return self.val(self.helper("cat0", args=args), e.rows, v.cols, True)

    def block_right(self, v: Val, e: Expr) -> Val:
        r, c = e.attr
        grid = [e.args[i * c:(i + 1) * c] for i in range(r)]
        parts, off = [], Dim({})
        for row in grid:
            parts.append(self.slice_rows(v, off, off + row[0].rows, cols=True))
            off = off + row[0].rows
        cols_out = []
        for j in range(c):
            terms = [t for t in (self.block_product(grid[i][j], parts[i], False)
                                 for i in range(r)) if t is not None]
            if not terms:
                terms = [self.val(self.template(Op.ZERO, r=f"{v}.shape[0]",
                                                c=self.dim(grid[0][j].cols)),
                                  v.rows, grid[0][j].cols, True)]
            cols_out.append(self._sum(terms))
        if len(cols_out) == 1:
            return cols_out[0]
        args = ", ".join(x.code for x in cols_out)
        return self.val(self.helper("cat1", args=args), v.rows, e.cols, True)

    def _sum(self, terms: list[Val]) -> Val:
        if len(terms) == 1:
            return terms[0]
        out = terms[0].code
        for t in terms[1:]:
            out += f" - {t.code[1:]}" if t.code.startswith("-") else f" + {t.code}"
        return self.val(out, terms[0].rows, terms[0].cols)

    def chain(self, factors: Sequence[Val]) -> Val:
        """A matrix product: structured factors bind to a neighbour first, then the dense
        chain is ordered (DP on known sizes, a runtime choice on symbolic ones)."""
        ops = list(factors)

        def special(i: int) -> bool:
            return self.is_special(ops[i])
        while len(ops) > 1:
            # a structured factor acts on a dense neighbour (the right one first), so two
            # structured factors are never multiplied out unless nothing else is left
            pairs = [(i, i + 1) for i in range(len(ops) - 1) if special(i) and not special(i + 1)]
            pairs += [(i - 1, i) for i in range(1, len(ops)) if special(i) and not special(i - 1)]
            if not pairs:
                if not any(special(i) for i in range(len(ops))):
                    break
                pairs = [(len(ops) - 2, len(ops) - 1)]
            lo, hi = pairs[0]
            ops[lo:hi + 1] = [self.mul(ops[lo], ops[hi])]
        if len(ops) == 1:
            return ops[0]
        if len(ops) == 2:
            return self.mul(ops[0], ops[1])
        dims = [f.rows for f in ops] + [ops[-1].cols]
        if all(d.value is not None for d in dims):
            return self._dp_chain(ops, [d.value or 0 for d in dims])
        if len(ops) == 3:
            a, b, c, d = dims
            cost_left, cost_right = a * b * c + a * c * d, b * c * d + a * b * d
            if _nonneg(cost_right - cost_left):                # (AB)C never costs more
                return self.mul(self.mul(ops[0], ops[1]), ops[2])
            if _nonneg(cost_left - cost_right):
                return self.mul(ops[0], self.mul(ops[1], ops[2]))
            left = self.mul(self.mul(ops[0], ops[1]), ops[2])
            right = self.mul(ops[0], self.mul(ops[1], ops[2]))
            cond = f"{self.dim(cost_left)} <= {self.dim(cost_right)}"
            return self.val(f"({left} if {cond} else {right})", dims[0], dims[-1], True)
        return self.val(self.helper("multi_dot", args=", ".join(str(f) for f in ops)),
                        dims[0], dims[-1], True)

    def _dp_chain(self, ops: list[Val], p: list[int]) -> Val:
        n = len(ops)
        cost = [[0] * n for _ in range(n)]
        split = [[0] * n for _ in range(n)]
        for length in range(1, n):
            for i in range(n - length):
                j = i + length
                cost[i][j], split[i][j] = min(
                    (cost[i][k] + cost[k + 1][j] + p[i] * p[k + 1] * p[j + 1], k)
                    for k in range(i, j))

        def build(i: int, j: int) -> Val:
            if i == j:
                return ops[i]
            k = split[i][j]
            return self.mul(build(i, k), build(k + 1, j))
        return build(0, n - 1)


def _transposed(v: Val) -> bool:
    """Whether ``v`` is a transposed node (``X.T``), not a product computed transposed."""
    return v.expr is not None and v.expr.op is Op.TRANSPOSE


def _nonneg(d: Dim) -> bool:
    """True when ``d >= 0`` for all dimensions >= 1: every negative term is covered by positive
    terms whose monomials it divides."""
    pos = {m: c for m, c in d.terms if c > 0}
    for m, c in d.terms:
        need = -c
        for p in sorted(pos, key=len):
            if need <= 0:
                break
            rest = list(p)
            try:
                for v in m:
                    rest.remove(v)
            except ValueError:
                continue
            take = min(need, pos[p])
            pos[p] -= take
            need -= take
        if need > 0:
            return False
    return True


# ----------------------------------------------------------------------------- structural rules

def _split_scalars(g: _Gen, factors: Sequence[Expr]) -> tuple[list[Val], list[Val]]:
    vals = [g.ref(f) for f in factors]
    return [v for v in vals if v.scalar], [v for v in vals if not v.scalar]


def _with_coeff(coeffs: list[Val], body: str, atomic: bool) -> str:
    if not coeffs:
        return body
    first = coeffs[0].code if coeffs[0].expr is not None and coeffs[0].expr.op is Op.CONST \
        else str(coeffs[0])                                    # -2 * x is (-2) * x
    return " * ".join([first] + [str(c) for c in coeffs[1:]] + [body if atomic else f"({body})"])


def _scale_smallest(g: _Gen, coeffs: list[Val], mats: list[Val]) -> tuple[list[Val], list[Val]]:
    """c (A u v') = A (c u) v': a scalar goes onto a vector factor, not onto the product."""
    vectors = [i for i, f in enumerate(mats) if (f.rows == ONE or f.cols == ONE)
               and not g.is_special(f)]
    if not coeffs or not vectors:
        return coeffs, mats
    i = vectors[0]
    scaled = Val(_with_coeff(coeffs, str(mats[i]), True), False, mats[i].rows, mats[i].cols)
    return [], [*mats[:i], scaled, *mats[i + 1:]]


def _kron_sandwich(g: _Gen, mats: Sequence[Val]) -> Val | None:
    """(L1 kron L2) (Y .* (K1 kron K2)) (R1 kron R2) as one einsum over the 4-D view
    Y4[a, i, b, j] = Y[a*Q + i, b*S + j], for outer factors that are identities (an index
    kept) or ones vectors (an index summed): neither the Kronecker products nor the masked
    Y are built. The gradient of a Kronecker factor has this form: the blocks Y_ab summed
    with weights A_ab."""
    if len(mats) != 3 or any(v.expr is None or v.expr.op is not Op.KRON
                             for v in (mats[0], mats[2])):
        return None
    (l1, l2), (r1, r2) = mats[0].expr.args, mats[2].expr.args  # type: ignore[union-attr]
    outer = {"a": (l1, l1.rows), "i": (l2, l2.rows), "b": (r1, r1.cols), "j": (r2, r2.cols)}
    if not all(f.op is Op.IDENTITY or f.op is Op.ONES and size == ONE
               for f, size in outer.values()):
        return None                     # a dense outer factor: kron_left / kron_right
    y = mats[1].expr
    mask: tuple[tuple[Expr, str], ...] = ()
    if y is not None and y.op is Op.HADAMARD and len(y.args) == 2 \
            and [x.op for x in y.args].count(Op.KRON) == 1:
        k = next(x for x in y.args if x.op is Op.KRON)
        y = next(x for x in y.args if x is not k)
        if k.args[0].shape != (l1.cols, r1.rows) or any(f.op is Op.IDENTITY for f in k.args):
            return None
        mask = tuple((f, spec) for f, spec in zip(k.args, ("ab", "ij"), strict=True)
                     if f.op is not Op.ONES)
    if y is None:
        return None
    y4 = f"{g.ref(y)}.reshape({g.dim(l1.cols)}, {g.dim(l2.cols)}, {g.dim(r1.rows)}, " \
         f"{g.dim(r2.rows)})"
    out = "".join(i for i, (f, _) in outer.items() if f.op is Op.IDENTITY)
    spec = ",".join(["aibj", *(sp for _, sp in mask)]) + "->" + out
    code = g.einsum(spec, y4, *(g.ref(f) for f, _ in mask))
    rows, cols = mats[0].rows, mats[2].cols
    if len(out) != 2 or out[0] not in "ai" or out[1] not in "bj":
        code = f"{code}.reshape({g.dim(rows)}, {g.dim(cols)})"
    return g.val(code, rows, cols, True)


def _matmul(g: _Gen, e: Expr, extra: Sequence[Val] = ()) -> str:
    coeffs, mats = _split_scalars(g, e.args)
    if not mats:
        return " * ".join(str(c) for c in [*extra, *coeffs])
    coeffs, mats = _scale_smallest(g, [*extra, *coeffs], mats)
    prod = _kron_sandwich(g, mats) or g.chain(mats)
    body, atomic = prod.code, prod.atomic
    if e.is_scalar:
        body, atomic = f"({body})[0, 0]" if not atomic else f"{body}[0, 0]", True
    return _with_coeff(coeffs, body, atomic)


def _trace(g: _Gen, e: Expr) -> str | None:
    x = e.args[0]
    if x.op is Op.IDENTITY:                                    # tr(I_n) = n
        return g.helper("scalar", g.dim(x.attr))
    if x.op is Op.TRANSPOSE:                                   # tr(X') = tr X
        return g.template(Op.TRACE, g.ref(x.args[0]))
    if x.op is Op.KRON:
        return _trace_kron(g, x)
    if x.op is not Op.MATMUL:
        return None
    coeffs, mats = _split_scalars(g, x.args)                  # tr(A B) = sum(A .* B')
    if len(mats) < 2:
        return None
    first, rest = mats[0], g.chain(mats[1:])

    def untransposed(v: Val) -> Val | None:
        return g.ref(v.expr.args[0]) if v.expr is not None and v.expr.op is Op.TRANSPOSE \
            else None
    f_t, r_t = untransposed(first), untransposed(rest)
    if f_t is not None and r_t is None:                        # tr(X'Y) = <X, Y>
        body = g.dot(f_t, rest)
    elif r_t is not None:                                      # tr(XY') = <X, Y>
        body = g.dot(first, r_t)
    else:
        body = g.helper("dot_all", first, f"{rest}.T")
    return _with_coeff(coeffs, body, True)


def _trace_kron(g: _Gen, k: Expr) -> str:
    """tr(A kron B) = tr A tr B when A and B are square. Otherwise (A p x q, B r x s with
    pr = qs) the diagonal entry i is A[i // r, i // s] B[i % r, i % s]: gathered, never the
    product."""
    a, b = k.args
    if a.rows == a.cols and b.rows == b.cols:
        ta, tb = (g.template(Op.TRACE, g.ref(y)) for y in k.args)
        return f"{ta} * {tb}"
    i = g.helper("arange", g.dim(k.rows))
    r, s = g.dim(b.rows), g.dim(b.cols)
    return g.template(Op.SUM, f"{g.ref(a)}[{i} // {r}, {i} // {s}] * "
                              f"{g.ref(b)}[{i} % {r}, {i} % {s}]")


def _diag(g: _Gen, e: Expr) -> str | None:
    x = e.args[0]
    if x.op is not Op.MATMUL:
        return None
    coeffs, mats = _split_scalars(g, x.args)
    if len(mats) < 2:
        return None
    first, rest = mats[0], g.chain(mats[1:])
    if first.expr is not None and first.expr.op is Op.TRANSPOSE:
        body = g.helper("diag_tn", g.ref(first.expr.args[0]), rest)  # diag(X'Y) = colsum(X.*Y)
    else:
        body = g.helper("diag_nn", first, rest)                      # diag(XY)_i = X_i: Y_:i
    return _with_coeff(coeffs, f"{body}[:, None]", True)


def _slice_lower(g: _Gen, e: Expr) -> str:
    x = g.ref(e.args[0])
    r0, r1, c0, c1 = e.attr
    if e.is_scalar:                                            # one entry
        return f"{x}[{g.dim(r0)}, {g.dim(c0)}]"
    def bounds(start: Dim, stop: Dim, total: Dim) -> str:
        lo = "" if start == Dim({}) else g.dim(start)
        return f"{lo}:{'' if stop == total else g.dim(stop)}"
    rows, cols = bounds(r0, r1, x.rows), bounds(c0, c1, x.cols)
    if cols == ":":
        return f"{x}[{rows}]"
    return f"{x}[{rows}, {cols}]"


def _hadamard(g: _Gen, e: Expr) -> str | None:
    krons = [x for x in e.args if x.op is Op.KRON]
    if len(krons) != 1 or e.is_scalar:
        return None
    others = [g.ref(x) for x in e.args if x is not krons[0]]
    return g.kron_hadamard(others, krons[0])


def _ones_const(x: Expr) -> Fraction | None:
    """c for ``c * ones``, so a sum can broadcast the number instead of building the matrix."""
    if x.op is Op.ONES:
        return Fraction(1)
    if x.op is Op.SCALE and x.args[0].op is Op.CONST and x.args[1].op is Op.ONES:
        return x.args[0].attr
    return None


def _stacked_products(g: _Gen, terms: Sequence[Expr]
                      ) -> tuple[tuple[str, str], list[Expr]] | None:
    """c1 X1 Y1 + c2 X2 Y2 + ... = [c1 X1, c2 X2, ...] [Y1; Y2; ...]: one product with the
    inner dimensions stacked instead of one product and one pass over the sum per term.
    Taken for two or more products of two dense factors that have no other use."""
    found: list[tuple[Expr, list[Val], Val, Val]] = []
    if terms[0].is_scalar:                                     # x'y + u'v: dots stay dots
        return None
    for t in terms:
        core = t.args[1] if t.op is Op.SCALE and not t.args[1].is_scalar else t
        if core.op is not Op.MATMUL or g.uses.get(core) != 1 or g.uses.get(t) != 1:
            continue                                           # no other use, no repeat
        coeffs, mats = _split_scalars(g, core.args)
        if len(mats) != 2 or any(g.is_special(v) for v in mats):
            continue
        if core is not t:
            coeffs = [g.ref(t.args[0]), *coeffs]
        found.append((t, coeffs, mats[0], mats[1]))
    if len(found) < 2:
        return None
    left, right = [], []
    for _t, coeffs, x, y in found:
        c = coeffs[0].expr if len(coeffs) == 1 else None
        if c is not None and c.op is Op.CONST:                 # -X, -2 * X
            left.append(("-" if c.attr == -1 else f"{_literal(c.attr)} * ") + str(x))
        else:
            left.append(_with_coeff(coeffs, str(x), True))
        right.append(str(y))
    return (g.helper("cat1", args=", ".join(left)), g.helper("cat0", args=", ".join(right))), \
        [t for t, *_ in found]


def _add(g: _Gen, e: Expr) -> str:
    out = ""
    dense = [x for x in e.args if _ones_const(x) is None]
    stacked = _stacked_products(g, e.args)
    only_numbers = True                                        # out is a literal, no array
    for x in e.args:
        sign = " + "
        c1 = _ones_const(x) if dense else None                 # 1 + X broadcasts
        if stacked is not None and x in stacked[1]:
            continue
        only_numbers = only_numbers and c1 is not None
        if c1 is not None:
            sign, term = (" - ", _literal(-c1)) if c1 < 0 else (" + ", _literal(c1))
        elif x.op is Op.SCALE and x.args[0].op is Op.CONST and x.args[0].attr < 0:
            sign, c = " - ", -x.args[0].attr
            term = str(g.ref(x.args[1])) if c == 1 else f"{_literal(c)} * {g.ref(x.args[1])}"
        else:
            term = str(g.ref(x))
        out = (sign.strip() + term if sign == " - " else term) if not out else out + sign + term
    if stacked is None:
        return out
    (left, right), _terms = stacked
    if out and not only_numbers:
        return g.helper("add_product", out, left, right)
    product = f"{left} @ {right}"                              # torch.addmm wants a tensor
    return product if not out else product + (f" - {out[1:]}" if out.startswith("-")
                                               else f" + {out}")


def _scale(g: _Gen, e: Expr) -> str:
    a, x = (g.ref(y) for y in e.args)
    if e.args[1].op is Op.MATMUL and g.uses.get(e.args[1]) == 1 and not e.is_scalar:
        return _matmul(g, e.args[1], [a])                      # c (A u) = A (c u)
    if e.args[0].op is Op.CONST and e.args[0].attr == -1:
        return f"-{x}"
    return f"{a} * {x}"


def _pow(g: _Gen, e: Expr) -> str | None:
    x, p = e.args
    if x.op is Op.NORM and x.attr == "2" and p.op is Op.CONST and p.attr == 2:
        y = g.ref(x.args[0])                                   # ||X||^2 = sum(X .* X)
        return g.helper("dot_all", y, y) if not y.scalar else f"{y} * {y}"
    return None


def _sum(g: _Gen, e: Expr) -> str | None:
    x = e.args[0]
    if x.op is Op.HADAMARD and len(x.args) == 2:              # sum(X .* Y) = <X, Y>
        return g.dot(*(g.ref(y) for y in x.args))
    if x.op is Op.KRON:                                        # sum(A kron B) = sum A sum B
        return " * ".join(g.template(Op.SUM, g.ref(y)) for y in x.args)
    return None


def _norm(g: _Gen, e: Expr) -> str | None:
    x = e.args[0]
    if x.op is Op.CONST:                                       # ||c||_p = |c|
        return _literal(abs(x.attr))
    y = g.ref(x)
    if y.scalar:                                               # ||a||_p = |a|, a 0-d value
        return f"abs({y})"
    if e.attr != "2":
        return None
    return f"{g.m}.sqrt({g.helper('dot_all', y, y)})"


def _logdet(g: _Gen, e: Expr) -> str | None:
    y = g.ref(e.args[0])
    if not y.scalar:
        return None
    a = g.val(f"abs({y})", ONE, ONE, True)                     # logdet of 1x1 a = log|a|
    if g.b.name == "torch":                                    # a literal is no tensor
        return g.template(Op.LOG, g.helper("mat11", a)) + ".reshape(())"
    return g.template(Op.LOG, a)


RULES: list[tuple[Op, Callable[[_Gen, Expr], str | None]]] = [
    (Op.MATMUL, _matmul),   # structured factors, chain order, scalars pulled out
    (Op.TRACE, _trace),     # tr(AB) = sum(A .* B'), tr(I_n) = n, tr(A kron B) = tr A tr B
    (Op.DIAG, _diag),       # diag(X'Y) = colsum(X .* Y), never the full product
    (Op.ADD, _add),         # A + (-1)B = A - B
    (Op.SCALE, _scale),
    (Op.POW, _pow),         # ||X||_F^2 = <X, X>
    (Op.SUM, _sum),
    (Op.NORM, _norm),
    (Op.LOGDET, _logdet),   # a 1x1 argument is a 0-d value: log|a|
    (Op.SLICE, _slice_lower),   # X[r0:r1, c0:c1], bounds omitted where they are the ends
    (Op.HADAMARD, _hadamard),   # X .* (A kron B) on a 4-D view, never the Kronecker product
]


# ----------------------------------------------------------------------------- driver


def _as_list(exprs: Expr | Sequence[Expr]) -> tuple[list[Expr], bool]:
    if isinstance(exprs, Expr):
        return [exprs], True
    out = list(exprs)
    if not out or not all(isinstance(e, Expr) for e in out):
        raise MatdiffError("codegen needs an expression or a non-empty list of expressions")
    return out, False


def _symbols(roots: Sequence[Expr]) -> dict[str, Expr]:
    out: dict[str, Expr] = {}
    for n in toposort(roots):
        if n.op is Op.SYMBOL:
            if n.attr[0] in out and out[n.attr[0]] is not n:
                raise MatdiffError(f"symbol {n.attr[0]!r} is used with two shapes")
            out.setdefault(n.attr[0], n)
    return out


def _fmt_shape(e: Expr, dim_str: Callable[[Dim], str]) -> str:
    if e.is_scalar:
        return "scalar"
    if e.is_vector:
        return f"vector ({dim_str(e.rows)},)"
    return f"matrix ({dim_str(e.rows)}, {dim_str(e.cols)})"


def _shared_inverses(roots: Sequence[Expr]) -> set[Expr]:
    """Inverses used more than once, or not only as a factor of a product: computed once with
    ``inv``; every other inverse becomes a ``solve``."""
    uses: dict[Expr, list[Op]] = {}
    for node in toposort(roots):
        for a in node.args:
            target = a.args[0] if a.op is Op.TRANSPOSE and a.args[0].op is Op.INV else a
            if target.op is Op.INV:
                uses.setdefault(target, []).append(node.op)
    return {x for x, ops in uses.items() if x in roots or len(ops) > 1 or ops != [Op.MATMUL]}


def _solved_dims(g: _Gen, inputs: list[tuple[str, Expr]]) -> dict[str, tuple[str, set[str]]]:
    """Each dimension name the input shapes determine: its code, read directly (``n =
    X.shape[0]``) or by solving a size linear in it (``p = Y.shape[0] // m``), and the names
    that code uses."""
    axes = [(f"{arg}.shape[{axis}]", d) for arg, e in inputs for axis, d in enumerate(e.shape)
            if d.value is None]
    solved: dict[str, tuple[str, set[str]]] = {}
    for code, d in axes:                                       # n = X.shape[0]
        if len(d.terms) == 1 and d.terms[0][1] == 1 and len(d.terms[0][0]) == 1:
            solved.setdefault(d.terms[0][0][0], (code, set()))
    progress = True
    while progress:                                            # p*m = Y.shape[0], m known
        progress = False
        for code, d in axes:
            unknown = d.names - solved.keys()
            with_v = [(mono, c) for mono, c in d.terms if unknown & set(mono)]
            if len(unknown) != 1 or len(with_v) != 1:
                continue
            (v,) = unknown
            mono, c = with_v[0]
            if mono.count(v) != 1:
                continue
            rest_mono = list(mono)
            rest_mono.remove(v)
            coef = Dim({tuple(rest_mono): c})
            rest = Dim([(mm, cc) for mm, cc in d.terms if v not in mm])
            expr = code if not rest.terms else f"({code} - {g.dim(rest)})"
            if coef != ONE:
                expr = f"{expr} // ({g.dim(coef)})"
            solved[v] = (expr, coef.names | rest.names)
            progress = True
    return solved


def _solve_dims(g: _Gen, inputs: list[tuple[str, Expr]]) -> list[tuple[str, str]]:
    """Code for each needed dimension name (see ``_solved_dims``). Registers the names a
    solution uses in ``g.dim_names``; returns ``(name, code)`` in dependency order."""
    solved = _solved_dims(g, inputs)
    need = set(g.dim_names)
    stack = list(need)
    while stack:
        v = stack.pop()
        if v not in solved:
            raise MatdiffError(f"dimension {mangle(v, set())!r} is not the size of any input, "
                               "so it cannot be read from the arguments")
        for w in solved[v][1] - need:
            need.add(w)
            stack.append(w)
    g.dim_names = {v: "" for v in need}
    return [(v, code) for v, (code, _deps) in solved.items() if v in need]


def _generate(exprs: Expr | Sequence[Expr], backend: str, name: str
              ) -> tuple[str, list[tuple[str, str, Expr]], str]:
    if backend not in BACKENDS:
        raise MatdiffError(f"unknown backend {backend!r}; use one of {sorted(BACKENDS)}")
    outs, single = _as_list(exprs)
    symbols = _symbols(outs)
    roots = restructure(outs)
    taken: set[str] = set()
    fname = mangle(name, taken)
    g = _Gen(BACKENDS[backend], symbols, taken)
    g.dense_inv = _shared_inverses(roots)
    for node in toposort(roots):
        for a in node.args:
            g.uses[a] = g.uses.get(a, 0) + 1
    # demand-driven lowering, parents before children; a node is needed when its token
    # appears in the code of a needed node (rules may bypass nodes they looked at)
    results = [g.ref(r) for r in roots]
    needed = {r for r in roots if r in g.index}
    for node in reversed(toposort(roots)):
        if node in needed:
            g.code[node] = g.lower(node)
            needed.update(g.nodes[int(t)] for t in _TOKEN.findall(g.code[node]))
    order = [n for n in toposort(roots) if n in g.code]
    # a light node used once is written into its consumer: shorter code, and NumPy reuses the
    # temporaries of one expression in place
    refs: dict[int, int] = {}
    for code in [g.code[n] for n in order] + [str(v) for v in results]:
        for t in _TOKEN.findall(code):
            refs[int(t)] = refs.get(int(t), 0) + 1
    root_index = {g.index[r] for r in roots if r in g.index}
    inline: dict[int, str] = {}
    for n in order:
        i = g.index[n]
        code = _TOKEN.sub(lambda mt: inline.get(int(mt.group(1)), mt.group(0)),
                          _RESHAPES.sub("", g.code[n]))
        if refs.get(i) == 1 and i not in root_index and n.op in _INLINE and len(code) <= 60:
            inline[i] = code if _atomic(code) else f"({code})"
        g.code[n] = code
    order = [n for n in order if g.index[n] not in inline]
    # names: temporaries, then dimensions
    tmp_name = {g.index[n]: mangle(f"t{i}", taken) for i, n in enumerate(order)}
    sym_by_name = list(symbols.items())
    inputs = [(g.sym_names[e], e) for e in symbols.values()]
    solvable = _solved_dims(g, inputs).keys()
    checks = [(v, "(" + ", ".join(g.dim(d) for d in e.shape) + ")") for v, e in inputs
              if not e.is_scalar and all(d.names <= solvable for d in e.shape)]
    dim_code = _solve_dims(g, inputs)
    for d in sorted(g.dim_names):
        g.dim_names[d] = mangle(d, taken)
    body: list[str] = []
    m = g.m
    for e in symbols.values():
        v = g.sym_names[e]
        if e.is_vector:
            body.append(f"{v} = {v}.reshape(-1, 1)")
    if backend == "torch":
        mats = [e for e in symbols.values() if not e.is_scalar]
        scalars = [e for e in symbols.values() if e.is_scalar]
        if mats:
            body.insert(0, f"dtype, device = {g.sym_names[mats[0]]}.dtype, "
                        f"{g.sym_names[mats[0]]}.device")
        elif scalars:
            v0 = g.sym_names[scalars[0]]
            body.append(f"{v0} = {m}.as_tensor({v0}, dtype={m}.float64)")
            body.append(f"dtype, device = {v0}.dtype, {v0}.device")
        else:
            body.append(f"dtype, device = {m}.float64, 'cpu'")
        for e in scalars:
            v = g.sym_names[e]
            body.append(f"{v} = {m}.as_tensor({v}, dtype=dtype, device=device)")
    for d, code in dim_code:
        code = _DIM_TOKEN.sub(lambda mt: g.dim_names[mt.group(1)], code)
        body.append(f"{g.dim_names[d]} = {code}")
    for v, want in checks:                   # NumPy would broadcast a wrong shape silently
        want = _DIM_TOKEN.sub(lambda mt: g.dim_names[mt.group(1)], want)
        body.append(f'assert {v}.shape == {want}, f"{v} has shape {{{v}.shape}}, '
                    f'expected {{{want}}}"')

    def subst(code: str) -> str:
        code = _RESHAPES.sub("", code)                          # x.reshape(a).reshape(b)
        code = _TOKEN.sub(lambda mt: tmp_name[int(mt.group(1))], code)
        return _DIM_TOKEN.sub(lambda mt: g.dim_names[mt.group(1)], code)

    for n in order:
        body.append(f"{tmp_name[g.index[n]]} = {subst(g.code[n])}")
    rets = []
    for r, res in zip(roots, results, strict=True):
        code = subst(str(res))
        if r.is_scalar:
            literal = any(_LITERAL.fullmatch(c) for c in (code, g.code.get(r, "")))  # a number
            rets.append(g.helper("scalar", code) if backend == "numpy" or literal else code)
        elif r.is_vector:
            rets.append(f"{code}.reshape(-1)")
        else:
            rets.append(code)
    body.append("return " + (rets[0] if single else ", ".join(rets) + ("," if len(rets) == 1
                                                                       else "")))

    def dim_str(d: Dim) -> str:
        if d.value is not None:
            return str(d.value)
        parts = []
        for mono, c in d.terms:
            f = [g.dim_names.get(v) or mangle(v, set()) for v in mono]
            parts.append("*".join(([str(c)] if c != 1 else []) + f) or str(c))
        return " + ".join(parts)

    params = [g.sym_names[e] for e in symbols.values()]
    doc = [f'"""Generated by matdiff ({backend}): {len(outs)} output(s), CSE across them.', "",
           "Inputs:"]
    doc += [f"    {g.sym_names[e]}: {_fmt_shape(e, dim_str)}" for e in symbols.values()]
    doc += ["", "Returns:"]
    doc += [f"    {_fmt_shape(r, dim_str)}" for r in outs]
    doc += ['"""']
    preludes = spectral_needs(backend, list(g.code), m)  # scipy.linalg, helpers (_logm)
    head = [BACKENDS[backend].imports, *[p for p in preludes if p.startswith("import")]]
    helpers = [p for p in preludes if not p.startswith("import")]
    lines = ["\n".join(head), "", "", *[h + "\n\n" for h in helpers],
             f"def {fname}({', '.join(params)}):"]
    lines += ["    " + x for x in doc + body]
    src = "\n".join(lines) + "\n"
    pairs = [(uname, g.sym_names[e], e) for uname, e in sym_by_name]
    return src, pairs, fname


def codegen(exprs: Expr | Sequence[Expr], backend: str = "numpy",
            name: str = "f_and_grad") -> str:
    """The source of a standalone function computing ``exprs`` with ``backend``.

    >>> from matdiff.expr import sym, matmul, T
    >>> A = sym("A", ("n", "n")); x = sym("x", ("n",))
    >>> for line in codegen(matmul(T(x), A, x)).splitlines()[-4:]:
    ...     print(line)
        assert x.shape == (n, 1), f"x has shape {x.shape}, expected {(n, 1)}"
        assert A.shape == (n, n), f"A has shape {A.shape}, expected {(n, n)}"
        t0 = ((x.T @ A) @ x)[0, 0]
        return float(t0)
    """
    return _generate(exprs, backend, name)[0]


def _check_shapes(pairs: list[tuple[str, str, Expr]], values: dict[str, Any]) -> None:
    """Raise a MatdiffError when the inputs' shapes contradict the symbols' dimensions."""
    sizes: dict[str, int] = {}
    later: list[tuple[str, Dim, int]] = []

    def fail(name: str, want: str, got: tuple[int, ...]) -> None:
        raise MatdiffError(f"argument {name!r} should be {want}, got an array of shape {got}")
    for name, _m, e in pairs:
        shape = tuple(int(s) for s in getattr(values[name], "shape", ()))
        if e.is_scalar:
            if any(s != 1 for s in shape):
                fail(name, "a scalar", shape)
            continue
        full = (shape[0], 1) if e.is_vector and len(shape) == 1 else shape
        if len(full) != 2:
            fail(name, "a vector" if e.is_vector else "a matrix", shape)
        for d, s in zip(e.shape, full, strict=True):
            if d.value is not None and d.value != s:
                fail(name, f"of size {d} along an axis", shape)
            names = d.names
            if d.value is None and len(d.terms) == 1 and d.terms[0][1] == 1 and len(names) == 1:
                (dim,) = names
                if sizes.setdefault(dim, s) != s:
                    fail(name, f"of size {dim} = {sizes[dim]} along an axis", shape)
            elif d.value is None:
                later.append((name, d, s))
    for name, d, s in later:
        v = d.subs(sizes).value
        if v is not None and v != s:
            fail(name, f"of size {d} = {v} along an axis", (s,))


def compile(exprs: Expr | Sequence[Expr], backend: str = "numpy") -> Callable[..., Any]:  # noqa: A001
    """A callable evaluating ``exprs``; call it with keyword arguments named as the symbols.

    >>> import numpy as np
    >>> from matdiff.expr import sym, trace, matmul
    >>> X = sym("X", (2, 2))
    >>> compile(trace(matmul(X, X)))(X=np.eye(2))
    2.0
    """
    src, pairs, fname = _generate(exprs, backend, "f_and_grad")
    namespace: dict[str, Any] = {}
    exec(builtins.compile(src, f"<matdiff {backend}>", "exec"), namespace)
    fn = namespace[fname]
    mod = namespace[BACKENDS[backend].m]

    def convert(value: Any, e: Expr) -> Any:
        if backend == "numpy":
            arr = mod.asarray(value, dtype=float)
            return float(arr.reshape(())) if e.is_scalar else arr
        if backend == "torch" and not isinstance(value, mod.Tensor):
            value = mod.as_tensor(value, dtype=mod.float64)
        if e.is_scalar and getattr(value, "ndim", 0) > 0:      # a 1x1 array: the scalar, 0-d
            return value.reshape(())
        return value

    def call(**kwargs: Any) -> Any:
        missing = [u for u, _m, _e in pairs if u not in kwargs]
        if missing:
            raise MatdiffError("missing argument(s): " + ", ".join(repr(u) for u in missing))
        _check_shapes(pairs, kwargs)
        return fn(**{m: convert(kwargs[u], e) for u, m, e in pairs})

    call.source = src  # type: ignore[attr-defined]
    call.__doc__ = fn.__doc__
    return call
