"""Probe benchmark: problems the code generator was not tuned for, against hand-written NumPy
and ``jax.jit(jax.value_and_grad)``, measured as in ``problems.py`` (one core, CPU time,
float64, best of ``--repeat``, ratios within one run).

Thirty-four problems of regression, classification, factorisation, covariance, quadratic and
bilinear forms, written in session 8 (2026-12-02) before the code generator was changed, to
find where generated code falls behind a careful hand-written closed form. They found three
general gaps, since closed (a product shared only in another orientation, ``(U'MV)' =
V'M'U``; a quadratic form ``x'A'Ax`` not computed as ``(Ax)'(Ax)``; a call-time choice
decided before the same output computed ``Ax``), and the measurements before and after are
in the README. Asserts nothing about time; each contender's value and gradients are checked
against the hand-written ones first.

    python benchmarks/probes.py                        # all probes, one run
    python benchmarks/probes.py --runs 3 --only bilinear quadratic
    python benchmarks/probes.py --baseline /tmp/base/src --runs 5   # vs another checkout
    python benchmarks/probes.py --show-code bilinear
    python benchmarks/probes.py --flops --only bilinear gram   # and problems.py's other options
"""

from __future__ import annotations

import os

if __name__ == "__main__":            # one thread everywhere, before NumPy / JAX load a pool
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = "1"
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen"
                               "=false intra_op_parallelism_threads=1").strip()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.linalg
from problems import Arrays, Bench, main

Gen = np.random.Generator
PROBES: dict[str, Bench] = {}


def probe(key: str, name: str, text: str, shapes: dict[str, Any], wrt: list[str],
          inputs: Callable[[int, Gen], Arrays], hand: Callable[..., tuple[Any, ...]],
          naive: Callable[..., Any], size: int = 400) -> None:
    PROBES[key] = Bench(name, text, shapes, wrt, naive, inputs, hand, size, 16)


def _spd(n: int, rng: Gen) -> np.ndarray:
    a = rng.standard_normal((n, n))
    return a @ a.T / n + np.eye(n)


def _cho_inv(m: np.ndarray) -> tuple[Any, np.ndarray]:
    c = scipy.linalg.cho_factor(m)
    return c, scipy.linalg.cho_solve(c, np.eye(m.shape[0]))


def _sq(r: np.ndarray) -> float:
    return float(np.vdot(r, r))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


# -- regression and classification
probe("poisson", "Poisson regression", "sum(exp(X*w) - y .* (X*w))",
      {"X": ("N", "d"), "y": ("N",), "w": ("d",)}, ["w"],
      lambda n, r: {"X": r.standard_normal((8 * n, n)) / np.sqrt(n),
                    "y": r.poisson(1.0, 8 * n).astype(float), "w": r.standard_normal(n) / 10},
      lambda X, y, w: (lambda z, e: (e.sum() - y @ z, X.T @ (e - y)))(X @ w, np.exp(X @ w)),
      lambda xp, X, y, w: (xp.exp(X @ w) - y * (X @ w)).sum())
probe("tikhonov", "Tikhonov, general D", "||A*x - b||^2 + lam*||D*x||^2",
      {"A": ("m", "n"), "b": ("m",), "D": ("n", "n"), "x": ("n",), "lam": ()}, ["x"],
      lambda n, r: {"A": r.standard_normal((4 * n, n)), "b": r.standard_normal(4 * n),
                    "D": r.standard_normal((n, n)), "x": r.standard_normal(n),
                    "lam": np.array(0.3)},
      lambda A, b, D, x, lam: (lambda e, s: (_sq(e) + lam * _sq(s),
                                             2 * A.T @ e + 2 * lam * D.T @ s))(A @ x - b, D @ x),
      lambda xp, A, b, D, x, lam: ((A @ x - b) ** 2).sum() + lam * ((D @ x) ** 2).sum())
probe("logcosh", "log-cosh regression", "sum(log(cosh(A*x - b)))",
      {"A": ("m", "n"), "b": ("m",), "x": ("n",)}, ["x"],
      lambda n, r: {"A": r.standard_normal((4 * n, n)), "b": r.standard_normal(4 * n),
                    "x": r.standard_normal(n) / 10},
      lambda A, b, x: (lambda e: (np.log(np.cosh(e)).sum(), A.T @ np.tanh(e)))(A @ x - b),
      lambda xp, A, b, x: xp.log(xp.cosh(A @ x - b)).sum())
probe("slasso", "smoothed lasso", "||A*x - b||^2 + lam*sum(sqrt(x.^2 + 0.001))",
      {"A": ("m", "n"), "b": ("m",), "x": ("n",), "lam": ()}, ["x"],
      lambda n, r: {"A": r.standard_normal((4 * n, n)), "b": r.standard_normal(4 * n),
                    "x": r.standard_normal(n), "lam": np.array(0.5)},
      lambda A, b, x, lam: (lambda e, s: (_sq(e) + lam * s.sum(), 2 * A.T @ e + lam * x / s))(
          A @ x - b, np.sqrt(x * x + 1e-3)),
      lambda xp, A, b, x, lam: ((A @ x - b) ** 2).sum() + lam * xp.sqrt(x * x + 0.001).sum())
probe("mlogit", "multi-label logistic, W d x 16", "sum(softplus(-Y .* (X*W)))",
      {"X": ("N", "d"), "W": ("d", "k"), "Y": ("N", "k")}, ["W"],
      lambda n, r: {"X": r.standard_normal((8 * n, n)) / np.sqrt(n),
                    "W": r.standard_normal((n, 16)),
                    "Y": np.sign(r.standard_normal((8 * n, 16)))},
      lambda X, W, Y: (lambda z: (np.logaddexp(0, z).sum(), X.T @ (-Y * _sigmoid(z))))(
          -Y * (X @ W)),
      lambda xp, X, W, Y: xp.logaddexp(0, -Y * (X @ W)).sum())
probe("cauchy", "Cauchy loss", "sum(log(1 + (A*x - b).^2))",
      {"A": ("m", "n"), "b": ("m",), "x": ("n",)}, ["x"],
      lambda n, r: {"A": r.standard_normal((4 * n, n)), "b": r.standard_normal(4 * n),
                    "x": r.standard_normal(n) / 10},
      lambda A, b, x: (lambda e: (np.log1p(e * e).sum(), A.T @ (2 * e / (1 + e * e))))(A @ x - b),
      lambda xp, A, b, x: xp.log(1 + (A @ x - b) ** 2).sum())
probe("sigls", "sigmoid least squares", "||sigmoid(X*w) - y||^2",
      {"X": ("N", "d"), "w": ("d",), "y": ("N",)}, ["w"],
      lambda n, r: {"X": r.standard_normal((4 * n, n)) / np.sqrt(n),
                    "w": r.standard_normal(n) / 10, "y": r.random(4 * n)},
      lambda X, w, y: (lambda s: (_sq(s - y), X.T @ (2 * (s - y) * s * (1 - s))))(
          _sigmoid(X @ w)),
      lambda xp, X, w, y: ((1 / (1 + xp.exp(-(X @ w))) - y) ** 2).sum())
probe("pnorm", "l_1.5 regression", "sum(abs(A*x - b).^1.5)",
      {"A": ("m", "n"), "b": ("m",), "x": ("n",)}, ["x"],
      lambda n, r: {"A": r.standard_normal((8 * n, n)), "b": r.standard_normal(8 * n),
                    "x": r.standard_normal(n) / 10},
      lambda A, b, x: (lambda e: ((np.abs(e) ** 1.5).sum(),
                                  A.T @ (1.5 * np.sqrt(np.abs(e)) * np.sign(e))))(A @ x - b),
      lambda xp, A, b, x: (xp.abs(A @ x - b) ** 1.5).sum())
probe("expfam", "exponential family", "sum(exp(A*x)) - b'*A*x + ||x||^2",
      {"A": ("m", "n"), "b": ("m",), "x": ("n",)}, ["x"],
      lambda n, r: {"A": r.standard_normal((8 * n, n)) / np.sqrt(n),
                    "b": r.standard_normal(8 * n), "x": r.standard_normal(n) / 10},
      lambda A, b, x: (lambda z, e: (e.sum() - b @ z + x @ x, A.T @ (e - b) + 2 * x))(
          A @ x, np.exp(A @ x)),
      lambda xp, A, b, x: xp.exp(A @ x).sum() - b @ (A @ x) + x @ x)
probe("mridge", "multi-output ridge", "||X*W - Y||_F^2 + lam*tr(W'*W)",
      {"X": ("N", "d"), "Y": ("N", "k"), "W": ("d", "k"), "lam": ()}, ["W"],
      lambda n, r: {"X": r.standard_normal((4 * n, n)), "Y": r.standard_normal((4 * n, n // 4)),
                    "W": r.standard_normal((n, n // 4)), "lam": np.array(0.1)},
      lambda X, Y, W, lam: (lambda e: (_sq(e) + lam * _sq(W), 2 * X.T @ e + 2 * lam * W))(
          X @ W - Y),
      lambda xp, X, Y, W, lam: ((X @ W - Y) ** 2).sum() + lam * xp.trace(W.T @ W))
probe("lowrankreg", "low-rank regression", "||Y - X*W*H||_F^2",
      {"X": ("N", "d"), "W": ("d", "r"), "H": ("r", "k"), "Y": ("N", "k")}, ["W", "H"],
      lambda n, r: {"X": r.standard_normal((4 * n, n)), "W": r.standard_normal((n, 8)),
                    "H": r.standard_normal((8, n // 2)), "Y": r.standard_normal((4 * n, n // 2))},
      lambda X, W, H, Y: (lambda xw: (lambda e: (_sq(e), X.T @ (2 * e @ H.T), xw.T @ (2 * e)))(
          xw @ H - Y))(X @ W),
      lambda xp, X, W, H, Y: ((Y - X @ W @ H) ** 2).sum())


# -- networks
def _autoenc(W: Any, X: Any) -> tuple[Any, ...]:
    h = _sigmoid(W @ X)
    e = X - W.T @ h
    return _sq(e), -2 * h @ e.T + ((-2 * (W @ e)) * h * (1 - h)) @ X.T


def _relunet(W1: Any, W2: Any, X: Any, y: Any) -> tuple[Any, ...]:
    z = W1 @ X
    h = np.maximum(z, 0)
    g = 2 * (W2 @ h - y)
    return _sq(g / 2), ((W2.T @ g) * (z > 0)) @ X.T, g @ h.T


def _tanhreg(X: Any, W: Any, v: Any, y: Any) -> tuple[Any, ...]:
    h = np.tanh(X @ W)
    e = h @ v - y
    return _sq(e), X.T @ (2 * np.outer(e, v) * (1 - h * h)), 2 * h.T @ e


probe("autoenc", "tied autoencoder", "||X - W'*sigmoid(W*X)||_F^2",
      {"X": ("d", "b"), "W": ("h", "d")}, ["W"],
      lambda n, r: {"X": r.standard_normal((n, 2 * n)),
                    "W": r.standard_normal((n // 4, n)) / np.sqrt(n)}, _autoenc,
      lambda xp, W, X: ((X - W.T @ (1 / (1 + xp.exp(-(W @ X))))) ** 2).sum())
probe("relunet", "ReLU net, one output", "||W2*relu(W1*X) - y||_F^2",
      {"W1": ("h", "d"), "W2": ("o", "h"), "X": ("d", "b"), "y": ("o", "b")}, ["W1", "W2"],
      lambda n, r: {"W1": r.standard_normal((n // 2, n)) / np.sqrt(n),
                    "W2": r.standard_normal((1, n // 2)), "X": r.standard_normal((n, 4 * n)),
                    "y": r.standard_normal((1, 4 * n))}, _relunet,
      lambda xp, W1, W2, X, y: ((W2 @ xp.maximum(W1 @ X, 0) - y) ** 2).sum())
probe("tanhreg", "tanh features", "||tanh(X*W)*v - y||^2",
      {"X": ("N", "d"), "W": ("d", "h"), "v": ("h",), "y": ("N",)}, ["W", "v"],
      lambda n, r: {"X": r.standard_normal((8 * n, n)) / np.sqrt(n),
                    "W": r.standard_normal((n, n // 4)), "v": r.standard_normal(n // 4),
                    "y": r.standard_normal(8 * n)}, _tanhreg,
      lambda xp, X, W, v, y: ((xp.tanh(X @ W) @ v - y) ** 2).sum(), size=300)


# -- matrix equations, factorisations, covariance
def _nmfkl(V: Any, W: Any, H: Any) -> tuple[Any, ...]:
    wh = W @ H
    q = V / wh
    return (V * np.log(q) - V + wh).sum(), (1 - q) @ H.T, W.T @ (1 - q)


def _blockls(R: Any, Q: Any, X: Any, Y: Any) -> tuple[Any, ...]:
    n = R.shape[0]
    e = np.block([[R, -Q], [Q, R]]) @ X - Y
    g = 2 * e @ X.T
    return _sq(e), g[:n, :n] + g[n:, n:], g[n:, :n] - g[:n, n:]


def _mcreg(M: Any, A: Any, U: Any, V: Any, lam: Any) -> tuple[Any, ...]:
    e = M * (U @ V.T - A)
    return (_sq(e) + lam * (_sq(U) + _sq(V)), 2 * e @ V + 2 * lam * U,
            2 * e.T @ U + 2 * lam * V)


probe("sylv", "Sylvester residual", "||A*X + X*B - C||_F^2",
      {"A": ("n", "n"), "B": ("n", "n"), "C": ("n", "n"), "X": ("n", "n")}, ["X"],
      lambda n, r: {k: r.standard_normal((n, n)) for k in "ABCX"},
      lambda A, B, C, X: (lambda e: (_sq(e), 2 * (A.T @ e + e @ B.T)))(A @ X + X @ B - C),
      lambda xp, A, B, C, X: ((A @ X + X @ B - C) ** 2).sum())
probe("nmfkl", "NMF, KL divergence", "sum(V .* log(V ./ (W*H)) - V + W*H)",
      {"V": ("m", "n"), "W": ("m", "r"), "H": ("r", "n")}, ["W", "H"],
      lambda n, r: {"V": r.random((n, n)) + 0.1, "W": r.random((n, n // 8)) + 0.1,
                    "H": r.random((n // 8, n)) + 0.1}, _nmfkl,
      lambda xp, V, W, H: (V * xp.log(V / (W @ H)) - V + W @ H).sum())
probe("covfit", "covariance fit S ~ LL'", "||S - L*L'||_F^2",
      {"S": ("n", "n", "symmetric"), "L": ("n", "k")}, ["L"],
      lambda n, r: {"S": _spd(n, r), "L": r.standard_normal((n, n // 8))},
      lambda S, L: (lambda e: (_sq(e), -4 * e @ L))(S - L @ L.T),
      lambda xp, S, L: ((S - L @ L.T) ** 2).sum())
probe("blockls", "complex as a real block", "||[R, -Q; Q, R]*X - Y||_F^2",
      {"R": ("n", "n"), "Q": ("n", "n"), "X": ("2*n", "k"), "Y": ("2*n", "k")}, ["R", "Q"],
      lambda n, r: {"R": r.standard_normal((n, n)), "Q": r.standard_normal((n, n)),
                    "X": r.standard_normal((2 * n, n)), "Y": r.standard_normal((2 * n, n))},
      _blockls, lambda xp, R, Q, X, Y: ((xp.concatenate([xp.concatenate([R, -Q], 1),
                                                          xp.concatenate([Q, R], 1)], 0)
                                         @ X - Y) ** 2).sum(), size=300)
probe("mcreg", "matrix completion, regularised",
      "||M .* (U*V' - A)||_F^2 + lam*(||U||_F^2 + ||V||_F^2)",
      {"M": ("m", "n"), "A": ("m", "n"), "U": ("m", "r"), "V": ("n", "r"), "lam": ()},
      ["U", "V"],
      lambda n, r: {"M": (r.random((n, n)) < 0.2).astype(float),
                    "A": r.standard_normal((n, n)), "U": r.standard_normal((n, 8)),
                    "V": r.standard_normal((n, 8)), "lam": np.array(0.1)}, _mcreg,
      lambda xp, M, A, U, V, lam: ((M * (U @ V.T - A)) ** 2).sum() + lam * (
          (U * U).sum() + (V * V).sum()))
probe("pseudohuber", "pseudo-Huber on a matrix", "sum(sqrt(1 + (X - Y).^2))",
      {"X": ("m", "n"), "Y": ("m", "n")}, ["X"],
      lambda n, r: {"X": r.standard_normal((4 * n, n)), "Y": r.standard_normal((4 * n, n))},
      lambda X, Y: (lambda e, s: (s.sum(), e / s))(X - Y, np.sqrt(1 + (X - Y) ** 2)),
      lambda xp, X, Y: xp.sqrt(1 + (X - Y) ** 2).sum(), size=300)
probe("diagfit", "diagonal scaling, D diagonal", "||D*X - Y||_F^2",
      {"D": ("m", "m", "diagonal"), "X": ("m", "n"), "Y": ("m", "n")}, ["X"],
      lambda n, r: {"D": np.diag(r.random(4 * n) + 0.5), "X": r.standard_normal((4 * n, n)),
                    "Y": r.standard_normal((4 * n, n))},
      lambda D, X, Y: (lambda d: (lambda e: (_sq(e), 2 * d * e))(d * X - Y))(
          np.diag(D)[:, None]),
      lambda xp, D, X, Y: ((D @ X - Y) ** 2).sum(), size=300)


# -- determinants and inverses
def _trinv(X: Any, A: Any) -> tuple[Any, ...]:
    mi = np.linalg.inv(X.T @ A @ X)
    return np.trace(mi), -2 * A @ X @ mi @ mi


probe("gpnll", "Gaussian process NLL in K, K spd", "y'*inv(K)*y + logdet(K)",
      {"K": ("n", "n", "spd"), "y": ("n",)}, ["K"],
      lambda n, r: {"K": _spd(n, r), "y": r.standard_normal(n)},
      lambda K, y: (lambda c, ki: (y @ (ki @ y) + 2 * np.log(np.diag(c[0])).sum(),
                                   ki - np.outer(ki @ y, ki @ y)))(*_cho_inv(K)),
      lambda xp, K, y: y @ xp.linalg.solve(K, y) + xp.linalg.slogdet(K)[1])
probe("trinv", "tr inv(X'AX), A spd", "tr(inv(X'*A*X))",
      {"X": ("n", "k"), "A": ("n", "n", "spd")}, ["X"],
      lambda n, r: {"X": r.standard_normal((n, n // 8)), "A": _spd(n, r)}, _trinv,
      lambda xp, X, A: xp.trace(xp.linalg.inv(X.T @ A @ X)))
probe("logdetgram", "logdet of a regularised Gram", "logdet(X'*X + lam*eye(k))",
      {"X": ("m", "k"), "lam": ()}, ["X"],
      lambda n, r: {"X": r.standard_normal((4 * n, n // 4)), "lam": np.array(0.5)},
      lambda X, lam: (lambda c, mi: (2 * np.log(np.diag(c[0])).sum(), 2 * X @ mi))(
          *_cho_inv(X.T @ X + lam * np.eye(X.shape[1]))),
      lambda xp, X, lam: xp.linalg.slogdet(X.T @ X + lam * xp.eye(X.shape[1]))[1])
probe("logdetXtX", "log det X'X", "log(det(X'*X))", {"X": ("m", "k")}, ["X"],
      lambda n, r: {"X": r.standard_normal((4 * n, n // 4))},
      lambda X: (lambda c, mi: (2 * np.log(np.diag(c[0])).sum(), 2 * X @ mi))(
          *_cho_inv(X.T @ X)),
      lambda xp, X: xp.log(xp.linalg.det(X.T @ X)), size=300)
probe("trinvB", "tr(inv(A) B), A general", "tr(inv(A)*B)",
      {"A": ("n", "n"), "B": ("n", "n")}, ["A"],
      lambda n, r: {"A": r.standard_normal((n, n)) + np.sqrt(n) * np.eye(n),
                    "B": r.standard_normal((n, n))},
      lambda A, B: (lambda ai: (np.trace(ai @ B), -(ai @ B @ ai).T))(np.linalg.inv(A)),
      lambda xp, A, B: xp.trace(xp.linalg.solve(A, B)), size=300)
probe("glasso", "graphical-lasso smooth part, X spd", "tr(S*X) - logdet(X) + ||X||_F^2",
      {"X": ("n", "n", "spd"), "S": ("n", "n", "symmetric")}, ["X"],
      lambda n, r: {"X": _spd(n, r), "S": _spd(n, r)},
      lambda X, S: (lambda c, xi: (np.vdot(S, X) - 2 * np.log(np.diag(c[0])).sum() + _sq(X),
                                   S - xi + 2 * X))(*_cho_inv(X)),
      lambda xp, X, S: xp.trace(S @ X) - xp.linalg.slogdet(X)[1] + (X * X).sum())


# -- quadratic and bilinear forms
probe("gram", "quadratic form x'A'Ax", "x'*A'*A*x", {"A": ("m", "n"), "x": ("n",)}, ["x"],
      lambda n, r: {"A": r.standard_normal((4 * n, n)), "x": r.standard_normal(n)},
      lambda A, x: (lambda ax: (ax @ ax, 2 * A.T @ ax))(A @ x),
      lambda xp, A, x: x @ A.T @ A @ x)
probe("quad", "quadratic with a linear term, A symmetric", "0.5*x'*A*x - b'*x",
      {"A": ("n", "n", "symmetric"), "b": ("n",), "x": ("n",)}, ["x"],
      lambda n, r: {"A": _spd(n, r), "b": r.standard_normal(n), "x": r.standard_normal(n)},
      lambda A, b, x: (lambda ax: (0.5 * x @ ax - b @ x, ax - b))(A @ x),
      lambda xp, A, b, x: 0.5 * x @ A @ x - b @ x)
probe("diagquad", "diagonal quadratic", "x'*Diag(d)*x + c'*x",
      {"d": ("n",), "x": ("n",), "c": ("n",)}, ["x"],
      lambda n, r: {"d": r.random(n) + 0.5, "x": r.standard_normal(n),
                    "c": r.standard_normal(n)},
      lambda d, x, c: (x @ (d * x) + c @ x, 2 * d * x + c),
      lambda xp, d, x, c: x @ (d * x) + c @ x)
probe("rayleigh", "Rayleigh quotient, S symmetric", "x'*S*x/(x'*x)",
      {"S": ("n", "n", "symmetric"), "x": ("n",)}, ["x"],
      lambda n, r: {"S": _spd(n, r), "x": r.standard_normal(n)},
      lambda S, x: (lambda sx, c: (x @ sx / c, 2 * sx / c - 2 * (x @ sx) * x / c ** 2))(
          S @ x, x @ x),
      lambda xp, S, x: x @ S @ x / (x @ x), size=300)
probe("trquad", "tr(XAX'B)", "tr(X*A*X'*B)",
      {"X": ("n", "k"), "A": ("k", "k"), "B": ("n", "n")}, ["X"],
      lambda n, r: {"X": r.standard_normal((n, n // 8)), "A": r.standard_normal((n // 8, n // 8)),
                    "B": r.standard_normal((n, n))},
      lambda X, A, B: (np.vdot((X @ A @ X.T).T, B), B.T @ X @ A.T + B @ X @ A),
      lambda xp, X, A, B: xp.trace(X @ A @ X.T @ B))
probe("bilinear", "bilinear ||U'MV||^2", "||U'*M*V||_F^2",
      {"U": ("n", "k"), "V": ("n", "k"), "M": ("n", "n")}, ["U", "V"],
      lambda n, r: {"U": r.standard_normal((n, n // 8)), "V": r.standard_normal((n, n // 8)),
                    "M": r.standard_normal((n, n))},
      lambda U, V, M: (lambda t: (_sq(t), 2 * M @ (V @ t.T), 2 * M.T @ (U @ t)))(U.T @ M @ V),
      lambda xp, U, V, M: ((U.T @ M @ V) ** 2).sum())
probe("kronvec", "Kronecker operator on vec X", "||kron(A, B)*vec(X) - vec(Y)||^2",
      {"A": ("p", "p"), "B": ("q", "q"), "X": ("q", "p"), "Y": ("q", "p")}, ["X"],
      lambda n, r: {k: r.standard_normal((n // 10, n // 10)) for k in "ABXY"},
      lambda A, B, X, Y: (lambda e: (_sq(e), 2 * B.T @ e @ A))(B @ X @ A.T - Y),
      lambda xp, A, B, X, Y: ((xp.kron(A, B) @ X.T.reshape(-1) - Y.T.reshape(-1)) ** 2).sum())


if __name__ == "__main__":
    main(PROBES, runs=1, doc=__doc__)
