"""`ls` and `files ls`: the first objects of a listing that pass a filter, page after page.

The Batches API filters by nothing, so `ls --status` filters here: it reads pages of 100,
newest first, until it has `--limit` batches of that status or the listing ends. That reads
the caller's whole history when few batches match; a filter on the server is the cure if that
ever matters (ADR 0032).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TextIO, TypeVar

from batch_gateway.client.output import api_document, print_json, table

if TYPE_CHECKING:
    from openai.pagination import SyncCursorPage


class _Listed(Protocol):
    @property
    def id(self) -> str: ...


Item = TypeVar("Item", bound=_Listed)


def first_matching(
    page: SyncCursorPage[Item], limit: int, keep: Callable[[Item], bool] = lambda _: True
) -> tuple[list[Item], bool]:
    """Up to `limit` items that `keep` accepts, in the listing's order, and whether the listing
    goes on past the last of them."""
    shown: list[Item] = []
    while True:
        for index, item in enumerate(page.data):
            if keep(item):
                shown.append(item)
                if len(shown) == limit:
                    return shown, index + 1 < len(page.data) or page.has_next_page()
        if not page.has_next_page():
            return shown, False
        page = page.get_next_page()


def show_listing(
    items: list[Any],
    more: bool,
    rows: Callable[[list[Any]], tuple[Sequence[str], list[list[str]]]],
    *,
    nothing: str,
    as_json: bool,
    out: TextIO,
) -> None:
    """A listing as JSON (the list of objects) or as a table, with the next page's cursor."""
    if as_json:
        print_json([api_document(item) for item in items], out)
    elif items:
        table(*rows(items), out)
        _note_more(items, more)
    else:
        out.write(f"{nothing}\n")


def _note_more(items: list[Item], more: bool) -> None:
    """Tell a person, on stderr so that the table stays clean, how to see the next ones."""
    if more and items:
        print(f"(more: --after {items[-1].id})", file=sys.stderr, flush=True)
