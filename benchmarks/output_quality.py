"""Output quality: how large matdiff's printed results are next to the textbook forms.

For every item of ``../shared/examples/battery.md`` with an "expect" form, for a table of
Matrix Cookbook identities (Petersen & Pedersen, 2012, equation numbers as ids) and for a
table of spectral results from the literature (matrix functions, eigenvalues, matrix norms,
factorizations; printed in Unicode over their named factorizations) and for the table of
unseen problems in ``quality_items.py`` (gradients, Hessians and Jacobians from the Cookbook
ch. 2, 9 and 10, ML losses, Kronecker, block and Hadamard problems), prints the size of
matdiff's result divided by the size of the textbook form. The size is counted in tokens
of the printed tree (``tokens``): identifiers, numbers, identities and ones, function names
(``tr``, ``inv``, ``exp``, a transpose, a power), and operators (an n-ary sum or product has
n − 1 of them; a minus sign in a sum takes the place of its ``+``, a leading minus counts
one). Every result is also checked against the textbook form numerically. Goal: every
ratio at most 1.5, median at most 1.0.

Run: ``python benchmarks/output_quality.py [path/to/battery.md]``; ``--quiet`` prints the
summary and the items above 1.0 only; ``--timing`` prints what the bounded search costs:
the time of the whole table (the battery's 30 problems and every item above) with the
search off and on, in this process (best of three, caches cleared), the time spent inside
the search itself (less exposed to the machine's load than the difference), and the time of
a 256-term sum from parse to print with the search on.
"""

from __future__ import annotations

import importlib
import math
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import matdiff as md
from matdiff import search
from matdiff.check import evaluate, random_inputs, rel_error
from matdiff.expr import Expr, Op, const
from matdiff.names import with_names
from matdiff.order import unseen

S = importlib.import_module("matdiff.simplify")  # the module (md.simplify is the function)
sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality_items import ITEMS  # noqa: E402

BATTERY = Path(__file__).resolve().parents[2] / "shared" / "examples" / "battery.md"

# The battery's "expect" forms, written in matdiff's ASCII input language (same meaning).
TEXTBOOK: dict[int, str | int] = {
    1: "A'*B'", 2: "(A + A')*x", 3: "2*A'*(A*x - b)", 4: "-2*(X - A*B)*B'", 5: "inv(X)'",
    6: "det(X)*inv(X)'", 7: "-inv(X)'*A'*inv(X)'", 12: "(A + A')*X", 13: "a*b'",
    15: 13,  # Σ_k (e_kᵀ ⊗ I_m) Y (e_k ⊗ I_n): Σ, k, 5 leaves, ᵀ, 2 ⊗, 2 products, _k
    22: "2*A'*(A*X*B - C)*B'", 23: "A + A'", 24: "kron(B', A)", 25: "3*(X^2)'",
    26: "4*X*(X'*X - I)", 30: "2*A'*A",
}
KIND = {23: "hessian", 24: "jacobian", 30: "hessian"}

COOKBOOK = [  # (equation, f, wrt, textbook gradient)
    ("99", "tr(X)", "X", "eye(n)"), ("100", "tr(X*A)", "X", "A'"),
    ("101", "tr(A*X*B)", "X", "A'*B'"), ("102", "tr(A*X'*B)", "X", "B*A"),
    ("103", "tr(X'*A)", "X", "A"), ("106", "tr(X*X)", "X", "2*X'"),
    ("107", "tr(X*X*B)", "X", "(X*B + B*X)'"), ("108", "tr(X'*B*X)", "X", "B*X + B'*X"),
    ("111", "tr(X*B*X')", "X", "X*B' + X*B"), ("114", "tr(A*X*B*X)", "X",
                                               "A'*X'*B' + B'*X'*A'"),
    ("115", "tr(X'*X)", "X", "2*X"), ("116", "tr(B'*X'*C*X*B)", "X", "C'*X*B*B' + C*X*B*B'"),
    ("117", "tr(X'*B*X*C)", "X", "B*X*C + B'*X*C'"),
    ("118", "tr(A*X*B*X'*C)", "X", "A'*C'*X*B' + C*A*X*B"),
    ("119", "tr((A*X*B + C)*(A*X*B + C)')", "X", "2*A'*(A*X*B + C)*B'"),
    ("121", "tr(X^3)", "X", "3*(X^2)'"), ("124", "tr(A*inv(X)*B)", "X",
                                          "-inv(X)'*A'*B'*inv(X)'"),
    ("49", "det(X)", "X", "det(X)*inv(X)'"), ("55", "log(det(X'*X))", "X", "2*X*inv(X'*X)"),
    ("57", "log(abs(det(X)))", "X", "inv(X)'"), ("61", "a'*inv(X)*b", "X",
                                                "-inv(X)'*a*b'*inv(X)'"),
    ("69", "x'*a", "x", "a"), ("70", "a'*X*b", "X", "a*b'"), ("71", "a'*X'*b", "X", "b*a'"),
    ("72", "a'*X*a", "X", "a*a'"), ("81", "x'*B*x", "x", "(B + B')*x"),
    ("82", "b'*X'*X*c", "X", "X*(b*c' + c*b')"),
    ("84", "(X*b + c)'*D*(X*b + c)", "X", "(D + D')*(X*b + c)*b'"),
    ("frobenius", "||X||_F^2", "X", "2*X"),
]

# Spectral functions (issue 15): (source, f, wrt, shapes, textbook gradient); the results are
# printed in Unicode over their named factorizations (UVᵀ where UΣVᵀ = X (thin SVD)).
SYM, SPD, RECT = ({"S": ("n", "n", "symmetric")}, {"S": ("n", "n", "spd")},
                  {"X": ("m", "n")})
SPECTRAL = [
    ("MC: ∂tr F(X) = f(X)ᵀ", "tr(expm(X))", "X", None, "expm(X)'"),
    ("MC: ∂tr F(X) = f(X)ᵀ", "tr(logm(X))", "X", None, "inv(X)'"),
    ("MC: ∂tr F(X) = f(X)ᵀ", "tr(sqrtm(X))", "X", None, "1/2*inv(sqrtm(X))'"),
    ("Higham 2008 ch. 3", "tr(A*expm(X))", "X", None, "expm_frechet(X', A')"),
    ("Najfeld & Havel 1995", "x'*expm(A)*x", "A", None, "expm_frechet(A', x*x')"),
    ("Higham 2008 ch. 3", "tr(A*logm(X))", "X", None, "logm_frechet(X', A')"),
    ("M&N ch. 8", "lambda_max(S)", "S", SYM, "eigvec_max(S)*eigvec_max(S)'"),
    ("M&N ch. 8", "lambda_min(S)", "S", SYM, "eigvec_min(S)*eigvec_min(S)'"),
    ("M&N ch. 8 + chain", "lambda_max(X'*X)", "X", None,
     "2*X*eigvec_max(X'*X)*eigvec_max(X'*X)'"),
    ("Watson 1992", "||X||_*", "X", RECT, "polar(X)"),
    ("Watson 1992", "||X||_2", "X", RECT, "svd_u1(X)*svd_v1(X)'"),
    ("Watson 1992 + chain", "||X||_2^2", "X", RECT, "2*||X||_2*svd_u1(X)*svd_v1(X)'"),
    ("MC 49 + chain", "det(X)^(1/3)", "X", None, "1/3*det(X)^(1/3)*inv(X)'"),
    ("MC 49 + chain", "det(X)^(1/n)", "X", {"X": ("k", "k")}, "1/n*det(X)^(1/n)*inv(X)'"),
    ("MC 49 + chain", "det(X)^2", "X", None, "2*det(X)^2*inv(X)'"),
    ("Golub & Pereyra 1973", "tr(A*pinv(X))", "X", {"X": ("m", "n"), "A": ("m", "n")},
     "-pinv(X)'*A'*pinv(X)' + (eye(m) - X*pinv(X))*A*pinv(X)*pinv(X)' "
     "+ pinv(X)'*pinv(X)*A*(eye(n) - pinv(X)*X)"),
    ("adj = det X⁻¹, MC 49", "tr(adj(X))", "X", None,
     "(tr(adj(X))*inv(X) - inv(X)*adj(X))'"),
    ("Murray 2016", "tr(A*chol(S))", "S", SPD, "1/2*(inv(chol(S))'*(tril(chol(S)'*A') - "
     "1/2*(eye(n) .* (chol(S)'*A')))*inv(chol(S)) + (inv(chol(S))'*(tril(chol(S)'*A') - "
     "1/2*(eye(n) .* (chol(S)'*A')))*inv(chol(S)))')"),
]

# ML functions (issue 14): (source, f, wrt, textbook gradient)
ML = [
    ("Bishop 2006 §4.3.2: cross-entropy", "-(y'*log(sigmoid(X*w)) + (1-y)'*log(1-sigmoid(X*w)))",
     "w", "X'*(sigmoid(X*w) - y)"),
    ("logistic log-likelihood", "y'*log(sigmoid(X*w)) + (1-y)'*log(1-sigmoid(X*w))", "w",
     "X'*(y - sigmoid(X*w))"),
    ("logistic loss, softplus", "sum(softplus(X*w)) - y'*X*w", "w", "X'*(sigmoid(X*w) - y)"),
    ("Bishop 2006 §4.3.4: softmax", "logsumexp(W*x) - y'*W*x", "W", "(softmax(W*x) - y)*x'"),
    ("softmax cross-entropy (1ᵀy free)", "-y'*log(softmax(W*x))", "W",
     "(sum(y)*softmax(W*x) - y)*x'"),
    ("two-layer net, softplus", "||W2*softplus(W1*x) - y||^2", "W1",
     "2*(W2'*(W2*softplus(W1*x) - y) .* sigmoid(W1*x))*x'"),
    ("two-layer net, softplus", "||W2*softplus(W1*x) - y||^2", "W2",
     "2*(W2*softplus(W1*x) - y)*softplus(W1*x)'"),
    ("log-sigmoid", "sum(log(sigmoid(x)))", "x", "1 - sigmoid(x)"),
    ("logsumexp", "logsumexp(x)", "x", "softmax(x)"),
]


def tokens(e: Expr) -> int:
    """Tokens of the printed form of ``e``: leaves, function names and operators.

    >>> tokens(md.parse("2*A'*(A*x - b)"))
    10
    """
    memo: dict[Expr, int] = {}
    for node in unseen(e, memo):
        memo[node] = _own_tokens(node, memo)
    return memo[e]


def _own_tokens(node: Expr, memo: dict[Expr, int]) -> int:
    if not node.args:
        return 1
    if node.op is Op.SCALE and node.args[0] is const(-1):
        return 1 + memo[node.args[1]]  # a leading minus
    if node.op is Op.ADD:  # n − 1 signs; a negated term's minus is its sign
        return len(node.args) - 1 + sum(
            memo[t] - (1 if t.op is Op.SCALE and t.args[0] is const(-1) else 0)
            for t in node.args)
    if node.op is Op.MATPOW:
        return 2 + memo[node.args[0]]  # the base, the power and its exponent
    return max(1, len(node.args) - 1) + sum(memo[a] for a in node.args)


def battery_items(path: Path) -> dict[int, tuple[str, list[str]]]:
    """``{number: (expression, [variables])}`` for the battery's numbered lines."""
    items = {}
    for line in path.read_text().splitlines():
        m = re.match(r"\s*(\d+)\.\s+(.*?)\s+wrt\s+(\w+(?:\s+and\s+\w+)?)", line)
        if not m:
            continue
        text = re.sub(r"^(Hessian|Jacobian) of\s+", "", m.group(2)).strip()
        text = re.sub(r"\s+\([a-z -]+\)$", "", text)  # "(matrix-valued)"
        items[int(m.group(1))] = (text, re.split(r"\s+and\s+", m.group(3)))
    return items


def derivative(f: Expr, name: str, kind: str) -> Expr:
    out = getattr(md, kind)(f, name)
    assert isinstance(out, Expr)
    return out


def same(a: Expr, b: Expr) -> bool:
    env, sizes = random_inputs([a, b], seed=5)
    x, y = evaluate(a, env, sizes), evaluate(b, env, sizes)
    return x.shape == y.shape and rel_error(x, y) < 1e-8


Row = tuple[str, str, int, int, bool]


def battery_rows(path: Path) -> list[Row]:
    rows: list[Row] = []
    for number, (text, wrt) in sorted(battery_items(path).items()):
        if number not in TEXTBOOK:
            continue
        f = md.parse(text)
        g = derivative(f, wrt[0], KIND.get(number, "grad"))
        book = TEXTBOOK[number]
        if isinstance(book, str):
            ref = md.parse(book, shapes=md.shapes_of(f))
            rows.append((f"battery {number}", md.to_text(g), tokens(g), tokens(ref),
                         same(g, ref)))
        else:
            rows.append((f"battery {number}", md.to_text(g), tokens(g), book,
                         md.check(f, wrt).ok))
    return rows


def table_rows() -> list[Row]:
    rows: list[Row] = []
    for eq, text, wrt, book in COOKBOOK:
        f = md.parse(text)
        g = derivative(f, wrt, "grad")
        ref = md.parse(book, shapes=md.shapes_of(f))
        rows.append((f"cookbook {eq}", md.to_text(g), tokens(g), tokens(ref), same(g, ref)))
    for source, text, wrt, shapes, book in SPECTRAL:
        f = md.parse(text, shapes=shapes)
        g = derivative(f, wrt, "grad")
        ref = md.parse(book, shapes={**md.shapes_of(f), **(shapes or {})})
        shown, where = with_names([g], "unicode")
        rows.append((f"{source}: {text}", shown[0] + "".join(f"  where {n} = {d}"
                                                              for n, d in where),
                     tokens(g), tokens(ref), same(g, ref)))
    for source, text, wrt, book in ML:
        f = md.parse(text)
        g = derivative(f, wrt, "grad")
        ref = md.parse(book, shapes=md.shapes_of(f))
        rows.append((f"{source}: {text}", md.to_text(g), tokens(g), tokens(ref), same(g, ref)))
    for source, kind, text, wrt, shapes, book in ITEMS:
        label = f"{source}: {'' if kind == 'grad' else kind + ' of '}{text} wrt {wrt}"
        try:
            f = md.parse(text, shapes=shapes)
            g = derivative(f, wrt, kind)
            ref = md.parse(book, shapes={**md.shapes_of(f), **(shapes or {})})
        except md.MatdiffError as err:  # a failure is a row, not the end of the table
            rows.append((label, f"error: {err}", 1, 1, False))
            continue
        rows.append((label, md.to_text(g), tokens(g), tokens(ref), same(g, ref)))
    return rows


def summary(rows: list[Row]) -> str:
    """One line: items, median and max ratio, the share at most 1.0, above 1.5, differing."""
    ratios = sorted(ours / theirs for _, _, ours, theirs, _ in rows)
    n = len(ratios)
    median = (ratios[(n - 1) // 2] + ratios[n // 2]) / 2
    at_most = sum(r <= 1.0 for r in ratios)
    return (f"summary: {n} items, median ratio {median:.2f}, max {ratios[-1]:.2f}, "
            f"{at_most} ({100 * at_most / n:.0f}%) at most 1.0, "
            f"{sum(r > 1.5 for r in ratios)} above 1.5, "
            f"{sum(not r[4] for r in rows)} differing in value")


def _clear_caches() -> None:
    """Forget every simplified, differentiated and searched result (to time a cold run)."""
    S.set_search(S.SEARCH)
    S._RULED.clear()
    search._ALTERNATIVES.clear()


def _timed(run: Callable[[], object]) -> float:
    best = math.inf
    for _ in range(3):
        _clear_caches()
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return best


def timing(path: Path) -> None:
    """The table's time without and with the search, and a 256-term sum's time."""
    def table() -> None:
        battery_rows(path)
        table_rows()

    def long_sum() -> None:
        text = " + ".join(f"||A{i}*X*B{i} - C{i}||_F^2" for i in range(1, 257))
        str(md.grad(md.parse(text), "X"))

    S.set_search(False)
    off = _timed(table)
    S.set_search(True)
    on = _timed(table)
    print(f"table without search {off:.2f} s, with search {on:.2f} s: "
          f"the search adds {100 * (on - off) / off:.0f}%")
    spent = [0.0]  # the time inside the search itself, in one run with it (less noisy)
    improve = S.improve

    def timed_improve(e: Expr, by_rules: Callable[[Expr], Expr]) -> Expr:
        t0 = time.perf_counter()
        out = improve(e, by_rules)
        spent[0] += time.perf_counter() - t0
        return out

    S.improve = timed_improve
    try:
        total = _timed(table)
    finally:
        S.improve = improve
    share = spent[0] / 3  # three runs
    print(f"inside the search: {share:.2f} s of {total:.2f} s, "
          f"{100 * share / (total - share):.0f}% added to the rest")
    print(f"256-term sum, parse to print, with search: {_timed(long_sum):.2f} s")


def main(argv: list[str]) -> int:
    if "--timing" in argv:
        timing(Path(next((a for a in argv[1:] if not a.startswith("--")), BATTERY)))
        return 0
    quiet = "--quiet" in argv
    args = [a for a in argv[1:] if not a.startswith("--")]
    rows = battery_rows(Path(args[0]) if args else BATTERY) + table_rows()
    width, iw = max(len(r[1]) for r in rows), max(len(r[0]) for r in rows)
    print(f"{'item':<{iw}} {'matdiff result':<{width}} {'size':>4} {'book':>4} {'ratio':>5}  value")
    for item, shown, ours, theirs, ok in rows:
        ratio = ours / theirs
        if quiet and ratio <= 1.0 and ok:
            continue
        flag = "" if ratio <= 1.0 else "  > textbook" if ratio <= 1.5 else "  > 1.5x"
        print(f"{item:<{iw}} {shown:<{width}} {ours:>4} {theirs:>4} {ratio:>5.2f}  "
              f"{'same' if ok else 'DIFFERENT'}{flag}")
    print(summary(rows))
    worst = max(r[2] / r[3] for r in rows)
    return 0 if worst <= 1.5 and all(r[4] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
