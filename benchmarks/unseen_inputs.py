"""Inputs nobody here had used: 103 expressions as ML, statistics and LaTeX users type them
(regression, classification, factorisations, Gaussians, spectral functions, pasted LaTeX),
written in session 9 before the reading changes they led to, to measure how many matdiff
reads and answers, and how. For each: parse, gradient, and ``md.check`` against finite
differences; a row per expression (``ok``, ``CHECK-FAIL``, ``ERR`` with the error, or
``CRASH``), with the shapes it read, then a summary line.

Run: ``python benchmarks/unseen_inputs.py`` (about a minute); ``--quiet`` prints the rows
that are not ``ok`` and the summary.
"""

from __future__ import annotations

import sys
import time

import matdiff as md

CASES: list[tuple[str, str, dict | None]] = [
 # (text, wrt, shapes)
 ("||X*W - Y||_F^2 + lambda*||W||_F^2", "W", None),
 ("sum(log(1 + exp(-y .* (X*w))))", "w", None),
 ("-sum(y .* log(sigmoid(X*w)) + (1 - y) .* log(1 - sigmoid(X*w)))", "w", None),
 ("trace(W' * L * W)", "W", None),
 ("log(det(X' * X + lambda * I))", "X", None),
 ("0.5 * x' * inv(K + sigma^2 * I) * x + 0.5 * logdet(K + sigma^2 * I)", "K",
  {"K": ("n", "n", "symmetric")}),
 ("||A - U*V'||_F^2", "U", None),
 ("sum(sum((A - U*V').^2))", "V", None),
 ("norm(A*x - b, 2)^2", "x", None),
 ("norm(A*x - b)", "x", None),
 ("sum(exp(X*w)) - y'*X*w", "w", None),
 ("trace(inv(X) * A)", "X", None),
 ("trace(X * A * X' * B)", "X", None),
 ("x' * A * x / (x' * x)", "x", None),
 ("log(sum(exp(W*x)))", "W", None),
 ("logsumexp(W*x) - y'*W*x", "W", None),
 ("sum(relu(W2*relu(W1*x)))", "W1", None),
 ("||tanh(W*x) - y||^2", "W", None),
 ("det(A + B*X*C)", "X", None),
 ("trace(expm(A*t))", "A", None),
 ("lambda_max(X + X')", "X", None),
 ("||X||_*", "X", None),
 ("||X||_2", "X", None),
 ("kron(A, B) * vec(X)", "X", None),
 ("vec(X)' * kron(A, B) * vec(X)", "X", None),
 ("diag(X' * Y)' * ones", "X", None),
 ("sum(diag(A*X*B))", "X", None),
 ("tr(X^3)", "X", None),
 ("tr(X^(-1))", "X", None),
 ("||X .* M - Y||_F^2", "X", None),
 ("sum(sqrt(x.^2 + eps))", "x", None),
 ("a' * X * b", "X", None),
 ("exp(-0.5 * (x - mu)' * inv(S) * (x - mu))", "mu", None),
 ("(x - mu)' * inv(S) * (x - mu)", "S", None),
 ("trace((X*X' + I)^(-1))", "X", None),
 ("softmax(W*x)' * y", "W", None),
 ("y' * log(softmax(W*x))", "W", None),
 ("sum(abs(X))", "X", None),
 ("max(x)", "x", None),
 ("mean(X*w)", "w", None),
 ("||[A, B; C, X]||_F^2", "X", None),
 ("trace([X, A; A', X]^2)", "X", None),
 # latex
 (r"\| Y - X\beta \|_2^2 + \lambda \|\beta\|_1", r"\beta", None),
 (r"\operatorname{tr}(X^\top A X)", "X", None),
 (r"\log\det(\Sigma) + \mathrm{tr}(\Sigma^{-1} S)", r"\Sigma",
  {r"\Sigma": ("n", "n", "spd"), "S": ("n", "n", "symmetric")}),
 (r"\frac{1}{2}\|Ax - b\|_2^2", "x", None),
 (r"\sum_i \log(1 + e^{-y_i x_i^T w})", "w", None),
 (r"\mathbf{x}^T \mathbf{A} \mathbf{x}", r"\mathbf{x}", None),
 (r"\|W^\top W - I\|_F^2", "W", None),
 (r"\text{tr}\left(A X B X^T\right)", "X", None),
 (r"e^{-\|x - y\|^2 / (2\sigma^2)}", "x", None),
 (r"\langle A, X \rangle", "X", None),
 (r"\|X\|_F", "X", None),
 (r"\ln |X|", "X", None),
 (r"x^\top (A + A^\top) x", "x", None),
 (r"\sigma(w^\top x)", "w", None),
 (r"\operatorname{diag}(X)^T \operatorname{diag}(X)", "X", None),
 (r"\left\| Z - I \odot (H_R^T A + H_I^T B) \right\|_F^2", "H_R", None),

 ("||A*X*B - C||_F^2", "X", None),
 ("trace(X'*X) - 2*trace(X'*A) ", "X", None),
 ("log(det(X)) - trace(S*X)", "X", {"X": ("n","n","spd"), "S": ("n","n","symmetric")}),
 ("trace(A*inv(X)*B)", "X", None),
 ("sum(log(sigmoid(y .* (X*w))))", "w", None),
 ("0.5*||W*H - V||_F^2", "H", None),
 ("sum(V .* log(W*H) - W*H)", "W", None),
 ("||X - X*C||_F^2 + lambda*||C||_1", "C", None),
 ("x'*inv(A + B*B')*x", "B", None),
 ("log(1 + x'*x)", "x", None),
 ("sqrt(x'*A*x)", "x", None),
 ("(a'*x)^2/(b'*x)", "x", None),
 ("||x||_2^4", "x", None),
 ("trace(X^T*X)", "X", None),
 ("norm(X, 'fro')^2", "X", None),
 ("norm(X,'fro')", "X", None),
 ("sum(sum(X.^2))", "X", None),
 ("X(:)'*X(:)", "X", None),
 ("w'*w/2 + C*sum(max(0, 1 - y.*(X*w)))", "w", None),
 ("sum(exp(-x.^2))", "x", None),
 ("trace(inv(Sigma))", "Sigma", None),
 ("1/2*x'*Q*x + c'*x", "x", None),
 ("x.'*A*x", "x", None),
 ("trace(X*X')^2", "X", None),
 ("det(X)^(1/n)", "X", None),
 ("logdet(X)", "X", None),
 ("log(abs(det(X)))", "X", None),
 ("tr(X*Y*X')", "X", None),
 ("||y - A*x||_2 + mu*||x||_1", "x", None),
 ("trace(kron(A, X))", "X", None),
 ("sum(softplus(X*w))", "w", None),
 ("y'*X*w - sum(log(1 + exp(X*w)))", "w", None),
 (r"\frac{1}{n}\sum(\log(1 + \exp(-y \odot Xw)))", "w", None),
 (r"\mathrm{Tr}(W^T X^T X W)", "W", None),
 (r"\|\mathbf{A}\mathbf{x} - \mathbf{b}\|^2", r"\mathbf{x}", None),
 (r"\log|\Sigma|", r"\Sigma", None),
 (r"\operatorname{Tr}\left[(X^\top X)^{-1}\right]", "X", None),
 (r"\|X\|_F^2 + \|Y\|_F^2", "X", None),
 (r"\exp(\theta^\top x)", r"\theta", None),
 (r"\frac{x^\top A x}{x^\top x}", "x", None),
 (r"\mathbf{w}^\top \mathbf{\Sigma} \mathbf{w}", r"\mathbf{w}", None),
 (r"\text{trace}(A^{-1} X)", "X", None),
 (r"\operatorname{vec}(X)^T (B \otimes A) \operatorname{vec}(X)", "X", None),
 (r"\|\Theta\|_*", r"\Theta", None),
 (r"\lambda_{\max}(A)", "A", None),
]


def main() -> None:
    quiet = "--quiet" in sys.argv
    counts: dict[str, int] = {}
    for text, wrt, shapes in CASES:
        start, shown = time.perf_counter(), ""
        try:
            f = md.api.parse_with_notes(text, shapes, scalar=True).expr   # as grad reads it
            gradient = md.grad(text, wrt, shapes=shapes)
            status = "ok" if md.check(text, wrt, shapes=shapes).ok else "CHECK-FAIL"
            shown = f"{md.shapes_of(f)}  {gradient}"
        except md.MatdiffError as err:
            status, shown = "ERR", str(err).splitlines()[0]
        except Exception as err:  # noqa: BLE001 - a crash is what this counts
            status, shown = "CRASH", repr(err)
        counts[status] = counts.get(status, 0) + 1
        if not quiet or status != "ok":
            print(f"{status:10s} {time.perf_counter() - start:5.1f}s  {text}  d/d{wrt}: "
                  f"{shown[:160]}")
    print("summary: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) +
          f" of {len(CASES)}")


if __name__ == "__main__":
    main()
