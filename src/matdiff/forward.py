"""Forward mode: differentials, Jacobians, Hessians and Hessian-vector products.

Input: an expression ``F`` and a variable name ``X``. Output, all as ``Expr``:

* ``differential(F, "X")``: ``dF``, linear in a new symbol ``dX`` with ``X``'s shape
  (``A*dX*B``, ``-inv(X)*dX*inv(X)``). The sweep runs over the toposorted DAG, children
  first; the ``JVP`` table maps ``(y, xs_dot)`` (a node and its arguments' tangents) to the
  tangent ``y_dot``. Zero tangents are plain zero nodes, folded by the smart constructors.
* ``jacobian(F, "X")``: ``J = d vec(F) / d vec(X)ᵀ``, shape (size F, size X), column-major
  ``vec``. ``J`` is identified from ``dF`` (Magnus & Neudecker, *Matrix Differential
  Calculus*, ch. 9) by the ``VEC`` table, which writes each node linear in ``dX`` as
  ``M vec(dX)``: ``vec(A dX B) = (Bᵀ ⊗ A) vec dX``, ``vec(dXᵀ) = K vec dX``,
  ``vec(a ⊙ dX) = Diag(vec a) vec dX``, ``tr(C dX) = vec(Cᵀ)ᵀ vec dX``. A scalar's row
  ``vec(G)ᵀ`` comes from reverse mode: a coefficient moves inwards through each linear node
  by that node's adjoint, which is its row of the ``VJP`` table (``diff.adjoint``).
* ``hessian(f, "X")``: ``H = d vec(∇f) / d vec(X)ᵀ``, the Jacobian of the gradient
  (forward over reverse).
* ``hvp(f, "X", "V")``: ``H vec(V)`` as a matrix with ``V``'s shape: the JVP of the gradient
  in the direction ``V``; it always exists, as does ``dF``.

Contract: a result is never silently wrong. Where ``dX`` enters a node with no rule in the
``VEC`` table, ``jacobian`` raises ``MatdiffError`` and points to ``differential``/``hvp``.
Results are simplified; sums and Hadamard products keep the order of the derivation
(product rule: ``dU V + U dV``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from fractions import Fraction

from .diff import (
    adjoint,
    at_largest_magnitude,
    eigen_resolvent,
    eigvec_tangent,
    extreme_weights,
    gradients,
    linear_in,
    logsumexp_weights,
    phi,
    pinv_tangent,
    polar_tangent,
    softmax_tangent,
    sqrt_one_minus_square,
    sqrt_one_plus_square,
    sym_part,
    top_singular,
)
from .expr import (
    ONE,
    OPS,
    Dim,
    Expr,
    H,
    MatdiffError,
    Op,
    T,
    add,
    apply,
    block,
    block_offsets,
    commutation,
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
    imag,
    imag_unit,
    inv,
    is_zero,
    kron,
    matmul,
    matpow,
    mean,
    neg,
    ones,
    polar,
    real,
    scale,
    slice_,
    svd_u1,
    svd_v1,
    sym,
    toposort,
    total,
    trace,
    tril,
    unvec,
    vec,
    zeros,
)
from .simplify import RULES, TRANSPOSES, rebuild, simplify

__all__ = ["JVP", "VEC", "jvp", "differential", "jacobian", "jacobian_pair", "split_conjugate",
           "hessian", "hessian_pair", "hvp", "identify", "differential_name", "hvp_direction"]

Rule = Callable[[Expr, list[Expr]], Expr]


# ----------------------------------------------------------------------------- tangent rules


def _prod(factors: Sequence[Expr], n: Dim) -> Expr:
    """Matrix product of ``factors``; the identity of size ``n`` when there are none."""
    return matmul(*factors) if factors else eye(n) if n != ONE else const(1)


def _matmul_jvp(y: Expr, xs_dot: list[Expr]) -> Expr:
    """C = A1 ... An:  dC = Σ A1..dAi..An."""
    f = y.args
    return add(*(matmul(*f[:i], a_dot, *f[i + 1:]) for i, a_dot in enumerate(xs_dot)))


def _hadamard_jvp(y: Expr, xs_dot: list[Expr]) -> Expr:
    """C = A1 ⊙ ... ⊙ An:  dC = Σ A1 ⊙ .. dAi .. ⊙ An."""
    f = y.args
    return add(*(hadamard(*f[:i], a_dot, *f[i + 1:]) for i, a_dot in enumerate(xs_dot)))


def _pow_jvp(y: Expr, xs_dot: list[Expr]) -> Expr:
    """C = X .^ p:  dC = p X .^ (p-1) ⊙ dX + dp C ⊙ log X."""
    (x, p), (x_dot, p_dot) = y.args, xs_dot
    return add(scale(p, hadamard(hpow(x, add(p, const(-1))), x_dot)),
               scale(p_dot, hadamard(y, apply(Op.LOG, x))))


def _matpow_jvp(y: Expr, xs_dot: list[Expr]) -> Expr:
    """C = X^k:  dC = Σ_{i<k} X^i dX X^(k-1-i)."""
    x, k = y.args[0], y.attr
    return add(*(matmul(matpow(x, i), xs_dot[0], matpow(x, k - 1 - i)) for i in range(k)))


def _block_jvp(y: Expr, xs_dot: list[Expr]) -> Expr:
    """C = [A_ij]:  dC = [dA_ij]."""
    r, c = y.attr
    return block([xs_dot[i * c:(i + 1) * c] for i in range(r)])


def _norm_jvp(y: Expr, xs_dot: list[Expr]) -> Expr:
    """c = ||X||_2:  dc = Re tr(Xᴴ dX) / c;  c = ||X||_1:  dc = sum(sign(X) ⊙ dX), for a
    complex X sum(d|X|)."""
    x, x_dot = y.args[0], xs_dot[0]
    if y.attr == "1":
        if x.is_complex:
            return total(_modulus_dot(x, x_dot))
        return total(hadamard(apply(Op.SIGN, x), x_dot))
    return scale(hpow(y, -1), real(trace(matmul(H(x), x_dot))))


def _modulus_dot(x: Expr, x_dot: Expr) -> Expr:
    """d|X| = Re(X̄ ⊙ dX) ./ |X| (entrywise; sign(X) ⊙ dX for a real X)."""
    if not x.is_complex:
        return hadamard(apply(Op.SIGN, x), x_dot)
    return hdiv(real(hadamard(conj(x), x_dot)), apply(Op.ABS, x))


def _ew(derivative: Callable[[Expr, Expr], Expr]) -> Rule:
    """An elementwise function: dC = f'(X) ⊙ dX, with f' written from X and C = f(X)."""
    return lambda y, xs_dot: hadamard(derivative(y.args[0], y), xs_dot[0])


def _one(x: Expr) -> Expr:
    return ones(x.shape)


def _zero(y: Expr, xs_dot: list[Expr]) -> Expr:
    return zeros(y.shape)


def _matrix_function_jvp(y: Expr, xs_dot: list[Expr]) -> Expr:
    """C = f(X):  dC = L_f(X, dX), the upper right block of f([X, dX; 0, X])."""
    return frechet(OPS[y.op].ascii[0], y.args[0], xs_dot[0])


def _frechet_jvp(y: Expr, xs_dot: list[Expr]) -> Expr:
    """C = L_f(A, E) = f(B)[0:n, n:2n], B = [A, E; 0, A]:  dC = L_f(B, dB)[0:n, n:2n],
    dB = [dA, dE; 0, dA]."""
    (a, e), (a_dot, e_dot) = y.args, xs_dot
    n = a.rows
    b_dot = frechet_block(a_dot, e_dot)
    return slice_(frechet(y.attr, frechet_block(a, e), b_dot), 0, n, n, 2 * n)


def _extreme_jvp(y: Expr, xs_dot: list[Expr]) -> Expr:
    """C = max(X, Y) (or min):  dC = H ⊙ dX + (𝟏 − H) ⊙ dY (diff.extreme_weights)."""
    h_x, h_z = extreme_weights(y)
    return add(hadamard(h_x, xs_dot[0]), hadamard(h_z, xs_dot[1]))


def _eigval_jvp(y: Expr, xs_dot: list[Expr]) -> Expr:
    """c = λ(X), unit eigenvector v:  dc = vᵀ dX v."""
    v = eigvec(y.args[0], y.attr)
    return matmul(T(v), xs_dot[0], v)


def _eigvec_jvp(y: Expr, xs_dot: list[Expr]) -> Expr:
    """v = eigvec(X):  dv = R dS v − v vᵀ dS v, dS = (dX + dXᵀ)/2."""
    x = y.args[0]
    r = eigen_resolvent(sym_part(x), eigval(x, y.attr), y)
    return eigvec_tangent(r, y, sym_part(xs_dot[0]))


def _svd_v1_jvp(y: Expr, xs_dot: list[Expr]) -> Expr:
    """v₁ = eigvec_max(XᵀX):  dv₁ = R dG v₁ − v₁ v₁ᵀ dG v₁, dG = dXᵀX + XᵀdX."""
    x, x_dot = y.args[0], xs_dot[0]
    *_, r = top_singular(x)
    return eigvec_tangent(r, y, add(matmul(T(x_dot), x), matmul(T(x), x_dot)))


def _svd_u1_jvp(y: Expr, xs_dot: list[Expr]) -> Expr:
    """u₁ = X v₁/σ₁:  du₁ = (dX v₁ + X dv₁ − u₁ u₁ᵀ dX v₁)/σ₁."""
    x, x_dot = y.args[0], xs_dot[0]
    sigma, u, v, _ = top_singular(x)
    v_dot = _svd_v1_jvp(svd_v1(x), xs_dot)
    return scale(hpow(sigma, -1), add(matmul(x_dot, v), matmul(x, v_dot),
                                      neg(scale(matmul(T(u), x_dot, v), u))))


def _adj_jvp(y: Expr, xs_dot: list[Expr]) -> Expr:
    """A = adj X = det(X) X⁻¹:  dA = tr(X⁻¹ dX) A − X⁻¹ dX A."""
    x_inv, x_dot = inv(y.args[0]), xs_dot[0]
    return add(scale(trace(matmul(x_inv, x_dot)), y), neg(matmul(x_inv, x_dot, y)))


def _chol_jvp(y: Expr, xs_dot: list[Expr]) -> Expr:
    """L = chol(S):  dL = L Φ(L⁻¹ dS L⁻ᵀ), dS = (dX + dXᵀ)/2 (Murray 2016)."""
    l_inv = inv(y)
    return matmul(y, phi(matmul(l_inv, sym_part(xs_dot[0]), T(l_inv))))


JVP: dict[Op, Rule] = {
    Op.SYMBOL: _zero,
    Op.CONST: _zero,
    Op.IDENTITY: _zero,
    Op.ONES: _zero,
    Op.ZERO: _zero,
    Op.COMMUTATION: _zero,
    Op.ADD: lambda y, d: add(*d),                                           # d(ΣAi) = ΣdAi
    Op.SCALE: lambda y, d: add(scale(d[0], y.args[1]), scale(y.args[0], d[1])),  # da X + a dX
    Op.MATMUL: _matmul_jvp,
    Op.TRANSPOSE: lambda y, d: T(d[0]),                                     # d(Xᵀ) = (dX)ᵀ
    Op.HADAMARD: _hadamard_jvp,
    Op.HDIV: lambda y, d: add(hdiv(d[0], y.args[1]),                        # dA ./ B
                              neg(hdiv(hadamard(y, d[1]), y.args[1]))),     # - C ⊙ dB ./ B
    Op.POW: _pow_jvp,
    Op.KRON: lambda y, d: add(kron(d[0], y.args[1]), kron(y.args[0], d[1])),  # dA⊗B + A⊗dB
    Op.BLOCK: _block_jvp,
    Op.SLICE: lambda y, d: slice_(d[0], *y.attr),                           # d(X[s]) = dX[s]
    Op.TRIL: lambda y, d: tril(d[0]),                                       # d tril X = tril dX
    Op.TRACE: lambda y, d: trace(d[0]),                                     # d tr X = tr dX
    Op.DET: lambda y, d: scale(y, trace(matmul(inv(y.args[0]), d[0]))),     # det X tr(X⁻¹dX)
    Op.LOGDET: lambda y, d: trace(matmul(inv(y.args[0]), d[0])),            # tr(X⁻¹ dX)
    Op.INV: lambda y, d: neg(matmul(y, d[0], y)),                           # -X⁻¹ dX X⁻¹
    Op.MATPOW: _matpow_jvp,
    Op.DIAG: lambda y, d: diag(d[0]),
    Op.DIAGM: lambda y, d: diagm(d[0]),
    Op.VEC: lambda y, d: vec(d[0]),
    Op.UNVEC: lambda y, d: unvec(d[0], *y.attr),
    Op.SUM: lambda y, d: total(d[0]),
    Op.MEAN: lambda y, d: mean(d[0]),                                       # d mean X = mean dX
    Op.MAX: _extreme_jvp,                                                   # H ⊙ dX + (1−H) ⊙ dY
    Op.MIN: _extreme_jvp,
    Op.LOGSUMEXP: lambda y, d: total(hadamard(logsumexp_weights(y.args[0], y), d[0])),
    Op.SOFTMAX: lambda y, d: softmax_tangent(y, d[0]),                      # s ⊙ dx − (sᵀdx) s
    Op.NORM: _norm_jvp,
    Op.INF_NORM: lambda y, d: total(hadamard(at_largest_magnitude(y.args[0], y), d[0])),
    Op.EXPM: _matrix_function_jvp,                                          # L_exp(X, dX)
    Op.LOGM: _matrix_function_jvp,                                          # L_log(X, dX)
    Op.SQRTM: _matrix_function_jvp,                                         # L_sqrt(X, dX)
    Op.FRECHET: _frechet_jvp,
    Op.EIGVAL: _eigval_jvp,                                                 # vᵀ dX v
    Op.EIGVEC: _eigvec_jvp,                                                 # R dS v − v vᵀdSv
    Op.SPECTRAL_NORM: lambda y, d: matmul(T(svd_u1(y.args[0])), d[0], svd_v1(y.args[0])),
    Op.NUCLEAR_NORM: lambda y, d: trace(matmul(T(polar(y.args[0])), d[0])),  # tr(VUᵀ dX)
    Op.POLAR: lambda y, d: polar_tangent(y.args[0], y, d[0]),
    Op.SVD_U1: _svd_u1_jvp,
    Op.SVD_V1: _svd_v1_jvp,
    Op.PINV: lambda y, d: pinv_tangent(y.args[0], y, d[0]),
    Op.ADJ: _adj_jvp,                                                       # tr(X⁻¹dX)A − X⁻¹dXA
    Op.CHOL: _chol_jvp,                                                     # L Φ(L⁻¹dSL⁻ᵀ)
    Op.EXP: _ew(lambda x, y: y),                                            # exp' = exp
    Op.LOG: lambda y, d: hdiv(d[0], y.args[0]),                             # dX ./ X
    Op.SIN: _ew(lambda x, y: apply(Op.COS, x)),
    Op.COS: _ew(lambda x, y: neg(apply(Op.SIN, x))),
    Op.TAN: _ew(lambda x, y: add(_one(x), hpow(y, 2))),                     # tan' = 1 + tan²
    Op.TANH: _ew(lambda x, y: add(_one(x), neg(hpow(y, 2)))),               # tanh' = 1 - tanh²
    Op.SQRT: lambda y, d: hdiv(d[0], scale(const(2), y)),                   # dX ./ (2 sqrt X)
    Op.ABS: lambda y, d: _modulus_dot(y.args[0], d[0]),                     # Re(x̄ dx)/|x|
    Op.SIGN: _zero,                                                         # sign' = 0 (a.e.)
    Op.SIGMOID: _ew(lambda x, y: hadamard(y, add(_one(x), neg(y)))),        # σ' = σ(1 - σ)
    Op.RELU: _ew(lambda x, y: apply(Op.SIGN, y)),                           # relu' = [x > 0]
    Op.ARCSIN: lambda y, d: hdiv(d[0], sqrt_one_minus_square(y.args[0])),  # 1/sqrt(1 - x²)
    Op.ARCCOS: lambda y, d: neg(hdiv(d[0], sqrt_one_minus_square(y.args[0]))),
    Op.ARCTAN: lambda y, d: hdiv(d[0], add(_one(y), hpow(y.args[0], 2))),   # 1/(1 + x²)
    Op.SOFTPLUS: _ew(lambda x, y: apply(Op.SIGMOID, x)),                    # softplus' = σ
    Op.LOG1P: lambda y, d: hdiv(d[0], add(_one(y), y.args[0])),             # dX ./ (1 + X)
    Op.EXPM1: _ew(lambda x, y: apply(Op.EXP, x)),                           # expm1' = exp
    Op.SINH: _ew(lambda x, y: apply(Op.COSH, x)),                           # sinh' = cosh
    Op.COSH: _ew(lambda x, y: apply(Op.SINH, x)),                           # cosh' = sinh
    Op.ARCSINH: lambda y, d: hdiv(d[0], sqrt_one_plus_square(y.args[0])),   # 1/sqrt(1 + x²)
    # complex numbers
    Op.IMAG_UNIT: _zero,
    Op.CONJ: lambda y, d: conj(d[0]),                                       # d X̄ = conj(dX)
    Op.REAL: lambda y, d: real(d[0]),                                       # d Re X = Re dX
    Op.IMAG: lambda y, d: imag(d[0]),                                       # d Im X = Im dX
    Op.ANGLE: lambda y, d: imag(hdiv(d[0], y.args[0])),                     # d arg X = Im(dX/X)
}


def _depends(root: Expr, names: set[str]) -> set[Expr]:
    """Nodes of ``root`` that depend on any of the variables ``names``."""
    dep: set[Expr] = set()
    for node in toposort([root]):
        if node.op is Op.SYMBOL and node.name in names or any(a in dep for a in node.args):
            dep.add(node)
    return dep


def jvp(f: Expr, tangents: dict[str, Expr]) -> Expr:
    """Raw (unsimplified) tangent of ``f`` given the tangents of some of its variables.

    >>> X = sym("X", ("n", "n")); V = sym("V", ("n", "n"))
    >>> str(jvp(X @ X, {"X": V}))
    'V*X + X*V'
    """
    dep = _depends(f, set(tangents))
    dots: dict[Expr, Expr] = {}
    for node in toposort([f]):
        if node not in dep:
            continue
        if node.op is Op.SYMBOL:
            x_dot = tangents[node.name]
            if x_dot.shape != node.shape:
                raise MatdiffError(f"the direction for {node.name} must have its shape")
            dots[node] = x_dot
            continue
        xs_dot = [dots[a] if a in dots else zeros(a.shape) for a in node.args]
        dots[node] = JVP[node.op](node, xs_dot)
    return dots.get(f, zeros(f.shape))


# ----------------------------------------------------------------------------- identification


def _then(outer: Expr, inner: Expr) -> Expr:
    """``outer @ inner``, with the mixed product (A⊗B)(C⊗D) = AC⊗BD where it fits (through
    sums and products that start with a Kronecker product) and Diag(a) Diag(b) = Diag(a ⊙ b)."""
    if outer.op is Op.DIAGM and inner.op is Op.DIAGM:
        u, v = outer.args[0], inner.args[0]
        if u.op is Op.VEC and v.op is Op.VEC and u.args[0].shape == v.args[0].shape:
            return diagm(vec(hadamard(u.args[0], v.args[0])))      # vec a ⊙ vec b = vec(a ⊙ b)
        return diagm(hadamard(u, v))
    folded = _mixed_product(outer, inner) if outer.op is Op.KRON else None
    return matmul(outer, inner) if folded is None else folded


def _mixed_product(outer: Expr, inner: Expr) -> Expr | None:
    """(A⊗B) inner with every Kronecker factor of ``inner`` absorbed, or None."""
    (a, b) = outer.args
    if inner.op is Op.KRON:
        c, d = inner.args
        return kron(matmul(a, c), matmul(b, d)) if a.cols == c.rows and b.cols == d.rows \
            else None
    if inner.op is Op.MATMUL:
        head = _mixed_product(outer, inner.args[0])
        return None if head is None else matmul(head, *inner.args[1:])
    if inner.op is Op.SCALE:
        body = _mixed_product(outer, inner.args[1])
        return None if body is None else scale(inner.args[0], body)
    if inner.op is Op.ADD:
        terms = [_mixed_product(outer, t) for t in inner.args]
        folded = [t for t in terms if t is not None]
        return None if len(folded) != len(terms) else add(*folded)
    return None


def _eye(n: Dim) -> Expr:
    """The identity of size n; the number 1 when n = 1 (a scalar variable)."""
    return const(1) if n == ONE else eye(n)


def _selector(n: Dim, start: Dim, stop: Dim) -> Expr:
    """``E`` (n × (stop-start)) with E Y placing Y at rows start..stop-1 of n: [0; I; 0]."""
    h = stop - start
    parts = [zeros((start, h)), _eye(h), zeros((n - stop, h))]
    return block([[p] for p in parts if p.rows != 0])


# Linear nodes whose row comes from the VEC table, not from their adjoint: a slice's adjoint
# pads the coefficient with zero blocks, its VEC row is a product of selector matrices.
_BY_SELECTORS = frozenset({Op.SLICE})


class _Identify:
    """``M`` with ``vec(e) = M vec(dX)`` for expressions ``e`` linear in the symbol ``dX``."""

    def __init__(self, root: Expr, dx: Expr):
        self.dx = dx
        self.size = dx.rows * dx.cols
        self.dep = _depends(root, {dx.name})
        self.memo: dict[Expr, Expr] = {}

    def has(self, e: Expr) -> bool:
        return e in self.dep

    def __call__(self, e: Expr) -> Expr:
        """M with vec(e) = M vec(dX); a scalar's row comes from ``row``, as a gradient."""
        if e.is_scalar and e in self.dep and e is not self.dx:
            return self.row(e, const(1))
        return self.table(e)

    def table(self, e: Expr) -> Expr:
        """M with vec(e) = M vec(dX), by the VEC table."""
        if e not in self.dep:
            return zeros((e.rows * e.cols, self.size))
        if e is self.dx:
            return _eye(self.size)
        if e not in self.memo:
            rule = VEC.get(e.op)
            if rule is None:
                raise MatdiffError(
                    f"{self.dx.name} enters {e.op.name.lower()}(...) in the differential, "
                    "which has no closed vec/Kronecker form in matdiff; the differential "
                    "(md.differential) and the Hessian-vector product (md.hvp) always exist")
            self.memo[e] = rule(e, self)
        return self.memo[e]

    def row(self, e: Expr, coeff: Expr) -> Expr:
        """The row r with sum(coeff ⊙ e) = r vec(dX), for e linear in dX: through each
        linear node the coefficient moves inwards to dX by the node's adjoint (its VJP
        row, as in reverse mode), so the row reads vec(G)ᵀ; other nodes by the VEC table."""
        if e not in self.dep:
            return zeros((ONE, self.size))
        if coeff.op is Op.SCALE:                      # scalar factors stay in front
            return scale(coeff.args[0], self.row(e, coeff.args[1]))
        if coeff.is_scalar and coeff is not const(1):  # sum(c ⊙ y) = c y for a scalar y
            return scale(coeff, self.row(e, const(1)))
        slots = [i for i, a in enumerate(e.args) if self.has(a)]
        if e.op in _BY_SELECTORS or not linear_in(e, slots):
            return matmul(T(vec(coeff)), self.table(e))    # vec(C)ᵀ vec(e)
        return add(*(self.row(e.args[i], x_bar)
                     for i, x_bar in zip(slots, adjoint(coeff, e, slots), strict=True)))


def _scale_vec(e: Expr, m: _Identify) -> Expr:
    """vec(a Y) = a vec(Y) = vec(Y) a."""
    a, y = e.args
    return add(scale(a, m(y)) if m.has(y) else zeros((e.rows * e.cols, m.size)),
               matmul(vec(y), m(a)) if m.has(a) else zeros((e.rows * e.cols, m.size)))


def _matmul_vec(e: Expr, m: _Identify) -> Expr:
    """vec(L Y R) = (Rᵀ ⊗ L) vec(Y)."""
    f = e.args
    return add(*(_then(kron(T(_prod(f[i + 1:], y.cols)), _prod(f[:i], y.rows)), m(y))
                 for i, y in enumerate(f) if m.has(y)))


def _transpose_vec(e: Expr, m: _Identify) -> Expr:
    """vec(Yᵀ) = K(p, q) vec(Y) for Y p×q; K = I for a vector."""
    y = e.args[0]
    if y.rows == ONE or y.cols == ONE:
        return m(y)
    return matmul(commutation(y.rows, y.cols), m(y))


def _hadamard_vec(e: Expr, m: _Identify) -> Expr:
    """vec(A ⊙ Y) = Diag(vec A) vec(Y)."""
    f = e.args
    return add(*(_then(diagm(vec(hadamard(*f[:i], *f[i + 1:]))), m(y))
                 for i, y in enumerate(f) if m.has(y)))


def _hdiv_vec(e: Expr, m: _Identify) -> Expr:
    """vec(Y ./ B) = Diag(vec(1 ./ B)) vec(Y)."""
    y, b = e.args
    if m.has(b):
        raise MatdiffError(f"the differential is not linear in {m.dx.name}")
    return _then(diagm(vec(hdiv(ones(b.shape), b))), m(y))


def _kron_vec(e: Expr, m: _Identify) -> Expr:
    """vec(A ⊗ B) = (I_n ⊗ K(q, m) ⊗ I_p)(vec A ⊗ vec B)  (M&N Thm 3.10), A m×n, B p×q;
    vec A ⊗ vec B = (I_mn ⊗ vec B) vec A = (vec A ⊗ I_pq) vec B."""
    a, b = e.args
    (ma, na), (pb, qb) = a.shape, b.shape
    mix = kron(kron(eye(na), commutation(qb, ma)), eye(pb))
    terms = []
    if m.has(a):
        terms.append(matmul(mix, kron(eye(ma * na), vec(b)), m(a)))
    if m.has(b):
        terms.append(matmul(mix, kron(vec(a), eye(pb * qb)), m(b)))
    return add(*terms)


def _diag_vec(e: Expr, m: _Identify) -> Expr:
    """diag(Y) = (1ᵀ ⊗ I) Diag(vec I) vec(Y)."""
    n = e.rows
    return matmul(kron(T(ones((n, ONE))), eye(n)), diagm(vec(eye(n))), m(e.args[0]))


def _diagm_vec(e: Expr, m: _Identify) -> Expr:
    """vec(Diag(y)) = Diag(vec I) (1 ⊗ I) y;  vec(Diag(diag Z)) = vec(I ⊙ Z) = Diag(vec I) vec Z."""
    n, y, coeff = e.rows, e.args[0], const(1)
    while y.op is Op.SCALE and not m.has(y.args[0]):
        coeff, y = scale(coeff, y.args[0]), y.args[1]
    if y.op is Op.DIAG:
        return scale(coeff, matmul(diagm(vec(eye(n))), m(y.args[0])))
    return matmul(diagm(vec(eye(n))), kron(ones((n, ONE)), eye(n)), m(e.args[0]))


def _slice_vec(e: Expr, m: _Identify) -> Expr:
    """Y[r0:r1, c0:c1] = Eᵀ Y F with E, F selectors:  vec = (Fᵀ ⊗ Eᵀ) vec(Y)."""
    y = e.args[0]
    r0, r1, c0, c1 = e.attr
    left, right = T(_selector(y.rows, r0, r1)), _selector(y.cols, c0, c1)
    return _then(kron(T(right), left), m(y))


def _block_vec(e: Expr, m: _Identify) -> Expr:
    """[Y_ij] = Σ E_i Y_ij F_jᵀ with E_i, F_j selectors:  vec = Σ (F_j ⊗ E_i) vec(Y_ij)."""
    c = e.attr[1]
    rows, cols = block_offsets(e)
    terms = []
    for k, y in enumerate(e.args):
        if m.has(y):
            i, j = divmod(k, c)
            place = kron(_selector(e.cols, cols[j], cols[j + 1]),
                         _selector(e.rows, rows[i], rows[i + 1]))
            terms.append(_then(place, m(y)))
    return add(*terms)


VEC: dict[Op, Callable[[Expr, _Identify], Expr]] = {
    Op.ADD: lambda e, m: add(*(m(t) for t in e.args if m.has(t))),
    Op.SCALE: _scale_vec,
    Op.MATMUL: _matmul_vec,
    Op.TRANSPOSE: _transpose_vec,
    Op.HADAMARD: _hadamard_vec,
    Op.HDIV: _hdiv_vec,
    Op.KRON: _kron_vec,
    Op.BLOCK: _block_vec,
    Op.SLICE: _slice_vec,
    Op.TRACE: lambda e, m: m.row(e, const(1)),                      # tr Y = vec(I)ᵀ vec Y
    Op.SUM: lambda e, m: m.row(e, const(1)),                        # sum Y = 1ᵀ vec Y
    Op.MEAN: lambda e, m: m.row(e, const(1)),                       # mean Y = 1ᵀ vec Y/(mn)
    Op.DIAG: _diag_vec,
    Op.DIAGM: _diagm_vec,
    Op.VEC: lambda e, m: m(e.args[0]),
    Op.UNVEC: lambda e, m: m(e.args[0]),
    Op.TRIL: lambda e, m: _then(diagm(vec(tril(ones(e.shape)))), m(e.args[0])),  # mask
}


def identify(d_f: Expr, dx: Expr) -> Expr:
    """The matrix ``M`` with ``vec(d_f) = M vec(dx)``, for ``d_f`` linear in the symbol ``dx``.

    >>> A, dX, B = sym("A", ("p", "m")), sym("dX", ("m", "n")), sym("B", ("n", "q"))
    >>> str(identify(A @ dX @ B, dX))
    "kron(B', A)"
    """
    return _Identify(d_f, dx)(d_f)


# ----------------------------------------------------------------------------- tidying


# A differential keeps its transposes where the rules put them (dXᵀ stays visible); a
# Jacobian is identified after the transposes are pushed to the leaves.
DIFFERENTIAL_RULES = RULES - TRANSPOSES


def _first_seen(reference: Expr) -> dict[Expr, int]:
    """Each node of ``reference`` and its place in reading order (pre-order, left to right,
    each shared node at its first occurrence)."""
    seen: dict[Expr, int] = {}
    stack = [reference]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen[node] = len(seen)
        stack.extend(reversed(node.args))
    return seen


def _in_order(e: Expr, reference: Expr) -> Expr:
    """``e`` with the terms of sums and the factors of Hadamard products in the order in
    which they first occur in ``reference`` (the unsimplified expression, read left to
    right): the derivation's order. Terms that do not occur keep their order, after."""
    seen = _first_seen(reference)
    memo: dict[Expr, Expr] = {}
    for node in toposort([e]):
        args = tuple(memo[a] for a in node.args)
        if node.op in (Op.ADD, Op.HADAMARD):
            keys = [seen.get(a, -1) for a in node.args]
            order = sorted(range(len(args)), key=lambda i: (keys[i] < 0, keys[i], i))
            args = tuple(args[i] for i in order)
            memo[node] = node if args == node.args else Expr(node.op, args, node.attr)
        else:
            memo[node] = node if args == node.args else rebuild(node, args)
    return memo[e]


def _tidy(e: Expr) -> Expr:
    """Simplify, keeping the derivation's order of terms and factors."""
    return _in_order(simplify(e), e)


# ----------------------------------------------------------------------------- public verbs


def differential_name(f: Expr, name: str) -> Expr:
    """The symbol ``d<name>`` with the variable's shape; an error if ``f`` already uses it.

    >>> str(differential_name(sym("X", ("m", "n")), "X").shape[1])
    'n'
    """
    x = _variable(f, name)
    return _direction(f, "d" + name, x)


def _variable(f: Expr, name: str) -> Expr:
    symbols = free_symbols(f)
    if name not in symbols:
        known = f"its variables are {', '.join(symbols)}" if symbols else "it has no variables"
        raise MatdiffError(f"'{name}' does not occur in the expression; {known}")
    return symbols[name]


def _direction(f: Expr, name: str, x: Expr) -> Expr:
    if name in free_symbols(f):
        raise MatdiffError(f"the expression already uses the name '{name}', which is needed "
                           f"for the direction in which {x.name} moves")
    return sym(name, x.shape, "complex" if x.is_complex else "")


def differential(f: Expr, wrt: str) -> Expr:
    """``dF``: the differential of ``f``, linear in the symbol ``d<wrt>``.

    >>> from matdiff.expr import sym
    >>> X = sym("X", ("n", "n"))
    >>> str(differential(inv(X), "X"))
    '-inv(X)*dX*inv(X)'
    """
    dx = differential_name(f, wrt)
    raw = jvp(f, {wrt: dx})
    return _in_order(simplify(raw, rules=DIFFERENTIAL_RULES), raw)


def _conjugate_symbol(f: Expr, dx: Expr) -> Expr:
    """The symbol that stands for conj(dX) while the pair is identified: a complex symbol
    with dX's shape and a name no expression can spell (dX̄, with a combining macron)."""
    return _direction(f, dx.name + "\u0304", dx)


def split_conjugate(d_f: Expr, dx: Expr, dx_bar: Expr) -> Expr:
    """``d_f`` (ℝ-linear in ``dx``) written ℂ-linearly in ``dx`` and ``dx_bar`` = conj(dx):
    ``Re Y = (Y + Ȳ)/2``, ``Im Y = (Y - Ȳ)/2i`` wherever Y depends on dX (conj is pushed to
    the leaves by ``expr.conj``), then each ``conj(dX)`` becomes ``dx_bar``. Wirtinger:
    dF = J dX + J̄ dX̄ with J and J̄ the coefficients of the two symbols.

    >>> dz, dw = sym("dz", ("n",), "complex"), sym("dw", ("n",), "complex")
    >>> str(split_conjugate(real(dz), dz, dw))
    '0.5*(dz + dw)'
    """
    dep = _depends(d_f, {dx.name})
    half, i_half = const(Fraction(1, 2)), scale(neg(imag_unit()), const(Fraction(1, 2)))
    memo: dict[Expr, Expr] = {}
    for node in toposort([d_f]):
        args = tuple(memo[a] for a in node.args)
        if node not in dep:
            memo[node] = node
        elif node.op is Op.CONJ and node.args[0] is dx:
            memo[node] = dx_bar
        elif node.op in (Op.REAL, Op.IMAG):        # Y ± Ȳ, with conj(dX) → dX̄ inside
            y = args[0]
            y_bar = split_conjugate(conj(node.args[0]), dx, dx_bar)
            memo[node] = scale(half, add(y, y_bar)) if node.op is Op.REAL else \
                scale(i_half, add(y, neg(y_bar)))
        else:
            memo[node] = node if args == node.args else rebuild(node, args)
    return memo[d_f]


def _coefficient(d_f: Expr, dx: Expr) -> Expr:
    """The tidy matrix M with vec(d_f) = M vec(dx) + (terms without dx)."""
    return _tidy(identify(simplify(d_f, rules=TRANSPOSES), dx))


def jacobian_pair(f: Expr, wrt: str | Expr) -> tuple[Expr, Expr]:
    """The Wirtinger pair ``(J, J̄)``: ``J = ∂vec F/∂vec Xᵀ``, ``J̄ = ∂vec F/∂vec X̄ᵀ``, each
    (size F) × (size X), with ``dvec F = J dvec X + J̄ dvec X̄`` (Hjørungnes 2011, ch. 6);
    J̄ is zero for a holomorphic F and for a real X.

    >>> Z = sym("Z", ("m", "n"), "complex")
    >>> [str(j) for j in jacobian_pair(conj(Z), "Z")]
    ['zeros(m*n, m*n)', 'eye(m*n)']
    """
    x = _variable(f, wrt) if isinstance(wrt, str) else wrt     # a symbol f may not hold
    return _pair_of(f, x, _direction(f, "d" + x.name, x))


def _pair_of(f: Expr, x: Expr, dx: Expr) -> tuple[Expr, Expr]:
    dx_bar = _conjugate_symbol(f, dx)
    both = split_conjugate(jvp(f, {x.name: dx}), dx, dx_bar)   # Re(A dx) for a real x too
    if not x.is_complex:
        return _coefficient(both, dx), zeros((f.rows * f.cols, x.rows * x.cols))
    return _coefficient(both, dx), _coefficient(both, dx_bar)


def _jacobian_of(f: Expr, x: Expr, dx: Expr) -> Expr:
    j, j_bar = _pair_of(f, x, dx)
    if not is_zero(j_bar):
        raise MatdiffError(
            f"the function is not holomorphic in {x.name}: its differential has "
            f"conj({dx.name}), so it has no single complex Jacobian; md.jacobian (md.hessian "
            f"for a gradient) gives the Wirtinger pair (∂/∂{x.name}, ∂/∂conj({x.name}))")
    return j


def jacobian(f: Expr, wrt: str) -> Expr:
    """``J = d vec(F) / d vec(X)ᵀ`` in closed form, shape (size F, size X); for a complex X,
    an error unless F is holomorphic (``jacobian_pair`` gives the Wirtinger pair).

    >>> A, X = sym("A", ("p", "m")), sym("X", ("m", "n"))
    >>> str(jacobian(A @ X, "X")), str(jacobian(apply(Op.EXP, X), "X"))
    ('kron(eye(n), A)', 'Diag(vec(exp(X)))')
    """
    return _jacobian_of(f, _variable(f, wrt), differential_name(f, wrt))


def _gradient(f: Expr, wrt: str) -> Expr:
    if not f.is_scalar:
        raise MatdiffError(f"the Hessian needs a scalar function, but this one is "
                           f"{f.rows}x{f.cols}; use jacobian for vector or matrix functions")
    return simplify(gradients(f, [wrt])[wrt])


def hessian(f: Expr, wrt: str) -> Expr:
    """``H = d vec(∇f) / d vec(X)ᵀ``: n×n for a vector x, mn×mn for a matrix X.

    >>> A, x = sym("A", ("n", "n")), sym("x", ("n",))
    >>> str(hessian(x.T @ A @ x, "x"))
    "A + A'"
    """
    x = _variable(f, wrt)
    dx = differential_name(f, wrt)
    return _jacobian_of(_gradient(f, wrt), x, dx)


def hessian_pair(f: Expr, wrt: str) -> tuple[Expr, Expr]:
    """The Wirtinger pair of the gradient: ``(∂vec ∇f/∂vec Xᵀ, ∂vec ∇f/∂vec X̄ᵀ)``, with
    ``dvec ∇f = H dvec X + H̄ dvec X̄``; H̄ is zero where the gradient is holomorphic.

    >>> z, S = sym("z", ("n",), "complex"), sym("S", ("n", "n"))
    >>> [str(h) for h in hessian_pair(real(T(z) @ S @ z), "z")]     # ∇ = (S + Sᵀ) z̄
    ['zeros(n, n)', "S + S'"]
    """
    return _pair_of(_gradient(f, wrt), _variable(f, wrt), differential_name(f, wrt))


def hvp_direction(f: Expr, wrt: str, direction: str | None = None,
                  avoid: Iterable[str] = ()) -> Expr:
    """The direction symbol of ``hvp``: ``direction``, or the first of V, V1, V2, ... that
    neither ``f`` nor ``avoid`` uses, with the shape of ``wrt``.

    >>> U, V = sym("U", ("m", "k")), sym("V", ("n", "k"))
    >>> hvp_direction(U @ V.T, "U").name
    'V1'
    """
    x = _variable(f, wrt)
    if direction is None:
        used = {*free_symbols(f), *avoid}
        direction = next(n for n in ("V", *(f"V{i}" for i in range(1, 99))) if n not in used)
    return _direction(f, direction, x)


def hvp(f: Expr, wrt: str, direction: str | None = None) -> Expr:
    """The Hessian of ``f`` applied to a direction ``V`` (a symbol with ``wrt``'s shape;
    ``hvp_direction`` names it), as a matrix expression: ``unvec(H vec(V))``, the JVP of
    the gradient.

    >>> from matdiff.expr import norm
    >>> X = sym("X", ("m", "n"))
    >>> str(hvp(hpow(norm(X), 2), "X"))
    '2*V'
    """
    v = hvp_direction(f, wrt, direction)
    return _tidy(jvp(_gradient(f, wrt), {wrt: v}))

