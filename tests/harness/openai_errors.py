"""Checking OpenAI's error envelope on raw HTTP responses."""

from __future__ import annotations

from typing import Any

import httpx


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """The `error` object of `response`, after checking its status and exact shape."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    return envelope_error(response.json())


def envelope_error(body: Any) -> dict[str, Any]:
    """The `error` object of a decoded error body, after checking its exact shape."""
    assert isinstance(body, dict)
    assert list(body) == ["error"], body
    error: dict[str, Any] = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["type"], str)
    assert error["param"] is None or isinstance(error["param"], str)
    assert error["code"] is None or isinstance(error["code"], str)
    return error
