"""md.minimize: bounds, each constraint form, several variables, reformulations, the
infeasible / unbounded / unconverged messages, x0, callback and progress; small problems with
known solutions (closed forms, scipy.optimize.nnls, the SVD)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import scipy.optimize

import matdiff as md
from matdiff.minimize import Iterate

RNG = np.random.default_rng(7)
A = RNG.standard_normal((12, 5))
B = RNG.standard_normal(12)
C5 = RNG.standard_normal(5)


def close(a: object, b: object, tol: float = 1e-6) -> bool:
    return bool(np.allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float),
                            atol=tol, rtol=tol))


# ----------------------------------------------------------------------------- bounds


def test_nnls_matches_scipy_nnls() -> None:
    res = md.minimize("||A*x - b||^2", "x", data={"A": A, "b": B}, bounds={"x": (0, None)})
    x_ref, r = scipy.optimize.nnls(A, B)
    assert res.success, res.message
    assert res.status == "converged"
    assert abs(res.fun - r**2) <= 1e-9 * r**2
    assert close(res.x["x"], x_ref, 1e-5)
    assert res.x["x"].shape == (5,)


def test_bounds_scalars_and_arrays_give_the_clipped_point() -> None:
    lo, hi = np.array([-0.5, 0, 0.1, -2, 0.3]), 0.4
    res = md.minimize("||x - c||^2", "x", data={"c": C5}, bounds={"x": (lo, hi)})
    assert res.success
    assert close(res.x["x"], np.clip(C5, lo, hi))


def test_bound_constraints_from_data_are_bounds() -> None:
    lo = np.full(5, -0.2)
    res = md.minimize("||x - c||^2", "x", data={"c": C5, "lo": lo},
                      constraints=["x >= lo", "1 >= x"])
    assert res.success
    assert res.violation is None                  # bounds only: no augmented Lagrangian
    assert close(res.x["x"], np.clip(C5, -0.2, 1))


def test_equality_bound_fixes_a_variable() -> None:
    res = md.minimize("||x - c||^2 + (sum(x))^2", "x", data={"c": C5}, constraints=["x == 1"])
    assert close(res.x["x"], np.ones(5))


# ----------------------------------------------------------------------------- constraints


def test_scalar_equality() -> None:
    res = md.minimize("||x - c||^2", "x", data={"c": C5}, constraints=["sum(x) == 1"])
    assert res.success, res.message
    assert close(res.x["x"], C5 - (C5.sum() - 1) / 5)
    assert res.violation is not None and res.violation <= 1e-7
    assert len(res.history["violation"]) == res.nit


def test_vector_equality_gives_the_least_norm_solution() -> None:
    M = RNG.standard_normal((3, 6))
    b = RNG.standard_normal(3)
    res = md.minimize("||x||^2", "x", data={"M": M, "b": b}, constraints=["M*x == b"])
    assert res.success, res.message
    assert close(res.x["x"], np.linalg.pinv(M) @ b, 1e-5)


def test_matrix_equality_is_the_projection() -> None:
    M, P, Q = RNG.standard_normal((5, 4)), RNG.standard_normal((2, 5)), RNG.standard_normal((2, 4))
    res = md.minimize("||X - M||_F^2", "X", data={"M": M, "P": P, "Q": Q},
                      constraints=["P*X == Q"])
    X = M - P.T @ np.linalg.solve(P @ P.T, P @ M - Q)
    assert res.success, res.message
    assert res.x["X"].shape == (5, 4)
    assert close(res.x["X"], X, 1e-5)
    assert res.multipliers["P*X == Q"].shape == (2, 4)


def kkt(hess: np.ndarray, lin: np.ndarray, jac: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """The minimiser of ``z'Hz/2 + lin'z`` on ``J z = rhs``, from the KKT system."""
    n, m = hess.shape[0], jac.shape[0]
    K = np.block([[hess, jac.T], [jac, np.zeros((m, m))]])
    return np.linalg.solve(K, np.concatenate([-lin, rhs]))[:n]


def eliminated(res: md.MinimizeResult) -> bool:
    return any("eliminated" in note for note in res.notes)


@pytest.mark.parametrize("seed", range(4))
def test_affine_equalities_of_several_variables_are_eliminated(seed: int) -> None:
    """min ||A x - b||² + ||y - c||² st P x + Q y == d, 1'x == s: against the KKT system."""
    rng = np.random.default_rng(seed)
    n, k, m = 6, 4, 3
    A, b, c = rng.standard_normal((9, n)), rng.standard_normal(9), rng.standard_normal(k)
    P, Q, d = rng.standard_normal((m, n)), rng.standard_normal((m, k)), rng.standard_normal(m)
    res = md.minimize("||A*x - b||^2 + ||y - c||^2", ["x", "y"],
                      data={"A": A, "b": b, "c": c, "P": P, "Q": Q, "d": d},
                      constraints=["P*x + Q*y == d", "sum(x) == 0.5"])
    hess = 2 * np.block([[A.T @ A, np.zeros((n, k))], [np.zeros((k, n)), np.eye(k)]])
    jac = np.block([[P, Q], [np.ones((1, n)), np.zeros((1, k))]])
    z = kkt(hess, -2 * np.concatenate([A.T @ b, c]), jac, np.append(d, 0.5))
    f = float(np.sum((A @ z[:n] - b) ** 2) + np.sum((z[n:] - c) ** 2))
    assert res.success and eliminated(res), res.message
    assert abs(res.fun - f) <= 1e-10 * f                  # ftol's precision: x to about 1e-5
    assert close(np.concatenate([res.x["x"], res.x["y"]]), z, 1e-4)
    assert res.violation is not None and res.violation <= 1e-9
    # the multipliers: grad f + J' lam = 0
    lam = np.append(res.multipliers["P*x + Q*y == d"], res.multipliers["sum(x) == 0.5"])
    assert close(hess @ z - 2 * np.concatenate([A.T @ b, c]) + jac.T @ lam, 0, 1e-4)


def test_dependent_affine_equalities_are_eliminated_by_their_rank() -> None:
    M = RNG.standard_normal((2, 5))
    d = RNG.standard_normal(2)
    twice = np.vstack([M, M.sum(axis=0)])                   # a third row, the sum of two
    res = md.minimize("||x - c||^2", "x", data={"c": C5, "M": twice, "d": np.append(d, d.sum())},
                      constraints=["M*x == d"])
    x = C5 - np.linalg.pinv(M) @ (M @ C5 - d)
    assert res.success and eliminated(res), res.message
    assert close(res.x["x"], x, 1e-8)


def test_inconsistent_affine_equalities_are_infeasible() -> None:
    M = np.vstack([np.ones(5), np.ones(5)])
    res = md.minimize("||x - c||^2", "x", data={"c": C5, "M": M, "d": np.array([1.0, 2.0])},
                      constraints=["M*x == d"])
    assert res.status == "infeasible" and not res.success
    assert "cannot be met" in res.message and "inconsistent" in res.message


def test_affine_equality_on_a_symmetric_variable() -> None:
    """min ||S - C||² over symmetric S with tr(S) == 1 and S*a == 0: the KKT system on the
    upper triangle, and S stays symmetric."""
    n = 4
    C = RNG.standard_normal((n, n))
    a = RNG.standard_normal(n)
    res = md.minimize("||S - C||_F^2", "S", data={"C": C, "a": a},
                      shapes={"S": "symmetric"}, constraints=["tr(S) == 1", "S*a == 0"])
    iu = np.triu_indices(n)
    weight = np.where(iu[0] == iu[1], 1.0, 2.0)             # ||S||² in the triangle's entries
    Cs = (C + C.T) / 2
    unit = [np.zeros((n, n)) for _ in iu[0]]
    for E, i, j in zip(unit, *iu, strict=True):
        E[i, j] = E[j, i] = 1.0
    jac = np.array([[np.trace(E)] + list(E @ a) for E in unit]).T
    z = kkt(2 * np.diag(weight), -2 * weight * Cs[iu], jac, np.append(1.0, np.zeros(n)))
    assert res.success and eliminated(res), res.message
    S = res.x["S"]
    assert np.array_equal(S, S.T)
    assert close(S[iu], z, 1e-6)
    assert abs(np.trace(S) - 1) <= 1e-9 and np.abs(S @ a).max() <= 1e-9


def test_unbounded_on_an_affine_set() -> None:
    res = md.minimize("c'*x", "x", data={"c": C5}, constraints=["sum(x) == 1"])
    assert res.status == "unbounded" and not res.success


def test_curved_or_bounded_equalities_keep_the_outer_loop() -> None:
    curved = md.minimize("||x - c||^2", "x", data={"c": C5}, constraints=["x'*x == 1"])
    bounded = md.minimize("||x - c||^2", "x", data={"c": C5},
                          constraints=["sum(x) == 1", "x >= 0"])
    assert curved.success and bounded.success
    assert not eliminated(curved) and not eliminated(bounded)


@pytest.mark.parametrize("con", ["sum(x) <= 1", "1 >= sum(x)", "-sum(x) >= -1"])
def test_scalar_inequality_in_each_form(con: str) -> None:
    c = np.abs(C5) + 0.5                            # sum(c) > 1: the constraint is active
    res = md.minimize("||x - c||^2", "x", data={"c": c}, constraints=[con])
    assert res.success, res.message
    assert close(res.x["x"], c - (c.sum() - 1) / 5, 1e-5)


def test_inactive_inequality_leaves_the_unconstrained_solution() -> None:
    res = md.minimize("||x - c||^2", "x", data={"c": C5}, constraints=["sum(x) <= 100"])
    assert res.success
    assert close(res.x["x"], C5, 1e-6)


def test_elementwise_vector_inequality() -> None:
    res = md.minimize("||x - c||^2", "x", data={"c": C5}, constraints=["2*x <= 0.5"])
    assert res.success, res.message
    assert close(res.x["x"], np.minimum(C5, 0.25), 1e-5)


def test_elementwise_matrix_inequality() -> None:
    M, W = RNG.standard_normal((3, 4)), RNG.uniform(0.5, 2, (3, 4))
    res = md.minimize("||X - M||_F^2", "X", data={"M": M, "W": W}, constraints=["X .* W >= 0.2"])
    assert res.success, res.message
    assert close(res.x["X"], np.maximum(M, 0.2 / W), 1e-5)


def test_simplex_constraints_with_a_bound_and_an_equality() -> None:
    res = md.minimize("||A*x - b||^2", "x", data={"A": A, "b": B},
                      constraints=["sum(x) == 1", "x >= 0"])
    ref = scipy.optimize.minimize(
        lambda x: (float(np.sum((A @ x - B) ** 2)), 2 * A.T @ (A @ x - B)), np.full(5, 0.2),
        jac=True, method="SLSQP", bounds=[(0, None)] * 5,
        constraints=[{"type": "eq", "fun": lambda x: np.sum(x) - 1}],
        options={"ftol": 1e-14, "maxiter": 500})
    assert res.success, res.message
    assert abs(res.fun - ref.fun) <= 1e-7 * abs(ref.fun)
    assert res.x["x"].min() >= 0 and abs(res.x["x"].sum() - 1) <= 1e-7


# ----------------------------------------------------------------------------- several variables


def test_low_rank_factorisation_reaches_the_svd_value() -> None:
    M = RNG.standard_normal((6, 5))
    res = md.minimize("||M - U*V'||_F^2", ["U", "V"], data={"M": M},
                      shapes={"U": (6, 2), "V": (5, 2)})
    s = np.linalg.svd(M, compute_uv=False)
    assert res.success, res.message
    assert abs(res.fun - np.sum(s[2:] ** 2)) <= 1e-7 * np.sum(s[2:] ** 2)
    assert any("stationary point" in n for n in res.notes)      # zero is a saddle of U*V'
    assert res.x["U"].shape == (6, 2) and res.x["V"].shape == (5, 2)


def test_variables_of_each_kind_with_their_own_bounds() -> None:
    Bm = RNG.standard_normal((3, 3))
    res = md.minimize("||x - c||^2 + ||Y - B||_F^2 + (s - 2)^2", ["x", "Y", "s"],
                      data={"c": C5, "B": Bm}, bounds={"x": (0, None), "Y": (None, 0),
                                                       "s": (None, 1)},
                      shapes={"s": "scalar"})
    assert res.success, res.message
    assert close(res.x["x"], np.maximum(C5, 0))
    assert close(res.x["Y"], np.minimum(Bm, 0))
    assert isinstance(res.x["s"], float) and close(res.x["s"], 1.0)


def test_x0_sets_the_shapes_and_the_start() -> None:
    M = np.abs(RNG.standard_normal((4, 3)))
    res = md.minimize("||M - W*H||_F^2", ["W", "H"], data={"M": M},
                      x0={"W": np.full((4, 2), 0.5), "H": np.full((2, 3), 0.5)},
                      bounds={"W": (0, None), "H": (0, None)})
    assert res.success, res.message
    assert "x0: given" in res.notes
    assert res.x["W"].min() >= 0 and res.x["H"].min() >= 0
    assert res.fun <= np.sum(M**2)


def test_symmetric_variable_stays_symmetric_covariance_mle() -> None:
    Y = RNG.standard_normal((40, 4))
    C = np.cov(Y.T)
    res = md.minimize("-logdet(S) + tr(S*C)", "S", data={"C": C}, shapes={"S": "symmetric"})
    assert res.success, res.message
    S = res.x["S"]
    assert np.array_equal(S, S.T)
    assert close(S, np.linalg.inv(C), 1e-4)
    assert abs(res.fun - (np.linalg.slogdet(C)[1] + 4)) <= 1e-8
    assert any("identity" in n for n in res.notes)         # not finite at zero


# ----------------------------------------------------------------------------- reformulations


def test_lasso_through_the_split_is_soft_thresholding() -> None:
    lam = 0.6
    res = md.minimize("||x - c||^2 + lam*norm1(x)", "x", data={"c": C5, "lam": lam})
    assert res.success, res.message
    assert close(res.x["x"], np.sign(C5) * np.maximum(np.abs(C5) - lam / 2, 0), 1e-6)
    assert any("split x = x+ - x-" in n for n in res.notes)


def test_split_with_bounds() -> None:
    res = md.minimize("||x - c||^2 + ||x||_1", "x", data={"c": C5}, bounds={"x": (-0.1, 0.2)})
    want = np.clip(np.sign(C5) * np.maximum(np.abs(C5) - 0.5, 0), -0.1, 0.2)
    assert close(res.x["x"], want, 1e-6)


def test_least_absolute_deviation_is_the_median() -> None:
    b = np.array([3.0, -1.0, 7.0, 2.0, 10.0])
    # mu is declared a scalar: a name that is a scalar only by default is not broadcast
    res = md.minimize("||b - mu||_1", "mu", data={"b": b}, shapes={"mu": ()})
    assert res.success, res.message
    assert abs(res.x["mu"] - 3.0) <= 1e-5
    assert any("epigraph" in n for n in res.notes)


def test_sum_of_relu_through_the_epigraph() -> None:
    b = np.array([0.0, 1.0, 2.0, 3.0])
    res = md.minimize("0.5*mu^2 + sum(relu(b - mu))", "mu", data={"b": b})
    grid = np.linspace(-1, 4, 50001)
    values = 0.5 * grid**2 + np.maximum(b[:, None] - grid, 0).sum(axis=0)
    assert res.success, res.message
    assert abs(res.fun - values.min()) <= 1e-6


@pytest.mark.parametrize("f, words", [
    ("exp(norm1(x)) + c'*x", "reformulates ||E||_1"),
    ("||x - c||^2 - norm1(x)", "negative weight"),
    ("sum(abs(x)) * sum(x - c)", "not differentiable"),
    ("||x - c||^2 + sum(sign(x))", "piecewise constant"),
])
def test_non_smooth_terms_without_a_reformulation_say_so(f: str, words: str) -> None:
    with pytest.raises(md.MatdiffError) as err:
        md.minimize(f, "x", data={"c": C5})
    assert words in err.value.message


def test_squared_abs_is_smooth_enough() -> None:
    res = md.minimize("sum(abs(x - c).^2)", "x", data={"c": C5})
    assert res.success and close(res.x["x"], C5, 1e-5)


# ----------------------------------------------------------------------------- failures


def test_contradictory_bounds_are_infeasible() -> None:
    res = md.minimize("||x - c||^2", "x", data={"c": C5}, bounds={"x": (1, 0)})
    assert not res.success
    assert res.status == "infeasible" and res.message.startswith("infeasible")


def test_constraints_that_cannot_hold_are_infeasible() -> None:
    res = md.minimize("||x - c||^2", "x", data={"c": C5},
                      constraints=["sum(x) == 1", "sum(x) == 2"])
    assert not res.success
    assert res.status == "infeasible" and "cannot be met" in res.message


def test_equality_against_bounds_is_infeasible() -> None:
    res = md.minimize("||x - c||^2", "x", data={"c": C5},
                      constraints=["sum(x) == 1", "x <= -1"])
    assert not res.success and res.status == "infeasible"


@pytest.mark.parametrize("f", ["sum(x - c)", "-||x - c||^2", "c'*x - 1"])
def test_unbounded(f: str) -> None:
    res = md.minimize(f, "x", data={"c": C5})
    assert not res.success
    assert res.status == "unbounded" and res.message.startswith("unbounded")


def test_iteration_limit_is_not_converged() -> None:
    res = md.minimize("||A*x - b||^2", "x", data={"A": A, "b": B}, maxiter=2)
    assert not res.success
    assert res.status == "not converged" and "iteration limit" in res.message
    assert res.nit == 2


# ----------------------------------------------------------------------------- callback, progress


def test_callback_sees_every_iteration_and_can_stop() -> None:
    seen: list[Iterate] = []
    res = md.minimize("||A*x - b||^2", "x", data={"A": A, "b": B}, callback=seen.append)
    assert len(seen) == res.nit == len(res.history["fun"])
    assert [s.nit for s in seen] == list(range(1, res.nit + 1))
    assert np.allclose([s.fun for s in seen], res.history["fun"])
    assert seen[-1].x["x"].shape == (5,)
    stopped = md.minimize("||A*x - b||^2", "x", data={"A": A, "b": B},
                          callback=lambda it: it.nit >= 2)
    assert not stopped.success and stopped.status == "stopped" and stopped.nit == 2


def test_progress_display() -> None:
    out = io.StringIO()
    res = md.minimize("||x - c||^2", "x", data={"c": C5}, constraints=["x'*x == 1"],
                      progress=out)
    text = out.getvalue()
    assert "objective" in text and "violation" in text and "final" in text
    assert "outer: rho" in text                     # a curved equality: the outer loop
    assert res.success and close(res.x["x"], C5 / np.linalg.norm(C5), 1e-5)
    out = io.StringIO()
    res = md.minimize("||x - c||^2", "x", data={"c": C5}, constraints=["sum(x) == 1"],
                      progress=out)
    assert "eliminated" in out.getvalue() and "outer: rho" not in out.getvalue()
    assert res.success


def test_history_is_monotone_without_constraints() -> None:
    res = md.minimize("||A*x - b||^2", "x", data={"A": A, "b": B})
    assert set(res.history) == {"fun", "grad_norm"}
    assert np.all(np.diff(res.history["fun"]) <= 1e-12)
    assert res.history["grad_norm"][-1] < res.history["grad_norm"][0]


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_backends_give_the_numpy_solution(backend: str) -> None:
    res = md.minimize("||A*x - b||^2", "x", data={"A": A, "b": B}, bounds={"x": (0, None)},
                      constraints=["sum(x) <= 1"], backend=backend)
    ref = md.minimize("||A*x - b||^2", "x", data={"A": A, "b": B}, bounds={"x": (0, None)},
                      constraints=["sum(x) <= 1"])
    assert res.success, res.message
    assert close(res.x["x"], ref.x["x"], 1e-6)


def test_objective_as_an_expr_and_in_latex() -> None:
    f = md.parse("||A*x - b||^2", {"A": (12, 5), "b": (12,)})
    res = md.minimize(f, "x", data={"A": A, "b": B})
    tex = md.minimize(r"\left\| A x - b \right\|^2", "x", data={"A": A, "b": B})
    assert close(res.x["x"], np.linalg.lstsq(A, B, rcond=None)[0])
    assert close(tex.x["x"], res.x["x"])


# ----------------------------------------------------------------------------- user errors


@pytest.mark.parametrize("kwargs, words", [
    ({"f": "||A*x - b||^2", "variables": "x", "data": {"A": A}}, "b is neither"),
    ({"f": "A*x", "variables": "x", "data": {"A": A}}, "must be a scalar"),
    ({"f": "||x||^2", "variables": ["x", "y"], "data": {}, "shapes": {"x": (3,)}},
     "occurs in neither"),
    ({"f": "||M - U*V'||_F^2", "variables": ["U", "V"], "data": {"M": np.ones((3, 2))}},
     "not settled"),
    ({"f": "||x||^2", "variables": "x", "data": {}, "bounds": {"y": (0, 1)},
      "shapes": {"x": (3,)}},
     "not a variable"),
    ({"f": "||x - c||^2", "variables": "x", "data": {"c": C5}, "x0": {"x": np.ones(3)}},
     "the left side is 3×1 but the right side is 5×1"),
    ({"f": "||x - c||^2", "variables": "x", "data": {"c": C5}, "backend": "cuda"},
     "unknown backend"),
    ({"f": "||x - c||^2", "variables": "c", "data": {"c": C5}}, "both a variable and data"),
    ({"f": "x'*K*x", "variables": "x", "data": {"K": A[:5]}, "shapes": {"K": "sym"}},
     "declared symmetric, but its data are not"),
])
def test_user_errors(kwargs: dict[str, object], words: str) -> None:
    f = kwargs.pop("f")
    variables = kwargs.pop("variables")
    with pytest.raises(md.MatdiffError) as err:
        md.minimize(f, variables, **kwargs)  # type: ignore[arg-type]
    assert words in err.value.message


def test_an_unknown_symbol_is_shown_with_a_caret() -> None:
    with pytest.raises(md.MatdiffError) as err:
        md.minimize("||A*x - b||^2", "x", data={"A": A})
    assert err.value.pos == 8
    assert err.value.render().splitlines()[-1] == "          ^"


@pytest.mark.parametrize("con, pos, words", [
    ("x == ones(3, 3)", 2, "different shapes"),
    ("sum(c) >= 1", 7, "no variable"),
    ("x >= 0 <= 1", 7, "one comparison per constraint"),
    ("sum(x) + y == 1", 9, "neither a variable"),
    ("sum(x)", 5, "ends too early"),
    ("x >=* 1", 4, "unexpected"),
])
def test_constraint_errors_point_into_the_constraint(con: str, pos: int, words: str) -> None:
    with pytest.raises(md.MatdiffError) as err:
        md.minimize("||x - c||^2", "x", data={"c": C5}, constraints=[con])
    assert words in err.value.message
    assert err.value.pos == pos and err.value.text == con


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_backends_eliminate_affine_equalities(backend: str) -> None:
    M, P, Q = RNG.standard_normal((5, 4)), RNG.standard_normal((2, 5)), RNG.standard_normal((2, 4))
    res = md.minimize("||X - M||_F^2", "X", data={"M": M, "P": P, "Q": Q},
                      constraints=["P*X == Q"], backend=backend)
    assert res.success and eliminated(res), res.message
    assert close(res.x["X"], M - P.T @ np.linalg.solve(P @ P.T, P @ M - Q), 1e-8)
