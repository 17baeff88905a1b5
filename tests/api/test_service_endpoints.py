"""What operators and tools call: /health, /ready, /metrics and the OpenAPI document."""

from __future__ import annotations

import shutil

import httpx

from tests.harness.live_stack import StartStack


def test_health_answers_ok(http: httpx.Client) -> None:
    response = http.get("/health")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_ready_checks_every_dependency(http: httpx.Client) -> None:
    response = http.get("/ready")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"redis": "ok", "postgres": "ok", "storage": "ok"},
    }


def test_ready_is_a_503_naming_the_storage_when_it_is_gone(start_stack: StartStack) -> None:
    stack = start_stack()
    with httpx.Client(base_url=stack.base_url) as http:
        assert http.get("/ready").status_code == 200
        shutil.rmtree(stack.settings.storage.fs_root)
        response = http.get("/ready")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"] == "ok"
    assert body["checks"]["postgres"] == "ok"
    assert body["checks"]["storage"] != "ok"


def test_metrics_count_api_requests(http: httpx.Client) -> None:
    http.get("/v1/files")
    http.get("/v1/files/file-missing")

    response = http.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()
    api_samples = [line for line in lines if line.startswith("batch_gateway_api")]
    assert api_samples
    assert any('path="/v1/files"' in line for line in api_samples)
    assert any('status_code="404"' in line for line in api_samples)


def test_the_openapi_document_describes_the_files_api(http: httpx.Client) -> None:
    response = http.get("/openapi/openapi.json")

    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "Batch Gateway"
    paths = document["paths"]
    assert set(paths["/v1/files"]) >= {"get", "post"}
    assert set(paths["/v1/files/{file_id}"]) >= {"get", "delete"}
    assert "get" in paths["/v1/files/{file_id}/content"]
    assert "/health" not in paths


def test_the_openapi_document_is_served_as_yaml_and_browsable(http: httpx.Client) -> None:
    assert http.get("/openapi/openapi.yaml").status_code == 200
    assert http.get("/openapi").status_code == 200
