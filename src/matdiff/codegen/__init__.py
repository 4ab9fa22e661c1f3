"""Code generation: expressions to a standalone NumPy / JAX / PyTorch function.

Input: one ``Expr`` or a list of them (a value and its gradients). ``codegen`` returns the
source of a readable function, ``compile`` execs it. Stages: ``lower`` (Expr to the array IR
by ``lower.LOWER``, choices by ``ir.cost``), then ``emit`` (one backend template a node).

Contract of the generated function:

* its parameters are the free symbols, mangled to ASCII identifiers (``lambda`` ->
  ``lambda_``); no other user text reaches the source;
* inputs: matrices 2-D, vectors 1-D (or ``(n, 1)``), scalars floats or 0-d arrays, float64;
  ``compile``'s JAX function runs a call with a float64 input (NumPy array, Python float)
  under ``jax.enable_x64(True)``, so it returns float64 without changing the global
  ``jax_enable_x64``; under the caller's ``jax.jit`` the caller's setting decides, as jit
  converts the inputs before the call;
  dimension names are read from the input shapes at call time, and every shape is asserted;
* outputs: a scalar is a float / 0-d array, an ``(n, 1)`` vector 1-D, anything else 2-D; a
  list of expressions gives a tuple;
* every operation is computed once across all outputs, one line per node; a node used once
  is written into its consumer when short;
* in NumPy code of a real program, an elementwise result may be written into a dead
  temporary's buffer (``out=``), never into an input or a returned array; such code first
  takes its array inputs as float64 (``np.asanyarray``: no copy of a float64 array), so an
  integer or boolean mask cannot make an integer temporary.
"""

from __future__ import annotations

import builtins
import itertools
import keyword
import re
from collections.abc import Callable, Sequence
from typing import Any

from ..expr import Dim, Expr, MatdiffError, Op, toposort
from .emit import ATOM, BACKENDS, JAX, NUMPY, TORCH, Backend, Emitter, Row
from .ir import Arr, P
from .lower import LOWER, Lowering
from .spectral import HELPER_NAMES

__all__ = ["codegen", "compile", "lower", "NUMPY", "JAX", "TORCH", "BACKENDS", "LOWER",
           "mangle", "Backend", "Row"]

_RESERVED = {"np", "jnp", "torch", "dtype", "device", "float", "int", "range", "len", "sum",
             "abs", "min", "max", "None", "True", "False", "scipy", "jax", *HELPER_NAMES}


def mangle(name: str, taken: set[str]) -> str:
    """A fresh ASCII identifier for ``name``; only ``[A-Za-z0-9_]`` survives.

    >>> mangle("lambda", set()), mangle("H_R", set()), mangle("2x'", set())
    ('lambda_', 'H_R', 'v_2x_')
    """
    s = re.sub(r"[^A-Za-z0-9_]", "_", name)
    s = "v_" + s if not s or s[0].isdigit() else s
    s += "_" if keyword.iskeyword(s) or keyword.issoftkeyword(s) or s in _RESERVED else ""
    base, i = s, 1
    while s in taken:
        s, i = f"{base}_{i}", i + 1
    taken.add(s)
    return s


def _as_list(exprs: Expr | Sequence[Expr]) -> list[Expr]:
    out = [exprs] if isinstance(exprs, Expr) else list(exprs)
    if not out or not all(isinstance(e, Expr) for e in out):
        raise MatdiffError("codegen needs an expression or a non-empty list of expressions")
    return out


def lower(exprs: Expr | Sequence[Expr], backend: str = "numpy") -> list[Arr]:
    """The IR of ``exprs`` for ``backend``: one node per expression, work shared.

    >>> from matdiff.expr import sym, matmul, trace, T
    >>> from matdiff.codegen.ir import walk
    >>> C, W = sym("C", ("n", "n")), sym("W", ("n", "k"))
    >>> value, grad = lower([trace(matmul(T(W), C, W)), matmul(C, W) + matmul(T(C), W)])
    >>> sum(n.prim is P.MATMUL for n in walk([value, grad]))  # C W once, CᵀW once
    2
    """
    if backend not in BACKENDS:
        raise MatdiffError(f"unknown backend {backend!r}; use one of {sorted(BACKENDS)}")
    return Lowering(_as_list(exprs), BACKENDS[backend].swap).run()


def _solved_dims(inputs: list[tuple[str, Expr]], em: Emitter) -> dict[str, tuple[str, set[str]]]:
    """Each dimension name the input shapes determine: its code, read directly (``n =
    X.shape[0]``) or solved from a size linear in it (``p = Y.shape[0] // m``), and the
    names that code uses."""
    axes = [(f"{v}.shape[{i}]", d) for v, e in inputs for i, d in enumerate(e.shape)
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
            terms = [(mono, c) for mono, c in d.terms if unknown & set(mono)]
            if len(unknown) != 1 or len(terms) != 1 or terms[0][0].count(min(unknown)) != 1:
                continue
            (v,), (mono, c) = unknown, terms[0]
            coef = Dim({tuple(w for w in mono if w != v): c})
            rest = Dim([(mm, cc) for mm, cc in d.terms if v not in mm])
            code = code if not rest.terms else f"({code} - {em.dim(rest, True)})"
            solved[v] = (code if coef == 1 else f"{code} // ({em.dim(coef, True)})",
                         set(coef.names | rest.names))
            progress = True
    return solved


def _header(b: Backend, symbols: dict[str, Expr], names: dict[str, str], floats: bool = False
            ) -> list[str]:
    """Vectors as columns; arrays as float64 where the code writes into temporaries (an
    integer input would make an integer temporary); in PyTorch, the dtype and device of the
    inputs, scalars as tensors."""
    as_float = [f"{names[n]} = {b.m}.asanyarray({names[n]}, dtype=float)" for n, e in
                symbols.items() if floats and not e.is_scalar]
    body = as_float + [f"{names[n]} = {names[n]}.reshape(-1, 1)" for n, e in symbols.items()
                       if e.is_vector]
    if b.name != "torch":
        return body
    mats = [names[n] for n, e in symbols.items() if not e.is_scalar]
    scalars = [names[n] for n, e in symbols.items() if e.is_scalar]
    if mats:
        body.insert(0, f"dtype, device = {mats[0]}.dtype, {mats[0]}.device")
    else:                                  # a scalar's device, or the CPU when there is none
        first = f"torch.as_tensor({scalars[0]})" if scalars else "torch.zeros(())"
        body.append(f"dtype, device = torch.float64, {first}.device")
    return body + [f"{v} = torch.as_tensor({v}, dtype=dtype, device=device)" for v in scalars]


def _shape_text(e: Expr, dim: Callable[[Dim], str]) -> str:
    if e.is_scalar:
        return "scalar"
    return f"vector ({dim(e.rows)},)" if e.is_vector else f"matrix ({dim(e.rows)}, {dim(e.cols)})"


def _generate(exprs: Expr | Sequence[Expr], backend: str, name: str
              ) -> tuple[str, list[tuple[str, str, Expr]], str]:
    outs, roots = _as_list(exprs), lower(exprs, backend)
    b, symbols, taken = BACKENDS[backend], _symbols(outs), set[str]()
    fname = mangle(name, taken)
    names = {n: mangle(n, taken) for n in symbols}
    real = not any(e.is_complex for e in toposort(outs))     # every temporary is float64
    em, count, tests = Emitter(b, names, lambda v: mangle(v, taken), reuse=real), \
        itertools.count(), itertools.count()
    lines, refs = em.lines(roots, lambda: mangle(f"t{next(count)}", taken),
                           lambda: mangle(f"c{next(tests)}", taken))
    inputs = [(names[n], e) for n, e in symbols.items()]
    used, solved = set(em.dims), _solved_dims(inputs, em)
    checked = [(v, e) for v, e in inputs if not e.is_scalar and
               all(d.names <= solved.keys() for d in e.shape)]
    asserts = [f'assert {v}.shape == {want}, f"{v} has shape {{{v}.shape}}, expected {{{want}}}"'
               for v, e in checked for want in ["(" + ", ".join(map(em.dim, e.shape)) + ")"]]
    need = used | {v for _, e in checked for d in e.shape for v in d.names}
    stack = list(need)
    while stack:                                           # the names their solutions use
        if stack[-1] not in solved:
            raise MatdiffError(f"dimension {mangle(stack[-1], set())!r} is not the size of any "
                               "input, so it cannot be read from the arguments")
        stack += list(solved[stack.pop()][1] - need)
        need |= set(stack)
    body = _header(b, symbols, names, em.wrote) + [f"{em.dims[v]} = {code}" for v, (code, _) in
                                          solved.items() if v in need] + asserts + lines
    rets = [b.row("number" if x.prim is P.LIT else "complex_scalar" if e.is_complex
                  else "scalar").text.format(c, m=b.m, dev=b.dev)
            if e.is_scalar else f"{c if p == ATOM else f'({c})'}.reshape(-1)" if e.is_vector
            else c for e, x, (c, p) in zip(outs, roots, refs, strict=True)]
    body.append("return " + (rets[0] if isinstance(exprs, Expr) else ", ".join(rets) +
                             ("," if len(rets) == 1 else "")))
    doc = [f'"""Generated by matdiff ({backend}): {len(outs)} output(s), CSE across them.', "",
           "Inputs:", *(f"    {names[n]}: {_shape_text(e, lambda d: em.dim(d, True))}"
                        for n, e in symbols.items()),
           "", "Returns:", *(f"    {_shape_text(e, lambda d: em.dim(d, True))}" for e in outs),
           '"""']
    head = [b.imports, *sorted(em.modules), "", "",
            *(h + "\n\n" for h in em.helper_sources()),       # _logm, _eigvec, ...
            f"def {fname}({', '.join(names.values())}):"]
    return "\n".join(head + ["    " + x for x in doc + body]) + "\n", \
        [(n, names[n], e) for n, e in symbols.items()], fname


def _symbols(roots: Sequence[Expr]) -> dict[str, Expr]:
    out: dict[str, Expr] = {}
    for n in toposort(roots):
        if n.op is Op.SYMBOL and out.setdefault(n.attr[0], n) is not n:
            raise MatdiffError(f"symbol {n.attr[0]!r} is used with two shapes")
    return out


def codegen(exprs: Expr | Sequence[Expr], backend: str = "numpy",
            name: str = "f_and_grad") -> str:
    """The source of a standalone function computing ``exprs`` with ``backend``.

    >>> from matdiff.expr import sym, matmul, T
    >>> A = sym("A", ("n", "n")); x = sym("x", ("n",))
    >>> for line in codegen(matmul(T(x), A, x)).splitlines()[-4:]:
    ...     print(line)
        assert x.shape == (n, 1), f"x has shape {x.shape}, expected {(n, 1)}"
        assert A.shape == (n, n), f"A has shape {A.shape}, expected {(n, n)}"
        t0 = (x.T @ A @ x)[0, 0]
        return float(t0)
    """
    return _generate(exprs, backend, name)[0]


def compile(exprs: Expr | Sequence[Expr], backend: str = "numpy") -> Callable[..., Any]:  # noqa: A001
    """A callable evaluating ``exprs``; call it with keyword arguments named as the symbols.

    >>> import numpy as np
    >>> from matdiff.expr import sym, trace, matmul
    >>> X = sym("X", (2, 2))
    >>> compile(trace(matmul(X, X)))(X=np.eye(2))
    2.0
    """
    src, pairs, fname = _generate(exprs, backend, "f_and_grad")
    namespace: dict[str, Any] = {}           # optimize=0: the shape asserts run under -O too
    exec(builtins.compile(src, f"<matdiff {backend}>", "exec", optimize=0), namespace)
    fn, mod, users = namespace[fname], namespace[BACKENDS[backend].m], {m: u for u, m, _ in pairs}

    complex_program = any(e.is_complex for _u, _m, e in pairs)

    def convert(u: str, value: Any, e: Expr) -> Any:
        if backend == "numpy":
            value = mod.asarray(value, dtype=complex if e.is_complex else float)
        elif backend == "torch":             # torch multiplies no real by complex tensors
            kind = mod.complex128 if complex_program and not e.is_scalar or e.is_complex \
                else mod.float64
            value = mod.as_tensor(value, dtype=kind)
        if e.is_scalar and getattr(value, "ndim", 0) > 0 and value.reshape(-1).shape != (1,):
            raise MatdiffError(f"argument {u!r} should be a scalar, got shape {value.shape}")
        value = value.reshape(()) if e.is_scalar and getattr(value, "ndim", 0) > 0 else value
        if backend == "numpy" and e.is_scalar:
            return complex(value) if e.is_complex else float(value)
        return value

    ready = {u for u, _m, e in pairs if backend == "numpy" and not e.is_scalar and not
             e.is_complex}            # a float64 ndarray is passed as it is (no conversion)

    def call(**kwargs: Any) -> Any:
        try:
            args = {m: v if u in ready and type(v := kwargs[u]) is mod.ndarray and
                    v.dtype == mod.float64 else convert(u, kwargs[u], e) for u, m, e in pairs}
        except KeyError:
            missing = [u for u, _m, _e in pairs if u not in kwargs]
            raise MatdiffError("missing argument(s): " + ", ".join(
                repr(u) for u in missing)) from None
        try:
            if backend == "jax" and any(isinstance(v, float) or str(getattr(v, "dtype", ""))
                                        == "float64" for v in args.values()):
                with __import__("jax").enable_x64(True):     # this call only, not globally
                    return fn(**args)
            return fn(**args)
        except AssertionError as err:        # the generated shape checks: "X has shape ..."
            name, _, rest = str(err).partition(" ")
            raise MatdiffError(f"argument {users.get(name, name)!r} {rest}") from None

    call.source = src  # type: ignore[attr-defined]
    call.__doc__ = fn.__doc__
    return call
