"""matdiff: symbolic matrix calculus.

Parse a matrix expression as people write it (ASCII/MATLAB style or LaTeX), infer its shapes,
differentiate it, simplify and print the result, compile it to NumPy, and check it numerically.

>>> import matdiff as md
>>> str(md.grad(md.parse("x'*A*x"), "x"))
"(A + A')*x"
"""

from .expr import Dim, Expr, MatdiffError, Op

__all__ = ["Dim", "Expr", "MatdiffError", "Op"]
