"""Solve benchmark: ``md.minimize`` against independent solvers on nine problems.

Each problem is solved by matdiff (L-BFGS-B, with the augmented Lagrangian where there are
constraints) and by references: an exact answer where one exists (``scipy.optimize.nnls``,
the SVD, ``inv(C)``, the projection formula), SciPy's SLSQP with exact gradients, and cvxpy
(its default solver) where the problem is convex. The table shows each contender's objective
gap to the best objective found, relative (goal for matdiff: <= 1e-6), and its time, the
best of ``--repeat`` runs after a warm-up run. matdiff's time is the whole ``md.minimize``
call, parsing and code generation included ("first call": a fresh process would pay the
symbolic work once more, shown separately); cvxpy's is ``Problem.solve`` including its
canonicalisation.

BLAS runs on one thread (``OPENBLAS_NUM_THREADS=1``, overridable): on a small shared machine
the spinning threads of a multi-threaded BLAS slow L-BFGS-B's many small products a
hundredfold. Prints a table; asserts nothing about time.

    python benchmarks/solve.py               # all problems, best of 5
    python benchmarks/solve.py --quick       # smaller sizes, best of 2
    python benchmarks/solve.py --only lasso  # problems whose name contains 'lasso'
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402 - after the thread settings, which numpy reads on import
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import scipy.optimize as so  # noqa: E402

import matdiff as md  # noqa: E402

try:
    import cvxpy as cp
except ImportError:  # the bench extra: pip install 'matdiff[bench]'
    cp = None


@dataclass
class Case:
    """A problem: contenders by name, each returning the objective it reached."""

    name: str
    size: str
    convex: bool
    constrained: bool
    matdiff: Callable[[], float]
    refs: dict[str, Callable[[], float]] = field(default_factory=dict)
    exact: float | None = None


def slsqp(fg: Callable[[np.ndarray], tuple[float, np.ndarray]], x0: np.ndarray,
          bounds: Any = None, constraints: Any = ()) -> float:
    """SciPy's SLSQP with the exact gradient, to a tight tolerance."""
    res = so.minimize(fg, x0, jac=True, method="SLSQP", bounds=bounds, constraints=constraints,
                      options={"ftol": 1e-12, "maxiter": 2000})
    return float(fg(res.x)[0])


def cvx(objective: Any, constraints: list[Any]) -> float:
    prob = cp.Problem(cp.Minimize(objective), constraints)
    prob.solve()
    return float(prob.value)


def nnls_case(rng: np.random.Generator, m: int, n: int) -> Case:
    A, b = rng.standard_normal((m, n)), rng.standard_normal(m)
    fg = lambda x: (float((A @ x - b) @ (A @ x - b)), 2 * A.T @ (A @ x - b))
    case = Case("non-negative least squares", f"A {m}x{n}", True, True, lambda: md.minimize(
        "||A*x - b||^2", "x", data={"A": A, "b": b}, bounds={"x": (0, None)}).fun)
    case.refs["scipy nnls"] = lambda: float(so.nnls(A, b)[1] ** 2)
    case.refs["SLSQP"] = lambda: slsqp(fg, np.zeros(n), bounds=[(0, None)] * n)
    if cp is not None:
        x = cp.Variable(n)
        case.refs["cvxpy"] = lambda: cvx(cp.sum_squares(A @ x - b), [x >= 0])
    return case


def logistic_case(rng: np.random.Generator, m: int, n: int) -> Case:
    X = rng.standard_normal((m, n)) / np.sqrt(n)
    y = np.sign(X @ rng.standard_normal(n) + 0.5 * rng.standard_normal(m))
    lam = 1.0
    text = "lam/2*||w||^2 + sum(log(1 + exp(-y .* (X*w))))"

    def fg(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = -y * (X @ w)
        return (lam / 2 * w @ w + float(np.sum(np.logaddexp(0, z))),
                lam * w - X.T @ (y / (1 + np.exp(-z))))
    case = Case("L2 logistic regression", f"X {m}x{n}", True, False, lambda: md.minimize(
        text, "w", data={"X": X, "y": y, "lam": lam}).fun)
    case.refs["SLSQP"] = lambda: slsqp(fg, np.zeros(n))
    if cp is not None:
        w = cp.Variable(n)
        case.refs["cvxpy"] = lambda: cvx(
            lam / 2 * cp.sum_squares(w) + cp.sum(cp.logistic(-cp.multiply(y, X @ w))), [])
    return case


def simplex_case(rng: np.random.Generator, m: int, n: int) -> Case:
    A, b = rng.standard_normal((m, n)), rng.standard_normal(m)
    fg = lambda x: (float((A @ x - b) @ (A @ x - b)), 2 * A.T @ (A @ x - b))
    case = Case("least squares on the simplex", f"A {m}x{n}", True, True, lambda: md.minimize(
        "||A*x - b||^2", "x", data={"A": A, "b": b},
        constraints=["sum(x) == 1", "x >= 0"]).fun)
    case.refs["SLSQP"] = lambda: slsqp(
        fg, np.full(n, 1 / n), bounds=[(0, None)] * n,
        constraints=[{"type": "eq", "fun": lambda x: np.sum(x) - 1,
                      "jac": lambda x: np.ones(n)}])
    if cp is not None:
        x = cp.Variable(n)
        case.refs["cvxpy"] = lambda: cvx(cp.sum_squares(A @ x - b), [cp.sum(x) == 1, x >= 0])
    return case


def nmf_case(rng: np.random.Generator, m: int, n: int, k: int) -> Case:
    M = rng.random((m, k)) @ rng.random((k, n)) + 0.05 * rng.random((m, n))
    W0, H0 = 0.5 * rng.random((m, k)), 0.5 * rng.random((k, n))

    def fg(z: np.ndarray) -> tuple[float, np.ndarray]:
        W, H = z[:m * k].reshape(m, k), z[m * k:].reshape(k, n)
        R = W @ H - M
        return float(np.sum(R * R)), np.concatenate([(2 * R @ H.T).ravel(),
                                                     (2 * W.T @ R).ravel()])
    z0 = np.concatenate([W0.ravel(), H0.ravel()])
    case = Case("non-negative matrix factorisation", f"M {m}x{n}, rank {k}", False, True,
                lambda: md.minimize("||M - W*H||_F^2", ["W", "H"], data={"M": M},
                                    x0={"W": W0, "H": H0},
                                    bounds={"W": (0, None), "H": (0, None)}).fun)
    case.refs["SLSQP"] = lambda: slsqp(fg, z0, bounds=[(0, None)] * z0.size)
    return case


def lowrank_case(rng: np.random.Generator, m: int, n: int, k: int) -> Case:
    M = rng.standard_normal((m, n))
    s = np.linalg.svd(M, compute_uv=False)
    case = Case("low-rank factorisation", f"M {m}x{n}, rank {k}", False, False,
                lambda: md.minimize("||M - U*V'||_F^2", ["U", "V"], data={"M": M},
                                    shapes={"U": (m, k), "V": (n, k)}).fun,
                exact=float(np.sum(s[k:] ** 2)))
    case.refs["SVD (exact)"] = lambda: float(np.sum(np.linalg.svd(M, compute_uv=False)[k:]
                                                    ** 2))
    return case


def covariance_case(rng: np.random.Generator, n: int, samples: int) -> Case:
    Y = rng.standard_normal((samples, n)) @ (np.eye(n) + rng.standard_normal((n, n)) / n)
    C = np.cov(Y.T)
    case = Case("covariance MLE (logdet)", f"S {n}x{n} symmetric", True, False,
                lambda: md.minimize("-logdet(S) + tr(S*C)", "S", data={"C": C},
                                    shapes={"S": "symmetric"}).fun,
                exact=float(np.linalg.slogdet(C)[1] + n))
    case.refs["inv(C) (exact)"] = lambda: float(np.linalg.slogdet(C)[1] + n)
    if cp is not None:
        S = cp.Variable((n, n), symmetric=True)
        case.refs["cvxpy"] = lambda: cvx(-cp.log_det(S) + cp.trace(S @ C), [])
    return case


def lasso_case(rng: np.random.Generator, m: int, n: int) -> Case:
    A = rng.standard_normal((m, n))
    b = A @ (rng.standard_normal(n) * (rng.random(n) < 0.2)) + 0.1 * rng.standard_normal(m)
    lam = 0.1 * float(np.max(np.abs(A.T @ b)))

    def fg(z: np.ndarray) -> tuple[float, np.ndarray]:       # the split, for SLSQP
        r = A @ (z[:n] - z[n:]) - b
        g = 2 * A.T @ r
        return float(r @ r + lam * np.sum(z)), np.concatenate([g + lam, lam - g])
    case = Case("lasso (the split)", f"A {m}x{n}", True, False, lambda: md.minimize(
        "||A*x - b||^2 + lam*norm1(x)", "x", data={"A": A, "b": b, "lam": lam}).fun)
    case.refs["SLSQP (split)"] = lambda: slsqp(fg, np.zeros(2 * n), bounds=[(0, None)] * 2 * n)
    if cp is not None:
        x = cp.Variable(n)
        case.refs["cvxpy"] = lambda: cvx(cp.sum_squares(A @ x - b) + lam * cp.norm1(x), [])
    return case


def affine_case(rng: np.random.Generator, m: int, n: int, p: int) -> Case:
    M, B, C = rng.standard_normal((m, n)), rng.standard_normal((p, m)), rng.standard_normal((p, n))
    X = M - B.T @ np.linalg.solve(B @ B.T, B @ M - C)       # the projection onto BX = C

    def eq(z: np.ndarray) -> np.ndarray:
        return (B @ z.reshape(m, n) - C).ravel()
    jac = np.kron(B, np.eye(n))                               # d vec_row(BX) / d vec_row(X)
    case = Case("matrix equality B*X == C", f"X {m}x{n}, B {p}x{m}", True, True,
                lambda: md.minimize("||X - M||_F^2", "X", data={"M": M, "B": B, "C": C},
                                    constraints=["B*X == C"]).fun,
                exact=float(np.sum((X - M) ** 2)))
    case.refs["projection (exact)"] = lambda: float(np.sum(
        (B.T @ np.linalg.solve(B @ B.T, B @ M - C)) ** 2))
    case.refs["SLSQP"] = lambda: slsqp(
        lambda z: (float(np.sum((z - M.ravel()) ** 2)), 2 * (z - M.ravel())), np.zeros(m * n),
        constraints=[{"type": "eq", "fun": eq, "jac": lambda z: jac}])
    if cp is not None:
        Xv = cp.Variable((m, n))
        case.refs["cvxpy"] = lambda: cvx(cp.sum_squares(Xv - M), [B @ Xv == C])
    return case


def svm_case(rng: np.random.Generator, n: int, d: int) -> Case:
    Xs = rng.standard_normal((n, d))
    y = np.sign(Xs @ rng.standard_normal(d) + 0.3 * rng.standard_normal(n))
    K = Xs @ Xs.T
    Q = (y[:, None] * K) * y[None, :]
    fg = lambda a: (float(0.5 * a @ Q @ a - np.sum(a)), Q @ a - 1)
    case = Case("SVM dual (box + y'a == 0)", f"K {n}x{n}", True, True, lambda: md.minimize(
        "0.5*(a .* y)'*K*(a .* y) - sum(a)", "a", data={"K": K, "y": y},
        shapes={"K": "symmetric"}, bounds={"a": (0, 1)}, constraints=["y'*a == 0"]).fun)
    case.refs["SLSQP"] = lambda: slsqp(fg, np.zeros(n), bounds=[(0, 1)] * n, constraints=[
        {"type": "eq", "fun": lambda a: y @ a, "jac": lambda a: y}])
    if cp is not None:
        a = cp.Variable(n)
        case.refs["cvxpy"] = lambda: cvx(
            0.5 * cp.quad_form(cp.multiply(a, y), cp.psd_wrap(K)) - cp.sum(a),
            [a >= 0, a <= 1, y @ a == 0])
    return case


def cases(quick: bool, seed: int) -> list[Case]:
    rng = np.random.default_rng(seed)
    s = 2 if quick else 1
    return [nnls_case(rng, 400 // s, 200 // s), logistic_case(rng, 2000 // s, 50),
            simplex_case(rng, 300 // s, 100 // s), nmf_case(rng, 60 // s, 40 // s, 4),
            lowrank_case(rng, 100 // s, 80 // s, 5), covariance_case(rng, 30 // s, 200),
            lasso_case(rng, 200 // s, 100 // s), affine_case(rng, 30 // s, 20 // s, 5),
            svm_case(rng, 150 // s, 5)]


def run(case: Case, repeat: int) -> list[tuple[str, float, float]]:
    """``(contender, objective, best time)`` rows, matdiff's first call first."""
    contenders = {"matdiff": case.matdiff, **case.refs}
    rows = []
    t = time.perf_counter()
    first_value = case.matdiff()
    rows.append(("matdiff, first call", first_value, time.perf_counter() - t))
    for name, fn in contenders.items():
        best, value = float("inf"), float("nan")
        for _ in range(repeat + (name != "matdiff")):       # a warm-up run for the others
            t = time.perf_counter()
            value = fn()
            best = min(best, time.perf_counter() - t)
        rows.append((name, value, best))
    return rows


def table(results: list[tuple[Case, list[tuple[str, float, float]]]]) -> str:
    lines = ["| problem | size | contender | objective | gap | time |",
             "|---|---|---|---|---|---|"]
    for case, rows in results:
        best = case.exact if case.exact is not None else min(v for _, v, _ in rows)
        for i, (name, value, seconds) in enumerate(rows):
            gap = (value - best) / abs(best) if best else value - best
            head = (f"{case.name}{'' if case.convex else ' (non-convex)'}", case.size) \
                if i == 0 else ("", "")
            lines.append(f"| {head[0]} | {head[1]} | {name} | {value:.10g} | {gap:.1e} | "
                         f"{seconds * 1e3:.1f} ms |")
    return "\n".join(lines)


def verdicts(results: list[tuple[Case, list[tuple[str, float, float]]]]) -> list[str]:
    """The goals: gap <= 1e-6, faster than cvxpy (convex) and SLSQP (constrained)."""
    out = []
    for case, rows in results:
        times = {name: t for name, _, t in rows}
        best = case.exact if case.exact is not None else min(v for _, v, _ in rows)
        value = next(v for name, v, _ in rows if name == "matdiff")
        gap = (value - best) / abs(best) if best else value - best
        notes = [f"gap {gap:.1e} {'<=' if gap <= 1e-6 else '>'} 1e-6"]
        for ref in ("cvxpy", "SLSQP", "SLSQP (split)"):
            if ref in times and (ref == "cvxpy" and case.convex or
                                 ref != "cvxpy" and case.constrained):
                ratio = times[ref] / times["matdiff"]
                notes.append(f"{ratio:.1f}x {'faster' if ratio > 1 else 'SLOWER'} than {ref}")
        out.append(f"{case.name}: " + ", ".join(notes))
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", default="")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    repeat = 2 if args.quick else args.repeat
    if cp is None:
        print("cvxpy is not installed (pip install 'matdiff[bench]'): no cvxpy rows")
    results = []
    for case in cases(args.quick, args.seed):
        if args.only.lower() in case.name.lower():
            results.append((case, run(case, repeat)))
            print(f"done: {case.name}", flush=True)
    print()
    print(table(results))
    print()
    print("\n".join(verdicts(results)))


if __name__ == "__main__":
    main()
