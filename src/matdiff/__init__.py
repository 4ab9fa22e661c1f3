"""matdiff: symbolic matrix calculus.

Parse a matrix expression as people write it (ASCII/MATLAB style or LaTeX), infer its shapes,
differentiate it, simplify and print the result, compile it to NumPy/JAX/PyTorch, and check it
numerically.

>>> import matdiff as md
>>> str(md.grad(md.parse("x'*A*x"), "x"))
"(A + A')*x"
"""

from typing import TYPE_CHECKING, Any

from . import printing
from .api import (
    WirtingerPair,
    check,
    differential,
    evaluate,
    explain,
    grad,
    hessian,
    hvp,
    jacobian,
    parse,
    report,
    shapes_of,
    wirtinger,
)
from .codegen import codegen, compile  # noqa: A004 - md.compile is the public name
from .expr import Dim, Expr, MatdiffError, Op
from .minimize import minimize
from .printing import to_latex, to_text, to_unicode
from .simplify import simplify

__all__ = ["Dim", "Expr", "MatdiffError", "Op", "check", "codegen", "compile", "differential",
           "evaluate", "explain", "grad", "hessian", "hvp", "jacobian", "minimize", "parse",
           "printing", "report", "shapes_of", "simplify", "to_latex", "to_text", "to_unicode",
           "from_sympy", "to_sympy", "wirtinger", "WirtingerPair", "__version__"]
__version__ = "0.3.0.dev0"

if TYPE_CHECKING:
    from .sympy_interop import from_sympy, to_sympy


def __getattr__(name: str) -> Any:
    """``md.from_sympy`` and ``md.to_sympy`` load SymPy (the ``sympy`` extra) on first use."""
    if name in ("from_sympy", "to_sympy"):
        try:
            from . import sympy_interop  # noqa: PLC0415 - SymPy is optional and slow to load
        except ModuleNotFoundError as err:
            raise MatdiffError(f"md.{name} needs SymPy: pip install 'matdiff[sympy]' "
                               f"({err})") from None
        return getattr(sympy_interop, name)
    raise AttributeError(f"module 'matdiff' has no attribute {name!r}")

# notebook display: expressions typeset as math in Jupyter
from .web import notebook as _notebook  # noqa: E402 - needs the package above

Expr._repr_latex_ = _notebook.repr_latex  # type: ignore[attr-defined]
Expr._repr_html_ = _notebook.repr_html  # type: ignore[attr-defined]
