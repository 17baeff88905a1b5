"""The webhook deliverer: POSTs each batch's terminal event to the configured URLs.

It is one more subscriber of the log, a consumer group ("webhooks") on the global stream,
created at the end of the stream: enabling webhooks does not replay every batch that ever
ended. For `batch.completed`, `.failed`, `.expired` and `.cancelled` it POSTs OpenAI's event
shape to every URL, signed per Standard Webhooks (see `webhook_signing.py`). A 2xx answer
delivers; anything else is retried with exponential backoff and jitter, up to the attempts
configured. The entry is acknowledged only once every URL answered 2xx or was given up on, and
an entry with a URL given up on moves to the dead-letter stream with the reason. A deliverer
that dies mid-way leaves its entries pending; another reclaims them after the lease and sends
them again under the same `webhook-id`: delivery is at least once, and receivers dedupe.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import msgspec
import redis.asyncio as aioredis
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)
from yarl import URL

from batch_gateway.clock import Clock
from batch_gateway.events.envelope import Envelope, UnknownEventType, decode
from batch_gateway.events.keys import StreamKeys
from batch_gateway.logs import batch_context, request_context
from batch_gateway.processors.consumer_group import ConsumerGroup, Entry, drain
from batch_gateway.processors.metrics import WEBHOOK_DELIVERIES
from batch_gateway.processors.settings import ProcessorSettings
from batch_gateway.processors.webhooks.signing import signed_headers, signing_key
from batch_gateway.redis_client import REDIS_OUTAGE

logger = logging.getLogger(__name__)

GROUP = "webhooks"
READ_COUNT = 16
# An entry whose deliverer died this many times (a crash loop) is dead-lettered.
MAX_DELIVERIES = 5
TERMINAL_TYPES = frozenset(
    {b"batch.completed", b"batch.failed", b"batch.expired", b"batch.cancelled"}
)


class WebhookData(msgspec.Struct, frozen=True):
    id: str


class WebhookEvent(msgspec.Struct, frozen=True, kw_only=True):
    """OpenAI's webhook event shape; the tenant and everything else stay out of it."""

    id: str
    object: str = "event"
    created_at: int
    type: str
    data: WebhookData


class _Rejected(Exception):
    """A receiver answered with something other than 2xx."""


class _Interrupted(Exception):
    """The deliverer is stopping; the entry stays pending for another to deliver."""


_encoder = msgspec.json.Encoder()


def webhook_group(
    client: aioredis.Redis,
    keys: StreamKeys,
    settings: ProcessorSettings,
    consumer: str,
    partition: int = 0,
) -> ConsumerGroup:
    return ConsumerGroup(
        client,
        keys.partition_stream(partition),
        GROUP,
        consumer,
        lease_ms=int(settings.lease_seconds * 1000),
        max_deliveries=MAX_DELIVERIES,
        dead_letter_stream=f"{keys.tag}:dead-letter",
    )


def redacted(url: str) -> str:
    """A URL fit for logs and the dead-letter stream: no credentials, no query."""
    return str(URL(url).with_user(None).with_query(None).with_fragment(None))


class WebhookDeliverer:
    def __init__(self, group: ConsumerGroup, settings: ProcessorSettings, clock: Clock) -> None:
        self._group = group
        self._settings = settings
        self._clock = clock
        self._key = signing_key(settings.webhook_secret)  # a bad secret fails at start
        self._session: aiohttp.ClientSession | None = None
        self._stop = asyncio.Event()
        self._closed = False

    async def close(self) -> None:
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def run(self, stop: asyncio.Event, *, block_ms: int = 1000) -> None:
        self._stop = stop
        await self._group.ensure("$")
        while not stop.is_set():
            try:
                await self.step(block_ms)
            except* REDIS_OUTAGE as errors:
                logger.warning("webhook deliverer backing off after: %s", errors.exceptions[0])
                await asyncio.sleep(1.0)

    async def drain(self) -> int:
        """Handle every entry waiting now, without blocking; returns how many (tests)."""
        await self._group.ensure("$")
        return await drain(self.step)

    async def step(self, block_ms: int | None) -> int:
        """One round: reclaim entries of dead deliverers, read new ones, deliver them all."""
        entries = await self._group.reclaim(READ_COUNT)
        entries += await self._group.read(READ_COUNT, block_ms)
        async with asyncio.TaskGroup() as group:
            for entry in entries:
                group.create_task(self._handle(entry))
        return len(entries)

    async def _handle(self, entry: Entry) -> None:
        entry_id, fields = entry
        if fields.get(b"type") not in TERMINAL_TYPES:
            await self._group.ack(entry_id)
            return
        deliveries = await self._group.deliveries(entry_id)
        if self._group.is_poison(deliveries):
            await self._group.dead_letter(entry_id, fields, f"delivered {deliveries} times")
            WEBHOOK_DELIVERIES.labels("dead_lettered").inc()
            return
        try:
            envelope = decode(fields[b"event"])
        except (UnknownEventType, msgspec.DecodeError, msgspec.ValidationError) as error:
            await self._group.dead_letter(entry_id, fields, f"undecodable event: {error}")
            WEBHOOK_DELIVERIES.labels("dead_lettered").inc()
            return
        with batch_context(envelope.aggregate_id), request_context(envelope.request_id):
            await self._deliver_all(entry, envelope)

    async def _deliver_all(self, entry: Entry, envelope: Envelope) -> None:
        entry_id, fields = entry
        event = WebhookEvent(
            id=envelope.event_id,
            created_at=int(envelope.occurred_at),
            type=fields[b"type"].decode(),
            data=WebhookData(id=envelope.aggregate_id),
        )
        body = _encoder.encode(event)
        interrupted = False
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(self._deliver(url, event.id, body)) for url in self._urls
                ]
        except* _Interrupted:
            interrupted = True
        if interrupted:
            return  # not acknowledged: another deliverer sends it again after the lease
        failures = [reason for task in tasks if (reason := task.result())]
        if failures:
            await self._group.dead_letter(entry_id, fields, "; ".join(failures))
        else:
            await self._group.ack(entry_id)

    @property
    def _urls(self) -> list[str]:
        return self._settings.webhook_urls

    async def _deliver(self, url: str, message_id: str, body: bytes) -> str | None:
        """POST until a 2xx or out of attempts; the reason it was given up on, if it was."""
        settings = self._settings
        retrying = AsyncRetrying(
            stop=stop_after_attempt(settings.webhook_max_attempts),
            wait=wait_random_exponential(
                multiplier=settings.webhook_backoff_initial_seconds,
                max=settings.webhook_backoff_max_seconds,
            ),
            retry=retry_if_exception_type((_Rejected, aiohttp.ClientError, TimeoutError)),
            sleep=self._sleep,
            before_sleep=lambda _: WEBHOOK_DELIVERIES.labels("retried").inc(),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await self._post(url, message_id, body)
        except (_Rejected, aiohttp.ClientError, TimeoutError) as error:
            reason = f"webhook to {redacted(url)} given up after "
            reason += f"{settings.webhook_max_attempts} attempts: {type(error).__name__} {error}"
            logger.warning("%s", reason)
            WEBHOOK_DELIVERIES.labels("dead_lettered").inc()
            return reason
        WEBHOOK_DELIVERIES.labels("delivered").inc()
        return None

    async def _post(self, url: str, message_id: str, body: bytes) -> None:
        headers = signed_headers(self._key, message_id, int(self._clock()), body)
        headers["content-type"] = "application/json"
        async with self._client.post(url, data=body, headers=headers) as response:
            await response.read()
            if not 200 <= response.status < 300:
                raise _Rejected(f"status {response.status}")

    async def _sleep(self, seconds: float) -> None:
        """Back off, unless the deliverer is stopping: then leave the entry pending."""
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            return
        raise _Interrupted

    @property
    def _client(self) -> aiohttp.ClientSession:
        if self._closed:
            # Stopping: the entry stays pending for another deliverer, and no session is opened
            # that nothing would close.
            raise _Interrupted
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self._settings.webhook_timeout_seconds)
            headers = {"user-agent": "batch-gateway-webhooks"}
            self._session = aiohttp.ClientSession(timeout=timeout, headers=headers)
        return self._session
