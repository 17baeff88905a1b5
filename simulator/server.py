"""The simulator's HTTP server: eight OpenAI inference endpoints (five for text, three for images
and videos), /v1/models, and the probes.

An inference request goes: count it (/stats) → read its body (400 if unusable) → check the
model (404 under `strict_models`) → roll for a fault (429, 500, 503, a held 504, a dropped
connection) → wait for a slot (capacity) → spend its latency → answer with an OpenAI body and
count it in the vLLM metrics. Nothing is logged per request: the counters say it all.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import msgspec
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from batch_gateway.simulator import bodies
from batch_gateway.simulator.capacity import Slots
from batch_gateway.simulator.faults import Dice
from batch_gateway.simulator.inputs import InvalidBody
from batch_gateway.simulator.media import MEDIA_ENDPOINTS
from batch_gateway.simulator.metrics import SimulatorMetrics
from batch_gateway.simulator.prefix_cache import PrefixCache
from batch_gateway.simulator.responses import TEXT_ENDPOINTS, Endpoint
from batch_gateway.simulator.settings import SimulatorSettings, behaviour_for
from batch_gateway.simulator.stats import (
    BATCH_REQUEST_HEADER,
    DROPPED_HEADER,
    RequestCounter,
    SimulatorStats,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Long-context requests are big; aiohttp's default of 1 MiB would refuse some with 413.
MAX_BODY_BYTES = 64 * 1024 * 1024
_JSON = {"Content-Type": "application/json"}
_encoder = msgspec.json.Encoder()


class Simulator:
    def __init__(self, settings: SimulatorSettings) -> None:
        self.settings = settings
        self.counter = RequestCounter()
        self.metrics = SimulatorMetrics()
        self.dice = Dice(settings.seed)
        self._closing = asyncio.Event()
        self._default = behaviour_for(settings, None)
        self._behaviours = {
            name: behaviour_for(settings, model) for name, model in settings.models.items()
        }
        self._slots = Slots(settings.capacity)
        self._prefix_cache = PrefixCache(settings.prefix_cache_size)
        self.metrics.prefix_cache = self._prefix_cache
        self._model_slots = {
            name: Slots(model.capacity)
            for name, model in settings.models.items()
            if model.capacity is not None
        }
        self._known_models = set(settings.model_names())
        started = int(time.time())
        self._models = {
            name: bodies.Model(id=name, created=started) for name in settings.model_names()
        }

    def application(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        for path, endpoint in {**TEXT_ENDPOINTS, **MEDIA_ENDPOINTS}.items():
            app.router.add_post(path, self._inference(path, endpoint))
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/v1/models/{model}", self._get_model)
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/stats", self._stats)
        app.router.add_post("/stats/reset", self._reset_stats)
        app.router.add_route("*", "/{path:.*}", self._unknown_path)
        app.on_shutdown.append(self._on_shutdown)
        return app

    def stats(self) -> SimulatorStats:
        return msgspec.structs.replace(self.counter.snapshot(), peak_running=self._slots.peak)

    def reset_stats(self) -> None:
        """Forget what was received, and restart the fault and jitter sequences."""
        self.counter.reset()
        self.dice.reset()
        self._slots.peak = self._slots.running

    def _inference(self, path: str, endpoint: Endpoint) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            try:
                return await self._serve(path, endpoint, request)
            except asyncio.CancelledError:
                # The client went away (aiohttp cancels the handler) or the server is stopping.
                self.counter.answered("client_gone")
                raise

        return handle

    async def _serve(self, path: str, endpoint: Endpoint, request: web.Request) -> web.Response:
        started = time.monotonic()
        key = request.headers.get(BATCH_REQUEST_HEADER)
        attempt = self.counter.received(path, key, request.headers.get("traceparent"))
        self.counter.hints(request.headers)
        try:
            job = endpoint.read(await request.read())
        except InvalidBody as invalid:
            return self._error(400, invalid.message, "invalid_request_error", invalid.param)
        if self.settings.strict_models and job.model not in self._known_models:
            return self._model_not_found(job.model)
        behaviour = self._behaviours.get(job.model, self._default)
        fault = self.dice.fault(behaviour, key, attempt)
        if fault is not None:
            return await self._inject(fault, request)

        slots = self._model_slots.get(job.model, self._slots)
        figures = self.metrics.model(job.model, slots)
        tokens = job.output_tokens_each(behaviour.max_output_tokens)
        figures.waiting += 1
        try:
            await slots.acquire()
        finally:
            figures.waiting -= 1
        figures.running += 1
        try:
            job.cached_tokens = self._prefix_cache.lookup(job.prefix, job.prefix_tokens)
            prefill = job.prompt_tokens - job.cached_tokens
            load = slots.running / slots.capacity
            delay = self.dice.latency(behaviour, tokens, prefill, load)
            if delay > 0.0:
                await asyncio.sleep(delay)
        finally:
            figures.running -= 1
            slots.release()
        body = _encoder.encode(endpoint.write(job, tokens, int(time.time())))
        figures.finished(job.finish_reason, job.prompt_tokens, tokens * job.outputs)
        figures.observe_latency(time.monotonic() - started)
        self.counter.answered("200")
        return web.Response(body=body, headers=_JSON)

    async def _inject(self, fault: str, request: web.Request) -> web.Response:
        if fault == "429":
            return self._error(
                429,
                "Rate limit reached for requests (injected by the simulator).",
                "requests",
                code="rate_limit_exceeded",
                headers={"Retry-After": str(self.settings.retry_after_seconds)},
            )
        if fault == "500":
            return self._error(
                500,
                "The server had an error while processing your request (injected).",
                "server_error",
            )
        if fault == "503":
            return self._error(
                503, "The engine is currently overloaded (injected).", "server_error"
            )
        if fault == "timeout":
            # Held until the timeout, the client giving up (aiohttp cancels this handler), or
            # the server stopping.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self.settings.timeout_seconds)
            return self._error(504, "The request timed out (injected).", "timeout", code="timeout")
        if fault == "dropped":
            return self._error(
                429,
                "The request was shed by the router (injected).",
                "requests",
                code="rate_limit_exceeded",
                headers={DROPPED_HEADER: "sheddable request dropped under saturation"},
            )
        # "disconnect": drop the connection without a byte of response. aiohttp then fails to
        # write the response below and gives up quietly (a ConnectionError it expects).
        self.counter.answered("disconnect")
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=500)

    def _error(
        self,
        status: int,
        message: str,
        type_: str,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        self.counter.answered(str(status))
        detail = bodies.ErrorDetail(message=message, type=type_, param=param, code=code)
        return web.Response(
            status=status,
            body=_encoder.encode(bodies.Error(error=detail)),
            headers=_JSON if headers is None else {**_JSON, **headers},
        )

    def _model_not_found(self, model: str) -> web.Response:
        return self._error(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            "invalid_request_error",
            "model",
            "model_not_found",
        )

    async def _list_models(self, _: web.Request) -> web.Response:
        body = bodies.ModelList(data=list(self._models.values()))
        return web.Response(body=_encoder.encode(body), headers=_JSON)

    async def _get_model(self, request: web.Request) -> web.Response:
        model = self._models.get(request.match_info["model"])
        if model is None:
            # Not an inference request: keep it out of /stats.
            detail = bodies.ErrorDetail(
                message=f"The model `{request.match_info['model']}` does not exist.",
                type="invalid_request_error",
                param="model",
                code="model_not_found",
            )
            body = _encoder.encode(bodies.Error(error=detail))
            return web.Response(status=404, body=body, headers=_JSON)
        return web.Response(body=_encoder.encode(model), headers=_JSON)

    async def _health(self, _: web.Request) -> web.Response:
        return web.Response(body=b'{"status":"ok"}', headers=_JSON)

    async def _metrics(self, _: web.Request) -> web.Response:
        return web.Response(
            body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def _stats(self, _: web.Request) -> web.Response:
        return web.Response(body=_encoder.encode(self.stats()), headers=_JSON)

    async def _reset_stats(self, _: web.Request) -> web.Response:
        self.reset_stats()
        return web.Response(status=204)

    async def _unknown_path(self, request: web.Request) -> web.Response:
        self.counter.received(request.path, request.headers.get(BATCH_REQUEST_HEADER))
        return self._error(
            404,
            f"Unknown request URL: {request.method} {request.path}.",
            "invalid_request_error",
            code="unknown_url",
        )

    async def _on_shutdown(self, _: web.Application) -> None:
        # Held (timed-out) requests answer now rather than hold the shutdown.
        self._closing.set()
