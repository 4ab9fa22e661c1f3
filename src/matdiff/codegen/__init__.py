"""Code generation: expressions to a standalone NumPy / JAX / PyTorch function.

Input: one ``Expr`` or a list of them (typically a value and its gradients).
Output: ``codegen`` returns the source of a readable Python function; ``compile`` execs it.

Contract of the generated function:

* its parameters are the free symbols, names mangled to safe ASCII identifiers (``lambda`` ->
  ``lambda_``); no other user text reaches the source;
* inputs: matrices are 2-D arrays, vectors 1-D (or ``(n, 1)``), scalars floats or 0-d arrays;
  float64; the source asserts every input's shape, with dimension names read from the input
  shapes at call time;
* outputs: a scalar is a float / 0-d array, an ``(n, 1)`` vector 1-D, anything else 2-D; one
  expression gives one value, a list gives a tuple;
* every operation is computed once across all outputs, one line per node; a node used once
  is written into its consumer when short.

The stages: ``lower`` (Expr to the array IR, ``lower.LOWER``, one row per Op, choices by
``ir.cost``), then ``emit`` (a straight walk, one backend template per primitive).
"""

from __future__ import annotations

import builtins
import keyword
import re
from collections.abc import Callable, Sequence
from typing import Any

from ..expr import Dim, Expr, MatdiffError, Op, toposort
from .emit import BACKENDS, JAX, NUMPY, TORCH, Backend, Emitter, Row
from .ir import Arr, P, walk
from .lower import LOWER, Lowering

__all__ = ["codegen", "compile", "lower", "NUMPY", "JAX", "TORCH", "BACKENDS", "LOWER",
           "mangle", "Backend", "Row"]

_RESERVED = {"np", "jnp", "torch", "dtype", "device", "float", "int", "range", "len", "sum",
             "abs", "min", "max", "None", "True", "False", "scipy", "jax"}


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


def lower(exprs: Expr | Sequence[Expr], backend: str = "numpy") -> list[Arr]:
    """The IR of ``exprs`` for ``backend``: one node per expression, shared work shared.

    >>> from matdiff.expr import sym, matmul, trace, T
    >>> C, W = sym("C", ("n", "n")), sym("W", ("n", "k"))
    >>> value, grad = lower([trace(matmul(T(W), C, W)), matmul(C, W) + matmul(T(C), W)])
    >>> sum(n.prim.name == "MATMUL" for n in walk([value, grad]))
    2
    """
    if backend not in BACKENDS:
        raise MatdiffError(f"unknown backend {backend!r}; use one of {sorted(BACKENDS)}")
    return Lowering(_as_list(exprs)[0], BACKENDS[backend].swap).run()


def _dims_in(nodes: Sequence[Arr]) -> set[str]:
    """The dimension names the code of ``nodes`` writes (not their shapes)."""
    out: set[str] = set()
    stack: list[Any] = [n.attr for n in nodes if n.prim is not P.INPUT]
    while stack:
        a = stack.pop()
        if isinstance(a, Dim):
            out |= a.names
        elif isinstance(a, tuple):
            stack.extend(a)
    return out


def _solved_dims(inputs: list[tuple[str, Expr]], em: Emitter) -> dict[str, tuple[str, set[str]]]:
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
            if len(unknown) != 1 or len(with_v) != 1 or with_v[0][0].count(next(iter(
                    unknown))) != 1:
                continue
            (v,), (mono, c) = unknown, with_v[0]
            rest_mono = list(mono)
            rest_mono.remove(v)
            coef = Dim({tuple(rest_mono): c})
            rest = Dim([(mm, cc) for mm, cc in d.terms if v not in mm])
            expr = code if not rest.terms else f"({code} - {em.dim(rest, True)})"
            solved[v] = (expr if coef == 1 else f"{expr} // ({em.dim(coef, True)})",
                         coef.names | rest.names)
            progress = True
    return solved


def _fmt_shape(e: Expr, dim: Callable[[Dim], str]) -> str:
    if e.is_scalar:
        return "scalar"
    return f"vector ({dim(e.rows)},)" if e.is_vector else f"matrix ({dim(e.rows)}, {dim(e.cols)})"


def _header(b: Backend, symbols: dict[str, Expr], names: dict[str, str]) -> list[str]:
    """Vectors as columns; in PyTorch, the dtype and device of the inputs, scalars as tensors."""
    body = [f"{names[n]} = {names[n]}.reshape(-1, 1)" for n, e in symbols.items() if e.is_vector]
    if b.name != "torch":
        return body
    mats = [n for n, e in symbols.items() if not e.is_scalar]
    scalars = [n for n, e in symbols.items() if e.is_scalar]
    if mats:
        body.insert(0, f"dtype, device = {names[mats[0]]}.dtype, {names[mats[0]]}.device")
    elif scalars:
        v0 = names[scalars[0]]
        body += [f"{v0} = torch.as_tensor({v0}, dtype=torch.float64)",
                 f"dtype, device = {v0}.dtype, {v0}.device"]
    else:
        body.append("dtype, device = torch.float64, 'cpu'")
    return body + [f"{names[n]} = torch.as_tensor({names[n]}, dtype=dtype, device=device)"
                   for n in scalars]


def _generate(exprs: Expr | Sequence[Expr], backend: str, name: str
              ) -> tuple[str, list[tuple[str, str, Expr]], str]:
    outs, single = _as_list(exprs)
    roots = lower(outs, backend)
    b, symbols = BACKENDS[backend], _symbols(outs)
    taken: set[str] = set()
    fname = mangle(name, taken)
    names = {n: mangle(n, taken) for n in symbols}
    inputs = [(names[n], e) for n, e in symbols.items()]
    all_dims = {v for e in symbols.values() for d in e.shape for v in d.names}
    dims = {v: mangle(v, taken) for v in sorted(all_dims | _dims_in(walk(roots)))}
    em = Emitter(b, names, dims)
    solved = _solved_dims(inputs, em)
    checked = [(v, e) for v, e in inputs
               if not e.is_scalar and all(d.names <= solved.keys() for d in e.shape)]
    need = _dims_in(walk(roots)) | {v for _, e in checked for d in e.shape for v in d.names}
    stack = list(need)
    while stack:
        v = stack.pop()
        if v not in solved:
            raise MatdiffError(f"dimension {mangle(v, set())!r} is not the size of any input, "
                               "so it cannot be read from the arguments")
        stack += list(solved[v][1] - need)
        need |= solved[v][1]
    body = _header(b, symbols, names)
    body += [f"{dims[v]} = {code}" for v, (code, _) in solved.items() if v in need]
    for v, e in checked:                     # NumPy would broadcast a wrong shape silently
        want = "(" + ", ".join(em.dim(d) for d in e.shape) + ")"
        body.append(f'assert {v}.shape == {want}, f"{v} has shape {{{v}.shape}}, '
                    f'expected {{{want}}}"')
    lines, refs = em.lines(roots, taken, mangle)
    body += lines
    rets = []
    for e, x, (code, prec) in zip(outs, roots, refs, strict=True):
        if e.is_scalar:
            key = "number" if x.prim is P.LIT else "scalar"
            rets.append(b.row(key).text.format(code, m=b.m))
        else:
            rets.append(f"{code if prec == 5 else f'({code})'}.reshape(-1)" if e.is_vector
                        else code)
    body.append("return " + (rets[0] if single else ", ".join(rets) + ("," if len(rets) == 1
                                                                       else "")))
    doc = [f'"""Generated by matdiff ({backend}): {len(outs)} output(s), CSE across them.', "",
           "Inputs:"]
    doc += [f"    {names[n]}: {_fmt_shape(e, lambda d: em.dim(d, True))}"
            for n, e in symbols.items()]
    doc += ["", "Returns:", *(f"    {_fmt_shape(r, lambda d: em.dim(d, True))}" for r in outs)]
    lines = [b.imports, *sorted(em.modules), "", "", f"def {fname}({', '.join(names.values())}):"]
    lines += ["    " + x for x in [*doc, '"""', *body]]
    return "\n".join(lines) + "\n", [(n, names[n], e) for n, e in symbols.items()], fname


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
            if d.value is None and len(d.terms) == 1 and d.terms[0][1] == 1 \
                    and len(d.names) == 1:
                (dim,) = d.names
                if sizes.setdefault(dim, s) != s:
                    fail(name, f"of size {dim} = {sizes[dim]} along an axis", shape)
            elif d.value is None:
                later.append((name, d, s))
    for name, d, s in later:
        v = d.subs(sizes).value  # type: ignore[arg-type]
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
    fn, mod = namespace[fname], namespace[BACKENDS[backend].m]

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
