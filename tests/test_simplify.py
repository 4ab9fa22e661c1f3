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
pos_a, pos_b = E.sym("pa", (), "pos"), E.sym("pb", (), "pos")
S1, S2 = E.sym("S1", (n, n), "spd"), E.sym("S2", (n, n), "spd")
exp_X = E.apply(Op.EXP, X)
sign_a = E.apply(Op.SIGN, a)
RULE_EXAMPLES: dict[str, list[md.Expr]] = {
    # transposes
    "transpose-of-product": [E.T(A @ B), E.T(E.inv(A @ B))],
    "transpose-of-sum": [E.T(A + B.T)],
    "transpose-of-hadamard": [E.T(E.hadamard(A, B)), E.T(E.hadamard(I_n, E.T(E.hadamard(I_n, X))))],
    "transpose-of-quotient": [E.T(E.hdiv(A, B))],
    "transpose-of-power": [E.T(E.hpow(U, E.const(3)))],
    "transpose-of-elementwise": [E.T(E.apply(Op.EXP, A.T))],
    "transpose-of-matrix-power": [E.T(E.matpow(E.inv(A @ A.T), 2))],
    "transpose-of-kron": [E.T(E.kron(A, U))],
    "transpose-of-diagonal": [E.Expr(Op.TRANSPOSE, (E.diagm(v),))],
    "transpose-of-block": [E.T(E.block([[A, U]]))],
    "transpose-of-inverse": [E.Expr(Op.TRANSPOSE, (E.inv(E.sym("S", (n, n), "symmetric")),)),
                             E.T(E.inv(A + B.T))],
    # sums
    "sort-terms": [E.Expr(Op.ADD, (Y, X)), X - X + Y],
    "expand-scaled-sum": [E.add(X, E.neg(E.add(X, Y)), Z)],
    "collect-terms": [X + 2 * X + Y, X - X + Y, E.add(X, E.neg(E.add(X, Y)), Z)],
    "negate-sum": [E.neg(X) - Y],
    "transposed-sum": [E.add(x.T, E.neg(v.T)), E.add(A.T, E.scale(E.const(2), B.T))],
    "add-blocks": [E.block([[A, U]]) + E.block([[B, U]])],
    "factor-left": [A @ X + A @ Y],
    "factor-right": [X @ A + Y @ A + Z],
    "factor-scalar": [2 * A + 2 * B + 2 * C, X / 2 + Y / 2, A @ (2 * X + 2 * Y) @ B,
                      E.scale(E.hpow(a, -1), X) + E.scale(E.hpow(a, -1), Y)],
    # scalar factors and powers
    "sort-scalar-factors": [E.scale(a, E.scale(b, E.scale(a, X)))],
    "merge-powers": [E.scale(E.norm(X), E.scale(E.hpow(E.norm(X), -1), Y)),
                     E.hpow(E.scale(a, E.hpow(a, 2)), 2)],
    "join-reciprocals": [E.scale(E.hpow(a, -1), E.scale(E.hpow(b, -2), X))],
    "cancel-reciprocal": [E.scale(E.hpow(E.scale(a, b), -1), E.scale(E.hpow(a, 2), X))],
    "power-of-product": [E.hpow(E.scale(a, b), 3), E.hpow(E.scale(pos_a, b), E.const("1/2")),
                         E.hpow(E.scale(E.const(2), X), 2)],
    "power-of-power": [E.hpow(E.hpow(a, E.const("1/2")), 4),
                       E.hpow(E.hpow(pos_a, 2), E.const("1/2")),
                       E.hpow(E.hpow(a, 3), E.const("1/3"))],
    "power-of-even-power": [E.hpow(E.hpow(a, 2), E.const("1/2")),
                            E.hpow(E.hpow(X, 2), E.const("3/2"))],
    "abs-even-power": [E.hpow(E.hpow(a, 4), E.const("1/2")), E.hpow(E.apply(Op.ABS, X), 2)],
    "abs-as-sign": [E.scale(E.det(X), E.scale(sign_a, E.scale(E.hpow(E.apply(Op.ABS, E.det(X)), -1),
                                                               Y))),
                    E.scale(a, E.apply(Op.ABS, a))],
    "sign-odd-power": [E.hpow(sign_a, 3), E.hpow(sign_a, -1)],
    "sign-even-power": [E.hpow(sign_a, 4)],
    "sign-square": [E.hpow(E.apply(Op.SIGN, E.neg(pos_a)), 2) + a,
                    E.hpow(E.apply(Op.SIGN, E.neg(E.apply(Op.EXP, a))), 2)],
    "sign-square-absorbed": [E.scale(E.hpow(sign_a, 2), E.scale(a, X))],
    "abs-of-nonneg": [E.apply(Op.ABS, E.hpow(a, 2) + 1), E.apply(Op.ABS, x.T @ x)],
    "sign-of-positive": [E.apply(Op.SIGN, E.apply(Op.EXP, X))],
    "flip-difference": [E.scale(E.const(-2), A @ (Z - X - Y)),
                        E.scale(E.const(-1), E.hadamard(I_n, Z - X - Y))],
    # matrix products
    "scalar-factor-out": [E.Expr(Op.MATMUL, (x, s_tr, v.T)),  # (the constructor does it too)
                          E.Expr(Op.MATMUL, (x.T, A, x, E.norm(X)))],
    "mixed-product": [E.kron(A, P) @ E.kron(B, Q)],
    "kron-vec": [E.kron(B.T, A) @ E.vec(X)],
    "block-product": [E.block([[A, U]]) @ E.block([[B], [U.T]])],
    "repeated-factor": [X @ X @ Y, E.matmul(X, E.matpow(X, 2))],
    "distribute-identity": [E.matmul(A + E.scale(s_tr, I_n), B)],
    "power-transpose": [E.matpow(X.T, 3)],
    "kron-of-identities": [E.Expr(Op.KRON, (I_n, E.eye(m)))],
    "kron-of-ones": [E.Expr(Op.KRON, (E.ones((n, 1)), E.ones((m, 1))))],
    # Hadamard products
    "sort-hadamard-factors": [E.Expr(Op.HADAMARD, (Y, X)),
                              E.hadamard(X, E.hdiv(E.ones((n, n)), Y))],
    "hadamard-merge-powers": [E.hadamard(X, X, Y), E.hadamard(I_n, I_n, X)],
    "identity-power": [E.hpow(I_n, 3), E.hadamard(I_n, I_n, X)],
    "hadamard-of-quotient": [E.hadamard(X, E.hdiv(E.ones((n, n)), Y))],
    "hadamard-negative-power": [E.hadamard(X, E.hpow(Y, -2))],
    "diagonal-mask": [E.hadamard(I_n, X.T), E.hadamard(I_n, X + E.hadamard(I_n, Y)),
                      E.hadamard(E.diagm(v), X.T)],
    "diagonal-absorbs-identity": [E.Expr(Op.HADAMARD, (I_n, E.diagm(v), X))],
    "quotient-of-quotient": [E.hdiv(E.hdiv(A, B), C)],
    "quotient-by-quotient": [E.hdiv(A, E.hdiv(B, C))],
    "quotient-cancel": [E.hdiv(E.hadamard(X, Y), E.hpow(X, 3)), E.hdiv(X, X)],
    "quotient-scaled-denominator": [E.Expr(Op.HDIV, (A, E.scale(E.const(2), B)))],
    "sigmoid": [E.hdiv(exp_X, exp_X + E.ones((n, n))),
                E.hdiv(E.hadamard(exp_X, Y), exp_X + E.ones((n, n)))],
    "diagonal-part": [E.diagm(E.diag(X)), E.diagm(E.diag(X.T @ A))],
    # matrix functions
    "trace-of-zero": [E.Expr(Op.TRACE, (E.zeros((n, n)),))],
    "trace-of-sum": [E.trace(A + B)],
    "trace-of-scaled": [E.trace(E.scale(a, A))],
    "trace-of-kron": [E.trace(E.kron(A, P))],
    "trace-cyclic": [E.trace(E.matmul(B, C, A)), E.trace(x @ y.T)],
    "det-of-product": [E.det(A @ B)],
    "det-of-transpose": [E.det(A.T)],
    "logdet-of-product": [E.logdet(S1 @ S2 @ C), E.logdet(S1 @ A)],
    "logdet-of-transpose": [E.logdet(A.T)],
    "log-det": [E.apply(Op.LOG, E.det(X))],
    "inverse-of-product": [E.inv(A @ B)],
    "inverse-of-scaled": [E.inv(E.scale(E.const(2), A))],
    "sum-of-scaled": [E.total(E.scale(a, X))],
}
CASES = [pytest.param(name, i, id=f"{name}-{i}") for name, exs in RULE_EXAMPLES.items()
         for i in range(len(exs))]


def test_every_rule_has_an_example() -> None:
    names = [rule.name for rule in S.RULES]
    assert len(names) == len(set(names))
    assert set(names) == set(RULE_EXAMPLES)


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
