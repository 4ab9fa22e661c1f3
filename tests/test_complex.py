"""Complex matrices: the seed in its natural form, a table of textbook results, the language.

The convention (README "Complex matrices"): for a real f of a complex X, the gradient is
∂f/∂Re X + i ∂f/∂Im X = 2 ∂f/∂X̄ (Brandwood 1983; Hjørungnes, *Complex-Valued Matrix
Derivatives*, 2011; PyTorch). Every result here is checked against finite differences along
the real and the imaginary direction of every entry (``md.check``) and, where a textbook has
it, against the textbook's formula at a random complex point.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import matdiff as md
from matdiff import expr as E
from matdiff.check import check_gradients, evaluate, numeric, random_inputs, rel_error
from matdiff.strategies import complex_exprs
from matdiff.testing import verify

SEED = "||Z - I .* (R'*A + Q'*B)||_F^2 + ||W - [R, -Q; Q, R]*P*S'||_F^2"
# the seed with H = R + iQ, G = A + iB, V = W₁ + iW₂ and P = P₁ + iP₂ (the row blocks of W
# and P): [R, −Q; Q, R] is the real representation of H, R'A + Q'B = Re(HᴴG)
COMPLEX_SEED = "||Z - I .* real(H'*G)||_F^2 + ||V - H*P*S'||_F^2"
COMPLEX_SHAPES: dict[str, tuple[Any, ...]] = {
    "H": ("n", "m", "complex"), "G": ("n", "m", "complex"), "Z": ("m", "m"),
    "V": ("n", "p", "complex"), "P": ("m", "q", "complex"), "S": ("p", "q")}


def _values(e: md.Expr, env: dict[str, Any], sizes: dict[str, int]) -> np.ndarray:
    return numeric(evaluate(e, env, sizes))


def _seed_point(seed: int = 0) -> tuple[dict[str, Any], dict[str, Any], dict[str, int]]:
    """Inputs of the real seed and the same point in complex form."""
    f = md.parse(SEED)
    env, sizes = random_inputs(f, seed=seed)
    n, m = sizes["n"], sizes["m"]
    w, p = np.asarray(env["W"]), np.asarray(env["P"])
    complex_env = {"H": env["R"] + 1j * env["Q"], "G": env["A"] + 1j * env["B"],
                   "Z": env["Z"], "S": env["S"], "V": w[:n] + 1j * w[n:],
                   "P": p[:m] + 1j * p[m:]}
    return env, complex_env, sizes


def test_the_complex_seed_has_the_one_line_gradient() -> None:
    f = md.parse(COMPLEX_SEED, shapes=COMPLEX_SHAPES)
    g = md.grad(f, "H")
    assert str(g) == "-2*((V - H*P*S')*S*P' + G*(I .* (Z - real(H'*G))))"
    # the form: 2G(I ⊙ (Re(HᴴG) − Z)) − 2(V − HPSᵀ)(PSᵀ)ᴴ
    stated = md.parse("2*G*(I .* (real(H'*G) - Z)) - 2*(V - H*P*S')*(P*S')'",
                      shapes=COMPLEX_SHAPES)
    env, sizes = random_inputs([f, g, stated], seed=4)
    assert rel_error(_values(g, env, sizes), _values(stated, env, sizes)) < 1e-12
    assert md.check(f, "H").max_rel_error < 1e-6


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_complex_seed_equals_the_real_split(seed: int) -> None:
    """f is the same function in both forms, and Re/Im of the one complex gradient are
    matdiff's two real gradients of the asker's split, and finite differences."""
    real_f = md.parse(SEED)
    complex_f = md.parse(COMPLEX_SEED, shapes=COMPLEX_SHAPES)
    grads = md.grad(real_f, ["R", "Q"])
    g = md.grad(complex_f, "H")
    env, cenv, sizes = _seed_point(seed)
    assert abs(evaluate(real_f, env, sizes) - evaluate(complex_f, cenv, sizes)) < 1e-9 * max(
        1.0, abs(evaluate(real_f, env, sizes)))
    gh = _values(g, cenv, sizes)
    gr, gq = (_values(grads[k], env, sizes) for k in ("R", "Q"))
    assert rel_error(gh.real, gr) < 1e-12
    assert rel_error(gh.imag, gq) < 1e-12
    # finite differences of the real split, along every entry of R and Q
    h = 1e-6
    for name, part in (("R", gh.real), ("Q", gh.imag)):
        fd = np.zeros_like(part)
        for idx in np.ndindex(part.shape):
            step = np.zeros_like(part)
            step[idx] = h
            up = evaluate(real_f, {**env, name: env[name] + step}, sizes)
            down = evaluate(real_f, {**env, name: env[name] - step}, sizes)
            fd[idx] = (up - down) / (2 * h)
        assert rel_error(part, fd) < 1e-6


def _accepted_answer(env: dict[str, Any], sizes: dict[str, int], sign: float
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The accepted answer's formulas, computed as written: ∂φ/∂R = 2(AD + E),
    ∂φ/∂Q = 2(BD − F), with D = I ⊙ M, C = NSPᵀ = Σ σₖuₖvₖᵀ, Uₖ, Vₖ the n×2 and m×2
    reshapes of uₖ, vₖ, E = Σ σₖUₖVₖᵀ, F = Σ σₖUₖJ₂Vₖᵀ; ``sign`` −1 is the answer's
    2(BD − F), +1 the corrected 2(BD + F)."""
    n, m = sizes["n"], sizes["m"]
    r, q, a, b, z = (np.asarray(env[k]) for k in "RQABZ")
    w, p, s = (np.asarray(env[k]) for k in "WPS")
    mm = np.eye(m) * (r.T @ a + q.T @ b) - z
    d = np.eye(m) * mm
    big = np.block([[r, -q], [q, r]])
    nn = big @ p @ s.T - w
    c = nn @ s @ p.T
    u, sig, vt = np.linalg.svd(c)
    j2 = np.array([[0.0, -1.0], [1.0, 0.0]])
    e_sum, f_sum = np.zeros((n, m)), np.zeros((n, m))
    for k, sk in enumerate(sig):
        uk = u[:, k].reshape(n, 2, order="F")
        vk = vt[k].reshape(m, 2, order="F")
        e_sum += sk * uk @ vk.T
        f_sum += sk * uk @ j2 @ vk.T
    return 2 * (a @ d + e_sum), 2 * (b @ d + sign * f_sum)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_accepted_answer_is_right_for_R_and_off_by_a_sign_for_Q(seed: int) -> None:
    """Measured: 2(AD + E) is matdiff's ∂f/∂R; the answer's 2(BD − F) is off (relative error
    ≈ 2), and 2(BD + F) is matdiff's ∂f/∂Q."""
    f = md.parse(SEED)
    grads = md.grad(f, ["R", "Q"])
    env, sizes = random_inputs(f, seed=seed)
    gr, gq = (_values(grads[k], env, sizes) for k in ("R", "Q"))
    ans_r, ans_q = _accepted_answer(env, sizes, -1.0)
    _, fixed_q = _accepted_answer(env, sizes, +1.0)
    assert rel_error(ans_r, gr) < 1e-12
    assert rel_error(fixed_q, gq) < 1e-12
    assert 1.0 < rel_error(ans_q, gq) < 2.5          # the answer as written


# ----------------------------------------------------------------------------- textbook table

_SH: dict[str, tuple[Any, ...]] = {
    "H": ("n", "m", "complex"), "X": ("m", "k", "complex"), "Y": ("n", "k", "complex"),
    "x": ("n", 1, "complex"), "y": ("m", 1), "a": ("n", 1, "complex"),
    "p": ("n", 1, "complex"), "w": ("n", 1, "complex"), "B": ("n", "n", "complex"),
    "A": ("n", "n", "complex"), "F": ("m", "n", "complex"), "W": ("n", "k", "complex"),
    "Rxd": ("n", "k", "complex"), "Xs": ("n", "n", "complex"), "S": ("n", "n", "sym"),
    "s": (),
}

# (id, f, wrt, the textbook gradient ∂f/∂Re + i ∂f/∂Im = 2 ∂f/∂conj, source)
TABLE = [
    ("ls-matrix-H", "||Y - H*X||_F^2", "H", "-2*(Y - H*X)*X'",
     "Hjørungnes 2011, ch. 4 (least squares)"),
    ("ls-matrix-X", "||Y - H*X||_F^2", "X", "-2*H'*(Y - H*X)",
     "Hjørungnes 2011, ch. 4"),
    ("ls-vector", "norm(F*x - y)^2", "x", "2*F'*(F*x - y)",
     "Kreutz-Delgado 2009 (least squares)"),
    ("mmse-vector", "s - 2*real(w'*p) + w'*B'*B*w", "w", "2*(B'*B*w - p)",
     "Wiener/MMSE: Haykin, Adaptive Filter Theory; Hjørungnes 2011, ch. 3"),
    ("mmse-matrix", "||B*W||_F^2 - 2*real(tr(W'*Rxd))", "W", "2*(B'*B*W - Rxd)",
     "matrix Wiener filter, Hjørungnes 2011, ch. 3"),
    ("beamforming", "abs(w'*a)^2", "w", "2*a*a'*w",
     "Van Trees 2002 (beam pattern |wᴴa|²); Hjørungnes 2011, ch. 3"),
    ("output-power", "w'*B'*B*w", "w", "2*B'*B*w",
     "Capon/MVDR output power wᴴRw, Hjørungnes 2011"),
    ("phase-retrieval", "norm(abs(F*x).^2 - y)^2", "x",
     "4*F'*((abs(F*x).^2 - y) .* (F*x))",
     "Candès, Li & Soltanolkotabi 2015 (Wirtinger flow), with ∇ = 2∂/∂x̄"),
    ("hermitian-form", "x'*S*x", "x", "2*S*x",
     "Brandwood 1983; Petersen & Pedersen 2012, §4"),
    ("real-part-form", "real(x'*A*x)", "x", "(A + A')*x",
     "Petersen & Pedersen 2012, §4 (complex quadratic forms)"),
    ("trace-form", "real(tr(Xs'*A*Xs))", "Xs", "(A + A')*Xs",
     "Hjørungnes 2011, ch. 4"),
    ("re-trace", "real(tr(A*Xs))", "Xs", "A'",
     "Petersen & Pedersen 2012, §4 (∂ Re Tr(AX))"),
    ("re-trace-adjoint", "real(tr(A*Xs'))", "Xs", "A",
     "Petersen & Pedersen 2012, §4 (∂ Re Tr(AXᴴ))"),
    ("im-trace", "imag(tr(A*Xs))", "Xs", "1i*A'",
     "Petersen & Pedersen 2012, §4 (∂ Im Tr(AX))"),
    ("abs-trace", "abs(tr(Xs))^2", "Xs", "2*tr(Xs)*eye(n)",
     "Hjørungnes 2011, ch. 4 (f = z z̄, z = tr X)"),
    ("frobenius", "||Xs||_F^2", "Xs", "2*Xs",
     "Petersen & Pedersen 2012, §4 (∂ Tr(XXᴴ))"),
    ("abs-det", "abs(det(Xs))^2", "Xs", "2*abs(det(Xs))^2*inv(Xs)'",
     "Hjørungnes 2011, ch. 4 (det X det X̄)"),
    ("re-logdet", "real(logdet(Xs))", "Xs", "inv(Xs)'",
     "Hjørungnes 2011, ch. 4 (ln det X)"),
    ("mimo-capacity", "real(logdet(eye(n) + H*H'))", "H", "2*inv(eye(n) + H*H')*H",
     "Hjørungnes 2011 (MIMO applications)"),
    ("l1", "||x||_1", "x", "x ./ abs(x)",
     "Kreutz-Delgado 2009 (|z| has ∂/∂z̄ = z/(2|z|))"),
    ("phase", "sum(angle(x))", "x", "1i*x ./ abs(x).^2",
     "Brandwood 1983 (arg z = Im log z)"),
    ("re-inner", "real(a'*x)", "x", "a", "Brandwood 1983 (Re aᴴz)"),
]


@pytest.mark.parametrize(("name", "text", "wrt", "textbook", "source"), TABLE,
                         ids=[t[0] for t in TABLE])
def test_complex_textbook_result(name: str, text: str, wrt: str, textbook: str,
                                 source: str) -> None:
    f = md.parse(text, shapes=_SH)
    assert not f.is_complex, "a real-valued f"
    g = md.grad(f, wrt)
    report = md.check(f, wrt)
    assert report.ok and report.max_rel_error < 1e-6, f"{name} ({source}): {report}"
    expected = md.parse(textbook, shapes=_SH)
    env, sizes = random_inputs([f, g, expected], seed=11)
    assert rel_error(_values(g, env, sizes), _values(expected, env, sizes)) < 1e-10, \
        f"{name}: {g} is not {textbook} ({source})"


def test_the_table_has_enough_sourced_results() -> None:
    assert len(TABLE) >= 15 and all(source for *_, source in TABLE)


def test_the_check_moves_real_and_imaginary_parts() -> None:
    """A wrong gradient that has the right real part (∂f/∂Re) fails the check: the check
    moves each entry along i too."""
    f = md.parse("||Y - H*X||_F^2", shapes=_SH)
    good = md.grad(f, "H")
    assert isinstance(good, md.Expr)
    wrong = E.real(good)                                  # the imaginary part dropped
    assert check_gradients(f, {"H": good}, seed=3).ok
    assert check_gradients(f, {"H": wrong}, seed=3).failed


def test_torch_autograd_gives_our_gradient() -> None:
    """PyTorch's .grad of a real loss of a complex tensor is ∂L/∂Re + i ∂L/∂Im: matdiff's."""
    torch = pytest.importorskip("torch")
    f = md.parse("norm(abs(F*x).^2 - y)^2 + ||Y - H*X||_F^2", shapes=_SH)
    grads = md.grad(f, ["x", "H"])
    env, sizes = random_inputs([f, *grads.values()], seed=2)
    t = {k: torch.tensor(np.asarray(v), requires_grad=k in ("x", "H")) for k, v in env.items()}
    x = t["x"].reshape(-1, 1)
    loss = torch.linalg.norm(torch.abs(t["F"] @ x) ** 2 - t["y"].reshape(-1, 1)) ** 2 + \
        torch.linalg.norm(t["Y"] - t["H"] @ t["X"]) ** 2
    loss.backward()
    for k in ("x", "H"):
        theirs = t[k].grad.detach().numpy()
        assert rel_error(theirs, _values(grads[k], env, sizes)) < 1e-10


# ----------------------------------------------------------------------------- language


def test_complexity_is_declared_and_inferred() -> None:
    h = md.parse("H", shapes={"H": ("m", "n", "complex")})
    assert h.is_complex and md.shapes_of(h) == {"H": ["m", "n", "complex"]}
    assert md.parse("A*H", shapes={"H": ("m", "n", "complex")}).is_complex
    assert not md.parse("abs(H)", shapes={"H": ("m", "n", "complex")}).is_complex
    assert not md.parse("x'*x", shapes={"x": ("n", 1, "complex")}).is_complex   # |x|²
    assert md.parse("x.'*x", shapes={"x": ("n", 1, "complex")}).is_complex


@pytest.mark.parametrize(("text", "printed"), [
    ("Z'", "Z'"), ("Z.'", "Z.'"), ("Z.T", "Z.'"), ("conj(Z)'", "Z.'"), ("conj(Z.')", "Z'"),
    ("(A*Z)'", "(A*Z)'"), ("2i*Z + 1j", "2*1i*Z + 1i"), ("0.5i", "0.5*1i"),
    ("real(Z) + imag(Z)", "real(Z) + imag(Z)"), ("angle(conj(Z))", "angle(conj(Z))"),
])
def test_ascii_transposes_and_literals_round_trip(text: str, printed: str) -> None:
    sh = {"Z": ("n", "n", "complex"), "A": ("n", "n")}
    e = md.parse(text, shapes=sh)
    assert str(e) == printed
    assert md.parse(str(e), shapes=sh) is e
    assert md.parse(md.to_latex(e), shapes=sh, syntax="latex") is e


def test_for_real_matrices_the_quote_is_the_plain_transpose() -> None:
    for text in ("A'*B", "A.'*B", "A.T*B"):
        assert md.parse(text) is md.parse("A'*B")


@pytest.mark.parametrize(("latex", "ascii"), [
    (r"Z^H A", "Z'*A"), (r"Z^{\mathsf{H}} A", "Z'*A"), (r"Z^* A", "Z'*A"),
    (r"Z^{*} A", "Z'*A"), (r"\bar{Z} A", "conj(Z)*A"), (r"\overline{Z A} + Z", "conj(Z*A) + Z"),
    (r"\bar Z^T", "Z'"), (r"\Re(Z) - \Im(Z)", "real(Z) - imag(Z)"),
    (r"\mathrm{i} Z", "1i*Z"), (r"2 i Z", "2*1i*Z"), (r"\|Z\|_F^2", "||Z||_F^2"),
])
def test_latex_complex_notation(latex: str, ascii: str) -> None:
    sh = {"Z": ("n", "n", "complex"), "A": ("n", "n")}
    assert md.parse(latex, shapes=sh, syntax="latex") is md.parse(ascii, shapes=sh)


def test_i_declared_or_in_ascii_is_a_variable() -> None:
    assert md.parse(r"i x", shapes={"i": (), "x": ("n",)}, syntax="latex").is_complex is False
    assert not md.parse("i*x").is_complex               # ASCII: i is a name; write 1i
    assert md.parse(r"\|X\|_*").op is E.Op.NUCLEAR_NORM  # ||X||_* stays the nuclear norm


# ----------------------------------------------------------------------------- derivatives


def test_gradient_of_a_complex_valued_function_is_an_error() -> None:
    with pytest.raises(md.MatdiffError, match=r"real\(·\).*abs\(·\)\^2.*wirtinger"):
        md.grad("z.'*z", "z", shapes={"z": ("n", 1, "complex")})


def test_wirtinger_pair() -> None:
    sh = {"z": ("n", 1, "complex"), "A": ("n", "n")}
    d, d_bar = md.wirtinger("z.'*A*z", "z", shapes=sh)              # holomorphic
    assert str(d) == "(A + A')*z" and E.is_zero(d_bar)
    d, d_bar = md.wirtinger("z'*A*z", "z", shapes=sh)
    assert (str(d), str(d_bar)) == ("A'*conj(z)", "A*z")
    f = md.parse("real(z'*A*z)", shapes=sh)                        # 2 ∂f/∂z̄ is the gradient
    env, sizes = random_inputs(f, seed=1)
    g, (_, half) = md.grad(f, "z"), md.wirtinger(f, "z")
    assert rel_error(_values(g, env, sizes), 2 * _values(half, env, sizes)) < 1e-12


def test_differential_has_dX_and_its_conjugate() -> None:
    sh = {"z": ("n", 1, "complex"), "A": ("n", "n")}
    assert str(md.differential("real(z'*A*z)", "z", shapes=sh)) == "real(dz'*A*z + z'*A*dz)"
    assert md.to_unicode(md.differential("conj(z)", "z", shapes=sh)) == "dz̄"


def test_jacobian_holomorphic_and_not() -> None:
    sh = {"z": ("n", 1, "complex"), "A": ("n", "n", "complex")}
    assert str(md.jacobian("A*z", "z", shapes=sh)) == "A"
    assert str(md.jacobian("conj(z)", "z", shapes=sh)) == "(zeros(n, n), eye(n))"  # (J, J̄)


@pytest.mark.parametrize("text", ["max(Z, 0)", "logsumexp(Z)", "sigmoid(Z)", "relu(Z)",
                                  "eigmax(Z)", "pinv(Z)", "||Z||_*"])
def test_real_only_functions_on_a_complex_matrix_are_errors(text: str) -> None:
    with pytest.raises(md.MatdiffError, match="of a complex matrix is not supported"):
        md.parse(text, shapes={"Z": ("n", "n", "complex")})


def test_real_only_functions_say_so() -> None:
    with pytest.raises(md.MatdiffError, match="spectral_norm of a complex matrix") as err:
        md.parse("norm(Z)", shapes={"Z": ("n", "n", "complex")})
    assert err.value.pos == 0


def test_explain_shows_the_complex_steps() -> None:
    ex = md.explain(md.parse(COMPLEX_SEED, shapes=COMPLEX_SHAPES), "H")
    text = str(ex)
    assert "A : B = Re tr(AᴴB)" in text and "dH̄" in text and "BᴴACᴴ" in text
    g = md.grad(md.parse(COMPLEX_SEED, shapes=COMPLEX_SHAPES), "H")
    from matdiff.explain import inline
    env, sizes = random_inputs([g, inline(ex)["H"]], seed=3)
    assert rel_error(_values(g, env, sizes), _values(inline(ex)["H"], env, sizes)) < 1e-12


@pytest.mark.parametrize("backend", ["numpy", "jax", "torch"])
def test_generated_code_takes_and_returns_complex_arrays(backend: str) -> None:
    if backend != "numpy":
        pytest.importorskip(backend)
    f = md.parse(COMPLEX_SEED, shapes=COMPLEX_SHAPES)
    g = md.grad(f, "H")
    env, sizes = random_inputs([f, g], seed=5)
    fn = md.compile([f, g], backend)
    value, grad = fn(**env)
    got = np.asarray(grad.detach() if hasattr(grad, "detach") else grad)
    assert np.iscomplexobj(got)
    tol = 1e-4 if backend == "jax" else 1e-10                   # JAX computes in float32
    assert rel_error(got, _values(g, env, sizes)) < tol
    assert abs(float(np.real(np.asarray(value))) - evaluate(f, env, sizes)) < tol * max(
        1.0, abs(evaluate(f, env, sizes)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(complex_exprs())
def test_random_complex_functions_pass_every_stage(f: md.Expr) -> None:
    """Random real functions of complex matrices: the gradient against finite differences
    along real and imaginary directions, simplify, the ASCII round trip, NumPy code."""
    result = verify(f, seed=1)
    assert result.kind in ("ok", "skipped"), f"{f}: {result.kind} {result.detail}"


def test_hvp_of_a_complex_gradient_matches_finite_differences() -> None:
    """md.hvp is the derivative of the gradient along V (V complex): against differences
    of the gradient, and the Hessian where the gradient is holomorphic."""
    sh = {**_SH, "V": ("n", 1, "complex")}
    f = md.parse("norm(abs(F*x).^2 - y)^2", shapes=_SH)
    g, hv = md.grad(f, "x"), md.hvp(f, "x", "V")
    v = md.parse("V", shapes=sh)
    env, sizes = random_inputs([f, g, hv, v], seed=6)
    h = 1e-6
    up = _values(g, {**env, "x": env["x"] + h * env["V"]}, sizes)
    down = _values(g, {**env, "x": env["x"] - h * env["V"]}, sizes)
    assert rel_error(_values(hv, env, sizes), (up - down) / (2 * h)) < 1e-6
    assert str(md.hessian("x'*S*x", "x", shapes=_SH)) == "2*S"
    assert isinstance(md.hessian(f, "x"), md.WirtingerPair)   # ∇ has x̄: the pair
