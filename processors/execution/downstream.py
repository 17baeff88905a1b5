"""One batch request on its way downstream: which gateway serves its model, and the headers it
carries there.

Besides the batch's captured pass-through headers (ADR 0009) and the gateway's bearer key, each
request names itself (`x-batch-request`: batch id and custom_id, for the server's logs) and,
unless `router_hints` is off, tells llm-d's router (Gateway API Inference Extension) whose it is
(`x-gateway-inference-fairness-id`: the tenant) and how long until the batch's deadline
(`x-slo-ttft-ms`), plus the gateway's configured `x-gateway-inference-objective` (ADR 0030).
"""

from __future__ import annotations

import asyncio

from batch_gateway.events.batch_aggregate import BatchState
from batch_gateway.processors.execution.dispatch import Dispatcher
from batch_gateway.processors.execution.fair_share import Flow
from batch_gateway.processors.execution.routing import Routes
from batch_gateway.processors.metrics import RequestMetrics
from batch_gateway.processors.settings import GatewaySettings
from batch_gateway.results.requests import Request
from batch_gateway.results.result_lines import ResultLine, unanswered


def router_hints(state: BatchState, gateway: GatewaySettings, now: float) -> dict[str, str]:
    """Headers llm-d's router schedules by: whose request it is, how long until the batch's
    deadline, and its objective."""
    hints: dict[str, str] = {}
    if gateway.router_hints:
        left = max(0.0, state.expires_at - now)
        hints["x-gateway-inference-fairness-id"] = state.tenant
        hints["x-slo-ttft-ms"] = str(int(left * 1000))
    if gateway.inference_objective:
        hints["x-gateway-inference-objective"] = gateway.inference_objective
    return hints


def downstream_headers(
    state: BatchState,
    gateway: GatewaySettings,
    custom_id: str,
    passed_through: dict[str, str],
    now: float,
) -> dict[str, str]:
    headers = {"content-type": "application/json", **passed_through}
    if gateway.api_key and "authorization" not in headers:
        headers["authorization"] = f"Bearer {gateway.api_key}"
    headers["x-batch-request"] = f"{state.id}/{custom_id}"
    headers.update(router_hints(state, gateway, now))
    return headers


async def send_downstream(
    dispatcher: Dispatcher,
    routes: Routes,
    state: BatchState,
    request: Request,
    passed_through: dict[str, str],
    now: float,
    *,
    stop: asyncio.Event,
    flow: Flow,
) -> ResultLine | None:
    """The request's result line; None when `stop` came before it was sent."""
    gateway = routes.gateway_for(request.model)
    if gateway is None:
        unrouted = unanswered(
            request.custom_id,
            "model_not_found",
            f"No inference gateway is configured for model {request.model!r}.",
        )
        # Not under its own name: a file of made-up model names would otherwise take every
        # label slot from the models that are really served.
        RequestMetrics(None).finished(unrouted)
        return unrouted
    return await dispatcher.send(
        dispatcher.gateway(gateway),
        state.endpoint,
        request.custom_id,
        request.body,
        downstream_headers(state, gateway, request.custom_id, passed_through, now),
        stop=stop,
        model=request.model,
        flow=flow,
    )
