"""The local web page and its JSON API: a thin shell over ``md.parse`` and ``md.report``.

Input: JSON requests from the page (``index.html``, ``app.js``, ``style.css`` beside this
module) or any other client. Output: JSON; the OpenAPI schema is at ``/openapi.json``.

========================== =================================================================
``GET /``                  the page; ``GET /static/{app.js,style.css}`` its two other files
``GET /api/examples``      the examples menu, the seed first
``GET /api/status``        the worker pool: workers, running and queued jobs per lane
``POST /api/parse``        ``{"expr", "shapes"?, "syntax"?}`` -> ``{"latex", "mathml",
                           "shapes"}``: the input typeset and the inferred shape of each symbol
``POST /api/render``       ``{"latex"}`` -> ``{"mathml"}``
``POST /api/derive``       ``{"expr", "wrt", "shapes"?, "syntax"?, "what"?}`` -> exactly the
                           JSON of ``matdiff grad --format json``; with ``?mathml=1`` every
                           ``"latex"`` string in it gets a ``"mathml"`` sibling and each
                           derivative its left-hand side ``"lhs"`` (``∂f/∂X``, ``H_X``, ...)
========================== =================================================================

Every error is JSON ``{"error", "position", "end"}``: 400 for bad input (``position``/``end``
index the offending span of ``expr`` in code points), 404/405 for a wrong address or
method, 413 for a body over ``max_body`` bytes, 503 when the queue is full, 504 for a
computation over ``timeout`` CPU seconds, 500 (no traceback) for a bug. A result never
holds NaN: a non-finite number is ``null`` with a ``"reason"`` beside it.

Contract: user text is only parsed, never evaluated. Computations run in the worker
processes of ``pool.Pool``; a cost estimate (``estimate``) sends each request to the fast
or the heavy lane. The server binds to loopback unless told otherwise.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import socket
import threading
import webbrowser
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import matdiff as md
from matdiff.web import jobs
from matdiff.web.jobs import derive, finite, name_latex, parse_info, render, with_mathml
from matdiff.web.pool import Busy, Crash, Job, Pool, default_pool, run_limited

__all__ = ["EXAMPLES", "create_app", "serve", "run_limited", "parse_info", "with_mathml",
           "estimate", "name_latex", "listen"]

log = logging.getLogger("matdiff.web")

HERE = Path(__file__).parent
STATIC = {"app.js": "text/javascript", "style.css": "text/css"}
MAX_BODY = 64 * 1024  # bytes
TIMEOUT = 10.0  # CPU seconds per computation
CHEAP = 0.05  # estimated seconds up to which a request takes the fast lane

SEED = "||Z - I .* (R'*A + Q'*B)||_F^2 + ||W - [R, -Q; Q, R]*P*S'||_F^2"
SEED_LATEX = (r"\left\| Z - I\odot(H_R^TA + H_I^TB) \right\|_F^2 + \left\|W-\begin{pmatrix}"
              r" H_R & -H_I\\H_I & H_R\end{pmatrix}P_dS^T \right\|_F^2")

# The examples menu: the seed first, then a few from the public battery.
EXAMPLES: list[dict[str, Any]] = [
    {"title": "The seed: Frobenius norms, Hadamard product, block matrix",
     "expr": SEED, "wrt": ["R", "Q"]},
    {"title": "The seed, as the LaTeX of the original question",
     "expr": SEED_LATEX, "wrt": ["H_R", "H_I"], "syntax": "latex"},
    {"title": "Quadratic form", "expr": "x'*A*x", "wrt": ["x"]},
    {"title": "Least squares", "expr": "||A*x - b||_2^2", "wrt": ["x"]},
    {"title": "Trace of a product", "expr": "tr(A*X*B)", "wrt": ["X"]},
    {"title": "Log-determinant", "expr": "log(det(X))", "wrt": ["X"]},
    {"title": "Low-rank factorization", "expr": "||A - U*V'||_F^2", "wrt": ["U", "V"]},
    {"title": "Logistic loss", "expr": "sum(log(1 + exp(-y .* (X*w))))", "wrt": ["w"]},
    {"title": "Two-layer network", "expr": "||W2*tanh(W1*x) - y||_2^2", "wrt": ["W1", "W2"]},
    {"title": "Ridge regression", "expr": "||Y - X*W||_F^2 + lam*||W||_F^2", "wrt": ["W"]},
    {"title": "Gaussian negative log-likelihood (S symmetric)",
     "expr": "0.5*log(det(S)) + 0.5*(x-m)'*inv(S)*(x-m)", "wrt": ["S", "m"],
     "shapes": {"S": ["n", "n", "symmetric"]}},
    {"title": "Kronecker product", "expr": "||kron(A, X) - C||_F^2", "wrt": ["X"]},
    {"title": "Hessian-vector product of a least-squares fit", "expr": "||A*X*B - C||_F^2",
     "wrt": ["X"], "what": "hvp"},
]


# ----------------------------------------------------------------------------- schemas

MAX_ENTRIES = 1000  # entries of a symbol whose declared sizes are numbers (the check's cost)
Size = Annotated[int, Field(ge=0, le=MAX_ENTRIES)]
Dims = list[Size | str]  # a declared shape: [], [n], [m, n], optionally ending in "symmetric"


class ParseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # JSON types as the schema says
    expr: str
    shapes: dict[str, Dims] | None = None
    syntax: Literal["ascii", "latex", "unicode"] | None = None

    @field_validator("shapes")
    @classmethod
    def _numeric_sizes(cls, shapes: dict[str, Dims] | None) -> dict[str, Dims] | None:
        """At most ``MAX_ENTRIES`` entries a symbol, counting its numeric sizes: the check
        evaluates the function once per entry."""
        for name, dims in (shapes or {}).items():
            sizes = [d if isinstance(d, int) else int(d) if len(d) < 9 else MAX_ENTRIES + 1
                     for d in dims if isinstance(d, int) or re.fullmatch("[0-9]+", d)]
            if math.prod(sizes) > MAX_ENTRIES:
                raise ValueError(f"{name} would have more than {MAX_ENTRIES} entries, which "
                                 "is as many as this service checks numerically (declare "
                                 "symbolic sizes, or use the Python API)")
        return shapes


class DeriveRequest(ParseRequest):
    wrt: list[str] = Field(min_length=1)
    what: Literal["grad", "jacobian", "hessian", "differential", "hvp"] = "grad"


class RenderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    latex: str


class ErrorBody(BaseModel):
    error: str
    position: int | None
    end: int | None


class ParseAnswer(BaseModel):
    latex: str
    mathml: str
    shapes: dict[str, list[str]]


class RenderAnswer(BaseModel):
    mathml: str


class DeriveAnswer(BaseModel):
    """``md.report``'s dict (its other keys are described in docs/web.md)."""

    model_config = ConfigDict(extra="allow")
    expression: str
    what: str
    shapes: dict[str, list[str]]
    derivatives: dict[str, dict[str, Any]]


class Example(BaseModel):
    title: str
    expr: str
    wrt: list[str]
    syntax: str | None = None
    what: str | None = None
    shapes: dict[str, list[str]] | None = None


class LaneStatus(BaseModel):
    workers: int
    running: int
    queued: int


class PoolStatus(BaseModel):
    fast: LaneStatus
    heavy: LaneStatus
    demoted: int
    start_method: str


_ERRORS = {400: "bad input; position/end index the span of expr at fault",
           413: "the request body is too large", 500: "a bug in matdiff (no traceback)",
           503: "too many computations are waiting; try again", 504: "the computation "
           "ran over its time limit and was stopped"}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in _ERRORS.items()}


# ----------------------------------------------------------------------------- cost


_TOKEN = re.compile(r"\\?[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d*)?|\.?[-+*/^']|[(\[{|]")


def estimate(text: str, n_wrt: int = 0, what: str | None = None) -> float:
    """The estimated seconds of work of a request on ``text``: parsing (``what`` None)
    grows with the length; a derivative as tokens^0.8 × variables^0.7 × nesting^0.3,
    second derivatives more (a fit to 518 timed reports, off by 1.7× rms).

    >>> estimate("x'*x", 1, "grad") < CHEAP < estimate(" + ".join(["x'*A*x"] * 100), 3, "hvp")
    True
    """
    seconds = 1e-4 * len(text)
    if what is None:
        return seconds
    depth = deepest = 0
    for c in text:
        depth += (c in "([{") - (c in ")]}")
        deepest = max(deepest, depth)
    tokens = len(_TOKEN.findall(text))
    second = {"hessian": 1.3, "hvp": 1.8}.get(what, 1.0)
    return seconds + 6.6e-4 * tokens**0.8 * max(n_wrt, 1)**0.7 * (1 + deepest)**0.3 * second


# ----------------------------------------------------------------------------- responses


class SafeJSON(JSONResponse):
    """JSON that always encodes: no NaN (``finite``), and a lone surrogate in a string is
    written as its ``\\uXXXX`` escape."""

    def render(self, content: Any) -> bytes:
        text = json.dumps(finite(content), ensure_ascii=False, allow_nan=False,
                          separators=(",", ":"))
        return text.encode("utf-8", "backslashreplace")


def error(status: int, message: str, pos: int | None = None, end: int | None = None,
          headers: Mapping[str, str] | None = None) -> SafeJSON:
    """The JSON error answer, ``{"error", "position", "end"}``."""
    return SafeJSON({"error": message, "position": pos, "end": end}, status_code=status,
                    headers=headers)


_SURROGATE = re.compile("[\ud800-\udfff]")


def lone_surrogate(body: BaseModel) -> SafeJSON | None:
    """A 400 for a string of the request that holds half of a UTF-16 surrogate pair, which
    is not text; ``position`` points at it in ``expr``."""
    for key, value in body:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        found = _SURROGATE.search(text)
        if found:
            at = found.start() if key == "expr" else None
            return error(400, f"bad request: {key} holds a lone surrogate "
                              f"(U+{ord(found[0]):04X}), which is not text",
                         at, None if at is None else at + 1)
    return None


def validation_message(err: RequestValidationError) -> str:
    """The first problem of a request that does not fit its schema, in one line, with its
    place in the body (``shapes.X.0``)."""
    first = err.errors()[0]
    if first.get("type") == "json_invalid":
        return f"bad request: the body is not JSON ({first.get('ctx', {}).get('error')})"
    body = getattr(err, "body", None)
    if first.get("loc") in (("body",), ()) and isinstance(body, bytes):  # JSON unread
        return "bad request: the body must be JSON, sent as content-type: application/json"
    loc = list(first.get("loc", ()))
    where, node = ([], body) if loc[:1] == ["body"] else ([str(p) for p in loc], None)
    for step in loc[1:] if loc[:1] == ["body"] else ():  # into the body, less pydantic's tags
        if isinstance(node, dict) and step in node or isinstance(node, list) and \
                isinstance(step, int) and 0 <= step < len(node):
            node = node[step]
            where.append(str(step))
    message = str(first.get("ctx", {}).get("error") or first.get("msg", "invalid"))
    return f"bad request: {'.'.join(where) or 'body'}: {message}"


# ----------------------------------------------------------------------------- body limit


class BodyLimit:
    """ASGI middleware: a body over ``limit`` bytes gets a JSON 413 before any endpoint
    reads it; a smaller one is read whole and handed on."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = error(413, f"request body over {self.limit} bytes")
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await too_large(scope, receive, send)
            return
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client has gone
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                await too_large(scope, receive, send)
                return
        whole: list[Message] = [{"type": "http.request", "body": bytes(body),
                                 "more_body": False}]

        async def replay() -> Message:
            return whole.pop() if whole else await receive()

        await self.app(scope, replay, send)


# ----------------------------------------------------------------------------- the app


async def _disconnected(request: Request) -> None:
    """Returns when the client closes the connection (after the body was read)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def outcome_of(job: Job, request: Request) -> jobs.Outcome | None:
    """The job's outcome; None (and the job abandoned) if the client left first."""
    result = asyncio.wrap_future(job.future)
    gone: asyncio.Future[Any] = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait([result, gone], return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        job.abandon()
        raise
    finally:
        gone.cancel()
    if not result.done():
        job.abandon()
        result.cancel()
        return None
    return result.result()


def answer(outcome: jobs.Outcome | None) -> Response:
    """The HTTP answer to a job's outcome."""
    if outcome is None:
        return error(499, "the client closed the connection")
    kind, payload = outcome
    if kind == "ok":
        return SafeJSON(payload)
    if kind == "bad":
        message, pos, end = payload
        return error(400, message, pos, end)
    if payload:
        log.error("internal error: %s", payload)
    return error(500, "internal error in matdiff; please report the input that caused it")


def _handlers(app: FastAPI) -> None:
    """Every error as JSON: schema violations (400), HTTP errors, and any bug (500)."""

    async def invalid(request: Request, err: Exception) -> Response:
        assert isinstance(err, RequestValidationError)
        return error(400, validation_message(err))

    async def http(request: Request, err: Exception) -> Response:
        assert isinstance(err, HTTPException)
        message = str(err.detail)
        if isinstance(err.__cause__, RecursionError):
            message = "bad request: the JSON is nested too deeply"
        return error(err.status_code, message, headers=err.headers)

    async def bug(request: Request, err: Exception) -> Response:
        log.exception("internal error on %s", request.url.path)
        return answer(("crash", ""))

    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http)
    app.add_exception_handler(Exception, bug)


def _plain_openapi(app: FastAPI) -> None:
    """The schema without FastAPI's 422 answers: this app answers 400 instead."""
    made = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = made()
            for operations in schema.get("paths", {}).values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


Compute = Callable[[Request, Callable[..., Any], dict[str, Any], float], Awaitable[Response]]


def create_app(*, parse: Callable[..., Any] = parse_info, derive: Callable[..., Any] = derive,
               timeout: float = TIMEOUT, max_body: int = MAX_BODY, pool: Pool | None = None,
               cheap: float = CHEAP) -> FastAPI:
    """The FastAPI app. ``parse`` and ``derive`` are what the endpoints run (tests swap them;
    they must be module-level functions, which a worker process can import); ``pool``
    defaults to the process-wide pool, closed at exit; requests estimated to take up to
    ``cheap`` seconds take its fast lane.

    >>> sorted(r.path for r in create_app().routes if r.path.startswith("/api"))
    ['/api/derive', '/api/examples', '/api/parse', '/api/render', '/api/status']
    """
    workers = pool or default_pool()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.get_running_loop().run_in_executor(None, workers.start)
        yield

    app = FastAPI(title="matdiff", version=md.__version__, docs_url=None, redoc_url=None,
                  default_response_class=SafeJSON, lifespan=lifespan)
    app.add_middleware(BodyLimit, limit=max_body)
    _handlers(app)
    _plain_openapi(app)

    async def compute(request: Request, fn: Callable[..., Any], kwargs: dict[str, Any],
                      cost: float) -> Response:
        try:
            job = workers.submit(fn, kwargs, heavy=cost > cheap, timeout=timeout)
            outcome = await outcome_of(job, request)
        except Busy as err:
            return error(503, f"the server is busy ({err}); try again in a few seconds",
                         headers={"Retry-After": "5"})
        except TimeoutError:
            return error(504, f"the computation took longer than {timeout:g} s and was "
                              "stopped; try a smaller expression or declare the shapes")
        except Crash as err:
            return answer(("crash", str(err)))
        return answer(outcome)

    _routes(app, compute, parse, derive, workers)
    return app


def _routes(app: FastAPI, compute: Compute, parse: Callable[..., Any],
            derive: Callable[..., Any], pool: Pool) -> None:
    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(HERE / "index.html", media_type="text/html")

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in STATIC:
            return error(404, "not found")
        return FileResponse(HERE / name, media_type=STATIC[name])

    @app.get("/api/examples", response_model=list[Example])
    def examples() -> Response:
        return SafeJSON(EXAMPLES)

    @app.get("/api/status", response_model=PoolStatus)
    def status() -> Response:
        return SafeJSON(pool.stats())

    @app.post("/api/parse", response_model=ParseAnswer, responses=ERROR_RESPONSES)
    async def parse_endpoint(body: ParseRequest, request: Request) -> Response:
        kwargs = {"expr": body.expr, "shapes": _shapes(body.shapes), "syntax": body.syntax}
        return lone_surrogate(body) or await compute(request, parse, kwargs,
                                                     estimate(body.expr))

    @app.post("/api/render", response_model=RenderAnswer, responses=ERROR_RESPONSES)
    async def render_endpoint(body: RenderRequest, request: Request) -> Response:
        return lone_surrogate(body) or await compute(request, render, {"latex": body.latex},
                                                     estimate(body.latex) / 10)

    @app.post("/api/derive", response_model=DeriveAnswer, responses=ERROR_RESPONSES)
    async def derive_endpoint(body: DeriveRequest, request: Request,
                              mathml: bool = False) -> Response:
        kwargs = {"expr": body.expr, "wrt": body.wrt, "shapes": _shapes(body.shapes),
                  "syntax": body.syntax, "what": body.what}
        cost = estimate(body.expr, len(body.wrt), body.what)
        job = {"fn": derive, "kwargs": kwargs, "mathml": mathml}
        return lone_surrogate(body) or await compute(request, jobs.presented, job, cost)


def _shapes(shapes: dict[str, Dims] | None) -> dict[str, list[str]] | None:
    return None if shapes is None else {k: [str(d) for d in v] for k, v in shapes.items()}


# ----------------------------------------------------------------------------- serve


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``; a clear ``MatdiffError`` if it cannot be.

    >>> listen("127.0.0.1", 99999)
    Traceback (most recent call last):
    ...
    matdiff.opspec.MatdiffError: port 99999 is not a port number (0 to 65535)
    """
    if not 0 <= port <= 65535:
        raise md.MatdiffError(f"port {port} is not a port number (0 to 65535)")
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as err:
        raise md.MatdiffError(f"cannot listen on {host!r}: {err.strerror or err}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        busy = " (another program, or another matdiff serve, uses it); pick another " \
            "with --port" if err.errno in (98, 48, 10048) else ""
        raise md.MatdiffError(f"cannot listen on {host}:{port}: "
                              f"{err.strerror or err}{busy}") from None
    return sock


def serve(host: str = "127.0.0.1", port: int = 8000, open_browser: bool = False, *,
          workers: int | None = None, timeout: float = TIMEOUT) -> None:
    """Serve the page on ``host:port`` until interrupted (``matdiff serve``); ``workers``
    is the size of the heavy lane (default: the cores, at most 4)."""
    sock = listen(host, port)
    port = sock.getsockname()[1]
    url = f"http://{'localhost' if host in ('127.0.0.1', '::1') else host}:{port}/"
    pool = Pool(heavy=workers)
    app = create_app(pool=pool, timeout=timeout)
    if open_browser:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()  # once the server is up
    print(f"matdiff serving on {url} (Ctrl+C stops it)", flush=True)
    if host not in ("127.0.0.1", "::1", "localhost"):
        print(f"warning: bound to {host}, so other machines may reach this server")
    try:
        uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
    finally:
        pool.close()
        sock.close()
