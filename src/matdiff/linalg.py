"""NumPy reference values of the spectral functions, and where they are not differentiable.

Imports nothing of matdiff: ``check.EVAL`` (the reference evaluator, the oracle of every
check) and ``points.SPECTRAL_KINKS`` (where each is not differentiable) call these.
Conventions, as the README states them:

* ``eigval(X)`` / ``eigvec(X)`` read the symmetric part ``(X + Xᵀ)/2``; an eigenvector, and
  the top right singular vector ``v₁``, is a unit vector whose entry of largest absolute
  value is positive (the first such entry at a tie), so it is a smooth function of ``X``
  wherever its eigenvalue is simple; ``u₁ = X v₁ / σ₁``.
* ``logm`` and ``sqrtm`` are the principal branches, real for a real ``X`` with no
  eigenvalue on the closed negative real axis; elsewhere the value is NaN, so a check
  draws another point instead of comparing a complex branch.
* ``chol(X)`` is the lower factor of the symmetric part, NaN where that is not positive
  definite; ``polar(X) = UVᵀ`` for the thin SVD; ``adj(X)`` is the adjugate (cofactors where
  ``X`` is singular).
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

import numpy as np

__all__ = ["expm", "logm", "sqrtm", "frechet", "eigval", "eigvec", "polar", "svd_v1", "svd_u1",
           "adj", "chol", "canonical_sign", "eigen_gap", "singular_gap", "rank_margin",
           "spectral_cut"]

Array = np.ndarray


@cache
def _scipy() -> Any:
    """``scipy.linalg``, imported on first use (it adds a third to ``import matdiff``)."""
    return importlib.import_module("scipy.linalg")


def _nan(shape: tuple[int, ...]) -> Array:
    return np.full(shape, np.nan)


def _real(z: Array, like: Array) -> Array:
    """The real part of a principal branch, or NaN where the branch is complex (for a
    complex argument, the branch itself)."""
    z = np.asarray(z)
    if np.iscomplexobj(like):
        return z.astype(complex)
    scale = max(1.0, float(np.max(np.abs(z), initial=0.0)))
    if np.iscomplexobj(z) and float(np.max(np.abs(z.imag), initial=0.0)) > 1e-8 * scale:
        return _nan(like.shape)
    return np.real(z).astype(float)


def spectral_cut(x: Array) -> bool:
    """Whether X has an eigenvalue on (or too near) the closed negative real axis, where
    the principal logarithm and square root are not defined (or not smooth)."""
    lam = np.linalg.eigvals(x)
    scale = max(1.0, float(np.max(np.abs(lam), initial=0.0)))
    return bool(np.any((lam.real <= 1e-8 * scale) & (np.abs(lam.imag) <= 1e-8 * scale)))


def expm(x: Array) -> Array:
    """e^X (scipy's scaling and squaring)."""
    return _scipy().expm(x)


def logm(x: Array) -> Array:
    """The principal logarithm; NaN where it is not real."""
    if spectral_cut(x):
        return _nan(x.shape)
    return _real(_scipy().logm(x), x)


def sqrtm(x: Array) -> Array:
    """The principal square root; NaN where it is not real."""
    if spectral_cut(x):
        return _nan(x.shape)
    return _real(_scipy().sqrtm(x), x)


def frechet(f: str, a: Array, e: Array) -> Array:
    """L_f(A, E): scipy's ``expm_frechet``; for sqrtm the solution L of R L + L R = E with
    R = A^(1/2); for logm the upper right block of log([A, E; 0, A])."""
    if f == "expm":
        return _scipy().expm_frechet(a, e, compute_expm=False)
    if spectral_cut(a):
        return _nan(a.shape)
    if f == "sqrtm":
        r = sqrtm(a)
        return _scipy().solve_sylvester(r, r, e)
    n = a.shape[0]
    b = np.block([[a, e], [np.zeros_like(a), a]])
    return _real(_scipy().logm(b), b)[:n, n:]


def canonical_sign(v: Array) -> Array:
    """``v`` with its entry of largest absolute value positive.

    >>> canonical_sign(np.array([0.6, -0.8])).tolist()
    [-0.6, 0.8]
    """
    k = int(np.argmax(np.abs(v)))
    return v if v[k] >= 0 else -v


def _eigh(x: Array) -> tuple[Array, Array]:
    return np.linalg.eigh((x + x.T) / 2)


def eigval(x: Array, which: str) -> Array:
    """λ_max or λ_min of the symmetric part, as a 1×1 array."""
    w = np.linalg.eigvalsh((x + x.T) / 2)
    return np.array([[w[-1] if which == "max" else w[0]]])


def eigvec(x: Array, which: str) -> Array:
    """The unit eigenvector of λ_max or λ_min of the symmetric part (a column)."""
    _, v = _eigh(x)
    return canonical_sign(v[:, -1 if which == "max" else 0]).reshape(-1, 1)


def polar(x: Array) -> Array:
    """UVᵀ for the thin SVD X = UΣVᵀ."""
    u, _, vt = np.linalg.svd(x, full_matrices=False)
    return u @ vt


def svd_v1(x: Array) -> Array:
    """The right singular vector of σ_max (a column), largest entry positive."""
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    return canonical_sign(vt[0]).reshape(-1, 1)


def svd_u1(x: Array) -> Array:
    """u₁ = X v₁ / σ₁ (a column)."""
    v = svd_v1(x)
    return x @ v / np.linalg.norm(x, 2)


def adj(x: Array) -> Array:
    """The adjugate: det(X) X⁻¹, or the transposed cofactors where X is near singular."""
    n = x.shape[0]
    if n == 1:
        return np.ones((1, 1))
    if np.linalg.cond(x) < 1e8:
        return np.linalg.det(x) * np.linalg.inv(x)
    out = np.empty_like(x)
    for i in range(n):
        for j in range(n):
            minor = np.delete(np.delete(x, j, axis=0), i, axis=1)
            out[i, j] = (-1) ** (i + j) * np.linalg.det(minor)
    return out


def chol(x: Array) -> Array:
    """The lower Cholesky factor of the symmetric part; NaN where it is not positive
    definite."""
    try:
        return np.linalg.cholesky((x + x.T) / 2)
    except np.linalg.LinAlgError:
        return _nan(x.shape)


# ----------------------------------------------------------------------------- kinks


def eigen_gap(x: Array, which: str) -> float:
    """The gap between the extreme eigenvalue of the symmetric part and the next one,
    relative to the spectrum's size (infinite for 1×1).

    >>> eigen_gap(np.diag([1.0, 1.0, 3.0]), "min")
    0.0
    """
    w = np.linalg.eigvalsh((x + x.T) / 2)
    if len(w) < 2:
        return float("inf")
    gap = w[-1] - w[-2] if which == "max" else w[1] - w[0]
    return float(gap / max(1.0, float(np.max(np.abs(w)))))


def singular_gap(x: Array) -> float:
    """σ₁ − σ₂ relative to σ₁ (infinite where there is one singular value)."""
    s = np.linalg.svd(x, compute_uv=False)
    if len(s) < 2:
        return float("inf")
    return float((s[0] - s[1]) / max(s[0], 1e-300))


def rank_margin(x: Array) -> float:
    """σ_min / σ_max: 0 where X is rank deficient."""
    s = np.linalg.svd(x, compute_uv=False)
    return float(s[-1] / max(s[0], 1e-300))
