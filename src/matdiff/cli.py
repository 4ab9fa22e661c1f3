"""The ``matdiff`` command: a thin shell over the public API.

``matdiff grad EXPR --wrt X [--wrt Y] [--shape A=m,n] [--format text|unicode|latex|json]``.
EXPR may start with ``-`` (``matdiff grad "-x'*A*x"``); ``-`` reads it from standard input and
``--file F`` from a file, so a long expression passes no limit of the command line.
``--format json`` follows ``docs/cli-json.schema.json``. ``matdiff --version`` prints the
version. Any bad input prints the message, the expression and a caret to stderr and exits 2.

Exit status: 0 when the result is printed and its check is OK or inconclusive (the reason
is printed), 1 when the numerical check finds a MISMATCH, 2 for every error: bad input
(the message, the expression and a caret go to stderr), a bad or busy port, or a
computation matdiff refuses. No traceback reaches the terminal.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import __version__, api
from .explain import render_steps
from .expr import MatdiffError
from .solve import load_data, solve_spec

__all__ = ["main", "parse_shape_option", "read_expression", "protect_dash_expressions",
           "EXIT_OK", "EXIT_MISMATCH", "EXIT_ERROR"]

EXIT_OK, EXIT_MISMATCH, EXIT_ERROR = 0, 1, 2
_STRUCTURES = ("symmetric", "spd", "pos", "diagonal", "complex")


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
    "jacobian_conj": ("d vec(f)/d vec(conj({x}))'", "∂vec(f)/∂vec({x}\u0304)ᵀ",
                      "\\frac{{\\partial \\operatorname{{vec}} f}}"
                      "{{\\partial \\operatorname{{vec}}(\\bar{{{x}}})^{{T}}}}"),
    "hessian": ("H_{x}", "H_{x}", "H_{{{x}}}"),
    "hessian_conj": ("d vec(grad f)/d vec(conj({x}))'", "∂vec(∇f)/∂vec({x}\u0304)ᵀ",
                     "\\frac{{\\partial \\operatorname{{vec}} \\nabla f}}"
                     "{{\\partial \\operatorname{{vec}}(\\bar{{{x}}})^{{T}}}}"),
    "hvp": ("H_{x}*{v}", "H_{x}{v}", "H_{{{x}}} {v}"),
    "block_conj": ("d2f/dvec({x})dvec(conj({y}))'", "∂²f/∂vec({x})∂vec({y}\u0304)ᵀ",
                   "\\frac{{\\partial^2 f}}{{\\partial \\operatorname{{vec}}({x}) "
                   "\\partial \\operatorname{{vec}}(\\bar{{{y}}})^{{T}}}}"),
    "block": ("d2f/dvec({x})dvec({y})'", "∂²f/∂vec({x})∂vec({y})ᵀ",
              "\\frac{{\\partial^2 f}}{{\\partial \\operatorname{{vec}}({x}) "
              "\\partial \\operatorname{{vec}}({y})^{{T}}}}"),
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="matdiff", description="Symbolic matrix calculus.")
    p.add_argument("--version", action="version", version=f"matdiff {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for what, text in _KINDS.items():
        g = sub.add_parser(what, help=text)
        g.add_argument("expr", nargs="?", help="the expression, ASCII or LaTeX; - reads it "
                       "from standard input")
        g.add_argument("--file", metavar="F", help="read the expression from the file F")
        g.add_argument("--wrt", action="append", default=[], metavar="X",
                       help="variable (repeat for several; default: all)")
        g.add_argument("--shape", action="append", default=[], metavar="NAME=d1,d2",
                       help="declare a shape: A=m,n  x=n  lam=  S=n,n,sym")
        g.add_argument("--format", default="unicode",
                       choices=["text", "unicode", "latex", "json", "numpy", "jax", "torch"])
        g.add_argument("--syntax", choices=["ascii", "latex", "unicode"], default=None)
        g.add_argument("--no-check", action="store_true", help="skip the numerical check")
        g.add_argument("--steps", action="store_true",
                       help="show the derivation step by step (grad)")
    _solve_parser(sub)
    s = sub.add_parser("serve", help="the local web page")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=_number(1, 65535, "port number"), default=8000)
    s.add_argument("--open", action="store_true", help="open a browser")
    s.add_argument("--workers", type=_number(1, 64, "worker count"), default=None,
                   help="processes for heavy computations (default: the cores, at most 4)")
    s.add_argument("--timeout", type=_number(1, 3600, "time limit"), default=10,
                   help="CPU seconds a computation may take (default 10)")
    return p


def read_expression(args: argparse.Namespace) -> str:
    """The expression of a command: its argument, standard input for ``-``, or ``--file``
    (trailing line ends dropped).

    >>> read_expression(argparse.Namespace(expr="x'*A*x", file=None))
    "x'*A*x"
    """
    if args.file is not None and args.expr is not None:
        raise MatdiffError(f"give the expression or --file, not both (got {args.expr!r} "
                           f"and --file {args.file})")
    if args.file is not None:
        try:
            with open(args.file, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as err:
            raise MatdiffError(f"cannot read --file {args.file}: "
                               f"{getattr(err, 'strerror', None) or err}") from None
    elif args.expr == "-":
        text = sys.stdin.read()
    elif args.expr is None:
        raise MatdiffError("no expression: give it as an argument, - to read it from "
                           "standard input, or --file F")
    else:
        text = args.expr
    return text.rstrip("\r\n")


def protect_dash_expressions(parser: argparse.ArgumentParser,
                             argv: Sequence[str]) -> tuple[list[str], set[str]]:
    """``argv`` with each word that starts with ``-`` but is no option (``-x'*A*x``,
    ``-2*x``) marked by a leading space, which argparse takes for a positional argument;
    and the marked words, to unmark after parsing.

    >>> protect_dash_expressions(_parser(), ["grad", "--wrt", "x", "-x'*A*x"])[0]
    ['grad', '--wrt', 'x', " -x'*A*x"]
    """
    options = {o for a in _all_actions(parser) for o in a.option_strings}
    out, marked = [], set()
    for i, word in enumerate(argv):
        if "--" in argv[:i] or word in ("-", "--") or word in options \
                or not word.startswith("-") or re.fullmatch(r"--[A-Za-z][\w-]*(=.*)?", word):
            out.append(word)
        else:
            out.append(" " + word)
            marked.add(" " + word)
    return out, marked


def _all_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    actions = list(parser._actions)
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            for sub in a.choices.values():
                actions += _all_actions(sub)
    return actions


def _grad(args: argparse.Namespace) -> int:
    args.expr = read_expression(args)
    shapes = dict(parse_shape_option(s) for s in args.shape)
    what = args.command
    if args.format in ("numpy", "jax", "torch"):
        from .codegen import codegen  # noqa: PLC0415 - only this format needs it

        reading = api.parse_with_notes(args.expr, shapes, args.syntax,
                                       scalar=what in ("grad", "hessian", "hvp"))
        f = reading.expr
        for note in [*reading.notes, *api.unused_declarations(f, shapes, args.wrt)]:
            print(f"note: {note}", file=sys.stderr)
        names = args.wrt or list(api.shapes_of(f))
        derivs = api.grad(f, names, shapes=shapes) if what == "grad" else \
            {n: getattr(api, what)(f, n, shapes=shapes) for n in names}
        assert isinstance(derivs, dict)
        outputs = [e for d in derivs.values() for e in (d if isinstance(d, tuple) else (d,))]
        print(codegen([f, *outputs], backend=args.format, name=f"f_and_{what}"))
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
        if "conjugate" in d:               # not holomorphic: the Wirtinger pair (J, J̄)
            lines.append(f"{_lhs(what + '_conj', style, name)} = {d['conjugate'][style]}")
    for b in rep.get("blocks", []):
        lines.append(f"{_lhs('block', style, b['rows'], y=b['cols'])} = {b[style]}")
        if "conjugate" in b:               # ∂vec ∇_A f/∂vec B̄ᵀ, the pair's second half
            lines.append(f"{_lhs('block_conj', style, b['rows'], y=b['cols'])} = "
                         f"{b['conjugate'][style]}")
    for i, part in enumerate(rep.get("where", [])):  # the named parts the lines above use
        name = part.get("lhs", {}).get(style, part["name"])   # UΣVᵀ, a factorization
        lines.append(f"  {'where' if i == 0 else '     '} {name} = {part[style]}")
    if rep.get("steps"):
        lines += ["", "derivation:", *render_steps(rep["steps"], style, margin="  ")]
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


def _solve_parser(sub: Any) -> None:
    s = sub.add_parser("solve", help="solve an optimisation problem written in a file "
                       "(parameters, variables, min/max, st)")
    s.add_argument("file", help="the specification (see docs/solve.md)")
    s.add_argument("--data", action="append", default=[], metavar="NAME=FILE",
                   help="data of a parameter from .npy/.npz/.csv (repeat); FILE.npz alone "
                        "gives all its arrays by name")
    s.add_argument("--random", action="store_true",
                   help="random data of the declared shapes for parameters without data")
    s.add_argument("--size", action="append", default=[], metavar="NAME=N",
                   help="the size of a dimension name used in the declarations")
    s.add_argument("--out", default=None, help="where to write the variables (.npz); "
                   "default: FILE's name with _solution.npz")
    s.add_argument("--backend", default="numpy", choices=["numpy", "jax", "torch"])
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--maxiter", type=int, default=10_000)
    s.add_argument("--quiet", action="store_true", help="no progress display")


def _solve(args: argparse.Namespace) -> int:
    """``matdiff solve FILE``: progress on stderr, the summary on stdout, variables to .npz."""
    try:
        with open(args.file, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as err:
        raise MatdiffError(f"cannot read {args.file}: {err.strerror}") from None
    sizes = {}
    for item in args.size:
        name, eq, value = item.partition("=")
        if not eq or not value.strip().isdigit() or int(value) < 1:
            raise MatdiffError(f"--size takes NAME=N with N a positive integer (got {item!r})")
        sizes[name.strip()] = int(value)
    spec, res = solve_spec(text, load_data(args.data), random=args.random, sizes=sizes,
                           backend=args.backend, progress=not args.quiet, seed=args.seed,
                           maxiter=args.maxiter)
    print(res.summary())
    for name, value in res.x.items():
        a = np.asarray(value)
        shown = np.array2string(a, precision=6, threshold=20, max_line_width=96)
        size = "scalar" if a.ndim == 0 else "x".join(str(n) for n in a.shape)
        print(f"{name} ({size}) =\n{shown}" if a.ndim else f"{name} = {float(a):.10g}")
    out = args.out or os.path.splitext(args.file)[0] + "_solution.npz"
    arrays: dict[str, Any] = {k: np.asarray(v) for k, v in res.x.items()}
    np.savez(out, **arrays)
    print(f"wrote {out}")
    return 0 if res.success else 1


def _number(lo: int, hi: int, what: str) -> Any:
    """An argparse type: an integer from ``lo`` to ``hi`` (argparse reports it, exit 2)."""
    def number(text: str) -> int:
        if not re.fullmatch(r"\s*[0-9]+\s*", text) or not lo <= int(text) <= hi:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {what} ({lo} to {hi})")
        return int(text)
    return number


def _serve(args: argparse.Namespace) -> int:
    """``matdiff serve`` until Ctrl+C (exit 0); a port that is taken or invalid is a message
    and exit 2."""
    try:
        try:
            from .web.app import serve  # noqa: PLC0415 - the web extra is optional
        except ImportError as err:
            raise MatdiffError("the web page needs the 'web' extra: pip install "
                               f"'matdiff[web]' ({err})") from None
        serve(args.host, args.port, args.open, workers=args.workers, timeout=args.timeout)
    except KeyboardInterrupt:  # Ctrl+C while starting, or passed on by uvicorn once stopped
        print("matdiff serve stopped", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status: 0 ok (a check that is inconclusive
    included), 1 a check found a mismatch, 2 an error (argparse exits 2 itself)."""
    parser = _parser()
    words, marked = protect_dash_expressions(parser, sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(words)
    for key, value in vars(args).items():
        if isinstance(value, str) and value in marked:
            setattr(args, key, value[1:])
    try:
        if args.command in _KINDS:
            return _grad(args)
        if args.command == "solve":
            return _solve(args)
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
