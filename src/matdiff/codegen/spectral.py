"""Generated code for the spectral Ops: a template per Op and backend, and the imports and
helper functions each one needs in the generated source.

NumPy uses ``scipy.linalg`` (``expm``, ``logm``, ``sqrtm``, ``expm_frechet``,
``solve_sylvester``), JAX ``jax.scipy.linalg`` (``expm``, ``expm_frechet``, ``sqrtm``),
PyTorch ``torch.linalg`` (``matrix_exp``, ``eigh``, ``svd``, ``pinv``, ``cholesky``). Where a
backend lacks a function, a helper written with its own linear algebra computes it: the
principal square root by the Denman–Beavers iteration and the principal logarithm by inverse
scaling and squaring with a Gauss–Legendre (Padé) quadrature, both valid for any matrix with
no eigenvalue on the closed negative real axis, defective ones included (the block matrices
of Fréchet derivatives are). A Fréchet derivative is ``expm_frechet`` or the upper right
block of f([A, E; 0, A]) (Higham, *Functions of Matrices*, 2008, ch. 3), or for NumPy's
square root the Sylvester equation R L + L R = E: never a Kronecker product. Conventions
(eigenvector signs, symmetric parts) are those of ``matdiff.linalg``. One helper is not
spectral: NumPy's softplus, ``_softplus``, which ``emit.NUMPY`` calls.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..expr import Op

__all__ = ["ROWS", "IMPORTS", "HELPERS", "HELPER_ORDER", "HELPER_NAMES", "Spectral"]

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(8)
_GAUSS = ", ".join(f"({float(t + 1) / 2!r}, {float(w) / 2!r})" for t, w in zip(_NODES, _WEIGHTS,
                                                                    strict=True))

_SIGN = '''def _unit_sign(v):
    """v with its entry of largest absolute value positive."""
    k = {m}.argmax({m}.abs(v))
    return {m}.where(v[k] < 0, -v, v)                # traceable: jax.jit, jax.grad
'''
_SYM = '''def _sym(x):
    """The symmetric part (X + X')/2."""
    return (x + x.T) / 2
'''
_ADJ = '''def _adj(x):
    """The adjugate det(X) inv(X)."""
    return {m}.linalg.det(x) * {m}.linalg.inv(x)
'''
_EIGVEC = '''def _eigvec(x, k):
    """The unit eigenvector of the k-th eigenvalue of the symmetric part, a column."""
    _, v = {m}.linalg.eigh((x + x.T) / 2)
    return _unit_sign(v[:, k]).reshape(-1, 1)
'''
_SVD = '''def _svd_v1(x):
    """The right singular vector of the largest singular value, a column."""
    _, _, vt = {m}.linalg.svd(x, full_matrices=False)
    return _unit_sign(vt[0]).reshape(-1, 1)


def _svd_u1(x):
    """u1 = X v1 / sigma_max."""
    xv = x @ _svd_v1(x)
    return xv / {m}.linalg.norm(xv)
'''
_POLAR = '''def _polar(x):
    """U V' for the thin SVD X = U S V'."""
    u, _, vt = {m}.linalg.svd(x, full_matrices=False)
    return u @ vt
'''
_DB_SQRTM = '''def _sqrtm(a):
    """The principal square root: the scaled Denman-Beavers iteration."""
    n = a.shape[0]
    y, z = a, {eye}
    for _ in range(100):
        mu = abs(float({m}.linalg.det(y) * {m}.linalg.det(z))) ** (-1 / (2 * n))
        y, z = mu * y, mu * z
        y_next, z = (y + {m}.linalg.inv(z)) / 2, (z + {m}.linalg.inv(y)) / 2
        done = float({m}.linalg.norm(y_next - y)) <= 1e-15 * float({m}.linalg.norm(y_next))
        y = y_next
        if done:
            break
    return y
'''
_ISS_LOGM = '''def _logm(a):
    """The principal logarithm: square roots until |A - I| <= 1/4, then log(I + X) =
    int_0^1 X (I + tX)^-1 dt by 8-point Gauss-Legendre (the [8/8] Pade approximant)."""
    eye = {eye}
    k = 0
    while float({m}.linalg.norm(a - eye)) > 0.25 and k < 60:
        a, k = _sqrtm(a), k + 1
    x = a - eye
    out = 0 * x
    for t, w in [GAUSS]:
        out = out + w * {m}.linalg.solve(eye + t * x, x)
    return out * 2.0 ** k
'''.replace("[GAUSS]", f"[{_GAUSS}]")
_BLOCK = '''def _block_frechet(f, a, e):
    """L_f(A, E): the upper right block of f([A, E; 0, A])."""
    n = a.shape[0]
    return f({block})[:n, n:]
'''
_NUMPY_FRECHET = '''def _frechet_expm(a, e):
    return scipy.linalg.expm_frechet(a, e, compute_expm=False)


def _frechet_sqrtm(a, e):
    """L_sqrt(A, E): the solution L of R L + L R = E, R = A^(1/2)."""
    r = scipy.linalg.sqrtm(a)
    return scipy.linalg.solve_sylvester(r, r, e)


def _frechet_logm(a, e):
    return _block_frechet(scipy.linalg.logm, a, e)
'''
_JAX_SQRTM = '''def _sqrtm(a):
    return jax.scipy.linalg.sqrtm(a).real
'''
_JAX_FRECHET = '''def _frechet_expm(a, e):
    return jax.scipy.linalg.expm_frechet(a, e, compute_expm=False)


def _frechet_sqrtm(a, e):
    return _block_frechet(_sqrtm, a, e)


def _frechet_logm(a, e):
    return _block_frechet(_logm, a, e)
'''
_TORCH_FRECHET = '''def _frechet_expm(a, e):
    return _block_frechet(torch.linalg.matrix_exp, a, e)


def _frechet_sqrtm(a, e):
    return _block_frechet(_sqrtm, a, e)


def _frechet_logm(a, e):
    return _block_frechet(_logm, a, e)
'''

_EYE = {"numpy": "{m}.eye(a.shape[0])", "jax": "{m}.eye(a.shape[0])",
        "torch": "{m}.eye(a.shape[0], dtype=a.dtype, device=a.device)"}
_BLOCKS = {"numpy": "{m}.block([[a, e], [0 * a, a]])", "jax": "{m}.block([[a, e], [0 * a, a]])",
           "torch": "{m}.cat([{m}.cat([a, e], dim=1), {m}.cat([0 * a, a], dim=1)], dim=0)"}


def _helpers(backend: str, frechet: str, extra: dict[str, str]) -> dict[str, str]:
    fill = {"eye": _EYE[backend], "block": _BLOCKS[backend]}
    sources = {"sym": _SYM, "adj": _ADJ, "unit_sign": _SIGN, "eigvec": _EIGVEC, "svd": _SVD,
               "polar": _POLAR, "block_frechet": _BLOCK, "frechet": frechet, **extra}
    return {k: v.replace("{eye}", fill["eye"]).replace("{block}", fill["block"])
            for k, v in sources.items()}


_SOFTPLUS = '''def _softplus(x):
    """log(1 + e^x) without overflow, in cheaper passes than logaddexp(0, x)."""
    return {m}.maximum(x, 0) + {m}.log1p({m}.exp(-{m}.abs(x)))
'''

# helper sources per backend ({m} is the backend's module alias)
HELPERS: dict[str, dict[str, str]] = {
    "numpy": _helpers("numpy", _NUMPY_FRECHET, {"softplus": _SOFTPLUS}),
    "jax": _helpers("jax", _JAX_FRECHET, {"sqrtm": _JAX_SQRTM, "logm": _ISS_LOGM}),
    "torch": _helpers("torch", _TORCH_FRECHET, {"sqrtm": _DB_SQRTM, "logm": _ISS_LOGM}),
}
IMPORTS = {"numpy": "import scipy.linalg", "jax": "import jax.scipy.linalg", "torch": ""}

HELPER_ORDER = ("sym", "adj", "unit_sign", "eigvec", "svd", "polar", "sqrtm", "logm",
                "block_frechet", "frechet", "softplus")   # each uses only earlier ones
# the names the generated source defines
HELPER_NAMES = frozenset({"_sym", "_adj", "_unit_sign", "_eigvec", "_svd_v1", "_svd_u1",
                          "_polar", "_sqrtm", "_logm", "_block_frechet", "_frechet_expm",
                          "_frechet_logm", "_frechet_sqrtm", "_softplus"})


class Spectral(NamedTuple):
    """A backend row of a spectral function: its template (``{k}``: the eigenvalue's index,
    -1 for the largest; each operand written once, so a helper takes what needs it twice),
    whether it is a product (for the parentheses around it) and the helpers it calls."""

    text: str
    product: bool = False
    helpers: tuple[str, ...] = ()


_FRECHET = ("frechet", "block_frechet")
_COMMON: dict[object, Spectral] = {
    Op.TRIL: Spectral("{m}.tril({0})"),
    Op.EIGVAL: Spectral("{m}.linalg.eigvalsh(_sym({0}))[{k}]", helpers=("sym",)),
    Op.EIGVEC: Spectral("_eigvec({0}, {k})", helpers=("unit_sign", "eigvec")),
    Op.SPECTRAL_NORM: Spectral("{m}.linalg.norm({0}, 2)"),
    Op.NUCLEAR_NORM: Spectral("{m}.linalg.norm({0}, 'nuc')"),
    Op.POLAR: Spectral("_polar({0})", helpers=("polar",)),
    Op.SVD_U1: Spectral("_svd_u1({0})", helpers=("unit_sign", "svd")),
    Op.SVD_V1: Spectral("_svd_v1({0})", helpers=("unit_sign", "svd")),
    Op.PINV: Spectral("{m}.linalg.pinv({0})"),
    Op.ADJ: Spectral("_adj({0})", helpers=("adj",)),
    Op.CHOL: Spectral("{m}.linalg.cholesky(_sym({0}))", helpers=("sym",)),
    **{f"{f}_frechet": Spectral(f"_frechet_{f}({{0}}, {{1}})", helpers=_FRECHET)
       for f in ("expm", "logm", "sqrtm")},
}
# per backend; a key is an Op, or for a Fréchet derivative "expm_frechet", ...
ROWS: dict[str, dict[object, Spectral]] = {
    "numpy": {**_COMMON, Op.EXPM: Spectral("scipy.linalg.expm({0})"),
              Op.LOGM: Spectral("scipy.linalg.logm({0})"),
              Op.SQRTM: Spectral("scipy.linalg.sqrtm({0})")},
    "jax": {**_COMMON, Op.EXPM: Spectral("jax.scipy.linalg.expm({0})"),
            Op.LOGM: Spectral("_logm({0})", helpers=("sqrtm", "logm")),
            Op.SQRTM: Spectral("jax.scipy.linalg.sqrtm({0}).real"),
            **{f"{f}_frechet": Spectral(f"_frechet_{f}({{0}}, {{1}})",
                                        helpers=("sqrtm", "logm", *_FRECHET))
               for f in ("expm", "logm", "sqrtm")}},
    "torch": {**_COMMON, Op.EXPM: Spectral("{m}.linalg.matrix_exp({0})"),
              Op.LOGM: Spectral("_logm({0})", helpers=("sqrtm", "logm")),
              Op.SQRTM: Spectral("_sqrtm({0})", helpers=("sqrtm",)),
              **{f"{f}_frechet": Spectral(f"_frechet_{f}({{0}}, {{1}})",
                                          helpers=("sqrtm", "logm", *_FRECHET))
                 for f in ("expm", "logm", "sqrtm")},
              Op.SPECTRAL_NORM: Spectral("{m}.linalg.matrix_norm({0}, 2)"),
              Op.NUCLEAR_NORM: Spectral("{m}.linalg.matrix_norm({0}, 'nuc')")},
}
