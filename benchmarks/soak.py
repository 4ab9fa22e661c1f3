"""Soak run: verify many random expressions through every stage and print the counts.

Each case is a random well-shaped scalar expression (``matdiff.testing.random_expr``, depth
up to 6, every Op of the language) checked by ``matdiff.testing.verify``: the gradient of
every variable against central finite differences, ``simplify`` keeps the value and the
gradient, ``parse(to_text(e))`` is ``e``, and the compiled NumPy code agrees with the
reference evaluator. Where the fixed-step differences disagree with a gradient, the
three-way check (``check.check_claims``: Richardson steps, measured noise, several points)
gives a second opinion: its OK clears the case, and where it cannot decide the case is
inconclusive with its reason (counted, never hidden). A case is ok, a mismatch (a bug), an
error (an unexpected exception: a bug), inconclusive, or skipped (no point in the domain off
the kinks of abs/sign/relu: said, not hidden).

    python benchmarks/soak.py                       # 10,000 cases from seed 0
    python benchmarks/soak.py --cases 500 --seed 7  # a short run
    python benchmarks/soak.py --show 20             # print 20 failures of each stage in full
    python benchmarks/soak.py --backends            # and JAX / PyTorch code against NumPy's
    python benchmarks/soak.py --complex             # real functions of complex matrices
"""

from __future__ import annotations

import argparse
import collections
import sys
import time

from matdiff.expr import Op
from matdiff.testing import random_case


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0, help="first case number")
    ap.add_argument("--depth", type=int, default=6, help="maximum expression depth")
    ap.add_argument("--show", type=int, default=10, help="failures printed per stage")
    ap.add_argument("--backends", action="store_true",
                    help="also compare the JAX and PyTorch code of f and its gradients with "
                         "NumPy's (float64; slower)")
    ap.add_argument("--complex", action="store_true",
                    help="real-valued functions of complex matrices "
                         "(matdiff.testing_complex; depth <= 5)")
    args = ap.parse_args(argv)
    if args.backends:
        try:
            import jax
            jax.config.update("jax_enable_x64", True)
        except ImportError:
            pass
    kinds: collections.Counter[str] = collections.Counter()
    reasons: collections.Counter[str] = collections.Counter()
    second_opinions = 0
    by_stage: collections.Counter[str] = collections.Counter()
    ops: collections.Counter[Op] = collections.Counter()
    slowest: list[tuple[float, int, str]] = []
    start = time.perf_counter()
    for seed in range(args.seed, args.seed + args.cases):
        r = random_case(seed, args.depth, args.backends, args.complex)
        kinds[r.kind] += 1
        second_opinions += r.second_opinions
        if r.kind == "inconclusive":
            reasons[r.reason] += 1
        ops.update(n.op for n in r.expr.walk())
        slowest = sorted([*slowest, (r.seconds, seed, str(r.expr))], reverse=True)[:3]
        if r.kind in ("mismatch", "error"):
            group = f"{r.kind} in {r.stage}"
            by_stage[group] += 1
            if by_stage[group] <= args.show:
                print(f"case {seed}: {r.kind} in {r.stage}: {r.detail[:300]}\n  f = {r.expr}",
                      file=sys.stderr)
    wall = time.perf_counter() - start
    print(f"cases      {args.cases} (seeds {args.seed}..{args.seed + args.cases - 1}, "
          f"depth <= {args.depth}{', complex matrices' if args.complex else ''})")
    for kind in ("ok", "mismatch", "error", "skipped", "inconclusive"):
        print(f"{kind:<10} {kinds[kind]}")
    for reason, count in reasons.most_common():
        print(f"  inconclusive ({reason}): {count}")
    print(f"second opinions (the three-way check where fixed steps disagreed): "
          f"{second_opinions}")
    for what, count in sorted(by_stage.items()):
        print(f"  {what:<22} {count}")
    print(f"ops        {len(ops)} of {len(Op)} ops occur; missing: "
          f"{', '.join(o.name for o in Op if o not in ops) or 'none'}")
    print(f"wall       {wall:.1f} s ({1000 * wall / max(1, args.cases):.1f} ms per case)")
    for secs, seed, text in slowest:
        print(f"slowest    {secs:.2f} s  case {seed}: {text[:100]}")
    return 1 if kinds["mismatch"] or kinds["error"] else 0


if __name__ == "__main__":
    sys.exit(main())
