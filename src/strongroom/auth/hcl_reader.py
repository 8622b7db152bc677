"""A small reader for HCL 1 and JSON documents that keeps what Go's HCL library keeps.

It yields a list of :class:`Item` (key path, value, line of the ``=``/``:``) in document order, duplicates
included, so callers can apply Vault's own decoding rules. Text whose first non-blank character is ``{`` is
read as JSON and flattened the way Go's ``hcl/json/parser`` flattens it (an object whose members are all
objects becomes nested keys), because that is what decides which JSON policies Vault accepts.

Tokens come from pyhcl's lexer; the grammar is ours because pyhcl's parser silently merges duplicate blocks
(Vault keeps and unions them), accepts expressions HCL 1 rejects and cannot read lists mixing booleans with
other values. It is stricter than Go's library in two lenient corners: truncated JSON and trailing text
after a JSON document are errors.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from hcl.lexer import Lexer

_QUOTED = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|x[0-9a-fA-F]{2}|[0-7]{3}|.)", re.S)
_SIMPLE = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    "/": "/",
}


def _unescape(match: re.Match[str]) -> str:
    code = match.group(1)
    if len(code) > 1:
        return chr(int(code[1:], 16) if code[0] in "uUx" else int(code, 8))
    return _SIMPLE[code]  # KeyError: an escape Go rejects


__all__ = ["HclError", "Item", "Obj", "multierror", "read_document"]


class HclError(Exception):
    """The document is not valid; the message is what Vault puts after ``failed to parse policy:``."""


@dataclass
class Obj:
    """An object value: its items in order."""

    items: list[Item]


@dataclass
class Item:
    """One ``key... = value`` or ``key... { }`` entry."""

    keys: tuple[str, ...]
    value: Any  # str | int | float | bool | None | list | Obj
    line: int  # line of "=" or ":"; 0 for a block, as in Go's ast.ObjectItem.Assign


def multierror(errors: list[str]) -> str:
    """Format like hashicorp/go-multierror, since clients may match on it."""
    head = "1 error occurred" if len(errors) == 1 else f"{len(errors)} errors occurred"
    return head + ":\n" + "".join(f"\t* {e}\n" for e in errors) + "\n"


class _Reader:
    _NAMES = {"LEFTBRACE": "LBRACE", "RIGHTBRACE": "RBRACE", "EQUAL": "ASSIGN", "IDENTIFIER": "IDENT",
              "LEFTBRACKET": "LBRACK", "RIGHTBRACKET": "RBRACK"}  # fmt: skip

    def __init__(self, text: str) -> None:
        self.text = text
        self.json = text.strip().startswith("{")
        lexer = Lexer()
        lexer.input(text)
        try:
            self.toks = list(iter(lexer.token, None))
        except ValueError as exc:
            raise HclError(str(exc)) from None
        for index, tok in enumerate(self.toks):
            tok.index = index  # lets _string find the text between a token and the one before it
        self.i = 0

    def _pos(self, tok: Any) -> str:
        return (
            "EOF" if tok is None else f"{tok.lineno}:{tok.lexpos - self.text.rfind(chr(10), 0, tok.lexpos)}"
        )

    def _peek(self) -> Any:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _next(self) -> Any:
        tok = self._peek()
        self.i += 1
        return tok

    def _fail(self, tok: Any, msg: str) -> HclError:
        return HclError(f"At {self._pos(tok)}: {msg}")

    def _kind(self, tok: Any) -> str:
        return "EOF" if tok is None else self._NAMES.get(tok.type, tok.type)

    def parse(self) -> list[Item]:
        if self.json:
            top = self._json_value()
            if self._peek() is not None:
                raise self._fail(self._peek(), "unexpected content after JSON document")
            return _flatten(top.items if isinstance(top, Obj) else [])
        return self._hcl_items(closing=None)

    def _hcl_items(self, closing: str | None) -> list[Item]:
        items: list[Item] = []
        while (tok := self._peek()) is not None and tok.type != closing:
            items.append(self._hcl_item())
            if (sep := self._peek()) is not None and sep.type == "COMMA":
                self.i += 1
        if closing is not None and self._next() is None:
            raise self._fail(None, "object expected closing RBRACE got: EOF")
        return items

    def _hcl_item(self) -> Item:
        keys: list[str] = []
        while (tok := self._peek()) is not None and tok.type in ("IDENTIFIER", "STRING"):
            keys.append(self._string(self._next()))
        tok = self._next()
        if not keys or tok is None or tok.type not in ("EQUAL", "LEFTBRACE"):
            raise self._fail(tok, f"expected: IDENT | STRING | ASSIGN | LBRACE got: {self._kind(tok)}")
        if tok.type == "LEFTBRACE":
            return Item(tuple(keys), Obj(self._hcl_items("RIGHTBRACE")), 0)
        if len(keys) > 1:
            raise self._fail(tok, "nested object expected: LBRACE got: ASSIGN")
        return Item(tuple(keys), self._hcl_value(), tok.lineno)

    def _hcl_value(self) -> Any:
        tok = self._next()
        kind = None if tok is None else tok.type
        if kind == "STRING":
            return self._string(tok)
        if kind in ("NUMBER", "FLOAT", "BOOL"):
            return tok.value
        if kind == "LEFTBRACE":
            return Obj(self._hcl_items("RIGHTBRACE"))
        if kind == "LEFTBRACKET":
            out: list[Any] = []
            while (nxt := self._peek()) is None or nxt.type != "RIGHTBRACKET":
                if out:
                    if nxt is None or nxt.type != "COMMA":
                        raise self._fail(
                            nxt, "error parsing list, expected comma or list end, got: " + self._kind(nxt)
                        )
                    self.i += 1
                    if (nxt := self._peek()) is not None and nxt.type == "RIGHTBRACKET":
                        break
                out.append(self._hcl_value())
            self.i += 1
            return out
        shown = "EOF" if tok is None else f"{self._pos(tok)} {self._kind(tok)} {tok.value}"
        raise self._fail(tok, f"Unknown token: {shown}")

    def _json_value(self) -> Any:
        tok = self._next()
        kind = None if tok is None else tok.type
        if kind == "STRING":
            return self._string(tok)
        if kind in ("NUMBER", "FLOAT", "BOOL"):
            return tok.value
        if kind == "IDENTIFIER" and tok.value == "null":
            return None
        if kind == "LEFTBRACKET":
            return self._json_seq("RIGHTBRACKET", lambda: self._json_value())
        if kind == "LEFTBRACE":
            return Obj(self._json_seq("RIGHTBRACE", self._json_member))
        raise self._fail(tok, f"unexpected token {self._kind(tok)}")

    def _json_seq(self, closing: str, element: Any) -> list[Any]:
        out: list[Any] = []
        while (tok := self._peek()) is None or tok.type != closing:
            if out:
                if tok is None or tok.type != "COMMA":
                    raise self._fail(tok, f"expected comma or {closing}, got: {self._kind(tok)}")
                self.i += 1
            out.append(element())
        self.i += 1
        return out

    def _json_member(self) -> Item:
        key, colon = self._next(), self._next()
        if key is None or key.type != "STRING" or colon is None or colon.type != "COLON":
            raise self._fail(key, "expected a string key and ':'")
        name = self._string(key)
        return Item((name,), self._json_value(), colon.lineno)

    def _string(self, tok: Any) -> str:
        """The value of a STRING token with Go's escapes applied; pyhcl only undoes ``\\"`` and ``\\\\``."""
        if tok.type != "STRING":
            return str(tok.value)
        # pyhcl places a quoted string's position on its closing quote and a heredoc's on its end marker;
        # Go keeps the final newline of a heredoc, pyhcl drops it.
        end = tok.lexpos + 1
        if self.text[tok.lexpos : end] != '"':
            return str(tok.value) + "\n"
        start = self.toks[tok.index - 1].lexpos + 1 if tok.index else 0
        for match in _QUOTED.finditer(self.text, start, end):
            if match.end() == end:
                literal = match.group()
                try:
                    return str(json.loads(literal)) if self.json else _ESCAPE.sub(_unescape, literal[1:-1])
                except (ValueError, KeyError):
                    raise self._fail(tok, "unknown escape sequence") from None
        return str(tok.value)  # e.g. quotes inside ${...}: keep pyhcl's reading


def _flatten(items: list[Item]) -> list[Item]:
    """Go HCL's JSON flattening: an object (or list) whose members are all objects becomes nested keys."""
    out: list[Item] = []
    frontier = list(items)
    while frontier:
        item = frontier.pop()
        v = item.value
        if isinstance(v, Obj) and v.items and all(isinstance(s.value, Obj) for s in v.items):
            frontier.extend(Item(item.keys + s.keys, s.value, item.line) for s in v.items)
        elif isinstance(v, list) and v and all(isinstance(e, Obj) for e in v):
            frontier.extend(Item(item.keys, e, item.line) for e in v)
        else:
            out.append(item)
    out.reverse()
    for item in out:
        if isinstance(item.value, Obj):
            item.value.items = _flatten(item.value.items)
    return out


def read_document(text: str) -> list[Item]:
    """Read ``text`` (HCL 1, or JSON when it starts with ``{``) into its top-level items.

    Raises:
        HclError: the text does not parse.
    """
    return _Reader(text).parse()
