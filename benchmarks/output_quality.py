"""Output quality: how large matdiff's printed results are next to the textbook forms.

For every item of ``../shared/examples/battery.md`` with an "expect" form, for a table of
Matrix Cookbook identities (Petersen & Pedersen, 2012, equation numbers as ids) and for a
table of spectral results from the literature (matrix functions, eigenvalues, matrix norms,
factorizations; printed in Unicode over their named factorizations) and for a table of
ML gradients (cross-entropy, logistic regression, softmax, a two-layer network), prints the
size of matdiff's result divided by the size of the textbook form. The size is the number
of symbol occurrences in the printed tree: variables, numbers, identities and ones each
count once per occurrence; operators, transposes, signs and function names count nothing.
Every result is also checked against the textbook form numerically. Goal: every ratio at
most 1.0, none above 1.5.

Run: ``python benchmarks/output_quality.py [path/to/battery.md]``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import matdiff as md
from matdiff.check import evaluate, random_inputs, rel_error
from matdiff.expr import Expr, Op, const
from matdiff.names import with_names

BATTERY = Path(__file__).resolve().parents[2] / "shared" / "examples" / "battery.md"

# The battery's "expect" forms, written in matdiff's ASCII input language (same meaning).
TEXTBOOK: dict[int, str | int] = {
    1: "A'*B'", 2: "(A + A')*x", 3: "2*A'*(A*x - b)", 4: "-2*(X - A*B)*B'", 5: "inv(X)'",
    6: "det(X)*inv(X)'", 7: "-inv(X)'*A'*inv(X)'", 12: "(A + A')*X", 13: "a*b'",
    15: 5,  # Σ_k (e_kᵀ ⊗ I_m) Y (e_k ⊗ I_n): e_k, I_m, Y, e_k, I_n
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

_LEAVES = (Op.SYMBOL, Op.CONST, Op.IDENTITY, Op.ONES, Op.ZERO, Op.COMMUTATION)


def size(e: Expr) -> int:
    """Symbol occurrences in the printed tree of ``e``.

    >>> size(md.parse("2*A'*(A*x - b)"))
    5
    """
    stack, count = [e], 0
    while stack:
        node = stack.pop()
        if node.op in _LEAVES:
            count += 1
        if node.op is Op.SCALE and node.args[0] is const(-1):  # a sign is no symbol
            stack.append(node.args[1])
        else:
            stack.extend(node.args)
    return count


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
    return rel_error(evaluate(a, env, sizes), evaluate(b, env, sizes)) < 1e-8


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else BATTERY
    rows: list[tuple[str, str, int, int, bool]] = []
    for number, (text, wrt) in sorted(battery_items(path).items()):
        if number not in TEXTBOOK:
            continue
        f = md.parse(text)
        g = derivative(f, wrt[0], KIND.get(number, "grad"))
        book = TEXTBOOK[number]
        if isinstance(book, str):
            ref = md.parse(book, shapes=md.shapes_of(f))
            rows.append((f"battery {number}", md.to_text(g), size(g), size(ref), same(g, ref)))
        else:
            rows.append((f"battery {number}", md.to_text(g), size(g), book, md.check(f, wrt).ok))
    for eq, text, wrt, book in COOKBOOK:
        f = md.parse(text)
        g = derivative(f, wrt, "grad")
        ref = md.parse(book, shapes=md.shapes_of(f))
        rows.append((f"cookbook {eq}", md.to_text(g), size(g), size(ref), same(g, ref)))
    for source, text, wrt, shapes, book in SPECTRAL:
        f = md.parse(text, shapes=shapes)
        g = derivative(f, wrt, "grad")
        ref = md.parse(book, shapes={**md.shapes_of(f), **(shapes or {})})
        shown, where = with_names([g], "unicode")
        rows.append((f"{source}: {text}", shown[0] + "".join(f"  where {n} = {d}"
                                                              for n, d in where),
                     size(g), size(ref), same(g, ref)))
    for source, text, wrt, book in ML:
        f = md.parse(text)
        g = derivative(f, wrt, "grad")
        ref = md.parse(book, shapes=md.shapes_of(f))
        rows.append((f"{source}: {text}", md.to_unicode(g), size(g), size(ref), same(g, ref)))
    width, iw = max(len(r[1]) for r in rows), max(len(r[0]) for r in rows)
    print(f"{'item':<{iw}} {'matdiff result':<{width}} {'size':>4} {'book':>4} {'ratio':>5}  value")
    ratios = []
    for item, shown, ours, theirs, ok in rows:
        ratio = ours / theirs
        ratios.append(ratio)
        flag = "" if ratio <= 1.0 else "  > textbook" if ratio <= 1.5 else "  > 1.5x"
        print(f"{item:<{iw}} {shown:<{width}} {ours:>4} {theirs:>4} {ratio:>5.2f}  "
              f"{'same' if ok else 'DIFFERENT'}{flag}")
    worst = max(ratios)
    print(f"summary: {len(ratios)} items, mean ratio {sum(ratios) / len(ratios):.2f}, "
          f"max {worst:.2f}, {sum(r <= 1.0 for r in ratios)} at most 1.0, "
          f"{sum(r > 1.5 for r in ratios)} above 1.5, "
          f"{sum(not r[4] for r in rows)} differing in value")
    return 0 if worst <= 1.5 and all(r[4] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
