"""Numerically stable forms: a node that overflows or cancels when computed node by node,
rewritten to an equal expression whose Ops the backends compute stably.

``STABLE`` has one row per outer Op: the row gets the node and returns its stable form, or
None. The forms use Ops whose backend rows and ``check.EVAL`` rows are stable themselves
(``softplus`` is ``logaddexp(0, z)``, ``logsumexp`` shifts by the max, ``softmax`` too), so
the generated code (``codegen.lower``) and the reference evaluator (``check``) both compute
``log(1 + exp(z))`` at z = 1000 as 1000, not ``inf``. Each row is one identity, tested by
a value-keeping property test (``tests/test_language.py``).

>>> from matdiff.expr import sym, apply, Op
>>> z = sym("z", ("n",))
>>> str(stable_form(apply(Op.LOG, apply(Op.SIGMOID, z))))
'-softplus(-z)'
"""

from __future__ import annotations

from collections.abc import Callable

from . import expr as E
from .expr import Expr, Op

__all__ = ["STABLE", "stable_form"]


def _is_one(x: Expr) -> bool:
    return x.op is Op.ONES or x.op is Op.CONST and x.attr == 1


def _one_plus(x: Expr) -> Expr | None:
    """u when ``x`` is 1 + u (1 a number or an all-ones matrix), else None."""
    if x.op is not Op.ADD or len(x.args) != 2:
        return None
    first, second = x.args
    return second if _is_one(first) else first if _is_one(second) else None


def _negated(x: Expr) -> Expr | None:
    """u when ``x`` is −u, else None."""
    if x.op is Op.SCALE and x.args[0].op is Op.CONST and x.args[0].attr == -1:
        return x.args[1]
    return None


def _softplus(z: Expr) -> Expr:
    return E.apply(Op.SOFTPLUS, z)


def _stable_log(e: Expr) -> Expr | None:
    x = e.args[0]
    if x.op is Op.SIGMOID:                                # log σ(z) = −softplus(−z)
        return E.neg(_softplus(E.neg(x.args[0])))
    if x.op is Op.SOFTMAX:                                # log softmax z = z − lse(z) 𝟏
        z = x.args[0]
        return E.sub(z, E.scale(E.logsumexp(z), E.ones(z.shape)))
    if x.op is Op.SUM and x.args[0].op is Op.EXP:         # log Σ exp(z) = logsumexp z
        return E.logsumexp(x.args[0].args[0])
    u = _one_plus(x)
    if u is None:
        return None
    if u.op is Op.EXP:                                    # log(1 + eᶻ) = softplus z
        return _softplus(u.args[0])
    v = _negated(u)
    if v is not None and v.op is Op.SIGMOID:              # log(1 − σ(z)) = −softplus z
        return E.neg(_softplus(v.args[0]))
    return E.apply(Op.LOG1P, u)                           # log(1 + u) = log1p u


def _stable_quotient(e: Expr) -> Expr | None:
    """exp(z)/Σ exp(z) = softmax z, for a column z."""
    a, x = e.args
    if a.op is Op.POW and a.args[1].op is Op.CONST and a.args[1].attr == -1 \
            and a.args[0].op is Op.SUM and a.args[0].args[0] is x and x.op is Op.EXP \
            and x.cols == E.ONE:
        return E.softmax(x.args[0])
    return None


def _stable_sub_one(e: Expr) -> Expr | None:
    """exp(z) − 1 = expm1 z (no cancellation near z = 0)."""
    if len(e.args) != 2:
        return None
    for first, second in (e.args, e.args[::-1]):
        minus_one = second.op is Op.CONST and second.attr == -1 or \
            (v := _negated(second)) is not None and v.op is Op.ONES
        if first.op is Op.EXP and minus_one:
            return E.apply(Op.EXPM1, first.args[0])
    return None


STABLE: dict[Op, Callable[[Expr], Expr | None]] = {
    Op.LOG: _stable_log,
    Op.SCALE: _stable_quotient,
    Op.ADD: _stable_sub_one,
}


def stable_form(e: Expr) -> Expr | None:
    """The stable form of the node ``e`` (``STABLE``), or None when it has none."""
    row = STABLE.get(e.op)
    return row(e) if row is not None else None
