"""The local web page and its JSON API: a thin shell over ``md.parse`` and ``md.report``.

Input: JSON requests from the page (``index.html``, ``app.js``, ``style.css`` beside this
module) or any other client. Output: JSON.

========================== =================================================================
``GET /``                  the page; ``GET /static/{app.js,style.css}`` its two other files
``GET /api/examples``      the examples menu, the seed first
``POST /api/parse``        ``{"expr", "shapes"?, "syntax"?}`` -> ``{"latex", "mathml",
                           "shapes"}``: the input typeset and the inferred shape of each symbol
``POST /api/render``       ``{"latex"}`` -> ``{"mathml"}``
``POST /api/derive``       ``{"expr", "wrt", "shapes"?, "syntax"?, "what"?}`` -> exactly the
                           JSON of ``matdiff grad --format json``; with ``?mathml=1`` every
                           ``"latex"`` string in it gets a ``"mathml"`` sibling
========================== =================================================================

Errors are JSON ``{"error", "position", "end"}``: 400 for bad input (``position``/``end``
index the offending span of ``expr`` in code points), 413 for a body over ``max_body``
bytes, 504 for a computation over ``timeout`` seconds, 500 (no traceback) for a bug.

Contract: user text is only parsed, never evaluated. Each computation on it runs in a
child process that is killed at the time limit, so a runaway derivation cannot stall the
server. The server binds to loopback unless told otherwise.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import re
import threading
import traceback
import webbrowser
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Literal, TypeVar

import anyio
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from latex2mathml.converter import convert as latex_to_mathml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

import matdiff as md
from matdiff.expr import Expr, free_symbols

__all__ = ["EXAMPLES", "create_app", "serve", "run_limited", "parse_info", "with_mathml"]

log = logging.getLogger("matdiff.web")

HERE = Path(__file__).parent
STATIC = {"app.js": "text/javascript", "style.css": "text/css"}
MAX_BODY = 64 * 1024  # bytes
TIMEOUT = 10.0  # seconds per computation
WORKERS = 4  # computations at once; more wait their turn

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
    {"title": "Kronecker product", "expr": "||kron(A, X) - C||_F^2",
     "wrt": ["X"]},
]


# ----------------------------------------------------------------------------- requests


class ParseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expr: str
    shapes: dict[str, list[str | int]] | None = None
    syntax: Literal["ascii", "latex"] | None = None


class DeriveRequest(ParseRequest):
    wrt: list[str] = Field(min_length=1)
    what: Literal["grad", "jacobian", "hessian", "differential"] = "grad"


class RenderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    latex: str


_Body = TypeVar("_Body", bound=BaseModel)  # the request model an endpoint validates


def _shapes(shapes: dict[str, list[str | int]] | None) -> dict[str, list[str]] | None:
    return None if shapes is None else {k: [str(d) for d in v] for k, v in shapes.items()}


# ----------------------------------------------------------------------------- computations


def shape_of(x: Expr) -> list[str]:
    """A symbol's shape as ``shapes`` takes it: ``[]``, ``[n]``, ``[m, n]`` (+ structure).

    >>> from matdiff.expr import sym
    >>> shape_of(sym("S", ("n", "n"), "symmetric")), shape_of(sym("x", ("n", 1)))
    (['n', 'n', 'symmetric'], ['n'])
    """
    dims = [] if x.is_scalar else [x.rows] if x.is_vector else [x.rows, x.cols]
    return [d.format() for d in dims] + (["symmetric"] if x.symmetric else [])


def parse_info(expr: str, shapes: dict[str, list[str]] | None = None,
               syntax: str | None = None) -> dict[str, Any]:
    """The input typeset (LaTeX; MathML of ``f = ...``) and the inferred shape of each of its
    symbols."""
    e = md.parse(expr, shapes=shapes, syntax=syntax)
    latex = md.printing.to_latex(e)
    return {"latex": latex, "mathml": latex_to_mathml(equation("f =", latex, width=45)),
            "shapes": {name: shape_of(s) for name, s in free_symbols(e).items()}}


def render(latex: str) -> dict[str, str]:
    """LaTeX to MathML, which browsers typeset natively.

    >>> render("x^2")["mathml"].count("<msup>")
    1
    """
    try:
        return {"mathml": latex_to_mathml(latex)}
    except Exception as err:  # the converter raises many kinds; all mean "bad LaTeX"
        raise md.MatdiffError(f"cannot typeset this LaTeX ({type(err).__name__})") from err


def name_latex(name: str) -> str:
    """A symbol's name as LaTeX: ``H_R`` -> ``H_{R}``, ``lam`` -> ``\\lambda``.

    >>> name_latex("H_R"), name_latex("W1"), name_latex("lam"), name_latex("a{b")
    ('H_{R}', 'W1', '\\\\lambda', '\\\\mathrm{a\\\\{b}')
    """
    greek = {"lam": "lambda", "lambda": "lambda", "alpha": "alpha", "beta": "beta",
             "gamma": "gamma", "mu": "mu", "sigma": "sigma", "theta": "theta"}
    if name in greek:
        return "\\" + greek[name]
    m = re.fullmatch(r"([A-Za-z][A-Za-z0-9]*)(?:_([A-Za-z0-9]+))?", name)
    if m is None:
        return "\\mathrm{" + re.sub(r"([\\{}_^$&#%~])", r"\\\1", name) + "}"
    return m[1] + (f"_{{{m[2]}}}" if m[2] else "")


def with_mathml(obj: Any) -> Any:
    """A copy of a report where each dict with a ``"latex"`` string gains ``"mathml"``.

    A derivative's MathML is the whole equation ``∂f/∂X = ...``.

    >>> with_mathml({"derivatives": {"x": {"latex": "2x"}}})["derivatives"]["x"]["mathml"][:5]
    '<math'
    """
    if isinstance(obj, list):
        return [with_mathml(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    out = {k: with_mathml(v) for k, v in obj.items()}
    if isinstance(out.get("latex"), str):
        out["mathml"] = render(out["latex"])["mathml"]
    if isinstance(out.get("derivatives"), dict):
        for name, d in out["derivatives"].items():
            if isinstance(d, dict) and isinstance(d.get("latex"), str):
                lhs = f"\\frac{{\\partial f}}{{\\partial {name_latex(name)}}} ="
                named = d.get("named") if out.get("where") else None
                body = named["latex"] if isinstance(named, dict) else d["latex"]
                d["mathml"] = render(equation(lhs, body))["mathml"]  # over the named parts
    return out


def top_level_terms(latex: str) -> list[str]:
    r"""``latex`` cut before each ``+``/``-`` that is outside braces, ``\left..\right``
    and environments (and is not a sign after an operator).

    >>> top_level_terms("-2 a + {b - c} - d^{-1}")
    ['-2 a ', '+ {b - c} ', '- d^{-1}']
    >>> len(top_level_terms(r"\left( a - b \right) \begin{bmatrix} a & -b \end{bmatrix}"))
    1
    """
    terms, depth, start, i = [], 0, 0, 0
    while i < len(latex):
        m = re.match(r"\\(left|right|begin|end)(?![A-Za-z])|\\([A-Za-z]+|.)", latex[i:])
        if m:
            depth += {"left": 1, "begin": 1, "right": -1, "end": -1}.get(m[1] or "", 0)
            i += len(m[0])
            continue
        c = latex[i]
        depth += {"{": 1, "}": -1}.get(c, 0)
        before = latex[start:i].rstrip()
        if depth == 0 and c in "+-" and before and before[-1] not in "+-=(,&":
            terms.append(latex[start:i])
            start = i
        i += 1
    return terms + [latex[start:]]


def equation(lhs: str, rhs: str, width: int = 70) -> str:
    r"""``lhs rhs`` as LaTeX, broken before top-level terms into lines of about ``width``
    characters of LaTeX, since MathML renderers do not break long formulas.

    >>> print(equation("y =", "a + b"))
    y = a + b
    >>> print(equation("y =", "a + b - c", width=6))
    \begin{array}{rl} y = & a + b \\ & - c \end{array}
    """
    if len(rhs) <= width:
        return f"{lhs} {rhs}"
    lines: list[str] = []
    for term in top_level_terms(rhs):
        if lines and len(lines[-1]) + len(term) <= width:
            lines[-1] += term
        else:
            lines.append(term)
    body = " \\\\ & ".join(line.strip() for line in lines)
    return f"\\begin{{array}}{{rl}} {lhs} & {body} \\end{{array}}"


def derive(expr: str, wrt: list[str], shapes: dict[str, list[str]] | None = None,
           syntax: str | None = None, what: str = "grad") -> dict[str, Any]:
    """``md.report``, the JSON of ``matdiff grad --format json``."""
    return md.report(expr, wrt, shapes=shapes, syntax=syntax, what=what)


# ----------------------------------------------------------------------------- time limit

_FORK = (multiprocessing.get_context("fork")
         if "fork" in multiprocessing.get_all_start_methods() else None)


class Crash(RuntimeError):
    """A computation failed for a reason other than bad input (a bug, or a dead worker)."""


def _child(conn: Connection, fn: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    try:
        conn.send(("ok", fn(**kwargs)))
    except md.MatdiffError as err:
        conn.send(("bad", (err.message, err.pos, err.end)))
    except BaseException as err:  # noqa: B036 -- reported to the parent, which answers 500
        conn.send(("crash", f"{type(err).__name__}: {err}\n{traceback.format_exc()}"))
    finally:
        conn.close()


def _unpack(kind: str, payload: Any) -> Any:
    if kind == "bad":
        message, pos, end = payload
        raise md.MatdiffError(message, pos=pos, end=end)
    if kind == "crash":
        raise Crash(payload)
    return payload


def run_limited(fn: Callable[..., Any], kwargs: dict[str, Any], timeout: float) -> Any:
    """``fn(**kwargs)`` in a child process that is killed after ``timeout`` seconds.

    Raises ``TimeoutError`` then, ``MatdiffError`` for bad input and ``Crash`` otherwise.
    Where processes cannot fork, a thread runs it (and is abandoned on timeout).

    >>> run_limited(render, {"latex": "x^2"}, timeout=5)["mathml"].count("<msup>")
    1
    """
    if _FORK is None:  # pragma: no cover -- Windows
        pool = ThreadPoolExecutor(1)
        future = pool.submit(lambda: _catch(fn, kwargs))
        pool.shutdown(wait=False)
        try:
            return _unpack(*future.result(timeout=timeout))
        except FutureTimeout:
            raise TimeoutError from None
    receive, send = _FORK.Pipe(duplex=False)
    child = _FORK.Process(target=_child, args=(send, fn, kwargs), daemon=True)
    child.start()
    send.close()
    try:
        if not receive.poll(timeout):
            raise TimeoutError
        try:
            kind, payload = receive.recv()
        except EOFError:
            raise Crash(f"worker process died (exit code {child.exitcode})") from None
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receive.close()
    return _unpack(kind, payload)


def _catch(fn: Callable[..., Any], kwargs: dict[str, Any]) -> tuple[str, Any]:
    try:
        return ("ok", fn(**kwargs))
    except md.MatdiffError as err:
        return ("bad", (err.message, err.pos, err.end))
    except Exception as err:
        return ("crash", f"{type(err).__name__}: {err}")


# ----------------------------------------------------------------------------- the app


def _error(status: int, message: str, pos: int | None = None,
           end: int | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "position": pos, "end": end}, status_code=status)


class _TooLarge(Exception):
    pass


async def _read_json(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _TooLarge
    return json.loads(body)


def create_app(*, parse: Callable[..., Any] = parse_info, derive: Callable[..., Any] = derive,
               timeout: float = TIMEOUT, max_body: int = MAX_BODY) -> FastAPI:
    """The FastAPI app. ``parse`` and ``derive`` are what the endpoints run (tests swap them).

    >>> sorted(r.path for r in create_app().routes if r.path.startswith("/api"))
    ['/api/derive', '/api/examples', '/api/parse', '/api/render']
    """
    app = FastAPI(title="matdiff", docs_url=None, redoc_url=None, openapi_url=None)
    limiter = anyio.CapacityLimiter(WORKERS)

    async def compute(request: Request, model: type[_Body],
                      run: Callable[[_Body], tuple[Callable[..., Any], dict[str, Any]]]
                      ) -> Response:
        try:
            body = model.model_validate(await _read_json(request, max_body))
            fn, kwargs = run(body)
            result = await anyio.to_thread.run_sync(
                lambda: run_limited(fn, kwargs, timeout), limiter=limiter)
        except _TooLarge:
            return _error(413, f"request body over {max_body} bytes")
        except (ValueError, ValidationError) as err:
            if isinstance(err, md.MatdiffError):
                return _error(400, err.message, err.pos, err.end)
            if isinstance(err, ValidationError):
                first = err.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                return _error(400, f"bad request: {where}: {first['msg']}")
            return _error(400, "bad request: the body is not JSON")
        except TimeoutError:
            return _error(504, f"the computation took longer than {timeout:g} s and was stopped;"
                               " try a smaller expression or declare the shapes")
        except Exception as err:
            log.error("internal error on %s: %s", request.url.path, err)
            return _error(500, "internal error in matdiff; please report the input that "
                               "caused it")
        return JSONResponse(result)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(HERE / "index.html", media_type="text/html")

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in STATIC:
            return _error(404, "not found")
        return FileResponse(HERE / name, media_type=STATIC[name])

    @app.get("/api/examples")
    def examples() -> list[dict[str, Any]]:
        return EXAMPLES

    @app.post("/api/parse")
    async def parse_endpoint(request: Request) -> Response:
        return await compute(request, ParseRequest, lambda b: (parse, {
            "expr": b.expr, "shapes": _shapes(b.shapes), "syntax": b.syntax}))

    @app.post("/api/render")
    async def render_endpoint(request: Request) -> Response:
        return await compute(request, RenderRequest, lambda b: (render, {"latex": b.latex}))

    @app.post("/api/derive")
    async def derive_endpoint(request: Request, mathml: bool = False) -> Response:
        def job(b: DeriveRequest) -> tuple[Callable[..., Any], dict[str, Any]]:
            kwargs = {"expr": b.expr, "wrt": b.wrt, "shapes": _shapes(b.shapes),
                      "syntax": b.syntax, "what": b.what}
            if not mathml:
                return derive, kwargs
            return (lambda **kw: with_mathml(derive(**kw))), kwargs
        return await compute(request, DeriveRequest, job)

    return app


def serve(host: str = "127.0.0.1", port: int = 8000, open_browser: bool = False) -> None:
    """Serve the page on ``host:port`` until interrupted (``matdiff serve``)."""
    url = f"http://{'localhost' if host in ('127.0.0.1', '::1') else host}:{port}/"
    if open_browser:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()  # once the server is up
    print(f"matdiff serving on {url} (Ctrl+C stops it)")
    if host not in ("127.0.0.1", "::1", "localhost"):
        print(f"warning: bound to {host}, so other machines may reach this server")
    uvicorn.run(create_app(), host=host, port=port, log_level="warning")
