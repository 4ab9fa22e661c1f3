"""Emission: the IR to lines of Python, a straight walk with one backend template a node.

A backend is a table ``{key: Row}``, the key a primitive ``P``, or for ``P.CALL`` an ``Op``
(``Op.EXP``) or a name (``"solve"``). A row is a ``str.format`` template over the operands
``{0}, {1}``, the module alias ``{m}``, the node's attribute ``{a}`` (a CALL's parameters by
name) and ``{dev}`` (PyTorch's dtype and device), with the precedence of what it writes and
an import line it needs (``scipy.linalg``). An operand is parenthesised by the operator
beside its placeholder. A node used once is written into its consumer when short, when
only a call-time choice uses it, or (up to 100 characters) into arithmetic, where NumPy
writes the result into the operand's temporary buffer; the others get a line each. A line
that only some call-time alternatives read is guarded by their tests (``t = … if c0 or not
c1 else None``, each test named once), so a call computes only what the branches it takes
need.

In NumPy, an elementwise operation whose operand is a temporary read for the last time
writes into that operand's buffer (``t2 = np.multiply(t0, M, out=t0)``), so a call
allocates and page-faults fewer arrays; NumPy elides such temporaries itself only inside
one expression, and only for a left operand.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from ..expr import Dim, Op
from .ir import Arr, P, walk
from .spectral import HELPER_ORDER, HELPERS, IMPORTS, ROWS

__all__ = ["Row", "Backend", "BACKENDS", "NUMPY", "JAX", "TORCH", "Emitter"]

LOWEST, SUM, PRODUCT, UNARY, POWER, ATOM = range(6)   # Python's operator precedence


@dataclass(frozen=True)
class Row:
    """A template, the precedence of what it writes, an import line it needs, and the helper
    functions it calls (``spectral.HELPERS``: defined in the generated source)."""

    text: str
    prec: int = ATOM
    module: str = ""
    helpers: tuple[str, ...] = ()


def _spectral(backend: str) -> dict[Any, Row]:
    """The rows of the spectral functions (``spectral.ROWS``), with the module their
    templates or helpers use."""
    out, module = {}, IMPORTS[backend]
    for key, r in ROWS[backend].items():
        sources = [r.text, *(HELPERS[backend][h] for h in r.helpers)]
        uses = bool(module) and any(module.split()[-1] in t for t in sources)
        out[key] = Row(r.text, PRODUCT if r.product else ATOM, module if uses else "",
                       r.helpers)
    return out


def _factorizations(lib: str, module: str) -> dict[Any, str | Row]:
    """Cholesky (F = (L, lower)) and LU (F = (LU, pivots)) factorizations of SciPy's
    interface (scipy.linalg, jax.scipy.linalg), and what is computed from them."""
    rows = {"cho_factor": f"{lib}.cho_factor({{0}})", "cho_solve": f"{lib}.cho_solve({{0}}, {{1}})",
            "lu_factor": f"{lib}.lu_factor({{0}})", "lu_solve": f"{lib}.lu_solve({{0}}, {{1}})",
            "lu_solve_t": f"{lib}.lu_solve({{0}}, {{1}}, trans=1)"}
    return {**{k: Row(v, module=module) for k, v in rows.items()},
            "cho_inv": Row(rows["cho_solve"], module=module),
            "lu_inv": Row(rows["lu_solve"], module=module),
            "cho_logdet": Row("2 * {m}.log({m}.diagonal({0}[0])).sum()", PRODUCT),
            "lu_logdet": "{m}.log({m}.abs({m}.diagonal({0}[0]))).sum()",
            "cho_det": Row("{m}.prod({m}.diagonal({0}[0])) ** 2", POWER)}


_SAME_NAME = (Op.EXP, Op.LOG, Op.SIN, Op.COS, Op.TAN, Op.TANH, Op.ARCSIN, Op.ARCCOS,
              Op.ARCTAN, Op.SQRT, Op.ABS, Op.SIGN, Op.LOG1P, Op.EXPM1, Op.SINH, Op.COSH,
              Op.ARCSINH)                                 # np.exp(x), torch.exp(x), ...
_COMMON: dict[Any, str | Row] = {
    P.ARRAY: "float({a})", P.EYE: "{m}.eye({a}{dev})",
    P.ZEROS: "{m}.zeros(({a}){dev})", P.ONES: "{m}.ones(({a}){dev})",
    P.ADD: Row("{0} + {1}", SUM), P.SUB: Row("{0} - {1}", SUM), P.NEG: Row("-{0}", UNARY),
    P.MUL: Row("{0} * {1}", PRODUCT), P.DIV: Row("{0} / {1}", PRODUCT),
    P.POW: Row("{0} ** {1}", POWER), P.MATMUL: Row("{0} @ {1}", PRODUCT),
    P.TRANSPOSE: "{0}.T", P.PERMUTE: "{0}.transpose({a})", P.SLICE: "{0}[{a}]",
    P.ITEM: "{0}[{a}]", P.RESHAPE: "{0}.reshape({a})",
    P.CONCAT: "{m}.concatenate([{args}], axis={a})", P.CHOOSE: "({0} if {a} else {1})",
    **{op: f"{{m}}.{op.name.lower()}({{0}})" for op in _SAME_NAME},
    Op.CONJ: "{m}.conj({0})", Op.REAL: "{m}.real({0})", Op.IMAG: "{m}.imag({0})",
    Op.ANGLE: "{m}.angle({0})", "imag_unit": "1j", "complex_scalar": "{0}",
    Op.SIGMOID: "{m}.exp(-{m}.logaddexp(0, -{0}))",          # 1/(1 + e⁻ˣ), no overflow
    Op.RELU: "{m}.maximum({0}, 0)", Op.SOFTPLUS: "{m}.logaddexp(0, {0})",  # log(1 + eˣ)
    Op.MAX: "{m}.maximum({0}, {1})", Op.MIN: "{m}.minimum({0}, {1})", Op.MEAN: "{m}.mean({0})",
    Op.LOGSUMEXP: Row("scipy.special.logsumexp({0})", module="import scipy.special"),  # shifted
    Op.SOFTMAX: Row("scipy.special.softmax({0}, axis=0)", module="import scipy.special"),
    Op.TRACE: "{m}.trace({0})", Op.DET: "{m}.linalg.det({0})", Op.INV: "{m}.linalg.inv({0})",
    Op.MATPOW: "{m}.linalg.matrix_power({0}, {k})", Op.KRON: "{m}.kron({0}, {1})",
    Op.DIAG: "{m}.diagonal({0})[:, None]", Op.DIAGM: "{m}.diagflat({0})", Op.SUM: "{m}.sum({0})",
    Op.INF_NORM: "{m}.abs({0}).max()",                      # ||x||_inf
    "slogdet": "{m}.linalg.slogdet({0})[1]",                # log|det X|
    "diag_det": "{m}.prod({m}.diagonal({0}))",              # det D, D diagonal
    "diag_logdet": "{m}.log({m}.abs({m}.diagonal({0}))).sum()",   # log|det D|
    "solve": "{m}.linalg.solve({0}, {1})",
    "dot": "{m}.einsum('ij,ij->', {0}, {1})",               # sum(X .* Y); BLAS dot is slower
    "coldot": "{m}.einsum('ij,ij->j', {0}, {1})[:, None]",  # diag(X'Y)
    "rowdot": "{m}.einsum('ij,ij->i', {0}, {1})[:, None]",  # diag(XY')
    "einsum": "{m}.einsum({spec}, {args})",
    "multi_dot": "{m}.linalg.multi_dot([{args}])",
    "colsum": "{0}.sum(axis=0, keepdims=True)", "rowsum": "{0}.sum(axis=1, keepdims=True)",
    "addmm": Row("{0} + {1} @ {2}", SUM),                   # NumPy reuses the product's buffer
    "mat11": "{m}.reshape({0}, (1, 1))",
    "commutation": "{m}.eye({n}{dev}).reshape({b}, {a}, -1).transpose(1, 0, 2).reshape({n}, {n})",
    "kron_trace": "{m}.sum({0}[{i} // {r}, {i} // {s}] * {1}[{i} % {r}, {i} % {s}])",  # diag
    "arange": "{m}.arange({0})",
    **_factorizations("scipy.linalg", "import scipy.linalg"),
    "number": "float({0})", "scalar": "{0}",                # a constant / scalar output
    "array": "float({0})",                                  # arithmetic on numbers
}
NUMPY: dict[Any, str | Row] = {
    **_COMMON, "scalar": "float({0})", "complex_scalar": "complex({0})", **_spectral("numpy"),
    Op.SIGMOID: Row("scipy.special.expit({0})", module="import scipy.special"),  # no overflow
    Op.SOFTPLUS: Row("_softplus({0})", helpers=("softplus",))}  # 2.4x logaddexp's speed
JAX: dict[Any, str | Row] = {**_COMMON, **_spectral("jax"), "dot": "{m}.vdot({0}, {1})",
                             Op.LOGSUMEXP: Row("jax.scipy.special.logsumexp({0})",
                                               module="import jax.scipy.special"),
                             Op.SOFTMAX: Row("jax.nn.softmax({0}, axis=0)", module="import jax"),
                             **_factorizations("jax.scipy.linalg", "import jax.scipy.linalg")}
TORCH: dict[Any, str | Row] = {
    **_COMMON, **_spectral("torch"), P.ARRAY: "{m}.tensor(float({a}){dev})",
    P.PERMUTE: "{0}.permute({a})", P.CONCAT: "{m}.cat([{args}], dim={a})",
    Op.SIGMOID: "{m}.sigmoid({0})", Op.RELU: "{m}.relu({0})",
    Op.SOFTPLUS: "{m}.nn.functional.softplus({0}, threshold=50)",   # x itself beyond 50
    Op.LOGSUMEXP: "{m}.logsumexp({0}, dim=(0, 1))", Op.SOFTMAX: "{m}.softmax({0}, dim=0)",
    Op.MAX: "{m}.maximum({m}.as_tensor({0}{dev}), {m}.as_tensor({1}{dev}))",  # a number too
    Op.MIN: "{m}.minimum({m}.as_tensor({0}{dev}), {m}.as_tensor({1}{dev}))",
    Op.KRON: "{m}.kron({0}.contiguous(), {1}.contiguous())",   # views a transposed factor
    "dot": "{m}.linalg.vecdot({0}.reshape(-1), {1}.reshape(-1))",
    "coldot": "{m}.linalg.vecdot({0}, {1}, dim=0)[:, None]",   # torch.einsum is slow here
    "rowdot": "{m}.linalg.vecdot({0}, {1}, dim=1)[:, None]",
    "colsum": "{0}.sum(dim=0, keepdim=True)", "rowsum": "{0}.sum(dim=1, keepdim=True)",
    "addmm": "{m}.addmm({0}, {1}, {2})",                        # one output buffer, not two
    "mat11": "{m}.as_tensor({0}{dev}).reshape(1, 1)", "arange": "{m}.arange({0}, device=device)",
    "commutation": "{m}.eye({n}{dev}).reshape({b}, {a}, -1).permute(1, 0, 2).reshape({n}, {n})",
    "cho_factor": "{m}.linalg.cholesky({0})", "cho_solve": "{m}.cholesky_solve({1}, {0})",
    "cho_inv": "{m}.cholesky_inverse({0})", "lu_factor": "{m}.linalg.lu_factor({0})",
    "lu_solve": "{m}.linalg.lu_solve(*{0}, {1})", "lu_inv": "{m}.linalg.lu_solve(*{0}, {1})",
    "lu_solve_t": "{m}.linalg.lu_solve(*{0}, {1}, adjoint=True)",
    "cho_logdet": Row("2 * {m}.log({m}.diagonal({0})).sum()", PRODUCT),
    "cho_det": Row("{m}.prod({m}.diagonal({0})) ** 2", POWER),
    "number": "{m}.tensor(float({0}){dev})", "array": "{m}.tensor({0}{dev})",
    "imag_unit": "{m}.tensor(1j, dtype={m}.complex128, device=device)",
}


@dataclass(frozen=True)
class Backend:
    """A target: its import line, module alias, rows, the dtype and device arguments of its
    constructors, and where X'Y is written (Y'X)' (``Lowering.mm``: "thin", "vector",
    "never")."""

    name: str
    imports: str
    m: str
    rows: dict[Any, str | Row]
    dev: str = ""
    swap: str = "thin"
    into: dict[Any, str] = field(default_factory=dict)  # writes into a dead operand: out=

    def row(self, key: Any) -> Row:
        r = self.rows[key]
        return r if isinstance(r, Row) else Row(r)


BACKENDS: dict[str, Backend] = {
    "numpy": Backend("numpy", "import numpy as np", "np", NUMPY, swap="never", into={
        P.ADD: "{m}.add({0}, {1}, out={out})", P.SUB: "{m}.subtract({0}, {1}, out={out})",
        P.MUL: "{m}.multiply({0}, {1}, out={out})", P.DIV: "{m}.divide({0}, {1}, out={out})",
        P.NEG: "{m}.negative({0}, out={out})", Op.SIGMOID: "scipy.special.expit({0}, out={out})",
        **{op: f"{{m}}.{op.name.lower()}({{0}}, out={{out}})" for op in _SAME_NAME}}),
    "jax": Backend("jax", "import jax.numpy as jnp", "jnp", JAX, swap="vector"),
    "torch": Backend("torch", "import torch", "torch", TORCH, ", dtype=dtype, device=device"),
}


def literal(v: Fraction) -> tuple[str, int]:
    """A number as Python code, and its precedence."""
    if v.denominator != 1 and Fraction(float(v)) != v:
        return f"({v.numerator} / {v.denominator})", ATOM
    return str(v.numerator) if v.denominator == 1 else repr(float(v)), UNARY if v < 0 else ATOM


def _needs(text: str, i: int) -> int:
    """The precedence operand ``{i}`` needs where it stands in ``text``."""
    k = text.find(f"{{{i}}}")
    before, after = text[:max(k, 0)], text[k + len(str(i)) + 2:]
    if k < 0 or after.startswith((".", "[", " ** ")):          # in {args}; x.T, x[i], x ** p
        return LOWEST if k < 0 else ATOM
    if before.endswith((" ** ", " @ ", " * ", " / ", "-")):
        return UNARY
    if after.startswith((" @ ", " * ", " / ")) or before.endswith((" + ", " - ")):
        return PRODUCT
    return SUM if after.startswith((" + ", " - ")) else LOWEST


_ARITHMETIC = (P.ADD, P.SUB, P.MUL, P.DIV, P.NEG)   # a temporary operand's buffer is reused
# What writes a new array of its own (not a view, an input or a number): its buffer may be
# reused once it is dead.
_FRESH = {P.ADD, P.SUB, P.MUL, P.DIV, P.NEG, P.POW, P.MATMUL, P.CONCAT}
_FRESH_CALLS = {*_SAME_NAME, Op.SIGMOID, Op.RELU, Op.SOFTPLUS, Op.MAX, Op.MIN, Op.INV, Op.KRON,
                "addmm", "multi_dot", "solve"}
_NEVER = 1 << 30                          # the line of a returned value: after every line


def fresh(x: Arr) -> bool:
    """Does ``x`` compute a new array (not a view, an input or a scalar)?"""
    return x.shape != () and (x.prim in _FRESH or x.prim is P.CALL and x.key in _FRESH_CALLS)


def _key(x: Arr) -> Any:
    """The key of ``x``'s row: its primitive, or the function a CALL computes."""
    return x.key if x.prim is P.CALL else x.prim


def _may_alias(x: Arr) -> bool:
    """May ``x`` share its operands' memory (a transpose, a slice, a choice)? A scalar does
    not; an unknown call is taken to."""
    return x.shape != () and not fresh(x)


class Emitter:
    """Writes the code of IR nodes; names dimensions (``name_dim``) as it meets them."""

    def __init__(self, backend: Backend, inputs: dict[str, str], name_dim: Callable[[str], str],
                 reuse: bool = False):
        self.b, self.inputs, self.name_dim = backend, inputs, name_dim
        self.reuse = reuse            # write into dead temporaries (``Reuse``): real programs
        self.wrote = False            # ... and some line does
        self.dims: dict[str, str] = {}
        self.modules: set[str] = set()
        self.helpers: set[str] = set()
        self.tests: dict[Any, str] = {}          # call-time tests with a name of their own

    def helper_sources(self) -> list[str]:
        """The definitions of the helpers the code calls, each after those it uses."""
        return [HELPERS[self.b.name][h].replace("{m}", self.b.m)
                for h in HELPER_ORDER if h in self.helpers]

    def dim(self, d: Dim, bare: bool = False) -> str:
        """A dimension as code, its names read from the input shapes at call time."""
        for v in d.names - self.dims.keys():
            self.dims[v] = self.name_dim(v)
        text = d.subs({v: Dim.var(self.dims[v]) for v in d.names}).format()
        return text if bare or len(d.terms) < 2 else f"({text})"

    def attr(self, x: Arr) -> dict[str, str]:
        """The node's attribute as code: ``{a}``, or a CALL's parameters by name."""
        a, p = x.attr, x.prim
        if p is P.CALL:
            out = {k: repr(v) if isinstance(v, str) else self.code_of(v) for k, v in a[1]}
            if x.key == "kron_trace":                          # i = 0, 1, ..., n - 1
                out["i"] = self.b.row("arange").text.format(out["n"], m=self.b.m)
            return out
        if p is P.SLICE:
            (r0, r1, c0, c1), (rows, cols) = a, x.args[0].shape
            ix = [f"{'' if lo == Dim({}) else self.dim(lo)}:{'' if hi == n else self.dim(hi)}"
                  for lo, hi, n in ((r0, r1, rows), (c0, c1, cols))]
            return {"a": ix[0] if ix[1] == ":" else ", ".join(ix)}
        if p is P.RESHAPE:                       # -1 for the first composite size (2*n, m*n)
            free = next((i for i, d in enumerate(a) if d.value is None and (len(d.terms) > 1
                         or d.terms[0][1] != 1 or len(d.terms[0][0]) > 1)), None)
            return {"a": ", ".join("-1" if i == free else self.dim(d) for i, d in enumerate(a))}
        if p is P.CHOOSE:
            return {"a": self.tests.get(a) or self.test_text(a)}   # named: read twice
        return {"a": literal(a)[0] if isinstance(a, Fraction) else ", ".join(
            map(self.code_of, a)) if isinstance(a, tuple) else self.code_of(a)}

    def test_text(self, a: tuple[Dim, str, Dim]) -> str:
        """A call-time test ``lhs op rhs`` (a CHOOSE node's attribute) as code."""
        return f"{self.dim(a[0], True)} {a[1]} {self.dim(a[2], True)}"

    def code_of(self, v: Any) -> str:
        return self.dim(v) if isinstance(v, Dim) else str(v)

    def code(self, x: Arr, args: Sequence[tuple[str, int]]) -> tuple[str, int]:
        """The code of ``x`` and its precedence, given its operands'."""
        if x.prim in (P.INPUT, P.LIT):
            return (self.inputs[x.attr], ATOM) if x.prim is P.INPUT else literal(x.attr)
        row = self.b.row(x.key if x.prim is P.CALL else x.prim)
        self.modules |= {row.module} - {""}
        self.helpers |= set(row.helpers)
        ops = [c if p >= _needs(row.text, i) else f"({c})" for i, (c, p) in enumerate(args)]
        return row.text.format(*ops, m=self.b.m, args=", ".join(ops), dev=self.b.dev,
                               **self.attr(x)), row.prec

    def lines(self, roots: Sequence[Arr], temp: Callable[[], str],
              test: Callable[[], str] | None = None) -> tuple[list[str], list[tuple[str, int]]]:
        """A line per node not written into its consumer; the roots' code. A line that only
        some call-time alternatives read is computed only when one of them is taken."""
        nodes, uses = walk(roots), {r: [r] for r in roots}    # a root is used by the return
        for n in nodes:
            for a in n.args:
                uses.setdefault(a, []).append(n)
        forced: set[Arr] = set()                 # used only inside a call-time choice
        for n in reversed(nodes):
            if n not in roots and len(uses[n]) == 1 and (uses[n][0].prim is P.CHOOSE or
                                                          uses[n][0] in forced):
                forced.add(n)
        when = _when_needed(nodes, uses, set(roots))
        ref: dict[Arr, tuple[str, int]] = {}
        free = {n for n in nodes if n.prim in (P.INPUT, P.LIT)}   # names, numbers
        out: list[str] = []
        tests: list[str] = []
        shared = Counter(n.attr for n in nodes if n.prim is P.CHOOSE)
        for n in nodes:                                # a test two choices make: one line
            if n.prim is P.CHOOSE and shared[n.attr] > 1:
                self.named_test(n, test or temp, tests)
        reuse = Reuse(self, nodes, uses, set(roots))
        for n in nodes:
            args = [ref[a] for a in n.args]
            spare = reuse.spare(n)                          # a dead operand's buffer
            text, prec = self.code(n, args) if spare is None else (self.into(n, args, spare),
                                                                   ATOM)
            view = n.prim in (P.TRANSPOSE, P.SLICE, P.ITEM) and free.issuperset(n.args)
            once = len(uses[n]) == 1 and n not in roots    # into arithmetic: NumPy reuses it
            if n in free or n in forced or ((view or once) and len(text) <= 60 or once and
                                            uses[n][0].prim in _ARITHMETIC and len(text) <= 100
                                            ) and not reuse.named_for(n):
                ref[n] = text, prec
                reuse.inline(n, spare)
            else:
                name, guard = temp(), when.get(n, ALWAYS)
                out.append(f"{name} = {text}" if guard == ALWAYS else f"{name} = {text} if "
                           f"{self.condition(guard, test or temp, tests)} else None")
                ref[n] = name, ATOM
                free.add(n)
                reuse.line(n, name, len(out) - 1, args, spare is None and guard == ALWAYS)
        reuse.dead_operands(out)
        return tests + out, [ref[r] for r in roots]

    def into(self, x: Arr, args: Sequence[tuple[str, int]], spare: str) -> str:
        """The code of elementwise ``x`` written into the buffer named ``spare``."""
        self.wrote = True
        self.modules |= {self.b.row(_key(x)).module} - {""}
        return self.b.into[_key(x)].format(*(c for c, _ in args), m=self.b.m, out=spare)

    def named_test(self, choice: Arr, name: Callable[[], str], tests: list[str]) -> str:
        """The name of ``choice``'s call-time test, given a line of ``tests`` when first
        asked for."""
        if choice.attr not in self.tests:
            text = self.attr(choice)["a"]
            self.tests[choice.attr] = name()
            tests.append(f"{self.tests[choice.attr]} = {text}")
        return self.tests[choice.attr]

    def condition(self, guard: Guard, name: Callable[[], str], tests: list[str]) -> str:
        """A guard as Python, ``c1 and not c2 or c3``, each test named by a line of
        ``tests``."""
        def literal(choice: Arr, taken: bool) -> str:
            test = self.named_test(choice, name, tests)
            return test if taken else f"not {test}"
        return " or ".join(" and ".join(literal(*lit) for lit in sorted(conj, key=_serial))
                           for conj in sorted(guard, key=lambda c: sorted(map(_serial, c))))


class Reuse:
    """Which elementwise node writes into which dead operand's buffer (NumPy only: a
    backend with an ``into`` table, and a real program, so every temporary is float64).

    An operand read by nothing else is known dead as the lines are written; one read by
    other lines too is found dead after them: its last read, through any view of it, is
    the line of the node that writes into it.
    """

    def __init__(self, em: Emitter, nodes: Sequence[Arr], uses: dict[Arr, list[Arr]],
                 roots: set[Arr]):
        self.em, self.nodes, self.uses, self.roots = em, nodes, uses, roots
        self.on = bool(em.b.into) and em.reuse
        self.owner: dict[Arr, str] = {}        # a fresh node -> the name holding its buffer
        self.index: dict[Arr, int] = {}        # a node with a line -> the line
        self.later: dict[Arr, tuple[str, list[tuple[str, int]]]] = {}   # may write later

    def _takes(self, x: Arr, a: Arr) -> bool:
        return a in self.owner and a not in self.roots and a.shape == x.shape

    def spare(self, x: Arr) -> str | None:
        """The name of an operand's buffer ``x`` can write into: read by ``x`` alone."""
        if not self.on or _key(x) not in self.em.b.into:
            return None
        return next((self.owner[a] for a in x.args if self._takes(x, a)
                     and all(u is x for u in self.uses[a])), None)

    def named_for(self, x: Arr) -> bool:
        """Give fresh ``x`` a line of its own: it is the operand of a function NumPy
        computes into its argument (``np.tanh(t0, out=t0)``), or the right operand of a
        difference or quotient whose left operand is no temporary NumPy would write into."""
        (user, *more) = self.uses[x]
        if not (self.on and fresh(x) and not more and user.shape == x.shape
                and x not in self.roots):
            return False
        if user.prim is P.CALL:
            return user.key in self.em.b.into
        left = user.args[0]
        return user.prim in (P.SUB, P.DIV) and user.args[1] is x and not (
            fresh(left) and self.uses[left] == [user] and left.shape == x.shape)

    def inline(self, x: Arr, spare: str | None) -> None:
        if spare is not None:
            self.owner[x] = spare

    def line(self, x: Arr, name: str, i: int, args: list[tuple[str, int]], later: bool
             ) -> None:
        self.index[x] = i
        if self.on and fresh(x):
            self.owner[x] = name
        if self.on and later and _key(x) in self.em.b.into:
            self.later[x] = name, args

    def dead_operands(self, out: list[str]) -> None:
        """Rewrite the line of each node whose operand is read for the last time there."""
        if not self.later:
            return
        site: dict[Arr, int] = {}      # the line where a node's value is computed or read
        last: dict[Arr, int] = {}      # the last line that reads a node's buffer
        seen: dict[Arr, int] = {}      # ... through a view of it (a transpose, a slice)
        for n in reversed(self.nodes):                    # every consumer before its operands
            here = self.index.get(n)
            site[n] = here if here is not None else _NEVER if n in self.roots else max(
                (site[u] for u in self.uses[n]), default=_NEVER)
            views = [max(site[u], last[u]) for u in self.uses[n] if u is not n and _may_alias(u)]
            seen[n] = max(views, default=-1)
            last[n] = _NEVER if n in self.roots else max(
                [seen[n], *(site[u] for u in self.uses[n] if u is not n)])
        for x, (name, args) in self.later.items():
            i = self.index[x]          # not through a view: NumPy would copy the overlap
            spare = next((self.owner[a] for a in x.args if self._takes(x, a) and last[a] == i
                          and seen[a] < i), None)
            if spare is not None:
                out[i] = f"{name} = {self.em.into(x, args, spare)}"


# When a node is needed: ALWAYS, or a disjunction of conjunctions of call-time tests, each
# (a CHOOSE node, whether its first alternative is taken). Kept small, else ALWAYS.
Guard = frozenset[frozenset[tuple[Arr, bool]]]
ALWAYS: Guard = frozenset({frozenset()})
_GUARD_TERMS, _GUARD_TESTS = 4, 3


def _serial(lit: tuple[Arr, bool]) -> tuple[int, bool]:
    return lit[0].serial, lit[1]


def _either(a: Guard, b: Guard) -> Guard:
    """``a or b``; ALWAYS when it would not be small, or when a test meets its negation."""
    if a == ALWAYS or b == ALWAYS:
        return ALWAYS
    both = _simplest(a | b)
    return ALWAYS if len(both) > _GUARD_TERMS else both


def _simplest(g: Guard) -> Guard:
    """``g`` by absorption (``a or a and b`` is ``a``) and resolution (``not a or a and b``
    is ``not a or b``); ALWAYS when it holds whatever the tests say."""
    conjs = set(g)
    while True:
        units = {next(iter(c)) for c in conjs if len(c) == 1}
        resolved = {frozenset(lit for lit in c if len(c) == 1 or (lit[0], not lit[1])
                              not in units) for c in conjs}
        kept = {c for c in resolved if not any(o < c for o in resolved)}
        if frozenset() in kept:
            return ALWAYS
        if kept == conjs:
            break
        conjs = kept
    tests = sorted({lit[0] for c in conjs for lit in c}, key=lambda a: a.serial)
    holds = all(any(all(bits >> tests.index(x) & 1 == t for x, t in c) for c in conjs)
                for bits in range(1 << len(tests)))
    return ALWAYS if holds else frozenset(conjs)


def _and(g: Guard, lit: tuple[Arr, bool]) -> Guard:
    """``g and lit``; conjunctions that hold a test and its negation drop out."""
    out = frozenset(c | {lit} for c in g if (lit[0], not lit[1]) not in c)
    return ALWAYS if any(len(c) > _GUARD_TESTS for c in out) else out


def _when_needed(nodes: Sequence[Arr], uses: dict[Arr, list[Arr]], roots: set[Arr]
                 ) -> dict[Arr, Guard]:
    """Each node's guard: the call-time choices under which some root reads it."""
    when: dict[Arr, Guard] = {}
    same: dict[Any, Arr] = {}                         # choices that make the same test
    for n in reversed(nodes):                         # every consumer before its operands
        if n in roots:
            when[n] = ALWAYS
            continue
        guard: Guard = frozenset()
        for u in uses[n]:
            if u.prim is P.CHOOSE:
                for i, a in enumerate(u.args):
                    if a is n:
                        guard = _either(guard, _and(when[u], (same.setdefault(u.attr, u), i == 0)))
            else:
                guard = _either(guard, when[u])
        when[n] = guard
    return when
