"""The command line's verdicts and exit status: 0 printed (a check that is OK or
inconclusive, with its reason), 1 a check found a MISMATCH, 2 any error, as a message and
never a traceback."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

import matdiff as md
from matdiff import api
from matdiff.cli import EXIT_ERROR, EXIT_MISMATCH, EXIT_OK, main

ROOT = Path(__file__).resolve().parents[1]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(argv)
    out = capsys.readouterr()
    assert "Traceback" not in out.err and "Traceback" not in out.out
    return rc, out.out, out.err


def test_the_two_layer_net_is_ok_for_every_variable(capsys):
    rc, out, _ = run(["grad", "||sigmoid(W2*relu(W1*x + b1) + b2) - y||^2"], capsys)
    assert rc == EXIT_OK
    lines = [ln for ln in out.splitlines() if ln.startswith("  d/d")]
    assert len(lines) == 6 and all(ln.endswith("OK") for ln in lines), out
    assert "MISMATCH" not in out


def test_inconclusive_is_exit_0_with_the_reason(capsys):
    rc, out, _ = run(["grad", "log(det(X'*X))", "--shape", "X=2,3"], capsys)
    assert rc == EXIT_OK
    assert "d/dX: inconclusive here (singular by shape): det(X'*X) is 0 for every X" in out
    assert "nan" not in out.lower().replace("nan)", "")


def test_json_has_no_nan_and_says_why(capsys):
    rc, out, _ = run(["grad", "log(det(X'*X))", "--shape", "X=2,3", "--format", "json"],
                     capsys)
    assert rc == EXIT_OK and "NaN" not in out and "Infinity" not in out
    check = json.loads(out)["check"]["X"]
    assert check == {"verdict": "inconclusive", "ok": False, "max_rel_error": None,
                     "reason": "singular by shape", "detail": check["detail"]}


def test_a_mismatch_is_exit_1(capsys, monkeypatch):
    real = api._gradients

    def off_by_two(f, names, extra, simplified=True):
        return {k: md.parse("2", shapes=None) * g if g.is_scalar else g + g
                for k, g in real(f, names, extra, simplified).items()}

    monkeypatch.setattr(api, "_gradients", off_by_two)
    rc, out, _ = run(["grad", "x'*A*x", "--wrt", "x"], capsys)
    assert rc == EXIT_MISMATCH
    assert "d/dx: max relative error" in out and out.rstrip().endswith("MISMATCH")


@pytest.mark.parametrize("argv", [
    ["grad", "tr(inv(A*B))"],
    ["jacobian", "inv(A*B)"],
    ["grad", "1e400*x'*x"],
    ["grad", "x'*A*x", "--shape", "x=100000", "--shape", "A=100000,100000"],
    ["hessian", "tr(inv(X - X'))", "--shape", "X=3,3"],
])
def test_hard_inputs_give_verdicts_not_tracebacks(argv, capsys):
    rc, out, err = run(argv, capsys)
    assert rc == EXIT_OK, err
    assert "check:" in out and "MISMATCH" not in out


def test_overflow_and_too_large_say_why(capsys):
    _, out, _ = run(["grad", "1e400*x'*x"], capsys)
    assert "inconclusive here (overflow): the constant 1e400 is beyond the floating-point " \
           "range" in out
    _, out, _ = run(["grad", "x'*A*x", "--shape", "x=100000", "--shape", "A=100000,100000"],
                    capsys)
    assert "inconclusive here (too large)" in out and "GiB" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["grad", "x'*A*x", "--wrt", "z"], "'z' does not occur in the expression"),
    (["grad", "x'*A*x", "--shape", "x"], "--shape takes NAME=d1,d2"),
    (["grad", "A*x", "--wrt", "x"], "the gradient needs a scalar function"),
    (["serve", "--host", "no such host.invalid", "--port", "8765"], "cannot listen on"),
])
def test_errors_are_messages_with_exit_2(argv, message, capsys):
    rc, _, err = run(argv, capsys)
    assert rc == EXIT_ERROR and message in err and err.startswith("error: ")


def test_a_bad_port_is_exit_2(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["serve", "--port", "99999"])
    assert stop.value.code == EXIT_ERROR
    assert "'99999' is not a port number (1 to 65535)" in capsys.readouterr().err


def test_a_busy_port_is_a_clear_message(capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        rc, _, err = run(["serve", "--port", str(port)], capsys)
    assert rc == EXIT_ERROR
    assert err.startswith(f"error: cannot listen on 127.0.0.1:{port}: Address already in use")


def test_an_internal_error_is_a_message_with_exit_2(capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError("boom")

    monkeypatch.setattr(api, "report", broken)
    rc, _, err = run(["grad", "x'*x"], capsys)
    assert rc == EXIT_ERROR and "internal error in matdiff (KeyError" in err


def test_cross_hessians_are_printed_and_checked(capsys):
    rc, out, _ = run(["hessian", "||A - U*V'||_F^2", "--wrt", "U", "--wrt", "V",
                      "--format", "text"], capsys)
    assert rc == EXIT_OK
    assert "H_U = 2*kron(V'*V, eye(m))" in out
    assert "d2f/dvec(U)dvec(V)' = " in out
    assert "  d²/dUdV: max relative error" in out and out.rstrip().endswith("OK")
    rc, out, _ = run(["hessian", "||A - U*V'||_F^2", "--wrt", "U", "--wrt", "V"], capsys)
    assert "∂²f/∂vec(U)∂vec(V)ᵀ = " in out


def test_a_declared_absent_variable_has_a_zero_gradient_with_a_note(capsys):
    rc, out, _ = run(["grad", "x'*A*x", "--wrt", "x", "--wrt", "z", "--shape", "z=n",
                      "--format", "text"], capsys)
    assert rc == EXIT_OK
    assert "df/dz = zeros(n)" in out
    assert "note: z does not occur in the expression: its derivative is zero" in out
    assert "  z: n" in out and "  d/dz: max relative error 0.0e+00  OK" in out


def test_the_exit_status_and_the_limits_are_documented():
    text = (ROOT / "docs" / "errors.md").read_text()
    for needle in ("## Exit status", "| 0 |", "| 1 |", "| 2 |", "## Limits",
                   "LIMIT_BYTES", "inconclusive"):
        assert needle in text, needle
