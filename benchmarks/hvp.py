"""HVP benchmark: matdiff's compiled Hessian-vector product against JAX forward-over-reverse.

    f(X) = ||A*X*B - C||_F^2,   all n x n,   H[V] = 2 A'A V B B'

matdiff: ``md.hvp`` (the JVP of the symbolic gradient, simplified), compiled with
``md.compile`` for NumPy. JAX: ``jax.jvp(jax.grad(f), (X,), (V,))``, jit-compiled, float64,
on the CPU. Times are the best of ``--repeat`` rounds after a warm-up call, the two
alternating within a round; the ratio is measured in one run. Also checks that both agree.
Asserts nothing about time. Both do four n x n products per call (2 A'A V B B').

    python benchmarks/hvp.py              # n = 500, the libraries' default threads
    python benchmarks/hvp.py --n 1000 --repeat 5
    OPENBLAS_NUM_THREADS=1 XLA_FLAGS="--xla_cpu_multi_thread_eigen=false \
        intra_op_parallelism_threads=1" python benchmarks/hvp.py      # one thread each
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import matdiff as md

TEXT = "||A*X*B - C||_F^2"
SHAPES = {"A": ("n", "n"), "X": ("n", "n"), "B": ("n", "n"), "C": ("n", "n")}


def best_times(fns: list[Callable[[], Any]], repeat: int) -> list[float]:
    """Best wall time of each function over ``repeat`` rounds, after one warm-up call each
    (compilation, caches); the functions alternate within a round, so that load from other
    processes falls on all of them alike."""
    for fn in fns:
        fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t)
    return best


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--repeat", type=int, default=10)
    args = p.parse_args(argv)

    f = md.parse(TEXT, shapes=SHAPES)
    hv = md.hvp(f, "X", "V")
    print(f"f = {md.to_text(f)}\nH[V] = {md.to_text(hv)}   (matdiff, simplified)")
    hvp_np = md.compile(hv, backend="numpy")

    rng = np.random.default_rng(0)
    n = args.n
    inputs = {k: rng.standard_normal((n, n)) for k in ("A", "X", "B", "C", "V")}
    ours_fn = lambda: hvp_np(**inputs)  # noqa: E731
    print(f"n = {n}, float64, best of {args.repeat}")

    try:
        import jax  # noqa: PLC0415 - optional
        import jax.numpy as jnp  # noqa: PLC0415 - optional
    except ImportError:
        print("  jax not installed: pip install jax jaxlib")
        ours = best_times([ours_fn], args.repeat)[0]
        print(f"  matdiff md.compile(md.hvp) numpy : {ours * 1e3:9.2f} ms")
        return
    jax.config.update("jax_enable_x64", True)

    def loss(x: Any, a: Any, b: Any, c: Any) -> Any:
        r = a @ x @ b - c
        return jnp.sum(r * r)

    @jax.jit
    def hvp_jax(x: Any, v: Any, a: Any, b: Any, c: Any) -> Any:
        return jax.jvp(lambda y: jax.grad(loss)(y, a, b, c), (x,), (v,))[1]

    args_jax = [jnp.asarray(inputs[k]) for k in ("X", "V", "A", "B", "C")]
    ours, theirs = best_times([ours_fn, lambda: hvp_jax(*args_jax).block_until_ready()],
                              args.repeat)
    print(f"  matdiff md.compile(md.hvp) numpy : {ours * 1e3:9.2f} ms")
    print(f"  jax.jit(jax.jvp(jax.grad(f)))    : {theirs * 1e3:9.2f} ms")
    print(f"  ratio jax / matdiff              : {theirs / ours:9.2f}x")
    err = np.max(np.abs(np.asarray(hvp_jax(*args_jax)) - hvp_np(**inputs)))
    scale = np.max(np.abs(hvp_np(**inputs)))
    print(f"  max relative difference          : {err / scale:9.1e}")


if __name__ == "__main__":
    main()
