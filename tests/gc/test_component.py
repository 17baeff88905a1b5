"""`batch-gateway gc` as it runs: following the log with its probes and metrics, and the
command line (`--once`, `--dry-run`, settings errors)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import httpx
import msgspec
import redis.asyncio as aioredis

from batch_gateway.gc.component import run_gc
from batch_gateway.gc.settings import GcSettings
from batch_gateway.secret_store import new_secrets_key
from batch_gateway.settings import to_environment
from batch_gateway.stack.redis_server import free_port
from tests.gc.world import HOUR, ManualClock, World

WAIT_SECONDS = 10.0


async def _until_ready(url: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    async with httpx.AsyncClient() as http:
        while True:
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"{url} never became ready"
            await asyncio.sleep(0.05)


async def test_the_running_gc_expires_what_falls_due_and_reports_it(
    world: World,
    gc_settings: GcSettings,
    clock: ManualClock,
    start: int,
    redis_client: aioredis.Redis,
    key_prefix: str,
) -> None:
    _, key = await world.upload(b"soon gone\n", expires_in=HOUR)
    settings = msgspec.structs.replace(gc_settings, port=free_port(), sweep_interval_seconds=0.1)
    stop = asyncio.Event()
    task = asyncio.create_task(run_gc(settings, stop, clock))
    try:
        base = f"http://127.0.0.1:{settings.port}"
        await _until_ready(f"{base}/ready")
        assert await world.exists(key)

        clock.now = start + HOUR
        deadline = time.monotonic() + WAIT_SECONDS
        while await world.exists(key):
            assert time.monotonic() < deadline, "the running gc never expired the file"
            await asyncio.sleep(0.05)
        assert len(await world.events("file.expired")) == 1

        async with httpx.AsyncClient() as http:
            metrics = (await http.get(f"{base}/metrics")).text
            assert (await http.get(f"{base}/health")).status_code == 200
        for name in (
            'batch_gateway_gc_expiries_total{kind="file"}',
            'batch_gateway_gc_deletions_total{kind="file"}',
            'batch_gateway_gc_bytes_freed_total{kind="file"}',
            "batch_gateway_gc_lag_events 0.0",
            "batch_gateway_gc_lag_seconds",
            "batch_gateway_gc_leader 1.0",
        ):
            assert name in metrics, name
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT_SECONDS)
    assert await redis_client.get(f"{{{key_prefix}}}:gc:lease") is None, "released at stop"


def _gc_command(settings: GcSettings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batch_gateway", "gc", *args],
        env={**os.environ, **to_environment(settings), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_the_command_line_sweeps_once_and_dry_runs(
    world: World, gc_settings: GcSettings
) -> None:
    file_id, key = await world.upload(b"{}\n")
    await world.delete_event_only(file_id)

    dry = await asyncio.to_thread(_gc_command, gc_settings, "--once", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "dry run: would delete" in dry.stderr
    assert await world.exists(key)

    real = await asyncio.to_thread(_gc_command, gc_settings, "--once")
    assert real.returncode == 0, real.stderr
    assert not await world.exists(key)


def test_invalid_settings_name_the_key(redis_url: str, key_prefix: str) -> None:
    settings = GcSettings(redis_url=redis_url, key_prefix=key_prefix, secrets_key=new_secrets_key())
    result = _gc_command(settings, "--once", BATCH_GATEWAY_ORPHAN_GRACE_SECONDS="-1")
    assert result.returncode == 2
    assert "BATCH_GATEWAY_ORPHAN_GRACE_SECONDS" in result.stderr
    result = _gc_command(settings, "--once", BATCH_GATEWAY_SECRETS_KEY="")
    assert result.returncode == 2
    assert "BATCH_GATEWAY_SECRETS_KEY" in result.stderr
