"""``md.minimize``: from an objective and constraints to a solution, GENO-style.

Input: an objective (text or ``Expr``), variable names, data, bounds and constraints (text).
Output: a ``MinimizeResult``. The problem is first made smooth (``problem.build``: bounds,
reformulated non-smooth terms); then

* the value and the gradients come from one compiled call, ``compile([L, *grad L, ...])``,
  where ``L`` is the objective or, with constraints, the augmented Lagrangian
  ``f + rho/2 (Σ ||h_i + λ_i/rho||² + Σ ||relu(g_i + μ_i/rho)||²)`` written as a matdiff
  expression with ``rho`` and the shifted multipliers as inputs (Laue, Mitterreiter, Giesen,
  "GENO", NeurIPS 2019; Birgin & Martínez's multiplier and penalty updates);
* L-BFGS-B (SciPy) minimises it over the box of the bounds; the outer loop updates the
  multipliers ``λ ← λ + rho h``, ``μ ← max(0, μ + rho g)`` and raises ``rho`` tenfold while
  the violation does not halve.

Affine equality constraints on unbounded variables (affine decided symbolically: the gradient
of ``Σ <W_i, h_i>`` contains no variable) are eliminated instead: their Jacobian ``J`` comes
from one compiled ``Jᵀw`` call per row, and L-BFGS-B runs on ``z = P y + z₀``, ``P`` the
projector onto the null space of ``J`` and ``z₀`` the least-norm solution; the multipliers are
``λ = -(J Jᵀ)⁺ J ∇f`` at the solution. One solve instead of the outer loop's ten.

Contract: user errors raise ``MatdiffError``; infeasible, unbounded and unconverged runs
return a result with ``success`` False and say so in ``message``; no SciPy error escapes.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import math
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np

from . import expr as E
from .api import evaluate, grad
from .codegen import compile as compile_exprs
from .expr import Expr, MatdiffError, Op
from .problem import Problem, Variable, build
from .spec import Constraint, parse_constraint

__all__ = ["minimize", "solve_problem", "MinimizeResult", "Iterate", "Layout"]

UNBOUNDED_BELOW = -1e20     # an objective below this is taken as unbounded, and so are
HUGE = 1e9                  # iterates beyond this size while the objective decreases
# what evaluating outside the domain raises (a singular or indefinite matrix; torch's
# linear-algebra errors are RuntimeErrors)
_DOMAIN_ERRORS = (ArithmeticError, np.linalg.LinAlgError, RuntimeError)


@dataclass
class Iterate:
    """What ``callback`` receives after each L-BFGS-B iteration (return True to stop)."""

    nit: int
    fun: float
    grad_norm: float
    violation: float | None
    x: dict[str, Any]


@dataclass
class MinimizeResult:
    """The solution: ``x`` by variable name (vectors 1-D, scalars float), ``fun`` the
    objective there, ``history`` the objective, gradient norm (largest entry of the projected
    gradient) and, with constraints, the largest violation per iteration."""

    x: dict[str, Any]
    fun: float
    success: bool
    status: str          # converged | infeasible | unbounded | not converged | stopped | failed
    message: str
    nit: int
    nfev: int
    history: dict[str, np.ndarray]
    violation: float | None = None
    multipliers: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """A few lines for people: status, objective, iterations, notes."""
        lines = [f"{'solved' if self.success else 'NOT SOLVED'}: {self.message}",
                 f"objective: {self.fun:.10g}",
                 f"iterations: {self.nit} (function evaluations: {self.nfev})"]
        if self.violation is not None:
            lines.append(f"constraint violation: {self.violation:.2e}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


# ----------------------------------------------------------------------------- variable layout


def _flat(g: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A gradient (in the variable's user shape, or a constant) as a flat array."""
    return g.reshape(-1) if g.size == shape[0] * shape[1] else np.full(shape[0] * shape[1],
                                                                        float(g.reshape(())))


class Layout:
    """The solver's vector ``z`` and the variables: symmetric matrices by their upper
    triangle, ``||x||_1``-split variables as ``[x⁺, x⁻]``, all others entry by entry."""

    def __init__(self, variables: Mapping[str, Variable]):
        self.variables = list(variables.values())
        self.spans: list[tuple[int, int]] = []
        lows, highs = [], []
        start = 0
        for v in self.variables:
            lo, hi = self._box(v)
            self.spans.append((start, start + lo.size))
            start += lo.size
            lows.append(lo)
            highs.append(hi)
        self.size = start
        self.lower = np.concatenate(lows) if lows else np.zeros(0)
        self.upper = np.concatenate(highs) if highs else np.zeros(0)
        # (V, z₀) when affine equalities are eliminated: the variables are at
        # ``z - V Vᵀ z + z₀`` (V an orthonormal basis of the rows of J); None otherwise
        self.affine: tuple[np.ndarray, np.ndarray] | None = None

    def feasible(self, z: np.ndarray) -> np.ndarray:
        """``z`` projected onto the affine set of the eliminated equalities (else ``z``)."""
        if self.affine is None:
            return z
        basis, z0 = self.affine
        return z - basis @ (basis.T @ z) + z0

    @staticmethod
    def _box(v: Variable) -> tuple[np.ndarray, np.ndarray]:
        if v.symbol.symmetric:
            idx = np.triu_indices(v.shape[0])
            return v.lower[idx], v.upper[idx]
        lo, hi = v.lower.ravel(), v.upper.ravel()
        if v.l1:      # x = x⁺ − x⁻ in [lo, hi]: x⁺ in [lo⁺, hi⁺], x⁻ in [(-hi)⁺, (-lo)⁺]
            return (np.concatenate([np.maximum(lo, 0), np.maximum(-hi, 0)]),
                    np.concatenate([np.maximum(hi, 0), np.maximum(-lo, 0)]))
        return lo, hi

    @staticmethod
    def user_shape(v: Variable) -> tuple[int, ...]:
        r, c = v.shape
        s = v.symbol
        return () if s.is_scalar else (r,) if s.is_vector else (r, c)

    def unpack(self, z: np.ndarray) -> dict[str, Any]:
        """The variables' values at ``z`` (vectors 1-D, scalars float)."""
        out: dict[str, Any] = {}
        z = self.feasible(z)
        for v, (a, b) in zip(self.variables, self.spans, strict=True):
            block = z[a:b]
            if v.symbol.symmetric:
                n = v.shape[0]
                full = np.zeros((n, n))
                full[np.triu_indices(n)] = block
                value: Any = full + np.triu(full, 1).T
            elif v.l1:
                half = (b - a) // 2
                value = block[:half] - block[half:]
            else:
                value = block
            shape = self.user_shape(v)
            out[v.name] = float(value.reshape(())) if not shape else value.reshape(shape)
        return out

    def pack(self, values: Mapping[str, Any]) -> np.ndarray:
        """``z`` for the variables' values (the inverse of ``unpack``)."""
        z = np.empty(self.size)
        for v, (a, b) in zip(self.variables, self.spans, strict=True):
            x = np.asarray(values[v.name], dtype=float).reshape(v.shape)
            if v.symbol.symmetric:
                z[a:b] = ((x + x.T) / 2)[np.triu_indices(v.shape[0])]
            elif v.l1:
                z[a:b] = np.concatenate([np.maximum(x, 0).ravel(), np.maximum(-x, 0).ravel()])
            else:
                z[a:b] = x.ravel()
        return z

    def pull(self, grads: Sequence[Any], z: np.ndarray) -> tuple[float, np.ndarray]:
        """The gradient in ``z`` from the variables' gradients, and the ``||x||_1`` value."""
        g_z = np.empty(self.size)
        l1 = 0.0
        for v, (a, b), g in zip(self.variables, self.spans, grads, strict=True):
            g = np.asarray(g, dtype=float)
            if v.symbol.symmetric:     # S = S(u): ∂f/∂u_ij = 2 Ḡ_ij off the diagonal, Ḡ_ii on it
                g2 = 2 * g.reshape(v.shape)
                g2[np.diag_indices(v.shape[0])] /= 2
                g_z[a:b] = g2[np.triu_indices(v.shape[0])]
            elif v.l1:                 # x = x⁺ − x⁻: ∂/∂x⁺ = ḡ + c, ∂/∂x⁻ = −ḡ + c
                half = (b - a) // 2
                flat = _flat(g, v.shape)
                g_z[a:a + half] = flat + v.l1
                g_z[a + half:b] = v.l1 - flat
                l1 += v.l1 * float(np.sum(z[a:b]))
            else:
                g_z[a:b] = _flat(g, v.shape)
        if self.affine is not None:            # the chain rule through the projection
            g_z -= self.affine[0] @ (self.affine[0].T @ g_z)
        return l1, g_z

    def projected_gradient(self, z: np.ndarray, g_z: np.ndarray) -> float:
        """The largest entry of the projected gradient (what L-BFGS-B's ``gtol`` tests)."""
        if not self.size:
            return 0.0
        return float(np.max(np.abs(np.clip(z - g_z, self.lower, self.upper) - z)))


# ----------------------------------------------------------------------------- the compiled call


class _Stop(Exception):
    """Ends a run from inside the objective or the monitor: the problem is unbounded."""

    def __init__(self, status: str, message: str, z: np.ndarray | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.z = z


def _diverging(z: np.ndarray, f: float, f0: float) -> _Stop | None:
    if z.size and float(np.max(np.abs(z))) > HUGE and f < f0:
        return _Stop("unbounded", f"unbounded: the variables grew beyond {HUGE:.0e} while the "
                     f"objective kept decreasing (to {f:.3g})", z)
    return None


def _numpy(value: Any) -> Any:
    if hasattr(value, "detach"):                  # a torch tensor, maybe on a GPU
        return value.detach().cpu().numpy()
    return value if isinstance(value, (float, np.ndarray)) else np.asarray(value)


def _fresh(base: str, taken: set[str]) -> str:
    name, k = base, 1
    while name in taken:
        k += 1
        name = f"{base}{k}"
    taken.add(name)
    return name


@functools.lru_cache(maxsize=32)
def _compiled(lagrangian: Expr, names: tuple[str, ...], extra: tuple[Expr, ...],
              backend: str) -> Callable[..., Any]:
    """``compile([L, *grad L, *extra])``; cached, as expressions are interned, so solving the
    same problem again (other data, another start) skips the symbolic work."""
    gradients = grad(lagrangian, list(names))
    assert isinstance(gradients, dict)
    return compile_exprs([lagrangian, *(gradients[n] for n in names), *extra], backend)


def _logdet_arguments(roots: Sequence[Expr], variables: Mapping[str, Variable]) -> list[Expr]:
    """The arguments of ``logdet`` that depend on a variable: their domain is checked."""
    return [n.args[0] for n in E.toposort(roots) if n.op is Op.LOGDET and not n.args[0].is_scalar
            and any(s in variables for s in E.free_symbols(n.args[0]))]


def _in_domain(a: np.ndarray) -> bool:
    """``logdet`` is minimised over positive definite matrices (det > 0 if not symmetric):
    ``log|det|`` itself is unbounded below across the singular ones."""
    if np.allclose(a, a.T):
        try:
            np.linalg.cholesky(a)
        except np.linalg.LinAlgError:
            return False
        return True
    return bool(np.linalg.slogdet(a)[0] > 0)


def _value_shape(c: Expr) -> tuple[int, ...]:
    """The shape of ``c``'s value: ``()``, ``(r,)`` or ``(r, k)``."""
    r, k = (int(d.value or 0) for d in c.shape)
    return () if c.is_scalar else (r,) if c.is_vector else (r, k)


def _squared(e: Expr) -> Expr:
    return E.total(E.hadamard(e, e))              # Σ e_ij², gradient 2e


class Objective:
    """The objective, or the augmented Lagrangian, of a problem as one compiled call
    ``z -> (value, gradient)``; it records the last point it evaluated."""

    def __init__(self, problem: Problem, layout: Layout, backend: str):
        self.problem, self.layout = problem, layout
        taken = set(problem.variables) | set(problem.data)
        f = problem.objective
        self.constrained = bool(problem.equalities or problem.inequalities)
        self.params: dict[str, Any] = {}
        self.shift_names: list[str] = []
        lagrangian, extra = f, []
        if self.constrained:
            rho = E.sym(_fresh("rho", taken), ())
            penalty = []
            for kind, (_text, c) in self.constraints():
                u = E.sym(_fresh("u", taken), c.shape)
                self.shift_names.append(u.name)
                inner = E.add(c, u)
                penalty.append(_squared(inner if kind == "eq" else E.apply(Op.RELU, inner)))
            lagrangian = E.add(f, E.scale(E.scale(E.const("1/2"), rho), E.add(*penalty)))
            self.rho_name = rho.name
            extra = [f] + [c for _, (_t, c) in self.constraints()]
        self.domain = _logdet_arguments([f, *extra], problem.variables)
        names = tuple(v.name for v in layout.variables)
        self.fn = _compiled(lagrangian, names, tuple(extra + self.domain), backend)
        self.data = dict(problem.data)
        self.count = len(names)
        self.nfev = 0
        self.worst = -math.inf
        self.last: tuple[np.ndarray, float, np.ndarray, float, list[Any]] | None = None
        self.good: tuple[float, np.ndarray] | None = None

    def constraints(self) -> Iterator[tuple[str, tuple[str, Expr]]]:
        for c in self.problem.equalities:
            yield "eq", c
        for c in self.problem.inequalities:
            yield "ineq", c

    def set_multipliers(self, rho: float, multipliers: Sequence[Any]) -> None:
        self.params = {self.rho_name: rho}
        for name, m in zip(self.shift_names, multipliers, strict=True):
            self.params[name] = m / rho

    def raw(self, z: np.ndarray) -> tuple[float, np.ndarray, float, list[Any]]:
        """``(L, ∇L in z, f, constraint values)`` at ``z``; ``||x||_1`` terms included; the
        value is NaN outside the domain of a ``logdet``."""
        self.nfev += 1
        out = self.fn(**self.data, **self.layout.unpack(z), **self.params)
        value = float(_numpy(out[0]))
        l1, g_z = self.layout.pull([_numpy(g) for g in out[1:1 + self.count]], z)
        rest = out[1 + self.count:]
        if self.domain and not all(_in_domain(_numpy(a)) for a in rest[-len(self.domain):]):
            value = math.nan
        if not self.constrained:
            return value + l1, g_z, value + l1, []
        n = len(self.shift_names)
        return value + l1, g_z, float(_numpy(rest[0])) + l1, [_numpy(c) for c in rest[1:1 + n]]

    def __call__(self, z: np.ndarray) -> tuple[float, np.ndarray]:
        with np.errstate(all="ignore"):
            try:
                value, g_z, f, cons = self.raw(z)
            except _DOMAIN_ERRORS:
                value, g_z, f, cons = math.nan, np.full(z.shape, math.nan), math.nan, []
        if f < UNBOUNDED_BELOW or f == -math.inf:
            self.last = (z.copy(), value, g_z, f, cons)
            raise _Stop("unbounded", f"unbounded: the objective fell to {f:.3g} and keeps "
                        "decreasing")
        if not (math.isfinite(value) and np.all(np.isfinite(g_z))):
            # outside the domain (log of a negative, logdet of an indefinite matrix): a value
            # above every one seen makes the line search step back
            if self.good is None:
                return math.inf, np.zeros_like(z)
            return self.worst + 1e3 * (1 + abs(self.worst)), self.good[1]
        self.worst = max(self.worst, value)
        self.good = (value, g_z)
        self.last = (z.copy(), value, g_z, f, cons)
        return value, g_z

    def violation(self, cons: Sequence[Any]) -> float:
        """The largest violation: ``|h|`` of the equalities, ``max(g, 0)`` of the rest."""
        worst = 0.0
        for (kind, _c), value in zip(self.constraints(), cons, strict=True):
            a = np.abs(value) if kind == "eq" else np.maximum(value, 0)
            worst = max(worst, float(np.max(a)))
        return worst

    def zero_multipliers(self) -> list[Any]:
        """Zero multipliers, one per constraint, shaped as the constraint's values."""
        return [0.0 if c.is_scalar else np.zeros(_value_shape(c))
                for _kind, (_text, c) in self.constraints()]

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.constraints()]


# ----------------------------------------------------------------------------- monitoring


class _Monitor:
    """History, progress lines and the user's callback, once per L-BFGS-B iteration."""

    def __init__(self, objective: Objective, sign: float, callback: Callable[..., Any] | None,
                 progress: bool | IO[str]):
        self.objective, self.sign, self.callback = objective, sign, callback
        self.stream: IO[str] | None = (sys.stderr if progress is True else
                                       None if progress is False else progress)
        self.history: dict[str, list[float]] = {"fun": [], "grad_norm": []}
        if objective.constrained:
            self.history["violation"] = []
        self.nit = 0
        self.f0 = math.inf
        if self.stream is not None:
            extra = "   violation" if objective.constrained else ""
            print(f"{'iter':>6}  {'objective':>16}  {'|grad|':>9}{extra}", file=self.stream)

    def state(self, z: np.ndarray) -> tuple[float, float, float | None]:
        last = self.objective.last
        if last is None or not np.array_equal(last[0], z):
            self.objective(z)
            last = self.objective.last
        assert last is not None
        _z, _value, g_z, f, cons = last
        violation = self.objective.violation(cons) if self.objective.constrained else None
        return self.sign * f, self.objective.layout.projected_gradient(z, g_z), violation

    def __call__(self, intermediate_result: Any) -> None:   # SciPy's callback signature
        z = np.asarray(intermediate_result.x)
        fun, pg, violation = self.state(z)
        stop = _diverging(z, self.sign * fun, self.f0)
        if stop is not None:
            raise stop
        self.nit += 1
        self.history["fun"].append(fun)
        self.history["grad_norm"].append(pg)
        if violation is not None:
            self.history["violation"].append(violation)
        if self.stream is not None and _shown(self.nit):
            self.line(self.nit, fun, pg, violation)
        if self.callback is not None:
            info = Iterate(self.nit, fun, pg, violation, self.objective.layout.unpack(z))
            if self.callback(info) is True:
                raise StopIteration

    def line(self, nit: int | str, fun: float, pg: float, violation: float | None) -> None:
        assert self.stream is not None
        extra = "" if violation is None else f"   {violation:9.2e}"
        print(f"{nit:>6}  {fun:16.9e}  {pg:9.2e}{extra}", file=self.stream, flush=True)

    def note(self, text: str) -> None:
        if self.stream is not None:
            print(f"        {text}", file=self.stream, flush=True)


def _shown(nit: int) -> bool:
    """Iterations 1-10, then every 10th to 100, every 100th to 1000, ..."""
    return nit <= 10 or nit % (10 ** int(math.log10(nit))) == 0


# ----------------------------------------------------------------------------- the solvers


@dataclass
class _Options:
    maxiter: int
    gtol: float
    ftol: float
    ctol: float
    seed: int


@functools.cache
def _scipy_optimize() -> Any:
    """``scipy.optimize``, imported on the first solve (it doubles ``import matdiff``)."""
    return importlib.import_module("scipy.optimize")


def _lbfgsb(objective: Objective, z0: np.ndarray, options: _Options, monitor: _Monitor,
            budget: int) -> tuple[np.ndarray, str, str]:
    """One bound-constrained solve from ``z0``: ``(z, status, message)``."""
    layout = objective.layout
    optimize = _scipy_optimize()
    box = optimize.Bounds(layout.lower, layout.upper) \
        if np.isfinite(layout.lower).any() or np.isfinite(layout.upper).any() else None
    try:
        res = optimize.minimize(
            objective, z0, jac=True, method="L-BFGS-B", bounds=box, callback=monitor,
            options={"maxiter": max(1, budget), "maxfun": 20 * max(1, budget) + 100,
                     "gtol": options.gtol, "ftol": options.ftol, "maxls": 40})
    except _Stop as stop:
        assert objective.last is not None
        return (objective.last[0] if stop.z is None else stop.z), stop.status, stop.message
    z = np.asarray(res.x, dtype=float)
    diverged = _diverging(z, float(res.fun) if np.isfinite(res.fun) else math.inf, monitor.f0)
    if diverged is not None:
        return z, diverged.status, diverged.message
    if objective.good is None:
        return z, "failed", ("failed: the objective is not finite at x0 (outside its domain: "
                             "log of a negative number, logdet of an indefinite matrix?); "
                             "give x0")
    code = int(res.get("status", 0 if res.success else 2))   # absent when bounds fix every x
    if code == 99:
        return z, "stopped", "stopped by the callback"
    if code == 0:
        why = "projected gradient" if "GRADIENT" in str(res.message).upper() else \
            "relative reduction of the objective"
        return z, "converged", f"converged ({why} within tolerance)"
    if code == 1:
        return z, "not converged", (f"not converged: the iteration limit ({options.maxiter}) "
                                    "was reached")
    value, g_z = objective(z)
    pg = layout.projected_gradient(z, g_z)
    if pg <= 1e3 * options.gtol:
        return z, "converged", ("converged (to the precision the line search could reach; "
                                f"projected gradient {pg:.1e})")
    return z, "not converged", (f"not converged: the line search failed (projected gradient "
                                f"{pg:.1e}); the objective may be non-smooth or inaccurate "
                                "near this point")


def _multipliers(objective: Objective, z: np.ndarray) -> tuple[float, float, list[Any]]:
    """``(f, violation, constraint values)`` at ``z``."""
    with np.errstate(all="ignore"):
        _value, _g, f, cons = objective.raw(z)
    return f, objective.violation(cons), cons


RHO_GROWTH = 10.0         # rho grows tenfold ...
RHO_DECREASE = 0.25       # ... unless the violation fell to a quarter of the best so far
RHO_MAX = 1e12            # beyond it the constraints are taken as infeasible
RHO0_MAX = 10.0


def _augmented(objective: Objective, z: np.ndarray, options: _Options, monitor: _Monitor
               ) -> tuple[np.ndarray, str, str, list[Any]]:
    """The augmented Lagrangian loop around L-BFGS-B; the multipliers it returns are the
    updated ones, for which the gradient of the Lagrangian vanishes at the solution."""
    kinds = objective.kinds()
    lam = objective.zero_multipliers()
    objective.set_multipliers(1.0, lam)
    f, violation, cons = _multipliers(objective, z)
    square = sum(float(np.sum(np.square(c if k == "eq" else np.maximum(c, 0))))
                 for k, c in zip(kinds, cons, strict=True))
    rho = min(RHO0_MAX, max(1e-6, 2 * max(1.0, abs(f)) / max(square, 1e-12)))
    best, inner = violation, options
    while True:
        objective.set_multipliers(rho, lam)
        z, status, message = _lbfgsb(objective, z, inner, monitor, options.maxiter - monitor.nit)
        if status not in ("converged", "not converged"):
            return z, status, message, lam
        f, violation, cons = _multipliers(objective, z)
        monitor.note(f"outer: rho {rho:.1e}, violation {violation:.2e}")
        lam = [lam_i + rho * c if k == "eq" else np.maximum(lam_i + rho * c, 0)
               for k, lam_i, c in zip(kinds, lam, cons, strict=True)]
        if violation <= options.ctol and status == "converged":
            return z, status, message, lam
        if monitor.nit >= options.maxiter:
            return z, "not converged", (f"not converged: the iteration limit "
                                        f"({options.maxiter}) was reached with the "
                                        f"constraints violated by {violation:.2e}"), lam
        if violation > RHO_DECREASE * best:
            rho *= RHO_GROWTH
        best = min(best, violation)
        if rho > RHO_MAX:
            return z, "infeasible", ("infeasible: the constraints cannot be met; the "
                                     f"smallest violation reached is {best:.2e}"), lam


# ----------------------------------------------------------------------------- affine equalities


AFFINE_MAX_ROWS = 2_000            # equality entries eliminated at most (a call per row) ...
AFFINE_MAX_ENTRIES = 4_000_000     # ... and entries of their dense Jacobian


@dataclass
class _Affine:
    """Eliminated equalities ``J z + c = 0``: ``basis`` (Q) an orthonormal basis of the rows
    of ``J``, ``left`` with ``(J Jᵀ)⁺ J = left Qᵀ``; ``residual`` the largest ``|J z₀ + c|``
    at the least-norm ``z₀`` (0 when the equalities are consistent)."""

    basis: np.ndarray
    left: np.ndarray
    shapes: list[tuple[int, ...]]
    residual: float


def _row_space(jac: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(Q, left)`` for ``_Affine``: by Cholesky of ``J Jᵀ = L Lᵀ`` (``Q = Jᵀ L⁻ᵀ``,
    ``left = L⁻ᵀ``) when it is well conditioned, else by the SVD ``J = U S Vᵀ`` truncated at
    its numerical rank (``Q = V``, ``left = U S⁻¹``)."""
    linalg = importlib.import_module("scipy.linalg")
    gram = jac @ jac.T
    try:
        chol = np.linalg.cholesky(gram)
        pivots = np.diag(chol) ** 2
        if pivots.min() > 1e-6 * pivots.max():     # cond(J) below about 1e3
            left = linalg.solve_triangular(chol, np.eye(len(chol)), lower=True).T
            return jac.T @ left, left
    except np.linalg.LinAlgError:
        pass
    u, s, vt = np.linalg.svd(jac, full_matrices=False)
    rank = int(np.sum(s > s[0] * max(jac.shape) * np.finfo(float).eps))
    return vt[:rank].T, u[:, :rank] / s[:rank]


@functools.lru_cache(maxsize=32)
def _transposed_jacobian(pairing: Expr, names: tuple[str, ...], constraints: tuple[Expr, ...]
                         ) -> Callable[..., Any] | None:
    """``compile([*grad <W, h>, *h])`` when no gradient contains a variable (each ``h`` is
    affine), else None; cached like ``_compiled``."""
    gradients = grad(pairing, list(names))
    assert isinstance(gradients, dict)
    if any(s in names for n in names for s in E.free_symbols(gradients[n])):
        return None
    return compile_exprs([*(gradients[n] for n in names), *constraints], "numpy")


def _jacobian_rows(objective: Objective, fn: Callable[..., Any], weights: list[str],
                   shapes: list[tuple[int, ...]]) -> tuple[np.ndarray, np.ndarray]:
    """``(J, c)`` of the affine equalities ``J z + c``: row by row ``Jᵀ e_k``, through
    ``Layout.pull`` (a symmetric variable by its upper triangle), and ``c`` at ``z = 0``."""
    layout = objective.layout
    count = len(layout.variables)
    zero = np.zeros(layout.size)
    args = {**objective.data, **layout.unpack(zero),
            **{w: np.zeros(shape) for w, shape in zip(weights, shapes, strict=True)}}
    out = fn(**args)
    c = np.concatenate([np.ravel(_numpy(h)) for h in out[count:]])
    rows: list[np.ndarray] = []
    for w, shape in zip(weights, shapes, strict=True):
        for index in np.ndindex(*shape):            # C order, as ``c`` is raveled
            unit = np.zeros(shape)
            unit[index] = 1.0
            grads = fn(**{**args, w: unit})[:count]
            rows.append(layout.pull([_numpy(g) for g in grads], zero)[1])
    return np.array(rows).reshape(len(rows), layout.size), c


def _eliminate(objective: Objective) -> _Affine | None:
    """Eliminate the constraints when all are affine equalities on unbounded, unsplit
    variables: ``Layout.affine`` set, the penalty switched off (``rho = 0``); else None."""
    problem, layout = objective.problem, objective.layout
    if (problem.inequalities or problem.infeasible or np.isfinite(layout.lower).any()
            or np.isfinite(layout.upper).any() or any(v.l1 for v in layout.variables)):
        return None
    shapes = [_value_shape(c) for _text, c in problem.equalities]
    count = sum(math.prod(shape) for shape in shapes)
    if count > AFFINE_MAX_ROWS or count * layout.size > AFFINE_MAX_ENTRIES:
        return None
    taken = {*problem.variables, *problem.data, *objective.shift_names, objective.rho_name}
    weights = [E.sym(_fresh("w", taken), c.shape) for _text, c in problem.equalities]
    pairing = E.add(*(E.total(E.hadamard(w, c))
                      for w, (_text, c) in zip(weights, problem.equalities, strict=True)))
    names = tuple(v.name for v in layout.variables)
    fn = _transposed_jacobian(pairing, names, tuple(c for _text, c in problem.equalities))
    if fn is None:
        return None
    with np.errstate(all="ignore"):
        try:
            jac, c = _jacobian_rows(objective, fn, [w.name for w in weights], shapes)
            if not (np.all(np.isfinite(jac)) and np.all(np.isfinite(c)) and np.any(jac)):
                return None
            basis, left = _row_space(jac)
        except _DOMAIN_ERRORS:
            return None
    z0 = -basis @ (left.T @ c)
    layout.affine = (basis, z0)
    objective.params = {objective.rho_name: 0.0, **dict(zip(
        objective.shift_names, objective.zero_multipliers(), strict=True))}
    return _Affine(basis, left, shapes, float(np.max(np.abs(jac @ z0 + c))))


def _restore(objective: Objective, z: np.ndarray, affine: _Affine) -> tuple[np.ndarray,
                                                                              list[Any]]:
    """The solution back in the layout's own ``z``, and the multipliers
    ``λ = -(J Jᵀ)⁺ J ∇f`` there (the ``λ`` of ``∇f + Jᵀλ = 0``)."""
    x = objective.layout.feasible(z)
    objective.layout.affine = None
    with np.errstate(all="ignore"):
        try:
            g = objective.raw(x)[1]
        except _DOMAIN_ERRORS:
            g = np.full(x.shape, math.nan)
    flat = -affine.left @ (affine.basis.T @ g)
    lam: list[Any] = []
    start = 0
    for shape in affine.shapes:
        size = math.prod(shape)
        block = flat[start:start + size]
        lam.append(float(block[0]) if not shape else block.reshape(shape))
        start += size
    return x, lam


# ----------------------------------------------------------------------------- the start


def _epigraph_start(problem: Problem, values: dict[str, Any]) -> None:
    """A new variable ``t`` of an epigraph starts at ``|E(x0)|`` (or ``relu``): feasible."""
    for v in problem.variables.values():
        if v.epigraph_of is None or v.name in values:
            continue
        kind, inner = v.epigraph_of
        env = {**problem.data, **values}
        e = np.asarray(evaluate(inner, **{n: env[n] for n in E.free_symbols(inner)}))
        t = np.abs(e) if kind == "l1" else np.maximum(e, 0)
        values[v.name] = t.reshape(Layout.user_shape(v)) if t.size > 1 else float(t.reshape(()))


def _identity_or_ones(v: Variable) -> Any:
    r, c = v.shape
    return np.eye(r) if r == c and r > 1 else np.ones((r, c))


def _given_start(problem: Problem, layout: Layout, x0: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in x0.items():
        if name not in problem.variables:
            raise MatdiffError(f"x0 names {name!r}, which is not a variable")
        v = problem.variables[name]
        a = np.asarray(value, dtype=float)
        if a.size != v.shape[0] * v.shape[1]:
            raise MatdiffError(f"x0[{name!r}] has shape {a.shape}; {name} is "
                               f"{Layout.user_shape(v) or 'a scalar'}")
        values[name] = a
    for v in problem.variables.values():
        if v.name not in values and v.epigraph_of is None:
            values[v.name] = np.zeros(v.shape)
    return values


def _start(problem: Problem, layout: Layout, objective: Objective, x0: Mapping[str, Any] | None,
           seed: int) -> tuple[np.ndarray, str]:
    """The starting point and how it was chosen."""
    plain = [v for v in layout.variables if v.epigraph_of is None]
    if x0 is not None:
        values = _given_start(problem, layout, x0)
        _epigraph_start(problem, values)
        return np.clip(layout.pack(values), layout.lower, layout.upper), "x0: given"
    values = {v.name: np.zeros(v.shape) for v in plain}
    how = "zeros"
    _epigraph_start(problem, values)
    z = np.clip(layout.pack(values), layout.lower, layout.upper)
    value, g_z = objective(z)
    if not math.isfinite(value):
        values = {v.name: _identity_or_ones(v) for v in plain}
        how = "the identity (ones for vectors and non-square matrices), as the objective " \
              "is not finite at zero"
        _epigraph_start(problem, values)
        z = np.clip(layout.pack(values), layout.lower, layout.upper)
        value, g_z = objective(z)
    if not math.isfinite(value):
        return z, f"x0: {how}"
    stuck = [v for v, (a, b) in zip(layout.variables, layout.spans, strict=True)
             if v in plain and b > a and not np.any(np.clip(z[a:b] - g_z[a:b], layout.lower[a:b],
                                                            layout.upper[a:b]) - z[a:b])]
    if stuck:
        rng = np.random.default_rng(seed)
        for v in stuck:
            r = 0.1 * rng.standard_normal(v.shape)
            values[v.name] = np.where(np.isfinite(v.lower) & ~np.isfinite(v.upper),
                                      np.maximum(v.lower, 0) + np.abs(r), r)
        z = np.clip(layout.pack(values), layout.lower, layout.upper)
        names = ", ".join(v.name for v in stuck)
        how += (f", and a small random point (seed {seed}) for {names}, where zero is a "
                "stationary point (of a product)")
    return z, f"x0: {how}"


# ----------------------------------------------------------------------------- entry points


@contextlib.contextmanager
def _backend(backend: str) -> Iterator[None]:
    """JAX computes in float64 for the solve (L-BFGS-B needs it), then as it was."""
    if backend != "jax":
        yield
        return
    try:
        jax = __import__("jax")
    except ImportError as err:
        raise MatdiffError(f"backend 'jax' needs the jax extra: pip install 'matdiff[jax]' "
                           f"({err})") from None
    with jax.enable_x64(True):
        yield


def solve_problem(problem: Problem, *, x0: Mapping[str, Any] | None = None,
                  backend: str = "numpy", callback: Callable[[Iterate], Any] | None = None,
                  progress: bool | IO[str] = False, maxiter: int = 10_000, tol: float = 1e-9,
                  ctol: float = 1e-8, seed: int = 0, sense: str = "min") -> MinimizeResult:
    """Solve a built ``Problem`` (see ``minimize``)."""
    layout = Layout(problem.variables)
    sign = -1.0 if sense == "max" else 1.0
    with _backend(backend):
        objective = Objective(problem, layout, backend)
        affine = _eliminate(objective) if objective.constrained else None
        if objective.constrained and affine is None:
            objective.set_multipliers(1.0, objective.zero_multipliers())
        z0, how = _start(problem, layout, objective, x0, seed)
        notes = [*problem.notes, how]
        monitor = _Monitor(objective, sign, callback, progress)
        if problem.infeasible:
            return _result(objective, monitor, z0, "infeasible", problem.infeasible, [], notes)
        if affine is not None:
            notes.append("the affine equality constraints are eliminated: L-BFGS-B runs on "
                         "the null space of their Jacobian")
            monitor.note(notes[-1])
            if affine.residual > ctol:
                z0, _lam = _restore(objective, z0, affine)
                return _result(objective, monitor, z0, "infeasible", (
                    "infeasible: the constraints cannot be met; the affine equalities are "
                    f"inconsistent (the smallest violation is {affine.residual:.2e})"), [],
                    notes)
        value, g_z = objective(z0)
        monitor.f0 = objective.last[3] if objective.last is not None else math.inf
        scale = max(1.0, layout.projected_gradient(z0, g_z)) if math.isfinite(value) else 1.0
        options = _Options(maxiter, tol * scale, min(1e-10, tol * 10), ctol, seed)
        if objective.constrained and affine is None:
            z, status, message, lam = _augmented(objective, z0, options, monitor)
        else:
            z, status, message = _lbfgsb(objective, z0, options, monitor, maxiter)
            z, lam = _restore(objective, z, affine) if affine is not None else (z, [])
        return _result(objective, monitor, z, status, message, lam, notes)


def _result(objective: Objective, monitor: _Monitor, z: np.ndarray, status: str, message: str,
            lam: list[Any], notes: list[str]) -> MinimizeResult:
    if objective.constrained:
        objective.set_multipliers(1.0, lam or objective.zero_multipliers())
    with np.errstate(all="ignore"):
        try:
            _value, g_z, f, cons = objective.raw(z)
        except _DOMAIN_ERRORS:
            g_z, f, cons = np.full(z.shape, math.nan), math.nan, []
    violation = objective.violation(cons) if objective.constrained and cons else None
    fun = monitor.sign * f
    if monitor.stream is not None:
        monitor.line("final", fun, objective.layout.projected_gradient(z, g_z), violation)
        monitor.note(message)
    texts = [text for _kind, (text, _c) in objective.constraints()]
    return MinimizeResult(
        x=objective.layout.unpack(z), fun=fun, success=status == "converged", status=status,
        message=message, nit=monitor.nit, nfev=objective.nfev,
        history={k: np.asarray(v) for k, v in monitor.history.items()}, violation=violation,
        multipliers=dict(zip(texts, lam, strict=False)), notes=notes)


def minimize(f: str | Expr, variables: str | Sequence[str], *,
             data: Mapping[str, Any] | None = None, x0: Mapping[str, Any] | None = None,
             bounds: Mapping[str, Any] | None = None, constraints: Iterable[str] = (),
             shapes: Mapping[str, Any] | None = None, backend: str = "numpy",
             callback: Callable[[Iterate], Any] | None = None, progress: bool | IO[str] = False,
             maxiter: int = 10_000, tol: float = 1e-9, ctol: float = 1e-8,
             seed: int = 0) -> MinimizeResult:
    """Minimise ``f`` over ``variables`` subject to ``bounds`` and ``constraints``.

    ``data`` gives every other symbol (vectors 1-D, scalars as numbers); the variables'
    shapes follow from the data, from ``x0`` or from ``shapes`` (``(5, 2)``, ``"vector"``,
    ``"symmetric"``). ``bounds={"x": (lower, upper)}`` takes scalars, arrays or None.
    ``constraints`` are ``lhs == rhs``, ``<=`` or ``>=``, elementwise. ``progress`` prints a
    line per iteration (to stderr, or a stream); ``callback(Iterate)`` returning True stops.

    >>> import numpy as np
    >>> A, b = np.array([[1.0, 0], [0, 1], [1, 1]]), np.array([1.0, -2, 0])
    >>> res = minimize("||A*x - b||^2", "x", data={"A": A, "b": b}, bounds={"x": (0, None)})
    >>> res.success, np.round(res.x["x"], 6), round(res.fun, 6)
    (True, array([0.5, 0. ]), 4.5)
    """
    if backend not in ("numpy", "jax", "torch"):
        raise MatdiffError(f"unknown backend {backend!r}: use numpy, jax or torch")
    names = [variables] if isinstance(variables, str) else list(variables)
    if not names:
        raise MatdiffError("name at least one variable")
    if isinstance(constraints, str):
        constraints = [constraints]
    parsed: list[Constraint] = [c if isinstance(c, Constraint) else parse_constraint(c)
                                for c in constraints]
    problem = build(f, names, data=data or {},
                    constraints=parsed, bounds=bounds, shapes=shapes, x0=x0)
    return solve_problem(problem, x0=x0, backend=backend, callback=callback,
                         progress=progress, maxiter=maxiter, tol=tol, ctol=ctol, seed=seed)
