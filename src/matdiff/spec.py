"""Optimisation problems as text (GENO-like specifications) to a ``Spec``.

Input: a specification with ``parameters``, ``variables``, ``min``/``max`` and ``st`` blocks
(``spec.lark``), or one constraint ``lhs == rhs`` / ``<=`` / ``>=``. Output: the declarations
and the expressions as ``Piece`` s of the text, each parsed later by the ASCII parser with its
offset, so an error anywhere points into the whole text. Contract: malformed input raises
``MatdiffError`` with ``pos`` in the text; no other exception escapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from lark import Lark, Token, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.visitors import Transformer

from .expr import MatdiffError

__all__ = ["Piece", "Constraint", "Declaration", "Spec", "parse_spec", "parse_constraint"]

_PARSER = Lark(resources.files(__package__).joinpath("spec.lark").read_text(encoding="utf-8"),
               parser="lalr", start=["start", "constraint"], propagate_positions=True,
               maybe_placeholders=False)

_CMP = {"==": "==", "=": "==", "<=": "<=", "<": "<=", "≤": "<=", ">=": ">=", ">": ">=",
        "≥": ">="}
_WORDS = {  # terminal -> what the user should have written, for messages
    "PARAMETERS": "'parameters'", "VARIABLES": "'variables'", "SENSE": "'min' or 'max'",
    "SUBJECT_TO": "'st'", "KIND": "a declaration (Matrix, Vector or Scalar NAME)",
    "NAME": "a name", "SYMMETRIC": "'symmetric'", "LPAR": "'('", "RPAR": "')'",
    "COMMA": "','", "DIM": "a dimension", "CMP": "a comparison (==, <= or >=)",
    "EXPR": "an expression", "_NL": "the end of the line", "$END": "the end of the text",
}


@dataclass(frozen=True)
class Piece:
    """An expression: ``text == source[start:start + len(text)]``."""

    text: str
    start: int
    source: str

    def shift(self, err: MatdiffError) -> MatdiffError:
        """An error in ``text`` moved to its place in ``source``."""
        if err.pos is not None and (err.text is None or err.text == self.text):
            err.pos += self.start
            err.end = None if err.end is None else err.end + self.start
        err.text = self.source
        return err


@dataclass(frozen=True)
class Constraint:
    """``lhs op rhs``, ``op`` one of ``==``, ``<=``, ``>=``; ``pos`` is the operator's."""

    lhs: Piece
    op: str
    rhs: Piece
    pos: int

    @property
    def text(self) -> str:
        return f"{self.lhs.text.strip()} {self.op} {self.rhs.text.strip()}"


@dataclass(frozen=True)
class Declaration:
    """``Matrix A``, ``Vector x(n)``, ``Matrix S symmetric``, ``Scalar lam``."""

    kind: str                       # "matrix" | "vector" | "scalar"
    name: str
    dims: tuple[str, ...] | None    # written sizes, names or integers
    symmetric: bool
    pos: int


@dataclass
class Spec:
    """A parsed specification; ``sense`` is ``"min"`` or ``"max"``."""

    text: str
    parameters: list[Declaration] = field(default_factory=list)
    variables: list[Declaration] = field(default_factory=list)
    sense: str = "min"
    objective: Piece | None = None
    constraints: list[Constraint] = field(default_factory=list)


def _piece(tok: Token, source: str) -> Piece:
    start = int(tok.start_pos or 0)
    raw = str(tok)
    lead = len(raw) - len(raw.lstrip())
    return Piece(raw.strip(), start + lead, source)


@v_args(inline=True)
class _ToSpec(Transformer):
    """Lark tree to the parts of a Spec; one method per rule alias."""

    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def dims(self, *toks: Token) -> tuple[str, ...]:
        return tuple(str(t).strip() for t in toks)

    def declaration(self, kind: Token, name: Token, *rest: Any) -> Declaration:
        dims = next((r for r in rest if isinstance(r, tuple)), None)
        symmetric = any(isinstance(r, Token) and r.type == "SYMMETRIC" for r in rest)
        k = str(kind).lower()
        if symmetric and k != "matrix":
            raise MatdiffError(f"only a matrix can be symmetric; {name} is a {k}",
                               pos=kind.start_pos)
        if dims is not None and len(dims) != {"matrix": 2, "vector": 1, "scalar": 0}[k]:
            raise MatdiffError(f"a {k} has {'two' if k == 'matrix' else 'one'} "
                               f"dimension{'s' if k == 'matrix' else ''}",
                               pos=name.start_pos)
        return Declaration(k, str(name), dims, symmetric, int(name.start_pos or 0))

    def constraint(self, lhs: Token, cmp: Token, rhs: Token) -> Constraint:
        return Constraint(_piece(lhs, self.text), _CMP[str(cmp)], _piece(rhs, self.text),
                          int(cmp.start_pos or 0))

    def parameters(self, head: Token, *decls: Declaration) -> tuple[str, Token, list[Any]]:
        return ("parameters", head, list(decls))

    def variables(self, head: Token, *decls: Declaration) -> tuple[str, Token, list[Any]]:
        return ("variables", head, list(decls))

    def objective(self, head: Token, *lines: Token) -> tuple[str, Token, list[Any]]:
        first, last = lines[0], lines[-1]
        start = int(first.start_pos or 0) + len(str(first)) - len(str(first).lstrip())
        end = int(last.start_pos or 0) + len(str(last).rstrip())
        return ("objective", head, [Piece(self.text[start:end], start, self.text)])

    def constraints(self, head: Token, *cons: Constraint) -> tuple[str, Token, list[Any]]:
        return ("constraints", head, list(cons))

    def start(self, *sections: tuple[str, Token, list[Any]]) -> Spec:
        spec = Spec(self.text)
        seen: set[str] = set()
        for kind, head, items in sections:
            if kind in seen:
                raise MatdiffError(f"a second '{str(head).strip()}' block; write each block once",
                                   pos=head.start_pos, end=head.end_pos)
            seen.add(kind)
            if kind == "objective":
                spec.sense = "max" if str(head).lower().startswith("max") else "min"
                spec.objective = items[0]
            else:
                setattr(spec, kind, items)
        _check_names(spec)
        return spec


def _check_names(spec: Spec) -> None:
    if spec.objective is None:
        raise MatdiffError("no objective: write 'min' or 'max' and an expression",
                           pos=len(spec.text.rstrip()))
    if not spec.variables:
        raise MatdiffError("no variables: write 'variables' and declarations such as "
                           "'Vector x'", pos=0)
    seen: dict[str, Declaration] = {}
    for d in spec.parameters + spec.variables:
        if d.name in seen:
            raise MatdiffError(f"{d.name} is declared twice", pos=d.pos, end=d.pos + len(d.name))
        seen[d.name] = d


def _block_at(text: str, pos: int) -> str:
    """The block (``parameters``, ``variables``, ``min``, ``st``) that ``pos`` is in."""
    block = ""
    for line in text[:pos].splitlines():
        word = line.split("#")[0].strip().lower()
        first = word.split()[0] if word.split() else ""
        if word in ("parameters", "parameter", "variables", "variable"):
            block = word.rstrip("s")
        elif word in ("st", "s.t.") or word.replace(" ", "") == "subjectto":
            block = "st"
        elif first in ("min", "max", "minimize", "maximize", "minimise", "maximise"):
            block = "min"
    return block


def _friendly(err: UnexpectedInput, text: str, start: str) -> MatdiffError:
    if isinstance(err, UnexpectedEOF):
        return MatdiffError("the text ends too early", pos=max(0, len(text.rstrip()) - 1))
    if isinstance(err, UnexpectedToken):
        tok = err.token
        wanted = sorted({_WORDS.get(t, repr(t)) for t in err.expected})
        if tok.type == "CMP":
            in_st = start == "constraint" or _block_at(text, tok.start_pos or 0) == "st"
            message = "one comparison per constraint: write l <= x <= u as two constraints" \
                if in_st else "a comparison belongs in a constraint, after 'st'"
            return MatdiffError(message, pos=tok.start_pos, end=tok.end_pos)
        if tok.type == "$END":
            return MatdiffError("the text ends too early; expected " + " or ".join(wanted),
                                pos=max(0, len(text.rstrip()) - 1))
        shown = "end of the line" if tok.type == "_NL" else repr(str(tok).strip())
        return MatdiffError(f"unexpected {shown}; expected " + " or ".join(wanted),
                            pos=tok.start_pos, end=tok.end_pos if tok.type != "_NL" else None)
    if isinstance(err, UnexpectedCharacters):
        pos = int(err.pos_in_stream or 0)
        ch = text[pos] if pos < len(text) else ""
        if ch in "<>=≤≥":
            return MatdiffError("a comparison belongs in a constraint, after 'st'", pos=pos)
        return MatdiffError(f"unexpected character {ch!r}", pos=pos)
    return MatdiffError(str(err), pos=0)


def _parse(text: str, start: str) -> Any:
    try:
        tree = _PARSER.parse(text + ("\n" if start == "start" else ""), start=start)
        return _ToSpec(text).transform(tree)
    except MatdiffError as err:
        err.text = text
        raise
    except UnexpectedInput as err:
        out = _friendly(err, text, start)
        out.text = text
        raise out from None
    except Exception as err:  # a MatdiffError raised in the transformer arrives wrapped
        inner = getattr(err, "orig_exc", None)
        if isinstance(inner, MatdiffError):
            inner.text = text
            raise inner from None
        raise


def parse_spec(text: str) -> Spec:
    """Parse a problem specification.

    >>> s = parse_spec("variables\\n  Vector x\\nmin\\n  ||x||^2\\nst\\n  sum(x) == 1\\n")
    >>> s.variables[0].name, s.sense, s.objective.text, s.constraints[0].text
    ('x', 'min', '||x||^2', 'sum(x) == 1')
    """
    if not isinstance(text, str):
        raise MatdiffError("the specification must be a string")
    spec = _parse(text, "start")
    assert isinstance(spec, Spec)
    return spec


def parse_constraint(text: str) -> Constraint:
    """Parse one constraint, ``lhs == rhs``, ``lhs <= rhs`` or ``lhs >= rhs``.

    >>> c = parse_constraint("A*x <= b")
    >>> c.lhs.text, c.op, c.rhs.text, c.pos
    ('A*x', '<=', 'b', 4)
    """
    if not isinstance(text, str):
        raise MatdiffError(f"a constraint is a string such as 'sum(x) == 1', got {text!r}")
    if not text.strip():
        raise MatdiffError("the constraint is empty", pos=0, text=text)
    con = _parse(text, "constraint")
    assert isinstance(con, Constraint)
    return con
