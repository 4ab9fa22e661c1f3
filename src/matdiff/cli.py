"""The ``matdiff`` command: a thin shell over the public API.

``matdiff grad EXPR --wrt X [--wrt Y] [--shape A=m,n] [--format text|unicode|latex|json]``.

Exit status: 0 when the result is printed and its check is OK or inconclusive (the reason
is printed), 1 when the numerical check finds a MISMATCH, 2 for every error: bad input
(the message, the expression and a caret go to stderr), a bad or busy port, or a
computation matdiff refuses. No traceback reaches the terminal.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import sys
from collections.abc import Sequence
from typing import Any

from . import api
from .expr import MatdiffError

__all__ = ["main", "parse_shape_option", "EXIT_OK", "EXIT_MISMATCH", "EXIT_ERROR"]

EXIT_OK, EXIT_MISMATCH, EXIT_ERROR = 0, 1, 2


def parse_shape_option(spec: str) -> tuple[str, list[str]]:
    """``A=m,n`` → ``("A", ["m", "n"])``; ``x=n``; ``lam=`` (scalar); ``S=n,n,sym``;
    ``A=2x3`` also reads as ``A=2,3``.

    >>> parse_shape_option("S=n,n,sym"), parse_shape_option("A=2x3")
    (('S', ['n', 'n', 'sym']), ('A', ['2', '3']))
    """
    name, eq, dims = spec.partition("=")
    if not eq or not name.strip():
        raise MatdiffError(f"--shape takes NAME=d1,d2 (got {spec!r})")
    separator = "x" if re.fullmatch(r"\s*[A-Za-z0-9]+(\s*x\s*[A-Za-z0-9]+)+\s*", dims) else ","
    return name.strip(), [d.strip() for d in dims.split(separator) if d.strip()]


_KINDS = {
    "grad": "gradient of a scalar expression",
    "differential": "differential dF, linear in dX",
    "jacobian": "Jacobian d vec(F)/d vec(X)' in closed (Kronecker) form",
    "hessian": "Hessian d vec(grad f)/d vec(X)' of a scalar expression",
    "hvp": "Hessian applied to a direction V with X's shape",
}

_LHS = {  # what → (text, unicode, latex) left-hand sides, {x} the variable
    "grad": ("df/d{x}", "∂f/∂{x}", "\\frac{{\\partial f}}{{\\partial {x}}}"),
    "differential": ("d_{x} f", "d_{x} f", "d_{{{x}}} f"),
    "jacobian": ("d vec(f)/d vec({x})'", "∂vec(f)/∂vec({x})ᵀ",
                 "\\frac{{\\partial \\operatorname{{vec}} f}}"
                 "{{\\partial \\operatorname{{vec}}({x})^{{T}}}}"),
    "hessian": ("H_{x}", "H_{x}", "H_{{{x}}}"),
    "hvp": ("H_{x}*{v}", "H_{x}{v}", "H_{{{x}}} {v}"),
    "block": ("d2f/dvec({x})dvec({y})'", "∂²f/∂vec({x})∂vec({y})ᵀ",
              "\\frac{{\\partial^2 f}}{{\\partial \\operatorname{{vec}}({x}) "
              "\\partial \\operatorname{{vec}}({y})^{{T}}}}"),
}


def _port(text: str) -> int:
    """A TCP port number, 1..65535 (argparse reports anything else with exit 2)."""
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1 to 65535)")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="matdiff", description="Symbolic matrix calculus.")
    sub = p.add_subparsers(dest="command", required=True)
    for what, text in _KINDS.items():
        g = sub.add_parser(what, help=text)
        g.add_argument("expr", help="the expression, ASCII or LaTeX")
        g.add_argument("--wrt", action="append", default=[], metavar="X",
                       help="variable (repeat for several; default: all)")
        g.add_argument("--shape", action="append", default=[], metavar="NAME=d1,d2",
                       help="declare a shape: A=m,n  x=n  lam=  S=n,n,sym")
        g.add_argument("--format", default="unicode",
                       choices=["text", "unicode", "latex", "json", "numpy", "jax", "torch"])
        g.add_argument("--syntax", choices=["ascii", "latex"], default=None)
        g.add_argument("--no-check", action="store_true", help="skip the numerical check")
        g.add_argument("--steps", action="store_true",
                       help="show the derivation step by step (grad)")
    s = sub.add_parser("serve", help="the local web page")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=_port, default=8000)
    s.add_argument("--open", action="store_true", help="open a browser")
    return p


def _grad(args: argparse.Namespace) -> int:
    shapes = dict(parse_shape_option(s) for s in args.shape)
    what = args.command
    if args.format in ("numpy", "jax", "torch"):
        from .codegen import codegen  # noqa: PLC0415 - only this format needs it

        f = api.parse(args.expr, shapes, args.syntax)
        names = args.wrt or list(api.shapes_of(f))
        derivs = api.grad(f, names, shapes=shapes) if what == "grad" else \
            {n: getattr(api, what)(f, n, shapes=shapes) for n in names}
        assert isinstance(derivs, dict)
        print(codegen([f, *derivs.values()], backend=args.format, name=f"f_and_{what}"))
        return EXIT_OK
    rep = api.report(args.expr, args.wrt or None, shapes, args.syntax, what=what,
                     verify=not args.no_check, steps=args.steps and what == "grad")
    if args.format == "json":
        print(json.dumps(rep, indent=2, allow_nan=False))
    else:
        print(_format_report(rep, args.format))
    checks = [*rep.get("check", {}).values(),
              *(b["check"] for b in rep.get("blocks", []) if "check" in b)]
    return EXIT_MISMATCH if any(c["verdict"] == "mismatch" for c in checks) else EXIT_OK


def _lhs(what: str, style: str, x: str, v: str = "V", y: str = "") -> str:
    return _LHS[what][("text", "unicode", "latex").index(style)].format(x=x, v=v, y=y)


def _check_line(label: str, c: dict[str, Any]) -> str:
    if c["verdict"] == "inconclusive":
        return f"  {label}: inconclusive here ({c['reason']}): {c['detail']}"
    error = c["max_rel_error"]
    shown = f"max relative error {error:.1e}" if error is not None else "no finite error"
    tail = f" ({c['detail']})" if c.get("detail") else ""
    return f"  {label}: {shown}  {'OK' if c['verdict'] == 'ok' else 'MISMATCH'}{tail}"


def _format_report(rep: dict[str, Any], style: str) -> str:
    shown_f = rep[{"text": "expression", "unicode": "expression_unicode",
                   "latex": "expression_latex"}[style]]
    lines = [f"f = {shown_f}", "", "shapes:"]
    for name, dims in rep["shapes"].items():
        sizes = [d for d in dims if not d.isalpha() or d not in _STRUCTURES]
        shown = "×".join(sizes) or "scalar"
        shown = shown.replace("×", "x") if style == "text" else shown.replace("*", "")
        extra = "".join(f" ({d})" for d in dims if d in _STRUCTURES)
        lines.append(f"  {name}: {shown}{extra}")
    lines.append("")
    what = rep.get("what", "grad")
    for name, d in rep["derivatives"].items():
        lhs = _lhs(what, style, name, rep.get("directions", {}).get(name, "V"))
        lines.append(f"{lhs} = {d.get('named', d)[style]}")
    for b in rep.get("blocks", []):
        lines.append(f"{_lhs('block', style, b['rows'], y=b['cols'])} = {b[style]}")
    for i, part in enumerate(rep.get("where", [])):  # the named parts the lines above use
        lines.append(f"  {'where' if i == 0 else '     '} {part['name']} = {part[style]}")
    if rep.get("steps"):
        lines += ["", "derivation:"]
        width = max(len(s[style]) for s in rep["steps"])
        lines += [f"  {s[style].ljust(width)}   [{s['rule']}]" for s in rep["steps"]]
    for note in rep.get("notes", []):
        lines.append(f"note: {note}")
    if "check" in rep:
        at = ", ".join(f"{k}={v}" for k, v in rep["check_sizes"].items())
        lines += ["", f"check: finite differences at random points ({at})"]
        lines += [_check_line(f"d/d{name}", c) for name, c in rep["check"].items()]
        lines += [_check_line(f"d²/d{b['rows']}d{b['cols']}", b["check"])
                  for b in rep.get("blocks", []) if "check" in b]
        lines += [f"  {note}" for note in rep.get("check_notes", [])]
    return "\n".join(lines)


_STRUCTURES = ("symmetric", "spd", "pos", "diagonal")


def _port_is_free(host: str, port: int) -> None:
    """A clear message when ``host:port`` cannot be bound (busy, not allowed, bad host)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as err:
        raise MatdiffError(f"cannot serve on host {host!r}: {err}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as err:
            busy = "is already in use" if err.errno in (98, 48, 10048) else \
                f"cannot be used ({err.strerror or err})"
            raise MatdiffError(f"port {port} on {host} {busy}; choose another with "
                               "--port") from None


def _serve(args: argparse.Namespace) -> int:
    _port_is_free(args.host, args.port)
    try:
        from .web.app import serve  # noqa: PLC0415 - the web extra is optional
    except ImportError as err:
        raise MatdiffError("the web page needs the 'web' extra: pip install 'matdiff[web]' "
                           f"({err})") from None
    serve(args.host, args.port, args.open)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status: 0 ok (a check that is inconclusive
    included), 1 a check found a mismatch, 2 an error (argparse exits 2 itself)."""
    args = _parser().parse_args(argv)
    try:
        if args.command in _KINDS:
            return _grad(args)
        return _serve(args)
    except MatdiffError as err:
        if err.text is None:
            err.text = getattr(args, "expr", None)
        print(err.render(), file=sys.stderr)
    except RecursionError:
        print("error: the expression is nested too deeply", file=sys.stderr)
    except Exception as err:  # noqa: BLE001 - a bug: a message, not a traceback
        print(f"error: internal error in matdiff ({type(err).__name__}: {err}); please "
              "report the command that caused it", file=sys.stderr)
    return EXIT_ERROR
