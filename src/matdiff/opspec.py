"""The Op spec (``OpSpec``: how an Op is written, its shape rule and builder), the shape
check the constructors derive from it, and ``MatdiffError``, the one user-facing error.

Imports nothing of matdiff but ``dims``; ``matdiff.expr`` re-exports all of it and holds the
table ``OPS`` of one ``OpSpec`` per Op.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .dims import Dim, RuleMismatch, Shape, ShapeRule

if TYPE_CHECKING:
    from .expr import Expr
    from .node import Op

__all__ = ["MatdiffError", "OpSpec", "ShapeMismatch", "shape_function", "format_shape"]


class MatdiffError(ValueError):
    """A user-facing error. ``pos`` is the offset in the input text, where one applies.

    >>> str(MatdiffError("unknown function 'foo'", pos=3))
    "unknown function 'foo'"
    """

    def __init__(self, message: str, pos: int | None = None, text: str | None = None,
                 end: int | None = None):
        super().__init__(message)
        self.message = message
        self.pos = pos
        self.end = end
        self.text = text

    def render(self) -> str:
        """The message, with the text and a caret under ``pos`` where both are known."""
        if self.text is None or self.pos is None:
            return f"error: {self.message}"
        line_start = self.text.rfind("\n", 0, self.pos) + 1
        line_end = self.text.find("\n", self.pos)
        line = self.text[line_start: None if line_end < 0 else line_end]
        col = self.pos - line_start
        width = max(1, min((self.end or self.pos + 1) - self.pos, len(line) - col))
        return f"error: {self.message}\n  {line}\n  {' ' * col}{'^' * width}"


@dataclass(frozen=True)
class OpSpec:
    """One Op: how it is written, its shape as dimension equations, and its builder.

    >>> from matdiff.expr import OPS, Op
    >>> spec = OPS[Op.KRON]
    >>> spec.shape, spec.ascii, spec.arity
    ('(m,n),(p,q)->(m*p,n*q)', ('kron',), 2)
    """

    shape: str                                        # dimension equations (dims.ShapeRule)
    build: Callable[[tuple[Expr, ...], Any], Expr]    # the smart constructor over (args, attr)
    ascii: tuple[str, ...] = ()     # function names; the first is the one printed
    latex: tuple[str, ...] = ()     # LaTeX commands (\det: "det"; "log\\det": two in a row);
                                    # \operatorname{...} also takes every ASCII name
    arity: int | None = 1           # expression arguments; None: any number (n-ary)
    dims: tuple[str, ...] = ()      # the sizes the attribute holds, by their names in
                                    # `shape`; a call writes them after its arguments
    optional_dims: int = 0          # trailing sizes a call may leave out, each then 1
    bare: bool = False              # a call without sizes takes them from its place: ones()
    elementwise: bool = False       # a scalar function entry by entry: f(X)ᵢⱼ = f(Xᵢⱼ)
    keeps_zero: bool = False        # elementwise with f(0) = 0: f(0) folds to 0
    dims_of: Callable[[Any], tuple[Dim, ...]] | None = None  # the sizes in the attribute
    #                                 (default: the attribute, a tuple or one size)
    attr_of_name: Callable[[str], Any] | None = None  # a call's attribute, fixed by its name
    on_vector: Op | None = None     # the Op a call means when its argument is a column
    #                                 vector (MATLAB, NumPy): diag(v) is Diag(v)
    applied_latex: tuple[str, ...] = ()  # LaTeX commands that are this function only when a
    #                                 parenthesis follows: \sigma(z); elsewhere a symbol
    rule: ShapeRule = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rule = ShapeRule.parse(self.shape)
        object.__setattr__(self, "rule", rule)
        output = [t.single for t in rule.output]
        problems = [
            (set(self.dims) - rule.names(), "sizes that are not in the rule"),
            ((self.arity is None) != rule.repeat
             or not rule.repeat and len(rule.inputs) != self.arity, "an arity the rule lacks"),
            (self.arity is None and self.ascii, "a call of an n-ary Op"),
            (self.latex and not self.ascii, "LaTeX names without an ASCII name"),
            (self.bare and not set(self.dims) <= set(output), "a bare call of hidden sizes"),
            (self.keeps_zero and not self.elementwise, "keeps_zero, not elementwise"),
        ]
        for problem, what in problems:
            if problem:
                raise ValueError(f"OpSpec {self.shape} {self.ascii}: {what}")

    def params(self, attr: Any) -> dict[str, Dim]:
        """The sizes of the attribute, by their names in the shape rule."""
        if not self.dims:
            return _NO_PARAMS
        values = self.dims_of(attr) if self.dims_of is not None else \
            attr if isinstance(attr, tuple) else (attr,)
        return dict(zip(self.dims, values, strict=True))

    def call_attr(self, name: str, dims: tuple[Dim, ...]) -> Any:
        """The attribute of a call ``name(args, dims)``: ``K(m, n)`` has ``(m, n)``."""
        if self.attr_of_name is not None:
            return self.attr_of_name(name)
        if not dims:
            return None
        return dims[0] if len(dims) == 1 else tuple(dims)

    @property
    def counts(self) -> tuple[int, ...]:
        """The numbers of arguments a call may have (expressions, then sizes)."""
        most = (self.arity or 0) + len(self.dims)
        counts = {most - k for k in range(self.optional_dims + 1)}
        return tuple(sorted(counts | ({self.arity or 0} if self.bare else set())))


_NO_PARAMS: dict[str, Dim] = {}


class ShapeMismatch(MatdiffError):
    """Raised by a shape rule when a node would be ill-shaped (an internal invariant)."""


def format_shape(s: Shape) -> str:
    """``m x n``, as errors write a shape."""
    return f"{s[0]}x{s[1]}"


def _same(a: Dim, b: Dim) -> bool:
    return a is b or a == b


def _all_alike(args: tuple[Expr, ...]) -> Shape | None:
    """``(m,n)...->(m,n)``: every argument has the first one's shape."""
    rows, cols = args[0].shape
    return (rows, cols) if all(_same(a.shape[0], rows) and _same(a.shape[1], cols)
                               for a in args) else None


def _chain(args: tuple[Expr, ...]) -> Shape | None:
    """``(d[i],d[i+1])...->(d[0],d[k])``: each argument's columns are the next one's rows."""
    for a, b in zip(args, args[1:]):  # noqa: B905 - pairs of neighbours
        if not _same(a.shape[1], b.shape[0]):
            return None
    return args[0].shape[0], args[-1].shape[1]


# The rules that n-ary Ops use, checked in one pass over the arguments (a product of N
# factors in time linear in N); a mismatch is then worded by the general check.
_FAST: dict[str, Callable[[tuple[Expr, ...]], Shape | None]] = {
    "(m,n)...->(m,n)": _all_alike, "(d[i],d[i+1])...->(d[0],d[k])": _chain}


def shape_function(name: str, spec: OpSpec) -> Callable[[tuple[Expr, ...], Any], Shape]:
    """The constructors' check: the node's shape from its arguments by the shape rule."""
    rule, params = spec.rule, spec.params
    fast = _FAST.get(spec.shape.replace(" ", ""))

    def shape(args: tuple[Expr, ...], attr: Any) -> Shape:
        if fast is not None and args:
            out = fast(args)
            if out is not None:
                return out
        try:
            return rule.check([a.shape for a in args], params(attr),
                              attr if rule.is_grid else None)
        except RuleMismatch as err:
            shapes = ", ".join(format_shape(a.shape) for a in args)
            where = f"argument {err.arg + 1}" if err.arg < len(args) else "the arguments"
            raise ShapeMismatch(f"{name} of {shapes or 'nothing'}: {where} "
                                f"does not fit {spec.shape}") from None
    return shape
