"""The processor component: what `batch-gateway processor` runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket

import redis.asyncio as aioredis

from batch_gateway.clock import Clock, system_clock
from batch_gateway.events import EventLog
from batch_gateway.events.archive import EventArchive
from batch_gateway.events.keys import StreamKeys
from batch_gateway.probe_server import ProbeServer
from batch_gateway.processors.consumer_group import ConsumerGroup
from batch_gateway.processors.dispatch import Dispatcher
from batch_gateway.processors.executor import Executor
from batch_gateway.processors.job import JobContext
from batch_gateway.processors.job_queue import JobQueue
from batch_gateway.processors.queue_depth import watch_queue_depth
from batch_gateway.processors.routing import Routes
from batch_gateway.processors.validator import GROUP, Validator
from batch_gateway.processors.webhooks import WebhookDeliverer, webhook_group
from batch_gateway.redis_client import open_redis
from batch_gateway.secret_store import SecretStore, load_secrets_key
from batch_gateway.settings import ProcessorSettings
from batch_gateway.storage import open_storage

logger = logging.getLogger(__name__)

# An entry (validation or job) delivered this many times without being acknowledged is poison.
MAX_DELIVERIES = 5


def processor_name(settings: ProcessorSettings) -> str:
    return settings.name or f"{socket.gethostname()}-{os.getpid()}"


def validator_group(
    client: aioredis.Redis, keys: StreamKeys, settings: ProcessorSettings
) -> ConsumerGroup:
    return ConsumerGroup(
        client,
        keys.global_stream,
        GROUP,
        processor_name(settings),
        lease_ms=int(settings.lease_seconds * 1000),
        max_deliveries=MAX_DELIVERIES,
        dead_letter_stream=f"{keys.tag}:dead-letter",
    )


def job_queue(client: aioredis.Redis, keys: StreamKeys, settings: ProcessorSettings) -> JobQueue:
    return JobQueue(
        client,
        keys,
        processor_name(settings),
        lease_ms=int(settings.lease_seconds * 1000),
        max_deliveries=MAX_DELIVERIES,
    )


async def run_processor(
    settings: ProcessorSettings, stop: asyncio.Event, clock: Clock = system_clock
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        client = open_redis(settings.redis_url)
        stack.push_async_callback(client.aclose)
        storage = await open_storage(settings.storage)
        stack.push_async_callback(storage.close)
        keys = StreamKeys(settings.key_prefix)
        log = EventLog(client, keys, clock, EventArchive(storage))
        secrets = SecretStore(client, keys, load_secrets_key(settings.secrets_key))
        validator = Validator(
            log, validator_group(client, keys, settings), storage, secrets, settings, clock
        )
        dispatcher = Dispatcher(settings)
        stack.push_async_callback(dispatcher.close)
        context = JobContext(
            log=log,
            storage=storage,
            dispatcher=dispatcher,
            routes=Routes(settings),
            secrets=secrets,
            settings=settings,
            clock=clock,
            processor=processor_name(settings),
        )
        executor = Executor(job_queue(client, keys, settings), context)
        webhooks: WebhookDeliverer | None = None
        if "webhooks" in settings.roles and settings.webhook_urls:
            group_of_webhooks = webhook_group(client, keys, settings, processor_name(settings))
            webhooks = WebhookDeliverer(group_of_webhooks, settings, clock)
            stack.push_async_callback(webhooks.close)
        probes = ProbeServer(
            settings.host, settings.port, {"redis": client.ping, "storage": storage.check}
        )
        await probes.start()
        stack.push_async_callback(probes.close)
        logger.info(
            "processor %s starting: %s", processor_name(settings), ", ".join(settings.roles)
        )
        async with asyncio.TaskGroup() as group:
            if "validate" in settings.roles:
                group.create_task(validator.run(stop))
            if "execute" in settings.roles:
                group.create_task(executor.run(stop))
                group.create_task(watch_queue_depth(client, keys, stop))
            if webhooks is not None:
                group.create_task(webhooks.run(stop))
        logger.info("processor stopped")
