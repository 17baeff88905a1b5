"""Sending one request downstream: pooled aiohttp sessions, concurrency limits, retries.

Each gateway has one pooled session and its own concurrency limit; the processor has a
global one on top. 429, 5xx and connection errors are retried with tenacity (exponential
backoff with jitter, `Retry-After` honoured, a bounded number of attempts); other 4xx are
final. A request that outlives its timeout becomes a `request_timeout` error line, and is not
retried: a slow request is likelier to be slow again, and its cost was already paid.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import ssl
import urllib.parse
from collections.abc import Mapping

import aiohttp
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from batch_gateway.processors import metrics
from batch_gateway.processors.execution.flow_control import AdaptiveLimit, waiting_requests
from batch_gateway.results.result_lines import ResultLine, answered, unanswered
from batch_gateway.settings import GatewaySettings, ProcessorSettings
from batch_gateway.tracing import (
    NO_SPAN,
    AttributeValue,
    Span,
    mark_error,
    span,
    tracing_enabled,
    with_trace_headers,
)

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class _Retryable(Exception):
    """A response worth another attempt; carries it in case attempts run out."""

    def __init__(
        self,
        status: int,
        request_id: str | None,
        body: bytes,
        is_json: bool,
        retry_after: float | None,
    ) -> None:
        super().__init__(status)
        self.status = status
        self.request_id = request_id
        self.body = body
        self.is_json = is_json
        self.retry_after = retry_after


class _Stopped(Exception):
    """The job stopped (cancel, expiry) before this request got its slot: it is not sent."""


class Gateway:
    """One downstream endpoint: its session and its concurrency limit."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.limit = AdaptiveLimit(settings.max_concurrency, settings.min_concurrency)
        self._session: aiohttp.ClientSession | None = None
        self._monitor: asyncio.Task[None] | None = None
        # Whether the server's last metrics showed more waiting requests than the threshold.
        self.saturated = False

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            ssl_context: ssl.SSLContext | bool = True
            if not self.settings.tls_verify:
                ssl_context = False
            elif self.settings.ca_file:
                ssl_context = ssl.create_default_context(cafile=self.settings.ca_file)
            connector = aiohttp.TCPConnector(limit=self.settings.max_concurrency, ssl=ssl_context)
            self._session = aiohttp.ClientSession(
                base_url=self.settings.url.rstrip("/") + "/",
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.settings.request_timeout_seconds),
            )
        return self._session

    def watch_saturation(self) -> None:
        """Poll the server's metrics once a second, if it has any (started on first use)."""
        if self.settings.metrics_url and self._monitor is None:
            # A context of its own: it is started from the first request that needs the
            # gateway, whose batch id, request id and span would otherwise stay with it.
            self._monitor = asyncio.create_task(
                self._poll_metrics(), name="saturation-monitor", context=contextvars.Context()
            )

    async def _poll_metrics(self) -> None:
        while True:
            try:
                async with self.session.get(self.settings.metrics_url) as response:
                    waiting = waiting_requests(await response.text())
            except (aiohttp.ClientError, TimeoutError, ValueError):
                waiting = None  # metrics are advice: without them, errors alone steer
            self.saturated = (
                waiting is not None and waiting > self.settings.saturation_waiting_threshold
            )
            if self.saturated:
                self.limit.on_overload()
            await asyncio.sleep(1.0)

    async def close(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        if self._session is not None:
            await self._session.close()


class Dispatcher:
    def __init__(self, settings: ProcessorSettings) -> None:
        self._settings = settings
        self._global_limit = asyncio.Semaphore(settings.max_in_flight)
        self._gateways: dict[str, Gateway] = {}
        metrics.admit_models(settings.model_gateways)
        self._names: list[str] = []
        self._wait_backoff = wait_exponential_jitter(
            multiplier=settings.backoff_initial_seconds, max=settings.backoff_max_seconds
        )

    def gateway(self, settings: GatewaySettings) -> Gateway:
        gateway = self._gateways.get(settings.url)
        if gateway is None:
            gateway = self._gateways[settings.url] = Gateway(settings)
            gateway.watch_saturation()
            self._watch(gateway)
        return gateway

    def _watch(self, gateway: Gateway) -> None:
        """Its metrics are labelled as the settings name it: "global" or its model."""
        name = next(
            (model for model, s in self._settings.model_gateways.items() if s == gateway.settings),
            "global",
        )
        limit = gateway.limit
        metrics.watch_gateway(
            name,
            lambda: limit.in_flight,
            lambda: int(limit.limit),
            lambda: float(gateway.saturated),
        )
        self._names.append(name)

    async def close(self) -> None:
        for name in self._names:
            metrics.forget_gateway(name)
        for gateway in self._gateways.values():
            await gateway.close()

    async def send(
        self,
        gateway: Gateway,
        endpoint: str,
        custom_id: str,
        body: bytes,
        headers: Mapping[str, str],
        stop: asyncio.Event | None = None,
        model: str | None = None,
    ) -> ResultLine | None:
        """Send one request (with retries) and return its result line; None when `stop` was
        set before the request was sent (it waited for a slot, or for a retry). `model`
        labels its metrics."""
        request = metrics.RequestMetrics(model)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._settings.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type((_Retryable, aiohttp.ClientConnectionError)),
            before_sleep=request.retried,
            reraise=True,
        )
        line: ResultLine
        try:
            async with self._global_limit:
                async for attempt in retrying:
                    with attempt:
                        line = await self._attempt(
                            gateway, endpoint, custom_id, body, headers, stop, request
                        )
        except _Stopped:
            return None
        except _Retryable as last:
            line = answered(custom_id, last.status, last.request_id, last.body, last.is_json)
        except (TimeoutError, aiohttp.ServerTimeoutError):
            line = unanswered(
                custom_id, "request_timeout", "The request timed out before the server answered."
            )
        except aiohttp.ClientError as error:
            line = unanswered(custom_id, "server_error", f"The inference server failed: {error}")
        request.finished(line)
        return line

    async def _attempt(
        self,
        gateway: Gateway,
        endpoint: str,
        custom_id: str,
        body: bytes,
        headers: Mapping[str, str],
        stop: asyncio.Event | None,
        request: metrics.RequestMetrics,
    ) -> ResultLine:
        # A slot per attempt: a request sleeping in backoff holds none.
        async with gateway.limit:
            if stop is not None and stop.is_set():
                raise _Stopped
            try:
                with request.attempt(), _client_span(gateway, endpoint, custom_id) as call:
                    # The server (llm-d's router, vLLM) continues the trace from this attempt.
                    async with gateway.session.post(
                        endpoint.lstrip("/"), data=body, headers=with_trace_headers(headers)
                    ) as response:
                        call.set_attribute("http.response.status_code", response.status)
                        if response.status >= 400:
                            mark_error(call, f"HTTP {response.status}")
                        payload = await response.read()
            except aiohttp.ClientConnectionError:
                gateway.limit.on_overload()
                raise
        request_id = response.headers.get("x-request-id")
        is_json = response.content_type == "application/json"
        if response.status in RETRYABLE_STATUS:
            gateway.limit.on_overload()
            raise _Retryable(response.status, request_id, payload, is_json, _retry_after(response))
        gateway.limit.on_success()
        return answered(custom_id, response.status, request_id, payload, is_json)

    def _wait(self, state: RetryCallState) -> float:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, _Retryable) and error.retry_after is not None:
            return min(error.retry_after, self._settings.backoff_max_seconds)
        return float(self._wait_backoff(state))


def _client_span(
    gateway: Gateway, endpoint: str, custom_id: str
) -> contextlib.AbstractContextManager[Span]:
    """A client span per attempt, as OpenTelemetry's HTTP conventions have it, within the job's
    trace; nothing at all while tracing is off."""
    if not tracing_enabled():
        return NO_SPAN
    url = urllib.parse.urlsplit(gateway.settings.url.rstrip("/") + endpoint)
    host = url.netloc.rpartition("@")[2]  # never credentials in a span
    attributes: dict[str, AttributeValue] = {
        "http.request.method": "POST",
        "url.full": url._replace(netloc=host).geturl(),
        "batch_gateway.custom_id": custom_id,
    }
    return span(f"POST {endpoint}", kind="client", attributes=attributes, only_within_trace=True)


def _retry_after(response: aiohttp.ClientResponse) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
