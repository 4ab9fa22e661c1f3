"""SymPy interop (``md.from_sympy`` / ``md.to_sympy``), both ways.

* The seed built in SymPy: SymPy's own ``.diff`` answers 0 (SymPy 1.14); matdiff reads the
  expression, differentiates it, and the gradient passes the finite-difference check, and
  goes back to SymPy as an expression that evaluates to the same numbers.
* Every construct of the issue, read into the node it means (a table).
* Round trips, with hypothesis: matdiff expressions over every Op (``from_sympy(to_sympy(e))
  is e`` over the Ops SymPy has, the same value over the formulas, a ``MatdiffError`` naming
  the Op for the rest), and SymPy expressions built with SymPy's own operators (read, written
  and read again gives the same node, and SymPy's explicit evaluation gives matdiff's value).
* What cannot be read is a ``MatdiffError`` that names it.
"""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sympy.matrices.expressions.matexpr import MatrixElement

import matdiff as md
from matdiff import expr as E
from matdiff.check import evaluate, random_inputs
from matdiff.strategies import exprs
from matdiff.sympy_interop import NO_FORM, SHARED, WRITE
from matdiff.testing import SEED, SHAPES, close, point

CASES = settings(max_examples=60, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

m, n, p, q = sp.symbols("m n p q")


def sympy_value(s, env, sizes):
    """SymPy's own explicit evaluation of ``s`` at the matdiff inputs ``env`` (numbers in
    ``sizes``): the sizes put in, each outermost matrix expression made explicit (entries of
    the symbols), then the symbols' values put in."""
    s = _explicit(s.xreplace({d: sizes[d.name] for d in s.atoms(sp.Symbol) if d.name in sizes}))
    values = {}
    for a in s.free_symbols:
        value = np.asarray(env[a.name], dtype=float)
        if isinstance(a, sp.MatrixSymbol):
            values[a] = sp.ImmutableMatrix(value.reshape(int(a.rows), int(a.cols)))
        else:
            values[a] = sp.Float(float(value))
    out = s.subs(values).doit()
    if isinstance(out, sp.MatrixBase):
        return np.array(out.evalf().tolist(), dtype=float)
    return float(sp.N(out))


def _explicit(s):
    if isinstance(s, (sp.MatrixSymbol, MatrixElement)) or not s.args:
        return s
    if s.is_Matrix:  # its entries may hold scalars of matrices: tr(X)·x
        return s.as_explicit().applyfunc(_explicit)
    return s.func(*map(_explicit, s.args))


def _dims(s):
    """The dimension symbols of the matrix symbols of ``s``."""
    return {d for a in s.atoms(sp.MatrixSymbol) for d in a.shape
            if isinstance(d, sp.Expr) for d in d.free_symbols}


def _md_value(e, env, sizes):
    return np.asarray(evaluate(e, env, sizes), dtype=float)


def _close(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return close(a.reshape(b.shape) if a.size == b.size else a, b) < 1e-8


# ----------------------------------------------------------------------------- the seed


def seed_in_sympy(explicit_transpose: bool):
    """The seed as a SymPy user writes it: ‖X‖²_F as tr(XᵀX), the block matrix with
    ``BlockMatrix``; ``M.T`` (SymPy distributes it) or ``Transpose(M)`` (kept whole)."""
    Z, W = sp.MatrixSymbol("Z", m, m), sp.MatrixSymbol("W", 2 * n, p)
    R, A, Q, B = (sp.MatrixSymbol(s, n, m) for s in "RAQB")
    P, S = sp.MatrixSymbol("P", 2 * m, q), sp.MatrixSymbol("S", p, q)
    M = Z - sp.HadamardProduct(sp.Identity(m), R.T * A + Q.T * B)
    N = W - sp.BlockMatrix([[R, -Q], [Q, R]]) * P * S.T
    if explicit_transpose:
        return sp.Trace(sp.MatMul(sp.Transpose(M), M)) + sp.Trace(sp.MatMul(sp.Transpose(N), N))
    return sp.Trace(M.T * M) + sp.Trace(N.T * N)


@pytest.mark.parametrize("explicit_transpose", [False, True], ids=["M.T", "Transpose(M)"])
def test_seed_gradient_from_sympy(explicit_transpose):
    """SymPy 1.14's ``f.diff(R)`` is 0; matdiff's gradient of the same SymPy expression is
    the seed's gradient: checked by finite differences and against the ASCII seed's."""
    f_sympy = seed_in_sympy(explicit_transpose)
    f = md.from_sympy(f_sympy)
    assert md.shapes_of(f) == md.shapes_of(md.parse(SEED))
    g = md.grad(f, ["R", "Q"])
    assert isinstance(g, dict)
    report = md.check(f, ["R", "Q"])
    assert report.ok, report
    seed = md.parse(SEED)
    seed_g = md.grad(seed, ["R", "Q"])
    assert isinstance(seed_g, dict)
    env, sizes = _seed_point(seed)
    assert _close(_md_value(f, env, sizes), _md_value(seed, env, sizes))
    for name in ("R", "Q"):
        assert _close(_md_value(g[name], env, sizes), _md_value(seed_g[name], env, sizes))
        assert np.abs(_md_value(g[name], env, sizes)).max() > 1e-3   # not SymPy's 0


def _seed_point(e):
    found = point(e, seed=3)
    assert found is not None
    return found


def test_seed_gradient_back_to_sympy():
    """The gradient goes back to SymPy (over the user's own size symbols), reads back as the
    same node, and SymPy's explicit evaluation of it gives matdiff's numbers."""
    f = md.from_sympy(seed_in_sympy(True))
    g = md.grad(f, "R")
    assert isinstance(g, E.Expr)
    g_sympy = md.to_sympy(g, {"m": m, "n": n, "p": p, "q": q})
    assert g_sympy.shape == (n, m)
    assert md.from_sympy(g_sympy) is g
    env, sizes = random_inputs(f, seed=3, sizes={"m": 2, "n": 2, "p": 2, "q": 1})
    assert _close(sympy_value(g_sympy, env, sizes), _md_value(g, env, sizes))


# ----------------------------------------------------------------------------- each construct

X, Y = sp.MatrixSymbol("X", n, n), sp.MatrixSymbol("Y", n, n)
A_, x_ = sp.MatrixSymbol("A", m, n), sp.MatrixSymbol("x", n, 1)
a_ = sp.Symbol("a")
Xm, Ym, Am = E.sym("X", ("n", "n")), E.sym("Y", ("n", "n")), E.sym("A", ("m", "n"))
xm, am = E.sym("x", ("n",)), E.sym("a")

READS = [  # (id, SymPy expression, the matdiff node it means)
    ("MatrixSymbol", X, Xm),
    ("vector", x_, xm),
    ("numeric-dims", sp.MatrixSymbol("C", 3, 2), E.sym("C", (3, 2))),
    ("polynomial-dims", sp.MatrixSymbol("K", 2 * n + 1, m * n),
     E.sym("K", (2 * E.Dim.var("n") + 1, E.Dim.var("m") * E.Dim.var("n")))),
    ("Symbol", a_, am),
    ("positive-Symbol", sp.Symbol("lam", positive=True), E.sym("lam", (), "pos")),
    ("Integer", sp.Integer(3), E.const(3)),
    ("Rational", sp.Rational(-3, 4), E.const(Fraction(-3, 4))),
    ("Float", sp.Float(0.5), E.const("0.5")),
    ("MatMul", A_ * X * x_, Am @ Xm @ xm),
    ("MatMul-scalars", 2 * a_ * X * Y, E.scale(E.const(2), E.scale(am, Xm @ Ym))),
    ("MatAdd", X + Y, E.add(Xm, Ym)),
    ("MatAdd-minus", X - Y, E.add(E.neg(Ym), Xm)),  # in SymPy's order of terms
    ("Transpose", A_.T, Am.T),
    ("Adjoint", sp.Adjoint(A_), Am.T),
    ("Inverse", X.I, E.inv(Xm)),
    ("Trace", sp.Trace(X), E.trace(Xm)),
    ("Determinant", sp.Determinant(X), E.det(Xm)),
    ("HadamardProduct", sp.HadamardProduct(X, Y), E.hadamard(Xm, Ym)),
    ("HadamardPower", sp.HadamardPower(X, 3), E.hpow(Xm, 3)),
    ("KroneckerProduct", sp.KroneckerProduct(X, A_), E.kron(Xm, Am)),
    ("KroneckerProduct-3", sp.KroneckerProduct(X, A_, Y), E.kron(E.kron(Xm, Am), Ym)),
    ("BlockMatrix", sp.BlockMatrix([[X, Y], [Y, X]]), E.block([[Xm, Ym], [Ym, Xm]])),
    ("MatPow", X**3, E.matpow(Xm, 3)),
    ("MatPow-negative", sp.MatPow(X, -2), E.matpow(E.inv(Xm), 2)),
    ("Identity", sp.Identity(n), E.eye("n")),
    ("ZeroMatrix", sp.ZeroMatrix(m, n), E.zeros(("m", "n"))),
    ("OneMatrix", sp.OneMatrix(m, n), E.ones(("m", "n"))),
    ("MatrixSlice", sp.MatrixSlice(A_, (0, 2), (1, n)), E.slice_(Am, 0, 2, 1, "n")),
    ("DiagonalOf", sp.DiagonalOf(X), E.diag(Xm)),
    ("DiagMatrix", sp.DiagMatrix(x_), E.diagm(xm)),
    ("applyfunc-exp", X.applyfunc(sp.exp), E.apply(E.Op.EXP, Xm)),
    ("applyfunc-lambda", X.applyfunc(lambda t: 2 * t + sp.sin(t)),
     E.add(E.scale(E.const(2), Xm), E.apply(E.Op.SIN, Xm))),
    ("applyfunc-constant", X.applyfunc(lambda t: t**2 + 1),
     E.add(E.ones(("n", "n")), E.hpow(Xm, 2))),
    ("applyfunc-sigmoid", X.applyfunc(lambda t: 1 / (1 + sp.exp(-t))),
     E.apply(E.Op.SIGMOID, Xm)),
    ("applyfunc-relu", X.applyfunc(lambda t: sp.Max(0, t)), E.apply(E.Op.RELU, Xm)),
    ("sqrt", sp.sqrt(sp.Trace(X)), E.apply(E.Op.SQRT, E.trace(Xm))),
    ("log-det", sp.log(sp.Determinant(X)), E.apply(E.Op.LOG, E.det(Xm))),
    ("scalar-functions", sp.exp(a_) * sp.tanh(a_) + sp.Abs(a_),
     E.add(E.scale(E.apply(E.Op.EXP, am), E.apply(E.Op.TANH, am)), E.apply(E.Op.ABS, am))),
    ("1x1-MatMul", x_.T * X * x_, xm.T @ Xm @ xm),
    ("explicit-Matrix", sp.Matrix([[a_, 1]]), E.block([[am, E.const(1)]])),
]


@pytest.mark.parametrize("s, expected", [r[1:] for r in READS], ids=[r[0] for r in READS])
def test_reads(s, expected):
    assert md.from_sympy(s) is expected


def test_structures_declared_by_name():
    S = sp.MatrixSymbol("S", n, n)
    f = md.from_sympy(sp.Trace(S.T * X), structures={"S": "symmetric"})
    assert f is E.trace(E.matmul(E.sym("S", ("n", "n"), "symmetric"), Xm))


def test_writes_sympy_nodes():
    """``to_sympy`` writes SymPy's own classes, over SymPy symbols it makes (integer,
    positive sizes) or takes from ``namespace``."""
    e = md.parse("tr(inv(X)*Y) + det(X .* Y) + tr(kron(X, Y))",
                 {"X": ("n", "n"), "Y": ("n", "n")})
    s = md.to_sympy(e)
    names = {type(a).__name__ for a in sp.preorder_traversal(s)}
    assert {"Trace", "Inverse", "KroneckerProduct", "Determinant", "HadamardProduct",
            "MatrixSymbol"} <= names
    (size,) = _dims(s)
    assert size.name == "n" and size.is_integer and size.is_positive
    mine = sp.Symbol("n")
    assert _dims(md.to_sympy(e, {"n": mine})) == {mine}


@pytest.mark.parametrize("text, what", [
    ("vec(X)", "Op.VEC"), ("unvec(x, n, n)", "Op.UNVEC"), ("K(m, n)*vec(A)", "Op.COMMUTATION"),
])
def test_no_sympy_form_names_the_op(text, what):
    e = md.parse(text, {"X": ("n", "n"), "x": ("n*n",), "A": ("m", "n")})
    with pytest.raises(md.MatdiffError, match=what.replace(".", r"\.")):
        md.to_sympy(e)


@pytest.mark.parametrize("s, message", [
    (sp.MatrixSymbol("X", n, n)[0, 1], "entries"),
    (sp.pi * sp.Trace(X), "rational"),
    (sp.Function("f")(a_), "function f"),
    (sp.Trace(X) + sp.Trace(sp.MatrixSymbol("X", m, m)), "two shapes"),
    (sp.MatrixSymbol("W_{1}", n, n), "rename"),
    (sp.MatrixSymbol("H", sp.floor(n / 2), n), "polynomial"),
    (sp.MatPow(X, sp.Rational(1, 2)), "integer exponent"),
    (sp.Max(a_, sp.Symbol("b")), "relu"),
    (sp.MatrixSlice(X, (0, n, 2), (0, n)), "step"),
    (sp.Sum(sp.Symbol("i"), (sp.Symbol("i"), 1, n)), "Sum"),
])
def test_unreadable_is_a_matdiff_error(s, message):
    with pytest.raises(md.MatdiffError, match=message):
        md.from_sympy(s)


def test_import_matdiff_does_not_load_sympy():
    """SymPy is an optional extra: ``import matdiff`` (and the CLI) never loads it."""
    code = "import sys, matdiff, matdiff.cli; assert 'sympy' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# ----------------------------------------------------------------------------- round trips


def _structures(e):
    return {k: s.structure for k, s in E.free_symbols(e).items() if s.structure}


def _exact(e):
    """Whether ``from_sympy(to_sympy(e)) is e`` is promised: only Ops SymPy has, and no
    scalar power 1/2 (SymPy's sqrt, read as matdiff's sqrt)."""
    return all(node.op in SHARED for node in e.walk()) and not any(
        node.op is E.Op.POW and node.is_scalar and node.args[1] is E.const("0.5")
        for node in e.walk())


@settings(CASES, max_examples=300)  # fast: no differentiation
@given(st.sampled_from(sorted(SHAPES)).flatmap(lambda key: exprs(key, max_depth=5)))
def test_matdiff_round_trip(e):
    """Over every Op: ``to_sympy`` then ``from_sympy`` is the same node over the Ops SymPy
    has, the same value over the formulas; an Op SymPy lacks is named in the error."""
    lacking = {node.op for node in e.walk() if node.op in NO_FORM}
    if lacking:
        with pytest.raises(md.MatdiffError, match="|".join(f"Op.{o.name}" for o in lacking)):
            md.to_sympy(e)
        return
    back = md.from_sympy(md.to_sympy(e), structures=_structures(e))
    if _exact(e):
        assert back is e, f"{e}\n -> {md.to_sympy(e)}\n -> {back}"
    found = point(e, seed=1)
    assert found is not None, f"no point for {e}"
    env, sizes = found
    assert close(evaluate(back, env, sizes), evaluate(e, env, sizes)) < 1e-9, str(e)


Xe, Ye, xe, se = E.sym("X", ("n", "n")), E.sym("Y", ("n", "n")), E.sym("x", ("n",)), E.sym("s")
Ze = E.sym("Z", ("n", "n"), "complex")
ONE_PER_OP = {  # an expression in which the Op occurs (after the constructors' folds)
    E.Op.SYMBOL: Xe, E.Op.CONST: E.scale(E.const("-0.75"), Xe), E.Op.IDENTITY: E.eye("n"),
    E.Op.ONES: E.ones(("n", 2)), E.Op.ZERO: E.block([[Xe, E.zeros(("n", 2))]]),
    E.Op.COMMUTATION: E.matmul(E.commutation("n", "n"), E.vec(Xe)),
    E.Op.ADD: E.add(Xe, Ye), E.Op.SCALE: E.scale(se, Xe), E.Op.MATMUL: Xe @ Ye @ xe,
    E.Op.TRANSPOSE: Xe.T, E.Op.HADAMARD: E.hadamard(Xe, Ye), E.Op.HDIV: E.hdiv(Xe, Ye),
    E.Op.POW: E.hpow(Xe, se), E.Op.KRON: E.kron(Xe, Ye), E.Op.BLOCK: E.block([[Xe], [Ye]]),
    E.Op.SLICE: E.slice_(Xe, 1, "n", 0, 2), E.Op.TRACE: E.trace(Xe), E.Op.DET: E.det(Xe),
    E.Op.LOGDET: E.logdet(Xe @ Xe.T), E.Op.INV: E.inv(Xe), E.Op.MATPOW: E.matpow(Xe, 3),
    E.Op.DIAG: E.diag(Xe), E.Op.DIAGM: E.diagm(xe), E.Op.VEC: E.vec(Xe),
    E.Op.UNVEC: E.unvec(E.kron(xe, xe), "n", "n"), E.Op.SUM: E.total(Xe),
    E.Op.NORM: E.add(E.norm(Xe, "2"), E.norm(Xe, "1"), E.norm(xe, "2")),
    **{op: E.apply(op, E.hadamard(Xe, Ye)) for op in E.ELEMENTWISE},
    E.Op.TRIL: E.tril(Xe), E.Op.EXPM: E.expm(Xe), E.Op.LOGM: E.logm(Xe),
    E.Op.SQRTM: E.sqrtm(Xe), E.Op.FRECHET: E.frechet("expm", Xe, Ye),
    E.Op.EIGVAL: E.eigval(Xe, "max"), E.Op.EIGVEC: E.eigvec(Xe, "min"),
    E.Op.SPECTRAL_NORM: E.spectral_norm(Xe), E.Op.NUCLEAR_NORM: E.nuclear_norm(Xe),
    E.Op.POLAR: E.polar(Xe), E.Op.SVD_U1: E.svd_u1(Xe), E.Op.SVD_V1: E.svd_v1(Xe),
    E.Op.PINV: E.pinv(Xe), E.Op.ADJ: E.adj(Xe), E.Op.CHOL: E.chol(Xe),
    E.Op.MEAN: E.mean(Xe), E.Op.MAX: E.maximum(Xe, Ye), E.Op.MIN: E.minimum(Xe, Ye),
    E.Op.LOGSUMEXP: E.logsumexp(Xe), E.Op.SOFTMAX: E.softmax(xe),
    E.Op.INF_NORM: E.inf_norm(xe),
    E.Op.IMAG_UNIT: E.scale(E.imag_unit(), Ze), E.Op.CONJ: E.conj(Ze), E.Op.REAL: E.real(Ze),
    E.Op.IMAG: E.imag(Ze), E.Op.ANGLE: E.angle(Ze),
}


@pytest.mark.parametrize("op", list(E.Op), ids=lambda op: op.name)
def test_every_op_round_trip(op):
    """Each Op: the same node back (SymPy has it), the same value (a formula), or an error
    that names it (SymPy has no form)."""
    e = ONE_PER_OP[op]
    assert any(node.op is op for node in e.walk())
    if op in NO_FORM:
        with pytest.raises(md.MatdiffError, match=f"Op.{op.name}"):
            md.to_sympy(e)
        return
    back = md.from_sympy(md.to_sympy(e))
    if op in SHARED:
        assert back is e, f"{e} -> {md.to_sympy(e)} -> {back}"
    else:
        assert back is not e and close(*(evaluate([back, e], *point(e, seed=2)))) < 1e-9


def test_round_trip_covers_every_shared_op():
    """Every Op has a WRITE row or a reason in NO_FORM; the shared subset is every Op but the
    four written as formulas and those without a form."""
    assert set(WRITE) | set(NO_FORM) == set(E.Op) and not set(WRITE) & set(NO_FORM)
    assert set(E.Op) - SHARED == {E.Op.HDIV, E.Op.LOGDET, E.Op.SUM, E.Op.NORM, *NO_FORM}


# SymPy expressions built with SymPy's own (evaluating) operators, over n×n, m×n, vectors
# and scalars; inputs near 2I keep inverses and determinants well conditioned
SQ = [sp.MatrixSymbol(s, n, n) for s in "AB"]
RECT = sp.MatrixSymbol("C", m, n)
VEC = [sp.MatrixSymbol(s, n, 1) for s in "xy"]
SCAL = [sp.Symbol(s) for s in ("a", "b")]
FUNCS = [sp.exp, sp.sin, sp.tanh, sp.atan, lambda t: t**2 + 1, lambda t: sp.Max(0, t),
         lambda t: 1 / (1 + sp.exp(-t))]


@st.composite
def sympy_exprs(draw, key="s", depth=3):
    """A random SymPy expression of shape key "N" (n×n), "v" (n×1) or "s" (scalar)."""
    pick = lambda xs: draw(st.sampled_from(xs))  # noqa: E731
    sub = lambda k: draw(sympy_exprs(k, depth - 1))  # noqa: E731
    if depth <= 0 or draw(st.integers(0, 4)) == 0:
        return pick({"N": SQ + [sp.Identity(n)], "v": VEC, "s": SCAL + [sp.Integer(2)]}[key])
    if key == "N":
        return pick([
            lambda: sub("N") + sub("N"), lambda: sub("N") * sub("N"), lambda: sub("N").T,
            lambda: sub("s") * sub("N"), lambda: RECT.T * RECT, lambda: sub("v") * sub("v").T,
            lambda: sp.HadamardProduct(sub("N"), sub("N")), lambda: pick(SQ).I,
            lambda: sp.HadamardPower(sub("N"), 2), lambda: sub("N").applyfunc(pick(FUNCS)),
            lambda: sp.BlockMatrix([[pick(SQ), sub("N")], [sub("N"), pick(SQ)]])[:n, n:],
            lambda: sp.DiagMatrix(sub("v")), lambda: pick(SQ) ** 2,
        ])()
    if key == "v":
        return pick([lambda: sub("N") * sub("v"), lambda: sub("v") + sub("v"),
                     lambda: sp.HadamardProduct(sub("v"), sub("v")),
                     lambda: sp.DiagonalOf(sub("N")), lambda: sub("s") * sub("v")])()
    return pick([
        lambda: sp.Trace(sub("N")), lambda: sp.Determinant(pick(SQ)), lambda: sub("s") * sub("s"),
        lambda: sub("s") + sub("s"), lambda: sp.exp(sub("s") / 4), lambda: sp.cos(sub("s")),
        lambda: sp.Trace(sp.KroneckerProduct(sub("N"), RECT * RECT.T)),
        lambda: sp.Trace(sp.Transpose(sub("v")) * sub("N") * sub("v")),
    ])()


def _sympy_point(s):
    rng = np.random.default_rng(7)
    sizes = {"n": 2, "m": 3}
    env = {"A": 2 * np.eye(2) + rng.uniform(-0.5, 0.5, (2, 2)),
           "B": 2 * np.eye(2) + rng.uniform(-0.5, 0.5, (2, 2)),
           "C": rng.uniform(-1, 1, (3, 2)), "x": rng.uniform(-1, 1, 2),
           "y": rng.uniform(-1, 1, 2), "a": 0.7, "b": -1.3, "n": 2.0}  # SymPy: tr(Iₙ) = n
    return env, sizes


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.sampled_from(["s", "N", "v"]).flatmap(lambda key: sympy_exprs(key)))
def test_sympy_round_trip(s):
    """A SymPy expression read, written and read again is the same node, and SymPy's own
    explicit evaluation of it agrees with matdiff's."""
    e = md.from_sympy(s)
    assert md.from_sympy(md.to_sympy(e)) is e, f"{s}\n -> {e}\n -> {md.to_sympy(e)}"
    env, sizes = _sympy_point(s)
    assert _close(sympy_value(s, env, sizes), _md_value(e, env, sizes)), f"{s}\n -> {e}"
