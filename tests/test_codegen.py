"""Generated code: every Op against a plain NumPy reference, structured lowerings against the
naive ones, backends against each other, safety of the generated source, argument errors."""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import functools
import importlib
import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.linalg

import matdiff as md
from matdiff import expr as E
from matdiff import testing as MT
from matdiff.check import evaluate, random_inputs
from matdiff.codegen import BACKENDS, JAX, LOWER, NUMPY, TORCH, codegen, compile, lower
from matdiff.codegen.ir import ONE, Graph, P, walk
from matdiff.codegen.spectral import IMPORTS as SPECTRAL_IMPORTS
from matdiff.codegen.spectral import ROWS as SPECTRAL_ROWS
from matdiff.expr import (
    ELEMENTWISE,
    Dim,
    Expr,
    MatdiffError,
    Op,
    T,
    apply,
    block,
    commutation,
    const,
    det,
    diag,
    diagm,
    eye,
    hadamard,
    hdiv,
    hpow,
    inv,
    kron,
    logdet,
    matmul,
    matpow,
    norm,
    ones,
    scale,
    slice_,
    sym,
    total,
    trace,
    unvec,
    vec,
    zeros,
)

SIZES = {"m": 4, "n": 3, "k": 2, "p": 2, "q": 3}


def _extra(name: str) -> Any:
    """The optional package ``name``; a test that needs it FAILS when it is missing (it is not
    skipped, which would look like a pass): install the extra or deselect the marker."""
    try:
        module = importlib.import_module(name)
    except ImportError:
        pytest.fail(f"{name} is not installed: pip install -e '.[{name}]', or deselect these "
                    f'tests with -m "not {name}"')
    if name == "jax":
        module.config.update("jax_enable_x64", True)
    return module


def _jax() -> Any:
    return _extra("jax")


def _torch() -> Any:
    return _extra("torch")


def _backend(name: str) -> None:
    """Fail unless the backend's package is installed (NumPy always is)."""
    if name != "numpy":
        _extra(name)


BACKEND_PARAMS = [pytest.param("numpy"), pytest.param("jax", marks=pytest.mark.jax),
                  pytest.param("torch", marks=pytest.mark.torch)]

# ----------------------------------------------------------------------------- reference


def _dim(d: Dim) -> int:
    v = d.subs(SIZES).value  # type: ignore[arg-type]
    assert v is not None
    return v


def _commutation(m: int, n: int) -> np.ndarray:
    k = np.zeros((m * n, m * n))
    for i in range(m):
        for j in range(n):
            k[i * n + j, j * m + i] = 1.0                      # K vec(X) = vec(X')
    return k


REF: dict[Op, Callable[[Expr, list[np.ndarray]], np.ndarray]] = {
    Op.SYMBOL: lambda e, a: np.zeros(0),  # bound from the environment
    Op.CONST: lambda e, a: np.array([[float(e.attr)]]),
    Op.IDENTITY: lambda e, a: np.eye(_dim(e.attr)),
    Op.ONES: lambda e, a: np.ones((_dim(e.rows), _dim(e.cols))),
    Op.ZERO: lambda e, a: np.zeros((_dim(e.rows), _dim(e.cols))),
    Op.COMMUTATION: lambda e, a: _commutation(_dim(e.attr[0]), _dim(e.attr[1])),
    Op.ADD: lambda e, a: functools.reduce(np.add, a),
    Op.SCALE: lambda e, a: a[0][0, 0] * a[1],
    Op.MATMUL: lambda e, a: functools.reduce(np.matmul, a),
    Op.TRANSPOSE: lambda e, a: a[0].T,
    Op.HADAMARD: lambda e, a: functools.reduce(np.multiply, a),
    Op.HDIV: lambda e, a: a[0] / a[1],
    Op.POW: lambda e, a: a[0] ** a[1][0, 0],
    Op.KRON: lambda e, a: np.kron(a[0], a[1]),
    Op.BLOCK: lambda e, a: np.block([a[i * e.attr[1]:(i + 1) * e.attr[1]]
                                     for i in range(e.attr[0])]),
    Op.SLICE: lambda e, a: a[0][_dim(e.attr[0]):_dim(e.attr[1]), _dim(e.attr[2]):_dim(e.attr[3])],
    Op.TRACE: lambda e, a: np.array([[np.trace(a[0])]]),
    Op.DET: lambda e, a: np.array([[np.linalg.det(a[0])]]),
    Op.LOGDET: lambda e, a: np.array([[np.log(np.linalg.det(a[0]))]]),
    Op.INV: lambda e, a: np.linalg.inv(a[0]),
    Op.MATPOW: lambda e, a: np.linalg.matrix_power(a[0], e.attr),
    Op.DIAG: lambda e, a: np.diag(a[0]).reshape(-1, 1),
    Op.DIAGM: lambda e, a: np.diag(a[0][:, 0]),
    Op.VEC: lambda e, a: a[0].reshape(-1, 1, order="F"),
    Op.UNVEC: lambda e, a: a[0].reshape(_dim(e.attr[0]), _dim(e.attr[1]), order="F"),
    Op.SUM: lambda e, a: np.array([[a[0].sum()]]),
    Op.INF_NORM: lambda e, a: np.array([[np.abs(a[0]).max()]]),
    Op.NORM: lambda e, a: np.array([[np.sqrt((np.abs(a[0]) ** 2).sum()) if e.attr == "2"
                                     else np.abs(a[0]).sum()]]),
    Op.EXP: lambda e, a: np.exp(a[0]),
    Op.LOG: lambda e, a: np.log(a[0]),
    Op.SIN: lambda e, a: np.sin(a[0]),
    Op.COS: lambda e, a: np.cos(a[0]),
    Op.TAN: lambda e, a: np.tan(a[0]),
    Op.TANH: lambda e, a: np.tanh(a[0]),
    Op.SQRT: lambda e, a: np.sqrt(a[0]),
    Op.ABS: lambda e, a: np.abs(a[0]),
    Op.SIGN: lambda e, a: np.sign(a[0]),
    Op.SIGMOID: lambda e, a: 1 / (1 + np.exp(-a[0])),
    Op.RELU: lambda e, a: np.maximum(a[0], 0),
    Op.ARCSIN: lambda e, a: np.arcsin(a[0]),
    Op.ARCCOS: lambda e, a: np.arccos(a[0]),
    Op.ARCTAN: lambda e, a: np.arctan(a[0]),
    Op.SOFTPLUS: lambda e, a: np.log(1 + np.exp(a[0])),
    Op.LOG1P: lambda e, a: np.log(1 + a[0]),
    Op.EXPM1: lambda e, a: np.exp(a[0]) - 1,
    Op.SINH: lambda e, a: (np.exp(a[0]) - np.exp(-a[0])) / 2,
    Op.COSH: lambda e, a: (np.exp(a[0]) + np.exp(-a[0])) / 2,
    Op.ARCSINH: lambda e, a: np.log(a[0] + np.sqrt(a[0] ** 2 + 1)),
    Op.MAX: lambda e, a: np.where(a[0] > a[1], a[0], a[1]),
    Op.MIN: lambda e, a: np.where(a[0] < a[1], a[0], a[1]),
    Op.MEAN: lambda e, a: np.array([[a[0].sum() / a[0].size]]),
    Op.LOGSUMEXP: lambda e, a: np.array([[np.log(np.exp(a[0]).sum())]]),
    Op.SOFTMAX: lambda e, a: np.exp(a[0]) / np.exp(a[0]).sum(),
    # spectral: plain scipy / numpy, independent of matdiff.linalg
    Op.TRIL: lambda e, a: np.tril(a[0]),
    Op.EXPM: lambda e, a: scipy.linalg.expm(a[0]),
    Op.LOGM: lambda e, a: np.real(scipy.linalg.logm(a[0])),
    Op.SQRTM: lambda e, a: np.real(scipy.linalg.sqrtm(a[0])),
    Op.FRECHET: lambda e, a: _frechet(e.attr, a[0], a[1]),
    Op.EIGVAL: lambda e, a: np.array([[np.linalg.eigvalsh((a[0] + a[0].T) / 2)[
        -1 if e.attr == "max" else 0]]]),
    Op.EIGVEC: lambda e, a: _signed(np.linalg.eigh((a[0] + a[0].T) / 2)[1][
        :, -1 if e.attr == "max" else 0]),
    Op.SPECTRAL_NORM: lambda e, a: np.array([[np.linalg.svd(a[0], compute_uv=False)[0]]]),
    Op.NUCLEAR_NORM: lambda e, a: np.array([[np.linalg.svd(a[0], compute_uv=False).sum()]]),
    Op.POLAR: lambda e, a: scipy.linalg.polar(a[0])[0] if a[0].shape[0] >= a[0].shape[1]
    else scipy.linalg.polar(a[0].T)[0].T,
    Op.SVD_U1: lambda e, a: a[0] @ _signed(np.linalg.svd(a[0])[2][0]) / np.linalg.norm(a[0], 2),
    Op.SVD_V1: lambda e, a: _signed(np.linalg.svd(a[0])[2][0]),
    Op.PINV: lambda e, a: np.linalg.lstsq(a[0], np.eye(a[0].shape[0]), rcond=None)[0],
    Op.ADJ: lambda e, a: np.linalg.det(a[0]) * np.linalg.inv(a[0]),
    Op.CHOL: lambda e, a: np.linalg.cholesky((a[0] + a[0].T) / 2),
    # complex numbers
    Op.IMAG_UNIT: lambda e, a: np.array([[1j]]),
    Op.CONJ: lambda e, a: np.conj(a[0]),
    Op.REAL: lambda e, a: np.real(a[0]),
    Op.IMAG: lambda e, a: np.imag(a[0]),
    Op.ANGLE: lambda e, a: np.angle(a[0]),
}


def _signed(v: np.ndarray) -> np.ndarray:
    """A unit vector with its largest entry (in absolute value) positive, as a column."""
    return (v * np.sign(v[np.argmax(np.abs(v))])).reshape(-1, 1)


def _frechet(f: str, a: np.ndarray, e: np.ndarray) -> np.ndarray:
    """L_f(A, E): the upper right block of f([A, E; 0, A])."""
    n = a.shape[0]
    big = np.block([[a, e], [np.zeros_like(a), a]])
    fun = {"expm": scipy.linalg.expm, "logm": scipy.linalg.logm, "sqrtm": scipy.linalg.sqrtm}
    return np.real(fun[f](big))[:n, n:]


def reference(e: Expr, env: dict[str, Any]) -> Any:
    """Evaluate naively, every node materialised; returns the user-facing form."""
    memo: dict[Expr, np.ndarray] = {}
    for node in e.walk():
        if node.op is Op.SYMBOL:
            memo[node] = np.asarray(env[node.name], dtype=complex if node.is_complex
                                    else float).reshape(_dim(node.rows), _dim(node.cols))
        else:
            memo[node] = REF[node.op](node, [memo[a] for a in node.args])
    out = memo[e] if e.is_complex else np.real(memo[e])
    if e.is_scalar:
        return complex(out[0, 0]) if e.is_complex else float(out[0, 0])
    return out.reshape(-1) if e.is_vector else out


def inputs(exprs: list[Expr], seed: int = 0) -> dict[str, Any]:
    """Random inputs by symbol shape; names starting with S are symmetric positive definite,
    names starting with 'pos' are positive, a matrix declared diagonal is."""
    rng = np.random.default_rng(seed)
    env: dict[str, Any] = {}
    for e in exprs:
        for node in e.walk():
            if node.op is not Op.SYMBOL or node.name in env:
                continue
            r, c = _dim(node.rows), _dim(node.cols)
            x = rng.standard_normal((r, c))
            if node.is_complex:                                # names starting with Zc
                x = x + 1j * rng.standard_normal((r, c))
            if node.name.startswith("S"):
                x = x @ x.T + r * np.eye(r)
            if node.name.startswith("pos"):
                x = np.abs(x) + 0.5
            if node.attr[2] == "diagonal":                     # declared: off zero, both signs
                x = np.diag(np.diag(x) + np.sign(np.diag(x)))
            env[node.name] = float(x[0, 0]) if node.is_scalar else \
                x.reshape(-1) if node.is_vector else x
    return env


# ----------------------------------------------------------------------------- cases

A = sym("A", ("m", "n"))
B = sym("B", ("m", "n"))
C = sym("C", ("n", "k"))
X = sym("X", ("n", "n"))
Y = sym("Y", ("n", "n"))
Sp = sym("S", ("n", "n"))
Pos = sym("pos", ("m", "n"))
Sd = sym("Sd", ("n", "n"), "spd")         # declared: one Cholesky factorization
Dd = sym("Dd", ("n", "n"), "diagonal")    # declared: applied through its diagonal
x = sym("x", ("n",))
y = sym("y", ("m",))
a = sym("a")
K = sym("K", (3, 2))          # concrete sizes
L = sym("L", (2, 4))
M = sym("M", (4, 5))
u = sym("u", (5,))
Gs = matmul(sym("Es", (2 * Dim.var("m"), "n")), X, sym("Fs", ("n", 2 * Dim.var("k"))))
Yk = sym("Yk", (2 * Dim.var("n"), 2 * Dim.var("n")))
Kd = sym("Kd", (2, 2))
Zc = sym("Zc", ("m", "n"), "complex")
Zq = sym("Zcq", ("n", "n"), "complex")

CASES: dict[str, Expr] = {
    "symbol": A,
    "const": const(Fraction(3, 2)),
    "identity": scale(a, eye("n")) + X,
    "ones": ones(("m", "n")) + A,
    "zeros-block": block([[A.T, zeros(("n", "m"))]]),
    "commutation": matmul(commutation("m", "n"), vec(A)),
    "commutation-dense": commutation(2, 3) + eye(6),
    "commutation-right": matmul(vec(A).T, commutation("m", "n")),
    "add": A + B - 2 * A,
    "scale": scale(a, A),
    "matmul": matmul(A, X, C),
    "matmul-vec": matmul(y.T, A, x),
    "matmul-scalar-factor": matmul(y, a, x.T),
    "transpose": A.T,
    "hadamard": hadamard(A, B, A),
    "hdiv": hdiv(A, Pos),
    "pow": hpow(Pos, const(Fraction(1, 2))),
    "pow-scalar-exponent": hpow(Pos, a),
    "kron": kron(X, L),
    "kron-times-matrix": matmul(kron(X, L), sym("V1", (4 * Dim.var("n"), 3))),
    "matrix-times-kron": matmul(sym("V2", (5, 4 * Dim.var("n"))), kron(L.T, X)),
    "kron-identity": matmul(kron(eye(2), K), sym("W2", (4, 3))),
    "block": block([[X, A.T], [A, eye("m")]]),
    "block-scalar": block([[a, x.T], [x, X]]),
    "block-times-matrix": matmul(block([[X, -C], [A, zeros(("m", "k"))]]),
                                 sym("V3", (Dim.var("n") + Dim.var("k"), "m"))),
    "matrix-times-block": matmul(A.T, block([[eye("m"), y]])),
    "slice": Expr(Op.SLICE, (A,), (Dim.of(1), Dim.of(3), Dim.of(0), Dim.var("n"))),
    "slice-entry": Expr(Op.SLICE, (A,), (Dim.of(1), Dim.of(2), Dim.of(2), Dim.of(3))),
    "trace": trace(X),
    "trace-matmul": trace(matmul(A.T, B)),
    "trace-chain": trace(matmul(A, X, C, C.T, A.T)),
    "trace-identity": trace(eye("n")) * X,
    "trace-kron": trace(kron(X, Y)),
    "trace-kron-product": trace(matmul(sym("Yk", (2 * Dim.var("n"), 2 * Dim.var("n"))).T,
                                       kron(eye(2), X))),
    "hadamard-kron": hadamard(sym("Yh", (2 * Dim.var("n"), 4 * Dim.var("n"))), kron(L, X)),
    "det": det(Sp),
    "logdet": logdet(Sp),
    "log-det": apply(Op.LOG, det(Sp)),
    "inv": inv(Sp),
    "inv-solve": matmul(inv(Sp), C),
    "inv-right": matmul(A, inv(Sp)),
    "inv-solve-vector": matmul(inv(Sp), x),
    "scale-onto-diagonal": scale(const(2), matmul(Dd, X)),
    "matpow": matpow(X, 3),
    "diag": diag(X),
    "diag-product": diag(matmul(A.T, B)),
    "diag-product-2": diag(matmul(X, Y, X)),
    "diag-sum": diag(X + 2 * Y.T),
    "diagm": diagm(x),
    "diagm-row-scaling": matmul(diagm(y), A),
    "diagm-col-scaling": matmul(A, diagm(x)),
    "identity-hadamard": hadamard(eye("n"), matmul(A.T, B) + X),
    "identity-hadamard-product": matmul(A, hadamard(eye("n"), matmul(A.T, B))),
    "vec": vec(A),
    "unvec": unvec(vec(A), "n", "m"),
    "sum": total(A),
    "sum-hadamard": total(hadamard(A, B)),
    "sum-kron": total(kron(X, L)),
    "ones-left": matmul(ones((1, "m")), A),
    "ones-right": matmul(A, ones(("n", 1))),
    "ones-matrix": matmul(ones((2, "m")), A, ones(("n", 3))),
    "norm2": norm(A),
    "norm2-squared": hpow(norm(A), 2),
    "norm1": norm(A, "1"),
    "norm-vector": norm(x),
    "chain-concrete": matmul(K, L, M, u),
    "chain-symbolic-4": matmul(A, X, Y, C),
    # structure the restructuring rules and the lowering look for
    "sliced-product": slice_(Gs, 0, "m", 0, "k") - 2 * slice_(Gs, "m", 2 * Dim.var("m"),
                                                              "k", 2 * Dim.var("k")),
    "sliced-product-overlap": slice_(Gs, 0, "m", 0, "k") + slice_(Gs, 1, Dim.var("m") + 1,
                                                                  0, "k"),
    "distribute-scale": scale(const(2), matmul(A, diagm(x)) + matmul(A, X) - matmul(B, Y)),
    "stacked-products": X + matmul(A.T, A) + matmul(A.T, A) + matmul(C, C.T),
    "stacked-products-plus-number": matmul(A, X) - matmul(B, Y) - scale(const(Fraction(3, 4)),
                                                                      ones(("m", "n"))),
    "norm-with-diagonal": hpow(norm(X - 2 * diagm(x) + Y), 2),
    "kron-sandwich-second": matmul(kron(ones((1, 2)), eye("n")),
                                   hadamard(Yk, kron(Kd, ones(("n", "n")))),
                                   kron(ones((2, 1)), eye("n"))),
    "kron-sandwich-first": matmul(kron(eye(2), ones((1, "n"))),
                                  hadamard(Yk, kron(ones((2, 2)), X)),
                                  kron(eye(2), ones(("n", 1)))),
    "kron-sandwich-dense": matmul(kron(Kd, X), hadamard(Yk, kron(Kd, ones(("n", "n")))),
                                  kron(Kd.T, eye("n"))),
    "transposed-left-thin": matmul(A.T, sym("Uk", ("m", "k"))),
    "block-row-of-transposed-products": matmul(block([[A.T, B.T]]),   # A'U + B'V, each
                                               block([[sym("Uk", ("m", "k"))],   # chosen at
                                                      [sym("Vk", ("m", "k"))]])),  # call time
    "transposed-left-concrete": matmul(sym("Nn", (6, 5)).T, sym("Nt", (6, 2))),
    "inverse-transpose": inv(Sp.T) + inv(Sp),
    "spd-one-cholesky": logdet(Sd) + matmul(x.T, inv(Sd), x) + det(Sd) + trace(inv(Sd)),
    "spd-solve": matmul(inv(Sd), C) + matmul(inv(Sd.T), C),
    "diagm-inner": total(hadamard(diagm(x), matmul(X, Y))) + trace(matmul(diagm(x), x, x.T)),
    "diagonal-products": matmul(A, Dd, C) + matmul(B, Dd.T, X, Dd, C),
    "diagonal-inverse-det": logdet(Dd) + det(Dd) + matmul(x.T, inv(Dd), x) + trace(
        matmul(matpow(Dd, 3), X)) + total(hadamard(X, Dd)) + total(inv(Dd.T)),
    "lu-shared": logdet(X) + matmul(x.T, inv(X.T), x) + trace(matmul(inv(X), Y)),
    "scalar-elementwise": apply(Op.EXP, a) + apply(Op.SIN, trace(X)),
    "expm": E.expm(X), "logm": E.logm(Sp), "sqrtm": E.sqrtm(Sp),
    **{f"frechet-{f}": E.frechet(f, X if f == "expm" else Sp, Y)
       for f in ("expm", "logm", "sqrtm")},
    "eigval": E.eigval(X, "max") - E.eigval(X, "min"), "eigvec": E.eigvec(X, "max"),
    "spectral-norm": E.spectral_norm(A), "nuclear-norm": E.nuclear_norm(A),
    "polar": E.polar(A), "polar-wide": E.polar(A.T), "svd-u1": E.svd_u1(A),
    "svd-v1": E.svd_v1(A), "pinv": E.pinv(A), "adj": E.adj(X), "chol": E.chol(Sp),
    "tril": E.tril(A), "inf-norm": E.inf_norm(E.matmul(A, x)),
    "mean": E.mean(A), "max": E.maximum(A, B), "min": E.minimum(B, zeros(("m", "n"))),
    "logsumexp": E.logsumexp(A), "logsumexp-vector": E.logsumexp(x), "softmax": E.softmax(x),
    **{f"ew-{op.name.lower()}": apply(op, Pos if op in (Op.LOG, Op.SQRT, Op.LOG1P) else
                                      scale(const(Fraction(1, 4)), apply(Op.TANH, A))
                                      if op in (Op.ARCSIN, Op.ARCCOS) else A)
       for op in ELEMENTWISE},
    # complex arrays: the adjoint, the parts, i, and real outputs of complex arithmetic
    "complex-gram": matmul(E.H(Zc), Zc),
    "complex-parts": E.real(Zc) - 2 * E.imag(Zc) + E.angle(Zc),
    "complex-unit": scale(E.imag_unit(), Zc) + E.conj(Zc),
    "complex-norm": hpow(norm(Zc - A), 2),
    "complex-norm1": norm(Zc, "1"),
    "complex-dot": trace(matmul(E.T(Zc), B)),
    "complex-diag": diag(matmul(E.H(Zc), Zc)),
    "complex-logdet": logdet(Zq),
    "complex-trace": E.real(trace(matmul(E.H(Zc), A))),
}


def assert_close(got: Any, want: Any, tol: float = 1e-10) -> None:
    got = np.asarray(got.detach().cpu() if hasattr(got, "detach") else got)
    got = got if np.iscomplexobj(want) else np.asarray(got, dtype=float)
    np.testing.assert_allclose(got, np.asarray(want), rtol=tol, atol=tol)
    assert got.shape == np.shape(want)


# ----------------------------------------------------------------------------- tables


def test_every_op_has_a_lowering_row() -> None:
    assert set(Op) <= set(LOWER), sorted(op.name for op in set(Op) - set(LOWER))


@pytest.mark.parametrize("table", [NUMPY, JAX, TORCH], ids=["numpy", "jax", "torch"])
def test_every_primitive_and_function_in_every_backend(table: dict[Any, Any]) -> None:
    """Each backend has a row for every primitive, every elementwise Op, and every function
    the lowering calls (a new elementwise Op is one row per backend)."""
    assert set(P) - {P.INPUT, P.LIT, P.CALL} <= set(table)
    assert ELEMENTWISE <= set(table), sorted(op.name for op in ELEMENTWISE - set(table))
    assert set(table) == set(NUMPY)
    calls = {n.key for b in BACKENDS for n in walk(lower(list(CASES.values()), b))
             if n.prim is P.CALL}
    assert calls <= set(table), calls - set(table)


def test_every_op_has_a_case() -> None:
    used = {n.op for e in CASES.values() for n in e.walk()}
    assert set(Op) <= used | {Op.MATMUL}, sorted(op.name for op in set(Op) - used)


# ----------------------------------------------------------------------------- numpy


@pytest.mark.parametrize("name", list(CASES))
def test_numpy_matches_reference(name: str) -> None:
    e = CASES[name]
    env = inputs([e])
    assert_close(compile(e)(**env), reference(e, env))


def test_list_of_outputs_is_a_tuple_with_shared_work() -> None:
    f = hpow(norm(A - B), 2)
    g = scale(const(2), A - B)
    src = codegen([f, g])
    assert src.count(" - B") == 1                               # A - B computed once
    env = inputs([f, g])
    value, grad = compile([f, g])(**env)
    assert isinstance(value, float)
    assert_close(grad, reference(g, env))


def test_compile_takes_any_array_like_and_passes_float64_arrays_as_they_are() -> None:
    fn = compile(matmul(X, x))
    want = np.array([5.0, 11.0])
    for m in (np.array([[1, 2], [3, 4]]), np.array([[1, 2], [3, 4]], dtype=np.float32),
              [[1, 2], [3, 4]], np.array([[1.0, 2.0], [3.0, 4.0]])):
        np.testing.assert_array_equal(fn(X=m, x=np.array([1.0, 2.0])), want)
    with pytest.raises(md.MatdiffError, match="missing argument"):
        fn(X=np.eye(2))


def test_vector_in_vector_out() -> None:
    e = matmul(X, x)
    out = compile(e)(X=np.eye(3), x=np.array([1.0, 2.0, 3.0]))
    assert out.shape == (3,)
    np.testing.assert_allclose(out, [1.0, 2.0, 3.0])


# ----------------------------------------------------------------------------- structure


STRUCTURE = {  # case -> (must appear in the numpy source, must not appear)
    "identity-hadamard": ("einsum('ij,ij->j'", "A.T @ B"),
    "identity-hadamard-product": ("A * ", "np.diagflat"),
    "diag-product": ("einsum('ij,ij->j'", "A.T @ B"),
    "trace-matmul": ("np.einsum('ij,ij->', A, B)", "np.trace"),
    "trace-identity": ("float(n)", "np.eye"),
    "kron-times-matrix": ("reshape", "np.kron"),
    "matrix-times-kron": ("reshape", "np.kron"),
    "kron-identity": ("reshape", "np.eye"),
    "block-times-matrix": ("V3[:n]", "np.block"),
    "matrix-times-block": ("np.concatenate", "np.block"),
    "inv-solve": ("np.linalg.solve(S, C) if k*n*n <= n*n*n + 8*n*n else np.linalg.inv(S) @ C",
                  "multi_dot"),                        # C much wider than S: inv(S) C
    "inv-right": ("np.linalg.solve(S.T, A.T) if m*n*n <= n*n*n + 8*n*n else "
                  "np.linalg.inv(S).T @ A.T", "multi_dot"),
    "inv-solve-vector": ("np.linalg.solve(S, x)", "np.linalg.inv"),
    "scale-onto-diagonal": ("2 * np.diagonal(Dd)[:, None] * X", "2 * ("),   # one n x n pass
    "logdet": ("slogdet", "np.linalg.det("),
    "log-det": ("slogdet", "np.log("),
    "diagm-row-scaling": ("y * A", "np.diagflat"),
    "diagm-col-scaling": ("A * x.T", "np.diagflat"),
    "ones-left": ("A.sum(axis=0, keepdims=True)", "np.ones"),
    "ones-right": ("A.sum(axis=1, keepdims=True)", "np.ones"),
    "commutation": ("transpose(1, 0, 2)", "np.eye"),
    "chain-concrete": ("K @ (L @ (M @ u))", "multi_dot"),
    "chain-symbolic-4": ("np.linalg.multi_dot([A, X, Y, C])", "@"),
    "norm2-squared": ("np.einsum('ij,ij->', A, A)", "np.sqrt"),
    "sum-kron": ("np.sum(X) * np.sum(L)", "np.kron"),
    "trace-kron-product": ("einsum('aibj,ab,ij->'", "np.kron"),
    "hadamard-kron": ("L.reshape(2, 1, 4, 1)", "np.kron"),
    "sliced-product": ("np.concatenate([t0, -2 * t1], axis=1) @ ", "Es @"),
    "distribute-scale": ("A * (2 * x).T", "np.diagflat"),
    "norm-with-diagonal": ("np.diagonal(", "np.diagflat"),
    "kron-sandwich-second": ("np.einsum('aibj,ab->ij', Yk.reshape(2, n, 2, n), Kd)", "np.kron"),
    "kron-sandwich-first": ("np.einsum('aibj,ij->ab', Yk.reshape(2, n, 2, n), X)", "np.kron"),
    "transposed-left-thin": ("A.T @ Uk", " if "),     # NumPy: as written (OpenBLAS here)
    "transposed-left-concrete": ("Nn.T @ Nt", " if "),
    "inverse-transpose": ("t0.T + t0", "inv(S.T)"),
    "spd-one-cholesky": ("scipy.linalg.cho_factor(Sd)", "np.linalg"),
    "spd-solve": ("scipy.linalg.cho_solve(t0, C) if k*n*n <= 3*n*n*n + 17*n*n else "
                  "scipy.linalg.cho_solve(t0, np.eye(n)) @ C", "inv"),
    "lu-shared": ("scipy.linalg.lu_factor(X)", "np.linalg"),
    "diagonal-products": ("np.diagonal(Dd)", "@ Dd"),
    "diagm-inner": ("np.einsum('ij,ij->i', X, Y.T)", "diagflat"),
    "diagonal-inverse-det": ("np.prod(np.diagonal(Dd))", "np.linalg"),
}


@pytest.mark.parametrize("name", list(STRUCTURE))
def test_structured_lowering(name: str) -> None:
    src = codegen(CASES[name])
    must, must_not = STRUCTURE[name]
    assert must in src, src
    assert must_not not in src.split('"""')[2], src


def test_three_factor_chain_order_chosen_at_call_time() -> None:
    e = matmul(A.T, A, x)
    src = codegen(e)
    assert " if " in src and " else " in src
    env = inputs([e])
    assert_close(compile(e)(**env), reference(e, env))


def test_seed_shaped_block_gradient_uses_slices() -> None:
    m, n = Dim.var("m"), Dim.var("n")
    R, Q, P = sym("R", ("m", "n")), sym("Q", ("m", "n")), sym("P", (2 * n, "k"))
    W = sym("W", (2 * m, "k"))
    E = W - matmul(block([[R, -Q], [Q, R]]), P)
    sel = block([[eye("m"), zeros(("m", "m"))]])
    g = matmul(sel, E, P.T, block([[eye("n")], [zeros(("n", "n"))]]))
    src = codegen([hpow(norm(E), 2), g])
    assert "np.block" not in src and "np.eye" not in src
    env = inputs([g])
    assert_close(compile(g)(**env), reference(g, env))


@pytest.mark.parametrize(("backend", "expected"), [
    ("numpy", "A.T @ y"), ("torch", "A.T @ y"), ("jax", "(y.T @ A).T")])
def test_transposed_matrix_times_vector_per_backend(backend: str, expected: str) -> None:
    """XLA runs A'y 8x slower than (y'A)'; OpenBLAS and MKL run both alike."""
    assert expected in codegen(matmul(A.T, y), backend=backend)


@pytest.mark.parametrize(("backend", "thin", "concrete"), [
    ("numpy", "A.T @ Uk", "Nn.T @ Nt"),
    ("torch", "(Uk.T @ A).T if n > k else A.T @ Uk", "(Nt.T @ Nn).T"),
    ("jax", "A.T @ Uk", "Nn.T @ Nt")])
def test_transposed_matrix_times_thin_matrix_per_backend(backend: str, thin: str,
                                                         concrete: str) -> None:
    """X'Y with a tall thin result: PyTorch's BLAS runs (Y'X)' 2x faster (0.48x over 44
    shapes, benchmarks/README.md), NumPy's OpenBLAS here X'Y (1.10x the other way)."""
    assert thin in codegen(matmul(A.T, sym("Uk", ("m", "k"))), backend=backend)
    assert concrete in codegen(matmul(sym("Nn", (6, 5)).T, sym("Nt", (6, 2))), backend=backend)


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_function_of_an_integer_constant_computes_in_floats(backend: str) -> None:
    """relu(2) ** -1 (soak case 24456) and relu(2) ** 100: NumPy integers refuse negative
    powers and overflow silently."""
    _backend(backend)
    for p, want in ((-1, 0.5), (100, 2.0 ** 100)):
        got = compile(hpow(apply(Op.RELU, const(2)), p), backend=backend)()
        assert float(got) == pytest.approx(want, rel=1e-12)


def test_seed_code_builds_no_diagonal_matrix_and_stacks_the_gradient_products() -> None:
    """The seed's value + gradients: ||Z - Diag(d)||^2 from the diagonal alone, and the
    block rows of the residual computed once and stacked (since issue 13 the gradient is
    written block by block, so its products are no longer stacked; the value's are)."""
    from matdiff.testing import SEED
    f = md.parse(SEED)
    grads = md.grad(f, ["R", "Q"])
    exprs = [f, grads["R"], grads["Q"]]
    body = codegen(exprs).split('"""')[2]
    assert "diagflat" not in body and "np.block" not in body
    assert "np.concatenate(" in body, body
    env, _sizes = random_inputs(exprs, seed=1)
    got = compile(exprs)(**env)
    for value, e in zip(got, exprs, strict=True):
        assert_close(value, evaluate(e, env))


# ----------------------------------------------------------------------------- safety, errors


@pytest.mark.parametrize("bad", ["lambda", "import os", "__import__('os')", "x'", "np",
                                 "1x", "α", "t0", "float"])
def test_generated_source_holds_only_identifiers(bad: str) -> None:
    v = sym(bad, ("n", "n"))
    e = matmul(v, X) + matmul(X, v) + trace(eye("n")) * v
    src = codegen(e, name="my func; rm -rf")
    tree = ast.parse(src)
    fn = tree.body[1]
    assert isinstance(fn, ast.FunctionDef) and re.fullmatch(r"[A-Za-z_]\w*", fn.name)
    params = [p.arg for p in fn.args.args]
    assert all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", p) for p in params)
    assert len(set(params)) == len(params) == 2
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id == "float"                     # no call to a user name
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            assert node.value.startswith("Generated") or re.fullmatch(r"[a-z,\->]+", node.value) \
                or re.fullmatch(r"[A-Za-z_]\w* has shape |, expected ", node.value)  # asserts
    assert "rm -rf" not in src and "import os" not in src and "'os'" not in src
    env = {bad: np.eye(3), "X": np.arange(9.0).reshape(3, 3)}
    assert_close(compile(e)(**env), 2 * env["X"] + 3 * np.eye(3))


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_standalone_code_asserts_its_input_shapes(backend: str) -> None:
    """Pasted into a project, the generated function refuses a (1, n) B for an (m, n) one,
    which A .* B would otherwise broadcast silently."""
    if backend != "numpy":
        _backend(backend)
    namespace: dict[str, Any] = {}
    exec(codegen(hadamard(A, B), backend=backend), namespace)
    mod = namespace[BACKENDS[backend].m]
    good, row = mod.asarray(np.ones((4, 3))), mod.asarray(np.ones((1, 3)))
    assert namespace["f_and_grad"](A=good, B=good).shape == (4, 3)
    with pytest.raises(AssertionError, match=r"B has shape .*, expected \(4, 3\)"):
        namespace["f_and_grad"](A=good, B=row)


def test_missing_argument_raises() -> None:
    fn = compile(matmul(A, X))
    with pytest.raises(MatdiffError, match="'X'"):
        fn(A=np.ones((4, 3)))


def test_inconsistent_shapes_raise() -> None:
    fn = compile(matmul(A, X))
    with pytest.raises(MatdiffError, match="'X'"):
        fn(A=np.ones((4, 3)), X=np.ones((4, 4)))
    with pytest.raises(MatdiffError, match="'x'"):
        compile(matmul(X, x))(X=np.eye(3), x=np.ones((3, 3)))


def test_extra_arguments_are_ignored() -> None:
    assert compile(trace(X))(X=np.eye(3), unused=1.0) == 3.0


def test_dimension_solved_from_a_composite_size() -> None:
    z = sym("z", (2 * Dim.var("n") + 1,))
    e = total(hadamard(z, z)) * eye("n")
    assert "n = (z.shape[0] - 1) // (2)" in codegen(e)
    assert_close(compile(e)(z=np.ones(7)), 7 * np.eye(3))


def test_unreadable_dimension_raises() -> None:
    z = sym("z", (Dim.var("n") * Dim.var("n"),))
    with pytest.raises(MatdiffError, match="dimension"):
        codegen(total(hadamard(z, z)) * eye("n"))


def test_unknown_backend_raises() -> None:
    with pytest.raises(MatdiffError, match="backend"):
        codegen(A, backend="fortran")


# the module the stable logsumexp and softmax rows need, by backend
SPECIAL_IMPORTS = {"numpy": ["import scipy.special"],
                   "jax": ["import jax.scipy.special", "import jax"], "torch": []}


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_only_the_backend_import(backend: str) -> None:
    """The backend's import, and the linear algebra module the spectral functions and the
    factorizations need (scipy.linalg, jax.scipy.linalg) or the special functions module of
    logsumexp and softmax (scipy.special, jax.scipy.special; NumPy's sigmoid is expit) only
    where the code uses one."""
    spectral = {*SPECTRAL_ROWS[backend], Op.FRECHET}
    special = {Op.LOGSUMEXP, Op.SOFTMAX, *([Op.SIGMOID] if backend == "numpy" else [])}
    factorized = ("spd-one-cholesky", "spd-solve", "lu-shared")
    plain = [e for k, e in CASES.items() if not {n.op for n in e.walk()} & (spectral | special)
             and k not in factorized]
    only_special = [e for k, e in CASES.items() if {n.op for n in e.walk()} & special
                    and not {n.op for n in e.walk()} & spectral and k not in factorized]
    def imports(exprs: list[Expr]) -> list[str]:
        return sorted(line for line in codegen(exprs, backend=backend).splitlines()
                      if "import" in line)
    for e in plain:            # one at a time: cases together may share a factorization
        assert imports([e]) == [BACKENDS[backend].imports], str(e)
    for exprs, extra in ((only_special, SPECIAL_IMPORTS[backend]),
                         (list(CASES.values()),
                          [SPECTRAL_IMPORTS[backend], *SPECIAL_IMPORTS[backend]])):
        assert imports(exprs) == sorted([BACKENDS[backend].imports, *filter(None, extra)])


# ----------------------------------------------------------------------------- other backends




@pytest.mark.jax
@pytest.mark.parametrize("name", list(CASES))
def test_jax_agrees_with_numpy(name: str) -> None:
    _jax()
    e = CASES[name]
    env = inputs([e])
    assert_close(compile(e, backend="jax")(**env), compile(e)(**env))


@pytest.mark.torch
@pytest.mark.parametrize("name", list(CASES))
def test_torch_agrees_with_numpy(name: str) -> None:
    torch = _torch()
    e = CASES[name]
    env = inputs([e])
    targs = {k: torch.as_tensor(v, dtype=torch.complex128 if np.iscomplexobj(v) else
                                torch.float64) for k, v in env.items()}
    got = compile(e, backend="torch")(**targs)
    assert_close(got, compile(e)(**env))


@pytest.mark.jax
def test_jax_jit_and_vmap() -> None:
    jax = _jax()
    f = hpow(norm(matmul(A, x) - y), 2)
    g = scale(const(2), matmul(A.T, matmul(A, x) - y))
    fn = compile([f, g], backend="jax")
    env = inputs([f, g])
    value, grad = jax.jit(lambda **kw: fn(**kw))(**env)
    assert_close(value, reference(f, env))
    xs = np.stack([env["x"], 2 * env["x"]])
    values, grads = jax.vmap(lambda xb: fn(A=env["A"], x=xb, y=env["y"]))(xs)
    assert values.shape == (2,) and grads.shape == (2, 3)
    assert_close(grads[1], reference(g, {**env, "x": xs[1]}))


SRC = Path(__file__).resolve().parents[1] / "src"      # this checkout's matdiff
_X64 = """
import numpy as np, jax, matdiff as md
f = md.parse("||A*x - b||^2", shapes={"A": ("m", "n"), "x": ("n",), "b": ("m",)})
fn = md.compile([f, md.grad(f, ["x"])["x"]], backend="jax")
rng = np.random.default_rng(0)
env = {"A": rng.standard_normal((5, 3)), "x": rng.standard_normal(3), "b": np.ones(5)}
value, grad = fn(**env)
r = env["A"] @ env["x"] - env["b"]
assert abs(float(value) - r @ r) <= 1e-12 * (r @ r), value         # float64 accuracy
single = fn(**{k: jax.numpy.asarray(v, dtype="float32") for k, v in env.items()})
print(value.dtype, grad.dtype, jax.config.jax_enable_x64, single[1].dtype)
"""


@pytest.mark.jax
def test_jax_returns_float64_for_float64_input_without_the_global_setting() -> None:
    """In a fresh process (this one enables x64 for the other tests): float64 inputs give
    float64 outputs at float64 accuracy, jax_enable_x64 stays off, float32 stays float32."""
    _jax()
    out = subprocess.run([sys.executable, "-c", _X64], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["float64", "float64", "False", "float32"]


_SHARDED = """
import os
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
import numpy as np, jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import matdiff as md
jax.config.update("jax_enable_x64", True)
assert len(jax.devices()) == 8, jax.devices()
f = md.parse("sum(log(1 + exp(-y .* (X*w)))) + lam*||w||^2 + ||X'*(X*w - y)||^2",
             shapes={"X": ("N", "d"), "w": ("d",), "y": ("N",), "lam": ()})
fn = md.compile([f, md.grad(f, ["w"])["w"]], backend="jax")
rng = np.random.default_rng(0)
env = {"X": rng.standard_normal((64, 5)) / 3, "w": rng.standard_normal(5),
       "y": np.sign(rng.standard_normal(64)), "lam": 0.1}
step = jax.jit(lambda **kw: fn(**kw))
single = step(**env)
mesh = Mesh(np.array(jax.devices()), ("rows",))
rows, whole = NamedSharding(mesh, P("rows")), NamedSharding(mesh, P())
sharded = {"X": jax.device_put(env["X"], NamedSharding(mesh, P("rows", None))),
           "y": jax.device_put(env["y"], rows), "w": jax.device_put(env["w"], whole),
           "lam": env["lam"]}
assert len(sharded["X"].sharding.device_set) == 8
both = step(**sharded)
for a, b in zip(single, both):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-12)
print("ok", len(sharded["X"].addressable_shards), both[1].dtype)
"""


@pytest.mark.jax
def test_jax_value_and_gradient_sharded_over_8_host_devices() -> None:
    """The generated JAX value and gradient under jax.jit with the data rows sharded over 8
    host devices (a Mesh, NamedSharding) equal the single-device result: scaling past one
    device is JAX's runtime, the generated code has nothing of its own."""
    _jax()
    out = subprocess.run([sys.executable, "-c", _SHARDED], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ok", "8", "float64"]


@pytest.mark.torch
def test_torch_output_on_input_device() -> None:
    torch = _torch()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    e = matmul(A, eye("n"), diagm(x)) + ones(("m", "n"))
    fn = compile(e + scale(trace(eye("n")), A), backend="torch")
    env = {k: torch.as_tensor(v, dtype=torch.float64, device=device)
           for k, v in inputs([e]).items()}
    assert fn(**env).device.type == device


# ----------------------------------------------------------------------------- random expressions


def random_expr(rng: np.random.Generator, depth: int) -> Expr:
    """A random well-shaped n x n expression over X, Y, A'A and the vector x."""
    if depth == 0:
        return [X, Y, matmul(A.T, A), matmul(x, x.T), eye("n")][int(rng.integers(5))]
    a, b = random_expr(rng, depth - 1), random_expr(rng, depth - 1)
    choices: list[Callable[[], Expr]] = [
        lambda: a + b,
        lambda: a - 2 * b,
        lambda: matmul(a, b),
        lambda: matmul(a, b, a),
        lambda: T(a),
        lambda: hadamard(a, b),
        lambda: hadamard(eye("n"), matmul(T(a), b)),
        lambda: scale(trace(matmul(a, b)), a),
        lambda: diagm(diag(matmul(a, b))),
        lambda: matmul(diagm(matmul(a, x)), b),
        lambda: apply(Op.TANH, a),
        lambda: scale(hpow(norm(a), 2), b),
    ]
    return choices[int(rng.integers(len(choices)))]()


@pytest.mark.parametrize("seed", range(40))
def test_random_expressions_match_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    exprs = [random_expr(rng, 3), random_expr(rng, 2)]
    env = inputs(exprs, seed)
    for got, e in zip(compile(exprs)(**env), exprs, strict=True):
        assert_close(got, reference(e, env), tol=1e-8)


@pytest.mark.jax
@pytest.mark.torch
@pytest.mark.parametrize("seed", range(10))
def test_random_expressions_backends_agree(seed: int) -> None:
    torch = _torch()
    _jax()
    rng = np.random.default_rng(seed)
    exprs = [random_expr(rng, 3), random_expr(rng, 2)]
    env = inputs(exprs, seed)
    ours = compile(exprs)(**env)
    via_jax = compile(exprs, backend="jax")(**env)
    via_torch = compile(exprs, backend="torch")(**{k: torch.as_tensor(v) for k, v in
                                                  env.items()})
    for a, b, c in zip(ours, via_jax, via_torch, strict=True):
        scale_ = 1 + float(np.max(np.abs(a)))
        assert_close(np.asarray(b) / scale_, np.asarray(a) / scale_)
        assert_close(c.numpy() / scale_, np.asarray(a) / scale_)


# ----------------------------------------------------------------------------- edge shapes
# Regressions found by comparing every backend with matdiff.check.evaluate on random
# expressions of scalar, vector and 1x1 shapes (integer dimensions 1 among them).


def _edge_agrees(backend: str, e: Expr, env: dict[str, Any]) -> None:
    from matdiff.check import evaluate

    _backend(backend)
    want = np.asarray(evaluate(e, env), dtype=float)
    assert_close(compile(e, backend=backend)(**env), want, tol=1e-9)


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_logdet_of_a_scalar(backend: str) -> None:
    """logdet of a 1x1 argument (a 0-d value in generated code) is log a, not slogdet of it."""
    u, v = sym("u", (1, 3)), sym("v", (3, 1))
    env = {"a": 2.0, "u": np.array([[1.0, 2.0, 3.0]]), "v": np.ones((3, 1))}
    _edge_agrees(backend, logdet(sym("a")) + logdet(matmul(u, v)), env)


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_kron_of_a_transposed_factor(backend: str) -> None:
    """torch.kron views its arguments: a transposed (non-contiguous) factor raised."""
    b, c = sym("B", ("n", "n")), sym("C", ("n", "n"))
    e = total(hadamard(kron(ones(("n", "n")), T(b) + c), kron(T(c), b)))
    rng = np.random.default_rng(0)
    _edge_agrees(backend, e, {"B": rng.standard_normal((3, 3)),
                              "C": rng.standard_normal((3, 3))})


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_identity_of_size_one_is_a_scalar(backend: str) -> None:
    """I_1 and K(1, 1) are 1x1, so 0-d values: np.eye(1) made a scalar output 2-D (found in
    gradients with respect to scalars)."""
    a = sym("a")
    e = scale(a, eye(1)) + apply(Op.EXP, eye(1)) + commutation(1, 1)
    _edge_agrees(backend, e, {"a": 2.0})


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_norm_of_a_constant_and_constant_outputs(backend: str) -> None:
    """||c||_1 lowered to torch.abs(3), which takes no int; a constant output (the gradient of
    2a) came back as a Python int from JAX and PyTorch instead of a float / 0-d tensor."""
    a = sym("a")
    outs = [a * norm(const(-3), "1"), norm(const(Fraction(-1, 3))), norm(a, "1"), const(2)]
    _backend(backend)
    got = compile(outs, backend=backend)(a=-2.0)
    for g, want in zip(got, [-6.0, 1 / 3, 2.0, 2.0], strict=True):
        assert_close(g, want)
        assert not isinstance(g, int)
    if backend == "torch":
        assert all(hasattr(g, "dtype") for g in got)


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
@pytest.mark.parametrize("shape", [(), (1,), (1, 1)])
def test_scalar_argument_given_as_a_1x1_array(backend: str, shape: tuple[int, ...]) -> None:
    """A scalar passed as a (1,) or (1, 1) array is accepted; JAX and PyTorch used it as is,
    so scalar outputs came back (1, 1) and exp(a) 2-D."""
    a, v = sym("a"), sym("v", ("n",))
    e = [scale(a, matmul(T(v), v)), apply(Op.EXP, a), block([[a, T(v)]]), scale(a, v)]
    _backend(backend)
    got = compile(e, backend=backend)(a=np.full(shape, 2.0), v=np.ones(3))
    for g, want in zip(got, [6.0, np.exp(2.0), np.array([[2.0, 1, 1, 1]]), np.full(3, 2.0)],
                       strict=True):
        assert_close(g, want)


# ----------------------------------------------------------------------------- the IR
# Every product the generated code computes is a node of the IR (the call-time choices pick
# one of two equal forms); these tests read the products off it.

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _bench_module(name: str) -> Any:
    """A benchmark script as a module (``problems`` imports ``seed`` by name)."""
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


BENCH_PROBLEMS = {"seed": _bench_module("seed").SEED_PROBLEM,
                  **{k: v[0] for k, v in _bench_module("problems").PROBLEMS.items()}}


def _executed(roots: list[Any], branch: int) -> list[Any]:
    """The IR one call runs when every call-time choice takes ``branch``."""
    seen: set[Any] = set()
    stack, out = list(roots), []
    while stack:
        n = stack.pop()
        if n not in seen:
            seen.add(n)
            out.append(n)
            stack.extend([n.args[branch]] if n.prim is P.CHOOSE else n.args)
    return out


def _factors(x: Any) -> tuple[tuple[Any, bool], ...]:
    """The factors of a product (through nested products and transposed products), each as
    (node, transposed)."""
    if x.prim is P.MATMUL:
        return _factors(x.args[0]) + _factors(x.args[1])
    if x.prim is P.TRANSPOSE and x.args[0].prim is P.MATMUL:
        return tuple((f, not t) for f, t in reversed(_factors(x.args[0])))
    return ((x.args[0], True),) if x.prim is P.TRANSPOSE else ((x, False),)


def _terms(x: Any) -> list[Any]:
    """The terms of a sum, scalars and signs dropped."""
    if x.prim in (P.ADD, P.SUB):
        return _terms(x.args[0]) + _terms(x.args[1])
    if x.prim is P.NEG or x.prim is P.MUL and not x.args[0].shape:
        return _terms(x.args[-1])
    return [x]


def repeated_products(nodes: list[Any]) -> list[str]:
    """Products computed twice: two products of the same factors (in any association, or
    transposed: X'Y beside Y'X), or a product with a sum factor whose terms' products are
    computed too ((C + C')W beside CW)."""
    chains: dict[tuple[Any, ...], Any] = {}
    found = []
    for n in nodes:
        if n.prim is P.MATMUL:
            chain = _factors(n)
            flipped = tuple((f, not t) for f, t in reversed(chain))
            if chains.get(chain, n) is not n or chains.get(flipped, n) is not n:
                found.append(f"{chain} twice")
            chains[chain] = n
    for chain in list(chains):
        for i, (f, t) in enumerate(chain):
            for term in _terms(f) if f.prim in (P.ADD, P.SUB) else []:
                sub = _factors(term) if term.prim is P.MATMUL else ((term, False),)
                sub = tuple((g, not u) for g, u in reversed(sub)) if t else sub
                if chain[:i] + sub + chain[i + 1:] in chains:
                    found.append(f"a product of a sum beside its term {term}")
    return found


def _products(nodes: list[Any]) -> int:
    return sum(n.prim is P.MATMUL or n.key in ("addmm", "multi_dot", "solve", "cho_solve",
                                                      "lu_solve", "lu_solve_t") for n in nodes)


# products per call (both sides of every call-time choice), seed and benchmarks/problems.py
PRODUCTS = {"seed": (11, 9),  # the block-by-block residual is a slice of the value's
            "kron": (0, 0), "gauss": (2, 2), "net": (5, 5), "mf": (3, 3),
            "trace": (2, 2), "kronls": (5, 5), "logreg": (2, 2), "mmf": (3, 3), "pca": (1, 1),
            "graph": (1, 1), "ridge": (2, 2), "prec": (0, 0), "sandwich": (4, 4),
            "wls": (4, 4)}    # X w, r'(d .* r), w'w, X'(d .* r): never D r


@pytest.mark.parametrize("name", list(BENCH_PROBLEMS))
def test_no_product_computed_twice_in_the_benchmark_problems(name: str) -> None:
    roots = lower(BENCH_PROBLEMS[name].exprs())
    for branch in (0, 1):
        nodes = _executed(roots, branch)
        assert repeated_products(nodes) == []
        assert _products(nodes) == PRODUCTS[name][branch]


class _Counted(np.ndarray):
    """An array that counts the matrix products NumPy runs on it (``@`` is the ufunc
    ``np.matmul``; ``multi_dot`` of k matrices is k - 1); what is computed from it is
    counted too."""

    matmuls = 0

    def __array_ufunc__(self, ufunc: Any, method: str, *args: Any, **kwargs: Any) -> Any:
        if ufunc is np.matmul:
            _Counted.matmuls += 1
        return _counted(getattr(ufunc, method)(*_plain(args), **_plain(kwargs)))

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        if func is np.linalg.multi_dot:
            _Counted.matmuls += len(args[0]) - 1
        return _counted(func(*_plain(args), **_plain(kwargs)))


def _plain(x: Any) -> Any:
    if isinstance(x, _Counted):
        return x.view(np.ndarray)
    if isinstance(x, (list, tuple)):
        return type(x)(map(_plain, x))
    return {k: _plain(v) for k, v in x.items()} if isinstance(x, dict) else x


def _counted(x: Any) -> Any:
    if isinstance(x, tuple):
        return tuple(map(_counted, x))
    return x.view(_Counted) if isinstance(x, np.ndarray) else x


def _forced(exprs: list[Any], branch: int) -> Callable[..., Any]:
    """The generated NumPy function with every call-time test answering ``branch == 0``."""
    from matdiff.codegen.emit import Emitter
    attr = Emitter.attr

    def forced(self: Any, x: Any) -> dict[str, str]:
        return {"a": str(branch == 0)} if x.prim is P.CHOOSE else attr(self, x)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Emitter, "attr", forced)
        src = codegen(exprs)
    namespace: dict[str, Any] = {}
    exec(src, namespace)  # noqa: S102
    return namespace["f_and_grad"]


@pytest.mark.parametrize("name", list(BENCH_PROBLEMS))
def test_a_call_runs_only_the_products_of_the_alternatives_it_takes(name: str) -> None:
    """The code computes a product that only some call-time alternatives read only when one
    of them is taken (the seed's S Pᵢᵀ, read where a chain's order is decided at call time,
    is not computed when the stacked form is): the matrix products one call runs are those
    of the IR on the branch taken."""
    exprs = BENCH_PROBLEMS[name].exprs()
    roots = lower(exprs)
    env, _sizes = random_inputs(exprs, seed=1)
    for branch in (0, 1):
        _Counted.matmuls = 0
        got = _forced(exprs, branch)(**{k: np.asarray(v).view(_Counted) for k, v in env.items()})
        want = sum(1 if n.prim is P.MATMUL or n.key == "addmm" else len(n.args) - 1
                   for n in _executed(roots, branch)
                   if n.prim is P.MATMUL or n.key in ("addmm", "multi_dot"))
        assert _Counted.matmuls == want, (branch, _Counted.matmuls, want)
        for value, e in zip(got, exprs, strict=True):
            assert_close(_plain(value), evaluate(e, env))


# Outputs outside the benchmarks that share products only in another orientation or
# association, or within one output: (U'MV)' = V'M'U, x'A'Ax = (Ax)'(Ax), W'S = (SW)' for a
# symmetric S, c'ABx beside (ABx)'(ABx); products per call on both sides of every choice.
SHARED = {
    "bilinear": ("||U'*M*V||_F^2", {"U": ("n", "k"), "M": ("n", "n"), "V": ("n", "k")},
                 ["U", "V"], (5, 5)),            # U'M, (U'M)V; MV, MV T'; (U'M)'T
    "quadratic form": ("x'*A'*A*x", {"A": ("m", "n"), "x": ("n",)}, ["x"], (3, 3)),
    "two-factor form": ("x'*B'*A'*A*B*x - 2*c'*A*B*x", {"A": ("m", "n"), "B": ("n", "n"),
                        "x": ("n",), "c": ("m",)}, ["x"], (6, 8)),
    "symmetric trace": ("tr(W'*S*W) + ||W||_F^2", {"W": ("n", "k"),
                        "S": ("n", "n", "symmetric")}, ["W"], (1, 1)),
    "gram": ("||X'*X - I||_F^2", {"X": ("n", "k")}, ["X"], (2, 2)),
    "exponential family": ("sum(exp(A*x)) - b'*A*x + ||x||^2", {"A": ("m", "n"),
                           "b": ("m",), "x": ("n",)}, ["x"], (3, 4)),
    # sizes known: the orders are decided at compile time, each output lowered twice
    "exponential family, 40 x 5": ("sum(exp(A*x)) - b'*A*x", {"A": (40, 5), "b": (40,),
                                   "x": (5,)}, ["x"], (3, 3)),   # Ax, b'(Ax), A'(e - b)
    "least squares as a form, 40 x 5": ("x'*A'*A*x - 2*b'*A*x", {"A": (40, 5), "b": (40,),
                                        "x": (5,)}, ["x"], (4, 4)),   # and (Ax)'(Ax)
}


@pytest.mark.parametrize("name", list(SHARED))
def test_a_product_is_shared_in_any_orientation_and_within_an_output(name: str) -> None:
    text, shapes, wrt, products = SHARED[name]
    f = md.parse(text, shapes=shapes)
    grads = md.grad(f, wrt)
    exprs = [f, *(grads[w] for w in wrt)]  # type: ignore[index]
    roots = lower(exprs)
    for branch in (0, 1):
        nodes = _executed(roots, branch)
        assert repeated_products(nodes) == []
        assert not any(n.key == "multi_dot" for n in nodes)   # an order blind to reuse
        assert _products(nodes) == products[branch]
    env, _sizes = random_inputs(exprs, seed=3)
    for got, e in zip(compile(exprs)(**env), exprs, strict=True):
        assert_close(got, evaluate(e, env))


def test_a_choice_is_settled_by_what_the_whole_program_computes() -> None:
    """Lowered alone, the value's b'Ax is (b'A)x or b'(Ax) by the sizes; its exp(Ax)
    computes Ax anyway, so b'(Ax) is the one order, and the gradient's A'(e - b), chosen
    against A'e - (b'A)' while b'A looked computed, is tested on what the call computes:
    with m > n one call runs A x, b'(A x) and A'(e - b), three products."""
    f = md.parse("sum(exp(A*x)) - b'*A*x + ||x||^2", shapes={"A": ("m", "n"), "b": ("m",),
                                                               "x": ("n",)})
    exprs = [f, md.grad(f, ["x"])["x"]]  # type: ignore[index]
    rng = np.random.default_rng(0)
    env = {"A": rng.standard_normal((40, 5)) / 7, "b": rng.standard_normal(40),
           "x": rng.standard_normal(5)}
    namespace: dict[str, Any] = {}
    exec(codegen(exprs), namespace)  # noqa: S102
    _Counted.matmuls = 0
    got = namespace["f_and_grad"](**{k: v.view(_Counted) for k, v in env.items()})
    assert _Counted.matmuls == 3
    for value, e in zip(got, exprs, strict=True):
        assert_close(_plain(value), evaluate(e, env))


PROBES = _bench_module("probes").PROBES     # 34 problems the generator was not tuned for


@pytest.mark.parametrize("name", list(PROBES))
def test_the_probes_agree_with_their_closed_forms_and_compute_no_chain_twice(name: str
                                                                            ) -> None:
    """At a small size the generated value and gradients equal the hand-written closed
    form; no product of the same factors (in any association or orientation) is computed
    twice, no chain is left to ``multi_dot`` and no Kronecker or outer product is built to
    be multiplied out."""
    b = PROBES[name]
    env = b.make_inputs(24, np.random.default_rng(0))
    for got, want in zip(compile(b.exprs())(**env), b.hand(**env), strict=True):
        assert_close(np.asarray(got).reshape(np.shape(want)), want, tol=1e-8)
    roots = lower(b.exprs())
    for branch in (0, 1):
        nodes = _executed(roots, branch)
        assert [r for r in repeated_products(nodes) if r.endswith(" twice")] == []
        assert not any(n.key == "multi_dot" for n in nodes)
    assert avoidable_products(roots) == []


DIAGONAL_PROBLEMS = {        # a declared diagonal D: constant, variable, inverted, powered
    "scaled-fit": ("||Y - D*X*W||_F^2 + logdet(D) + tr(inv(D)*X*X')", ["X", "D"]),
    "weighted-least-squares": ("(y - A*x)'*D*(y - A*x) + x'*D^2*x", ["x"]),
    "gaussian-diagonal-covariance": ("(x - m)'*inv(D)*(x - m) + log(det(D)) + sum(D .* X)",
                                     ["x", "D"]),
    "two-sided": ("tr(X'*D*X*D) + ||D*X - X*diag(u)||_F^2", ["X", "u"]),
}


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
@pytest.mark.parametrize("name", list(DIAGONAL_PROBLEMS))
def test_a_declared_diagonal_matrix_is_used_through_its_diagonal(name: str, backend: str
                                                                 ) -> None:
    """D declared diagonal is never multiplied, inverted, factored or powered as a dense
    matrix, in the value or any gradient: D V is diag(D) .* V, inv(D) is 1 ./ diag(D), det and
    logdet come from the diagonal; the values equal the reference's at a diagonal D."""
    text, wrt = DIAGONAL_PROBLEMS[name]
    shapes = {"D": ("n", "n", "diagonal"), "X": ("n", "n"), "Y": ("n", "n"), "W": ("n", "n")}
    f = md.parse(text, shapes={k: v for k, v in shapes.items() if k in text})
    exprs = [f, *md.grad(f, wrt).values()]
    dense = (Op.INV, Op.DET, Op.MATPOW, "slogdet", "lu_factor", "cho_factor", "solve")
    for n in walk(lower(exprs)):
        assert not (n.prim is P.MATMUL or n.key in dense) or all(
            a.prim is not P.INPUT or a.attr != "D" for a in n.args), n
    _backend(backend)
    env = inputs(exprs, seed=3)
    for got, e in zip(compile(exprs, backend=backend)(**env), exprs, strict=True):
        assert_close(got, reference(e, env), 1e-9)


def test_the_value_and_the_gradient_share_their_products() -> None:
    """tr(X'LX): LX once (the audit found it in the value and again in the gradient);
    tr(W'CW) + ||CW||^2: CW once, and the gradient (C + C' + 2C'C) W reuses it (at call
    time, against forming the sum, when that is cheaper)."""
    L_ = sym("L", ("n", "n"), "symmetric")
    Xk, Wk, Cn = sym("X", ("n", "k")), sym("W", ("n", "k")), sym("C", ("n", "n"))
    f = trace(matmul(Xk.T, L_, Xk))
    nodes = _executed(lower([f, *md.grad(f, ["X"]).values()]), 0)
    assert _products(nodes) == 1 and repeated_products(nodes) == []
    g = trace(matmul(Wk.T, Cn, Wk)) + hpow(norm(matmul(Cn, Wk)), 2)
    exprs = [g, *md.grad(g, ["W"]).values()]
    nodes = _executed(lower(exprs), 1)
    assert repeated_products(nodes) == [] and _products(nodes) == 3   # CW, C'W, C'(CW)
    env = inputs(exprs)
    for got, e in zip(compile(exprs)(**env), exprs, strict=True):
        assert_close(got, reference(e, env))


KRON_LS = md.parse("||kron(A, B)*x - y||^2", shapes={"A": ("p", "p"), "B": ("q", "q"),
                                                    "x": ("p*q",), "y": ("p*q",)})


def _outer_products(nodes: list[Any]) -> list[Any]:
    return [n for n in nodes if n.prim is P.MUL and len(n.shape) == 2 and ONE not in n.shape
            and any(len(a.shape) == 2 and ONE in a.shape for a in n.args)]


def test_kronecker_factor_gradients_build_no_kronecker_or_outer_product() -> None:
    """d/dA and d/dB of ||(A kron B) x - y||^2 are 2 R B X' and 2 R' A X (R, X the residual
    and x seen as p x q matrices), never the (pq x pq) outer product r x' or A kron B."""
    grads = md.grad(KRON_LS, ["A", "B"])
    exprs = [KRON_LS, grads["A"], grads["B"]]
    nodes = walk(lower(exprs))
    assert [n for n in nodes if n.key is Op.KRON] == []
    assert _outer_products(nodes) == []
    assert all(len(n.shape) <= 3 for n in nodes)             # no 4-D view of a pq x pq matrix
    env = inputs(exprs)
    for got, e in zip(compile(exprs)(**env), exprs, strict=True):
        assert_close(got, reference(e, env), tol=1e-9)


_CONTRACTIONS = {"dot", "coldot", "rowdot", "einsum", "addmm", "multi_dot", "solve", Op.SUM,
                 Op.TRACE}


def _is_outer(x: Any) -> bool:
    """x = u .* v', a column times a row (not a vector scaling the rows of a matrix)."""
    return x.prim is P.MUL and len(x.shape) == 2 and ONE not in x.shape and all(
        len(a.shape) == 2 and ONE in a.shape for a in x.args)


def avoidable_products(roots: list[Any]) -> list[tuple[Any, Any]]:
    """Kronecker and outer products that are then multiplied, contracted or summed, where a
    closed form avoids them ((A kron B)V by the vec trick, (u v')M = u(v'M), <M, u v'> =
    u'Mv, tr, sum): (the product, its consumer)."""
    return [(a, n) for n in walk(roots) for a in n.args
            if (a.key is Op.KRON or _is_outer(a)) and (n.prim is P.MATMUL or
                                                      n.key in _CONTRACTIONS)]


@pytest.mark.parametrize("name", list(BENCH_PROBLEMS))
def test_no_avoidable_kronecker_or_outer_product_in_the_benchmark_problems(name: str) -> None:
    assert avoidable_products(lower(BENCH_PROBLEMS[name].exprs())) == []


@pytest.mark.parametrize("seed", range(0, 400, 5))
def test_no_avoidable_kronecker_or_outer_product_in_random_gradients(seed: int) -> None:
    """The soak's random expressions (Kronecker products, outer products from kron(x, y'),
    ones, Diag and block factors), their value and the gradient in every variable."""
    from matdiff.testing import random_expr
    f = random_expr(seed)
    names = sorted({n.attr[0] for n in f.walk() if n.op is Op.SYMBOL})
    exprs = [f, *md.grad(f, names).values()] if names else [f]
    assert avoidable_products(lower(exprs)) == [], md.to_text(f)


def test_the_avoidable_product_check_can_fail() -> None:
    """The check sees a Kronecker product applied densely and an outer product multiplied."""
    g, n = Graph(), Dim.var("n")
    a, u = g.node(P.INPUT, (), "A", (n, n)), g.node(P.INPUT, (), "u", (n, ONE))
    k = g.call(Op.KRON, a, a, shape=(n * n, n * n))
    outer = g.mul(u, g.t(u))
    assert len(avoidable_products([g.matmul(k, g.reshape(outer, (n * n, ONE))),
                                   g.matmul(outer, a)])) == 2


def test_kronecker_gradient_of_a_dense_residual_is_one_contraction() -> None:
    """||kron(A, X) - C||^2: the value needs A kron X (C is dense), the gradient adds no
    Kronecker or outer product to it: one einsum over a 4-D view (of the residual, or of C
    when the gradient reads 2(sum(A.^2) X - ...)) and at most a sum over A."""
    value, grad = lower(BENCH_PROBLEMS["kron"].exprs())
    extra = set(walk([grad])) - set(walk([value]))
    calls = [n.key for n in extra if n.prim is P.CALL]     # the closed form's sum(A.^2) too
    assert calls.count("einsum") == 1 and set(calls) <= {"einsum", Op.SUM}, calls
    assert _outer_products(list(extra)) == [] and not any(n.key is Op.KRON for n in extra)


def test_stacking_is_a_cost_decision() -> None:
    """[c1 X1, c2 X2][Y1; Y2] copies its factors to save passes over the result: worth it
    for thin factors (the seed: decided at call time), never for (L + L')X with square L."""
    L_, Xk = sym("L", ("n", "n")), sym("X", ("n", "k"))
    assert "concatenate" not in codegen(matmul(L_, Xk) + matmul(L_.T, Xk))
    seed = BENCH_PROBLEMS["seed"].exprs()
    def stacks(x: Any) -> bool:                   # [c1 X1, c2 X2] @ [Y1; Y2] somewhere in x
        return any(m.prim is P.CONCAT and m.attr == 1 for m in walk([x]))
    stacking = [n for n in walk(lower(seed)) if n.prim is P.CHOOSE and
                stacks(n.args[0]) != stacks(n.args[1])]
    assert len(stacking) == 2                    # one per gradient, decided at call time


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_a_row_names_the_module_it_needs(backend: str) -> None:
    """A backend function from another module (scipy.linalg, jax.scipy.linalg) is one row;
    the generated code imports that module and nothing else."""
    from matdiff.codegen.emit import Emitter
    from matdiff.codegen.ir import Graph
    _backend(backend)
    g, n = Graph(), Dim.var("n")
    a, b = g.node(P.INPUT, (), "A", (n, n)), g.node(P.INPUT, (), "B", (n, Dim.of(2)))
    x = g.call("cho_solve", g.call("cho_factor", a), b, shape=b.shape)
    em = Emitter(BACKENDS[backend], {"A": "A", "B": "B"}, str)
    (line,), ((code, _),) = em.lines([x], lambda: "t0")
    module = BACKENDS[backend].row("cho_solve").module
    assert em.modules == ({module} if module else set())
    rng = np.random.default_rng(0)
    m = rng.standard_normal((4, 4))
    av, bv = m @ m.T + 4 * np.eye(4), rng.standard_normal((4, 2))
    namespace: dict[str, Any] = {}
    exec("\n".join([BACKENDS[backend].imports, *em.modules]), namespace)
    mod = namespace[BACKENDS[backend].m]
    namespace.update(A=mod.asarray(av) if backend != "torch" else mod.as_tensor(av),
                     B=mod.asarray(bv) if backend != "torch" else mod.as_tensor(bv))
    exec(line, namespace)
    assert code == "t0"
    assert_close(namespace["t0"], np.linalg.solve(av, bv))


# The soak cases (seed: its expression and shapes, as the generator drew them before it drew
# the spectral functions too, which changed what a seed draws)
SOAK_CASES = {
    80: ("sum(kron([B, unvec(K(m, n)*vec(F), n, m)]*[log(A.^2 + 1); ones(m, n)], "
         "x ./ (px .* px) + x'*y*a*y))",
         {"B": ["n", "n"], "F": ["m", "n"], "A": ["n", "n"], "x": ["n"], "px": ["n"],
          "y": ["n"], "a": []}),
    346: ("tan(0.25*tanh((u + u - u*u'*u)'*((u + u)*ones(1, m)*relu(u) - (1 + arctan(u)) "
          "+ u .* (u + u + 2))))", {"u": ["m"]}),
    1858: ("sum(kron(2*C - (sin(C) - B' + kron(y, (x + y)')), cos(G*u) + (b^3 - (b - b))*"
           "px.^1.5)) - (tanh(y) + y + px.^-1 - (y - 1))[1:2, 0:1]",
           {"C": ["n", "n"], "B": ["n", "n"], "y": ["n"], "x": ["n"], "G": ["n", "m"],
            "u": ["m"], "b": [], "px": ["n"]}),
    2343: ("sqrt((arcsin(0.25*tanh(a))*sum([A, G])*x'*ones(n))^2 + 1) + "
           "logdet(inv(V')*inv(V')')",
           {"a": [], "A": ["n", "n"], "G": ["n", "m"], "x": ["n"], "V": ["n", "n"]}),
    3645: ("||[(kron(y, x') + C ./ Q) ./ sigmoid(Diag(y)) + [sqrt(A.^2 + 1), sigmoid(G)]*"
           "[kron(y, x'); (b - 1)*b*D], 1 - G + G ./ PR]||_F",
           {"y": ["n"], "x": ["n"], "C": ["n", "n"], "Q": ["n", "n"], "A": ["n", "n"],
            "G": ["n", "m"], "b": [], "D": ["m", "n"], "PR": ["n", "m"]}),
    4298: ("sqrt(sqrt(||0.5||_1^2 + 1))", {}),
}


@pytest.mark.jax
@pytest.mark.torch
@pytest.mark.parametrize("case", list(SOAK_CASES))
def test_soak_cases_of_the_ir_generator(case: int) -> None:
    """Found by the soak: a product of 1 x 1 result with a sum factor, distributed at call
    time, whose two sides had different shapes (a 1 x 1 array, a scalar); an inverse that
    was dense but its transpose structured (the product recursed between the two); sqrt of
    arithmetic on numbers, a Python float that torch.sqrt refuses."""
    from matdiff.testing import verify
    _jax(), _torch()
    text, shapes = SOAK_CASES[case]
    result = verify(md.parse(text, shapes=shapes), case,
                    stages=("grad", "simplify", "roundtrip", "numpy", "backends"))
    assert result.kind == "ok", result.detail


# ----------------------------------------------------------------------------- buffer reuse


@contextlib.contextmanager
def _no_reuse() -> Iterator[None]:
    """NumPy's ``into`` table emptied: the code generated inside writes into no operand."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(BACKENDS, "numpy", dataclasses.replace(BACKENDS["numpy"], into={}))
        yield


def _agrees_without_reuse(exprs: list[Expr]) -> None:
    """The compiled values equal those compiled without writes into operands and the
    reference evaluator's, and the call leaves its inputs as they were."""
    env = inputs(exprs)
    before = {k: np.copy(v) for k, v in env.items()}
    with _no_reuse():
        plain = compile(exprs)
    for got, want, e in zip(compile(exprs)(**env), plain(**env), exprs, strict=True):
        assert_close(got, want, tol=1e-12)
        assert_close(got, reference(e, env))
    assert all(np.array_equal(env[k], before[k]) for k in env)      # inputs untouched


def test_a_dead_temporary_is_written_into() -> None:
    """||M .* (A - U V')||²: U V' is computed into a buffer that then takes A - U V', the
    mask, and the gradients' second mask, so the call allocates one n x n array, not four."""
    f = md.parse("||M .* (A - U*V')||_F^2", shapes={"M": ("m", "n"), "A": ("m", "n"),
                                                     "U": ("m", "k"), "V": ("n", "k")})
    exprs = [f, *md.grad(f, ["U", "V"]).values()]
    src = codegen(exprs)
    body = src.split('"""')[-1]
    assert body.count("out=") == 3 and "np.subtract(A, t0, out=t0)" in body, src
    _agrees_without_reuse(exprs)


def test_no_write_into_a_buffer_read_later_through_a_view() -> None:
    """X Y is read by X Y + (X Y)' (through a transpose: NumPy would copy the overlap) and
    by a later product; neither may find it overwritten. A returned array is never written
    into, nor an input, and a complex program writes into nothing."""
    P_ = matmul(X, Y)
    f = P_ + T(P_)
    g = hadamard(P_, X) - matmul(P_, Y)
    exprs = [trace(matmul(f, g)), f, g]
    _agrees_without_reuse(exprs)
    assert "out=" not in codegen(exprs).split('"""')[-1]
    assert "out=" not in codegen([P_ + T(P_)])       # t0 + t0.T: the view overlaps t0
    assert "out=" not in codegen([hpow(norm(Zq - matmul(X, Y)), 2)])
    assert "out=" in codegen([hpow(norm(Y - matmul(X, Y)), 2)])


def test_writing_into_dead_operands_never_changes_a_value() -> None:
    """Over the soak's random expressions, the value and every gradient compiled with and
    without writes into dead operands agree, and no input is changed. The writes must
    happen in many of them, or this test proves nothing."""
    fired = tried = 0
    for seed in range(120):
        e = MT.random_expr(seed, max_depth=5)
        names = sorted(E.free_symbols(e))
        where = MT.point(e, seed)
        if not names or where is None:
            continue
        env, sizes = where
        exprs = [e, *md.grad(e, names).values()] if len(names) > 1 else [e, md.grad(e, names[0])]
        tried += 1
        fired += "out=" in codegen([*exprs, MT.SIZES])
        before = {k: np.copy(v) for k, v in env.items()}
        with np.errstate(all="ignore"):
            got = MT.run_compiled(exprs, env, sizes)
            with _no_reuse():
                want = MT.run_compiled(exprs, env, sizes)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=str(e))
        assert all(np.array_equal(env[k], before[k]) for k in env), str(e)
    assert tried > 80 and fired > tried // 5, (tried, fired)


def test_the_standalone_code_takes_integer_and_boolean_arrays() -> None:
    """Where the code writes into temporaries it first takes its arrays as float64: the
    product of two integer matrices would otherwise be an integer buffer that tanh cannot
    be written into (NumPy raises a casting error)."""
    f = md.parse("sum(tanh(M*N) .* A)", shapes={"M": ("n", "n"), "N": ("n", "n"),
                                                "A": ("n", "n")})
    src = codegen(f)
    assert "np.tanh(t0, out=t0)" in src, src
    namespace: dict[str, Any] = {}
    exec(src, namespace)  # noqa: S102
    rng = np.random.default_rng(0)
    M, N = rng.integers(-2, 3, (4, 4)), rng.random((4, 4)) < 0.5
    A = rng.standard_normal((4, 4))
    assert namespace["f_and_grad"](M, N, A) == pytest.approx(np.sum(np.tanh(M @ N) * A))


@pytest.mark.torch
def test_a_function_of_arithmetic_on_numbers_gets_a_tensor_in_torch() -> None:
    """torch.abs(3 ** 2) is a TypeError (soak case 737053, ||||3||_1^2||_1): a function's
    argument that is arithmetic on numbers is made an array of the backend first."""
    torch = _torch()
    f = md.parse("||||3||_1^2||_1 + sum(D) + max(2^2, x) + det(2^3)",
                 shapes={"D": (2, 2), "x": ()})
    D = np.arange(4.0).reshape(2, 2)
    want = 9 + 6 + 4 + 8
    for backend in ("numpy", "torch"):
        args = {"D": D, "x": 1.0} if backend == "numpy" else {
            "D": torch.as_tensor(D), "x": torch.tensor(1.0, dtype=torch.float64)}
        assert float(compile(f, backend=backend)(**args)) == pytest.approx(want)
