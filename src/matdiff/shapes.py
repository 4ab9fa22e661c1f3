"""Shape inference: a syntax tree (``matdiff.syntax.Node``) to a typed ``Expr``.

Every dimension is a symbol. Where an Op is written (a call such as ``tr(X)`` or
``unvec(x, m, n)``, a transpose, a block matrix, a slice), its shape rule ``OPS[op].shape``
gives the dimension equations; the operators of the syntax add their own. ``DimSolver``
solves them by substitution, linear ones with integer coefficients included, so
``[R, -Q; Q, R]`` is exactly ``2m x 2n`` and ``X - kron(I_p, A)`` with ``X`` 6x6 and
``A`` 3x3 gives ``p = 2``.

Some operators are ambiguous until shapes are known: ``a*B`` is a matrix product or a
scaling, ``1 - x`` adds a scalar elementwise. Those are decided as soon as the shapes force
it; what is still open after that is settled by soft defaults, each tried and undone if it
contradicts the expression:

1. names: multi-letter lowercase names (``lam``, ``alpha``, ``mu``) are scalars, single
   lowercase letters (``x``, ``w``, ``x1``, ``y_2``) are column vectors, the rest matrices;
2. ``*`` is the matrix product, except a column vector times a matrix, which scales;
3. ``+`` and elementwise operators take equal shapes unless one side is a known scalar.

Declared shapes (``shapes={"A": ("m", "n"), "x": ("n",), "lam": (), "S": ("n", "n",
"symmetric")}``) always win, with a structure word at the end where one applies
(``STRUCTURES``: symmetric, spd, pos, diagonal, and their aliases). Declared dimensions are
rigid: ``m`` never equals ``n``. A size named only in the text (``p`` in ``I_p``,
``eye(p)``, ``K(p, q)``) is distinct from every other name too, but the equations may give
it a whole number: ``3*p = 6`` makes ``p = 2``, ``2*p = 7`` is an error at its place.
Contract: the result is a well-shaped ``Expr``; a mismatch or an ambiguity is a
``MatdiffError`` whose ``pos`` is the place in the text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from . import expr as E
from .expr import (
    FRESH,
    ONE,
    OPS,
    STRUCTURES,
    SYMMETRIC_STRUCTURES,
    Contradiction,
    Dim,
    DimSolver,
    Expr,
    MatdiffError,
    Op,
    OpSpec,
)
from .syntax import AXIS_CALLS, FILLS, FUNCTIONS, Node, call_name

__all__ = ["infer", "read", "Reading", "normalize_shapes", "parse_dim", "ShapeDecl"]

ShapeDecl = Mapping[str, Iterable[Any]]

_IDENTITY_NAME = re.compile(r"^I(?:_\{?([A-Za-z0-9]+)\}?)?$")
_VECTOR_NAME = re.compile(r"^[a-z](?:_?[0-9]+|_[A-Za-z0-9]+)?$")
_GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "eps", "zeta", "eta", "theta", "iota",
          "kappa", "lambda", "lam", "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "phi",
          "chi", "psi", "omega"}


# what a call's shape error adds: the form that does what the user probably meant
_HINTS: dict[Op | None, str] = {
    Op.SOFTMAX: "; softmax is of a vector: the softmax of each column of a matrix X (m x n) "
                "is exp(X) ./ (ones(m, 1)*sum(exp(X), 1))"}

_DIM_TEXT = re.compile(r"[A-Za-z0-9_*+\- ]+")


def parse_dim(text: str) -> Dim:
    """A dimension written as text: ``n``, ``3``, ``2*n``, ``k + n``, ``m*p - 1``.

    >>> parse_dim("2*n + k") == 2 * Dim.var("n") + Dim.var("k")
    True
    """
    total = Dim({})
    for sign, term in re.findall(r"([+-]?)\s*([^+-]+)", text.replace(" ", "")):
        value = Dim.of(1)
        for factor in term.split("*"):
            if factor.isdigit():
                value = value * int(factor)
            elif re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", factor):
                value = value * Dim.var(factor)
            else:
                raise MatdiffError(f"bad dimension {text!r}")
        total = total + (value * -1 if sign == "-" else value)
    return total


def normalize_shapes(shapes: ShapeDecl | None) -> dict[str, tuple[tuple[Dim, Dim], str]]:
    """Declarations to ``{name: ((rows, cols), structure)}``; a structure word of
    ``STRUCTURES`` may end a declaration, and is kept canonical.

    >>> d = normalize_shapes({"x": ["n"], "S": ("n", "n", "sym"), "lam": ("pos",)})
    >>> d["S"][1], d["lam"]
    ('symmetric', ((Dim('1'), Dim('1')), 'pos'))
    """
    out: dict[str, tuple[tuple[Dim, Dim], str]] = {}
    for name, spec in (shapes or {}).items():
        items = list(spec) if not isinstance(spec, (str, int)) else [spec]
        structure = ""
        if items and isinstance(items[-1], str) and items[-1].strip().lower() in STRUCTURES:
            structure = STRUCTURES[items[-1].strip().lower()]
            items = items[:-1]
        dims: list[Dim] = []
        for d in items:
            if isinstance(d, int) or (isinstance(d, str) and d.strip().isdigit()):
                value = int(d)
                if value < 1:
                    raise MatdiffError(f"dimension of {name} must be positive, got {value}")
                dims.append(Dim.of(value))
            elif isinstance(d, str) and _DIM_TEXT.fullmatch(d.strip()):
                dims.append(parse_dim(d))
            elif isinstance(d, Dim):
                dims.append(d)
            else:
                raise MatdiffError(f"bad dimension {d!r} in the shape of {name}")
        if len(dims) > 2:
            raise MatdiffError(f"{name}: a shape has at most two dimensions")
        shape = (dims + [ONE, ONE])[:2] if dims else [ONE, ONE]
        if structure in SYMMETRIC_STRUCTURES and shape[0] != shape[1]:
            raise MatdiffError(f"{name} is declared {structure} but is "
                               f"{shape[0]}x{shape[1]}, not square")
        out[name] = ((shape[0], shape[1]), structure)
    return out


Sh = tuple[Dim, Dim]


def _fmt(s: Sh, solver: DimSolver) -> str:
    return "×".join(_pretty(solver.resolve(d)) for d in s)


def _pretty(d: Dim) -> str:
    return d.format().replace(FRESH, "d")


def _read_by_shape(n: Node) -> bool:
    """A call whose Op depends on its argument's shape (``diag`` of a vector is ``Diag``),
    as opposed to a two-argument call that broadcasts (``max(x, 0)``)."""
    return n.kind == "call" and n.value in FUNCTIONS and \
        OPS[FUNCTIONS[n.value]].on_vector is not None


@dataclass
class _Infer:
    text: str
    decl: dict[str, tuple[Sh, str]]
    solver: DimSolver = field(default_factory=DimSolver)
    shape: dict[int, Sh] = field(default_factory=dict)          # id(node) -> shape
    symbols: dict[str, Sh] = field(default_factory=dict)        # name -> shape
    symbol_nodes: dict[str, Node] = field(default_factory=dict)
    decisions: dict[int, str] = field(default_factory=dict)     # id(node) -> choice
    open_nodes: list[Node] = field(default_factory=list)         # undecided, in text order
    vector_defaults: list[Sh] = field(default_factory=list)      # bare ones/zeros
    rename: dict[str, Dim] = field(default_factory=dict)         # fresh -> final names
    no_default: frozenset[str] = frozenset()    # names whose default would broadcast them
    as_vectors: frozenset[str] = frozenset()    # names written after a matrix: X*beta
    transposed: list[tuple[str, Node]] = field(default_factory=list)   # theta' (a name)
    defaulted: dict[str, str] = field(default_factory=dict)     # name -> the default it took
    guessed: list[Node] = field(default_factory=list)  # decided by preference, not by shapes

    # -- errors
    def fail(self, node: Node, message: str) -> MatdiffError:
        return MatdiffError(message, pos=node.start, end=node.end, text=self.text)

    def eq(self, a: Dim, b: Dim, node: Node, message: Callable[[], str]) -> None:
        """``a = b``; ``message`` is called only on failure."""
        try:
            self.solver.unify(a, b, node)
        except Contradiction as err:
            reason = f" ({err.reason})" if err.reason else ""
            raise self.fail(node, message() + reason) from None

    def same(self, x: Node, y: Node, node: Node, what: str) -> None:
        sx, sy = self.shape[id(x)], self.shape[id(y)]
        msg = lambda: (f"{what}: the left side is {_fmt(sx, self.solver)} but the right side "
                       f"is {_fmt(sy, self.solver)}")
        self.eq(sx[0], sy[0], node, msg)
        self.eq(sx[1], sy[1], node, msg)

    def scalar(self, x: Node, node: Node, what: str) -> None:
        s = self.shape[id(x)]
        msg = lambda: f"{what} must be a scalar, but it is {_fmt(s, self.solver)}"
        self.eq(s[0], ONE, node, msg)
        self.eq(s[1], ONE, node, msg)

    def square(self, x: Node, node: Node, what: str) -> None:
        s = self.shape[id(x)]
        self.eq(s[0], s[1], node,
                lambda: f"{what} needs a square matrix, but it is {_fmt(s, self.solver)}")

    def is_scalar(self, s: Sh) -> bool:
        return self.solver.is_one(s[0]) and self.solver.is_one(s[1])

    def equal(self, s: Sh, t: Sh) -> bool:
        return all(self.solver.resolve(a) == self.solver.resolve(b)
                   for a, b in zip(s, t, strict=True))

    def not_scalar(self, s: Sh) -> bool:
        return self.solver.not_one(s[0]) or self.solver.not_one(s[1])

    # -- pass 1: emit constraints bottom-up (iteratively, so deep input cannot overflow)
    def visit(self, root: Node) -> None:
        stack: list[tuple[Node, bool]] = [(root, False)]
        while stack:
            node, done = stack.pop()
            if done:
                self.shape[id(node)] = self.rule(node)
            else:
                stack.append((node, True))
                stack.extend((a, False) for a in reversed(_expr_args(node)))

    def rule(self, n: Node) -> Sh:
        k, a = n.kind, n.args
        sh = lambda x: self.shape[id(x)]
        if k in ("num", "imag"):
            return (ONE, ONE)
        if k == "name":
            return self.name(n)
        if k == "neg":
            return sh(a[0])
        if k == "transpose":
            if a[0].kind == "name":
                self.transposed.append((a[0].value, n))
            return self.apply_op(n, Op.TRANSPOSE, a, None, "the transpose")
        if k in ("add", "sub", "hadamard", "hdiv", "hpow"):
            self.open_nodes.append(n)
            return (self.solver.fresh(), self.solver.fresh())
        if k in ("mul", "bars"):
            self.open_nodes.append(n)
            return (self.solver.fresh(), self.solver.fresh())
        if k == "matmul":
            self.matmul(n)
            return (sh(a[0])[0], sh(a[1])[1])
        if k == "div":
            self.scalar(a[1], n, "the divisor of '/'")
            return sh(a[0])
        if k == "pow":
            self.scalar(a[1], n, "an exponent")
            self.square(a[0], n, "the power '^'")
            return sh(a[0])
        if k in ("norm", "norm_call"):
            return (ONE, ONE)
        if k == "epow":                      # LaTeX e^{X}: expm of a square matrix, else exp
            return sh(a[0])
        if k == "block":
            for x in a:
                if x.kind == "num" and x.value == 0:  # a zero block: its size from the grid
                    self.shape[id(x)] = (self.solver.fresh(), self.solver.fresh())
            return self.apply_op(n, Op.BLOCK, a, n.value, "block matrix")
        if k == "call":
            return self.call(n)
        if k == "slice":
            bounds = tuple(self.dim_of_node(x) for x in a[1:])
            return self.apply_op(n, Op.SLICE, a[:1], bounds, "the slice")
        if k == "string":
            raise self.fail(n, "a quoted word is only the p of norm(X, p): 'fro' or 'nuc'")
        raise self.fail(n, f"unknown syntax '{k}'")

    def name(self, n: Node) -> Sh:
        name = n.value
        if name in self.symbols:
            return self.symbols[name]
        if name in self.decl:
            s = self.decl[name][0]
        elif (m := _IDENTITY_NAME.match(name)) is not None:
            d = self.dim_of_text(m.group(1)) if m.group(1) else self.solver.fresh()
            self.decisions[id(n)] = "identity"
            return (d, d)
        elif name in ("ones", "zeros"):
            self.decisions[id(n)] = name
            s = (self.solver.fresh(), self.solver.fresh())
            self.vector_defaults.append(s)
            return s
        else:
            s = (self.solver.fresh(), self.solver.fresh())
        self.symbols[name] = s
        self.symbol_nodes[name] = n
        return s

    @staticmethod
    def dim_of_text(text: str) -> Dim:
        return Dim.of(int(text)) if text.isdigit() else Dim.var(text)

    def dim_of_node(self, n: Node) -> Dim:
        """A dimension written as an argument: ``eye(n)``, ``ones(2*n, 3)``."""
        if n.kind == "num":
            if n.value.denominator != 1 or n.value < 0:
                raise self.fail(n, "a dimension must be a whole number")
            return Dim.of(int(n.value))
        if n.kind == "name":
            if n.value in self.decl or n.value in self.symbols:
                raise self.fail(n, f"'{n.value}' is a variable, not a dimension")
            return Dim.var(n.value)
        if n.kind in ("add", "sub", "mul"):
            x, y = (self.dim_of_node(a) for a in n.args)
            return x + y if n.kind == "add" else x - y if n.kind == "sub" else x * y
        raise self.fail(n, "a dimension is a number, a name, or a sum or product of them")

    def matmul(self, n: Node) -> None:
        x, y = n.args
        sx, sy = self.shape[id(x)], self.shape[id(y)]
        self.eq(sx[1], sy[0], n, lambda: (
            f"matrix product: the left side is {_fmt(sx, self.solver)} and the right side "
            f"is {_fmt(sy, self.solver)}; inner dimensions differ (use .* for elementwise)"))

    def apply_op(self, n: Node, op: Op, args: tuple[Node, ...], attr: Any, what: str) -> Sh:
        """The shape of ``op`` over ``args`` by its shape rule ``OPS[op].shape``: each of
        the rule's equations is solved here, with a message saying what it wanted."""
        spec = OPS[op]
        rule = spec.rule
        shapes = [self.shape[id(x)] for x in args]
        eqs, out = rule.equations(shapes, spec.params(attr), self.solver.fresh,
                                  attr if rule.is_grid else None)
        for k, axis, want, actual in eqs:
            self.eq(actual, want, args[k] if rule.repeat else n,
                    functools.partial(self.misfit, spec, what, len(args), k, axis, want,
                                      shapes[k]))
        return out

    def misfit(self, spec: OpSpec, what: str, nargs: int, k: int, axis: int, want: Dim,
               shape: Sh) -> str:
        """Why argument ``k`` (of shape ``shape``) does not fit the shape rule of ``spec``:
        the words come from the rule's pattern (called on failure only)."""
        if spec.rule.is_grid:
            return (f"blocks in one {('row', 'column')[axis]} of a {what} need the same "
                    f"{('height', 'width')[axis]}")
        shown = _fmt(shape, self.solver)
        who = what if nargs == 1 else f"{what}: argument {k + 1}"
        word = spec.rule.pattern(k)
        if not word:
            return f"{who} is {shown}, which does not fit {spec.shape}"
        if word == "a column vector" and axis == 0:
            word += f" of length {_pretty(self.solver.resolve(want))}"
        return f"{who} needs {word}, but it is {shown}{_HINTS.get(FUNCTIONS.get(what), '')}"

    def call(self, n: Node) -> Sh:
        """A function call: its Op's shape rule, over the arguments and the sizes written
        after them (``eye(n)``, ``unvec(x, m, n)``)."""
        if n.value in FILLS:
            if not (n.args[0].kind == "num" and n.args[0].value in (0, 1)):
                raise self.fail(n, f"{n.value}(...) takes 1 or 0 (the all-ones or zero "
                                   "constant)")
            return (self.solver.fresh(), ONE if n.value == "vector" else self.solver.fresh())
        op = FUNCTIONS[n.value]
        if op in E.EXTREMES:                 # max(x, 0): equal shapes, or a scalar broadcast
            self.open_nodes.append(n)
            return (self.solver.fresh(), self.solver.fresh())
        if n.value in AXIS_CALLS and len(n.args) == 2:
            rows, cols = self.shape[id(n.args[0])]
            return (ONE, cols) if self.axis(n) == 1 else (rows, ONE)
        spec = OPS[op]
        arity = spec.arity or 0
        if spec.on_vector is not None:       # diag(v) of a vector is Diag(v): decided later
            self.open_nodes.append(n)
            return (self.solver.fresh(), self.solver.fresh())
        if spec.bare and spec.dims and len(n.args) == arity:   # ones(): sized by its place
            s = (self.solver.fresh(), self.solver.fresh())
            self.vector_defaults.append(s)
            return s
        attr = spec.call_attr(n.value, self.sizes(n, spec))
        return self.apply_op(n, op, n.args[:arity], attr, n.value)

    def axis(self, n: Node) -> int:
        """The axis of ``sum(X, k)``: 1 sums each column, 2 each row (MATLAB)."""
        k = n.args[1]
        if k.kind != "num" or k.value not in (1, 2):
            raise self.fail(k, f"{n.value}(X, k) takes k = 1 (sum each column, a row) or "
                               f"2 (sum each row, a column)")
        return int(k.value)

    def sizes(self, n: Node, spec: OpSpec) -> tuple[Dim, ...]:
        """The sizes written in a call after its arguments; one left out is 1."""
        given = [self.dim_of_node(x) for x in n.args[spec.arity or 0:]]
        return tuple(given + [ONE] * (len(spec.dims) - len(given)))

    # -- pass 2: decide the ambiguous operators
    def decide(self, n: Node, choice: str) -> None:
        if n.kind == "bars":                 # |X|: det of a matrix, abs of a scalar/vector
            if choice == "det":
                self.square(n.args[0], n, "|X| (the determinant)")
                self.scalar(n, n, "|X| (the determinant)")
            else:
                self.same(n, n.args[0], n, "|x| (the absolute value)")
            self.decisions[id(n)] = choice
            return
        if _read_by_shape(n):                # diag(X): its own Op, or Diag of a vector
            spec = OPS[FUNCTIONS[n.value]]
            op = spec.on_vector if choice == "vector" and spec.on_vector else FUNCTIONS[n.value]
            out = self.apply_op(n, op, n.args, None, call_name(op))
            self.eq(self.shape[id(n)][0], out[0], n, lambda: "result shape")
            self.eq(self.shape[id(n)][1], out[1], n, lambda: "result shape")
            self.decisions[id(n)] = choice
            return
        x, y = n.args
        sx, sy, s = self.shape[id(x)], self.shape[id(y)], self.shape[id(n)]
        what = {"add": "sum", "sub": "difference", "hadamard": "elementwise product '.*'",
                "hdiv": "elementwise division './'", "mul": "product",
                "call": f"{n.value}(X, Y)",
                "hpow": "elementwise power '.^'"}[n.kind]
        if choice == "matmul":
            self.matmul(n)
            self.eq(s[0], sx[0], n, lambda: "product shape")
            self.eq(s[1], sy[1], n, lambda: "product shape")
        elif choice in ("scale_left", "broadcast_left"):
            self.scalar(x, n, f"the left side of this {what}")
            self.same(n, y, n, what)
        elif choice in ("scale_right", "broadcast_right"):
            self.scalar(y, n, f"the right side of this {what}")
            self.same(n, x, n, what)
        else:  # same shapes
            self.same(x, y, n, what)
            self.same(n, x, n, what)
        self.decisions[id(n)] = choice

    def forced(self, n: Node) -> str | None:
        """The choice the known shapes force for an ambiguous node, if any."""
        if n.kind == "bars":
            r, c = self.shape[id(n.args[0])]
            if self.solver.is_one(r) or self.solver.is_one(c):
                return "abs"                 # a scalar or a vector
            if self.solver.not_one(r) and self.solver.not_one(c):
                return "det"
            return None
        if _read_by_shape(n):
            r, c = self.shape[id(n.args[0])]
            if self.solver.is_one(c) and not self.solver.is_one(r):
                return "vector"
            return "matrix" if self.solver.not_one(c) or self.solver.is_one(r) else None
        sx, sy = self.shape[id(n.args[0])], self.shape[id(n.args[1])]
        if n.kind == "mul":
            if self.is_scalar(sx):
                return "scale_left"
            if self.is_scalar(sy):
                return "scale_right"
            if self.not_scalar(sx) and self.not_scalar(sy):
                return "matmul"
            return None
        if self.is_scalar(sx) and self.is_scalar(sy) or self.equal(sx, sy):
            return "same"  # equal shapes: broadcasting could only give the same result
        if self.is_scalar(sx) and self.not_scalar(sy):
            return "broadcast_left"
        if self.is_scalar(sy) and self.not_scalar(sx):
            return "broadcast_right"
        if self.not_scalar(sx) and self.not_scalar(sy):
            return "same"
        return None

    def preferred(self, n: Node) -> list[str]:
        if n.kind == "bars":
            return ["det", "abs"]
        if _read_by_shape(n):                # diag(X) of an undetermined X: square matrix
            return ["matrix", "vector"]
        sx, sy = self.shape[id(n.args[0])], self.shape[id(n.args[1])]
        if n.kind == "mul":
            col_times_matrix = self.solver.is_one(sx[1]) and not self.solver.is_one(sy[0])
            return ["scale_left", "matmul"] if col_times_matrix else ["matmul", "scale_left",
                                                                     "scale_right"]
        if n.kind == "hpow":                 # x.^p: a scalar exponent, else a scalar base
            order = ["broadcast_right", "broadcast_left", "same"]
            return order[1::-1] + order[2:] if self.is_scalar(sx) and not self.is_scalar(sy) \
                else order
        if self.is_scalar(sx):
            return ["broadcast_left", "same"]
        if self.is_scalar(sy):
            return ["broadcast_right", "same"]
        return ["same", "broadcast_left", "broadcast_right"]

    def attempt(self, action: Callable[[], object]) -> bool:
        snap = self.solver.snapshot()
        decisions = dict(self.decisions)
        try:
            action()
            return True
        except (Contradiction, MatdiffError):
            self.solver.restore(snap)
            self.decisions = decisions
            return False

    def settle(self) -> None:
        """Decide every ambiguous node: what the shapes force first, then the name
        defaults, then in text order each remaining node by preference. Each sweep is
        linear in the size of the expression."""
        self.decide_forced()
        for name in self.symbols:
            if name not in self.decl:
                self.name_default(name)
        self.decide_forced()
        for n in self.open_nodes:
            if id(n) in self.decisions:
                continue
            forced = self.forced(n)
            if forced is not None:
                self.decide(n, forced)
                continue
            if not (n.kind == "hpow" and self.is_scalar(self.shape[id(n.args[1])])):
                self.guessed.append(n)
            for choice in self.preferred(n):
                if self.attempt(functools.partial(self.decide, n, choice)):
                    break
            else:
                self.decide(n, self.preferred(n)[0])  # raises the error at its place
        while self.ones_are_vectors() or self.match_products():
            pass

    def decide_forced(self) -> None:
        """Decide what the shapes force, sweeping until nothing changes."""
        progress = True
        while progress:
            progress = False
            for n in self.open_nodes:
                if id(n) not in self.decisions and (c := self.forced(n)) is not None:
                    self.decide(n, c)
                    progress = True

    def name_default(self, name: str) -> None:
        """Greek and multi-letter lowercase names are scalars, single lowercase letters
        column vectors; tried, and undone if the expression contradicts it."""
        s = self.symbols[name]
        if name in self.no_default and name not in self.as_vectors:
            return
        if name not in self.as_vectors and (name in _GREEK or name.islower() and len(name) > 1
                                            and not _VECTOR_NAME.match(name)):
            def scalar() -> None:
                self.solver.unify(s[0], ONE)
                self.solver.unify(s[1], ONE)
            if not self.is_scalar(s) and self.attempt(scalar):
                self.defaulted[name] = "a scalar"
        elif (_VECTOR_NAME.match(name) or name in self.as_vectors) and \
                not self.solver.is_one(s[1]):
            if self.attempt(lambda: self.solver.unify(s[1], ONE)):
                self.defaulted[name] = "a column vector"

    def ones_are_vectors(self) -> bool:
        """A bare ``ones`` whose width nothing else fixes is a column vector."""
        tied = {v for s in self.symbols.values() for d in s
                for v in self.solver.resolve(d).names}
        while self.vector_defaults:
            cols = self.solver.resolve(self.vector_defaults.pop(0)[1])
            if cols.names and not cols.names & tied:
                if self.attempt(functools.partial(self.solver.unify, cols, ONE)):
                    return True
        return False

    def match_products(self) -> bool:
        """Last resort for ``m*n = p*q`` (``vec(X)'*vec(Y)``): equal factors in order."""
        for a, b, _ in list(self.solver.pending):
            ra, rb = self.solver.resolve(a), self.solver.resolve(b)
            if len(ra.terms) == len(rb.terms) == 1 and ra.terms[0][1] == rb.terms[0][1]:
                xs, ys = ra.terms[0][0], rb.terms[0][0]
                if len(xs) == len(ys):
                    order = lambda v: (not v.startswith(FRESH), int(v[1:]) if
                                       v[1:].isdigit() else 0, v)
                    pairs = list(zip(sorted(xs, key=order), sorted(ys, key=order), strict=True))
                    def pairwise(p: list[tuple[str, str]] = pairs) -> None:
                        for x, y in p:
                            self.solver.unify(Dim.var(x), Dim.var(y))
                    if self.attempt(pairwise):
                        return True
        return False

    # -- no broadcast by default: x - mu never broadcasts a name that is a scalar by default
    def defaulted_broadcast(self) -> tuple[str, Node] | None:
        """The first name that only a default made a scalar and that a sum or an elementwise
        operation then broadcasts (``mu`` in ``x - mu``), with that operation's node."""
        for n in self.open_nodes:
            choice = self.decisions.get(id(n))
            if n.kind in _BROADCASTING and choice in ("broadcast_left", "broadcast_right"):
                side = n.args[choice == "broadcast_right"]
                for name in self.shape_sources(side):
                    if self.defaulted.get(name) == _SCALAR_DEFAULT:
                        return name, n
        return None

    def defaulted_trailing_scale(self) -> tuple[str, Node] | None:
        """The first name that only a default made a scalar and that then scales a matrix
        from the right of a matrix name (``beta`` in ``X*beta``, ``X\\beta``, ``x'*A*theta``;
        not in ``x*alpha``): written after a matrix it is the vector of a matrix-vector
        product, as a scalar factor is written first."""
        for n in self.open_nodes:
            if n.kind == "mul" and self.decisions.get(id(n)) == "scale_right" and \
                    self.matrix_name(_last_factor(n.args[0])):
                for name in self.shape_sources(n.args[1]):
                    if self.defaulted.get(name) == _SCALAR_DEFAULT:
                        return name, n
        return None

    def scalar_root(self, root: Node) -> None:
        """The whole expression is a scalar (``read(..., scalar=True)``)."""
        for d in self.shape[id(root)]:
            self.solver.unify(d, ONE)

    def defaulted_transposed(self) -> tuple[str, Node] | None:
        """The first name that only a default made a scalar and that is transposed
        (``theta`` in ``theta'*x``, ``\\theta^\\top x``): nobody transposes a number."""
        return next(((name, n) for name, n in self.transposed
                     if self.defaulted.get(name) == _SCALAR_DEFAULT), None)

    def matrix_name(self, name: str | None) -> bool:
        """Is ``name`` a matrix: declared with columns, or by default (``X``, ``Phi``)?"""
        if name is None or name in self.as_vectors:
            return False
        if name in self.decl:
            return not self.solver.is_one(self.decl[name][0][1])
        return not (name in _GREEK or name.islower() or _VECTOR_NAME.match(name))

    def shape_sources(self, n: Node) -> Iterator[str]:
        """The names, in text order, whose shape makes the shape of ``n``: ``mu`` in ``-mu``,
        ``2*mu``, ``exp(mu)``, ``mu + 1``, ``mu/2``; not in ``tr(M)`` or ``a'*b``."""
        stack = [n]
        while stack:
            m = stack.pop()
            choice = self.decisions.get(id(m))
            if m.kind == "name":
                yield m.value
                continue
            if m.kind in ("neg", "transpose", "epow", "div", "pow", "hpow") or \
                    m.kind == "bars" and choice == "abs":
                follow = m.args[:1]
            elif m.kind in _BROADCASTING:
                follow = m.args if choice == "same" else \
                    m.args[choice == "broadcast_left":][:1]
            elif m.kind == "mul" and choice in ("scale_left", "scale_right"):
                follow = m.args
            elif m.kind == "call" and m.value in FUNCTIONS and \
                    OPS[FUNCTIONS[m.value]].elementwise:
                follow = m.args
            else:
                follow = ()
            stack.extend(reversed(follow))

    def notes(self, withdrawn: Mapping[str, Node]) -> list[str]:
        """One line per kind of guess: the shapes chosen by default, the names not
        broadcast, the readings chosen by preference."""
        out = []
        kept = {name: what for name, what in self.defaulted.items()
                if (what == _SCALAR_DEFAULT) == self.is_scalar(self.symbols[name])}
        if kept:
            shown = ", ".join(f"{name} {what}" for name, what in kept.items())
            out.append(f"shapes by default: {shown} (declare a shape to change it)")
        for name in self.as_vectors & kept.keys():
            out.append(f"{name} is read as a vector: a name written after a matrix in a "
                       f"product, or transposed, is not a scalar by default (declare {name} "
                       "as a scalar to scale)")
        for name, n in withdrawn.items():
            if name in self.as_vectors:
                continue
            out.append(f"{name} has the shape of {self.text[n.start:n.end].strip()}: a name "
                       f"that is a scalar only by default is not broadcast (declare "
                       f"{name} as a scalar to broadcast it)")
        for n in self.guessed:
            choice, shown = self.decisions.get(id(n), ""), self.text[n.start:n.end].strip()
            if (n.kind, choice) in _GUESS_NOTES:
                out.append(_GUESS_NOTES[n.kind, choice].format(shown))
        return out

    def check_solved(self, root: Node) -> None:
        """Every equation holds, or the sizes cannot be determined (an error)."""
        for a, b, node in self.solver.pending:
            ra, rb = self.solver.resolve(a), self.solver.resolve(b)
            if ra != rb:
                raise self.fail(node or root, f"cannot determine the sizes: {_pretty(ra)} = "
                                              f"{_pretty(rb)}; declare the shapes of the "
                                              "variables")

    # -- pass 3: build the typed Expr
    def final_names(self) -> dict[str, Dim]:
        """Fresh dimension variables still free get readable names, in order of appearance."""
        used = {v for s, _ in self.decl.values() for d in s for v in d.names}
        used |= {v for s in self.shape.values() for d in s for v in self.solver.resolve(d).names
                 if not v.startswith(FRESH)}  # names written in the text: eye(n), ones(m)
        used |= set(self.symbols) | set(self.decl)  # a dimension never takes a variable's name
        pool = [c for c in "mnpqrstkjluvwabcdefgh" if c not in used]
        rename: dict[str, Dim] = {}
        for s in list(self.symbols.values()) + [self.shape[k] for k in self.shape]:
            for d in s:
                for v in sorted(self.solver.resolve(d).names):
                    if v.startswith(FRESH) and v not in rename:
                        name = pool.pop(0) if pool else f"d{len(rename)}"
                        rename[v] = Dim.var(name)
        return rename

    def build(self, root: Node) -> Expr:
        rename = self.rename = self.final_names()
        def final(s: Sh) -> Sh:
            return (self.solver.resolve(s[0]).subs(rename),
                    self.solver.resolve(s[1]).subs(rename))
        for name, s in self.symbols.items():
            for d in final(s):
                if d.value is not None and d.value < 1:
                    raise self.fail(self.symbol_nodes[name], f"{name} would have size {d}")
        built: dict[int, Expr] = {}
        terms: dict[int, list[Expr]] = {}  # a + b + c: one n-ary sum, not n nested ones
        chained = self.sum_chains(root)
        stack: list[tuple[Node, bool]] = [(root, False)]
        while stack:
            node, done = stack.pop()
            if done and (id(node) in chained or node.args and id(node.args[0]) in terms):
                x, y = node.args
                head = terms.pop(id(x), None) or [built[id(x)]]
                tail = built[id(y)] if node.kind == "add" else E.neg(built[id(y)])
                if id(node) in chained:
                    terms[id(node)] = [*head, tail]
                    continue
                try:
                    built[id(node)] = E.add(*head, tail)
                except E.ShapeMismatch as err:
                    raise self.fail(node, str(err)) from None
                continue
            if done:
                try:
                    built[id(node)] = self.make(node, [built.get(id(a)) for a in node.args],
                                                final(self.shape[id(node)]))
                except E.ShapeMismatch as err:
                    raise self.fail(node, str(err)) from None
                except MatdiffError as err:
                    if err.pos is None:
                        raise self.fail(node, err.message) from None
                    raise
            else:
                stack.append((node, True))
                stack.extend((a, False) for a in reversed(_expr_args(node)))
        return built[id(root)]

    def sum_chains(self, root: Node) -> set[int]:
        """Sums and differences that are the left operand of a sum or difference (both of
        equal shapes): ``build`` collects their terms and makes one n-ary sum at the top."""
        plain = lambda n: n.kind in ("add", "sub") and self.decisions.get(id(n)) == "same"
        chained: set[int] = set()
        stack = [root]
        while stack:
            n = stack.pop()
            if plain(n) and plain(n.args[0]):
                chained.add(id(n.args[0]))
            stack.extend(_expr_args(n))
        return chained

    def make(self, n: Node, a: list[Any], shape: tuple[Dim, Dim]) -> Expr:
        k = n.kind
        if k == "num":
            return E.zeros(shape) if n.value == 0 else E.const(n.value)
        if k == "imag":
            return E.scale(E.const(n.value), E.imag_unit())
        if k == "name":
            d = self.decisions.get(id(n))
            if d == "identity":
                return E.eye(shape[0])
            if d in ("ones", "zeros"):
                return E.ones(shape) if d == "ones" else E.zeros(shape)
            structure = self.decl.get(n.value, (None, ""))[1]
            return E.sym(n.value, shape, structure)
        if k == "neg":
            return E.neg(a[0])
        if k == "transpose":
            return E.H(a[0]) if n.value == "H" else E.T(a[0])
        if k in ("add", "sub", "hadamard", "hdiv", "mul"):
            return self.make_binary(n, a[0], a[1], shape)
        if k == "matmul":
            return E.matmul(a[0], a[1])
        if k == "div":  # X / a = a^-1 X (a constant divisor folds to its reciprocal)
            if a[1].op is Op.CONST and a[1].attr == 0:
                raise self.fail(n, "division by zero")
            return E.scale(E.hpow(a[1], -1), a[0])
        if k == "hpow":
            return _elementwise_power(a[0], a[1])
        if k == "pow":
            if a[0].is_scalar:
                return E.hpow(a[0], a[1])
            if a[1].op is Op.CONST and abs(a[1].attr) == Fraction(1, 2):  # X^(1/2) = sqrtm(X)
                root = E.sqrtm(a[0])
                return root if a[1].attr > 0 else E.inv(root)
            if a[1].op is not Op.CONST or a[1].attr.denominator != 1:
                raise self.fail(n, "a matrix power needs an integer exponent or ±1/2 (the "
                                   "principal square root); use .^ for the elementwise power")
            return E.matpow(a[0], int(a[1].attr))
        if k == "epow":                      # e^{X}: the matrix exponential of a square matrix
            x = a[0]
            square = x.rows == x.cols and not x.is_scalar
            return E.expm(x) if square else E.apply(Op.EXP, x)
        if k in ("norm", "norm_call"):
            return self.make_norm(n, a[0], n.value)
        if k == "block":
            r, c = n.value
            return E.block([a[i * c:(i + 1) * c] for i in range(r)])
        if k == "call":
            return self.make_call(n, a, shape)
        if k == "bars":
            return E.det(a[0]) if self.decisions[id(n)] == "det" else E.apply(Op.ABS, a[0])
        if k == "slice":
            bounds = tuple(self.final_dim(self.dim_of_node(x)) for x in n.args[1:])
            return OPS[Op.SLICE].build((a[0],), bounds)
        raise self.fail(n, f"unknown syntax '{k}'")

    def make_binary(self, n: Node, x: Expr, y: Expr, shape: tuple[Dim, Dim]) -> Expr:
        choice = self.decisions[id(n)]
        if choice == "broadcast_left":
            x = E.scale(x, E.ones(shape))
        elif choice == "broadcast_right":
            y = E.scale(y, E.ones(shape))
        if n.kind == "mul":
            if choice == "matmul":
                return E.matmul(x, y)
            if choice == "scale_left" or x.is_scalar and y.is_scalar:
                return E.scale(x, y)         # two scalars keep their order (round trip)
            return E.scale(y, x)
        if n.kind == "call":
            return OPS[FUNCTIONS[n.value]].build((x, y), None)
        if n.kind == "add":
            return E.add(x, y)
        if n.kind == "sub":
            return E.sub(x, y)
        if n.kind == "hadamard":
            return E.hadamard(x, y)
        return E.hdiv(x, y)

    def make_norm(self, n: Node, x: Expr, p: str) -> Expr:
        """``||X||_p``: of a matrix, "2" is the spectral norm, "*" the nuclear norm, "F"
        (and no subscript) the Frobenius norm, "1" the sum of the ``|X_ij|``; of a vector,
        "2", "F" and "*" are the Euclidean norm, "inf" the largest ``|x_i|`` and a number p
        ``sum(abs(x).^p)^(1/p)``. A matrix norm that MATLAB reads otherwise is an error."""
        is_matrix = x.rows != ONE and x.cols != ONE
        if is_matrix and (p == "1" and n.kind == "norm_call" or p not in ("", "F", "1", "2",
                                                                           "*")):
            raise self.fail(n, _MATRIX_NORMS.get(p, _MATRIX_NORMS["p"]).format(p=p))
        if p == "2" and is_matrix:
            return E.spectral_norm(x)
        if p == "*" and is_matrix:
            return E.nuclear_norm(x)
        if p == "inf":
            return E.inf_norm(x if x.cols == ONE else E.T(x))
        if p in ("", "F", "1", "2", "*"):
            return E.norm(x, "1" if p == "1" else "2")
        power = E.const(Fraction(p))                                 # (sum |x_i|^p)^(1/p)
        return E.hpow(E.total(E.hpow(E.apply(Op.ABS, x), power)), E.hpow(power, -1))

    def make_call(self, n: Node, a: list[Any], shape: tuple[Dim, Dim]) -> Expr:
        """A call through its Op's builder; the sizes are the solved ones."""
        if n.value in FILLS:
            return E.ones(shape) if n.args[0].value == 1 else E.zeros(shape)
        if id(n) in self.decisions and not _read_by_shape(n):   # max(x, 0): as x + 0 is
            return self.make_binary(n, a[0], a[1], shape)
        if n.value in AXIS_CALLS and len(n.args) == 2:   # sum(X, 1) = 1ᵀX, sum(X, 2) = X1
            x = a[0]
            return E.matmul(E.ones((ONE, x.rows)), x) if self.axis(n) == 1 else \
                E.matmul(x, E.ones((x.cols, ONE)))
        spec = OPS[FUNCTIONS[n.value]]
        if spec.on_vector is not None and self.decisions.get(id(n)) == "vector":
            spec = OPS[spec.on_vector]                          # diag(v) = Diag(v)
        arity = spec.arity or 0
        if spec.bare and spec.dims and len(n.args) == arity:   # ones(): sized by its place
            output = [t.single for t in spec.rule.output]
            dims = tuple(shape[output.index(d)] for d in spec.dims)
        else:
            dims = tuple(self.final_dim(d) for d in self.sizes(n, spec))
        return spec.build(tuple(a[:arity]), spec.call_attr(n.value, dims))

    def final_dim(self, d: Dim) -> Dim:
        """A dimension as solved, with the final names."""
        return self.solver.resolve(d).subs(self.rename)


# matrix norms that MATLAB/NumPy and matrixcalculus.org read differently: both readings
_MATRIX_NORMS = {
    "1": "norm(X, 1) of a matrix is the largest column sum of |X| in MATLAB and NumPy, which "
         "matdiff does not differentiate; ||X||_1 is the sum of the |X_ij| "
         "(matrixcalculus.org)",
    "inf": "||X||_inf of a matrix is the largest row sum of |X| in MATLAB and NumPy "
           "(norm(X, Inf)) and the largest |X_ij| entrywise elsewhere; matdiff has neither "
           "for a matrix: write ||vec(X)||_inf for the entrywise one",
    "p": "||X||_{p} of a matrix is the induced p-norm in MATLAB and NumPy and the entrywise "
         "(sum |X_ij|^{p})^(1/{p}) elsewhere; matdiff has neither for a matrix: write "
         "||vec(X)||_{p} for the entrywise one",
}
_BROADCASTING = ("add", "sub", "hadamard", "hdiv")   # a scalar side is broadcast
_SCALAR_DEFAULT = "a scalar"
# a reading chosen by preference where the shapes leave it open: (kind, choice) -> note
_GUESS_NOTES = {
    ("bars", "det"): "{} is read as a determinant (|x| of a scalar or a vector is the "
                     "absolute value)",
    ("hpow", "broadcast_right"): "the exponent of {} is read as a scalar",
    ("call", "matrix"): "{} is read as the diagonal of a square matrix (nothing fixes the "
                        "argument's shape; of a column vector, diag builds a diagonal matrix)",
}


def _last_factor(n: Node) -> str | None:
    """The name a product ends with (``A`` in ``x'*A``), through transposes."""
    while n.kind in ("mul", "matmul", "transpose"):
        n = n.args[-1]
    return n.value if n.kind == "name" else None


def _elementwise_power(x: Expr, p: Expr) -> Expr:
    """``x .^ p``; with a matrix exponent (``2.^x``, ``X.^Y``) it is ``exp(p ⊙ log x)``,
    defined for ``x > 0``."""
    if p.is_scalar:
        return E.hpow(x, p)
    log_x = E.apply(Op.LOG, x)
    return E.apply(Op.EXP, E.scale(log_x, p) if x.is_scalar else E.hadamard(p, log_x))


def _expr_args(n: Node) -> tuple[Node, ...]:
    """The arguments that are expressions: a call's sizes are not (``eye(n)``,
    ``unvec(x, m, n)``), nor a slice's bounds."""
    if n.kind == "slice":
        return n.args[:1]
    if n.kind != "call":
        return n.args
    if n.value in FILLS:
        return ()
    return n.args[:OPS[FUNCTIONS[n.value]].arity or 0]


def infer(root: Node, text: str, shapes: ShapeDecl | None = None) -> Expr:
    """Solve the shapes of a syntax tree and build its typed Expr.

    >>> from matdiff.parse_ascii import parse_ascii
    >>> e = infer(parse_ascii("x'*A*x"), "x'*A*x")
    >>> e.is_scalar, str(e.args[0].shape[1])
    (True, 'm')
    """
    return read(root, text, shapes).expr


@dataclass(frozen=True)
class Reading:
    """A typed expression, the notes on what was guessed to read it, and the names whose
    shape a default of their name gave (``x`` a vector, ``lam`` a scalar)."""

    expr: Expr
    notes: tuple[str, ...]
    defaulted: frozenset[str] = frozenset()


def read(root: Node, text: str, shapes: ShapeDecl | None = None, scalar: bool = False
         ) -> Reading:
    """``infer``, with a note per guess. A name that only a default makes a scalar is never
    broadcast: in ``x - mu``, ``mu`` takes the shape of ``x``.

    >>> from matdiff.parse_ascii import parse_ascii
    >>> r = read(parse_ascii("x - mu"), "x - mu")
    >>> str(E.free_symbols(r.expr)["mu"].shape[0]), r.notes[0]
    ('m', 'shapes by default: x a column vector (declare a shape to change it)')

    With ``scalar``, the expression is a scalar where its shapes allow it (a gradient's
    function), before any default: ``C`` in ``w'*w + C*sum(w)`` is then a scalar.
    """
    decl = normalize_shapes(shapes)
    rigid = frozenset(v for s, _ in decl.values() for d in s for v in d.names
                      if not v.startswith(FRESH))   # a declared ``_k`` is an unknown
    withdrawn: dict[str, Node] = {}
    vectors: set[str] = set()             # X*beta: beta a vector, not a scalar, by default
    while True:
        job = _Infer(text, decl, DimSolver(rigid=rigid), no_default=frozenset(withdrawn),
                     as_vectors=frozenset(vectors))
        try:
            job.visit(root)
            if scalar:
                job.attempt(functools.partial(job.scalar_root, root))
            job.settle()
            job.check_solved(root)
        except MatdiffError as err:
            if not withdrawn:
                raise
            name, node = next(reversed(withdrawn.items()))
            raise job.fail(node, f"'{name}' would be a scalar only by default, broadcast over "
                                 f"this {_WHAT[node.kind]}; no other shape fits "
                                 f"({err.message}): declare its shape") from None
        found = job.defaulted_broadcast()
        trailing = None if found is not None else \
            job.defaulted_trailing_scale() or job.defaulted_transposed()
        if found is None and trailing is None:
            return Reading(job.build(root), tuple(job.notes(withdrawn)), frozenset(
                name for name, what in job.defaulted.items()
                if (what == _SCALAR_DEFAULT) == job.is_scalar(job.symbols[name])))
        if trailing is not None:
            vectors.add(trailing[0])
        name, node = found or trailing  # type: ignore[misc]
        withdrawn[name] = node


_WHAT = {"add": "sum", "sub": "difference", "hadamard": "elementwise product",
         "hdiv": "elementwise division"}
