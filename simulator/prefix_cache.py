"""The server's prefix cache: prompts that start like a recent one skip that part's prefill.

vLLM keeps the KV blocks of recent prompts and reuses them for a request whose prompt begins
the same way. The simulator keeps the last `size` prefixes (a chat's first message when more
follow it, e.g. a shared system prompt) in LRU order: a request whose prefix is there skips the
prefill time of the prefix's tokens and reports them as `cached_tokens`, and the hit counts in
`vllm:prefix_cache_hits` (queries in `vllm:prefix_cache_queries`, both in tokens, as vLLM's).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict


class PrefixCache:
    def __init__(self, size: int) -> None:
        self.size = size
        self.queried_tokens = 0
        self.hit_tokens = 0
        self._entries: OrderedDict[bytes, None] = OrderedDict()

    def lookup(self, prefix: str | None, tokens: int) -> int:
        """How many of the prefix's `tokens` the cache holds (all or none); the prefix is
        cached from now on."""
        if self.size == 0 or prefix is None or tokens == 0:
            return 0
        key = hashlib.blake2b(prefix.encode(), digest_size=16).digest()
        self.queried_tokens += tokens
        if key in self._entries:
            self._entries.move_to_end(key)
            self.hit_tokens += tokens
            return tokens
        self._entries[key] = None
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return 0
