"""Orientation benchmark: ``X'Y`` against ``(Y'X)'`` for a tall thin result, per BLAS.

The generated code writes ``X'Y`` (X N x d, Y N x r, d > r) as ``(Y'X)'`` where the backend's
BLAS runs that faster (``Lowering.mm``, the backend's ``swap``). This script measures both
orientations over 44 shapes (N in 100..4000, d in 100..1000, r in 2..128), one thread, CPU
time, best of 7, and prints (Y'X)' / X'Y: its geometric mean, the extremes and every shape.
Asserts nothing about time.

    python benchmarks/orientation.py numpy
    python benchmarks/orientation.py torch

Session 8 (AMD EPYC, OpenBLAS 0.3.31 with OPENBLAS_CORETYPE=Haswell; PyTorch 2.13), two
runs: NumPy 1.10 and 1.14 (extremes 0.88-1.72), so NumPy code writes X'Y as it reads;
PyTorch 0.48 both times (0.20-0.90), so PyTorch code swaps.
"""

from __future__ import annotations

import os

if __name__ == "__main__":            # one thread, before NumPy / PyTorch load a pool
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = "1"
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

import argparse
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from problems import best_cpu


def shapes() -> list[tuple[int, int, int]]:
    return [(n, d, r) for n in (100, 400, 1000, 4000) for d in (100, 400, 1000)
            for r in (2, 8, 32, 128) if r < d and n * d * max(r, 8) <= 2e9]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("library", choices=["numpy", "torch"])
    args = ap.parse_args()
    convert: Callable[[np.ndarray], Any] = lambda a: a  # noqa: E731
    if args.library == "torch":
        import torch
        torch.set_num_threads(1)
        convert = torch.as_tensor
    rng = np.random.default_rng(0)
    ratios = []
    for n, d, r in shapes():
        x, y = convert(rng.standard_normal((n, d))), convert(rng.standard_normal((n, r)))
        ratio = best_cpu(lambda: (y.T @ x).T, 7) / best_cpu(lambda: x.T @ y, 7)  # noqa: B023
        ratios.append((ratio, n, d, r))
    mean = math.exp(sum(math.log(q) for q, *_ in ratios) / len(ratios))
    print(f"{args.library}: (Y'X)' / X'Y, geometric mean {mean:.2f} over {len(ratios)} shapes, "
          f"from {min(ratios)[0]:.2f} to {max(ratios)[0]:.2f}")
    for q, n, d, r in sorted(ratios):
        print(f"  N = {n:5d}, d = {d:5d}, r = {r:4d}: {q:.2f}")


if __name__ == "__main__":
    main()
