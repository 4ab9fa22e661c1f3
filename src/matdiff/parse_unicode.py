"""Unicode, as ``to_unicode`` prints it, to a syntax tree: an answer pasted back in.

Input: text such as ``2Aᵀ(AXB − C)Bᵀ``, ``‖X‖_F² + λ tr(X⁻¹)``, ``σ(Wx) ⊙ 𝟏``. The reader
rewrites it, piece by piece, into the LaTeX the LaTeX reader takes (``ᵀ`` is ``^{T}``, ``⊙``
``\\odot``, ``‖`` ``\\|``, ``tr(`` ``\\operatorname{tr}(``, ``[A, B; C, D]`` a ``bmatrix``,
``X[0:n, 0:m]`` ``X_{[0:n, 0:m]}``), so a product is juxtaposition and binds as on paper,
and keeps the offset of every character: spans and error positions are in the text as
typed. Contract: the output is the LaTeX reader's ``Node`` tree; malformed input is a
``MatdiffError`` with ``pos`` in the original text.

Names follow the printer's rules: a run of letters is a product of one-letter names
(``AXB``), unless it is a declared name (``lam``, passed in ``names``), a function before
``(`` (``tr(X)``, ``log det(X)``, ``λ_max(S)``, ``L_exp(A, E)``), or letters then digits
(``W1``); a Greek letter is its name (``λ`` is ``lambda``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

from .expr import MatdiffError
from .parse_latex import GREEK, SCRIPTED, parse_latex
from .printing import GREEK_UNICODE
from .syntax import FUNCTIONS, LATEX_PAIRS, Node

__all__ = ["parse_unicode", "looks_like_unicode", "UNICODE_LATEX"]

# one character -> its LaTeX
UNICODE_LATEX: dict[str, str] = {
    "⊙": " \\odot ", "⊗": " \\otimes ", "⊘": " \\oslash ", "−": "-", "‖": "\\|",
    "∞": "\\infty ", "𝟏": "\\mathbf{1}", "·": " \\cdot ", "⟨": "\\langle ", "⟩": "\\rangle ",
    **{letter: f"\\{name} " for name, letter in GREEK_UNICODE.items()},
}
# superscript characters -> what they write
_SUPER = {**dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789", strict=True)), "⁻": "-", "⁺": "+",
          "ᵀ": "T", "½": "1/2"}
_LETTER_OF = {letter: name for name, letter in GREEK_UNICODE.items()}
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)?")
_SIZE = re.compile(r"_(\([^()]*\)|[A-Za-z0-9]+)(×(\([^()]*\)|[A-Za-z0-9]+))?")


def looks_like_unicode(text: str) -> bool:
    """Whether the text has a character only the Unicode printer writes.

    >>> looks_like_unicode("xᵀAx"), looks_like_unicode("x'*A*x")
    (True, False)
    """
    return any(c in UNICODE_LATEX or c in _SUPER or c in "∘×" for c in text)


class _Rewrite:
    """Unicode text to LaTeX, with the origin of every output character."""

    def __init__(self, text: str, names: frozenset[str]):
        self.text, self.names = text, names
        self.out: list[str] = []
        self.origin: list[int] = []
        self.closing: dict[int, str] = {}        # a bracket's index -> what closes it
        self.block_of: dict[int, int] = {}       # a , or ; inside brackets -> its '['
        self.blocks: set[int] = set()            # the '[' of each block matrix
        self.match = self.brackets()

    def fail(self, message: str, pos: int) -> MatdiffError:
        return MatdiffError(message, pos=pos, text=self.text)

    def put(self, s: str, at: int) -> None:
        self.out.append(s)
        self.origin.extend([at] * len(s))

    def brackets(self) -> dict[int, int]:
        """The matching bracket of every ( and [; separators of a block matrix."""
        match, stack = {}, []
        for i, c in enumerate(self.text):
            if c in "([":
                stack.append(i)
            elif c in ")]":
                if not stack or self.text[stack[-1]] != {")": "(", "]": "["}[c]:
                    raise self.fail(f"unmatched '{c}'", i)
                match[stack.pop()] = i
            elif c in ",;" and stack and self.text[stack[-1]] == "[":
                self.block_of[i] = stack[-1]
        if stack:
            raise self.fail(f"'{self.text[stack[-1]]}' is never closed", stack[-1])
        return match

    def run(self) -> str:
        i = 0
        while i < len(self.text):
            i = self.step(i)
        return "".join(self.out)

    def step(self, i: int) -> int:
        c, text = self.text[i], self.text
        if i in self.closing:
            self.put(self.closing[i], i)
        elif c in _SUPER or c == "∘" and i + 1 < len(text) and text[i + 1] in _SUPER:
            return self.superscripts(i)
        elif c == "^":
            return self.caret(i)
        elif c == "[":
            self.bracket(i)
        elif c in ",;" and self.block_of.get(i) in self.blocks:
            self.put(" & " if c == "," else " \\\\ ", i)
        elif c in _LETTER_OF and text.startswith("_", i + 1):
            return self.scripted(i)
        elif c == "𝟏" or c == "0" and text.startswith("_", i + 1) \
                and not (i and text[i - 1].isalnum()):
            return self.filled(i)
        elif c == "_":
            return self.subscript(i)
        elif c.isascii() and c.isalpha():
            return self.word(i)
        elif c in UNICODE_LATEX:
            self.put(UNICODE_LATEX[c], i)
        elif not c.isascii():
            raise self.fail(f"unexpected character '{c}'", i)
        else:
            self.put(c, i)
        return i + 1

    def superscripts(self, i: int) -> int:
        """A run of superscripts: ``ᵀ``, ``⁻ᵀ``, ``⁻¹``, ``²``, ``⁺``, ``∘²``."""
        text = self.text
        circ = "\\circ " if text[i] == "∘" else ""
        j = i + 1 if circ else i                 # past the ∘
        while j < len(text) and text[j] in _SUPER:
            k = j + (2 if text.startswith("⁻ᵀ", j) else 1)
            if text[j] not in "ᵀ⁺" and k == j + 1:
                while k < len(text) and text[k] in _SUPER and text[k] not in "ᵀ⁺⁻½":
                    k += 1
            self.put("^{" + circ + "".join(_SUPER[ch] for ch in text[j:k]) + "}", j)
            circ, j = "", k
        return j

    def caret(self, i: int) -> int:
        """``X^a``, ``x^0.5``, ``X^½``, ``X^-½``, ``x^(1/3)``, ``x^∘p``: ``^{...}``."""
        j, circ = i + 1, ""
        if self.text.startswith("∘", j):
            j, circ = j + 1, "\\circ "
        if self.text.startswith("(", j):
            self.put("^{" + circ, i)
            self.closing[self.match[j]] = "}"
            return j + 1
        m = re.compile(r"-?(½|[0-9.]+|[A-Za-z][A-Za-z0-9]*)").match(self.text, j)
        if m is None:
            raise self.fail("a superscript needs an exponent", i)
        body = m.group(0).replace("½", "1/2")
        self.put("^{" + circ + (self.name(body) if body[:1].isalpha() else body) + "}", i)
        return m.end()

    def bracket(self, i: int) -> None:
        """``X[0:n, 0:m]`` (a slice: its contents have a ':') or ``[A, B; C, D]``."""
        inner = self.text[i + 1:self.match[i]]
        if ":" in re.sub(r"\([^()]*\)|\[[^\[\]]*\]", "", inner):
            self.put("_{[", i)
            self.closing[self.match[i]] = "]}"
        else:
            self.put("\\begin{bmatrix} ", i)
            self.blocks.add(i)
            self.closing[self.match[i]] = " \\end{bmatrix}"

    def filled(self, i: int) -> int:
        """``𝟏``, ``𝟏_m``, ``0_m×n``, ``0_(m - 2)×n``: ``\\mathbf{1}_{m,n}``."""
        self.put("\\mathbf{1}" if self.text[i] == "𝟏" else "\\mathbf{0}", i)
        m = _SIZE.match(self.text, i + 1)
        if m is None:
            return i + 1
        sizes = [s.strip("()") for s in (m.group(1), m.group(3)) if s]
        self.put("_{" + ",".join(sizes) + "}", i + 1)
        return m.end()

    def subscript(self, i: int) -> int:
        """``H_R``, ``‖X‖_F``, ``‖x‖_∞``, ``‖X‖_*``: a braced subscript."""
        m = re.compile(r"_([A-Za-z0-9]+|\*|∞)").match(self.text, i)
        if m is None:
            raise self.fail("a subscript needs letters or digits", i)
        self.put("_{" + m.group(1).replace("∞", "\\infty") + "}", i)
        return m.end()

    def scripted(self, i: int) -> int:
        """A Greek letter with a subscript: ``λ_max(S)`` is a function, ``λ_1`` a name."""
        m = re.compile(r"_([A-Za-z0-9]+)").match(self.text, i + 1)
        if m is None:
            raise self.fail("a subscript needs letters or digits", i + 1)
        head = "\\" + _LETTER_OF[self.text[i]]
        fname = SCRIPTED.get(head, {}).get(m.group(1))
        if fname and self.text.startswith("(", m.end()):
            self.put(f"\\operatorname{{{fname}}}", i)
        else:
            self.put(f"{head}_{{{m.group(1)}}}", i)
        return m.end()

    def word(self, i: int) -> int:
        """A run of letters and digits (and one subscript): a call, a name, or letters."""
        m = _WORD.match(self.text, i)
        assert m is not None
        word, end = m.group(0), m.end()
        called = self.text.startswith("(", end)
        base, _, sub = word.partition("_")
        fname = SCRIPTED.get(base, {}).get(sub) if sub else None
        pair = re.compile(r"\s+([A-Za-z]+)\(").match(self.text, end)
        if pair and word in FUNCTIONS and pair.group(1) in FUNCTIONS and \
                (FUNCTIONS[word], FUNCTIONS[pair.group(1)]) in LATEX_PAIRS:
            self.put(f"\\operatorname{{{word}}}\\operatorname{{{pair.group(1)}}}", i)
            return pair.end() - 1                                          # log det(X)
        if called and word == "K":                                         # K(m, n)
            self.put("K_{", i)
            self.closing[self.match[end]] = "}"
            return end + 1
        if called and (word in FUNCTIONS or fname):
            self.put(f"\\operatorname{{{fname or word}}}", i)
            return end
        self.put(self.name(base) + (f"_{{{sub}}}" if sub else ""), i)
        return end

    def name(self, word: str) -> str:
        """A name in LaTeX: declared or with digits it is one symbol, else letters."""
        if len(word) == 1 or not word[0].isalpha():
            return word
        if word in self.names or re.fullmatch(r"[A-Za-z]+[0-9]+", word):
            return f"\\mathit{{{word}}}"
        return f"\\{word} " if word in GREEK else word


def _moved(root: Node, origin: list[int], length: int) -> Node:
    """The tree with its spans in the original text (``origin``: output -> input)."""
    def at(pos: int) -> int:
        return origin[pos] if pos < len(origin) else length
    done: dict[int, Node] = {}
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, ready = stack.pop()
        if ready:
            args = tuple(done[id(a)] for a in node.args)
            end = at(node.end - 1) + 1 if node.end > node.start else at(node.start)
            done[id(node)] = dataclasses.replace(node, args=args, start=at(node.start),
                                                 end=end)
        else:
            stack.append((node, True))
            stack.extend((a, False) for a in node.args)
    return done[id(root)]


def parse_unicode(text: str, names: Iterable[str] = ()) -> Node:
    """Parse what ``to_unicode`` prints; ``names`` are the declared names (``lam`` is then
    one name, not ``l·a·m``).

    >>> parse_unicode("xᵀAx").kind, parse_unicode("‖X‖_F²").args[0].value
    ('mul', 'F')
    """
    rewrite = _Rewrite(text, frozenset(names))
    latex = rewrite.run()
    try:
        tree = parse_latex(latex, variables=names)
    except MatdiffError as err:
        pos = rewrite.origin[err.pos] if err.pos is not None and err.pos < len(
            rewrite.origin) else len(text) - 1 if err.pos is not None else None
        raise MatdiffError(err.message, pos=pos, text=text) from None
    return _moved(tree, rewrite.origin, len(text))
