"""No silent misreads (issue 14): notations that were once read as something else, each
with its intended reading (the same node as an unambiguous spelling) or a clear error.

A default shape never makes an expression broadcast a name: ``mu`` in ``x - mu`` takes
``x``'s shape; literals and declared scalars still broadcast.
"""

from __future__ import annotations

from typing import Any

import pytest

import matdiff as md
from matdiff.cli import main

Shapes = dict[str, tuple[Any, ...]]

# (typed, shapes for both, the intended reading spelled without ambiguity, shapes for it)
READINGS: list[tuple[str, Shapes | None, str, Shapes]] = [
    # LaTeX \sigma applied: the logistic function, not sigma times
    (r"\sigma(w^T x)", None, "sigmoid(w'*x)", {"w": ("m",), "x": ("m",)}),
    (r"\sigma\left(Xw\right)", None, "sigmoid(X*w)", {"X": ("m", "n"), "w": ("n",)}),
    (r"-y^T\log\sigma(Xw)", None, "-y'*log(sigmoid(X*w))",
     {"y": ("m",), "X": ("m", "n"), "w": ("n",)}),
    (r"\sigma^2 x", None, "sigma^2*x", {"sigma": (), "x": ("m",)}),     # not applied: a symbol
    # a declared sigma is a variable: \sigma(z) is then a product
    (r"\sigma(w^T x)", {"sigma": ()}, "sigma*w'*x", {"sigma": (), "w": ("m",), "x": ("m",)}),
    # a name that is a scalar only by default takes the shape it meets, never broadcast
    ("x - mu", None, "x - mu", {"x": ("m",), "mu": ("m",)}),
    (r"(x-\mu)^T\Sigma^{-1}(x-\mu)", None, "(x - mu)'*inv(Sigma)*(x - mu)",
     {"x": ("m",), "mu": ("m",), "Sigma": ("m", "m")}),
    ("x - 2*mu", None, "x - 2*mu", {"x": ("m",), "mu": ("m",)}),
    ("mu*2 - x", None, "2*mu - x", {"x": ("m",), "mu": ("m",)}),
    ("x - exp(mu)", None, "x - exp(mu)", {"x": ("m",), "mu": ("m",)}),
    ("x .* alpha", None, "x .* alpha", {"x": ("m",), "alpha": ("m",)}),
    ("A - lam", None, "A - lam", {"A": ("m", "n"), "lam": ("m", "n")}),
    ("x - mu*lam", None, "x - lam*mu", {"x": ("m",), "mu": ("m",), "lam": ()}),
    # ... while literals, declared scalars and scalars the expression forces broadcast
    ("x - mu", {"mu": ()}, "x - mu*ones(m)", {"x": ("m",), "mu": ()}),
    ("1 - x", None, "ones(m) - x", {"x": ("m",)}),
    ("x - sum(mu)", None, "x - sum(mu)*ones(m)", {"x": ("m",), "mu": ()}),
    ("x - mu + y/mu", None, "x - mu*ones(m) + y/mu", {"x": ("m",), "y": ("m",), "mu": ()}),
    ("A - lam*eye(n)", None, "A - lam*eye(n)", {"A": ("n", "n"), "lam": ()}),
    # a name that is a scalar only by default, written after a matrix, is a vector: X beta
    (r"\| y - X\beta \|_2^2 + \lambda \|\beta\|_1", None, "||y - X*beta||^2 + lambda*||beta||_1",
     {"y": ("m",), "X": ("m", "n"), "beta": ("n",), "lambda": ()}),
    ("sum(log(1 + exp(-y .* (X*theta))))", None, "sum(log(1 + exp(-y .* (X*theta))))",
     {"y": ("m",), "X": ("m", "n"), "theta": ("n",)}),
    ("x'*A*theta", None, "x'*A*theta", {"x": ("m",), "A": ("m", "n"), "theta": ("n",)}),
    ("A*(beta - beta0)", None, "A*(beta - beta0)",
     {"A": ("m", "n"), "beta": ("n",), "beta0": ("n",)}),
    ("exp(Phi*alpha)", None, "exp(Phi*alpha)", {"Phi": ("m", "n"), "alpha": ("n",)}),
    # ... but not written first, after a vector or a scalar, nor when declared a scalar
    ("lambda*X", None, "lambda*X", {"lambda": (), "X": ("m", "n")}),
    ("x*alpha", None, "alpha*x", {"x": ("m",), "alpha": ()}),
    ("u'*v*alpha", None, "u'*v*alpha", {"u": ("m",), "v": ("m",), "alpha": ()}),
    ("alpha*beta*X", None, "alpha*beta*X", {"alpha": (), "beta": (), "X": ("m", "n")}),
    ("X*lambda", {"lambda": ()}, "lambda*X", {"lambda": (), "X": ("m", "n")}),
    # nobody transposes a number: a name written transposed is a vector by default
    (r"\exp(\theta^\top x)", None, "exp(theta'*x)", {"theta": ("m",), "x": ("m",)}),
    (r"\mu^T \Sigma^{-1} \mu", None, "mu'*inv(Sigma)*mu", {"mu": ("m",), "Sigma": ("m", "m")}),
    ("alpha'*K*alpha", None, "alpha'*K*alpha", {"alpha": ("m",), "K": ("m", "m")}),
    # a function written without its backslash in LaTeX is the function, not its letters
    ("trace(X^T X)", None, "tr(X'*X)", {"X": ("m", "n")}),
    ("log(x^T x) + sigmoid(w^T x)", None, "log(x'*x) + sigmoid(w'*x)",
     {"x": ("m",), "w": ("m",)}),
    (r"\frac{1}{2} logdet\left(X^T X\right)", None, "0.5*logdet(X'*X)", {"X": ("m", "n")}),
    ("softmax(W x)^T y", None, "softmax(W*x)'*y", {"W": ("m", "n"), "x": ("n",), "y": ("m",)}),
    # \sum without limits is the sum of the entries
    (r"\frac{1}{n}\sum(\log(1 + \exp(-y \odot Xw)))", None, "sum(log(1 + exp(-y .* (X*w))))/n",
     {"n": (), "y": ("m",), "X": ("m", "p"), "w": ("p",)}),
    (r"\sum \log(x) + \sum y", None, "sum(log(x)) + sum(y)", {"x": ("m",), "y": ("n",)}),
    # diag of a vector builds the diagonal matrix (MATLAB, NumPy); of a matrix, the diagonal
    ("diag(v)", None, "Diag(v)", {"v": ("m",)}),
    ("diag(A*x)", None, "Diag(A*x)", {"A": ("m", "n"), "x": ("n",)}),
    ("diag(X)", None, "diag(X)", {"X": ("m", "m")}),
    ("diag(x)", {"x": ("n",)}, "Diag(x)", {"x": ("n",)}),
    (r"\operatorname{diag}(v)", None, "Diag(v)", {"v": ("m",)}),
    ("tr(diag(x)*A)", None, "tr(Diag(x)*A)", {"x": ("m",), "A": ("m", "m")}),
    # \sqrt[n]{x} is x^(1/n), entry by entry
    (r"\sqrt[3]{x}", None, "x.^(1/3)", {"x": ("m",)}),
    (r"\sqrt[n]{X}", {"n": ()}, "X.^(1/n)", {"X": ("m", "p"), "n": ()}),
    (r"\sqrt{x}", None, "sqrt(x)", {"x": ("m",)}),
    # 2.^x: a scalar base keeps the exponent's shape
    ("2.^x", None, "exp(log(2)*x)", {"x": ("m",)}),
    ("2.^X", None, "exp(log(2)*X)", {"X": ("m", "n")}),
    ("x.^2", None, "x.^2", {"x": ("m",)}),
    ("2./x", None, "2*(ones(m) ./ x)", {"x": ("m",)}),
    ("2.*x", None, "2*x", {"x": ("m",)}),
    ("X.^Y", {"X": ("m", "n"), "Y": ("m", "n")}, "exp(Y .* log(X))",
     {"X": ("m", "n"), "Y": ("m", "n")}),
]


@pytest.mark.parametrize(("typed", "shapes", "intended", "intended_shapes"), READINGS,
                         ids=[r[0] for r in READINGS])
def test_each_notation_has_its_intended_reading(typed: str, shapes: Shapes | None,
                                                intended: str, intended_shapes: Shapes) -> None:
    assert md.parse(typed, shapes=shapes) is md.parse(intended, shapes=intended_shapes)


# (typed, shapes, words of the error)
ERRORS: list[tuple[str, Shapes | None, str]] = [
    ("diag(X)", {"X": ("m", "n")}, "diag needs a square matrix"),
    ("norm(x)^2 + x^T x", None, "norm\\(...\\) is ASCII"),
    (r"\sum_i x_i", None, "sums with limits are not supported"),
    ("max(x)", None, "the largest entry of x, max\\(x\\) in MATLAB and NumPy, is not supported"),
    (r"\min(x)", None, "min\\(x, y\\) is the elementwise minimum"),
]


@pytest.mark.parametrize(("typed", "shapes", "words"), ERRORS, ids=[r[0] for r in ERRORS])
def test_each_notation_without_a_reading_is_a_clear_error(typed: str, shapes: Shapes | None,
                                                          words: str) -> None:
    with pytest.raises(md.MatdiffError, match=words) as info:
        md.parse(typed, shapes=shapes)
    assert info.value.pos is not None and 0 <= info.value.pos < len(typed)


@pytest.mark.parametrize(("typed", "wrt"), [
    (r"\| y - X\beta \|_2^2 + \lambda \|\beta\|_1", r"\beta"),
    ("x'*A*theta", "theta"),
    (r"-y^T\log\sigma(Xw) - (\mathbf{1}-y)^T\log(\mathbf{1}-\sigma(Xw))", "w"),
    (r"\frac{1}{2}(x-\mu)^T\Sigma^{-1}(x-\mu)", "mu"),
    ("sum(2.^x)", "x"),
    (r"\mathbf{1}^T\sqrt[3]{x}", "x"),
    ("tr(diag(v)*A)", "v"),
])
def test_the_intended_readings_differentiate_correctly(typed: str, wrt: str) -> None:
    """The gradient and the Hessian (as HVP) of each reading, against finite differences."""
    assert md.check(typed, wrt).ok
    assert all(v["verdict"] != "mismatch" for v in
               md.report(typed, [wrt], what="hvp")["check"].values())


@pytest.mark.parametrize("argv", [
    ["grad", "-x'*x", "--no-check"],
    ["grad", "--no-check", "--", "-x'*x"],
    ["grad", "--wrt", "x", "--no-check", "-2*x'*x"],
])
def test_an_expression_starting_with_a_minus_works_on_the_cli(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 0
    assert "∂f/∂x = " in capsys.readouterr().out


def test_a_vector_read_after_a_matrix_is_noted() -> None:
    notes = md.api.parse_with_notes("||y - X*beta||^2").notes
    assert any(n.startswith("beta is read as a vector: a name written after a matrix") and
               "declare beta as a scalar" in n for n in notes), notes


@pytest.mark.parametrize(("typed", "wrt", "gradient", "scalars"), [
    ("w'*w/2 + C*sum(max(0, 1 - y.*(X*w)))", "w",
     "w - 0.5*C*X'*((sign(1 - X*w .* y) + 1) .* y)", "C a scalar"),
    ("lam*x'*x + D*sum(x)", "x", "D + 2*lam*x", "D a scalar"),
])
def test_a_gradient_reads_its_function_as_a_scalar(typed: str, wrt: str, gradient: str,
                                                   scalars: str) -> None:
    """Alone, C in ``C*sum(...)`` is a matrix (the sum broadcasts over it); the function of a
    gradient is a scalar, so there C is read as a number, and a note says so."""
    assert not md.parse(typed).is_scalar
    assert str(md.grad(typed, wrt)) == gradient
    assert md.check(typed, wrt).ok
    notes = md.report(typed, [wrt], verify=False)["notes"]
    assert any(n.startswith(f"read as a scalar function (a gradient needs one): {scalars}")
               for n in notes), notes


@pytest.mark.parametrize("typed", ["A*x", "x*y'", "exp(lam*x)"])
def test_no_scalar_reading_turns_a_matrix_into_a_row(typed: str) -> None:
    """A scalar reading is taken only where what changes becomes a number and had no
    default shape: A is not read as a row, x stays a vector; the gradient then says it
    needs a scalar."""
    with pytest.raises(md.MatdiffError, match="the gradient needs a scalar function"):
        md.grad(typed, "x" if "x" in typed else "X")
