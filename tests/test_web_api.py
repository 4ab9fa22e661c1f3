"""The web API's status codes (200/400/413/504/500), its typesetting, and notebook display.

The status-code paths run against small fake computations injected into ``create_app``, so
they test the shell alone; the ``core`` tests run the real ``md.report`` and ``md.parse``.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
pytest.importorskip("latex2mathml")

from fastapi.testclient import TestClient  # noqa: E402

import matdiff as md  # noqa: E402
from matdiff.expr import sym  # noqa: E402
from matdiff.web import notebook  # noqa: E402
from matdiff.web.app import EXAMPLES, SEED, create_app, name_latex, run_limited  # noqa: E402

REPORT = {"expression": "x'*x", "shapes": {"x": ["n"]},
          "derivatives": {"x": {"text": "2*x", "unicode": "2x", "latex": "2 x"}},
          "check": {"x": {"max_rel_error": 1e-13, "ok": True}}}


def fake_derive(expr: str, wrt: list[str], shapes: Any = None, syntax: Any = None,
                what: str = "grad") -> dict[str, Any]:
    if expr == "slow":
        time.sleep(60)
    if expr == "bug":
        return {"x": 1 // 0}
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

core = pytest.mark.skipif(not (hasattr(md, "report") and hasattr(md, "printing")),
                          reason="the core API (md.report, md.printing) is not there yet")


@core
def test_core_seed() -> None:
    client = TestClient(create_app())
    r = client.post("/api/derive", json={"expr": SEED, "wrt": ["R", "Q"]})
    assert r.status_code == 200, r.text
    report = r.json()
    assert set(report["derivatives"]) == {"R", "Q"}
    assert report == md.report(SEED, ["R", "Q"])


@core
def test_core_bad_input_400_with_position() -> None:
    client = TestClient(create_app())
    r = client.post("/api/derive", json={"expr": "x' * (A*x", "wrt": ["x"]})
    assert r.status_code == 400 and r.json()["position"] is not None


@core
@pytest.mark.parametrize("example", EXAMPLES, ids=[e["title"] for e in EXAMPLES])
def test_core_every_example_derives(example: dict[str, Any]) -> None:
    client = TestClient(create_app())
    body = {k: example[k] for k in ("expr", "wrt", "syntax", "what", "shapes")
            if k in example}
    r = client.post("/api/derive?mathml=1", json=body)
    assert r.status_code == 200, r.text
    for d in r.json()["derivatives"].values():
        assert d["mathml"].startswith("<math")


@core
def test_core_parse_shapes() -> None:
    client = TestClient(create_app())
    r = client.post("/api/parse", json={"expr": "x'*S*x", "shapes": {"S": ["n", "n",
                                                                           "symmetric"]}})
    assert r.status_code == 200, r.text
    assert r.json()["shapes"]["S"] == ["n", "n", "symmetric"]
    assert r.json()["shapes"]["x"] == ["n"]


@core
def test_core_notebook_latex() -> None:
    x = sym("x", ("n", 1))
    assert notebook.repr_latex(x).startswith("$") and notebook.repr_latex(x).endswith("$")
    assert notebook.repr_html(x).startswith("<math")
