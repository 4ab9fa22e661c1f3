"""The simplifier: required forms, every rule keeps the value (hypothesis over random inputs),
the battery's results are the clean forms, random expressions keep their value."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import matdiff as md
from matdiff import expr as E
from matdiff.check import evaluate, random_inputs, rel_error
from matdiff.expr import Op

S = importlib.import_module("matdiff.simplify")  # the module (md.simplify is the function)

SEED = "||Z - I .* (R'*A + Q'*B)||_F^2 + ||W - [R, -Q; Q, R]*P*S'||_F^2"

n, m = "n", "m"
A, B, C, D = (E.sym(s, (n, n)) for s in "ABCD")
X, Y, Z = (E.sym(s, (n, n)) for s in "XYZ")
P, Q = E.sym("P", (m, m)), E.sym("Q", (m, m))
U = E.sym("U", (n, m))
x, y, v = (E.sym(s, (n,)) for s in "xyv")
a, b = E.sym("a"), E.sym("b")
I_n = E.eye(n)


def same_value(e1: md.Expr, e2: md.Expr, seed: int) -> float:
    env, sizes = random_inputs([e1, e2], seed=seed)
    with np.errstate(all="ignore"):
        return rel_error(evaluate(e1, env, sizes), evaluate(e2, env, sizes))


# ----------------------------------------------------------------------------- required forms


@pytest.mark.parametrize(("text", "wrt", "expected"), [
    pytest.param("x'*A*x", "x", "(A + A')*x", id="quadratic"),
    pytest.param("||A*X*B - C||_F^2", "X", "2*A'*(A*X*B - C)*B'", id="axb"),
    pytest.param("tr(X'*A*X)", "X", "(A + A')*X", id="trace-quadratic"),
    pytest.param("||X'*X - I||_F^2", "X", "4*X*(X'*X - I)", id="orthogonality"),
    pytest.param("tr(X*X*X)", "X", "3*(X^2)'", id="trace-cube"),
    pytest.param("tr(inv(X'*X))", "X", "-2*X*inv(X'*X)^2", id="trace-inverse-gram"),
    pytest.param("sum(log(1 + exp(-y .* (X*w))))", "w", "-X'*(sigmoid(-X*w .* y) .* y)",
                 id="logistic-sigmoid"),
    pytest.param("0.5*log(det(S)) + 0.5*(x-m)'*inv(S)*(x-m)", "S",
                 "0.5*inv(S)'*(I - (x - m)*(x - m)'*inv(S)')", id="gaussian-S"),
    pytest.param("(x'*A*x)/(x'*x)", "x", "(A + A')*x/(x'*x) - 2*x'*A*x*x/(x'*x)^2",
                 id="rayleigh-fraction"),
    pytest.param("||W2*tanh(W1*x) - y||_2^2", "W2", "2*(W2*tanh(W1*x) - y)*tanh(W1*x)'",
                 id="two-layer-W2"),
    pytest.param("tr(Y' * kron(eye(2), X))", "X", "Y[0:m, 0:n] + Y[m:2*m, n:2*n]",
                 id="kron-I2-diagonal-blocks"),
    pytest.param("log(abs(det(X)))", "X", "inv(X)'", id="cookbook-57"),
    pytest.param("b'*X'*X*c", "X", "X*(b*c' + c*b')", id="cookbook-82"),
    pytest.param("tr((A*X*B + C)*(A*X*B + C)')", "X", "2*A'*(A*X*B + C)*B'", id="cookbook-119"),
])
def test_required_and_clean_forms(text: str, wrt: str, expected: str) -> None:
    f = md.parse(text)
    assert str(md.grad(f, wrt)) == expected
    assert md.check(f, wrt).ok


def test_seed_hadamard_loses_inner_mask_and_transpose() -> None:
    g = md.grad(md.parse(SEED), ["R", "Q"])
    for name in ("R", "Q"):
        text = str(g[name])
        assert text.count("I .*") == 1
        assert "Z'" not in text and "(A*R" not in text
        assert "I .* (Q'*B + R'*A - Z)" in text


def test_kron_identity_gradient_has_no_commutation_or_unvec() -> None:
    g = md.grad(md.parse("tr(Y' * kron(eye(p), X))"), "X")
    text = str(g)
    assert "unvec" not in text and "K(" not in text and "vec(" not in text
    assert md.to_unicode(g) == "(𝟏_pᵀ ⊗ I_m)(Y ⊙ (I_p ⊗ 𝟏_m×n))(𝟏_p ⊗ I_n)"


@pytest.mark.parametrize("text", ["||kron(A, X) - C||_F^2", "||kron(X, B) - C||_F^2",
                                  "||kron(X, eye(3)) - C||_F^2", "tr(Y' * kron(eye(3), X))"])
def test_kron_gradients_are_verified(text: str) -> None:
    f = md.parse(text)
    assert md.check(f, "X").ok


# ----------------------------------------------------------------------------- every rule

s_tr = E.trace(Y)  # a symbolic scalar
RULE_EXAMPLES: dict[str, list[md.Expr]] = {
    "transpose-to-leaves": [E.T(A @ B), E.T(A + B.T), E.T(E.hadamard(A, B)), E.T(E.kron(A, U)),
                            E.T(E.block([[A, U]])), E.T(E.inv(A @ B)),
                            E.T(E.apply(Op.EXP, A.T)), E.T(E.matpow(E.inv(A @ A.T), 2)),
                            E.Expr(Op.TRANSPOSE, (E.inv(E.sym("S", (n, n), "symmetric")),))],
    "transposed-sum": [E.add(x.T, E.neg(v.T)), E.add(A.T, E.scale(E.const(2), B.T))],
    "merge-scalars": [E.scale(a, E.scale(b, E.scale(a, X))),
                      E.scale(E.norm(X), E.scale(E.hpow(E.norm(X), -1), Y)),
                      E.hpow(E.scale(a, E.hpow(a, 2)), 2),
                      E.scale(E.det(X), E.scale(E.apply(Op.SIGN, E.det(X)),  # s sign(s)/|s| = 1
                                                E.scale(E.hpow(E.apply(Op.ABS, E.det(X)), -1),
                                                        Y)))],
    "flip-difference": [E.scale(E.const(-2), A @ (Z - X - Y)),
                        E.scale(E.const(-1), E.hadamard(I_n, Z - X - Y))],
    "collect-terms": [X + 2 * X + Y, X - X + Y, E.add(X, E.neg(E.add(X, Y)), Z),
                      E.neg(X) - Y],
    "add-blocks": [E.block([[A, U]]) + E.block([[B, U]])],
    "factor-common": [A @ X + A @ Y, X @ A + Y @ A + Z],
    "factor-scalar": [2 * A + 2 * B + 2 * C, X / 2 + Y / 2, A @ (2 * X + 2 * Y) @ B,
                      E.scale(E.hpow(a, -1), X + Y) + E.scale(E.hpow(a, -2), Z)],
    "scalar-factor-out": [E.Expr(Op.MATMUL, (x, s_tr, v.T)),  # (the constructor does it too)
                          E.Expr(Op.MATMUL, (x.T, A, x, E.norm(X)))],
    "mixed-product": [E.kron(A, P) @ E.kron(B, Q), E.kron(B.T, A) @ E.vec(X),
                      E.block([[A, U]]) @ E.block([[B], [U.T]])],
    "repeated-factor": [X @ X @ Y, E.matmul(X, E.matpow(X, 2))],
    "distribute-identity": [E.matmul(A + E.scale(s_tr, I_n), B)],
    "power-transpose": [E.matpow(X.T, 3)],
    "kron-identities": [E.Expr(Op.KRON, (I_n, E.eye(m))),
                        E.Expr(Op.KRON, (E.ones((n, 1)), E.ones((m, 1))))],
    "hadamard-powers": [E.hadamard(X, X, Y), E.hadamard(X, E.hdiv(E.ones((n, n)), Y)),
                        E.hadamard(I_n, I_n, X)],
    "diagonal-mask": [E.hadamard(I_n, X.T), E.hadamard(I_n, X + E.hadamard(I_n, Y)),
                      E.hadamard(E.diagm(v), X.T), E.hadamard(I_n, E.T(E.hadamard(I_n, X)))],
    "diagonal-part": [E.diagm(E.diag(X)), E.diagm(E.diag(X.T @ A))],
    "hadamard-division": [E.hdiv(E.hdiv(A, B), C)],
    "sigmoid": [E.hdiv(E.apply(Op.EXP, X), E.apply(Op.EXP, X) + E.ones((n, n))),
                E.hdiv(E.hadamard(E.apply(Op.EXP, X), Y),
                       E.apply(Op.EXP, X) + E.ones((n, n)))],
    "log-det": [E.apply(Op.LOG, E.det(X))],
    "trace-linear-cyclic": [E.trace(A + B), E.trace(E.scale(a, A)), E.trace(E.kron(A, P)),
                            E.trace(E.matmul(B, C, A)), E.trace(x @ y.T)],
    "det-of-product": [E.det(A @ B), E.det(A.T)],
    "logdet-of-product": [E.logdet(A @ B @ C), E.logdet(A.T)],
    "inverse-of-product": [E.inv(A @ B), E.inv(E.scale(E.const(2), A))],
    "sum-scale": [E.total(E.scale(a, X))],
}
CASES = [pytest.param(name, i, id=f"{name}-{i}") for name, exs in RULE_EXAMPLES.items()
         for i in range(len(exs))]


def test_every_rule_has_an_example() -> None:
    names = {name for rules in S.RULES.values() for name, _ in rules}
    assert names == set(RULE_EXAMPLES)


@pytest.mark.parametrize(("name", "i"), CASES)
def test_rule_fires_and_keeps_the_value(name: str, i: int) -> None:
    e = RULE_EXAMPLES[name][i]
    trace: list[str] = []
    out = S.simplify(e, trace)
    assert name in trace, f"{name} did not fire on {e}: {trace}"
    assert out.shape == e.shape
    for seed in range(3):
        assert same_value(e, out, seed) < 1e-9, f"{e} -> {out}"


@pytest.mark.parametrize(("name", "i"), CASES)
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10**6))
def test_rule_keeps_the_value_on_random_inputs(name: str, i: int, seed: int) -> None:
    e = RULE_EXAMPLES[name][i]
    assert same_value(e, S.simplify(e), seed) < 1e-8


def test_simplify_is_idempotent_on_the_battery() -> None:
    for text, wrt in [(SEED, ["R", "Q"]), ("(x'*A*x)/(x'*x)", ["x"]),
                      ("||kron(A, X) - C||_F^2", ["X"])]:
        for g in md.grad(md.parse(text), wrt).values():
            assert md.simplify(g) is g


def test_cost_counts_nodes_and_negation_is_free() -> None:
    assert S.cost(X + X.T) == 4
    assert S.cost(-X) == S.cost(X) == 1


# ----------------------------------------------------------------------------- random expressions

LEAVES = [A, B, X, I_n, X.T]


def _combine(draw_pair: tuple[md.Expr, md.Expr, int]) -> md.Expr:
    p, q, k = draw_pair
    ops = [lambda: p + q, lambda: p - q, lambda: p @ q, lambda: E.T(p @ q),
           lambda: E.hadamard(p, q), lambda: E.scale(E.const(k - 2), p) + q,
           lambda: E.hadamard(I_n, E.T(p) - q), lambda: E.scale(E.trace(p), q),
           lambda: E.T(p + E.T(q))]
    return ops[k % len(ops)]()


EXPRS = st.recursive(st.sampled_from(LEAVES),
                     lambda inner: st.tuples(inner, inner, st.integers(0, 40)).map(_combine),
                     max_leaves=8)


@settings(max_examples=100, deadline=None)
@given(e=EXPRS, seed=st.integers(0, 1000))
def test_random_expressions_keep_their_value(e: md.Expr, seed: int) -> None:
    out = S.simplify(e)
    assert out.shape == e.shape
    assert same_value(e, out, seed) < 1e-8
    assert S.simplify(out) is out
