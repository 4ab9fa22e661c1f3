"""The command line's conventions: ``--version``, the expression from standard input (``-``)
or a file (``--file F``), an expression that starts with ``-``, exit status 2 for bad input,
and ``--format json`` valid against its JSON Schema (``docs/cli-json.schema.json``)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

import matdiff
from matdiff.cli import main
from matdiff.testing import SEED

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "docs" / "cli-json.schema.json").read_text(encoding="utf-8"))


def run(argv, capsys, stdin=None, monkeypatch=None):
    """``main(argv)``: (exit status, stdout, stderr); argparse's exits give their status."""
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    try:
        rc = main(argv)
    except SystemExit as stop:
        rc = stop.code
    out, err = capsys.readouterr()
    return rc, out, err


def test_version(capsys):
    rc, out, _ = run(["--version"], capsys)
    assert rc == 0 and out.strip() == f"matdiff {matdiff.__version__}"


def test_version_of_the_installed_command():
    """The console entry point (``python -m matdiff``) answers the same, and exits 0."""
    done = subprocess.run([sys.executable, "-m", "matdiff", "--version"], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0 and done.stdout.strip() == f"matdiff {matdiff.__version__}"


def test_expression_from_stdin(capsys, monkeypatch):
    rc, out, _ = run(["grad", "-", "--wrt", "x", "--format", "text"], capsys,
                     stdin="||A*x - b||^2\n", monkeypatch=monkeypatch)
    assert rc == 0 and "df/dx = 2*A'*(A*x - b)" in out


def test_expression_from_stdin_through_a_pipe():
    done = subprocess.run([sys.executable, "-m", "matdiff", "grad", "-", "--wrt", "R",
                           "--format", "text"], input=SEED, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "df/dR = 2*(A*(I .* (Q'*B + R'*A - Z)) - (W[0:n, 0:p] - [R, -Q]*P*S')*S*P[0:m, 0:q]' " \
        "- (W[n:2*n, 0:p] - [Q, R]*P*S')*S*P[m:2*m, 0:q]')" in done.stdout and "OK" in done.stdout


def test_expression_from_a_file_over_lines(tmp_path, capsys):
    path = tmp_path / "f.txt"
    path.write_text("||A*X*B - C||_F^2\n  + lam*||X||_F^2\n", encoding="utf-8")
    rc, out, _ = run(["grad", "--file", str(path), "--wrt", "X", "--format", "text"], capsys)
    assert rc == 0 and "df/dX = 2*(A'*(A*X*B - C)*B' + lam*X)" in out


def test_a_long_expression_from_a_file(tmp_path, capsys):
    """Beyond what one command-line argument can comfortably hold: 4,000 terms (~55 kB)."""
    terms = " + ".join(f"tr(A{i}*X)" for i in range(4000))
    path = tmp_path / "long.txt"
    path.write_text(terms, encoding="utf-8")
    assert len(terms) > 50_000
    rc, out, err = run(["grad", "--file", str(path), "--wrt", "X", "--no-check",
                        "--format", "json"], capsys)
    assert rc == 0, err
    gradient = json.loads(out)["derivatives"]["X"]["text"]       # (A0 + ... + A3999)'
    assert gradient.startswith("(A0 + A1 + ") and "+ A3999 +" in gradient


def test_an_error_in_a_file_points_into_its_line(tmp_path, capsys):
    path = tmp_path / "bad.txt"
    path.write_text("tr(X'*X)\n  + tr(X*Y\n", encoding="utf-8")
    rc, _, err = run(["grad", "--file", str(path)], capsys)
    assert rc == 2 and "Traceback" not in err
    assert err.splitlines()[1:] == ["    + tr(X*Y", "        ^"], err


@pytest.mark.parametrize("argv, message", [
    (["grad"], "no expression"),
    (["grad", "x'*x", "--file", "f.txt"], "not both"),
    (["grad", "--file", "/nonexistent/f.txt"], "cannot read --file /nonexistent/f.txt"),
    (["hessian", "--file", "/"], "cannot read --file /"),
])
def test_bad_input_exits_2_with_a_message(argv, message, capsys):
    rc, _, err = run(argv, capsys)
    assert rc == 2 and err.startswith("error: ") and message in err, err


@pytest.mark.parametrize("argv", [
    ["grad", "-x'*A*x", "--wrt", "x", "--format", "text"],
    ["grad", "--wrt", "x", "--format", "text", "-x'*A*x"],
    ["grad", "--wrt", "x", "--format", "text", "--", "-x'*A*x"],
    ["grad", "-x' * A * x", "--wrt", "x", "--format", "text"],
], ids=["first", "after-options", "after-dashes", "with-spaces"])
def test_expression_starting_with_minus(argv, capsys):
    rc, out, err = run([argv[0], "--no-check", *argv[1:]], capsys)
    assert rc == 0, err
    assert "f = -x'*A*x" in out and "df/dx = -(A + A')*x" in out


def test_minus_number_and_options_still_work(capsys):
    rc, out, _ = run(["grad", "-2*tr(X)", "--wrt", "X", "--format", "text", "--no-check"],
                     capsys)
    assert rc == 0 and "df/dX = -2*eye(m)" in out
    rc, out, _ = run(["grad", "-h"], capsys)
    assert rc == 0 and "--file F" in out
    rc, _, err = run(["grad", "x'*x", "--wrtt", "x"], capsys)
    assert rc == 2 and "unrecognized arguments: --wrtt" in err


# ----------------------------------------------------------------------------- JSON Schema

JSON_RUNS = [
    ["grad", SEED, "--wrt", "R", "--wrt", "Q"],
    ["grad", SEED, "--wrt", "R", "--steps", "--no-check"],
    ["grad", "x'*S*x + ||A*x||^2", "--shape", "S=n,n,sym"],
    ["differential", "||A*X*B - C||_F^2", "--wrt", "X"],
    ["jacobian", "A*X*B", "--wrt", "X"],
    ["hessian", "log(det(X))", "--wrt", "X"],
    ["hessian", "x'*A*y", "--wrt", "x", "--wrt", "y"],
    ["hvp", "||A*X*B - C||_F^2", "--wrt", "X"],
    ["grad", "sum(X ./ Y)", "--wrt", "Y"],
    ["grad", "||X||_* + lambda_max(S)", "--shape", "S=n,n,sym"],     # factorizations
    ["grad", "||x*y'||_*", "--wrt", "x"],                           # not differentiable here
]


def test_schema_is_a_valid_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("argv", JSON_RUNS, ids=lambda a: f"{a[0]}:{a[1][:20]}")
def test_json_output_follows_the_schema(argv, capsys):
    rc, out, err = run([*argv, "--format", "json"], capsys)
    assert rc == 0, err
    report = json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
    jsonschema.Draft202012Validator(SCHEMA).validate(report)


def test_schema_rejects_drift(capsys):
    """The schema is strict: a renamed key or a new one fails, so the file must follow."""
    _, out, _ = run(["grad", "x'*A*x", "--format", "json"], capsys)
    report = json.loads(out)
    validator = jsonschema.Draft202012Validator(SCHEMA)
    assert validator.is_valid(report)
    assert not validator.is_valid({**report, "gradients": report["derivatives"]})
    renamed = {k: v for k, v in report.items() if k != "derivatives"}
    assert not validator.is_valid(renamed)
    bad_check = {**report, "check": {"x": {"ok": "yes", "max_rel_error": 0.0}}}
    assert not validator.is_valid(bad_check)
