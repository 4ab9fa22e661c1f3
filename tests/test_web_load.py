"""The web service under load: ``matdiff serve`` in a subprocess, 200 concurrent mixed
requests (cheap, heavy, invalid) without one 5xx, and a trivial request answered in under a
second while 8 heavy ones run; then Ctrl+C stops it and its workers, without a traceback.

"Heavy" is calibrated here: deep networks ``||tanh(W_k*...tanh(W_1*x + b_1)...) - y||^2``
differentiated with respect to all their weights, made deeper until one takes a second.
The figures are printed (``pytest -s``); docs/web.md reports them.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from matdiff.web.app import EXAMPLES

pytestmark = pytest.mark.web

TRIVIAL = {"expr": "x'*x", "wrt": ["x"]}


def network(depth: int, tag: str = "") -> dict[str, Any]:
    """A deep network's loss and all its weights: seconds of symbolic work when deep."""
    inner = "x"
    for i in range(1, depth + 1):
        inner = f"tanh(W{tag}{i}*{inner} + b{tag}{i})"
    names = [f"{p}{tag}{i}" for i in range(1, depth + 1) for p in ("W", "b")]
    return {"expr": f"||{inner} - y||^2", "wrt": names, "what": "hvp"}


def descendants(pid: int) -> set[int]:
    """The processes below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` that still run (a zombie has ended)."""
    running = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            running.add(pid)
    return running


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    # a generous CPU limit: this file tests scheduling and errors, not the time limit (which
    # test_web_pool tests), and a loaded machine stretches each heavy job's wall time
    proc = subprocess.Popen([sys.executable, "-m", "matdiff", "serve", "--port", str(port),
                             "--timeout", "60"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, f"the server exited: {proc.communicate()}"
        assert time.monotonic() < deadline, "the server did not start in 60 s"
        try:
            if httpx.get(url + "/api/status", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    yield url, proc
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


async def send(client: httpx.AsyncClient, request: dict[str, Any]) -> dict[str, Any]:
    """One request; its status, seconds, kind and the JSON it answered."""
    start = time.monotonic()
    r = await client.request(request.get("method", "POST"), request["path"],
                             content=request.get("content"), json=request.get("json"),
                             headers=request.get("headers"))
    seconds = time.monotonic() - start
    body = json.loads(r.text, parse_constant=lambda c: pytest.fail(f"{c} in {r.text[:200]}"))
    return {"status": r.status_code, "seconds": seconds, "kind": request["kind"],
            "body": body, "request": request}


def derive(body: dict[str, Any], kind: str) -> dict[str, Any]:
    return {"path": "/api/derive", "json": body, "kind": kind}


def raw(content: bytes, kind: str = "invalid", path: str = "/api/derive",
        content_type: str = "application/json") -> dict[str, Any]:
    return {"path": path, "content": content, "headers": {"content-type": content_type},
            "kind": kind}


def mixed_requests(heavy_depth: int) -> list[dict[str, Any]]:
    """200 requests: 134 cheap, 60 invalid, 6 heavy, interleaved."""
    cheap_bodies = [{k: e[k] for k in ("expr", "wrt", "shapes", "syntax", "what") if k in e}
                    for e in EXAMPLES]
    cheap = [derive({**cheap_bodies[i % len(cheap_bodies)],
                     "what": ("grad", "grad", "hessian")[i % 3]}, "cheap") for i in range(94)]
    cheap += [{"path": "/api/parse", "json": {"expr": EXAMPLES[i % 5]["expr"]},
               "kind": "cheap"} for i in range(25)]
    cheap += [{"path": "/api/render", "json": {"latex": r"\frac{a}{b} + x^2"},
               "kind": "cheap"} for _ in range(10)]
    cheap += [{"path": "/api/examples", "method": "GET", "kind": "cheap"} for _ in range(5)]
    invalid = [
        derive({"expr": "x' ? x", "wrt": ["x"]}, "invalid"),
        derive({"expr": "x'*(A*x", "wrt": ["x"]}, "invalid"),
        derive({"expr": "x'*x", "wrt": []}, "invalid"),
        derive({"expr": "x'*x", "wrt": ["x"], "what": "integral"}, "invalid"),
        derive({"expr": "x'*x", "wrt": ["x"], "shapes": {"x": [100000, 100000]}}, "invalid"),
        derive({"expr": "x'*x", "wrt": ["x"], "shapes": {"x": [-1]}}, "invalid"),
        raw(b'{"expr": "x\\ud800", "wrt": ["x"]}'),
        raw(b"[" * 20000 + b"]" * 20000),
        raw(b"not json"),
        raw(b'{"expr": "x", "wrt": ["x"]}', content_type="text/plain"),
        raw(b'{"expr": "' + b"x+" * 40000 + b'x", "wrt": ["x"]}'),  # over 64 KiB
        {"path": "/api/nothing", "method": "GET", "kind": "invalid"},
    ]
    invalid = [invalid[i % len(invalid)] for i in range(60)]
    heavy = [derive(network(heavy_depth, tag=f"h{i}_"), "heavy") for i in range(6)]
    everything = cheap + invalid + heavy
    return [everything[(i * 37) % len(everything)] for i in range(len(everything))]


def timed(url: str, body: dict[str, Any]) -> float:
    start = time.monotonic()
    r = httpx.post(url + "/api/derive", json=body, timeout=120)
    assert r.status_code == 200, r.text
    return time.monotonic() - start


@pytest.fixture(scope="module")
def heavy_depth(server: tuple[str, Any]) -> int:
    """The depth of network whose derivation takes a second or more (alone)."""
    url, _ = server
    for depth in (6, 8, 12, 16, 24, 32):
        if timed(url, network(depth, tag="c_")) >= 1.0:
            return depth
    pytest.fail("no network up to depth 32 took a second: choose heavier requests")


def report(name: str, seconds: list[float]) -> str:
    q = statistics.quantiles(seconds, n=20) if len(seconds) > 1 else seconds * 19
    return f"{name}: n={len(seconds)} p50={q[9]:.2f} s p95={q[18]:.2f} s max={max(seconds):.2f} s"


def test_200_mixed_concurrent_requests_get_no_5xx(server: tuple[str, Any],
                                                  heavy_depth: int) -> None:
    url, _ = server
    depth = heavy_depth
    requests = mixed_requests(depth)
    assert len(requests) == 200

    async def all_at_once() -> list[dict[str, Any]]:
        limits = httpx.Limits(max_connections=250, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=url, timeout=180, limits=limits) as client:
            return await asyncio.gather(*(send(client, r) for r in requests))

    start = time.monotonic()
    answers = asyncio.run(all_at_once())
    total = time.monotonic() - start
    server_errors = [a for a in answers if a["status"] >= 500]
    assert not server_errors, [(a["status"], a["body"], a["request"].get("json"))
                               for a in server_errors[:5]]
    for a in answers:
        if a["kind"] == "invalid":
            assert 400 <= a["status"] < 500 and isinstance(a["body"]["error"], str), a
        else:
            assert a["status"] == 200, (a["body"], a["request"])
    by_kind = {k: [a["seconds"] for a in answers if a["kind"] == k]
               for k in ("cheap", "invalid", "heavy")}
    print(f"\n200 requests in {total:.1f} s (heavy: depth {depth});",
          "; ".join(report(k, v) for k, v in by_kind.items()))


def test_a_trivial_request_is_fast_while_8_heavy_run(server: tuple[str, Any],
                                                     heavy_depth: int) -> None:
    url, _ = server
    depth = heavy_depth
    heavy = [network(depth, tag=f"L{i}_") for i in range(8)]
    trivial: list[float] = []

    async def scenario() -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=url, timeout=180) as client:
            running = [asyncio.ensure_future(send(client, derive(b, "heavy"))) for b in heavy]
            while (await client.get("/api/status")).json()["heavy"]["queued"] < 4:
                await asyncio.sleep(0.05)  # the 8 are in: 2 run, the rest wait their turn
            for _ in range(5):
                answer = await send(client, derive(TRIVIAL, "trivial"))
                assert answer["status"] == 200
                trivial.append(answer["seconds"])
                status = (await client.get("/api/status")).json()
                assert status["heavy"]["running"] > 0, "the heavy requests ended too soon"
                await asyncio.sleep(0.2)
            return await asyncio.gather(*running)

    start = time.monotonic()
    answers = asyncio.run(scenario())
    total = time.monotonic() - start
    assert [a["status"] for a in answers] == [200] * 8
    print(f"\n8 heavy (depth {depth}) in {total:.1f} s;", report("trivial meanwhile", trivial))
    assert total > 2.0, "the 8 heavy requests were not heavy"
    assert statistics.median(trivial) < 1.0 and max(trivial) < 2.0, trivial


def test_requests_whose_client_left_are_dropped(server: tuple[str, Any],
                                                heavy_depth: int) -> None:
    url, _ = server

    async def scenario() -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=url, timeout=180) as client:
            kept = [asyncio.ensure_future(send(client, derive(network(heavy_depth, f"k{i}_"),
                                                              "heavy"))) for i in range(2)]
            async with httpx.AsyncClient(base_url=url, timeout=0.5) as impatient:
                for i in range(3):
                    with pytest.raises(httpx.TimeoutException):
                        await impatient.post("/api/derive", json=network(heavy_depth, f"a{i}_"))
            deadline = time.monotonic() + 30  # dropped, not timed: a loaded machine is slow
            while (await client.get("/api/status")).json()["heavy"]["queued"]:
                assert time.monotonic() < deadline, "abandoned requests stayed queued"
                await asyncio.sleep(0.05)
            answers = await asyncio.gather(*kept)
            status = (await client.get("/api/status")).json()
            assert status["heavy"]["running"] == 0, status  # the abandoned ones never ran
            return answers

    assert [a["status"] for a in asyncio.run(scenario())] == [200, 200]


def test_ctrl_c_stops_the_server_and_its_workers(server: tuple[str, Any]) -> None:
    url, proc = server
    workers = descendants(proc.pid)
    assert len(workers) >= 5  # the fork server and at least 4 workers
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "Traceback" not in err, err
    deadline = time.monotonic() + 10
    while alive(workers):
        assert time.monotonic() < deadline, f"workers outlived the server: {alive(workers)}"
        time.sleep(0.1)
