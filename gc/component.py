"""The gc component: what `batch-gateway gc` runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from batch_gateway.clock import Clock, system_clock
from batch_gateway.gc.collector import GarbageCollector
from batch_gateway.gc.metrics import Tally
from batch_gateway.gc.settings import GcSettings
from batch_gateway.ids import instance_name
from batch_gateway.probe_server import ProbeServer
from batch_gateway.redis_client import open_redis, settle
from batch_gateway.storage import open_storage

logger = logging.getLogger(__name__)


class NotReplayed(RuntimeError):
    """The gc is still reading the log to rebuild its schedule."""


async def run_gc(
    settings: GcSettings,
    stop: asyncio.Event,
    clock: Clock = system_clock,
    *,
    once: bool = False,
) -> None:
    """Follow the log and collect until `stop` is set; with `once`, one full sweep (orphans
    included), then return. Only the instance holding the lease acts."""
    async with contextlib.AsyncExitStack() as stack:
        client = open_redis(settings.redis_url)
        stack.push_async_callback(client.aclose)
        await settle(client)
        storage = await open_storage(settings.storage)
        stack.push_async_callback(storage.close)
        collector = GarbageCollector(
            client,
            settings.stream_keys(),
            storage,
            settings,
            clock,
            instance=instance_name(),
        )
        mode = " (dry run: nothing is changed)" if settings.dry_run else ""
        if once:
            await _sweep_once(collector, settings.dry_run, mode)
            return

        async def replayed() -> None:
            if not collector.replayed:
                raise NotReplayed("still replaying the log")

        probes = ProbeServer(
            settings.host,
            settings.port,
            {"redis": client.ping, "storage": storage.check, "schedule": replayed},
        )
        await probes.start()
        stack.push_async_callback(probes.close)
        logger.info("gc %s starting%s", collector.coordination.instance, mode)
        await collector.run(stop)
        logger.info("gc stopped")


async def _sweep_once(collector: GarbageCollector, dry_run: bool, mode: str) -> Tally:
    await collector.replay()
    try:
        tally = await collector.sweep(orphans=True)
    finally:
        if not dry_run:
            await collector.coordination.release()
    if not dry_run and not tally.deleted and not tally.expired:
        holder = await collector.coordination.holder()
        if holder is not None:
            logger.info("gc %s holds the lease and acts; this run did nothing", holder)
    logger.info("gc sweep done%s: %s", mode, tally.summary())
    return tally
