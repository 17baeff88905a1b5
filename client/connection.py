"""Where the client commands send their requests, and what every request carries.

`--base-url` and `--api-key` win over `OPENAI_BASE_URL` and `OPENAI_API_KEY`, as in the OpenAI
CLI; the base URL includes `/v1`. The `--header` pairs go with every request, the SDK's (as its
`default_headers`) and the event stream's alike: behind no auth proxy, that is how a caller
names its tenant (`X-MaaS-Username: team-a`), which the API server otherwise takes to be
`default`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from batch_gateway.client.arguments import DEFAULT_BASE_URL

if TYPE_CHECKING:
    from openai import OpenAI

    from batch_gateway.client.event_stream import EventStreamClient

# The SDK wants a key; a server without API keys ignores it.
DEFAULT_API_KEY = "unused"


@dataclass(frozen=True)
class Connection:
    base_url: str
    api_key: str
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> Connection:
        return cls(
            base_url=args.base_url or environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL,
            api_key=args.api_key or environ.get("OPENAI_API_KEY") or DEFAULT_API_KEY,
            headers=merged_headers(args.headers),
        )

    def api(self) -> OpenAI:
        """The official SDK, sending the headers with every call."""
        from openai import OpenAI

        return OpenAI(
            base_url=self.base_url, api_key=self.api_key, default_headers=self.headers or None
        )

    def events(self, on_resume: Callable[[str], None] | None = None) -> EventStreamClient:
        """The client of the SSE endpoint, sending the same headers."""
        from batch_gateway.client.event_stream import EventStreamClient

        return EventStreamClient(
            self.base_url, self.api_key, headers=self.headers, on_resume=on_resume
        )


def merged_headers(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The pairs as one header each: names are case-insensitive, so of two spellings of a name
    only the last given is sent (with its own spelling)."""
    by_name: dict[str, tuple[str, str]] = {}
    for name, value in pairs:
        by_name[name.lower()] = (name, value)
    return dict(by_name.values())
