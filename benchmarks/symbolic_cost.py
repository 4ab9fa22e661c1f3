"""Symbolic cost: parse + gradient + simplify + print for a sum of N terms

    ||A_1*X*B_1 - C_1||_F^2 + ... + ||A_N*X*B_N - C_N||_F^2        wrt X

for N = 1, 2, 4, ..., 256, with SymPy's ``MatrixSymbol`` derivative of the same function
beside it where SymPy is installed. Prints a table (seconds, best of ``--repeat``); asserts
nothing about time.

    python benchmarks/symbolic_cost.py              # N up to 256, SymPy up to 64
    python benchmarks/symbolic_cost.py --quick      # N up to 32
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import matdiff as md


def text_for(n_terms: int) -> str:
    return " + ".join(f"||A{i}*X*B{i} - C{i}||_F^2" for i in range(1, n_terms + 1))


def matdiff_steps(n_terms: int) -> dict[str, float]:
    """Seconds for each stage, and the total."""
    t0 = time.perf_counter()
    f = md.parse(text_for(n_terms))
    t1 = time.perf_counter()
    g = md.grad(f, "X", simplified=False)
    t2 = time.perf_counter()
    s = md.simplify(g)  # type: ignore[arg-type]
    t3 = time.perf_counter()
    str(s)
    t4 = time.perf_counter()
    return {"parse": t1 - t0, "grad": t2 - t1, "simplify": t3 - t2, "print": t4 - t3,
            "total": t4 - t0}


def sympy_seconds(n_terms: int) -> tuple[float, str] | None:
    """SymPy's time for the same gradient, and whether its answer is the zero matrix."""
    try:
        import sympy as sp
    except ImportError:
        return None
    t0 = time.perf_counter()
    n = sp.Symbol("n", integer=True, positive=True)
    x = sp.MatrixSymbol("X", n, n)
    f: Any = 0
    for i in range(1, n_terms + 1):
        a, b, c = (sp.MatrixSymbol(f"{s}{i}", n, n) for s in "ABC")
        r = a * x * b - c
        f = f + sp.Trace(r.T * r)
    g = f.diff(x)
    out = str(g)
    return time.perf_counter() - t0, "0" if out.strip() == "0" else "formula"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="N up to 32")
    ap.add_argument("--max-n", type=int, default=256)
    ap.add_argument("--sympy-max", type=int, default=64, help="largest N given to SymPy")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    top = 32 if args.quick else args.max_n
    sizes = [1 << i for i in range(top.bit_length()) if 1 << i <= top]
    print("| N | parse | grad | simplify | print | matdiff total | per term | SymPy | SymPy says |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n_terms in sizes:
        runs = [matdiff_steps(n_terms) for _ in range(args.repeat)]
        r = min(runs, key=lambda x: x["total"])
        sym = sympy_seconds(n_terms) if n_terms <= args.sympy_max else None
        sym_cells = f"{sym[0]:.3f} s | {sym[1]}" if sym else "- | -"
        print(f"| {n_terms} | {r['parse']:.3f} | {r['grad']:.3f} | {r['simplify']:.3f} | "
              f"{r['print']:.3f} | {r['total']:.3f} s | {r['total'] / n_terms * 1e3:.1f} ms | "
              f"{sym_cells} |", flush=True)


if __name__ == "__main__":
    main()
