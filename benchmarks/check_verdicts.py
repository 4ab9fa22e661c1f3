"""Tally the check's verdicts over the soak's random expressions.

``python benchmarks/check_verdicts.py --cases 2000 --seed 0`` draws ``matdiff.testing``'s
random well-shaped expressions, checks the simplified gradient of every variable with
``matdiff.check.check_gradients`` and prints how many variables were OK, MISMATCH or
inconclusive (with the reasons), the time per case, and each mismatch with its expression.
A mismatch is then re-checked with the raw (unsimplified) gradient: if that one is OK, the
simplifier changed the value (a simplifier bug); if it is a mismatch too, the derivative
rule or the check is wrong. Exit status 1 when some variable is a mismatch.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time

import numpy as np

from matdiff import testing
from matdiff.check import check_gradients
from matdiff.diff import gradients
from matdiff.expr import free_symbols
from matdiff.printing import to_text
from matdiff.simplify import simplify


def run(cases: int, seed: int, depth: int, show: bool = False) -> int:
    verdicts: collections.Counter[str] = collections.Counter()
    reasons: collections.Counter[str] = collections.Counter()
    mismatches = []
    start = time.perf_counter()
    for case in range(seed, seed + cases):
        e = testing.random_expr(case, depth)
        names = list(free_symbols(e))
        raw = gradients(e, names)
        with np.errstate(all="ignore"):
            rep = check_gradients(e, {n: simplify(g) for n, g in raw.items()}, seed=case)
        for name, v in rep.verdicts.items():
            verdicts[v.status] += 1
            if v.status == "inconclusive":
                reasons[v.reason] += 1
                if show:
                    print(f"inconclusive case {case} d/d{name}: {v.line()}\n  {to_text(e)}")
            if v.status == "mismatch":
                again = check_gradients(e, {name: raw[name]}, seed=case).verdicts[name]
                mismatches.append((case, name, to_text(e), v.line(), again.status))
    seconds = time.perf_counter() - start
    print(f"cases {cases} (seeds {seed}..{seed + cases - 1}, depth {depth}), "
          f"{seconds:.0f} s, {1000 * seconds / cases:.0f} ms per case")
    print("variables: " + ", ".join(f"{k} {n}" for k, n in sorted(verdicts.items())))
    for reason, n in reasons.most_common():
        print(f"  inconclusive ({reason}): {n}")
    for case, name, text, line, raw_status in mismatches:
        print(f"MISMATCH case {case} d/d{name}: {line}; raw gradient: {raw_status}\n  {text}")
    return 1 if mismatches else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--depth", type=int, default=6)
    p.add_argument("--show", action="store_true", help="print every inconclusive case")
    args = p.parse_args()
    return run(args.cases, args.seed, args.depth, args.show)


if __name__ == "__main__":
    sys.exit(main())
