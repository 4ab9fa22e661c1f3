"""Random expressions over complex matrices, for property tests and the soak run.

Input: a ``testing.Draw``. Output: ``real_scalar``, a random *real-valued* scalar of complex
(and real) variables, the kind of function a gradient is defined for; inside it,
``cgen`` draws complex-valued expressions of the shapes of ``testing.SHAPES`` over the Ops
that take complex arguments: sums, scalings (by i too), products, the plain and the
conjugate transpose, the conjugate, Hadamard products, entire elementwise functions (exp,
sin, cos of a quarter of their argument), integer powers, the inverse and the determinant of
well-conditioned matrices (``Wc``, which ``points.random_inputs`` draws near 1.5 I), traces,
sums, Kronecker products, blocks, diagonals, vec, the matrix exponential, logarithm and
square root (of well-conditioned matrices), log det, and the real-valued Ops on top (Re,
Im, |·|, arg, norms). Contract: every expression
is well shaped by construction and real-valued at the top.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np

from . import expr as E
from .check import evaluate, numeric, random_inputs, vec_of
from .expr import Dim, Expr, Op
from .testing import _GENERAL, _TRANSPOSED, ONE, SHAPES, Draw, M, N, RandomDraw

__all__ = ["cgen", "real_scalar", "random_complex_expr", "wirtinger_pair_error"]

# complex symbols by shape; the real ones of testing._GENERAL mix in
_COMPLEX = {"s": ["c"], "v": ["z"], "w": ["zu"], "N": ["Z", "Y"], "M": ["ZM"], "R": ["ZR"]}
_WELL = "Wc"


def _leaf(draw: Draw, key: str) -> Expr:
    k = draw.int(0, 5)
    if key == "s" and k == 0:
        return E.scale(E.const(draw.pick([Fraction(1), Fraction(-2), Fraction(1, 2)])),
                       E.imag_unit())
    if k == 1:
        return E.sym(draw.pick(_GENERAL[key]), SHAPES[key])           # a real one
    return E.sym(draw.pick(_COMPLEX[key]), SHAPES[key], "complex")


def cgen(draw: Draw, key: str, depth: int) -> Expr:
    """A (generally complex-valued) expression of shape ``SHAPES[key]``.

    >>> e = cgen(RandomDraw(5), "N", 3); e.shape == SHAPES["N"]
    True
    """
    if depth <= 0:
        return _leaf(draw, key)
    return _BRANCHES[draw.int(0, len(_BRANCHES) - 1)](draw, key, depth - 1)


def cfactor(draw: Draw, r: Dim, c: Dim, depth: int) -> Expr:
    """An expression of any shape ``r × c`` over n, m and 1."""
    for key, shape in SHAPES.items():
        if shape == (r, c):
            return cgen(draw, key, depth)
    for key, shape in SHAPES.items():
        if shape == (c, r):
            return E.H(cgen(draw, key, depth))
    return E.matmul(cfactor(draw, r, ONE, depth), cfactor(draw, ONE, c, depth))


def _sum(draw: Draw, key: str, d: int) -> Expr:
    a, b = cgen(draw, key, d), cgen(draw, key, d)
    return E.add(a, b) if draw.int(0, 1) else E.sub(a, b)


def _scaled(draw: Draw, key: str, d: int) -> Expr:
    a = draw.pick([cgen(draw, "s", d), E.imag_unit(), E.const(Fraction(-3, 2))])
    return E.scale(a, cgen(draw, key, d))


def _product(draw: Draw, key: str, d: int) -> Expr:
    r, c = SHAPES[key]
    inner = draw.pick([N, M] if ONE in (r, c) else [N, M, ONE])
    return E.matmul(cfactor(draw, r, inner, d), cfactor(draw, inner, c, d))


def _transpose(draw: Draw, key: str, d: int) -> Expr:
    t = _TRANSPOSED[key]
    if t is None:
        return E.conj(cgen(draw, key, d))
    return draw.pick([E.T, E.H])(cgen(draw, t, d))


def _elementwise(draw: Draw, key: str, d: int) -> Expr:
    """Hadamard products, entire functions of a quarter of the argument, squares."""
    k = draw.int(0, 2)
    if k == 0:
        return E.hadamard(cgen(draw, key, d), cgen(draw, key, d))
    if k == 1:
        op = draw.pick([Op.EXP, Op.SIN, Op.COS])
        return E.apply(op, E.scale(E.const(Fraction(1, 4)), cgen(draw, key, d)))
    return E.hpow(cgen(draw, key, d), E.const(draw.pick([2, 3])))


def _well(draw: Draw, d: int) -> Expr:
    w = E.sym(_WELL, SHAPES["N"], "complex")
    return E.matmul(w, E.H(w)) if d > 0 and draw.int(0, 1) else w


def _matrix(draw: Draw, key: str, d: int) -> Expr:
    """inv, powers, logm and sqrtm of a well-conditioned matrix, expm of a quarter of one;
    det, log det, tr and sum to a scalar."""
    if key == "N":
        how = draw.pick(["inv", "pow", "expm", "logm", "sqrtm"])
        if how == "expm":
            return E.expm(E.scale(E.const(Fraction(1, 4)), cgen(draw, "N", d)))
        w = _well(draw, d)
        return {"inv": E.inv, "pow": lambda x: E.matpow(x, 2), "logm": E.logm,
                "sqrtm": E.sqrtm}[how](w)
    if key == "s":
        how = draw.pick(["det", "logdet", "tr", "sum"])
        if how in ("det", "logdet"):
            return (E.det if how == "det" else E.logdet)(_well(draw, d))
        return E.trace(cgen(draw, "N", d)) if how == "tr" else \
            E.total(cgen(draw, draw.pick(list(SHAPES)), d))
    return cgen(draw, key, d)


def _real_part(draw: Draw, key: str, d: int) -> Expr:
    """A real-valued node inside: Re, Im, |·|."""
    f = draw.pick([E.real, E.imag, lambda x: E.apply(Op.ABS, x)])
    return f(cgen(draw, key, d))


def _structure(draw: Draw, key: str, d: int) -> Expr:
    """Kronecker products, blocks, diagonals, vec and unvec."""
    if key == "N":
        k = draw.int(0, 2)
        if k == 0:
            return E.kron(cgen(draw, "v", d), E.T(cgen(draw, "v", d)))
        if k == 1:
            return E.diagm(cgen(draw, "v", d))
        return E.unvec(E.vec(cgen(draw, "N", d)), N, N)
    if key == "v":
        return E.diag(cgen(draw, "N", d))
    if key == "s":
        blk = E.block([[cgen(draw, "N", d), cgen(draw, "R", d)]])
        return E.total(E.hadamard(blk, E.conj(blk))) if draw.int(0, 1) else E.total(blk)
    return cgen(draw, key, d)


Branch = Callable[[Draw, str, int], Expr]
_BRANCHES: list[Branch] = [lambda draw, key, d: _leaf(draw, key), _sum, _scaled, _product,
                           _transpose, _elementwise, _matrix, _real_part, _structure]


def real_scalar(draw: Draw, depth: int) -> Expr:
    """A real-valued scalar of complex variables: Re, Im, |·|², a squared norm, a
    Hermitian form aᴴa, a 1-norm, a sum of phases.

    >>> random_complex_expr(3).is_complex
    False
    """
    key = draw.pick(list(SHAPES))
    x = cgen(draw, key, depth)
    how = draw.pick(["re", "im", "abs2", "norm2", "gram", "norm1", "angle"])
    if how == "norm2":
        return E.hpow(E.norm(x), 2)
    if how == "gram":             # real; where the flag cannot see it (aᴴa after folds), Re
        gram = E.trace(E.matmul(E.H(x), x)) if key != "s" else E.matmul(E.H(x), x)
        return E.real(gram) if gram.is_complex else gram
    if how == "norm1":
        return E.norm(x, "1")
    if how == "angle":
        return E.total(E.angle(x))
    s = E.total(x) if key != "s" else x
    if how == "abs2":
        return E.hpow(E.apply(Op.ABS, s), 2)
    return E.real(s) if how == "re" else E.imag(s)


def random_complex_expr(seed: int, max_depth: int = 5) -> Expr:
    """A random real-valued scalar of complex variables from ``seed`` (the soak run).

    >>> random_complex_expr(3) is random_complex_expr(3)
    True
    """
    draw = RandomDraw(seed)
    return real_scalar(draw, draw.int(1, max_depth))


def _moved(x0: Any, flat: np.ndarray) -> Any:
    arr = np.asarray(x0)
    return flat.reshape(arr.shape, order="F") if arr.ndim == 2 else flat.reshape(arr.shape)


def wirtinger_pair_error(f: Expr, name: str, d: Expr, d_bar: Expr, seed: int = 0,
                         h: float = 1e-6) -> float:
    """Relative error (absolute below 1e-3) of a claimed Wirtinger pair ``(J, J̄)`` of
    ``f`` in ``name`` against central differences at a random complex point: moving entry
    k of X by ``h u`` (u = 1, then i) moves vec F by ``h (u J e_k + ū J̄ e_k)`` to first
    order, that is ``J e_k + J̄ e_k`` along E_k and ``i J e_k - i J̄ e_k`` along iE_k (a real X moves
    along E_k only).

    >>> z, eye, zero = E.sym("z", ("n",), "complex"), E.eye("n"), E.zeros(("n", "n"))
    >>> wirtinger_pair_error(E.conj(z), "z", zero, eye) < 1e-8      # d z̄ = dz̄
    True
    >>> wirtinger_pair_error(E.conj(z), "z", eye, zero) > 0.5       # not d z̄ = dz
    True
    """
    env, sizes = random_inputs([f, d, d_bar], seed=seed)
    x0 = env[name]
    flat = vec_of(x0).astype(complex)
    size_f = vec_of(evaluate(f, env, sizes)).size
    j = numeric(evaluate(d, env, sizes)).reshape(size_f, flat.size)
    j_bar = numeric(evaluate(d_bar, env, sizes)).reshape(size_f, flat.size)
    units = (1.0, 1j) if E.free_symbols(f)[name].is_complex else (1.0,)
    claimed, differences = [], []
    for k in range(flat.size):
        step = h * max(1.0, abs(flat[k]))
        for unit in units:
            ends = []
            for sign in (1.0, -1.0):
                y = flat.copy()
                y[k] += sign * step * unit
                ends.append(vec_of(evaluate(f, {**env, name: _moved(x0, y)}, sizes)))
            differences.append((ends[0] - ends[1]) / (2 * step))
            claimed.append(unit * j[:, k] + np.conj(unit) * j_bar[:, k])
    said, moved = np.stack(claimed), np.stack(differences)
    scale = max(float(np.max(np.abs(said))), float(np.max(np.abs(moved))), 1e-3)
    return float(np.max(np.abs(said - moved))) / scale     # a zero pair: an absolute error
