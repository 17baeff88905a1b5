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
from collections.abc import Awaitable, Callable, Mapping

import aiohttp
import yarl
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    wait_exponential_jitter,
)

from batch_gateway.processors import metrics
from batch_gateway.processors.execution.admission import AdmissionGate
from batch_gateway.processors.execution.fair_share import Flow
from batch_gateway.processors.execution.flow_control import AdaptiveLimit
from batch_gateway.processors.settings import GatewaySettings, ProcessorSettings
from batch_gateway.results.result_lines import ResultLine, answered, unanswered
from batch_gateway.task_endings import end_tasks
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
# Set by llm-d's router on a request it shed rather than served.
DROPPED_HEADER = "x-llm-d-request-dropped-reason"
# Shed requests are tried again until the batch stops them (its deadline, a cancel); this
# bounds a server that sheds forever all the same.
MAX_DROPS = 1000
ANONYMOUS = Flow("normal", "", "")


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


class _Dropped(_Retryable):
    """llm-d's router shed the request (`x-llm-d-request-dropped-reason`): the server is
    busy with more important traffic. Tried again later, without counting as an attempt."""


RETRIED = (_Retryable, aiohttp.ClientConnectionError)


class _Stopped(Exception):
    """The job stopped (cancel, expiry) before this request got its slot: it is not sent."""


class Gateway:
    """One downstream endpoint: its session, its concurrency limit and its admission gate."""

    def __init__(
        self, name: str, settings: GatewaySettings, weights: Mapping[str, float] | None = None
    ) -> None:
        self.name = name
        self.settings = settings
        self.limit = AdaptiveLimit(
            settings.max_concurrency, settings.min_concurrency, weights=weights
        )
        self._session: aiohttp.ClientSession | None = None
        # Metrics have a session of their own: a pool full of slow requests must never keep
        # the gate from seeing the server's load.
        self._metrics_session: aiohttp.ClientSession | None = None
        self._gate_task: asyncio.Task[None] | None = None
        self._urls: dict[str, yarl.URL] = {}
        # Set by `close`: nothing is sent any more, and no session is opened again.
        self.closed = False

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
                connector=connector,
                # Inference servers set no cookies worth keeping; a jar would be filtered and
                # updated on every request.
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=self.settings.request_timeout_seconds),
            )
        return self._session

    def url_of(self, endpoint: str) -> yarl.URL:
        """The endpoint's absolute URL on this gateway, built once: aiohttp would otherwise
        join it to the session's base URL for every request."""
        url = self._urls.get(endpoint)
        if url is None:
            url = self._urls[endpoint] = yarl.URL(self.settings.url.rstrip("/") + endpoint)
        return url

    def watch_load(self) -> None:
        """Run the admission gate, if the gateway has metrics to read (started on first use)."""
        if self._gate_task is not None or self.closed:
            return
        self._metrics_session = aiohttp.ClientSession()
        gate = AdmissionGate(self.name, self.settings, self.limit, self._metrics_session)
        if gate.enabled:
            # A context of its own: it is started from the first request that needs the
            # gateway, whose batch id, request id and span would otherwise stay with it.
            self._gate_task = asyncio.create_task(
                gate.run(), name=f"admission-{self.name}", context=contextvars.Context()
            )

    async def close(self) -> None:
        self.closed = True
        if self._gate_task is not None:
            await end_tasks([self._gate_task])
        for session in (self._session, self._metrics_session):
            if session is not None:
                await session.close()


class Dispatcher:
    def __init__(self, settings: ProcessorSettings) -> None:
        self._settings = settings
        self._gateways: dict[str, Gateway] = {}
        metrics.admit_models(settings.model_gateways)
        self._names: list[str] = []
        self._closed = False
        self._wait_backoff = wait_exponential_jitter(
            multiplier=settings.backoff_initial_seconds, max=settings.backoff_max_seconds
        )

    def gateway(self, settings: GatewaySettings) -> Gateway:
        gateway = self._gateways.get(settings.url)
        if gateway is None:
            # Its metrics are labelled as the settings name it: "global" or its model.
            name = next(
                (model for model, s in self._settings.model_gateways.items() if s == settings),
                "global",
            )
            gateway = Gateway(name, settings, self._settings.tenant_weights)
            self._gateways[settings.url] = gateway
            if self._closed:
                gateway.closed = True  # asked for while stopping: it sends nothing
                return gateway
            gateway.watch_load()
            self._watch(gateway)
        return gateway

    def _watch(self, gateway: Gateway) -> None:
        limit = gateway.limit
        metrics.watch_gateway(
            gateway.name,
            lambda: limit.in_flight,
            lambda: limit.room,
            lambda: float(limit.closed),
            lambda: limit.waiting,
        )
        self._names.append(gateway.name)

    async def close(self) -> None:
        self._closed = True
        for name in self._names:
            metrics.forget_gateway(name)
        for gateway in list(self._gateways.values()):
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
        flow: Flow = ANONYMOUS,
    ) -> ResultLine | None:
        """Send one request (with retries) and return its result line; None when `stop` was
        set before the request was sent (it waited for a slot, or for a retry). `model`
        labels its metrics; `flow` is whose share of the gateway's slots it waits in."""
        request = metrics.RequestMetrics(model)

        async def attempt() -> ResultLine:
            return await self._attempt(
                gateway, endpoint, custom_id, body, headers, stop, request, flow
            )

        line: ResultLine
        try:
            try:
                line = await attempt()
            except RETRIED as first:
                # Most requests succeed at once: tenacity's machinery is built only for those
                # that need another attempt.
                line = await self._retry(attempt, first, request)
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

    async def _retry(
        self,
        attempt: Callable[[], Awaitable[ResultLine]],
        first: BaseException,
        request: metrics.RequestMetrics,
    ) -> ResultLine:
        """Attempts after a `first` that failed, with backoff, until one succeeds or they run
        out (then the last failure is raised). tenacity's first round replays `first`, so it
        counts, waits and is reported as if tenacity had made it."""
        retrying = AsyncRetrying(
            stop=_AttemptsSpent(self._settings.max_attempts),
            wait=self._wait,
            retry=retry_if_exception_type(RETRIED),
            before_sleep=request.retried,
            reraise=True,
        )
        replay: BaseException | None = first
        async for round_ in retrying:
            with round_:
                if replay is not None:
                    failed, replay = replay, None
                    raise failed
                return await attempt()
        raise AssertionError("tenacity ends with a result or by raising")  # pragma: no cover

    async def _attempt(
        self,
        gateway: Gateway,
        endpoint: str,
        custom_id: str,
        body: bytes,
        headers: Mapping[str, str],
        stop: asyncio.Event | None,
        request: metrics.RequestMetrics,
        flow: Flow,
    ) -> ResultLine:
        # A slot per attempt: a request sleeping in backoff holds none. (Acquired and released
        # by hand: an async context manager costs more than the rest of the bookkeeping.)
        limit = gateway.limit
        await limit.acquire(flow)
        try:
            # A closed gateway (its processor is stopping) sends nothing, and opens no session
            # that nothing would close: the request has no result, so its next owner sends it.
            if gateway.closed or (stop is not None and stop.is_set()):
                raise _Stopped
            with request.attempt(), _client_span(gateway, endpoint, custom_id) as call:
                # The server (llm-d's router, vLLM) continues the trace from this attempt.
                async with gateway.session.post(
                    gateway.url_of(endpoint), data=body, headers=with_trace_headers(headers)
                ) as response:
                    call.set_attribute("http.response.status_code", response.status)
                    if response.status >= 400:
                        mark_error(call, f"HTTP {response.status}")
                    payload = await response.read()
        except aiohttp.ClientConnectionError:
            limit.on_overload()
            raise
        finally:
            limit.release()
        request_id = response.headers.get("x-request-id")
        is_json = response.content_type == "application/json"
        if DROPPED_HEADER in response.headers:
            gateway.limit.on_overload()
            raise _Dropped(response.status, request_id, payload, is_json, _retry_after(response))
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


class _AttemptsSpent:
    """tenacity's stop: `max_attempts` attempts, not counting those the router shed."""

    def __init__(self, max_attempts: int) -> None:
        self._max_attempts = max_attempts
        self._counted = 0

    def __call__(self, state: RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome is not None else None
        if not isinstance(error, _Dropped):
            self._counted += 1
        return self._counted >= self._max_attempts or state.attempt_number >= MAX_DROPS


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
