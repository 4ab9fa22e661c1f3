"""The Op specs (``expr.OPS``): every call Op parsed by every name in both grammars with
the shape its rule gives (checked against the reference evaluator), the shape rules and
the dimension solver (linear equations with integer coefficients), declared structure,
and ``rebuild``."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import matdiff as md
from matdiff import expr as E
from matdiff.check import evaluate, numeric, random_inputs
from matdiff.cli import main
from matdiff.dims import Contradiction, Dim, DimSolver, RuleMismatch, ShapeRule
from matdiff.expr import ONE, OPS, Op
from matdiff.shapes import normalize_shapes
from matdiff.strategies import exprs
from matdiff.syntax import FUNCTIONS, LATEX_FUNCTIONS, LATEX_PAIRS, canonical_function

# ----------------------------------------------------------------------------- the names


def test_every_name_belongs_to_one_op() -> None:
    ascii_names = [n for spec in OPS.values() for n in spec.ascii]
    assert len(ascii_names) == len(set(ascii_names)), "an ASCII name of two Ops"
    latex_names = [c for spec in OPS.values() for c in spec.latex]
    assert len(latex_names) == len(set(latex_names)), "a LaTeX command of two Ops"
    assert set(FUNCTIONS) == set(ascii_names)
    assert set(LATEX_FUNCTIONS) == {c for c in latex_names if "\\" not in c}
    assert LATEX_PAIRS == {(Op.LOG, Op.DET): Op.LOGDET}


def test_elementwise_is_read_from_the_specs() -> None:
    assert E.ELEMENTWISE == {op for op, spec in OPS.items() if spec.elementwise}
    assert {Op.EXP, Op.RELU, Op.ARCTAN} <= E.ELEMENTWISE
    assert not {Op.ADD, Op.HADAMARD, Op.TRACE} & E.ELEMENTWISE


def _sizes(spec: E.OpSpec) -> list[str]:
    """Distinct sizes for the dimension attributes of a call: 2, 3, ..."""
    return [str(k + 2) for k in range(len(spec.dims))]


def _call_args(spec: E.OpSpec) -> list[str]:
    return [chr(ord("A") + k) for k in range(spec.arity or 0)] + _sizes(spec)


def _calls() -> list[tuple[Op, str, str, str]]:
    """(op, name, text, syntax) for every name of every Op that has a call form."""
    out = []
    for op, spec in OPS.items():
        args = ", ".join(_call_args(spec))
        for name in spec.ascii:
            out.append((op, name, f"{name}({args})", "ascii"))
            if len(name) > 1:
                out.append((op, name, f"\\operatorname{{{name}}}({args})", "latex"))
        for cmd in spec.latex:
            out.append((op, cmd, f"\\{cmd}({args})", "latex"))
    return out


CALLS = _calls()


def test_every_call_op_has_a_case() -> None:
    with_names = {op for op, spec in OPS.items() if spec.ascii}
    assert {op for op, *_ in CALLS} == with_names
    assert {Op.TRACE, Op.KRON, Op.IDENTITY, Op.UNVEC, Op.COMMUTATION, Op.EXP} <= with_names


@pytest.mark.parametrize(("op", "name", "text", "syntax"), CALLS,
                         ids=[f"{c[3]}:{c[2]}" for c in CALLS])
def test_every_name_of_every_call_parses_to_its_op(op: Op, name: str, text: str,
                                                   syntax: str) -> None:
    """The call is the Op, with the attribute its sizes (or name) give, and the shape its
    rule gives: the reference evaluator (NumPy) returns an array of exactly that shape."""
    spec = OPS[op]
    # conj, real and imag of a real matrix fold away: their argument is complex here
    shapes = {"A": ("m", "n", "complex")} if op in (Op.CONJ, Op.REAL, Op.IMAG) else None
    e = md.parse(text, syntax=syntax, shapes=shapes)
    assert e.op is op, (text, e)
    sizes = tuple(Dim.of(int(s)) for s in _sizes(spec))
    canonical = canonical_function(name) if name in FUNCTIONS else spec.ascii[0]
    assert e.attr == spec.call_attr(canonical, sizes)
    args = [a.shape for a in e.args]
    assert e.shape == spec.rule.check(args, spec.params(e.attr))
    env, dims = random_inputs(e, seed=1)
    value = numeric(evaluate(e, env, dims))
    rows, cols = (d.subs(dims).value for d in e.shape)
    assert value.size == rows * cols
    if value.ndim == 2:
        assert value.shape == (rows, cols)


@pytest.mark.parametrize(("text", "words"), [
    ("tr(A, B)", "tr takes 1 argument(s), got 2"),
    ("trace(A, B)", "tr takes 1 argument(s), got 2"),
    ("unvec(x, 2)", "unvec takes 3 argument(s), got 2"),
    ("ones(1, 2, 3)", "ones takes 0 or 1 or 2 argument(s), got 3"),
    ("eye()", "eye takes 1 argument(s), got 0"),
    ("kron(A)", "kron takes 2 argument(s), got 1"),
])
def test_arity_comes_from_the_spec(text: str, words: str) -> None:
    with pytest.raises(md.MatdiffError, match=words.replace("(", r"\(").replace(")", r"\)")):
        md.parse(text)


@pytest.mark.parametrize(("text", "shapes", "words", "at"), [
    ("tr(inv(X))", {"X": ("m", "n")}, "inv needs a square matrix, but it is m×n", "inv"),
    ("Diag(X)", {"X": ("m", "n")}, "Diag needs a column vector, but it is m×n", "Diag"),
    ("unvec(x, 2, 3)", {"x": (5,)}, "unvec needs a column vector of length 6, but it is 5×1",
     "unvec"),
    ("unvec(X, 2, 3)", {"X": (6, 2)}, "unvec needs a column vector, but it is 6×2", "unvec"),
    ("diag(X)", {"X": ("m", "n")}, "diag needs a square matrix, but it is m×n", "diag"),
    ("[A, B; C, D]", {"A": (2, 2), "B": (3, 3)}, "blocks in one row of a block matrix need "
     "the same height", "B"),
    ("[A, B; C, D]", {"A": (2, 2), "C": (2, 3)}, "blocks in one column of a block matrix "
     "need the same width", "C"),
])
def test_a_call_that_does_not_fit_its_rule_says_what_it_needs(
        text: str, shapes: dict[str, tuple[str | int, ...]], words: str, at: str) -> None:
    with pytest.raises(md.MatdiffError) as info:
        md.parse(text, shapes=shapes)
    assert info.value.message == words
    assert info.value.pos == text.index(at)


def test_bare_calls_take_their_size_from_the_place() -> None:
    x = E.sym("x", ("m",))
    assert md.parse("x - ones()") is E.sub(x, E.ones(("m",)))
    assert md.parse("X + zeros()", shapes={"X": (2, 3)}) is E.sym("X", (2, 3))
    assert md.parse("ones(3)").shape == (Dim.of(3), ONE)      # a size left out is 1


def test_fill_syntax_is_kept() -> None:
    """``vector(c)``, ``matrix(c)``: the constant c (0 or 1) of the size of its place."""
    e = md.parse("X + matrix(1)", shapes={"X": ("m", "n")})
    assert e is E.add(E.sym("X", ("m", "n")), E.ones(("m", "n")))
    assert md.parse("x - vector(0)", shapes={"x": ("n",)}) is E.sym("x", ("n",))
    with pytest.raises(md.MatdiffError, match="takes 1 or 0"):
        md.parse("x - vector(2)")


# ----------------------------------------------------------------------------- shape rules


@pytest.mark.parametrize("op", list(Op), ids=lambda o: o.name)
def test_every_rule_parses_and_names_its_sizes(op: Op) -> None:
    spec = OPS[op]
    assert spec.rule.text == spec.shape
    assert set(spec.dims) <= spec.rule.names()


def test_rules_read_as_equations() -> None:
    m, n, p, q = (Dim.var(v) for v in "mnpq")
    kron = ShapeRule.parse("(m,n),(p,q)->(m*p,n*q)")
    assert kron.check([(m, n), (p, q)], {}) == (m * p, n * q)
    chain = ShapeRule.parse("(d[i],d[i+1])...->(d[0],d[k])")
    assert chain.check([(m, n), (n, p), (p, q)], {}) == (m, q)
    with pytest.raises(RuleMismatch) as info:
        chain.check([(m, n), (p, q)], {})
    assert info.value.arg == 1
    grid = ShapeRule.parse("(h[i],w[j])...->(sum(h),sum(w))")
    assert grid.check([(m, n), (m, p), (q, n), (q, p)], {}, (2, 2)) == (m + q, n + p)
    unvec = ShapeRule.parse("(m*n,1)->(m,n)")
    assert unvec.check([(Dim.of(6), ONE)], {"m": Dim.of(2), "n": Dim.of(3)}) == (2, 3)
    with pytest.raises(RuleMismatch):
        unvec.check([(Dim.of(5), ONE)], {"m": Dim.of(2), "n": Dim.of(3)})
    assert ShapeRule.parse("(n,n)->(1,1)").pattern(0) == "a square matrix"
    assert ShapeRule.parse("(n,1)->(n,n)").pattern(0) == "a column vector"
    for bad in ("(n,n)", "(n,n)->", "(n n)->(1,1)", "(n,n)...,(m,m)->(1,1)", "(n,%)->(1,1)"):
        with pytest.raises(ValueError):
            ShapeRule.parse(bad)


def test_the_constructors_check_the_rule() -> None:
    A, B = E.sym("A", ("m", "n")), E.sym("B", ("m", "n"))
    with pytest.raises(E.ShapeMismatch, match="matmul of mxn, mxn: argument 2"):
        E.matmul(A, B)
    with pytest.raises(E.ShapeMismatch, match="trace of mxn"):
        E.trace(A)
    with pytest.raises(E.ShapeMismatch):
        E.unvec(E.sym("x", (5,)), 2, 3)
    assert E.kron(A, B).shape == (Dim.var("m") * Dim.var("m"), Dim.var("n") * Dim.var("n"))


# ----------------------------------------------------------------------------- the solver


def test_a_size_named_in_the_text_is_solved_from_numbers() -> None:
    """3p = 6: X is 6x6, A is 3x3, so the identity in kron(I_p, A) is 2x2."""
    f = md.parse("X - kron(I_p, A)", shapes={"X": (6, 6), "A": (3, 3)})
    X, A = E.sym("X", (6, 6)), E.sym("A", (3, 3))
    assert f is E.sub(X, E.kron(E.eye(2), A))
    assert md.parse("K(p, 2)*vec(X)", shapes={"X": (3, 2)}).args[0] is E.commutation(3, 2)
    assert md.parse("unvec(x, p, 2)", shapes={"x": (6,)}).shape == (3, 2)
    assert md.parse("tr(eye(p)*X)", shapes={"X": (4, 4)}) is E.trace(E.sym("X", (4, 4)))


def test_a_size_with_no_whole_solution_is_an_error_at_its_place() -> None:
    text = "Y + (X - kron(I_p, A))"
    with pytest.raises(md.MatdiffError) as info:
        md.parse(text, shapes={"X": (7, 7), "A": (2, 2)})
    err = info.value
    assert "2*p = 7 has no whole-number solution" in err.message
    assert err.pos == text.index("X") and err.end == len(text) - 1


def test_declared_sizes_are_rigid_and_sizes_of_the_text_distinct() -> None:
    """A declared n never equals m nor a size named only in the text; the text's p is a
    number or p itself, and two sizes of the text are distinct."""
    with pytest.raises(md.MatdiffError, match="left side is n×n but the right side is p×p"):
        md.parse("X - I_p", shapes={"X": ("n", "n")})
    assert md.parse("X - I_n", shapes={"X": ("n", "n")}) is \
        E.sub(E.sym("X", ("n", "n")), E.eye("n"))
    with pytest.raises(md.MatdiffError):
        md.parse("I_p - I_q")
    assert md.shapes_of(md.parse("tr(Y' * kron(eye(p), X))")) == {
        "Y": ["m*p", "n*p"], "X": ["m", "n"]}


def test_solver_kinds_of_names() -> None:
    m, n, p, q = (Dim.var(v) for v in "mnpq")
    s = DimSolver(rigid=frozenset({"m", "n"}))
    with pytest.raises(Contradiction):
        s.unify(m, n)
    with pytest.raises(Contradiction):
        s.unify(p, n)              # a size of the text is never a declared one
    with pytest.raises(Contradiction):
        s.unify(p, q)              # two sizes of the text are distinct
    s.unify(p + q, Dim.of(5))      # underdetermined: waits
    assert s.pending
    s.unify(p, Dim.of(2))
    assert s.resolve(q) == 3 and not s.pending
    x = s.fresh()
    s.unify(2 * x, 4 * m)          # divided by 2 first: x = 2m
    assert s.resolve(x) == 2 * m


def test_solver_refuses_a_size_below_one() -> None:
    s = DimSolver()
    with pytest.raises(Contradiction, match="p would be 0"):
        s.unify(Dim.var("p") + 3, Dim.of(3))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.integers(0, 8))
def test_integer_linear_equations(c: int, v: int, r: int) -> None:
    """c*p = c*v + r has the whole solution p = v when r = 0, and none when 0 < r < c."""
    r = r % c
    s = DimSolver()
    p = Dim.var("p")
    if r == 0:
        s.unify(c * p, Dim.of(c * v))
        assert s.resolve(p) == v
    else:
        with pytest.raises(Contradiction, match="no whole-number solution"):
            s.unify(c * p, Dim.of(c * v + r))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(2, 4), st.integers(0, 3))
def test_kron_with_a_size_of_the_text(c: int, v: int, r: int) -> None:
    """X - kron(I_p, A) with X (cv + r) x (cv + r) and A c x c: p = v, or an error. (X is
    never 1x1 here: a scalar X would broadcast, a size named in the text being taken as
    not 1.)"""
    r = r % c
    size = c * v + r
    shapes = {"X": (size, size), "A": (c, c)}
    if r == 0:
        f = md.parse("X - kron(I_p, A)", shapes=shapes)
        assert f is E.sub(E.sym("X", (size, size)), E.kron(E.eye(v), E.sym("A", (c, c))))
    else:
        with pytest.raises(md.MatdiffError, match="no whole-number solution"):
            md.parse("X - kron(I_p, A)", shapes=shapes)


# ----------------------------------------------------------------------------- structure


@pytest.mark.parametrize(("decl", "structure"), [
    (("n", "n", "symmetric"), "symmetric"), (("n", "n", "sym"), "symmetric"),
    (("n", "n", "spd"), "spd"), (("n", "n", "posdef"), "spd"), (("n", "n", "PD"), "spd"),
    (("pos",), "pos"), (("n", "positive"), "pos"), (("m", "n", "pos"), "pos"),
    (("n", "n", "diagonal"), "diagonal"), (("n", "n", "diag"), "diagonal"),
    (("m", "n"), ""),
])
def test_declared_structure(decl: tuple[str, ...], structure: str) -> None:
    (shape, got), = normalize_shapes({"S": decl}).values()
    assert got == structure
    dims = [d for d in decl if d.lower() not in E.STRUCTURES]
    assert normalize_shapes({"S": dims})["S"] == (shape, "")
    S = E.free_symbols(md.parse("S + S", shapes={"S": decl}))["S"]
    assert S.structure == structure
    assert S.symmetric == (structure in ("symmetric", "spd", "diagonal"))
    assert (S.T is S) == (S.symmetric or S.is_scalar)


@pytest.mark.parametrize("word", ["spd", "posdef", "diag", "diagonal", "sym"])
def test_structure_that_needs_a_square_matrix(word: str) -> None:
    with pytest.raises(md.MatdiffError, match="not square"):
        md.parse("S", shapes={"S": ("m", "n", word)})
    with pytest.raises(md.MatdiffError, match="but is 2x3"):
        E.sym("S", (2, 3), word)


def test_structure_in_the_node() -> None:
    assert E.sym("L", (), "positive").attr == ("L", (ONE, ONE), "pos")
    assert E.sym("S", ("n", "n"), "pd") is E.sym("S", ("n", "n"), "spd")
    assert E.trace(E.sym("S", ("n", "n"), "spd")).structure == ""
    with pytest.raises(md.MatdiffError, match="unknown structure 'orthogonal'"):
        E.sym("Q", ("n", "n"), "orthogonal")


def test_cli_declares_structure(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["grad", "x'*S*x", "--wrt", "x", "--shape", "S=n,n,spd", "--no-check",
               "--format", "text"])
    assert rc == 0
    assert "2*S*x" in capsys.readouterr().out


# ----------------------------------------------------------------------------- rebuild


def test_rebuild_is_the_builder_of_every_op() -> None:
    X, Y = E.sym("X", ("n", "n")), E.sym("Y", ("n", "n"))
    x = E.sym("x", ("n",))
    nodes = [E.kron(X, Y), E.block([[X, Y], [Y, X]]), E.slice_(X, 0, 1, 0, "n"),
             E.unvec(E.vec(X @ Y), "n", "n"), E.norm(x, "1"), E.matpow(X, 3),
             E.commutation("n", 2), E.apply(Op.RELU, X), E.hpow(X, E.const(3)),
             E.scale(E.sym("a"), X), E.hdiv(X, Y), E.diagm(x), E.logdet(X)]
    for node in nodes:
        for n in node.walk():
            assert E.rebuild(n, n.args) is n, n
    assert E.rebuild(E.trace(X), (E.eye(3),)) is E.const(3)
    assert E.rebuild(X @ Y, (X, E.eye("n"))) is X


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exprs())
def test_rebuild_over_the_same_arguments_is_the_node(e: E.Expr) -> None:
    for n in e.walk():
        assert E.rebuild(n, n.args) is n


def test_structure_words_are_checked_in_one_table() -> None:
    assert set(E.STRUCTURES.values()) == {"symmetric", "spd", "pos", "diagonal", "complex"}
    assert E.SYMMETRIC_STRUCTURES == {"symmetric", "spd", "diagonal"}
    assert all(word == word.lower() for word in E.STRUCTURES)
