"""Problems benchmark: matdiff's generated NumPy value + gradients against a careful hand-written
NumPy closed form and against ``jax.jit(jax.value_and_grad)`` of the function as written.

Single-threaded CPU time (``time.process_time``; BLAS, OpenMP and XLA asked for one thread,
and the process pinned to one core before NumPy and JAX are imported: JAX 0.10's XLA ignores
the thread flags, and the work of its pool then escaped ``process_time``), float64, best of
``--repeat`` calls after a warm-up call, the ratios taken within one run; ``--runs`` repeats
the whole measurement and prints the median and the range of every ratio. Every
contender's value and gradients are checked against the hand-written ones first. Asserts
nothing about time.

The JAX column compares matrix-product kernels as much as code: the report's first line
times one 1000 x 1000 product in NumPy (its BLAS) and in XLA. OpenBLAS picks its kernel by
CPU model, and on a CPU it does not know (AMD EPYC Zen 4 with AVX-512) it falls back to an
AVX2 kernel at half XLA's speed; ``OPENBLAS_CORETYPE=SKYLAKEX`` selects the AVX-512 one.

    python benchmarks/problems.py                     # all problems, 3 runs, best of 5
    python benchmarks/problems.py --quick             # small sizes, 1 run
    python benchmarks/problems.py --only logreg gauss --runs 5
    python benchmarks/problems.py --show-code kronls  # the generated NumPy code
    python benchmarks/problems.py --flops             # matrix-product flops, ours and JAX's
    python benchmarks/problems.py --baseline /work/main/src --runs 5   # vs another checkout

Goal (issue 17): matdiff NumPy <= 1.25x the hand-written code and <= JAX autodiff.
"""

from __future__ import annotations

import os

if __name__ == "__main__":            # one thread everywhere, before NumPy / JAX load a pool
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = "1"
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen"
                               "=false intra_op_parallelism_threads=1").strip()
    if hasattr(os, "sched_setaffinity"):  # and one core: threads started later inherit it
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.linalg
from seed import Problem, compare, jax_module

import matdiff as md

Arrays = dict[str, np.ndarray]


class Bench(Problem):
    """A problem with a hand-written closed form ``hand(**inputs) -> (value, *gradients)``
    (NumPy) and the function as written, ``naive(xp, **inputs)``, for JAX's autodiff."""

    def __init__(self, name: str, text: str, shapes: dict[str, Any], wrt: list[str],
                 naive: Callable[..., Any], make_inputs: Callable[[int, np.random.Generator],
                                                                  Arrays],
                 hand: Callable[..., tuple[Any, ...]], size: int, quick: int):
        super().__init__(name, text, shapes, wrt, naive, make_inputs)
        self.hand, self.size, self.quick = hand, size, quick


def _sq(r: np.ndarray) -> float:
    return float(np.vdot(r, r))


# -- logistic regression: sum log(1 + exp(-y .* Xw)) + lam ||w||^2, y in {-1, 1}
def _logreg_hand(X: Any, w: Any, y: Any, lam: Any) -> tuple[Any, ...]:
    e = np.exp(-y * (X @ w))
    return (float(np.log1p(e).sum()) + lam * (w @ w),
            2 * lam * w - X.T @ (y * (e / (1 + e))))


def _logreg_inputs(n: int, rng: np.random.Generator) -> Arrays:
    return {"X": rng.standard_normal((20 * n, n)) / np.sqrt(n), "w": rng.standard_normal(n),
            "y": np.sign(rng.standard_normal(20 * n)), "lam": np.array(0.1)}


# -- masked matrix factorisation: ||M .* (A - U V')||_F^2, M a 0/1 mask
def _mmf_hand(M: Any, A: Any, U: Any, V: Any) -> tuple[Any, ...]:
    e = M * (U @ V.T - A)
    g = 2 * (M * e)
    return _sq(e), g @ V, g.T @ U


def _mmf_inputs(n: int, rng: np.random.Generator) -> Arrays:
    r = max(1, n // 32)
    return {"M": (rng.random((n, n)) < 0.3).astype(float), "A": rng.standard_normal((n, n)),
            "U": rng.standard_normal((n, r)), "V": rng.standard_normal((n, r))}


# -- Gaussian NLL with an spd covariance: 0.5 logdet S + 0.5 (x - mu)' S^-1 (x - mu)
def _gauss_hand(S: Any, x: Any, mu: Any) -> tuple[Any, ...]:
    c = scipy.linalg.cho_factor(S)
    d = x - mu
    a = scipy.linalg.cho_solve(c, d)
    s_inv = scipy.linalg.cho_solve(c, np.eye(len(d)))
    return (float(np.log(np.diag(c[0])).sum() + 0.5 * (d @ a)),
            0.5 * (s_inv - np.outer(a, a)), -a)


def _gauss_naive(xp: Any, S: Any, x: Any, mu: Any) -> Any:
    d = x - mu
    return 0.5 * xp.linalg.slogdet(S)[1] + 0.5 * (d @ xp.linalg.solve(S, d))


def _spd(n: int, rng: np.random.Generator) -> np.ndarray:
    g = rng.standard_normal((n, n))
    return np.eye(n) + g @ g.T / n


def _gauss_inputs(n: int, rng: np.random.Generator) -> Arrays:
    return {"S": _spd(n, rng), "x": rng.standard_normal(n), "mu": rng.standard_normal(n)}


# -- a PCA-like trace: tr(W' C W), C symmetric
def _pca_hand(W: Any, C: Any) -> tuple[Any, ...]:
    cw = C @ W
    return float(np.vdot(W, cw)), 2 * cw


def _pca_inputs(n: int, rng: np.random.Generator) -> Arrays:
    g = rng.standard_normal((n, n))
    return {"W": rng.standard_normal((n, max(1, n // 32))), "C": g + g.T}


# -- a two-layer network on a batch: ||W2 tanh(W1 X) - Y||_F^2
def _net_hand(W1: Any, W2: Any, X: Any, Y: Any) -> tuple[Any, ...]:
    h = np.tanh(W1 @ X)
    e = W2 @ h - Y
    e2 = 2 * e
    return _sq(e), ((1 - h * h) * (W2.T @ e2)) @ X.T, e2 @ h.T


def _net_naive(xp: Any, W1: Any, W2: Any, X: Any, Y: Any) -> Any:
    e = W2 @ xp.tanh(W1 @ X) - Y
    return (e * e).sum()


def _net_inputs(n: int, rng: np.random.Generator) -> Arrays:
    o, b = max(1, n // 16), 4 * n
    return {"W1": rng.standard_normal((n, n)) / np.sqrt(n),
            "W2": rng.standard_normal((o, n)) / np.sqrt(n),
            "X": rng.standard_normal((n, b)), "Y": rng.standard_normal((o, b))}


# -- Kronecker least squares: ||(A kron B) x - y||^2, gradients in A and B (vec trick)
def _kronls_hand(A: Any, B: Any, x: Any, y: Any) -> tuple[Any, ...]:
    xm = x.reshape(A.shape[1], B.shape[1])                  # (A kron B) x = vec_r(A Xm B')
    r = (A @ xm @ B.T) - y.reshape(A.shape[0], B.shape[0])
    return _sq(r), 2 * (r @ B) @ xm.T, 2 * r.T @ (A @ xm)


def _kronls_naive(xp: Any, A: Any, B: Any, x: Any, y: Any) -> Any:
    e = xp.kron(A, B) @ x - y
    return (e * e).sum()


def _kronls_inputs(n: int, rng: np.random.Generator) -> Arrays:
    return {"A": rng.standard_normal((n, n)) / np.sqrt(n),
            "B": rng.standard_normal((n, n)) / np.sqrt(n),
            "x": rng.standard_normal(n * n), "y": rng.standard_normal(n * n)}


# -- graph smoothness with a data term: tr(X' L X) + ||X - Y||_F^2, L symmetric
def _graph_hand(X: Any, L: Any, Y: Any) -> tuple[Any, ...]:
    lx, e = L @ X, X - Y
    return float(np.vdot(X, lx)) + _sq(e), 2 * (lx + e)


def _graph_inputs(n: int, rng: np.random.Generator) -> Arrays:
    a = (rng.random((n, n)) < 0.05).astype(float)
    a = np.triu(a, 1) + np.triu(a, 1).T
    k = max(1, n // 32)
    return {"X": rng.standard_normal((n, k)), "L": np.diag(a.sum(1)) - a,
            "Y": rng.standard_normal((n, k))}


# -- ridge regression: ||A x - b||^2 + lam ||x||^2
def _ridge_hand(A: Any, x: Any, b: Any, lam: Any) -> tuple[Any, ...]:
    r = A @ x - b
    return _sq(r) + lam * (x @ x), 2 * (A.T @ r + lam * x)


def _ridge_inputs(n: int, rng: np.random.Generator) -> Arrays:
    return {"A": rng.standard_normal((4 * n, n)), "x": rng.standard_normal(n),
            "b": rng.standard_normal(4 * n), "lam": np.array(0.5)}


# -- weighted least squares, D diagonal (declared): (y - X w)' D (y - X w) + lam ||w||^2
def _wls_hand(D: Any, X: Any, w: Any, y: Any, lam: Any) -> tuple[Any, ...]:
    r = X @ w - y
    dr = np.diagonal(D) * r
    return float(r @ dr) + lam * (w @ w), 2 * (X.T @ dr + lam * w)


def _wls_inputs(n: int, rng: np.random.Generator) -> Arrays:
    return {"D": np.diag(rng.uniform(0.5, 2.0, 4 * n)), "X": rng.standard_normal((4 * n, n)),
            "w": rng.standard_normal(n), "y": rng.standard_normal(4 * n), "lam": np.array(0.5)}


# -- a Gaussian precision (graphical model) objective: tr(C X) - logdet X, X spd
def _prec_hand(C: Any, X: Any) -> tuple[Any, ...]:
    c = scipy.linalg.cho_factor(X)
    x_inv = scipy.linalg.cho_solve(c, np.eye(len(X)))
    return float(np.vdot(C, X)) - 2 * float(np.log(np.diag(c[0])).sum()), C - x_inv


def _prec_naive(xp: Any, C: Any, X: Any) -> Any:
    return xp.trace(C @ X) - xp.linalg.slogdet(X)[1]


def _prec_inputs(n: int, rng: np.random.Generator) -> Arrays:
    return {"C": _spd(n, rng), "X": _spd(n, rng)}


# -- a two-sided least squares: ||A X B - C||_F^2
def _sandwich_hand(A: Any, X: Any, B: Any, C: Any) -> tuple[Any, ...]:
    r = A @ (X @ B) - C
    return _sq(r), A.T @ (2 * r) @ B.T


def _sandwich_inputs(n: int, rng: np.random.Generator) -> Arrays:
    k = max(1, n // 8)
    return {"A": rng.standard_normal((n, k)), "X": rng.standard_normal((k, k)),
            "B": rng.standard_normal((k, n)), "C": rng.standard_normal((n, n))}


# -- a Kronecker-structured fit with a dense target: ||kron(A, X) - C||_F^2, A 8 x 8
def _kron_hand(A: Any, X: Any, C: Any) -> tuple[Any, ...]:
    r = np.kron(A, X) - C
    r4 = r.reshape(A.shape[0], X.shape[0], A.shape[1], X.shape[1])
    return _sq(r), 2 * np.einsum("aibj,ab->ij", r4, A)


def _kron_inputs(n: int, rng: np.random.Generator) -> Arrays:
    return {"A": rng.standard_normal((8, 8)), "X": rng.standard_normal((n, n)),
            "C": rng.standard_normal((8 * n, 8 * n))}


# -- low-rank factorisation: ||A - U V'||_F^2
def _mf_hand(A: Any, U: Any, V: Any) -> tuple[Any, ...]:
    e2 = 2 * (U @ V.T - A)
    return 0.25 * _sq(e2), e2 @ V, e2.T @ U


def _mf_inputs(n: int, rng: np.random.Generator) -> Arrays:
    r = max(1, n // 16)
    return {"A": rng.standard_normal((n, n)), "U": rng.standard_normal((n, r)),
            "V": rng.standard_normal((n, r))}


# -- a trace objective with a general (not symmetric) L: tr(X' L X) + ||X - Y||_F^2
def _trace_hand(X: Any, L: Any, Y: Any) -> tuple[Any, ...]:
    lx, e = L @ X, X - Y
    return float(np.vdot(X, lx)) + _sq(e), lx + L.T @ X + 2 * e


def _trace_inputs(n: int, rng: np.random.Generator) -> Arrays:
    k = max(1, n // 16)
    return {"X": rng.standard_normal((n, k)), "L": rng.standard_normal((n, n)),
            "Y": rng.standard_normal((n, k))}


def _as_written(text: str) -> Callable[..., Any]:
    """The naive function for JAX of the simple problems, by name of the expression."""
    return {
        "logreg": lambda xp, X, w, y, lam: xp.log(1 + xp.exp(-y * (X @ w))).sum() + lam * w @ w,
        "mmf": lambda xp, M, A, U, V: ((M * (A - U @ V.T)) ** 2).sum(),
        "pca": lambda xp, W, C: xp.trace(W.T @ C @ W),
        "graph": lambda xp, X, L, Y: xp.trace(X.T @ L @ X) + ((X - Y) ** 2).sum(),
        "ridge": lambda xp, A, x, b, lam: ((A @ x - b) ** 2).sum() + lam * x @ x,
        "wls": lambda xp, D, X, w, y, lam: (y - X @ w) @ D @ (y - X @ w) + lam * w @ w,
        "sandwich": lambda xp, A, X, B, C: ((A @ X @ B - C) ** 2).sum(),
        "kron": lambda xp, A, X, C: ((xp.kron(A, X) - C) ** 2).sum(),
        "mf": lambda xp, A, U, V: ((A - U @ V.T) ** 2).sum(),
        "trace": lambda xp, X, L, Y: (X * (L @ X)).sum() + ((X - Y) ** 2).sum(),
    }[text]


BENCHES: dict[str, Bench] = {
    "logreg": Bench("logistic regression, X 20n x n", "sum(log(1 + exp(-y .* (X*w)))) + "
                    "lam*||w||^2", {"X": ("N", "d"), "w": ("d",), "y": ("N",), "lam": ()},
                    ["w"], _as_written("logreg"), _logreg_inputs, _logreg_hand, 500, 64),
    "mmf": Bench("masked factorisation, rank n/32", "||M .* (A - U*V')||_F^2",
                 {"M": ("m", "n"), "A": ("m", "n"), "U": ("m", "r"), "V": ("n", "r")},
                 ["U", "V"], _as_written("mmf"), _mmf_inputs, _mmf_hand, 1000, 128),
    "gauss": Bench("Gaussian NLL, S spd", "0.5*logdet(S) + 0.5*(x - mu)'*inv(S)*(x - mu)",
                   {"S": ("n", "n", "spd"), "x": ("n",), "mu": ("n",)}, ["S", "mu"],
                   _gauss_naive, _gauss_inputs, _gauss_hand, 500, 64),
    "pca": Bench("PCA trace, C symmetric, W n x n/32", "tr(W'*C*W)",
                 {"W": ("n", "k"), "C": ("n", "n", "symmetric")}, ["W"],
                 _as_written("pca"), _pca_inputs, _pca_hand, 1500, 128),
    "net": Bench("two-layer net, batch 4n", "||W2*tanh(W1*X) - Y||_F^2",
                 {"W1": ("h", "d"), "W2": ("o", "h"), "X": ("d", "b"), "Y": ("o", "b")},
                 ["W1", "W2"], _net_naive, _net_inputs, _net_hand, 256, 64),
    "kronls": Bench("Kronecker least squares, A, B n x n", "||kron(A, B)*x - y||^2",
                    {"A": ("p", "p"), "B": ("q", "q"), "x": ("p*q",), "y": ("p*q",)},
                    ["A", "B"], _kronls_naive, _kronls_inputs, _kronls_hand, 60, 16),
    "graph": Bench("graph smoothness, L symmetric", "tr(X'*L*X) + ||X - Y||_F^2",
                   {"X": ("n", "k"), "L": ("n", "n", "symmetric"), "Y": ("n", "k")}, ["X"],
                   _as_written("graph"), _graph_inputs, _graph_hand, 1500, 128),
    "ridge": Bench("ridge regression, A 4n x n", "||A*x - b||^2 + lam*||x||^2",
                   {"A": ("m", "n"), "x": ("n",), "b": ("m",), "lam": ()}, ["x"],
                   _as_written("ridge"), _ridge_inputs, _ridge_hand, 1000, 128),
    "wls": Bench("weighted least squares, D diagonal, X 4n x n",
                 "(y - X*w)'*D*(y - X*w) + lam*w'*w",
                 {"D": ("m", "m", "diagonal"), "X": ("m", "n"), "w": ("n",), "y": ("m",),
                  "lam": ()}, ["w"], _as_written("wls"), _wls_inputs, _wls_hand, 500, 64),
    "prec": Bench("precision objective, X spd", "tr(C*X) - logdet(X)",
                  {"C": ("n", "n", "symmetric"), "X": ("n", "n", "spd")}, ["X"],
                  _prec_naive, _prec_inputs, _prec_hand, 500, 64),
    "sandwich": Bench("two-sided least squares, X n/8 x n/8", "||A*X*B - C||_F^2",
                      {"A": ("m", "k"), "X": ("k", "p"), "B": ("p", "n"), "C": ("m", "n")},
                      ["X"], _as_written("sandwich"), _sandwich_inputs, _sandwich_hand,
                      1000, 128),
    "kron": Bench("Kronecker fit, kron(A, X) - C, A 8 x 8", "||kron(A, X) - C||_F^2",
                  {"A": (8, 8), "X": ("n", "n"), "C": ("8*n", "8*n")}, ["X"],
                  _as_written("kron"), _kron_inputs, _kron_hand, 128, 32),
    "mf": Bench("factorisation, rank n/16", "||A - U*V'||_F^2",
                {"A": ("m", "n"), "U": ("m", "r"), "V": ("n", "r")}, ["U", "V"],
                _as_written("mf"), _mf_inputs, _mf_hand, 1000, 128),
    "trace": Bench("trace objective, L not symmetric", "tr(X'*L*X) + ||X - Y||_F^2",
                   {"X": ("n", "k"), "L": ("n", "n"), "Y": ("n", "k")}, ["X"],
                   _as_written("trace"), _trace_inputs, _trace_hand, 1500, 128),
}
# the interface of the tests (tests/test_codegen.py): problem, sizes, quick sizes
PROBLEMS: dict[str, tuple[Problem, list[int], list[int]]] = {
    k: (b, [b.size], [b.quick]) for k, b in BENCHES.items()}


def best_cpu(fn: Callable[[], Any], repeat: int) -> float:
    """The least CPU time (all threads of the process) of ``repeat`` calls after a warm-up."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


def _agree(got: Any, want: tuple[Any, ...], what: str) -> None:
    for g, w in zip(got, want, strict=True):
        g, w = np.asarray(g, dtype=float), np.asarray(w, dtype=float)
        if not np.allclose(g, w, rtol=1e-7, atol=1e-9 * (1 + np.max(np.abs(w)))):
            raise AssertionError(f"{what} disagrees with the hand-written closed form")


def measure(b: Bench, size: int, repeat: int) -> dict[str, float]:
    """CPU seconds of the hand-written code, matdiff's NumPy code and JAX's autodiff."""
    env = b.make_inputs(size, np.random.default_rng(0))
    hand = b.hand(**env)
    fn = md.compile(b.exprs(), backend="numpy")
    _agree(fn(**env), hand, "matdiff numpy")
    times = {"hand": best_cpu(lambda: b.hand(**env), repeat),
             "matdiff": best_cpu(lambda: fn(**env), repeat)}
    jax = jax_module()
    if jax is not None:
        jnp, names = jax.numpy, list(env)
        args = [jnp.asarray(env[k]) for k in names]
        idx = tuple(names.index(w) for w in b.wrt)

        def as_written(*xs: Any) -> Any:
            return b.naive(jnp, **dict(zip(names, xs, strict=True)))
        vg = jax.jit(jax.value_and_grad(as_written, argnums=idx))
        value, grads = vg(*args)
        _agree((value, *grads), hand, "jax autodiff")
        times["jax AD"] = best_cpu(lambda: jax.block_until_ready(vg(*args)), repeat)
    return times


class _Counting(np.ndarray):
    """An array that adds the flops of every matrix product NumPy runs on it to ``flops``."""

    flops = 0

    def __array_ufunc__(self, ufunc: Any, method: str, *args: Any, **kwargs: Any) -> Any:
        plain = [a.view(np.ndarray) if isinstance(a, _Counting) else a for a in args]
        if "out" in kwargs:
            kwargs["out"] = tuple(o.view(np.ndarray) for o in kwargs["out"])
        if ufunc is np.matmul:
            a, b = plain[0], plain[1]
            _Counting.flops += 2 * a.shape[-2] * a.shape[-1] * (b.shape[-1] if b.ndim > 1 else 1)
        out = getattr(ufunc, method)(*plain, **kwargs)
        return out.view(_Counting) if isinstance(out, np.ndarray) else out


def _jax_product_flops(b: Bench, env: Arrays) -> int:
    """The flops of the dot_generals in JAX's jaxpr of ``value_and_grad``."""
    jax = jax_module()
    names = list(env)
    jaxpr = jax.make_jaxpr(jax.value_and_grad(
        lambda *xs: b.naive(jax.numpy, **dict(zip(names, xs, strict=True))),
        argnums=tuple(names.index(w) for w in b.wrt)))(*(env[k] for k in names))
    flops = 0
    for eq in jaxpr.jaxpr.eqns:
        if eq.primitive.name == "dot_general":
            (contract, _), _ = eq.params["dimension_numbers"]
            shape = eq.invars[0].aval.shape
            flops += 2 * int(np.prod(eq.outvars[0].aval.shape)) * int(
                np.prod([shape[i] for i in contract]))
    return flops


def product_flops(keys: list[str], benches: dict[str, Bench] | None = None) -> None:
    """Matrix-product flops of matdiff's NumPy code (its ``@``, counted as it runs; einsums,
    solves and factorizations are not counted) and of JAX's autodiff (the dot_generals of its
    jaxpr): where they are equal, a gap in time is the kernels' and the fusion's."""
    print("| problem | matdiff NumPy (`@`) | JAX value_and_grad (dot_general) |\n|---|---|---|")
    for k in keys:
        b = (BENCHES if benches is None else benches)[k]
        env = b.make_inputs(b.size, np.random.default_rng(0))
        namespace: dict[str, Any] = {}
        exec(md.codegen(b.exprs()), namespace)  # noqa: S102 -- keeps the counting arrays
        _Counting.flops = 0
        namespace["f_and_grad"](**{n: np.asarray(v, dtype=float).view(_Counting)
                                   if np.ndim(v) else v for n, v in env.items()})
        jax = jax_module()
        theirs = f"{_jax_product_flops(b, env) / 1e6:.1f} MFLOP" if jax is not None else "-"
        print(f"| {k} | {_Counting.flops / 1e6:.1f} MFLOP | {theirs} |")


def gemm_line(n: int = 1000, repeat: int = 5) -> str:
    """One n x n product in NumPy and in XLA (CPU seconds, best of ``repeat``): how much of
    the JAX column is the matrix-product kernel."""
    a = np.random.default_rng(0).standard_normal((n, n))
    numpy_time = best_cpu(lambda: a @ a, repeat)
    blas = np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {})
    line = (f"GEMM {n}x{n}: NumPy ({blas.get('name', '?')} {blas.get('version', '')}, "
            f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'auto')}) "
            f"{numpy_time * 1e3:.1f} ms")
    jax = jax_module()
    if jax is None:
        return line
    x = jax.numpy.asarray(a)
    mm = jax.jit(lambda y: y @ y)
    jax_time = best_cpu(lambda: jax.block_until_ready(mm(x)), repeat)
    return f"{line}, XLA {jax_time * 1e3:.1f} ms: NumPy / XLA = {numpy_time / jax_time:.2f}"


def report(results: dict[str, list[dict[str, float]]],
           benches: dict[str, Bench] | None = None) -> None:
    """One row per problem: hand-written time, and the ratios (median, range over runs)."""
    benches = BENCHES if benches is None else benches
    def cell(rs: list[float]) -> str:
        med = statistics.median(rs)
        return f"{med:.2f}" if len(rs) == 1 else f"{med:.2f} ({min(rs):.2f}-{max(rs):.2f})"
    print("\n| problem | hand-written | matdiff / hand | matdiff / JAX AD | goal |")
    print("|---|---|---|---|---|")
    for key, runs in results.items():
        hand = statistics.median(r["hand"] for r in runs)
        ours = [r["matdiff"] / r["hand"] for r in runs]
        vs_jax = [r["matdiff"] / r["jax AD"] for r in runs if "jax AD" in r]
        ok = max(ours) <= 1.25 and (not vs_jax or max(vs_jax) <= 1.0)
        print(f"| {key}: {benches[key].name} | {hand * 1e3:.2f} ms | {cell(ours)} | "
              f"{cell(vs_jax) if vs_jax else '-'} | {'met' if ok else 'MISSED'} |")


def main(benches: dict[str, Bench] | None = None, runs: int = 3, doc: str | None = None
         ) -> None:
    """The command line over ``benches`` (this file's problems by default; ``probes.py``
    passes its own), ``runs`` measurements per problem by default."""
    benches = BENCHES if benches is None else benches
    ap = argparse.ArgumentParser(description=(doc or __doc__ or "").split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, one run")
    ap.add_argument("--repeat", type=int, default=5, help="calls per time (the best counts)")
    ap.add_argument("--runs", type=int, default=runs, help="measurements per problem")
    ap.add_argument("--only", choices=sorted(benches), nargs="+")
    ap.add_argument("--show-code", choices=sorted(benches))
    ap.add_argument("--flops", action="store_true",
                    help="matrix-product flops of matdiff's code and of JAX's autodiff")
    ap.add_argument("--baseline", metavar="SRC", help="compare with the matdiff at SRC")
    args = ap.parse_args()
    if args.show_code:
        print(md.codegen(benches[args.show_code].exprs()))
        return
    keys = args.only or list(benches)
    if args.flops:
        product_flops(keys, benches)
        return
    if args.baseline:
        for k in keys:
            compare(benches[k], args.baseline, [benches[k].size], args.repeat, args.runs)
        return
    print(gemm_line())
    results = {k: [measure(benches[k], benches[k].quick if args.quick else benches[k].size,
                           args.repeat) for _ in range(1 if args.quick else args.runs)]
               for k in keys}
    report(results, benches)


if __name__ == "__main__":
    main()
