"""Resident memory of a process, read from /proc (Linux): now, and its peak since a reset."""

from __future__ import annotations

import contextlib
import re
import threading
from pathlib import Path
from types import TracebackType

_FIELD = re.compile(rb"^(VmRSS|VmHWM):\s+(\d+) kB$", re.MULTILINE)


class ProcessMemory:
    def __init__(self, pid: int) -> None:
        self._proc = Path(f"/proc/{pid}")

    def _fields(self) -> dict[bytes, int]:
        status = (self._proc / "status").read_bytes()
        return {name: int(kib) * 1024 for name, kib in _FIELD.findall(status)}

    def rss(self) -> int:
        """Resident set size now, in bytes."""
        return self._fields()[b"VmRSS"]

    def peak(self) -> int:
        """The highest resident set size since the process started or `reset_peak`, in bytes."""
        return self._fields()[b"VmHWM"]

    def reset_peak(self) -> bool:
        """Reset the peak to the present size; False where the kernel does not let us."""
        try:
            (self._proc / "clear_refs").write_text("5")
        except OSError:
            return False
        return True


class PhasePeaks:
    """A process's peak resident memory in each of a sequence of named phases, as growth
    above its size when the `with` block began (phases are entered with `enter`).

    As `PeakGrowth`: the kernel's high-water mark, reset at each phase change where it can be,
    backed by a sampler thread.
    """

    def __init__(self, pid: int, interval: float = 0.005) -> None:
        self._memory = ProcessMemory(pid)
        self._interval = interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)
        self._phase: str | None = None
        self._exact = False
        self._sampled_peak = 0
        self.baseline = 0
        """Bytes resident when the block began."""
        self.growth: dict[str, int] = {}
        """Phase -> bytes above the baseline at its peak (a phase entered twice keeps its
        higher peak); complete when the block ends."""

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            with self._lock, contextlib.suppress(OSError):  # the process may have ended
                self._sampled_peak = max(self._sampled_peak, self._memory.rss())

    def _close_phase(self) -> None:
        if self._phase is None:
            return
        peak = max(self._sampled_peak, self._memory.rss())
        if self._exact:
            peak = max(peak, self._memory.peak())
        previous = self.growth.get(self._phase, peak - self.baseline)
        self.growth[self._phase] = max(previous, peak - self.baseline)

    def enter(self, phase: str) -> None:
        with self._lock:
            self._close_phase()
            self._phase = phase
            self._exact = self._memory.reset_peak()
            self._sampled_peak = self._memory.rss()

    def __enter__(self) -> PhasePeaks:
        self.baseline = self._memory.rss()
        self._sampler.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._sampler.join()
        with self._lock, contextlib.suppress(OSError):
            self._close_phase()
        self._phase = None


class PeakGrowth:
    """How far a process's resident memory rose above its size at the start of a `with` block.

    The kernel's own high-water mark is used when it can be reset (Linux 4.0+, our own
    processes); a sampler thread reading the current size every few milliseconds backs it
    up, and is all there is otherwise.
    """

    def __init__(self, pid: int, interval: float = 0.005) -> None:
        self._phases = PhasePeaks(pid, interval)
        self.growth = 0
        """Bytes above the baseline at the peak; set when the block ends."""

    def __enter__(self) -> PeakGrowth:
        self._phases.__enter__()
        self._phases.enter("block")  # the whole block is its one phase
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._phases.__exit__(exc_type, exc, traceback)
        self.growth = self._phases.growth["block"]
