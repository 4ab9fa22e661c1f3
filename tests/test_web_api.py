"""The web API's status codes (200/400/404/405/413/504/500), its JSON errors, its
typesetting and labels, and notebook display.

The status-code paths run against small fake computations injected into ``create_app``, so
they test the shell alone; the ``core`` tests run the real ``md.report`` and ``md.parse``.
The fakes run in the pool's worker processes, which import them from this module.
"""

from __future__ import annotations

import json
import math
import socket
import time
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

import matdiff as md
from matdiff.cli import main
from matdiff.expr import sym
from matdiff.web import jobs, notebook
from matdiff.web.app import CHEAP, EXAMPLES, SEED, create_app, estimate, name_latex, run_limited

pytestmark = pytest.mark.web

REPORT = {"expression": "x'*x", "shapes": {"x": ["n"]},
          "derivatives": {"x": {"text": "2*x", "unicode": "2x", "latex": "2 x"}},
          "check": {"x": {"max_rel_error": 1e-13, "ok": True}}}


def fake_derive(expr: str, wrt: list[str], shapes: Any = None, syntax: Any = None,
                what: str = "grad") -> dict[str, Any]:
    if expr == "slow":
        time.sleep(60)
    if expr == "bug":
        return {"x": 1 // 0}
    if expr == "nan":
        return {**REPORT, "check": {"x": {"max_rel_error": math.nan, "ok": False},
                                    "y": {"max_rel_error": math.inf, "ok": False}}}
    if "?" in expr:
        raise md.MatdiffError("unexpected character '?'", pos=expr.index("?"),
                              end=expr.index("?") + 1)
    return REPORT


def fake_parse(expr: str, shapes: Any = None, syntax: Any = None) -> dict[str, Any]:
    return {"latex": "x^T x", "mathml": "<math></math>", "shapes": {"x": ["n"]}}


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app(derive=fake_derive, parse=fake_parse, timeout=1.0,
                                 max_body=1024))


def test_page_and_static_files(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/static/app.js" in page.text and "/static/style.css" in page.text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/app.py").status_code == 404
    assert client.get("/static/..%2Fapp.py").status_code == 404


def test_examples_seed_first(client: TestClient) -> None:
    examples = client.get("/api/examples").json()
    assert examples[0]["expr"] == SEED and examples[0]["wrt"] == ["R", "Q"]
    assert examples == EXAMPLES


def test_derive_200_is_the_report(client: TestClient) -> None:
    r = client.post("/api/derive", json={"expr": "x'*x", "wrt": ["x"]})
    assert r.status_code == 200 and r.json() == REPORT


def test_derive_mathml(client: TestClient) -> None:
    r = client.post("/api/derive?mathml=1", json={"expr": "x'*x", "wrt": ["x"]})
    mathml = r.json()["derivatives"]["x"]["mathml"]
    assert r.status_code == 200 and mathml.startswith("<math") and "&#x02202;" in mathml


def test_derive_400_points_at_the_span(client: TestClient) -> None:
    r = client.post("/api/derive", json={"expr": "x' ? x", "wrt": ["x"]})
    assert r.status_code == 400
    assert r.json() == {"error": "unexpected character '?'", "position": 3, "end": 4}


@pytest.mark.parametrize("body", [
    b"not json",
    b'{"expr": "x"}',  # no wrt
    b'{"expr": "x", "wrt": []}',
    b'{"expr": "x", "wrt": ["x"], "syntax": "python"}',
    b'{"expr": "x", "wrt": ["x"], "what": "integral"}',
    b'{"expr": "x", "wrt": ["x"], "shapes": {"x": "n"}}',
    b'{"expr": 1, "wrt": ["x"]}',
], ids=["not-json", "no-wrt", "empty-wrt", "syntax", "what", "shapes", "expr-type"])
def test_derive_400_bad_request(client: TestClient, body: bytes) -> None:
    r = client.post("/api/derive", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"].startswith("bad request")


def test_413_over_the_body_limit(client: TestClient) -> None:
    r = client.post("/api/derive", json={"expr": "x" * 2000, "wrt": ["x"]})
    assert r.status_code == 413 and "1024" in r.json()["error"]

    def chunks():  # no content-length: the limit holds while reading
        yield b'{"expr": "'
        for _ in range(100):
            yield b"x" * 100
        yield b'", "wrt": ["x"]}'
    r = client.post("/api/parse", content=chunks())
    assert r.status_code == 413


def test_504_timeout_then_serves_on(client: TestClient) -> None:
    start = time.monotonic()
    r = client.post("/api/derive", json={"expr": "slow", "wrt": ["x"]})
    assert r.status_code == 504 and "stopped" in r.json()["error"]
    assert time.monotonic() - start < 10
    assert client.post("/api/derive", json={"expr": "x'*x", "wrt": ["x"]}).status_code == 200


def test_500_without_traceback(client: TestClient) -> None:
    r = client.post("/api/derive", json={"expr": "bug", "wrt": ["x"]})
    assert r.status_code == 500
    assert "Traceback" not in r.text and "ZeroDivision" not in r.text
    assert r.json()["error"].startswith("internal error")


def strict_json(text: str) -> Any:
    """JSON as the standard has it: NaN and Infinity are not in it."""
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in {text[:200]}"))


def test_nan_in_a_result_is_null_with_a_reason(client: TestClient) -> None:
    r = client.post("/api/derive", json={"expr": "nan", "wrt": ["x"]})
    assert r.status_code == 200
    check = strict_json(r.text)["check"]
    assert check["x"]["max_rel_error"] is None and "nan" in check["x"]["reason"]
    assert check["y"]["max_rel_error"] is None and "inf" in check["y"]["reason"]


@pytest.fixture(scope="module")
def full_client() -> TestClient:
    """The fakes, with the real body limit (64 KiB)."""
    return TestClient(create_app(derive=fake_derive, parse=fake_parse))


JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(("method", "path", "body", "headers", "status"), [
    ("POST", "/api/derive", b'{"expr": "ab\\ud800", "wrt": ["x"]}', JSON, 400),
    ("POST", "/api/derive", b'{"expr": "x", "wrt": ["\\udc00"]}', JSON, 400),
    ("POST", "/api/parse", b'{"expr": "x", "shapes": {"\\ud83d": ["n"]}}', JSON, 400),
    ("POST", "/api/derive", b"[" * 30000 + b"]" * 30000, JSON, 400),
    ("POST", "/api/derive", b'{"expr": "x", "wrt": ["x"], "shapes": {"x": ' + b"[" * 20000
     + b"]" * 20000 + b"}}", JSON, 400),
    ("POST", "/api/derive", b'{"expr": "x", "wrt": ["x"], "shapes": {"x": [100000, 100000]}}',
     JSON, 400),
    ("POST", "/api/derive", b'{"expr": "x", "wrt": ["x"], "shapes": {"x": ["99999999999"]}}',
     JSON, 400),
    ("POST", "/api/derive", b'{"expr": "x", "wrt": ["x"], "shapes": {"x": [-3]}}', JSON, 400),
    ("POST", "/api/derive", b'{"expr": "x", "wrt": ["x"], "shapes": {"x": [true]}}', JSON, 400),
    ("POST", "/api/derive", b'{"expr": "x", "wrt": ["x"]}', {"content-type": "text/plain"},
     400),
    ("POST", "/api/derive?mathml=perhaps", b'{"expr": "x", "wrt": ["x"]}', JSON, 400),
    ("POST", "/api/derive", b'{"expr": "' + b"x" * 70000 + b'", "wrt": ["x"]}', JSON, 413),
    ("GET", "/api/nothing", b"", {}, 404),
    ("DELETE", "/api/derive", b"", {}, 405),
], ids=["surrogate-expr", "surrogate-wrt", "surrogate-key", "deep-json", "deep-shapes",
        "huge-sizes", "huge-size-text", "negative-size", "bool-size", "content-type",
        "query", "too-large", "no-such-path", "method"])
def test_every_error_is_json_with_a_message(full_client: TestClient, method: str, path: str,
                                            body: bytes, headers: dict[str, str],
                                            status: int) -> None:
    r = full_client.request(method, path, content=body, headers=headers)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    error = strict_json(r.text)
    assert set(error) == {"error", "position", "end"} and error["error"], error
    assert "Traceback" not in r.text


def test_a_lone_surrogate_is_pointed_at(full_client: TestClient) -> None:
    r = full_client.post("/api/derive", content=b'{"expr": "ab\\ud800c", "wrt": ["x"]}',
                         headers=JSON)
    assert r.status_code == 400 and (r.json()["position"], r.json()["end"]) == (2, 3)
    assert "surrogate" in r.json()["error"]


def test_the_openapi_schema_is_served(full_client: TestClient) -> None:
    schema = full_client.get("/openapi.json").json()
    assert schema["info"]["title"] == "matdiff" and "/api/derive" in schema["paths"]


def test_status_reports_the_pool(full_client: TestClient) -> None:
    status = full_client.get("/api/status").json()
    assert status["start_method"] in ("forkserver", "spawn")
    assert status["fast"]["workers"] >= 1 and status["heavy"]["workers"] >= 1


def test_the_cost_estimate_sends_examples_fast_and_deep_networks_heavy() -> None:
    for e in EXAMPLES:
        assert estimate(e["expr"], len(e["wrt"]), e.get("what", "grad")) < CHEAP, e["title"]
    assert estimate("x'*x", 1, "hessian") < CHEAP and estimate("x'*A*x") < CHEAP
    net = "x"
    for i in range(12):
        net = f"tanh(W{i}*{net} + b{i})"
    assert estimate(f"||{net} - y||^2", 24, "hvp") > 5 * CHEAP
    assert estimate(" + ".join(["||A*X*B - C||_F^2"] * 200)) > CHEAP  # a long text to parse


def test_finite_replaces_nan_and_inf_and_says_why() -> None:
    out = jobs.finite({"a": [1.0, math.nan], "b": {"e": -math.inf, "reason": "saturated"},
                       "c": (math.inf,), "d": np.float64("nan")})
    assert out == {"a": [1.0, None], "b": {"e": None, "reason": "saturated"}, "c": [None],
                   "d": None, "reason": "d is nan (not a number)"}


def test_a_failing_check_leaves_the_formulas_with_a_note(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    real = md.report

    def singular_check(*args: Any, verify: bool = True, **kwargs: Any) -> dict[str, Any]:
        if verify:
            raise np.linalg.LinAlgError("Singular matrix")
        return real(*args, verify=False, **kwargs)

    monkeypatch.setattr(md, "report", singular_check)
    out = jobs.derive("tr(inv(A*B))", ["A"])
    assert "A" in out["derivatives"] and "check" not in out
    assert any("Singular matrix" in note for note in out["notes"])


def test_render(client: TestClient) -> None:
    r = client.post("/api/render", json={"latex": r"\frac{a}{b}"})
    assert r.status_code == 200 and "<mfrac>" in r.json()["mathml"]
    assert client.post("/api/render", json={"latex": "a^"}).status_code == 400


def test_parse_endpoint(client: TestClient) -> None:
    r = client.post("/api/parse", json={"expr": "x'*x"})
    assert r.status_code == 200 and r.json()["shapes"] == {"x": ["n"]}


def test_run_limited_kills_the_child() -> None:
    with pytest.raises(TimeoutError):
        run_limited(fake_derive, {"expr": "slow", "wrt": ["x"]}, timeout=0.2)
    with pytest.raises(md.MatdiffError) as err:
        run_limited(fake_derive, {"expr": "a?", "wrt": ["a"]}, timeout=5)
    assert (err.value.pos, err.value.end) == (1, 2)


def test_name_latex() -> None:
    assert name_latex("H_I") == "H_{I}" and name_latex("x") == "x"


# ----------------------------------------------------------------------------- notebook


def test_report_html() -> None:
    out = notebook.report_html({**REPORT, "where": [{"name": "M", "latex": "x x^T"}]})
    assert "∂f/∂x" in out and "<math" in out and "where M" in out and "✓" in out


def test_math_html_escapes_on_failure() -> None:
    assert notebook.math_html("<b>^").startswith("<code")


# ----------------------------------------------------------------------------- the real core

def test_core_seed() -> None:
    client = TestClient(create_app())
    r = client.post("/api/derive", json={"expr": SEED, "wrt": ["R", "Q"]})
    assert r.status_code == 200, r.text
    report = r.json()
    assert set(report["derivatives"]) == {"R", "Q"}
    assert report == md.report(SEED, ["R", "Q"])


def test_core_bad_input_400_with_position() -> None:
    client = TestClient(create_app())
    r = client.post("/api/derive", json={"expr": "x' * (A*x", "wrt": ["x"]})
    assert r.status_code == 400 and r.json()["position"] is not None


@pytest.mark.parametrize("example", EXAMPLES, ids=[e["title"] for e in EXAMPLES])
def test_core_every_example_derives(example: dict[str, Any]) -> None:
    client = TestClient(create_app())
    body = {k: example[k] for k in ("expr", "wrt", "syntax", "what", "shapes")
            if k in example}
    r = client.post("/api/derive?mathml=1", json=body)
    assert r.status_code == 200, r.text
    for d in r.json()["derivatives"].values():
        assert d["mathml"].startswith("<math")


def test_core_parse_shapes() -> None:
    client = TestClient(create_app())
    r = client.post("/api/parse", json={"expr": "x'*S*x", "shapes": {"S": ["n", "n",
                                                                           "symmetric"]}})
    assert r.status_code == 200, r.text
    assert r.json()["shapes"]["S"] == ["n", "n", "symmetric"]
    assert r.json()["shapes"]["x"] == ["n"]


LABELS = {"grad": "∂f/∂x", "hessian": "H_x", "differential": "d_x f",
          "jacobian": "∂vec(f)/∂vec(x)ᵀ", "hvp": "H_x V"}


@pytest.mark.parametrize("what", list(LABELS))
def test_core_results_are_labelled_by_what_was_computed(what: str) -> None:
    client = TestClient(create_app())
    body = {"expr": "x'*A*x + sum(exp(x))", "wrt": ["x"], "what": what}
    plain = client.post("/api/derive", json=body)
    assert plain.status_code == 200, plain.text
    assert plain.json()["what"] == what and "lhs" not in plain.json()["derivatives"]["x"]
    shown = client.post("/api/derive?mathml=1", json=body).json()["derivatives"]["x"]
    assert shown["lhs"] == LABELS[what]
    assert ("&#x02202;" in shown["mathml"]) == (what in ("grad", "jacobian")), shown["mathml"]
    html = notebook.report_html(plain.json())
    assert LABELS[what] in html


@pytest.mark.parametrize(("expr", "wrt", "what", "shapes"), [
    ("tr(inv(A*B))", ["A"], "grad", None),
    ("inv(A*B)", ["A"], "jacobian", None),
    ("log(det(X'*X))", ["X"], "grad", {"X": [2, 3]}),
    ("1e400*x'*x", ["x"], "grad", None),
    ("det(A*X*B)", ["X"], "grad", None),
    ("sum(log(x))", ["x"], "hessian", None),
], ids=["tr-inv", "jacobian-inv", "logdet-rank-deficient", "overflow", "det-singular",
        "log-negative"])
def test_core_hard_numerics_answer_json(expr: str, wrt: list[str], what: str,
                                        shapes: Any) -> None:
    client = TestClient(create_app())
    body = {"expr": expr, "wrt": wrt, "what": what, "shapes": shapes}
    r = client.post("/api/derive?mathml=1", json=body)
    assert r.status_code in (200, 400), r.text
    answer = strict_json(r.text)
    if r.status_code == 400:
        assert answer["error"]
        return
    for check in answer.get("check", {}).values():
        error = check["max_rel_error"]
        assert isinstance(error, float) and math.isfinite(error) or check.get("reason"), check


def test_serve_refuses_a_bad_or_busy_port(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--port", "99999"])
    assert exit_.value.code == 2 and "not a port" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert main(["serve", "--port", str(taken.getsockname()[1])]) == 2
    err = capsys.readouterr().err
    assert "cannot listen" in err and "--port" in err and "Traceback" not in err


def test_core_notebook_latex() -> None:
    x = sym("x", ("n", 1))
    assert notebook.repr_latex(x).startswith("$") and notebook.repr_latex(x).endswith("$")
    assert notebook.repr_html(x).startswith("<math")
