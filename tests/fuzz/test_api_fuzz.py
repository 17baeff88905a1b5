"""The HTTP API fuzzed from its own OpenAPI document (schemathesis), against a real API server
with real Redis, PostgreSQL and storage: no 5xx, every response as documented (status, content
type, headers, body schema), data the schema allows accepted and data it forbids refused, and
every error in OpenAI's envelope.

Seeded (derandomized), so a run is repeatable. `BATCH_GATEWAY_FUZZ_EXAMPLES` sets the examples
per operation and generation mode (CI's default keeps the run short; README: a deep run).
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode, Response
from schemathesis.checks import CheckContext
from schemathesis.specs.openapi.checks import positive_data_acceptance

from batch_gateway.gateway.app import create_app
from batch_gateway.gateway.settings import ApiServerSettings
from tests.harness.live_stack import LiveStack
from tests.harness.openai_errors import envelope_error

EXAMPLES = int(os.environ.get("BATCH_GATEWAY_FUZZ_EXAMPLES", "25"))
# The operations, as the app with default settings documents them (the served document is
# checked to be the same below).
_DOCUMENT = create_app(ApiServerSettings()).openapi_schema.to_schema()
OPERATIONS = [
    f"{method.upper()} {path}"
    for path, item in _DOCUMENT["paths"].items()
    for method in item
    if path.startswith("/v1/")
]


@pytest.fixture(scope="module")
def served(module_stack: LiveStack) -> schemathesis.BaseSchema:
    document = httpx.get(f"{module_stack.base_url}/openapi/openapi.json").json()
    return schemathesis.openapi.from_dict(document)


def test_the_served_document_is_the_apps_own(module_stack: LiveStack) -> None:
    document = httpx.get(f"{module_stack.base_url}/openapi/openapi.json").json()
    assert document["paths"] == _DOCUMENT["paths"]
    for operation in document["paths"].values():
        for method in operation.values():
            for status, response in method["responses"].items():
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}


# The list operations, whose `after` cursor must name an object of the caller's.
LISTS = {"GET /v1/files", "GET /v1/batches"}


def accepted_or_unknown_cursor(
    ctx: CheckContext, response: Response, case: Case[Any]
) -> bool | None:
    """Schema-valid data is accepted, except a well-formed `after` that names no object of the
    caller's: a 400 naming `after` (ADR 0021), which no schema can tell from a real cursor."""
    if response.status_code < 400:
        return None
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "after", response.text
    return True


def openai_error_envelope(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """Every 4xx and 5xx is `{"error": {"message", "type", "param", "code"}}`, nothing else."""
    if response.status_code < 400:
        return None
    assert response.headers.get("content-type", [""])[0].startswith("application/json")
    envelope_error(response.json())
    return True


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("label", OPERATIONS)
def test_the_api_holds_against_generated_requests(
    served: schemathesis.BaseSchema, module_stack: LiveStack, label: str, mode: GenerationMode
) -> None:
    operation = served.find_operation_by_label(label)
    assert operation is not None, f"{label} is not in the served document"

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def holds(case: Case[Any]) -> None:
        checks: list[Any] = [openai_error_envelope]
        excluded: list[Any] = []
        if label in LISTS and mode == GenerationMode.POSITIVE:
            checks.append(accepted_or_unknown_cursor)
            excluded.append(positive_data_acceptance)
        case.call_and_validate(
            base_url=module_stack.base_url,
            additional_checks=checks,
            excluded_checks=excluded,
            timeout=30,
        )

    try:
        holds()
    except Unsatisfiable:
        # Every request the document allows is valid here (a path id of any text, say): the
        # negative mode has nothing to generate.
        pytest.skip(f"no request to {label} can break its schema")
