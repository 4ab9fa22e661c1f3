"""The page in a real headless browser: Debian's chromium driven by Playwright.

Needs ``pip install playwright`` (its Python package only: no ``playwright install``) and
``apt-get install -y chromium`` (marked ``browser``). The seed's result is saved to
``docs/seed.png``, which the README shows, when MATDIFF_UPDATE_SCREENSHOT=1 (else to a
temporary file, so the suite leaves the checkout clean).
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import playwright.sync_api as playwright_sync
import pytest
import uvicorn

from matdiff.web.app import EXAMPLES, SEED, create_app

expect = playwright_sync.expect

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOT = (Path(__file__).resolve().parents[1] / "docs" if os.environ.get(
    "MATDIFF_UPDATE_SCREENSHOT") == "1" else Path(tempfile.gettempdir())) / "seed.png"
WAIT_MS = 30_000

pytestmark = [pytest.mark.web, pytest.mark.browser]


@pytest.fixture(scope="module")
def web_app() -> Any:
    return create_app()


@pytest.fixture(scope="module")
def base_url(web_app: Any) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(web_app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, base_url: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda err: errors.append(str(err)))
    pg.goto(base_url)
    pg.wait_for_load_state("networkidle")
    yield pg
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def derive_by_click(page: Any) -> Any:
    with page.expect_response(lambda r: "/api/derive" in r.url, timeout=WAIT_MS) as answer:
        page.click("#go")
    return answer.value


def test_type_the_seed_and_see_both_gradients(page: Any) -> None:
    page.evaluate("document.getElementById('derivatives').replaceChildren()")  # the default's
    page.fill("#expr", "")
    page.type("#expr", SEED)
    page.wait_for_selector("#preview math", timeout=WAIT_MS)
    for name in ("R", "Q"):
        page.get_by_label(f"differentiate w.r.t. {name}").check()
    assert derive_by_click(page).status == 200
    for name in ("R", "Q"):
        math = page.locator(f'.derivative[data-wrt="{name}"] math')
        expect(math).to_be_visible(timeout=WAIT_MS)
        expect(math).to_contain_text("∂")
    assert page.locator("#error").is_hidden()
    assert "expr=" in page.url and "wrt=R%2CQ" in page.url
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)


def test_click_an_example(page: Any) -> None:
    example = next(e for e in EXAMPLES if e["expr"] == "x'*A*x")
    page.click("#examples summary")
    with page.expect_response(lambda r: "/api/derive" in r.url, timeout=WAIT_MS) as answer:
        page.get_by_role("button", name=example["title"]).click()
    assert answer.value.status == 200
    expect(page.locator('.derivative[data-wrt="x"] math')).to_be_visible(timeout=WAIT_MS)
    assert page.input_value("#expr") == "x'*A*x"
    expect(page.locator(".derivative")).to_have_count(1)


def test_error_is_highlighted_in_the_input(page: Any) -> None:
    bad = "x'*A*x + (y $ z)"
    with page.expect_response(lambda r: "/api/parse" in r.url and r.status == 400,
                              timeout=WAIT_MS) as answer:
        page.fill("#expr", bad)
    err = json.loads(answer.value.text())
    assert err["position"] is not None
    mark = page.wait_for_selector("#backdrop mark", timeout=WAIT_MS)
    start = err["position"]
    end = max(err["end"] or start + 1, start + 1)
    assert mark.text_content() == (bad[start:end] or " ")
    assert page.locator("#error").is_visible()
    assert err["error"] in page.text_content("#error")
    page.fill("#expr", "x'*A*x")  # fixing the input clears the error
    page.wait_for_selector("#error", state="hidden", timeout=WAIT_MS)
    assert page.locator("#backdrop mark").count() == 0


def test_a_shared_link_restores_the_result(page: Any, base_url: str) -> None:
    page.goto(base_url + "#expr=tr(A*X*B)&wrt=X")
    expect(page.locator('.derivative[data-wrt="X"] math')).to_be_visible(timeout=WAIT_MS)
    assert page.input_value("#expr") == "tr(A*X*B)"


def test_declare_a_shape_symmetric(page: Any) -> None:
    page.fill("#expr", "x'*S*x")
    expect(page.get_by_label("S is symmetric")).to_be_enabled(timeout=WAIT_MS)
    page.get_by_label("differentiate w.r.t. x").check()
    page.get_by_label("S is symmetric").check()
    page.get_by_label("shape of x").fill("k")
    assert derive_by_click(page).status == 200
    expect(page.locator('.derivative[data-wrt="x"] .plain code')).to_have_text(
        "∂f/∂x = 2*S*x", timeout=WAIT_MS)
    expect(page.get_by_label("shape of S")).to_have_attribute("placeholder", "k, k")
    assert "symmetric" in page.url


@pytest.mark.parametrize(("what", "label"), [("hessian", "H_x = "), ("hvp", "H_x V = "),
                                             ("differential", "d_x f = ")])
def test_the_result_says_what_was_computed(page: Any, what: str, label: str) -> None:
    page.fill("#expr", "x'*A*x")
    expect(page.get_by_label("differentiate w.r.t. x")).to_be_enabled(timeout=WAIT_MS)
    page.get_by_label("differentiate w.r.t. x").check()
    page.select_option("#what", what)
    assert derive_by_click(page).status == 200
    plain = page.locator('.derivative[data-wrt="x"] .plain code')
    expect(plain).to_contain_text(label, timeout=WAIT_MS)
    assert "∂f/∂x" not in plain.text_content()
    assert f"what={what}" in page.url


def test_an_error_from_the_server_is_shown_not_thrown(page: Any) -> None:
    page.fill("#expr", "x'*x")
    expect(page.get_by_label("shape of x")).to_be_visible(timeout=WAIT_MS)
    with page.expect_response(lambda r: "/api/parse" in r.url and r.status == 400,
                              timeout=WAIT_MS) as answer:
        page.get_by_label("shape of x").fill("100000")
    assert "1000" in json.loads(answer.value.text())["error"]
    expect(page.locator("#error")).to_contain_text("1000", timeout=WAIT_MS)
