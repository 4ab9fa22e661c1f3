"""Dimensions, shape rules written as dimension equations, and the solver of those equations.

Imports nothing of matdiff; ``matdiff.expr`` re-exports what the other stages use.

* ``Dim`` is a dimension: a polynomial with integer coefficients over dimension names
  (``n``, ``2*n``, ``m*p``, ``k + n``), so block matrices and Kronecker products have exact
  symbolic sizes.
* ``ShapeRule`` is an Op's shape rule written as a signature of dimension equations,
  ``"(n,n)->(1,1)"`` for the trace or ``"(m,n),(p,q)->(m*p,n*q)"`` for the Kronecker product.
  It is read two ways: ``check`` gives the shape of a node from the shapes of its arguments
  (the constructors' check: an ill-shaped node cannot exist), ``equations`` gives the
  equations that shape inference solves.
* ``DimSolver`` solves dimension equations: linear ones with integer coefficients such as
  ``3*p = 6`` by substitution (a union-find over dimension variables whose representatives
  may be polynomials), the rest when other equations have made them linear.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Dim", "Monomial", "Shape", "ONE", "SCALAR", "as_shape", "ShapeRule", "RuleMismatch",
           "DimSolver", "Contradiction", "FRESH"]

Monomial = tuple[str, ...]  # sorted dimension names; () is the constant term


class Dim:
    """An exact dimension: a polynomial with integer coefficients over names.

    >>> n = Dim.var("n")
    >>> str(2 * n + 1), str(n * Dim.var("m")), (n + n) == 2 * n
    ('2*n + 1', 'm*n', True)
    """

    __slots__ = ("terms", "_hash", "_names")
    terms: tuple[tuple[Monomial, int], ...]
    _hash: int
    _names: frozenset[str]

    def __new__(cls, terms: dict[Monomial, int] | Iterable[tuple[Monomial, int]]) -> Dim:
        """Interned, as ``Expr`` is: equal dimensions are one object, so comparing two
        shapes is mostly an identity test."""
        items = terms.items() if isinstance(terms, dict) else terms
        key = tuple(sorted(((m, c) for m, c in items if c != 0),
                           key=lambda mc: (-len(mc[0]), mc[0])))
        dim = _DIMS.get(key)
        if dim is None:
            dim = object.__new__(cls)
            dim.terms = key
            dim._hash = hash(key)
            dim._names = frozenset(v for m, _ in key for v in m)
            _DIMS[key] = dim
        return dim

    def __reduce__(self) -> tuple[Any, ...]:
        return (Dim, (self.terms,))

    @staticmethod
    def of(value: int | str | Dim) -> Dim:
        if isinstance(value, Dim):
            return value
        if isinstance(value, int):
            dim = _NUMBERS.get(value)
            if dim is None:
                constant: dict[Monomial, int] = {(): value}
                dim = _NUMBERS[value] = Dim(constant)
            return dim
        return Dim.var(value)

    @staticmethod
    def var(name: str) -> Dim:
        dim = _VARS.get(name)
        if dim is None:
            linear: dict[Monomial, int] = {(name,): 1}
            dim = _VARS[name] = Dim(linear)
        return dim

    @property
    def value(self) -> int | None:
        """The integer value when the dimension is a constant, else None."""
        if not self.terms:
            return 0
        if len(self.terms) == 1 and self.terms[0][0] == ():
            return self.terms[0][1]
        return None

    @property
    def names(self) -> set[str]:
        """The dimension names in the polynomial (a new set)."""
        return set(self._names)

    def __add__(self, other: object) -> Dim:
        o = Dim.of(other)  # type: ignore[arg-type]
        if not o.terms:
            return self
        if not self.terms:
            return o
        acc = dict(self.terms)
        for m, c in o.terms:
            acc[m] = acc.get(m, 0) + c
        return Dim(acc)

    __radd__ = __add__

    def __sub__(self, other: object) -> Dim:
        return self + (-1) * Dim.of(other)  # type: ignore[arg-type]

    def __mul__(self, other: object) -> Dim:
        o = Dim.of(other)  # type: ignore[arg-type]
        if o is ONE:
            return self
        if self is ONE:
            return o
        acc: dict[Monomial, int] = {}
        for (m1, c1), (m2, c2) in itertools.product(self.terms, o.terms):
            m = tuple(sorted(m1 + m2))
            acc[m] = acc.get(m, 0) + c1 * c2
        return Dim(acc)

    __rmul__ = __mul__

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if isinstance(other, int):
            other = Dim.of(other)
        return isinstance(other, Dim) and self.terms == other.terms

    def __hash__(self) -> int:
        return self._hash

    def subs(self, env: Mapping[str, Dim | int]) -> Dim:
        """Replace names by dimensions or integers."""
        if not any(v in env for v in self._names):
            return self
        if len(self.terms) == 1 and self.terms[0][1] == 1 and len(self.terms[0][0]) == 1:
            return Dim.of(env[self.terms[0][0][0]])  # one name alone: its value
        acc = Dim({})
        for m, c in self.terms:
            term = Dim.of(c)
            for v in m:
                term = term * Dim.of(env.get(v, Dim.var(v)))
            acc = acc + term
        return acc

    def format(self, times: str = "*") -> str:
        if not self.terms:
            return "0"
        parts = []
        for m, c in self.terms:
            body = times.join(m)
            if not m:
                parts.append(str(c))
            elif c == 1:
                parts.append(body)
            elif c == -1:
                parts.append("-" + body)
            else:
                parts.append(f"{c}{times}{body}")
        out = parts[0]
        for p in parts[1:]:
            out += f" - {p[1:]}" if p.startswith("-") else f" + {p}"
        return out

    def __str__(self) -> str:
        return self.format()

    def __repr__(self) -> str:
        return f"Dim({self.format()!r})"


_DIMS: dict[tuple[tuple[Monomial, int], ...], Dim] = {}
_VARS: dict[str, Dim] = {}
_NUMBERS: dict[int, Dim] = {}
Shape = tuple[Dim, Dim]
ZERO_DIM = Dim({})
ONE = Dim.of(1)
SCALAR: Shape = (ONE, ONE)


def as_shape(s: Iterable[int | str | Dim]) -> Shape:
    """``()`` is a scalar, ``(n,)`` a column vector, ``(m, n)`` a matrix.

    >>> as_shape(("n",)) == (Dim.var("n"), ONE)
    True
    """
    dims = tuple(Dim.of(d) for d in s)
    if len(dims) > 2:
        raise ValueError(f"a shape has at most two dimensions, got {len(dims)}")
    return (dims + (ONE, ONE))[:2] if dims else SCALAR  # type: ignore[return-value]


# ----------------------------------------------------------------------------- shape rules

# An atom of a rule's term: a dimension name ("n"), or a member of an indexed family
# ("d", "i", 1) for d[i+1], ("d", "", 0) for d[0], ("d", "k", 0) for d[k], k the count.
Atom = str | tuple[str, str, int]
Key = Hashable  # a variable of a rule once its indices are known: "n" or ("d", 3)


@dataclass(frozen=True)
class _Term:
    """One dimension of a rule: ``sum(coeff * product(atoms))``, or ``sum(family)``."""

    parts: tuple[tuple[int, tuple[Atom, ...]], ...]
    total_of: str = ""                         # sum(h): the sum of the family h
    single: Atom | None = field(init=False, default=None)    # one variable alone: n, d[i]
    constant: Dim | None = field(init=False, default=None)   # a number: 1

    def __post_init__(self) -> None:
        if self.total_of:
            return
        if len(self.parts) == 1 and self.parts[0][0] == 1 and len(self.parts[0][1]) == 1:
            object.__setattr__(self, "single", self.parts[0][1][0])
        elif all(not atoms for _, atoms in self.parts):
            object.__setattr__(self, "constant", Dim.of(sum(c for c, _ in self.parts)))

    def key(self, at: Mapping[str, int]) -> Key | None:
        """The variable this term is, when it is one variable alone (it can bind it)."""
        a = self.single
        return a if a is None or a.__class__ is str else _key(a, at)

    def value(self, env: Mapping[Key, Dim], at: Mapping[str, int],
              extent: Mapping[str, int]) -> Dim:
        if self.single is not None:
            return env[_key(self.single, at)]
        if self.constant is not None:
            return self.constant
        if self.total_of:
            return sum((env[(self.total_of, t)] for t in range(extent[self.total_of])),
                       ZERO_DIM)
        acc = ZERO_DIM
        for coeff, atoms in self.parts:
            term = Dim.of(coeff)
            for a in atoms:
                term = term * env[_key(a, at)]
            acc = acc + term
        return acc

    def atoms(self) -> Iterator[Atom]:
        return (a for _, atoms in self.parts for a in atoms)


def _key(atom: Atom, at: Mapping[str, int]) -> Key:
    if isinstance(atom, str):
        return atom
    family, letter, offset = atom
    return (family, (at[letter] if letter else 0) + offset)


_NO_INDEX: dict[str, int] = {}


class RuleMismatch(Exception):
    """Argument ``arg`` does not fit its pattern (internal; the caller words the error)."""

    def __init__(self, arg: int):
        super().__init__(arg)
        self.arg = arg


_TOKEN = re.compile(r"\s*(->|\.\.\.|sum\(|[A-Za-z][A-Za-z0-9_]*|\d+|[(),*+\-\[\]])")


@dataclass(frozen=True)
class ShapeRule:
    """An Op's shape as dimension equations: ``"(n,n)->(1,1)"`` (the trace).

    Each argument's pattern ``(rows, cols)`` is a pair of terms: integer polynomials over
    dimension names. A name that appears in several places is one dimension, so
    ``(n,n)`` is a square matrix and ``(m,n),(n,p)->(m,p)`` the product. Names of the
    Op's dimension attributes (``unvec(x, m, n)``: ``"(m*n,1)->(m,n)"``) come from the node.
    A pattern followed by ``...`` repeats for every argument: ``"(m,n)...->(m,n)"`` (a sum);
    inside it ``d[i]`` is the member ``i`` of a family, ``i`` the argument's place and ``k``
    the number of arguments: ``"(d[i],d[i+1])...->(d[0],d[k])"`` (a chain of products).
    With two indices ``i, j`` the arguments are the grid of the attribute ``(rows, cols)``,
    row-major, and ``sum(h)`` adds a family: ``"(h[i],w[j])...->(sum(h),sum(w))"``.

    >>> kron = ShapeRule.parse("(m,n),(p,q)->(m*p,n*q)")
    >>> m, n = Dim.var("m"), Dim.var("n")
    >>> [str(d) for d in kron.check([(m, n), (n, ONE)], {})]
    ['m*n', 'n']
    """

    text: str
    inputs: tuple[tuple[_Term, _Term], ...]
    output: tuple[_Term, _Term]
    repeat: bool = False
    indices: tuple[str, ...] = ()              # the index letters of the repeated pattern
    families: Mapping[str, str] = field(default_factory=dict)   # family -> its index letter
    _fixed: tuple[tuple[int, tuple[_Term, _Term], dict[str, int]], ...] = field(
        init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        if not self.repeat:
            object.__setattr__(self, "_fixed", tuple((k, p, _NO_INDEX)
                                                     for k, p in enumerate(self.inputs)))

    @staticmethod
    def parse(text: str) -> ShapeRule:
        return _RuleParser(text).rule()

    @property
    def is_grid(self) -> bool:
        return len(self.indices) == 2

    def names(self) -> set[str]:
        """The dimension names of the rule (families not included)."""
        terms = [t for pair in (*self.inputs, self.output) for t in pair]
        return {a for t in terms for a in t.atoms() if isinstance(a, str)}

    def places(self, nargs: int, grid: tuple[int, int] | None = None
               ) -> Iterable[tuple[int, tuple[_Term, _Term], dict[str, int]]]:
        """Every argument's place, pattern and index values."""
        if not self.repeat:
            yield from self._fixed
            return
        pattern = self.inputs[0]
        if self.is_grid:
            r, c = grid if grid is not None else (nargs, 1)
            for i, j in itertools.product(range(r), range(c)):
                yield i * c + j, pattern, {"i": i, "j": j, "k": nargs}
            return
        if not self.indices:                   # (m,n)...: the same pattern everywhere
            for i in range(nargs):
                yield i, pattern, _NO_INDEX
            return
        for i in range(nargs):
            yield i, pattern, {"i": i, "k": nargs}

    def arity_ok(self, nargs: int, grid: tuple[int, int] | None = None) -> bool:
        if not self.repeat:
            return nargs == len(self.inputs)
        return nargs >= 1 and (grid is None or grid[0] * grid[1] == nargs)

    def extents(self, nargs: int, grid: tuple[int, int] | None) -> dict[str, int]:
        sizes = {"i": nargs} if not self.is_grid else dict(zip("ij", grid or (nargs, 1),
                                                                 strict=True))
        return {family: sizes[letter] for family, letter in self.families.items()}

    def check(self, shapes: Sequence[Shape], params: Mapping[str, Dim],
              grid: tuple[int, int] | None = None) -> Shape:
        """The output shape for these argument shapes, or ``RuleMismatch(arg)``."""
        if not self.arity_ok(len(shapes), grid):
            raise RuleMismatch(len(shapes))
        env: dict[Key, Dim] = dict(params.items())
        later: list[tuple[int, _Term, dict[str, int], Dim]] = []
        for k, pattern, at in self._fixed if not self.repeat else self.places(len(shapes), grid):
            for term, actual in zip(pattern, shapes[k], strict=True):
                key = term.key(at)
                if key is not None:
                    bound = env.setdefault(key, actual)
                    if bound is not actual and bound != actual:
                        raise RuleMismatch(k)
                elif term.constant is not None:
                    if actual != term.constant:
                        raise RuleMismatch(k)
                else:
                    later.append((k, term, at, actual))
        extent = self.extents(len(shapes), grid) if self.families else _NO_INDEX
        for k, term, at, actual in later:
            if term.value(env, at, extent) != actual:
                raise RuleMismatch(k)
        at = {"k": len(shapes)} if self.repeat else _NO_INDEX
        return (self.output[0].value(env, at, extent), self.output[1].value(env, at, extent))

    def equations(self, shapes: Sequence[Shape], params: Mapping[str, Dim],
                  fresh: Callable[[], Dim], grid: tuple[int, int] | None = None
                  ) -> tuple[list[Equation], Shape]:
        """The equations ``pattern = actual`` that these argument shapes must satisfy,
        and the output shape, for shape inference to solve. A dimension of the rule is the
        first argument dimension it meets; one that meets none (and that ``params`` does not
        give) is a fresh variable.

        >>> from itertools import count
        >>> n, c = Dim.var("n"), count(1)
        >>> eqs, out = ShapeRule.parse("(n,n)->(1,1)").equations(
        ...     [(n, Dim.var("_1"))], {}, lambda: Dim.var(f"_{next(c)}"))
        >>> [(k, axis, str(want), str(actual)) for k, axis, want, actual in eqs], out == SCALAR
        ([(0, 1, 'n', '_1')], True)
        """
        if not self.arity_ok(len(shapes), grid):
            raise RuleMismatch(len(shapes))
        env: dict[Key, Dim] = dict(params.items())
        later: list[tuple[int, int, _Term, Mapping[str, int], Dim]] = []
        for k, pattern, at in self.places(len(shapes), grid):
            for axis, (term, actual) in enumerate(zip(pattern, shapes[k], strict=True)):
                key = term.key(at)
                if key is not None and key not in env:
                    env[key] = actual
                else:
                    later.append((k, axis, term, at, actual))
        extent = self.extents(len(shapes), grid)

        def value(term: _Term, at: Mapping[str, int]) -> Dim:
            keys = [_key(a, at) for a in term.atoms()]
            keys += [(term.total_of, t) for t in range(extent.get(term.total_of, 0))]
            for key in keys:
                if key not in env:
                    env[key] = fresh()
            return term.value(env, at, extent)

        eqs = [(k, axis, value(term, at), actual) for k, axis, term, at, actual in later]
        at = {"k": len(shapes)}
        return eqs, (value(self.output[0], at), value(self.output[1], at))

    def pattern(self, k: int) -> str:
        """What argument ``k`` must be, in words: ``"a square matrix"``, ``"a scalar"``,
        ``"a column vector"``, ``"a row vector"``, or ``""`` when it is not one of these."""
        rows, cols = self.inputs[0 if self.repeat else k]
        if rows.single is not None and rows.single == cols.single:
            return "a square matrix"
        if rows.constant == ONE and cols.constant == ONE:
            return "a scalar"
        if cols.constant == ONE:
            return "a column vector"
        return "a row vector" if rows.constant == ONE else ""


Equation = tuple[int, int, Dim, Dim]   # (argument, axis, what the rule wants, what it is)


class _RuleParser:
    """Recursive descent over the signature grammar of ``ShapeRule``."""

    def __init__(self, text: str):
        self.text = text
        self.tokens = _TOKEN.findall(text)
        if "".join(self.tokens) != text.replace(" ", ""):
            raise ValueError(f"bad shape rule {text!r}")
        self.at = 0
        self.families: dict[str, str] = {}

    def peek(self) -> str:
        return self.tokens[self.at] if self.at < len(self.tokens) else ""

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if expected is not None and tok != expected or not tok:
            raise ValueError(f"bad shape rule {self.text!r} at {tok!r}")
        self.at += 1
        return tok

    def rule(self) -> ShapeRule:
        inputs: list[tuple[_Term, _Term]] = []
        repeat = False
        while self.peek() == "(":
            inputs.append(self.pair())
            if self.peek() == "...":
                self.take()
                repeat = True
                break
            if self.peek() == ",":
                self.take()
        self.take("->")
        output = self.pair()
        if self.peek() or (repeat and len(inputs) != 1):
            raise ValueError(f"bad shape rule {self.text!r}")
        indices = tuple(sorted(set(self.families.values())))
        return ShapeRule(self.text, tuple(inputs), output, repeat, indices, dict(self.families))

    def pair(self) -> tuple[_Term, _Term]:
        self.take("(")
        rows = self.term()
        self.take(",")
        cols = self.term()
        self.take(")")
        return (rows, cols)

    def term(self) -> _Term:
        if self.peek() == "sum(":
            self.take()
            family = self.take()
            self.take(")")
            return _Term((), total_of=family)
        parts = []
        sign = 1
        if self.peek() == "-":
            self.take()
            sign = -1
        while True:
            coeff, atoms = self.monomial()
            parts.append((sign * coeff, atoms))
            if self.peek() not in ("+", "-"):
                return _Term(tuple(parts))
            sign = 1 if self.take() == "+" else -1

    def monomial(self) -> tuple[int, tuple[Atom, ...]]:
        coeff, atoms = 1, []
        while True:
            tok = self.take()
            if tok.isdigit():
                coeff *= int(tok)
            elif self.peek() == "[":
                atoms.append(self.member(tok))
            else:
                atoms.append(tok)
            if self.peek() != "*":
                return coeff, tuple(atoms)
            self.take()

    def member(self, family: str) -> Atom:
        self.take("[")
        tok = self.take()
        letter, offset = ("", int(tok)) if tok.isdigit() else (tok, 0)
        if self.peek() in ("+", "-"):
            sign = 1 if self.take() == "+" else -1
            offset = sign * int(self.take())
        self.take("]")
        if letter in ("i", "j"):
            self.families.setdefault(family, letter)
        return (family, letter, offset)


# ----------------------------------------------------------------------------- the solver

FRESH = "_"  # prefix of solver variables; user dimension names never start with it


class Contradiction(Exception):
    """Two dimensions cannot be equal (internal; the caller turns it into a MatdiffError at
    a place). ``reason`` says why when it is not plain: ``2*p = 7`` has no whole solution."""

    def __init__(self, reason: str = ""):
        super().__init__(reason)
        self.reason = reason


@dataclass
class DimSolver:
    """Dimension equations, solved by substitution. Three kinds of names:

    * fresh variables ``_1, _2, ...`` (``fresh()``): unknowns, bound to any dimension;
    * ``rigid`` names (declared by the user): never bound, and distinct, so ``m = n`` is
      a contradiction;
    * every other name (a size named only in the text, ``p`` in ``I_p`` or ``eye(p)``):
      distinct from the other names like a rigid one, but an equation may give it a whole
      number: ``3*p = 6`` binds ``p = 2``, while ``2*p = 7`` and ``p = n`` are contradictions.

    An equation is divided by the greatest common divisor of its coefficients, then solved
    for an unknown with coefficient 1 (a linear equation with integer coefficients has a
    whole solution only so); one that cannot be solved yet waits in ``pending`` and is
    tried again whenever a variable is bound.

    >>> s = DimSolver(rigid=frozenset({"n"}))
    >>> p, x = Dim.var("p"), s.fresh()
    >>> s.unify(3 * p, Dim.of(6)); s.unify(x, p * Dim.var("n")); str(s.resolve(x))
    '2*n'
    """

    rigid: frozenset[str] = frozenset()
    bound: dict[str, Dim] = field(default_factory=dict)
    pending: list[tuple[Dim, Dim, Any]] = field(default_factory=list)
    count: int = 0

    def fresh(self) -> Dim:
        self.count += 1
        return Dim.var(f"{FRESH}{self.count}")

    def resolve(self, d: Dim) -> Dim:
        """``d`` with bound variables replaced by their values; the values of the variables
        met are resolved in place (path compression), so long chains cost linear time."""
        bound = self.bound
        if not any(v in bound for v in d._names):
            return d
        if len(d.terms) == 1 and d.terms[0][1] == 1 and len(d.terms[0][0]) == 1:
            value = bound[d.terms[0][0][0]]       # one variable alone, its value resolved
            if not any(w in bound for w in value._names):
                return value
        stack = [v for v in d._names if v in self.bound]
        while stack:
            v = stack[-1]
            inner = [w for w in self.bound[v]._names if w in self.bound]
            unresolved = [w for w in inner if any(u in self.bound for u in self.bound[w]._names)]
            if unresolved:
                stack.extend(unresolved)  # bindings are acyclic: a bound value never holds
                continue                  # a variable that was bound when it was made
            stack.pop()
            if inner:
                self.bound[v] = self.bound[v].subs({w: self.bound[w] for w in inner})
        names = [v for v in d._names if v in self.bound]
        return d.subs({v: self.bound[v] for v in names}) if names else d

    def unify(self, a: Dim, b: Dim, where: Any = None) -> None:
        """``a = b``, or ``Contradiction``; ``where`` is kept with a pending equation."""
        ra, rb = self.resolve(a), self.resolve(b)
        if ra is rb:
            return
        fresh = self._fresh_alone(ra, rb)
        if fresh is not None:  # _1 = n, _1 = _2: the one binding _binding would choose
            var, value = fresh
            if value.value is not None and value.value < 1:
                raise Contradiction()
            self.bound[var] = value
            if self.pending:
                self._retry()
            return
        diff = ra - rb
        if not diff.terms:
            return
        g = math.gcd(*(c for _, c in diff.terms))
        diff = Dim({m: c // g for m, c in diff.terms})
        if diff.value is not None:
            raise Contradiction()
        binding = self._binding(diff)
        if binding is not None:
            var, value = binding
            if value.value is not None and value.value < 1:
                raise Contradiction("" if var.startswith(FRESH) else f"{var} would be {value}")
            self.bound[var] = value
            self._retry()
            return
        self._refute(diff)
        self.pending.append((a, b, where))

    @staticmethod
    def _fresh_alone(a: Dim, b: Dim) -> tuple[str, Dim] | None:
        """``var = value`` when one side is a fresh variable alone and the other holds no
        fresh variable, or is another fresh variable alone (the first name is bound)."""
        va, vb = _fresh_name(a), _fresh_name(b)
        if va is not None and vb is not None:
            return (va, b) if va < vb else (vb, a)
        if va is not None and not any(v.startswith(FRESH) for v in b._names):
            return va, b
        if vb is not None and not any(v.startswith(FRESH) for v in a._names):
            return vb, a
        return None

    def _binding(self, diff: Dim) -> tuple[str, Dim] | None:
        """The best ``var = value`` that solves ``diff = 0``: a fresh variable (or a name of
        the text, for a whole number) with coefficient 1 that occurs once."""
        candidates = []
        for mono, coeff in diff.terms:
            if len(mono) != 1 or coeff not in (1, -1) or mono[0] in self.rigid:
                continue
            single: dict[Monomial, int] = {mono: coeff}
            rest = diff - Dim(single)
            if mono[0] in rest.names:
                continue
            value = rest * (-coeff)
            text_name = not mono[0].startswith(FRESH)
            if text_name and value.value is None:
                continue                    # a name of the text is a number or itself
            # prefer a fresh variable, and a binding without subtraction: C = A + B, not
            # A = C - B
            candidates.append(((text_name, any(c < 0 for _, c in value.terms),
                                len(value.terms)), mono[0], value))
        if not candidates:
            return None
        _, var, value = min(candidates, key=lambda c: c[0])
        return var, value

    def _refute(self, diff: Dim) -> None:
        """``Contradiction`` when no later binding can solve ``diff = 0``: it holds no fresh
        variable and it is linear, and a declared size is in it (``p = n``), or it is
        homogeneous (``p = q``: distinct names), or it has no whole solution (``2*p = 7``)."""
        if any(v.startswith(FRESH) for v in diff.names):
            return
        text = {v for v in diff.names if v not in self.rigid}
        if not text:
            raise Contradiction()            # an equation between declared sizes: m != n
        if any(len(m) > 1 for m, _ in diff.terms):
            return                           # p*n = 2*n: waits until p is known
        if any(m and m[0] not in text for m, _ in diff.terms):
            raise Contradiction()            # a size of the text is a number, never n
        constant = -dict(diff.terms).get((), 0)
        if constant == 0:
            raise Contradiction()
        if constant % math.gcd(*(c for m, c in diff.terms if m)):
            raise Contradiction(f"{_equation(diff)} has no whole-number solution")

    def _retry(self) -> None:
        pending, self.pending = self.pending, []
        for a, b, where in pending:
            self.unify(a, b, where)

    def is_one(self, d: Dim) -> bool:
        return self.resolve(d) == ONE

    def not_one(self, d: Dim) -> bool:
        """Known to differ from 1: a number other than 1, or a size with a name."""
        r = self.resolve(d)
        return r.value is not None and r.value != 1 or any(not v.startswith(FRESH)
                                                          for v in r.names)

    def snapshot(self) -> tuple[dict[str, Dim], list[tuple[Dim, Dim, Any]], int]:
        return dict(self.bound), list(self.pending), self.count

    def restore(self, snap: tuple[dict[str, Dim], list[tuple[Dim, Dim, Any]], int]) -> None:
        self.bound, self.pending, self.count = dict(snap[0]), list(snap[1]), snap[2]


def _fresh_name(d: Dim) -> str | None:
    """The name of ``d`` when it is one fresh variable alone (``_3``)."""
    if len(d.terms) == 1 and d.terms[0][1] == 1 and len(d.terms[0][0]) == 1:
        name = d.terms[0][0][0]
        return name if name.startswith(FRESH) else None
    return None


def _equation(diff: Dim) -> str:
    """``diff = 0`` written with positive sides, names first: ``2*p = 7``."""
    if diff.terms[0][1] < 0:
        diff = diff * -1
    lhs = Dim([(m, c) for m, c in diff.terms if c > 0])
    rhs = Dim([(m, -c) for m, c in diff.terms if c < 0])
    return f"{lhs} = {rhs}"
