"""How deeply a JSON document nests, measured without building it.

Decoders recurse once per level: a document nested a few thousand levels deep (a few kilobytes
of `[`) exhausts the interpreter's recursion limit, which surfaces as a `RecursionError` far from
the input that caused it. Every JSON document that comes from a client (a request body, a line
of a batch input file) is measured here first and refused past `MAX_JSON_DEPTH`, which is far
deeper than any real request nests (OpenAI's tool schemas go a few dozen levels at most).
"""

from __future__ import annotations

import re

MAX_JSON_DEPTH = 128

# A whole string literal (its brackets do not count), or one bracket. Scanned by the regex
# engine in C; only brackets and strings come back to Python.
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_OPENING = frozenset(b"[{")


def exceeds_depth(document: bytes | bytearray | memoryview, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when `document` nests arrays and objects more than `limit` levels deep.

    Malformed documents are measured as far as their brackets go; whether they parse is the
    decoder's question, asked after this one.
    """
    if isinstance(document, bytes | bytearray) and (
        document.count(b"[") + document.count(b"{") <= limit
    ):
        return False  # too few brackets to nest that deep: counting them is far cheaper
    depth = 0
    for token in _TOKEN.finditer(document):
        first = document[token.start()]
        if first in _OPENING:
            depth += 1
            if depth > limit:
                return True
        elif first != 0x22:  # a closing bracket (a string starts with '"')
            depth -= 1
    return False
