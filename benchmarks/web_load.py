"""Web service under load: two lanes (fast + heavy) against one queue for all requests.

Each configuration runs a server in a subprocess and meets the same two scenarios:

* while 8 heavy requests run (deep networks, all weights, Hessian-vector products), a
  trivial one (``x'*x``) is sent 5 times, 0.3 s apart: its latency;
* 200 concurrent requests (134 cheap, 60 invalid, 6 heavy): latency per kind, and the time
  until the last answer.

``one queue`` is the former design's scheduling: every request waits in one FIFO for 4
workers. ``lanes`` is the default pool: 2 fast workers for requests estimated cheap, 2
heavy ones for the rest. Ratios are ``one queue / lanes`` of the same run. Asserts nothing.

    python benchmarks/web_load.py               # about 3 minutes on 2 cores
    python benchmarks/web_load.py --rounds 1    # one run of each
"""

from __future__ import annotations

import argparse
import asyncio
import math
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

import httpx

from matdiff.web.app import EXAMPLES

SERVER = """
import sys, uvicorn
from matdiff.web.app import create_app, listen
from matdiff.web.pool import Pool
fast, heavy, cheap, port = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
app = create_app(pool=Pool(fast=fast, heavy=heavy), cheap=cheap)
uvicorn.Server(uvicorn.Config(app, log_level="error")).run(sockets=[listen("127.0.0.1", port)])
"""
CONFIGS = {"one queue": (1, 4, -math.inf), "lanes": (2, 2, 0.05)}


def network(depth: int, tag: str) -> dict[str, Any]:
    inner = "x"
    for i in range(1, depth + 1):
        inner = f"tanh(W{tag}{i}*{inner} + b{tag}{i})"
    wrt = [f"{p}{tag}{i}" for i in range(1, depth + 1) for p in ("W", "b")]
    return {"expr": f"||{inner} - y||^2", "wrt": wrt, "what": "hvp"}


def requests(depth: int) -> list[tuple[str, str, Any]]:
    """(kind, path, JSON body) x 200, interleaved."""
    cheap = [("cheap", "/api/derive", {k: e[k] for k in ("expr", "wrt", "shapes", "syntax")
                                       if k in e}) for e in EXAMPLES] * 8
    cheap += [("cheap", "/api/parse", {"expr": e["expr"]}) for e in EXAMPLES[:5]] * 6
    invalid = [("invalid", "/api/derive", {"expr": "x' ? x", "wrt": ["x"]}),
               ("invalid", "/api/derive", {"expr": "x", "wrt": []}),
               ("invalid", "/api/parse", {"expr": "(A*x"})] * 20
    heavy = [("heavy", "/api/derive", network(depth, f"h{i}_")) for i in range(6)]
    mixed = (cheap[:134] + invalid + heavy)
    return [mixed[(i * 37) % len(mixed)] for i in range(len(mixed))]


async def timed(client: httpx.AsyncClient, path: str, body: Any) -> tuple[float, int]:
    start = time.monotonic()
    r = await client.post(path, json=body)
    return time.monotonic() - start, r.status_code


async def scenarios(url: str, depth: int) -> dict[str, float]:
    limits = httpx.Limits(max_connections=250, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        heavy = [asyncio.ensure_future(timed(client, "/api/derive", network(depth, f"L{i}_")))
                 for i in range(8)]
        await asyncio.sleep(1.0)
        sent = []
        for _ in range(5):  # one every 0.3 s, each answered or not
            sent.append(asyncio.ensure_future(
                timed(client, "/api/derive", {"expr": "x'*x", "wrt": ["x"]})))
            await asyncio.sleep(0.3)
        trivial = [t for t, _ in await asyncio.gather(*sent)]
        await asyncio.gather(*heavy)
        mixed = requests(depth)
        start = time.monotonic()
        answers = await asyncio.gather(*(timed(client, p, b) for _, p, b in mixed))
        total = time.monotonic() - start
    out = {"trivial p50": statistics.median(trivial), "trivial max": max(trivial),
           "200 mixed: last answer": total,
           "5xx": float(sum(status >= 500 for _, status in answers))}
    for kind in ("cheap", "invalid", "heavy"):
        times = [t for (k, _, _), (t, _) in zip(mixed, answers, strict=True) if k == kind]
        out[f"{kind} p50"] = statistics.median(times)
    return out


def run(config: tuple[int, int, float], depth: int) -> dict[str, float]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [sys.executable, "-c", SERVER, *(str(v) for v in config), str(port)]
    server = subprocess.Popen(args)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                httpx.get(url + "/api/status", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        return asyncio.run(scenarios(url, depth))
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs of each, alternating")
    parser.add_argument("--depth", type=int, default=6, help="depth of the heavy networks")
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in CONFIGS}
    for _ in range(args.rounds):  # alternating, so that the machine's load falls on both
        for name, config in CONFIGS.items():
            runs[name].append(run(config, args.depth))
    results = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
               for name, rs in runs.items()}
    print(f"heavy: networks of depth {args.depth}, Hessian-vector products w.r.t. all "
          f"weights; seconds, medians of {args.rounds} runs\n")
    print(f"| {'measure':24} | {'one queue':>10} | {'lanes':>10} | {'ratio':>6} |")
    print(f"|{'-' * 26}|{'-' * 12}|{'-' * 12}|{'-' * 8}|")
    for key in results["lanes"]:
        a, b = results["one queue"][key], results["lanes"][key]
        ratio = f"{a / b:5.1f}x" if b else "  -  "
        print(f"| {key:24} | {a:10.2f} | {b:10.2f} | {ratio:>6} |")


if __name__ == "__main__":
    main()
