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
from batch_gateway.processors.execution.dispatch import Dispatcher
from batch_gateway.processors.execution.executor import Executor, batch_opening
from batch_gateway.processors.execution.job import JobContext
from batch_gateway.processors.execution.job_queue import JobQueue
from batch_gateway.processors.execution.queue_depth import watch_queue_depth
from batch_gateway.processors.execution.routing import Routes
from batch_gateway.processors.settings import ProcessorSettings
from batch_gateway.processors.validation.validator import GROUP, Validator
from batch_gateway.processors.webhooks.deliverer import WebhookDeliverer, webhook_group
from batch_gateway.redis_client import open_redis, settle
from batch_gateway.secret_store import SecretStore, load_secrets_key
from batch_gateway.storage import open_storage

logger = logging.getLogger(__name__)

# An entry (validation or job) delivered this many times without being acknowledged is poison.
MAX_DELIVERIES = 5


def processor_name(settings: ProcessorSettings) -> str:
    return settings.name or f"{socket.gethostname()}-{os.getpid()}"


def validator_group(
    client: aioredis.Redis, keys: StreamKeys, settings: ProcessorSettings, partition: int = 0
) -> ConsumerGroup:
    return ConsumerGroup(
        client,
        keys.partition_stream(partition),
        GROUP,
        processor_name(settings),
        lease_ms=int(settings.lease_seconds * 1000),
        max_deliveries=MAX_DELIVERIES,
        dead_letter_stream=f"{keys.tag}:dead-letter",
    )


def job_queue(client: aioredis.Redis, log: EventLog, settings: ProcessorSettings) -> JobQueue:
    return JobQueue(
        client,
        log.keys,
        processor_name(settings),
        lease_ms=int(settings.lease_seconds * 1000),
        max_deliveries=MAX_DELIVERIES,
        describe=batch_opening(log),
        max_slices_per_batch=settings.max_slices_per_batch,
        tenant_weights=settings.tenant_weights,
    )


async def run_processor(
    settings: ProcessorSettings, stop: asyncio.Event, clock: Clock = system_clock
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        client = open_redis(settings.redis_url)
        stack.push_async_callback(client.aclose)
        await settle(client)
        storage = await open_storage(settings.storage)
        stack.push_async_callback(storage.close)
        keys = settings.stream_keys()
        log = EventLog(client, keys, clock, EventArchive(storage))
        secrets = SecretStore(client, keys, load_secrets_key(settings.secrets_key))
        # A validator, and a webhook deliverer, per partition of the log: each its own group.
        validators = [
            Validator(
                log,
                validator_group(client, keys, settings, partition),
                storage,
                secrets,
                settings,
                clock,
            )
            for partition in keys.every_partition
        ]
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
        executor = Executor(job_queue(client, log, settings), context)
        webhooks: list[WebhookDeliverer] = []
        if "webhooks" in settings.roles and settings.webhook_urls:
            for partition in keys.every_partition:
                consumer = processor_name(settings)
                deliverer = WebhookDeliverer(
                    webhook_group(client, keys, settings, consumer, partition), settings, clock
                )
                stack.push_async_callback(deliverer.close)
                webhooks.append(deliverer)
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
                for validator in validators:
                    group.create_task(validator.run(stop))
            if "execute" in settings.roles:
                group.create_task(executor.run(stop))
                group.create_task(watch_queue_depth(client, keys, stop))
            for deliverer in webhooks:
                group.create_task(deliverer.run(stop))
        logger.info("processor stopped")
