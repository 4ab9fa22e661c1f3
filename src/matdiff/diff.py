"""Reverse-mode differentiation: a scalar ``Expr`` to its gradient ``Expr``.

Input: a scalar expression ``f`` and variable names. Output: for each variable ``X`` the
expression ``∂f/∂X`` with ``X``'s shape (denominator layout, as in the Matrix Cookbook).
The sweep is "toposort, then reversed": every node's cotangent ``y_bar`` is the sum of the
contributions of its parents, and the ``VJP`` table maps ``(y_bar, y)`` to the cotangents of
``y``'s arguments. Rules cite Giles (2008), "An extended collection of matrix derivative
results", and Magnus & Neudecker (2019), Theorem 3.10 for the Kronecker product.

For a variable declared symmetric, the gradient is the symmetric part ``(G + Gᵀ)/2`` of the
unstructured gradient ``G``: the gradient in the space of symmetric matrices under the
trace inner product, the one to use for optimisation over symmetric matrices.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction

from .expr import (
    ONE,
    OPS,
    Dim,
    Expr,
    MatdiffError,
    Op,
    T,
    add,
    apply,
    block,
    block_offsets,
    conj,
    const,
    diag,
    diagm,
    eigval,
    eigvec,
    eye,
    frechet,
    frechet_block,
    free_symbols,
    hadamard,
    hdiv,
    hpow,
    imag_unit,
    inv,
    kron,
    matmul,
    matpow,
    neg,
    ones,
    polar,
    real,
    scale,
    slice_,
    softmax,
    spectral_norm,
    sqrtm,
    svd_u1,
    svd_v1,
    toposort,
    total,
    tril,
    unvec,
    vec,
    zeros,
)

__all__ = ["VJP", "COMPLEX_VJP", "COMPLEX_GRADIENT", "vjp", "powers", "grad", "gradients",
           "SYMMETRIC_CONVENTION", "LINEAR", "linear_in", "adjoint", "sym_part",
           "eigen_resolvent", "eigvec_tangent", "top_singular", "polar_tangent",
           "pinv_tangent", "phi", "extreme_weights", "logsumexp_weights", "mean_weights",
           "sqrt_one_plus_square", "softmax_tangent"]

SYMMETRIC_CONVENTION = ("gradient w.r.t. a symmetric matrix: the symmetric part (G + G')/2 of "
                        "the unstructured gradient G")

Rule = Callable[[Expr, Expr], Sequence[Expr | None]]


def powers(factors: Sequence[Expr]) -> list[Expr]:
    """The factors of a product with each run of one repeated factor as its power, so the
    prefixes and suffixes of ``X X ⋯ X`` have a size that does not grow with the run.

    >>> from matdiff.expr import sym
    >>> X, A = sym("X", ("n", "n")), sym("A", ("n", "n"))
    >>> [str(f) for f in powers([X, X, A, X])]
    ['X^2', 'A', 'X']
    """
    out: list[Expr] = []
    run = 0
    for i, f in enumerate(factors):
        run += 1
        if i + 1 == len(factors) or factors[i + 1] is not f:
            out.append(matpow(f, run) if run > 1 else f)
            run = 0
    return out


def _matmul_vjp(y_bar: Expr, y: Expr) -> list[Expr]:
    """C = A1 A2 ... An:  Āi = (A1..Ai-1)ᵀ C̄ (Ai+1..An)ᵀ, written with the transposes at
    the factors and repeated factors as powers, so each Āi is one flat product."""
    f = y.args
    transposes: dict[Expr, Expr] = {}  # each factor (or power) transposed once

    def transposed(factors: Sequence[Expr]) -> list[Expr]:  # (A1 ⋯ Ak)ᵀ = Akᵀ ⋯ A1ᵀ
        out = []
        for g in reversed(powers(factors)):
            t = transposes.get(g)
            out.append(t if t is not None else transposes.setdefault(g, T(g)))
        return out
    return [matmul(*transposed(f[:i]), y_bar, *transposed(f[i + 1:])) for i in range(len(f))]


def _hadamard_vjp(y_bar: Expr, y: Expr) -> list[Expr]:
    """C = A1 ⊙ ... ⊙ An:  Āi = C̄ ⊙ ∏_{j≠i} Aj."""
    f = y.args
    return [hadamard(y_bar, *f[:i], *f[i + 1:]) for i in range(len(f))]


def _kron_vjp(y_bar: Expr, y: Expr) -> list[Expr]:
    """C = A ⊗ B, A m×n, B p×q, C̄ in blocks C̄_ij (p×q):  Ā_ij = sum(C̄_ij ⊙ B),
    B̄ = Σ_ij A_ij C̄_ij.  In matrix form, with 𝟏 the ones vectors and matrices:
    Ā = (I_m ⊗ 𝟏_pᵀ)(C̄ ⊙ (𝟏_mn ⊗ B))(I_n ⊗ 𝟏_q),  B̄ = (𝟏_mᵀ ⊗ I_p)(C̄ ⊙ (A ⊗ 𝟏_pq))(𝟏_n ⊗ I_q);
    for A = I_k with a small numeric k, B̄ = the sum of the k diagonal blocks of C̄."""
    a, b = y.args
    (m, n), (p, q) = a.shape, b.shape
    a_bar = matmul(kron(eye(m), ones((1, p))), hadamard(y_bar, kron(ones((m, n)), b)),
                   kron(eye(n), ones((q, 1))))
    k = m.value if a.op is Op.IDENTITY else None
    if k is not None and k <= 8:
        b_bar = add(*(slice_(y_bar, i * p, (i + 1) * p, i * q, (i + 1) * q) for i in range(k)))
    else:
        b_bar = matmul(kron(ones((1, m)), eye(p)), hadamard(y_bar, kron(a, ones((p, q)))),
                       kron(ones((n, 1)), eye(q)))
    return [a_bar, b_bar]


def _block_vjp(y_bar: Expr, y: Expr) -> list[Expr]:
    """C = [A_ij]:  Ā_ij = the (i, j) block of C̄."""
    rows, cols = block_offsets(y)
    c = y.attr[1]
    return [slice_(y_bar, rows[k // c], rows[k // c + 1], cols[k % c], cols[k % c + 1])
            for k in range(len(y.args))]


def _slice_vjp(y_bar: Expr, y: Expr) -> list[Expr]:
    """C = X[r0:r1, c0:c1]:  X̄ = C̄ padded with zeros to X's shape."""
    x = y.args[0]
    r0, r1, c0, c1 = y.attr
    empty = Dim({})
    heights = [(r0, False), (r1 - r0, True), (x.rows - r1, False)]
    widths = [(c0, False), (c1 - c0, True), (x.cols - c1, False)]
    return [block([[y_bar if hit_row and hit_col else zeros((h, w))
                    for w, hit_col in widths if w != empty]
                   for h, hit_row in heights if h != empty])]


def _pow_vjp(y_bar: Expr, y: Expr) -> list[Expr | None]:
    """C = X .^ p:  X̄ = p C̄ ⊙ X .^ (p-1),  p̄ = sum(C̄ ⊙ C ⊙ log X)."""
    x, p = y.args
    x_bar = scale(p, hadamard(y_bar, hpow(x, add(p, const(-1)))))
    p_bar = total(hadamard(y_bar, y, apply(Op.LOG, x)))
    return [x_bar, p_bar]


def _matpow_vjp(y_bar: Expr, y: Expr) -> list[Expr]:
    """C = X^k:  X̄ = Σ_{i<k} (X^i)ᵀ C̄ (X^(k-1-i))ᵀ."""
    x, k = y.args[0], y.attr
    return [add(*(matmul(T(matpow(x, i)), y_bar, T(matpow(x, k - 1 - i)))
                  for i in range(k)))]


def _scale_vjp(y_bar: Expr, y: Expr) -> list[Expr]:
    """C = a X:  ā = sum(C̄ ⊙ X),  X̄ = a C̄."""
    a, x = y.args
    return [total(hadamard(y_bar, x)), scale(a, y_bar)]


def _norm_vjp(y_bar: Expr, y: Expr) -> list[Expr]:
    """c = ||X||_2:  X̄ = c̄ X / c;  c = ||X||_1:  X̄ = c̄ sign(X)."""
    x = y.args[0]
    if y.attr == "1":
        return [scale(y_bar, apply(Op.SIGN, x))]
    return [scale(y_bar, scale(hpow(y, -1), x))]


def at_largest_magnitude(x: Expr, t: Expr) -> Expr:
    """``sign(x) ⊙ (1 + sign(|x| − t))`` with ``t = ||x||_inf``: ``sign(x_k)`` where
    ``|x_k| = t`` (exactly, as t is one of the ``|x_i|``), 0 elsewhere: the gradient of
    ``||x||_inf`` (at a tie, the sum of the subgradients of the tied entries)."""
    gap = apply(Op.SIGN, add(apply(Op.ABS, x), neg(scale(t, ones(x.shape)))))
    return hadamard(apply(Op.SIGN, x), add(ones(x.shape), gap))


def _ew(derivative: Callable[[Expr, Expr], Expr]) -> Rule:
    """An elementwise function: X̄ = C̄ ⊙ f'(X), with f' written from X and C = f(X)."""
    return lambda y_bar, y: [hadamard(y_bar, derivative(y.args[0], y))]


def _ones_like(x: Expr) -> Expr:
    return ones(x.shape)


def sqrt_one_plus_square(x: Expr) -> Expr:
    """sqrt(1 + x²), the denominator of arcsinh'."""
    return apply(Op.SQRT, add(_ones_like(x), hpow(x, 2)))


def extreme_weights(y: Expr) -> tuple[Expr, Expr]:
    """(H, 𝟏 − H) for C = max(X, Y) or min(X, Y): dC = H ⊙ dX + (𝟏 − H) ⊙ dY with
    H = (𝟏 ± sign(X − Y))/2, so a tie gives each side half (sign 0 = 0, as relu' uses).

    >>> from matdiff.expr import sym, maximum
    >>> x, z = sym("x", ("n",)), sym("z", ("n",))
    >>> [str(h) for h in extreme_weights(maximum(x, z))]
    ['0.5*(1 + sign(x - z))', '0.5*(1 - sign(x - z))']
    """
    x, z = y.args
    sign = apply(Op.SIGN, add(x, neg(z)))
    half, one = const(Fraction(1, 2)), _ones_like(x)
    first, second = scale(half, add(one, sign)), scale(half, add(one, neg(sign)))
    return (first, second) if y.op is Op.MAX else (second, first)


def logsumexp_weights(x: Expr, y: Expr) -> Expr:
    """∂ logsumexp(X)/∂X: softmax(x) of a column vector, else exp(X − logsumexp(X)·𝟏)."""
    if x.cols == ONE:
        return softmax(x)
    return apply(Op.EXP, add(x, neg(scale(y, _ones_like(x)))))


def mean_weights(x: Expr) -> Expr:
    """∂ mean(X)/∂X = 𝟏𝟏ᵀ / (mn), the count written as sum(𝟏)."""
    return scale(hpow(total(_ones_like(x)), -1), _ones_like(x))


def softmax_tangent(s: Expr, g: Expr) -> Expr:
    """s = softmax(x):  J = Diag(s) − s sᵀ is symmetric, so J g = s ⊙ g − (sᵀg) s is both
    the tangent ds (g = dx) and the cotangent x̄ (g = s̄)."""
    return add(hadamard(s, g), neg(scale(matmul(T(s), g), s)))


def _extreme_vjp(g: Expr, y: Expr) -> list[Expr]:
    h_x, h_z = extreme_weights(y)
    return [hadamard(g, h_x), hadamard(g, h_z)]


def sqrt_one_minus_square(x: Expr) -> Expr:
    """sqrt(1 - x²), the denominator of arcsin' and arccos'."""
    return apply(Op.SQRT, add(_ones_like(x), neg(hpow(x, 2))))


# ----------------------------------------------------------------------------- spectral


def sym_part(x: Expr) -> Expr:
    """(X + Xᵀ)/2; X itself when X is declared symmetric."""
    if x.symmetric or x.is_scalar:
        return x
    return scale(const(Fraction(1, 2)), add(x, T(x)))


def eigen_resolvent(s: Expr, lam: Expr, v: Expr) -> Expr:
    """R = (λI − S + vvᵀ)⁻¹ for a simple eigenpair (λ, v) of the symmetric S:
    R − vvᵀ = (λI − S)⁺, so dv = (λI − S)⁺ dS v = R dS v − v vᵀdS v."""
    return inv(add(scale(lam, eye(s.rows)), neg(s), matmul(v, T(v))))


def eigvec_tangent(r: Expr, v: Expr, s_dot: Expr) -> Expr:
    """dv = R dS v − v (vᵀ dS v), the first-order perturbation of a unit eigenvector
    (Magnus 1985; Magnus & Neudecker, ch. 8), with R from ``eigen_resolvent``."""
    return add(matmul(r, s_dot, v), neg(scale(matmul(T(v), s_dot, v), v)))


def _eigvec_bar(r: Expr, v: Expr, v_bar: Expr) -> Expr:
    """The adjoint of ``eigvec_tangent`` over symmetric dS: S̄ = sym(R v̄ vᵀ) − (vᵀv̄) vvᵀ."""
    return add(sym_part(matmul(r, v_bar, T(v))), neg(scale(matmul(T(v), v_bar), matmul(v, T(v)))))


def top_singular(x: Expr) -> tuple[Expr, Expr, Expr, Expr]:
    """σ₁ = ‖X‖₂, u₁, v₁ and R = (σ₁²I − XᵀX + v₁v₁ᵀ)⁻¹ (v₁ is the top eigenvector of XᵀX)."""
    sigma, u, v = spectral_norm(x), svd_u1(x), svd_v1(x)
    return sigma, u, v, eigen_resolvent(matmul(T(x), x), hpow(sigma, 2), v)


def _svd_v1_bar(x: Expr, v_bar: Expr) -> Expr:
    """v₁ = eigvec_max(XᵀX):  X̄ = 2X sym(S̄) with S̄ the eigenvector's adjoint."""
    _, _, v, r = top_singular(x)
    return scale(const(2), matmul(x, _eigvec_bar(r, v, v_bar)))


def _svd_u1_vjp(u_bar: Expr, y: Expr) -> list[Expr]:
    """u₁ = X v₁/σ₁:  X̄ = (ū v₁ᵀ − (u₁ᵀū) u₁v₁ᵀ)/σ₁ + v̄-part with v̄ = Xᵀū/σ₁."""
    x = y.args[0]
    sigma, u, v, _ = top_singular(x)
    over = hpow(sigma, -1)
    direct = add(matmul(u_bar, T(v)), neg(scale(matmul(T(u), u_bar), matmul(u, T(v)))))
    return [add(scale(over, direct), _svd_v1_bar(x, scale(over, matmul(T(x), u_bar))))]


def polar_tangent(x: Expr, p: Expr, e: Expr) -> Expr:
    """dP for P = UVᵀ in the direction E, for full-rank X of either orientation: with
    Q = I − PᵀP (0 when X has full column rank), G = XᵀX + Q, K = G^(-1/2), X = P G^(1/2):
    dP = E K − P L_sqrt(G, dG) K, dG = EᵀX + XᵀE − Q EᵀP K − K PᵀE Q. The map E ↦ dP is
    the Hessian of ‖X‖_*, so it is self-adjoint: the VJP is the same formula."""
    q = add(eye(x.cols), neg(matmul(T(p), p)))
    g = add(matmul(T(x), x), q)
    k = inv(sqrtm(g))
    g_dot = add(matmul(T(e), x), matmul(T(x), e), neg(matmul(q, T(e), p, k)),
                neg(matmul(k, T(p), e, q)))
    return add(matmul(e, k), neg(matmul(p, frechet("sqrtm", g, g_dot), k)))


def pinv_tangent(x: Expr, p: Expr, e: Expr) -> Expr:
    """d(X⁺) = −X⁺ dX X⁺ + X⁺X⁺ᵀ dXᵀ (I − XX⁺) + (I − X⁺X) dXᵀ X⁺ᵀX⁺ at full rank
    (Golub & Pereyra 1973)."""
    return add(neg(matmul(p, e, p)),
               matmul(p, T(p), T(e), add(eye(x.rows), neg(matmul(x, p)))),
               matmul(add(eye(x.cols), neg(matmul(p, x))), T(e), T(p), p))


def _pinv_vjp(g: Expr, y: Expr) -> list[Expr]:
    """X̄ = −X⁺ᵀ C̄ X⁺ᵀ + (I − XX⁺) C̄ᵀ X⁺X⁺ᵀ + X⁺ᵀX⁺ C̄ᵀ (I − X⁺X)."""
    x, p = y.args[0], y
    return [add(neg(matmul(T(p), g, T(p))),
                matmul(add(eye(x.rows), neg(matmul(x, p))), T(g), p, T(p)),
                matmul(T(p), p, T(g), add(eye(x.cols), neg(matmul(p, x)))))]


def _adj_vjp(g: Expr, y: Expr) -> list[Expr]:
    """A = adj X = det(X) X⁻¹:  X̄ = sum(C̄ ⊙ A) X⁻ᵀ − X⁻ᵀ C̄ Aᵀ."""
    x_inv_t = T(inv(y.args[0]))
    return [add(scale(total(hadamard(g, y)), x_inv_t), neg(matmul(x_inv_t, g, T(y))))]


def phi(a: Expr) -> Expr:
    """Φ(A): the lower triangle of A with its diagonal halved, tril(A) − I ⊙ A/2."""
    return add(tril(a), neg(scale(const(Fraction(1, 2)), hadamard(eye(a.rows), a))))


def _chol_vjp(g: Expr, y: Expr) -> list[Expr]:
    """L = chol(S), dL = L Φ(L⁻¹ dS L⁻ᵀ):  S̄ = sym(L⁻ᵀ Φ(Lᵀ L̄) L⁻¹) (Murray 2016)."""
    l_inv = inv(y)
    return [sym_part(matmul(T(l_inv), phi(matmul(T(y), g)), l_inv))]


def _eigvec_vjp(g: Expr, y: Expr) -> list[Expr]:
    x = y.args[0]
    return [_eigvec_bar(eigen_resolvent(sym_part(x), eigval(x, y.attr), y), y, g)]


def _matrix_function_vjp(g: Expr, y: Expr) -> list[Expr]:
    """C = f(X):  X̄ = L_f(Xᵀ, C̄), as ⟨L_f(X, E), G⟩ = ⟨E, L_f(Xᵀ, G)⟩ (Higham 2008, ch. 3)."""
    return [frechet(OPS[y.op].ascii[0], T(y.args[0]), g)]


def _frechet_vjp(g: Expr, y: Expr) -> list[Expr]:
    """C = L_f(A, E) = f(B)[0:n, n:2n], B = [A, E; 0, A]: with W = L_f(Bᵀ, [0, C̄; 0, 0])
    (the adjoint of f at B, applied to the padded C̄), Ā = W₁₁ + W₂₂ and Ē = W₁₂, which is
    L_f(Aᵀ, C̄) (Bᵀ is block lower triangular): free of E, as C is linear in E."""
    a, e = y.args
    n, z = a.rows, zeros(a.shape)
    w = frechet(y.attr, T(frechet_block(a, e)), block([[z, g], [z, z]]))
    return [add(slice_(w, 0, n, 0, n), slice_(w, n, 2 * n, n, 2 * n)),
            frechet(y.attr, T(a), g)]


def _outer(u: Expr, v: Expr) -> Expr:
    return matmul(u, T(v))


def _eigval_vjp(g: Expr, y: Expr) -> list[Expr]:
    """c = λ(X) with unit eigenvector v:  X̄ = c̄ vvᵀ (Magnus & Neudecker, ch. 8)."""
    v = eigvec(y.args[0], y.attr)
    return [scale(g, _outer(v, v))]


VJP: dict[Op, Rule] = {
    Op.SYMBOL: lambda g, y: [],
    Op.CONST: lambda g, y: [],
    Op.IDENTITY: lambda g, y: [],
    Op.ONES: lambda g, y: [],
    Op.ZERO: lambda g, y: [],
    Op.COMMUTATION: lambda g, y: [],
    Op.ADD: lambda g, y: [g] * len(y.args),                           # C = ΣAi: Āi = C̄
    Op.SCALE: _scale_vjp,
    Op.MATMUL: _matmul_vjp,
    Op.TRANSPOSE: lambda g, y: [T(g)],                                # C = Aᵀ: Ā = C̄ᵀ
    Op.HADAMARD: _hadamard_vjp,
    Op.HDIV: lambda g, y: [hdiv(g, y.args[1]),                        # C = A ./ B: Ā = C̄ ./ B
                           neg(hdiv(hadamard(g, y), y.args[1]))],     # B̄ = -C̄ ⊙ C ./ B
    Op.POW: _pow_vjp,
    Op.KRON: _kron_vjp,
    Op.BLOCK: _block_vjp,
    Op.SLICE: _slice_vjp,
    Op.TRIL: lambda g, y: [tril(g)],                                  # C = tril X: X̄ = tril C̄
    Op.TRACE: lambda g, y: [scale(g, eye(y.args[0].rows))],          # c = tr X: X̄ = c̄ I
    Op.DET: lambda g, y: [scale(g, scale(y, T(inv(y.args[0]))))],     # X̄ = c̄ det(X) X⁻ᵀ
    Op.LOGDET: lambda g, y: [scale(g, T(inv(y.args[0])))],            # X̄ = c̄ X⁻ᵀ
    Op.INV: lambda g, y: [neg(matmul(T(y), g, T(y)))],                # X̄ = -Cᵀ C̄ Cᵀ
    Op.MATPOW: _matpow_vjp,
    Op.DIAG: lambda g, y: [diagm(g)],                                 # c = diag X: X̄ = Diag(c̄)
    Op.DIAGM: lambda g, y: [diag(g)],                                 # C = Diag x: x̄ = diag C̄
    Op.VEC: lambda g, y: [unvec(g, y.args[0].rows, y.args[0].cols)],  # X̄ = unvec(c̄)
    Op.UNVEC: lambda g, y: [vec(g)],
    Op.SUM: lambda g, y: [scale(g, _ones_like(y.args[0]))],           # X̄ = c̄ 1 1ᵀ
    Op.MEAN: lambda g, y: [scale(g, mean_weights(y.args[0]))],        # X̄ = c̄ 1 1ᵀ/(mn)
    Op.MAX: _extreme_vjp,                                             # X̄ = C̄ ⊙ H, Ȳ = C̄ ⊙ (1 − H)
    Op.MIN: _extreme_vjp,
    Op.LOGSUMEXP: lambda g, y: [scale(g, logsumexp_weights(y.args[0], y))],  # x̄ = c̄ softmax x
    Op.SOFTMAX: lambda g, y: [softmax_tangent(y, g)],                # x̄ = s ⊙ ḡ − (sᵀḡ) s
    Op.NORM: _norm_vjp,
    Op.INF_NORM: lambda g, y: [scale(g, at_largest_magnitude(y.args[0], y))],  # c̄ sign(x_k)e_k
    Op.EXPM: _matrix_function_vjp,                                    # X̄ = L_exp(Xᵀ, C̄)
    Op.LOGM: _matrix_function_vjp,                                    # X̄ = L_log(Xᵀ, C̄)
    Op.SQRTM: _matrix_function_vjp,                                   # X̄ = L_sqrt(Xᵀ, C̄)
    Op.FRECHET: _frechet_vjp,
    Op.EIGVAL: _eigval_vjp,                                           # X̄ = c̄ vvᵀ
    Op.EIGVEC: _eigvec_vjp,                                           # sym(Rv̄vᵀ) − (vᵀv̄)vvᵀ
    Op.SPECTRAL_NORM: lambda g, y: [scale(g, _outer(svd_u1(y.args[0]), svd_v1(y.args[0])))],
    Op.NUCLEAR_NORM: lambda g, y: [scale(g, polar(y.args[0]))],       # c̄ UVᵀ
    Op.POLAR: lambda g, y: [polar_tangent(y.args[0], y, g)],          # self-adjoint dP
    Op.SVD_U1: _svd_u1_vjp,
    Op.SVD_V1: lambda g, y: [_svd_v1_bar(y.args[0], g)],
    Op.PINV: _pinv_vjp,
    Op.ADJ: _adj_vjp,
    Op.CHOL: _chol_vjp,                                               # sym(L⁻ᵀΦ(LᵀL̄)L⁻¹)
    Op.EXP: _ew(lambda x, y: y),                                      # exp' = exp
    Op.LOG: lambda g, y: [hdiv(g, y.args[0])],                        # log' = 1/x
    Op.SIN: _ew(lambda x, y: apply(Op.COS, x)),
    Op.COS: _ew(lambda x, y: neg(apply(Op.SIN, x))),
    Op.TAN: _ew(lambda x, y: add(_ones_like(x), hpow(y, 2))),         # tan' = 1 + tan²
    Op.TANH: _ew(lambda x, y: add(_ones_like(x), neg(hpow(y, 2)))),   # tanh' = 1 - tanh²
    Op.SQRT: lambda g, y: [hdiv(g, scale(const(2), y))],              # sqrt' = 1/(2 sqrt)
    Op.ABS: _ew(lambda x, y: apply(Op.SIGN, x)),                      # |x|' = sign x
    Op.SIGN: lambda g, y: [zeros(y.shape)],                           # sign' = 0 (a.e.)
    Op.SIGMOID: _ew(lambda x, y: hadamard(y, add(_ones_like(x), neg(y)))),  # σ' = σ(1-σ)
    Op.RELU: _ew(lambda x, y: apply(Op.SIGN, y)),                     # relu' = [x > 0]
    Op.ARCSIN: lambda g, y: [hdiv(g, sqrt_one_minus_square(y.args[0]))],  # 1/sqrt(1 - x²)
    Op.ARCCOS: lambda g, y: [neg(hdiv(g, sqrt_one_minus_square(y.args[0])))],
    Op.ARCTAN: lambda g, y: [hdiv(g, add(_ones_like(y), hpow(y.args[0], 2)))],  # 1/(1 + x²)
    Op.SOFTPLUS: _ew(lambda x, y: apply(Op.SIGMOID, x)),              # softplus' = σ
    Op.LOG1P: lambda g, y: [hdiv(g, add(_ones_like(y), y.args[0]))],  # log1p' = 1/(1 + x)
    Op.EXPM1: _ew(lambda x, y: apply(Op.EXP, x)),                     # expm1' = exp
    Op.SINH: _ew(lambda x, y: apply(Op.COSH, x)),                     # sinh' = cosh
    Op.COSH: _ew(lambda x, y: apply(Op.SINH, x)),                     # cosh' = sinh
    Op.ARCSINH: lambda g, y: [hdiv(g, sqrt_one_plus_square(y.args[0]))],  # 1/sqrt(1 + x²)
    # complex numbers: the rows for real arguments (complex ones: COMPLEX_VJP)
    Op.IMAG_UNIT: lambda g, y: [],
    Op.CONJ: lambda g, y: [conj(g)],                                  # C = X̄: X̄ = conj C̄
    Op.REAL: lambda g, y: [g],                                        # C = Re X: X̄ = C̄
    Op.IMAG: lambda g, y: [zeros(y.shape)],                           # Im of a real X is 0
    Op.ANGLE: lambda g, y: [zeros(y.shape)],                          # arg' = 0 (a.e.) on ℝ
}


# ----------------------------------------------------------------------------- complex

# The cotangent of a complex X is X̄ = ∂f/∂Re X + i ∂f/∂Im X = 2 ∂f/∂conj(X) (Brandwood
# 1983; Hjørungnes 2011; PyTorch's convention): for f real, df = Re sum(conj(X̄) ⊙ dX), so a
# VJP is the adjoint under the real inner product <A, B> = Re sum(conj(A) ⊙ B). A holomorphic
# Op with real coefficients (every Op not in COMPLEX_VJP) has dC = J dX, whose adjoint J^H
# C̄ is conj(Jᵀ conj(C̄)): its real row applied to conj(C̄), conjugated (``vjp``). The
# conjugate-linear and real-valued Ops have their own rows:


def _modulus_bar(g: Expr, x: Expr) -> Expr:
    """C = |X| (entrywise, complex X):  X̄ = C̄ ⊙ X ./ |X|."""
    return hadamard(g, hdiv(x, apply(Op.ABS, x)))


def _complex_norm_vjp(g: Expr, y: Expr) -> list[Expr]:
    """c = ||X||_2:  X̄ = c̄ X / c;  c = ||X||_1 = sum |X|:  X̄ = c̄ X ./ |X|."""
    x = y.args[0]
    if y.attr == "1":
        return [_modulus_bar(scale(g, ones(x.shape)), x)]
    return [scale(g, scale(hpow(y, -1), x))]


COMPLEX_VJP: dict[Op, Rule] = {
    Op.CONJ: lambda g, y: [conj(g)],                                  # C = X̄: X̄ = conj C̄
    Op.REAL: lambda g, y: [g],                                        # C = Re X: X̄ = C̄
    Op.IMAG: lambda g, y: [scale(imag_unit(), g)],                    # C = Im X: X̄ = i C̄
    Op.ABS: lambda g, y: [_modulus_bar(g, y.args[0])],                # X̄ = C̄ ⊙ X ./ |X|
    Op.ANGLE: lambda g, y: [hadamard(scale(imag_unit(), g),           # X̄ = i C̄ ⊙ X ./ |X|²
                                     hdiv(y.args[0], hpow(apply(Op.ABS, y.args[0]), 2)))],
    Op.NORM: _complex_norm_vjp,
}


def vjp(g: Expr, y: Expr) -> list[Expr | None]:
    """The cotangents of ``y``'s arguments from the cotangent ``g`` of ``y``: the ``VJP``
    row for real arguments; for complex ones the ``COMPLEX_VJP`` row, or the real row
    conjugated (a holomorphic Op); a real argument's cotangent is the real part.

    >>> from matdiff.expr import sym, H
    >>> A, Z = sym("A", ("n", "n")), sym("Z", ("n", "n"), "complex")
    >>> str(vjp(sym("G", ("n", "n"), "complex"), A @ Z)[1])
    "A'*G"
    """
    if not any(a.is_complex for a in y.args):
        return list(VJP[y.op](g, y))
    rule = COMPLEX_VJP.get(y.op)
    bars = list(rule(g, y)) if rule else \
        [None if b is None else conj(b) for b in VJP[y.op](conj(g), y)]
    return [b if b is None or a.is_complex else real(b)
            for a, b in zip(y.args, bars, strict=False)]


COMPLEX_GRADIENT = ("gradient w.r.t. a complex matrix: ∂f/∂Re X + i ∂f/∂Im X = 2 ∂f/∂X̄, "
                    "the steepest-ascent direction (Brandwood 1983; Hjørungnes 2011; PyTorch)")


def _real_valued(f: Expr) -> None:
    if f.is_complex:
        raise MatdiffError(
            "the gradient needs a real-valued function, but this one is complex; "
            "take real(·) or abs(·)^2 of it, or use md.wirtinger for the pair of Wirtinger "
            "derivatives (∂f/∂X, ∂f/∂X̄)")


# ----------------------------------------------------------------------------- adjoints

# How a node is linear in its arguments: in all of them together (sums, blocks and the
# linear maps of one argument) or in one of them at a time (products; a quotient in its
# numerator only; a Fréchet derivative in its direction only). Where a node is linear in
# an argument, its VJP row applied to a coefficient C is the adjoint: <C, Y(X)> = <X̄, X>
# with X̄ = VJP, <A, B> = sum(A ⊙ B).
LINEAR: dict[Op, str] = {
    Op.ADD: "jointly", Op.BLOCK: "jointly", Op.TRANSPOSE: "jointly", Op.TRACE: "jointly",
    Op.SUM: "jointly", Op.DIAG: "jointly", Op.DIAGM: "jointly", Op.VEC: "jointly",
    Op.UNVEC: "jointly", Op.SLICE: "jointly", Op.TRIL: "jointly", Op.MEAN: "jointly",
    Op.SCALE: "one", Op.MATMUL: "one", Op.HADAMARD: "one", Op.KRON: "one",
    Op.HDIV: "first",
    Op.FRECHET: "second",                    # L_f(A, E) is linear in the direction E
    Op.CONJ: "jointly", Op.REAL: "jointly", Op.IMAG: "jointly",   # over the reals
}


def linear_in(y: Expr, slots: Sequence[int]) -> bool:
    """Whether the node ``y`` is linear in its arguments ``slots`` taken together (the others
    held fixed, as they are zero in a differential in which only ``slots`` vary).

    >>> from matdiff.expr import sym
    >>> A, X = sym("A", ("n", "n")), sym("X", ("n", "n"))
    >>> linear_in(A @ X, [1]), linear_in(X @ X, [0, 1]), linear_in(X + A, [0, 1])
    (True, False, True)
    """
    kind = LINEAR.get(y.op)
    return bool(slots) and (kind == "jointly" or kind == "one" and len(slots) == 1
                            or kind == "first" and list(slots) == [0]
                            or kind == "second" and list(slots) == [1])


def adjoint(c: Expr, y: Expr, slots: Sequence[int], real_inner: bool = False) -> list[Expr]:
    """The adjoint of the node ``y``, a linear map of its arguments ``slots``, applied to the
    coefficient ``c``: the ``X̄_i`` with ``<c, y> = Σ_i <X̄_i, X_i>`` (``A : BXC = BᵀACᵀ : X``),
    read from the ``VJP`` table; a ``MatdiffError`` where ``y`` is not linear in them.
    ``real_inner``: the inner product of complex matrices ``<A, B> = Re tr(AᴴB)`` (``vjp``).

    >>> from matdiff.expr import sym
    >>> A, X, C = sym("A", ("n", "n")), sym("X", ("n", "n")), sym("C", ("n", "n"))
    >>> [str(x_bar) for x_bar in adjoint(C, A @ X, [1])]
    ["A'*C"]
    """
    if not linear_in(y, slots):
        raise MatdiffError(f"{y.op.name.lower()}(...) is not linear in the argument(s) "
                           f"{', '.join(str(i + 1) for i in slots)} that carry the differential")
    bars = vjp(c, y) if real_inner else VJP[y.op](c, y)
    out = [bars[i] for i in slots]
    assert all(b is not None for b in out)  # every linear slot has its cotangent
    return [b for b in out if b is not None]


def _depends(root: Expr, names: set[str]) -> set[Expr]:
    """Nodes of ``root`` that depend on any of the variables ``names``."""
    dep: set[Expr] = set()
    for node in toposort([root]):
        if node.op is Op.SYMBOL and node.name in names or any(a in dep for a in node.args):
            dep.add(node)
    return dep


def gradients(f: Expr, names: Sequence[str],
              declared: Mapping[str, Expr] | None = None) -> dict[str, Expr]:
    """Raw (unsimplified) gradients of the scalar ``f`` with respect to ``names``. A name
    that ``f`` does not use gets zeros of its shape when ``declared`` has its symbol (as in
    SymPy and JAX); otherwise it is an error that lists the variables.

    >>> from matdiff.expr import sym
    >>> x = sym("x", ("n",)); gradients(x.T @ x, ["x"])["x"] is add(x, x)
    True
    """
    if not f.is_scalar:
        raise MatdiffError(f"the gradient needs a scalar function, but this one is "
                           f"{f.rows}x{f.cols}; use jacobian for vector or matrix functions")
    _real_valued(f)
    symbols = free_symbols(f)
    dep = _depends(f, set(names))
    bars: dict[Expr, list[Expr]] = {f: [const(1)]}
    for node in reversed(toposort([f])):
        if node not in dep or node not in bars:
            continue
        y_bar = add(*bars[node])
        if node.op is Op.SYMBOL:
            bars[node] = [y_bar]
            continue
        for arg, arg_bar in zip(node.args, vjp(y_bar, node), strict=False):
            if arg in dep and arg_bar is not None:
                bars.setdefault(arg, []).append(arg_bar)
    out: dict[str, Expr] = {}
    for name in names:
        x = symbols.get(name) or (declared or {}).get(name)
        if x is None:
            raise MatdiffError(f"'{name}' does not occur in the expression; its variables are "
                               + ", ".join(symbols) if symbols else "it has no variables")
        g = add(*bars[x]) if x in bars else zeros(x.shape)
        if x.symmetric:
            g = scale(const(Fraction(1, 2)), add(g, T(g)))
        out[name] = g
    return out


def grad(f: Expr, wrt: str | Sequence[str]) -> Expr | dict[str, Expr]:
    """Gradient (unsimplified) of a scalar expression; one name gives one Expr, a list a dict.

    >>> from matdiff.expr import sym
    >>> A, X = sym("A", ("n", "n")), sym("X", ("n", "n"))
    >>> from matdiff.expr import trace
    >>> grad(trace(A @ X), "X") is A.T
    True
    """
    if isinstance(wrt, str):
        return gradients(f, [wrt])[wrt]
    return gradients(f, list(wrt))
