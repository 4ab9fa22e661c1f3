"""Battery benchmark: four problems of ``shared/examples/battery.md`` and two where the value
and the gradients share work (a trace objective, Kronecker least squares), same comparison as the
seed (matdiff's generated value + gradients vs the naive NumPy value, jax.value_and_grad and
torch autograd), ratios measured in one run; prints tables, asserts nothing about time.

    python benchmarks/problems.py             # default sizes
    python benchmarks/problems.py --quick     # small sizes, 3 repeats
    python benchmarks/problems.py --only kron
    python benchmarks/problems.py --baseline /work/main/src --runs 5   # vs another checkout
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
from seed import Problem, compare, measure, print_table


def _kron_naive(xp: Any, A: Any, X: Any, C: Any) -> Any:
    e = xp.kron(A, X) - C
    return (e * e).sum()


def _kron_inputs(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    p = 8
    return {"A": rng.standard_normal((p, p)), "X": rng.standard_normal((n, n)),
            "C": rng.standard_normal((p * n, p * n))}


def _gauss_naive(xp: Any, S: Any, x: Any, mu: Any) -> Any:
    d = x - mu
    return 0.5 * xp.log(xp.linalg.det(S)) + 0.5 * (d @ xp.linalg.inv(S) @ d)


def _gauss_inputs(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    g = rng.standard_normal((n, n))
    return {"S": np.eye(n) + 0.1 * g @ g.T / n, "x": rng.standard_normal(n),
            "mu": rng.standard_normal(n)}


def _net_naive(xp: Any, W1: Any, W2: Any, x: Any, y: Any) -> Any:
    e = W2 @ xp.tanh(W1 @ x) - y
    return (e * e).sum()


def _net_inputs(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    h, o = n, max(1, n // 4)
    return {"W1": rng.standard_normal((h, n)) / np.sqrt(n),
            "W2": rng.standard_normal((o, h)) / np.sqrt(h),
            "x": rng.standard_normal(n), "y": rng.standard_normal(o)}


def _mf_naive(xp: Any, A: Any, U: Any, V: Any) -> Any:
    e = A - U @ V.T
    return (e * e).sum()


def _mf_inputs(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    r = max(1, n // 16)
    return {"A": rng.standard_normal((n, n)), "U": rng.standard_normal((n, r)),
            "V": rng.standard_normal((n, r))}


def _trace_naive(xp: Any, X: Any, L: Any, Y: Any) -> Any:
    e = X - Y
    return (X * (L @ X)).sum() + (e * e).sum()


def _trace_inputs(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    k = max(1, n // 16)
    return {"X": rng.standard_normal((n, k)), "L": rng.standard_normal((n, n)),
            "Y": rng.standard_normal((n, k))}


def _kronls_naive(xp: Any, A: Any, B: Any, x: Any, y: Any) -> Any:
    e = xp.kron(A, B) @ x - y
    return (e * e).sum()


def _kronls_inputs(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"A": rng.standard_normal((n, n)) / np.sqrt(n),
            "B": rng.standard_normal((n, n)) / np.sqrt(n),
            "x": rng.standard_normal(n * n), "y": rng.standard_normal(n * n)}


PROBLEMS: dict[str, tuple[Problem, list[int], list[int]]] = {  # problem, sizes, quick sizes
    "kron": (Problem("16. ||kron(A, X) - C||_F^2 wrt X (A 8x8, X n x n)",
                     "||kron(A, X) - C||_F^2",
                     {"A": (8, 8), "X": ("n", "n"), "C": ("8*n", "8*n")}, ["X"],
                     _kron_naive, _kron_inputs), [64, 128], [32]),
    "gauss": (Problem("21. 0.5*log(det(S)) + 0.5*(x-mu)'*inv(S)*(x-mu) wrt S, mu",
                      "0.5*log(det(S)) + 0.5*(x - mu)'*inv(S)*(x - mu)",
                      {"S": ("n", "n"), "x": ("n",), "mu": ("n",)}, ["S", "mu"],
                      _gauss_naive, _gauss_inputs), [256, 1024], [128]),
    "net": (Problem("20. ||W2*tanh(W1*x) - y||_2^2 wrt W1, W2 (h = d = n, o = n/4)",
                    "||W2*tanh(W1*x) - y||_2^2",
                    {"W1": ("h", "d"), "W2": ("o", "h"), "x": ("d",), "y": ("o",)},
                    ["W1", "W2"], _net_naive, _net_inputs), [256, 2048], [128]),
    "mf": (Problem("11. ||A - U*V'||_F^2 wrt U, V (A n x n, rank n/16)",
                   "||A - U*V'||_F^2",
                   {"A": ("m", "n"), "U": ("m", "r"), "V": ("n", "r")}, ["U", "V"],
                   _mf_naive, _mf_inputs), [256, 1024], [128]),
    "trace": (Problem("tr(X'*L*X) + ||X - Y||_F^2 wrt X (L n x n not symmetric, k = n/16)",
                      "tr(X'*L*X) + ||X - Y||_F^2",
                      {"X": ("n", "k"), "L": ("n", "n"), "Y": ("n", "k")}, ["X"],
                      _trace_naive, _trace_inputs), [256, 2048], [128]),
    "kronls": (Problem("||kron(A, B)*x - y||^2 wrt A, B (A, B n x n, x n^2)",
                       "||kron(A, B)*x - y||^2",
                       {"A": ("p", "p"), "B": ("q", "q"), "x": ("p*q",), "y": ("p*q",)},
                       ["A", "B"], _kronls_naive, _kronls_inputs), [32, 60], [16]),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--only", choices=sorted(PROBLEMS), nargs="+")
    ap.add_argument("--baseline", metavar="SRC", help="compare with the matdiff at SRC")
    ap.add_argument("--runs", type=int, default=5, help="runs of the --baseline comparison")
    args = ap.parse_args()
    for key in args.only or PROBLEMS:
        problem, sizes, quick = PROBLEMS[key]
        repeat = 3 if args.quick else args.repeat
        if args.baseline:
            compare(problem, args.baseline, quick if args.quick else sizes, repeat, args.runs)
            continue
        rows = [(s, measure(problem, s, repeat)) for s in (quick if args.quick else sizes)]
        print_table(problem.name, rows)


if __name__ == "__main__":
    main()
