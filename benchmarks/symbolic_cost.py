"""Symbolic cost: parse + gradient + simplify + print, and how each grows.

1. A sum of N terms ``||A_1*X*B_1 - C_1||_F^2 + ... + ||A_N*X*B_N - C_N||_F^2`` wrt X, for
   N = 1, 2, 4, ..., 256, with SymPy's ``MatrixSymbol`` derivative beside it where SymPy is
   installed.
2. The gradient of an N-factor product (N = 25, 50, 100, 200), parse to printed text:
   ``tr(X*X*...*X)``, ``tr(A1*X*A2*X*...)`` (N factors in all) and ``a'*X*X*...*X*b``.
3. Parsing a sum of N terms (N = 250 ... 2000) with declared shapes:
   ``x1'*A*x1 + x2'*A*x2 + ...`` and ``a1*x + a2*x + ...``.
4. A deep composition (depth 25 ... 200: the number of functions applied),
   ``sin(sin(...x))``, ``exp(tr(exp(tr(...X))))``:
   parse, gradient, and the function and gradient printed over named parts
   (``names.with_names``); the printed size in characters, with and without names.

Each family prints its growth exponent: the slope of log(seconds) (or log(characters))
against log(N), fitted over the sizes. Seconds are CPU seconds of this process, best of
``--repeat``; nothing is asserted about time.

    python benchmarks/symbolic_cost.py              # everything
    python benchmarks/symbolic_cost.py --quick      # small sizes only
    python benchmarks/symbolic_cost.py --only product parse deep
"""

from __future__ import annotations

import argparse
import functools
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import matdiff as md
from matdiff.names import with_names


def text_for(n_terms: int) -> str:
    return " + ".join(f"||A{i}*X*B{i} - C{i}||_F^2" for i in range(1, n_terms + 1))


def matdiff_steps(n_terms: int) -> dict[str, float]:
    """Seconds for each stage, and the total."""
    t0 = time.process_time()
    f = md.parse(text_for(n_terms))
    t1 = time.process_time()
    g = md.grad(f, "X", simplified=False)
    t2 = time.process_time()
    s = md.simplify(g)  # type: ignore[arg-type]
    t3 = time.process_time()
    str(s)
    t4 = time.process_time()
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


def slope(sizes: Sequence[int], values: Sequence[float]) -> float:
    """The least-squares slope of log(value) against log(size): the growth exponent."""
    xs = [math.log(n) for n in sizes]
    ys = [math.log(max(v, 1e-9)) for v in values]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / \
        sum((x - mx) ** 2 for x in xs)


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """The least CPU seconds of ``repeat`` calls, and the last result."""
    times, out = [], None
    for _ in range(repeat):
        t0 = time.process_time()
        out = fn()
        times.append(time.process_time() - t0)
    return min(times), out


PRODUCTS: dict[str, Callable[[int], str]] = {
    "tr(X*X*...*X)": lambda n: "tr(" + "*".join(["X"] * n) + ")",
    "tr(A1*X*A2*X*...)": lambda n: "tr(" + "*".join(f"A{i}*X" for i in range(1, n // 2 + 1))
    + ")",
    "a'*X*...*X*b": lambda n: "a'*" + "*".join(["X"] * n) + "*b",
}


def printed_gradient(text: str) -> str:
    return str(md.grad(text, "X"))


def product_table(sizes: Sequence[int], repeat: int) -> None:
    """The gradient of an N-factor product, from the text to the printed gradient."""
    print("\n| product | " + " | ".join(f"N = {n}" for n in sizes) + " | exponent |")
    print("|---|" + "---|" * (len(sizes) + 1))
    for label, text in PRODUCTS.items():
        secs = [best(functools.partial(printed_gradient, text(n)), repeat)[0] for n in sizes]
        print(f"| `{label}` | " + " | ".join(f"{t:.3f} s" for t in secs) +
              f" | {slope(sizes, secs):.2f} |", flush=True)


def sums(n: int) -> dict[str, tuple[str, dict[str, tuple[str, ...]]]]:
    quad: dict[str, tuple[str, ...]] = {f"x{i}": ("n",) for i in range(1, n + 1)}
    lin: dict[str, tuple[str, ...]] = {f"a{i}": () for i in range(1, n + 1)}
    return {"x1'*A*x1 + ...": (" + ".join(f"x{i}'*A*x{i}" for i in range(1, n + 1)),
                               {**quad, "A": ("n", "n")}),
            "a1*x + ...": (" + ".join(f"a{i}*x" for i in range(1, n + 1)),
                           {**lin, "x": ("n",)})}


def parse_table(sizes: Sequence[int], repeat: int) -> None:
    """Parsing a long sum with declared shapes: seconds, and milliseconds per term."""
    print("\n| parse | " + " | ".join(f"{n} terms" for n in sizes) + " | exponent |")
    print("|---|" + "---|" * (len(sizes) + 1))
    for label in sums(1):
        secs = []
        for n in sizes:
            text, shapes = sums(n)[label]
            secs.append(best(lambda t=text, s=shapes: md.parse(t, s), repeat)[0])
        print(f"| `{label}` | " + " | ".join(
            f"{t:.3f} s ({t / n * 1e3:.2f} ms/term)" for t, n in zip(secs, sizes, strict=True))
            + f" | {slope(sizes, secs):.2f} |", flush=True)


DEEP: dict[str, tuple[Callable[[int], str], dict[str, tuple[str, ...]], str]] = {
    "sin(sin(...x))": (lambda d: "sin(" * d + "x" + ")" * d, {"x": ()}, "x"),
    "exp(tr(exp(tr(...X))))": (lambda d: "exp(tr(" * (d // 2) + "X" + "))" * (d // 2),
                               {"X": ("n", "n")}, "X"),   # depth: functions, exp and tr
}


def named_size(f: md.Expr, g: md.Expr) -> int:
    """Characters of f and its gradient printed over named parts, the parts included."""
    shown, where = with_names([f, g])
    return sum(map(len, shown)) + sum(len(n) + len(d) for n, d in where)


def deep_sizes(text: str, shapes: dict[str, tuple[str, ...]], wrt: str) -> tuple[int, int]:
    """Parse, differentiate, print over names: (named characters, plain characters)."""
    f = md.parse(text, shapes)
    g = md.grad(f, wrt)
    return named_size(f, g), len(md.to_unicode(g))  # type: ignore[arg-type]


def deep_table(sizes: Sequence[int], repeat: int) -> None:
    """A deep composition: parse + gradient + named print, and the printed sizes."""
    print("\n| composition | depth | parse + grad + named print | named chars | plain chars |")
    print("|---|---|---|---|---|")
    for label, (text, shapes, wrt) in DEEP.items():
        secs, named, plain = [], [], []
        for d in sizes:
            t, (k, p) = best(functools.partial(deep_sizes, text(d), shapes, wrt), repeat)
            secs.append(t)
            named.append(k)
            plain.append(p)
            print(f"| `{label}` | {d} | {t:.3f} s | {k} | {p} |", flush=True)
        print(f"| `{label}` | exponent | {slope(sizes, secs):.2f} | "
              f"{slope(sizes, named):.2f} | {slope(sizes, plain):.2f} |", flush=True)


def sum_table(top: int, sympy_max: int, repeat: int) -> None:
    sizes = [1 << i for i in range(top.bit_length()) if 1 << i <= top]
    print("| N | parse | grad | simplify | print | matdiff total | per term | SymPy | SymPy says |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n_terms in sizes:
        runs = [matdiff_steps(n_terms) for _ in range(repeat)]
        r = min(runs, key=lambda x: x["total"])
        sym = sympy_seconds(n_terms) if n_terms <= sympy_max else None
        sym_cells = f"{sym[0]:.3f} s | {sym[1]}" if sym else "- | -"
        print(f"| {n_terms} | {r['parse']:.3f} | {r['grad']:.3f} | {r['simplify']:.3f} | "
              f"{r['print']:.3f} | {r['total']:.3f} s | {r['total'] / n_terms * 1e3:.1f} ms | "
              f"{sym_cells} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes only")
    ap.add_argument("--max-n", type=int, default=256)
    ap.add_argument("--sympy-max", type=int, default=64, help="largest N given to SymPy")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--only", nargs="*", default=["sum", "product", "parse", "deep"],
                    choices=["sum", "product", "parse", "deep"])
    args = ap.parse_args()
    if "sum" in args.only:
        sum_table(32 if args.quick else args.max_n, args.sympy_max, args.repeat)
    if "product" in args.only:
        product_table([10, 20, 40] if args.quick else [25, 50, 100, 200], args.repeat)
    if "parse" in args.only:
        parse_table([100, 200] if args.quick else [250, 500, 1000, 2000], args.repeat)
    if "deep" in args.only:
        deep_table([10, 20, 40] if args.quick else [25, 50, 100, 200], args.repeat)


if __name__ == "__main__":
    main()
