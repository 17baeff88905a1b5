"""Every performance goal of issue 13, measured by the benchmarks, in one table.

    .venv/bin/python -m bench.performance [--runs 3] [--save FILE] [--baseline FILE]
                                          [--readme README.md]

Runs each benchmark `--runs` times and takes the median of each figure:

- bench/end_to_end.py: 50,000 chat requests in one batch (throughput against the plain aiohttp
  client, processor and all-component CPU per request), 1,000 requests, and the 50,000 in 16
  batches at once (whether the cost per request stays the same);
- bench/input_memory.py: the processor's memory growth on a 200 MB input of ~4.7 KB lines and
  on one of a single 200 MB line;
- bench/upload_files.py: MB/s of one 200 MB upload, and the API server's memory growth while
  ten of them stream in at once;
- bench/validate_input.py: CPU seconds to validate 50,000 lines.

`--save` writes the medians as JSON; `--baseline` reads such a file (the same command run on
the code before the issue: bench/results/) and adds its figures as a column; `--readme`
rewrites the table between the performance markers of that file. The benchmarks print
everything they measure as they go.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import msgspec

from bench import end_to_end, input_memory, upload_files, validate_input

MB = 1e6
BEGIN = "<!-- bench.performance: begin -->"
END = "<!-- bench.performance: end -->"
COMPONENTS = end_to_end.GATEWAY_COMPONENTS


class Figures(msgspec.Struct, kw_only=True):
    """The medians of one `bench.performance` run (None: not measured)."""

    cores: int
    runs: int
    throughput_ratio: float | None = None
    processor_ms: float | None = None
    components_ms: float | None = None
    processor_ms_1k: float | None = None
    processor_ms_16_batches: float | None = None
    memory_lines_mb: float | None = None
    memory_one_line_mb: float | None = None
    upload_mb_s: float | None = None
    upload_concurrent_growth_mb: float | None = None
    validation_cpu_s: float | None = None


class Goal(NamedTuple):
    what: str
    target: str
    figure: Callable[[Figures], float | None]
    shown: Callable[[float], str]
    met: Callable[[float], bool]


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


GOALS = [
    Goal(
        "gateway throughput / plain aiohttp client, 50,000 requests, zero-latency server",
        "≥ 0.8x",
        lambda f: f.throughput_ratio,
        lambda v: f"{v:.2f}x",
        lambda v: v >= 0.8,
    ),
    Goal(
        "processor CPU per request",
        "≤ 0.15 ms",
        lambda f: f.processor_ms,
        lambda v: f"{v:.3f} ms",
        lambda v: v <= 0.15,
    ),
    Goal(
        "all components' CPU per request (apiserver, projector, processor, gc)",
        "≤ 0.25 ms",
        lambda f: f.components_ms,
        lambda v: f"{v:.3f} ms",
        lambda v: v <= 0.25,
    ),
    Goal(
        "processor CPU per request, 1,000 / 50,000 lines",
        "within 20 %",
        lambda f: _ratio(f.processor_ms_1k, f.processor_ms),
        lambda v: f"{v:.2f}x",
        lambda v: abs(v - 1) <= 0.2,
    ),
    Goal(
        "processor CPU per request, 16 concurrent batches / 1 (50,000 requests)",
        "within 20 %",
        lambda f: _ratio(f.processor_ms_16_batches, f.processor_ms),
        lambda v: f"{v:.2f}x",
        lambda v: abs(v - 1) <= 0.2,
    ),
    Goal(
        "processor RSS growth, 200 MB input of 43,613 lines",
        "≤ 100 MB",
        lambda f: f.memory_lines_mb,
        lambda v: f"{v:.0f} MB",
        lambda v: v <= 100,
    ),
    Goal(
        "processor RSS growth, 200 MB input of one line",
        "≤ 100 MB",
        lambda f: f.memory_one_line_mb,
        lambda v: f"{v:.0f} MB",
        lambda v: v <= 100,
    ),
    Goal(
        "apiserver RSS growth, 10 uploads of 200 MB at once",
        "≤ 20 MB",
        lambda f: f.upload_concurrent_growth_mb,
        lambda v: f"{v:.0f} MB",
        lambda v: v <= 20,
    ),
    Goal(
        "validating 50,000 lines, CPU",
        "≤ 0.1 s",
        lambda f: f.validation_cpu_s,
        lambda v: f"{v:.2f} s",
        lambda v: v <= 0.1,
    ),
    Goal(
        "uploading 200 MB on loopback",
        "≥ 300 MB/s",
        lambda f: f.upload_mb_s,
        lambda v: f"{v:.0f} MB/s",
        lambda v: v >= 300,
    ),
]


def _median(values: Sequence[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def _banner(text: str) -> None:
    print(f"\n== {text}", flush=True)


def measure(runs: int, common: list[str]) -> Figures:
    figures = Figures(cores=os.cpu_count() or 0, runs=runs)
    one: list[end_to_end.EndToEnd] = []
    small: list[end_to_end.EndToEnd] = []
    many: list[end_to_end.EndToEnd] = []
    memory: list[list[input_memory.InputMemory]] = []
    uploads: list[upload_files.UploadFigures] = []
    validation: list[float] = []
    for run in range(1, runs + 1):
        _banner(f"run {run} of {runs}: 50,000 requests, one batch")
        one.append(end_to_end.run(["--requests", "50000", *common]))
        _banner(f"run {run} of {runs}: 1,000 requests")
        small.append(end_to_end.run(["--requests", "1000", *common]))
        _banner(f"run {run} of {runs}: 50,000 requests in 16 batches")
        many.append(end_to_end.run(["--requests", "50000", "--batches", "16", *common]))
        _banner(f"run {run} of {runs}: a 200 MB input, as lines and as one line")
        memory.append(input_memory.main(common))
        _banner(f"run {run} of {runs}: uploads of 200 MB, alone and ten at once")
        uploads.append(upload_files.main(["--big-mb", "200", "--concurrent", "10", *common]))
        _banner(f"run {run} of {runs}: validating 50,000 lines")
        validation.append(validate_input.main(["--lines", "50000", "--repeat", "5"]))
    figures.throughput_ratio = _median([r.throughput_ratio for r in one])
    figures.processor_ms = _median([r.cpu_per_request("processor") * 1e3 for r in one])
    figures.components_ms = _median(
        [sum(r.cpu_per_request(name) for name in COMPONENTS) * 1e3 for r in one]
    )
    figures.processor_ms_1k = _median([r.cpu_per_request("processor") * 1e3 for r in small])
    figures.processor_ms_16_batches = _median([r.cpu_per_request("processor") * 1e3 for r in many])
    shapes = {
        shape: [m.growth / MB for run in memory for m in run if m.shape == shape]
        for shape in input_memory.SHAPES
    }
    figures.memory_lines_mb = _median(shapes["lines"])
    figures.memory_one_line_mb = _median(shapes["one-line"])
    figures.upload_mb_s = _median([u.mb_per_second for u in uploads])
    figures.upload_concurrent_growth_mb = _median(
        [u.concurrent_growth / MB if u.concurrent_growth is not None else None for u in uploads]
    )
    figures.validation_cpu_s = _median(validation)
    return figures


def table(figures: Figures, baseline: Figures | None) -> str:
    before = baseline is not None
    header = "| goal | target | measured | met |" + (" before issue 13 |" if before else "")
    rule = "|---|---|---|---|" + ("---|" if before else "")
    rows = [header, rule]
    for goal in GOALS:
        value = goal.figure(figures)
        shown = goal.shown(value) if value is not None else "not measured"
        met = ("yes" if goal.met(value) else "**no**") if value is not None else "-"
        row = f"| {goal.what} | {goal.target} | {shown} | {met} |"
        if baseline is not None:
            old = goal.figure(baseline)
            row += f" {goal.shown(old) if old is not None else 'not measured'} |"
        rows.append(row)
    note = (
        f"\nMedians of {figures.runs} runs of `python -m bench.performance` on "
        f"{figures.cores} cores"
        + (
            f"; before issue 13: the same command on the code before it, {baseline.runs} runs."
            if baseline is not None
            else "."
        )
    )
    return "\n".join(rows) + "\n" + note + "\n"


def rewrite_readme(path: Path, text: str) -> None:
    readme = path.read_text()
    start, end = readme.find(BEGIN), readme.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"{path} has no {BEGIN} … {END} section")
    path.write_text(readme[: start + len(BEGIN)] + "\n" + text + readme[end:])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.performance", description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--save", type=Path, help="write the medians here (JSON)")
    parser.add_argument("--baseline", type=Path, help="medians of the code before, to compare")
    parser.add_argument("--readme", type=Path, help="rewrite the table in this file")
    parser.add_argument(
        "--figures", type=Path, help="print the table of saved medians instead of measuring"
    )
    parser.add_argument("--embedded", action="store_true")
    args = parser.parse_args(argv)
    common = ["--embedded"] if args.embedded else []
    if args.figures is not None:
        figures = msgspec.json.decode(args.figures.read_bytes(), type=Figures)
    else:
        figures = measure(args.runs, common)
    if args.save is not None:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        args.save.write_bytes(msgspec.json.format(msgspec.json.encode(figures)) + b"\n")
    baseline = (
        msgspec.json.decode(args.baseline.read_bytes(), type=Figures) if args.baseline else None
    )
    text = table(figures, baseline)
    _banner("goals")
    sys.stdout.write(text)
    if args.readme is not None:
        rewrite_readme(args.readme, text)


if __name__ == "__main__":
    main()
