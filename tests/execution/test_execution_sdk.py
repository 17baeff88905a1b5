"""Batches executed against the simulator, seen through the OpenAI SDK in strict mode: the
lifecycle and its timestamps, OpenAI's output and error files line for line, request counts and
summed usage, embeddings, batches where everything failed, and per-model routing."""

from __future__ import annotations

import re
from typing import Any

from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion

from batch_gateway.processors.settings import GatewaySettings
from tests.execution.conftest import ClientOf, StartExecuting, StartSimulator
from tests.execution.results import (
    Results,
    ids,
    request,
    requests_file,
    results_of,
    run_batch,
)
from tests.harness.batch_helpers import jsonl, wait_until_status

EMBEDDINGS = "/v1/embeddings"
DAY = 86_400
LINE_ID = re.compile(r"^batch_req_[0-9a-f]{32}$")


def _assert_success_line(line: dict[str, Any]) -> dict[str, Any]:
    """An output line exactly as OpenAI writes it; returns its body."""
    assert set(line) == {"id", "custom_id", "response", "error"}
    assert LINE_ID.match(line["id"]), line["id"]
    assert line["error"] is None
    response = line["response"]
    assert set(response) == {"status_code", "request_id", "body"}
    assert response["status_code"] == 200
    assert isinstance(response["request_id"], str)
    assert response["request_id"]
    body: dict[str, Any] = response["body"]
    return body


def _summed_usage(bodies: list[dict[str, Any]], output_key: str) -> tuple[int, int, int]:
    return (
        sum(body["usage"]["prompt_tokens"] for body in bodies),
        sum(body["usage"].get(output_key, 0) for body in bodies),
        sum(body["usage"]["total_tokens"] for body in bodies),
    )


def test_a_chat_batch_completes_with_openai_files(
    start_simulator: StartSimulator, start_executing: StartExecuting, client_of: ClientOf
) -> None:
    sim = start_simulator()
    stack = start_executing(global_inference_gateway=GatewaySettings(url=sim.url), chunk_size=4)
    client = client_of(stack)

    batch = run_batch(client, requests_file(10))

    assert batch.status == "completed", batch
    assert batch.in_progress_at is not None
    assert batch.finalizing_at is not None
    assert batch.completed_at is not None
    assert batch.created_at <= batch.in_progress_at <= batch.finalizing_at <= batch.completed_at
    assert batch.error_file_id is None
    assert batch.output_file_id is not None
    results = results_of(client, batch)
    results.assert_each_once(ids(10))
    results.assert_counts_match(batch)
    bodies = [_assert_success_line(line) for line in results.output]
    for body in bodies:
        ChatCompletion.model_validate(body, strict=True)
    assert len({line["id"] for line in results.output}) == 10
    input_tokens, output_tokens, total_tokens = _summed_usage(bodies, "completion_tokens")
    assert batch.usage is not None
    assert (batch.usage.input_tokens, batch.usage.output_tokens, batch.usage.total_tokens) == (
        input_tokens,
        output_tokens,
        total_tokens,
    )
    assert input_tokens > 0
    assert output_tokens > 0

    output = client.files.retrieve(batch.output_file_id)
    assert output.purpose == "batch_output"
    assert output.expires_at == output.created_at + 30 * DAY
    assert output.bytes == len(client.files.content(batch.output_file_id).content)
    assert sim.stats().by_batch_request == {f"{batch.id}/r{i}": 1 for i in range(10)}


def test_output_files_expire_as_the_batch_asked(
    start_simulator: StartSimulator, start_executing: StartExecuting, client_of: ClientOf
) -> None:
    sim = start_simulator()
    client = client_of(start_executing(global_inference_gateway=GatewaySettings(url=sim.url)))
    file_id = client.files.create(file=("in.jsonl", requests_file(2)), purpose="batch").id
    created = client.batches.create(
        input_file_id=file_id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        output_expires_after={"anchor": "created_at", "seconds": 7200},
    )
    batch = wait_until_status(client, created.id, {"completed"}, 30)
    assert batch.output_file_id is not None
    output = client.files.retrieve(batch.output_file_id)
    assert output.expires_at == output.created_at + 7200


def test_a_batch_of_embeddings_completes(
    start_simulator: StartSimulator, start_executing: StartExecuting, client_of: ClientOf
) -> None:
    sim = start_simulator()
    client = client_of(start_executing(global_inference_gateway=GatewaySettings(url=sim.url)))

    batch = run_batch(client, requests_file(6, endpoint=EMBEDDINGS), EMBEDDINGS)

    assert batch.status == "completed", batch
    assert batch.endpoint == EMBEDDINGS
    results = results_of(client, batch)
    results.assert_each_once(ids(6))
    results.assert_counts_match(batch)
    bodies = [_assert_success_line(line) for line in results.output]
    for body in bodies:
        CreateEmbeddingResponse.model_validate(body, strict=True)
    input_tokens, _, total_tokens = _summed_usage(bodies, "completion_tokens")
    assert batch.usage is not None
    assert (batch.usage.input_tokens, batch.usage.output_tokens) == (input_tokens, 0)
    assert batch.usage.total_tokens == total_tokens > 0
    assert sim.stats().by_path == {EMBEDDINGS: 6}


def _assert_all_failed(results: Results, count: int, status: int | None, code: str) -> None:
    assert results.output == []
    results.assert_each_once(ids(count))
    for line in results.errors:
        assert set(line) == {"id", "custom_id", "response", "error"}
        assert LINE_ID.match(line["id"])
        if status is None:
            assert line["response"] is None
            assert line["error"]["code"] == code
            assert line["error"]["message"]
        else:
            assert line["error"] is None
            assert line["response"]["status_code"] == status
            assert line["response"]["body"]["error"]["code"] == code


def test_a_batch_whose_every_request_the_server_refuses_still_completes(
    start_simulator: StartSimulator, start_executing: StartExecuting, client_of: ClientOf
) -> None:
    sim = start_simulator(strict_models=True)
    client = client_of(start_executing(global_inference_gateway=GatewaySettings(url=sim.url)))

    batch = run_batch(client, requests_file(5, model="no-such-model"))

    assert batch.status == "completed", batch
    assert batch.output_file_id is None
    assert batch.error_file_id is not None
    results = results_of(client, batch)
    _assert_all_failed(results, 5, 404, "model_not_found")
    results.assert_counts_match(batch)
    assert batch.usage is not None
    assert batch.usage.total_tokens == 0
    errors = client.files.retrieve(batch.error_file_id)
    assert errors.purpose == "batch_output"
    assert sim.stats().by_status == {"404": 5}  # a 404 is never retried


def test_a_model_routed_nowhere_fails_its_requests_with_model_not_found(
    start_simulator: StartSimulator, start_executing: StartExecuting, client_of: ClientOf
) -> None:
    sim = start_simulator()
    routes = {"routed": GatewaySettings(url=sim.url)}
    client = client_of(start_executing(model_gateways=routes))

    batch = run_batch(client, requests_file(4, model="unrouted"))

    assert batch.status == "completed", batch
    assert batch.output_file_id is None
    results = results_of(client, batch)
    _assert_all_failed(results, 4, None, "model_not_found")
    results.assert_counts_match(batch)
    assert sim.stats().requests == 0


def test_mixed_models_go_each_to_its_own_gateway(
    start_simulator: StartSimulator, start_executing: StartExecuting, client_of: ClientOf
) -> None:
    alpha, beta = start_simulator(), start_simulator()
    fallback = start_simulator()
    routes = {"alpha": GatewaySettings(url=alpha.url), "beta": GatewaySettings(url=beta.url)}
    stack = start_executing(
        model_gateways=routes, global_inference_gateway=GatewaySettings(url=fallback.url)
    )
    client = client_of(stack)
    lines = [request(f"a{i}", "alpha") for i in range(5)]
    lines += [request(f"b{i}", "beta") for i in range(3)]
    lines += [request("g0", "gamma")]

    batch = run_batch(client, jsonl(sorted(lines, key=lambda line: str(line["custom_id"])[1:])))

    assert batch.status == "completed", batch
    results = results_of(client, batch)
    results.assert_each_once({str(line["custom_id"]) for line in lines})
    results.assert_counts_match(batch)
    models = {line["custom_id"]: line["response"]["body"]["model"] for line in results.output}
    assert models == {str(line["custom_id"]): line["body"]["model"] for line in lines}
    assert set(alpha.stats().by_batch_request) == {f"{batch.id}/a{i}" for i in range(5)}
    assert set(beta.stats().by_batch_request) == {f"{batch.id}/b{i}" for i in range(3)}
    assert set(fallback.stats().by_batch_request) == {f"{batch.id}/g0"}
