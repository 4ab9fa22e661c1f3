"""Seed benchmark: value + both gradients of the seed, matdiff's generated code vs autodiff.

    ||Z - I .* (R'*A + Q'*B)||_F^2 + ||W - [R, -Q; Q, R]*P*S'||_F^2     wrt R and Q

Shapes: R, Q, A, B: m x n; Z: n x n; P: 2n x k; S: q x k; W: 2m x q; k = q = m/8.
Every time is the best of ``--repeat`` calls (after a warm-up call), float64; ratios are
against the naive NumPy value (the expression evaluated as written, full products) measured
in the same run.
Prints a table; asserts nothing about time.

    python benchmarks/seed.py                 # m = n in {256, 1024}
    python benchmarks/seed.py --sizes 2048    # the large case (a few GiB, minutes)
    python benchmarks/seed.py --quick         # m = n = 256, 3 repeats
    python benchmarks/seed.py --baseline /work/main/src --runs 7   # this code vs another's

``--baseline SRC`` generates the NumPy code of the same problem with the matdiff checkout at
SRC (in a subprocess), runs both generated functions in this process, alternating within
each round, and prints new / baseline (best of ``--repeat``) for ``--runs`` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import matdiff as md

SEED = "||Z - I .* (R'*A + Q'*B)||_F^2 + ||W - [R, -Q; Q, R]*P*S'||_F^2"
SHAPES = {"R": ("m", "n"), "Q": ("m", "n"), "A": ("m", "n"), "B": ("m", "n"), "Z": ("n", "n"),
          "P": ("2*n", "k"), "S": ("q", "k"), "W": ("2*m", "q")}


def best_times(contenders: dict[str, Callable[[], Any]], repeat: int) -> dict[str, float]:
    """Best wall time of each contender over ``repeat`` calls, after one warm-up call
    (compilation, caches). Contenders run one after another, not interleaved: the OpenMP
    threads of one framework keep spinning for a while after it returns, and on a small
    machine they slow whichever framework runs next."""
    best: dict[str, float] = {}
    for name, fn in contenders.items():
        fn()
        best[name] = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t)
    return best


def optional(name: str) -> Any:
    try:
        return __import__(name)
    except ImportError:
        return None


def jax_module() -> Any:
    jax = optional("jax")
    if jax is not None:
        jax.config.update("jax_enable_x64", True)
    return jax


def seed_naive(xp: Any, R: Any, Q: Any, A: Any, B: Any, Z: Any, P: Any, S: Any, W: Any) -> Any:
    """The seed exactly as written, for NumPy, jax.numpy or torch."""
    n = Z.shape[0]
    eye = xp.eye(n, dtype=Z.dtype) if xp.__name__ != "jax.numpy" else xp.eye(n)
    e1 = Z - eye * (R.T @ A + Q.T @ B)
    if xp.__name__ == "torch":
        blk = xp.cat([xp.cat([R, -Q], 1), xp.cat([Q, R], 1)], 0)
    else:
        blk = xp.block([[R, -Q], [Q, R]])
    e2 = W - blk @ P @ S.T
    return (e1 * e1).sum() + (e2 * e2).sum()


def seed_inputs(m: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    n, k = m, max(1, m // 8)
    q = k
    shapes = {"R": (m, n), "Q": (m, n), "A": (m, n), "B": (m, n), "Z": (n, n),
              "P": (2 * n, k), "S": (q, k), "W": (2 * m, q)}
    return {name: rng.standard_normal(s) for name, s in shapes.items()}


class Problem:
    """A scalar function: its text and shapes, the variables, a naive ``f(xp, **inputs)``."""

    def __init__(self, name: str, text: str, shapes: dict[str, Any], wrt: list[str],
                 naive: Callable[..., Any], make_inputs: Callable[[int, np.random.Generator],
                                                                  dict[str, np.ndarray]]):
        self.name, self.text, self.shapes, self.wrt = name, text, shapes, wrt
        self.naive, self.make_inputs = naive, make_inputs

    def exprs(self) -> list[md.Expr]:
        f = md.parse(self.text, shapes=self.shapes)
        grads = md.grad(f, self.wrt)
        return [f, *(grads[w] for w in self.wrt)]  # type: ignore[index]


def measure(p: Problem, size: int, repeat: int, seed: int = 0) -> dict[str, float]:
    """Times (seconds) of every contender at one size, and the largest gradient deviation
    between matdiff and the autodiff references."""
    env = p.make_inputs(size, np.random.default_rng(seed))
    exprs = p.exprs()
    contenders: dict[str, Callable[[], Any]] = {"naive numpy value": lambda: p.naive(np, **env)}
    fn_np = md.compile(exprs, backend="numpy")
    ours = fn_np(**env)
    contenders["matdiff numpy"] = lambda: fn_np(**env)
    deviation = 0.0
    jax = jax_module()
    if jax is not None:
        jnp = jax.numpy
        jenv = {k: jnp.asarray(v) for k, v in env.items()}
        fn_jax = md.compile(exprs, backend="jax")
        ours_jit = jax.jit(lambda **kw: fn_jax(**kw))
        contenders["matdiff jax"] = lambda: jax.block_until_ready(ours_jit(**jenv))
        idx = tuple(list(env).index(w) for w in p.wrt)
        names = list(env)

        def naive_pos(*args: Any) -> Any:
            return p.naive(jnp, **dict(zip(names, args, strict=True)))
        vg = jax.jit(jax.value_and_grad(naive_pos, argnums=idx))
        args = [jenv[k] for k in names]
        _, ref_grads = vg(*args)
        contenders["jax value_and_grad"] = lambda: jax.block_until_ready(vg(*args))
        deviation = max(deviation, *(float(np.max(np.abs(np.asarray(a) - b)) /
                                           (1 + np.max(np.abs(b))))
                                     for a, b in zip(ref_grads, ours[1:], strict=True)))
    torch = optional("torch")
    if torch is not None:
        tenv = {k: torch.as_tensor(v) for k, v in env.items()}
        fn_torch = md.compile(exprs, backend="torch")

        def ours_torch() -> Any:
            with torch.no_grad():
                return fn_torch(**tenv)

        def autograd() -> Any:
            leaves = {k: (v.detach().requires_grad_(True) if k in p.wrt else v)
                      for k, v in tenv.items()}
            value = p.naive(torch, **leaves)
            value.backward()
            return value, [leaves[w].grad for w in p.wrt]
        contenders["matdiff torch"] = ours_torch
        contenders["torch autograd"] = autograd
        _, tgrads = autograd()
        deviation = max(deviation, *(float(np.max(np.abs(a.numpy() - b)) /
                                           (1 + np.max(np.abs(b))))
                                     for a, b in zip(tgrads, ours[1:], strict=True)))
    out = best_times(contenders, repeat)
    out["max rel. gradient deviation"] = deviation
    return out


def print_table(title: str, rows: list[tuple[int, dict[str, float]]]) -> None:
    """One row per size: the naive value time, then every contender as a ratio to it."""
    print(f"\n{title}  (value + all gradients; x = time / naive NumPy value; float64, "
          f"{os.cpu_count()} CPU(s))")
    cols = [c for c in rows[0][1] if c not in ("naive numpy value",
                                                "max rel. gradient deviation")]
    head = f"| {'size':>5} | {'naive value':>11} | " + " | ".join(f"{c:>18}" for c in cols)
    head += " | jax AD / ours jax | torch AD / ours torch | jax AD / ours numpy | grad dev |"
    print(head)
    print("|" + "|".join("-" * (len(s)) for s in head.split("|")[1:-1]) + "|")

    def speedup(r: dict[str, float], ad: str, ours: str, width: int) -> str:
        return f"{r[ad] / r[ours]:>{width - 1}.1f}x" if ad in r and ours in r else f"{'-':>{width}}"
    for size, r in rows:
        base = r["naive numpy value"]
        cells = [f"{r[c] / base:>17.2f}x" for c in cols]
        print(f"| {size:>5} | {base * 1e3:>8.1f} ms | " + " | ".join(cells)
              + f" | {speedup(r, 'jax value_and_grad', 'matdiff jax', 17)}"
              + f" | {speedup(r, 'torch autograd', 'matdiff torch', 21)}"
              + f" | {speedup(r, 'jax value_and_grad', 'matdiff numpy', 19)}"
              + f" | {r['max rel. gradient deviation']:.0e} |")


SEED_PROBLEM = Problem("seed", SEED, SHAPES, ["R", "Q"], seed_naive, seed_inputs)

_GENERATE = ("import json, sys, matdiff as md; text, shapes, wrt = json.loads(sys.argv[1]); "
             "f = md.parse(text, shapes=shapes); g = md.grad(f, wrt); "
             "print(md.codegen([f, *(g[w] for w in wrt)]))")


def generated(p: Problem, src: str | None = None) -> Callable[..., Any]:
    """The generated NumPy function of ``p``: by this matdiff, or by the checkout at ``src``
    (run in a subprocess, so that both versions can be timed in this process)."""
    if src is None:
        code = md.codegen(p.exprs())
    else:
        code = subprocess.run([sys.executable, "-c", _GENERATE, json.dumps(
            [p.text, p.shapes, p.wrt])], env={**os.environ, "PYTHONPATH": src},
            capture_output=True, text=True, check=True).stdout
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    return namespace["f_and_grad"]


def compare(p: Problem, src: str, sizes: list[int], repeat: int, runs: int) -> None:
    """new / baseline time of the generated NumPy code, one ratio per run (best of
    ``repeat`` rounds, the two alternating within a round)."""
    new, old = generated(p), generated(p, src)
    print(f"\n{p.name}: this matdiff / matdiff at {src}  (NumPy, value + all gradients)")
    for size in sizes:
        env = p.make_inputs(size, np.random.default_rng(0))
        for a, b in zip(new(**env), old(**env), strict=True):
            assert np.allclose(a, b, rtol=1e-8, atol=1e-8 * (1 + np.max(np.abs(b))))
        ratios = []
        for _ in range(runs):
            new(**env), old(**env)
            best = [float("inf"), float("inf")]
            for _ in range(repeat):
                for i, fn in enumerate((new, old)):
                    t = time.perf_counter()
                    fn(**env)
                    best[i] = min(best[i], time.perf_counter() - t)
            ratios.append(best[0] / best[1])
        print(f"  size {size:>5}: median {statistics.median(ratios):.3f}, range "
              f"{min(ratios):.3f}-{max(ratios):.3f} over {runs} runs  (baseline "
              f"{best[1] * 1e3:.1f} ms; runs: {' '.join(f'{r:.3f}' for r in ratios)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 1024], help="m = n values")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="m = n = 256, 3 repeats")
    ap.add_argument("--show-code", action="store_true", help="print the generated NumPy code")
    ap.add_argument("--baseline", metavar="SRC", help="compare with the matdiff at SRC")
    ap.add_argument("--runs", type=int, default=5, help="runs of the --baseline comparison")
    args = ap.parse_args()
    sizes, repeat = ([256], 3) if args.quick else (args.sizes, args.repeat)
    if args.show_code:
        print(md.codegen(SEED_PROBLEM.exprs()))
    if args.baseline:
        compare(SEED_PROBLEM, args.baseline, sizes, repeat, args.runs)
        return
    rows = [(s, measure(SEED_PROBLEM, s, repeat)) for s in sizes]
    print_table("seed, m = n, k = q = m/8", rows)


if __name__ == "__main__":
    main()
