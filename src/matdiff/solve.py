"""``matdiff solve FILE``: a specification, data files or random data, to a solution.

Input: the text of a specification (``spec.parse_spec``), data as arrays or files
(``.npy``, ``.npz``, ``.csv``), sizes for dimension names, or ``random=True`` for random data
of the declared shapes (in each function's domain, as ``check.random_inputs`` draws them).
Output: the ``Spec`` and the ``MinimizeResult``. Contract: user errors are ``MatdiffError``,
with the place in the specification where one applies.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import IO, Any

import numpy as np

from .check import random_inputs
from .expr import Dim, Expr, MatdiffError, free_symbols
from .minimize import MinimizeResult, solve_problem
from .parse_ascii import parse_ascii
from .problem import build
from .shapes import infer
from .spec import Declaration, Piece, Spec, parse_spec

__all__ = ["load_data", "random_data", "solve_spec", "DEFAULT_SIZE"]

DEFAULT_SIZE = 5     # a dimension that neither data nor --size settles, with --random


def _read(path: str) -> Any:
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".npy":
            return np.load(path, allow_pickle=False)
        if ext == ".npz":
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        if ext in (".csv", ".txt"):
            return np.loadtxt(path, delimiter="," if ext == ".csv" else None, ndmin=1)
    except (OSError, ValueError) as err:
        raise MatdiffError(f"cannot read {path}: {err}") from None
    raise MatdiffError(f"{path}: data files are .npy, .npz or .csv")


def load_data(items: Sequence[str]) -> dict[str, Any]:
    """``["A=A.npy", "b=b.csv", "all.npz"]`` to arrays by name (an ``.npz`` without a name
    gives all its arrays, by their names in the file).

    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> np.save(os.path.join(folder, "A.npy"), np.eye(2))
    >>> load_data([f"A={os.path.join(folder, 'A.npy')}"])["A"].shape
    (2, 2)
    """
    out: dict[str, Any] = {}
    for item in items:
        name, eq, path = item.partition("=")
        if not eq:
            data = _read(item)
            if not isinstance(data, dict):
                raise MatdiffError(f"--data {item}: name the array, as NAME={item}")
            out.update(data)
            continue
        data = _read(path)
        if isinstance(data, dict):
            if len(data) != 1 and name.strip() not in data:
                raise MatdiffError(f"{path} holds {len(data)} arrays; give the file without "
                                   "a name to use them all")
            data = data.get(name.strip(), next(iter(data.values())))
        out[name.strip()] = data
    return out


def _fit(d: Declaration, value: Any, sizes: dict[str, int]) -> Any:
    """Data shaped as declared (a CSV row or column for a vector), its dimensions bound."""
    a = np.asarray(value, dtype=float)
    if d.kind == "scalar":
        if a.size != 1:
            raise MatdiffError(f"{d.name} is declared a scalar, but its data have shape "
                               f"{a.shape}", pos=d.pos)
        return float(a.reshape(()))
    if d.kind == "vector":
        if a.ndim == 2 and 1 in a.shape:
            a = a.reshape(-1)
        if a.ndim != 1:
            raise MatdiffError(f"{d.name} is declared a vector, but its data have shape "
                               f"{a.shape}", pos=d.pos)
    elif a.ndim != 2:
        a = a.reshape(1, -1) if a.ndim == 1 else a
        if a.ndim != 2:
            raise MatdiffError(f"{d.name} is declared a matrix, but its data have shape "
                               f"{a.shape}", pos=d.pos)
    for dim, n in zip(d.dims or (), a.shape, strict=False):
        if not dim.isdigit() and sizes.setdefault(dim, n) != n:
            raise MatdiffError(f"{d.name}: the data make {dim} = {n}, elsewhere {dim} = "
                               f"{sizes[dim]}", pos=d.pos)
        if dim.isdigit() and int(dim) != n:
            raise MatdiffError(f"{d.name} is declared with size {dim}, but its data have "
                               f"{n}", pos=d.pos)
    return a


def _shape_decl(d: Declaration, sizes: Mapping[str, int]) -> Any:
    """A declaration as ``minimize``'s ``shapes`` entry: a kind, or dimensions."""
    if d.dims is None:
        return "symmetric" if d.symmetric else d.kind
    dims: list[Any] = [sizes.get(x, x) if not x.isdigit() else int(x) for x in d.dims]
    return dims + (["symmetric"] if d.symmetric else [])


def _combined(spec: Spec) -> tuple[str, list[tuple[int, Piece]]]:
    """One ASCII text holding the objective and every constraint (``+ 0*sum(lhs - rhs)``),
    so one shape inference links them; with each piece's offset in it."""
    assert spec.objective is not None
    text, parts = "(", []
    parts.append((len(text), spec.objective))
    text += spec.objective.text + ")"
    for c in spec.constraints:
        text += " + 0*sum(("
        parts.append((len(text), c.lhs))
        text += c.lhs.text + ") - ("
        parts.append((len(text), c.rhs))
        text += c.rhs.text + "))"
    return text, parts


def _inferred(spec: Spec, sizes: Mapping[str, int]) -> Expr:
    decl: dict[str, Any] = {}
    for d in spec.parameters + spec.variables:
        if d.dims is None:
            n = {"scalar": 0, "vector": 1, "matrix": 2}[d.kind]
            dims: list[Any] = [Dim.var(f"_{d.name}{i}") for i in range(n)]
            if d.symmetric:
                dims = [dims[0], dims[0]]
        else:
            dims = [int(x) if x.isdigit() else sizes.get(x, Dim.var(f"_{x}")) for x in d.dims]
        decl[d.name] = dims + (["symmetric"] if d.symmetric else [])
    text, parts = _combined(spec)
    try:
        return infer(parse_ascii(text), text, decl)
    except MatdiffError as err:
        for start, piece in reversed(parts):
            if err.pos is not None and err.pos >= start:
                err.pos = piece.start + min(err.pos - start, len(piece.text))
                err.end = None if err.end is None else \
                    piece.start + min(err.end - start, len(piece.text))
                break
        err.text = spec.text
        raise


def random_data(spec: Spec, data: Mapping[str, Any], sizes: Mapping[str, int],
                seed: int = 0) -> dict[str, Any]:
    """Random values for the parameters without data, of the shapes the problem implies
    (a dimension nothing settles is ``DEFAULT_SIZE``).

    >>> spec = parse_spec("parameters\\n Matrix A\\nvariables\\n Vector x(3)\\nmin\\n ||A*x||^2")
    >>> random_data(spec, {}, {})["A"].shape
    (5, 3)
    """
    whole = _inferred(spec, sizes)
    symbols = free_symbols(whole)
    names = {v for s in symbols.values() for d in s.shape for v in d.names}
    env, _ = random_inputs([whole], seed=seed, sizes={n: DEFAULT_SIZE for n in names})
    out = dict(data)
    for d in spec.parameters:
        if d.name not in out and d.name in symbols:
            out[d.name] = env[d.name]
    return out


def solve_spec(text: str, data: Mapping[str, Any] | None = None, *, random: bool = False,
               sizes: Mapping[str, int] | None = None, backend: str = "numpy",
               progress: bool | IO[str] = False, seed: int = 0, maxiter: int = 10_000,
               tol: float = 1e-9) -> tuple[Spec, MinimizeResult]:
    """Parse a specification and solve it.

    >>> spec, res = solve_spec("parameters\\n Vector b\\nvariables\\n Vector x\\n"
    ...                        "min\\n ||x - b||^2\\nst\\n x >= 0", {"b": [1.0, -1.0]})
    >>> res.success, [round(float(v), 6) for v in res.x["x"]]
    (True, [1.0, 0.0])
    """
    spec = parse_spec(text)
    sizes = dict(sizes or {})
    given = dict(data or {})
    declared = {d.name: d for d in spec.parameters}
    for name in given:
        if name not in declared:
            raise MatdiffError(f"data for {name}, which is not a parameter of the problem")
    fitted = {n: _fit(declared[n], v, sizes) for n, v in given.items()}
    if random:
        fitted = random_data(spec, fitted, sizes, seed)
    missing = [d for d in spec.parameters if d.name not in fitted]
    if missing:
        d = missing[0]
        raise MatdiffError(f"no data for the parameter {d.name}: give --data {d.name}=FILE "
                           "or --random", pos=d.pos, end=d.pos + len(d.name), text=text)
    shapes = {d.name: _shape_decl(d, sizes) for d in spec.variables}
    shapes.update({d.name: "symmetric" for d in spec.parameters if d.symmetric})
    assert spec.objective is not None
    problem = build(spec.objective, [d.name for d in spec.variables], data=fitted,
                    constraints=spec.constraints, shapes=shapes, sense=spec.sense)
    result = solve_problem(problem, backend=backend, progress=progress, seed=seed,
                           maxiter=maxiter, tol=tol, sense=spec.sense)
    return spec, result
