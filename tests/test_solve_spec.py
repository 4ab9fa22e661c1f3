"""Problem specifications (spec.lark): the grammar, its errors with carets, data files,
random data, and ``matdiff solve`` as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import matdiff as md
from matdiff.solve import load_data, solve_spec
from matdiff.spec import parse_spec

SRC = str(Path(__file__).resolve().parents[1] / "src")

LOGISTIC = """parameters
   Matrix X
   Scalar c
   Vector y
variables
   Vector w
min
   0.5 * w' * w
   + c * sum(log(exp((-y) .* (X * w))
   + vector(1)))
"""

SVM = """# the dual of a support vector machine
Parameters
  matrix K symmetric
  vector y
Variables
  vector a
min
  0.5 * (a.*y)' * K * (a.*y) - sum(a)
subject to
  a >= 0
  a <= 1      # the box
  y' * a == 0
"""

NNLS = """parameters
  Matrix A
  Vector b
variables
  Vector x
min norm2(A*x - b).^2
st
  x > 0
"""


def test_geno_examples_parse() -> None:
    s = parse_spec(LOGISTIC)
    assert [d.name for d in s.parameters] == ["X", "c", "y"]
    assert [d.kind for d in s.parameters] == ["matrix", "scalar", "vector"]
    assert s.objective is not None and s.objective.text.endswith("+ vector(1)))")
    assert s.objective.text == LOGISTIC[s.objective.start:s.objective.start
                                        + len(s.objective.text)]
    svm = parse_spec(SVM)
    assert svm.parameters[0].symmetric and svm.sense == "min"
    assert [c.text for c in svm.constraints] == ["a >= 0", "a <= 1", "y' * a == 0"]
    nnls = parse_spec(NNLS)
    assert nnls.constraints[0].op == ">="          # x > 0 is read as x >= 0
    assert nnls.objective is not None and nnls.objective.text == "norm2(A*x - b).^2"


def test_declarations_with_sizes_and_max() -> None:
    s = parse_spec("variables\n  Matrix U(m, 3)\n  Vector v(4)\nmaximize\n  -||U||_F^2\n")
    assert s.variables[0].dims == ("m", "3") and s.variables[1].dims == ("4",)
    assert s.sense == "max"


@pytest.mark.parametrize("text, words, line, col", [
    ("parameters\n  Matrix\nvariables\n  Vector x\nmin\n  sum(x)", "expected a name", 1, 8),
    ("variables\n  Vector x\nmin\n  x >= 1", "belongs in a constraint", 3, 4),
    ("variables\n  Vector x\nmin\n  sum(x)\nst\n  0 <= x <= 1", "one comparison", 5, 9),
    ("variables\n  Vector x\nmin\n  sum(x)\nmin\n  sum(x)", "a second 'min' block", 4, 0),
    ("variables\n  Vector x\n", "no objective", 1, 10),
    ("min\n  sum(x)", "no variables", 0, 0),
    ("variables\n  Vector x\nmin\n  sum(x)\nst\n  sum(x)\n", "expected a comparison", 5, 8),
    ("variables\n  Vector x symmetric\nmin\n  sum(x)", "only a matrix", 1, 2),
    ("variables\n  Matrix X(3)\nmin\n  sum(X)", "two dimensions", 1, 9),
    ("variables\n  Vector x\n  Vector x\nmin\n  sum(x)", "declared twice", 2, 9),
    ("variables\n  Tensor x\nmin\n  sum(x)", "expected", 1, 2),
])
def test_grammar_errors_have_a_caret(text: str, words: str, line: int, col: int) -> None:
    with pytest.raises(md.MatdiffError) as err:
        parse_spec(text)
    e = err.value
    assert words in e.message
    assert e.pos is not None and e.text == text
    before = text[:e.pos]
    assert (before.count("\n"), e.pos - (before.rfind("\n") + 1)) == (line, col)
    rendered = e.render().splitlines()
    assert rendered[-1].strip().startswith("^")
    assert rendered[-1].index("^") - 2 == col       # two spaces of indent in render()


def test_an_error_inside_an_expression_points_into_the_file() -> None:
    text = "parameters\n  Matrix A\nvariables\n  Vector x\nmin\n  ||A x||^2\n"
    with pytest.raises(md.MatdiffError) as err:
        solve_spec(text, {"A": np.eye(2)})
    assert err.value.pos == text.index("x||")
    assert "juxtaposition" in err.value.message


def test_an_error_in_a_constraint_points_into_the_file() -> None:
    text = "variables\n  Vector x(3)\nmin\n  ||x||^2\nst\n  x == ones(2, 2)\n"
    with pytest.raises(md.MatdiffError) as err:
        solve_spec(text)
    assert err.value.pos == text.index("==")
    assert "different shapes" in err.value.message


def test_solve_with_data() -> None:
    rng = np.random.default_rng(1)
    A, b = rng.standard_normal((8, 3)), rng.standard_normal(8)
    spec, res = solve_spec(NNLS, {"A": A, "b": b})
    from scipy.optimize import nnls
    x, r = nnls(A, b)
    assert res.success and abs(res.fun - r**2) <= 1e-9 * max(1.0, r**2)
    assert np.allclose(res.x["x"], x, atol=1e-6)


def test_solve_max_reports_the_maximum() -> None:
    text = "parameters\n  Vector b\nvariables\n  Vector x\nmax\n  -||x - b||^2 + 3\nst\n" \
           "  x <= 0\n"
    _, res = solve_spec(text, {"b": [1.0, -2.0]})
    assert res.success
    assert np.allclose(res.x["x"], [0.0, -2.0], atol=1e-7)
    assert abs(res.fun - 2.0) <= 1e-9                    # -(1)^2 + 3
    assert res.history["fun"][-1] == pytest.approx(2.0)


def test_solve_with_random_data_of_the_declared_shapes() -> None:
    spec, res = solve_spec(SVM, random=True)
    assert res.success, res.message
    a = res.x["a"]
    assert a.ndim == 1 and a.min() >= -1e-9 and a.max() <= 1 + 1e-9
    spec, res = solve_spec(LOGISTIC, random=True, sizes={})
    assert res.success and res.x["w"].ndim == 1


def test_random_data_honour_declared_sizes() -> None:
    text = "parameters\n  Matrix M(m, n)\nvariables\n  Matrix U(m, k)\n  Matrix V(n, k)\n" \
           "min\n  ||M - U*V'||_F^2\n"
    _, res = solve_spec(text, random=True, sizes={"m": 6, "n": 4, "k": 2})
    assert res.success
    assert res.x["U"].shape == (6, 2) and res.x["V"].shape == (4, 2)


def test_missing_data_names_the_parameter() -> None:
    with pytest.raises(md.MatdiffError) as err:
        solve_spec(NNLS, {"A": np.eye(3)})
    assert "no data for the parameter b" in err.value.message
    assert err.value.pos == NNLS.index("b\n")


def test_data_of_the_wrong_kind() -> None:
    with pytest.raises(md.MatdiffError) as err:
        solve_spec(NNLS, {"A": np.eye(3), "b": np.eye(3)})
    assert "declared a vector" in err.value.message


def test_load_data_reads_npy_npz_csv(tmp_path: Path) -> None:
    A = np.arange(6.0).reshape(2, 3)
    np.save(tmp_path / "A.npy", A)
    np.savez(tmp_path / "all.npz", b=np.ones(2), c=np.zeros(3))
    np.savetxt(tmp_path / "d.csv", A, delimiter=",")
    data = load_data([f"A={tmp_path / 'A.npy'}", str(tmp_path / "all.npz"),
                      f"D={tmp_path / 'd.csv'}"])
    assert sorted(data) == ["A", "D", "b", "c"]
    assert np.array_equal(data["A"], A) and np.array_equal(data["D"], A)
    with pytest.raises(md.MatdiffError, match="cannot read"):
        load_data([f"A={tmp_path / 'missing.npy'}"])
    with pytest.raises(md.MatdiffError, match="are .npy, .npz or .csv"):
        load_data([f"A={tmp_path / 'A.mat'}"])


# ----------------------------------------------------------------------------- the command


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "matdiff", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_solve_with_data_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    A, b = rng.standard_normal((6, 3)), rng.standard_normal(6)
    np.save(tmp_path / "A.npy", A)
    np.savetxt(tmp_path / "b.csv", b, delimiter=",")
    (tmp_path / "nnls.txt").write_text(NNLS)
    out = run_cli("solve", "nnls.txt", "--data", "A=A.npy", "--data", "b=b.csv", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("solved: converged")
    assert "iter" in out.stderr and "final" in out.stderr        # progress, on by default
    saved = np.load(tmp_path / "nnls_solution.npz")
    from scipy.optimize import nnls
    assert np.allclose(saved["x"], nnls(A, b)[0], atol=1e-6)


def test_cli_solve_random_quiet(tmp_path: Path) -> None:
    (tmp_path / "svm.geno").write_text(SVM)
    out = run_cli("solve", "svm.geno", "--random", "--quiet", "--out", "sol.npz", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    assert "a (5) =" in out.stdout and "wrote sol.npz" in out.stdout
    assert np.load(tmp_path / "sol.npz")["a"].shape == (5,)


def test_cli_solve_infeasible_exits_1(tmp_path: Path) -> None:
    (tmp_path / "bad.txt").write_text("variables\n  Vector x(3)\nmin\n  ||x||^2\nst\n"
                                      "  sum(x) == 1\n  x <= -1\n")
    out = run_cli("solve", "bad.txt", "--quiet", cwd=tmp_path)
    assert out.returncode == 1
    assert out.stdout.startswith("NOT SOLVED: infeasible")


def test_cli_solve_error_prints_a_caret(tmp_path: Path) -> None:
    (tmp_path / "err.txt").write_text("variables\n  Vector x(3)\nmin\n  ||x||^2 +\n")
    out = run_cli("solve", "err.txt", cwd=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.splitlines()
    assert lines[0].startswith("error: ")
    assert lines[-1].strip() == "^" and "Traceback" not in out.stderr
    missing = run_cli("solve", "nope.txt", cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.startswith("error: cannot read nope.txt")
