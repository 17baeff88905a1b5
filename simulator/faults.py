"""The dice of the simulator: which fault a request meets, and how long it takes.

Two sources of randomness, kept apart so that changing the latency settings does not change
which requests fail:

- Faults. Without a seed, a fresh uniform draw per request. With a seed, a request that carries
  `X-Batch-Request: <batch_id>/<custom_id>` draws from a generator seeded by (seed, that value,
  how many times it has been seen), so the same request meets the same fault on the same attempt
  whatever order concurrent requests arrive in; a retry is a new attempt and a new draw.
  Requests without the header draw from one generator seeded once, so a sequential client sees
  the same sequence of faults on every run.
- Jitter, from its own generator (seeded too when a seed is given).
"""

from __future__ import annotations

import random

from batch_gateway.simulator.settings import FAULT_KINDS, Behaviour


class Dice:
    def __init__(self, seed: int | None) -> None:
        self._seed = seed
        self._faults = random.Random(seed)
        self._jitter = random.Random(None if seed is None else f"jitter/{seed}")

    def reset(self) -> None:
        """Start the sequences again, as a freshly started simulator would."""
        self._faults.seed(self._seed)
        self._jitter.seed(None if self._seed is None else f"jitter/{self._seed}")

    def fault(self, behaviour: Behaviour, key: str | None, attempt: int) -> str | None:
        """The kind of fault this request meets (one of FAULT_KINDS), or None."""
        thresholds = behaviour.fault_thresholds
        if thresholds[-1] <= 0.0:
            return None
        if self._seed is not None and key is not None:
            # str seeds are hashed with SHA-512: stable across processes and Python runs.
            draw = random.Random(f"{self._seed}/{key}/{attempt}").random()
        else:
            draw = self._faults.random()
        for kind, threshold in zip(FAULT_KINDS, thresholds, strict=True):
            if draw < threshold:
                return kind
        return None

    def latency(
        self, behaviour: Behaviour, output_tokens: int, prefill_tokens: int = 0, load: float = 0.0
    ) -> float:
        """Seconds to spend on a request that prefills `prefill_tokens` (its prompt less what
        the prefix cache holds) and produces `output_tokens` while `load` (0 to 1) of the
        server's slots are busy."""
        decoding = output_tokens * behaviour.latency_per_output_token_seconds
        seconds = (
            behaviour.latency_seconds
            + prefill_tokens * behaviour.latency_per_prompt_token_seconds
            + decoding * (1.0 + behaviour.load_slowdown * load)
        )
        if seconds <= 0.0:
            return 0.0
        if behaviour.jitter > 0.0:
            seconds *= 1.0 + self._jitter.uniform(-behaviour.jitter, behaviour.jitter)
        return max(seconds, 0.0)
