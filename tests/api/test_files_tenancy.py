"""Tenancy: from a trusted header or from API keys; another tenant's file is a 404 everywhere."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from batch_gateway.storage import file_object_key
from tests.harness.live_stack import LiveStack, StartStack
from tests.harness.openai_errors import error_of
from tests.harness.sdk import sdk_client
from tests.harness.stored_files import stored_files

HEADER = "X-MaaS-Username"
API_KEYS = {"sk-alice-0123456789": "alice", "sk-bob-0123456789": "bob"}


def upload(http: httpx.Client, headers: list[tuple[str, str]] | None = None) -> dict[str, str]:
    response = http.post(
        "/v1/files",
        data={"purpose": "batch"},
        files={"file": ("in.jsonl", b"{}\n")},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    created: dict[str, str] = response.json()
    return created


def listed(http: httpx.Client, headers: dict[str, str] | None = None) -> list[str]:
    return [file["id"] for file in http.get("/v1/files", headers=headers).json()["data"]]


@pytest.fixture
def stack(live_stack: LiveStack) -> LiveStack:
    # A stack of this test's own: "default" and every named tenant start empty there.
    return live_stack


@pytest.fixture
def raw(stack: LiveStack) -> Iterator[httpx.Client]:
    """A client that sends no tenant header unless a request adds one."""
    with httpx.Client(base_url=stack.base_url) as client:
        yield client


def test_another_tenants_file_is_a_404_everywhere(stack: LiveStack, raw: httpx.Client) -> None:
    alice, bob = {HEADER: "alice"}, {HEADER: "bob"}
    file_id = upload(raw, list(alice.items()))["id"]

    for method, suffix in [("GET", ""), ("GET", "/content"), ("DELETE", "")]:
        response = raw.request(method, f"/v1/files/{file_id}{suffix}", headers=bob)
        error = error_of(response, 404)
        assert file_id in error["message"]
        assert "alice" not in error["message"]
    assert listed(raw, bob) == []
    assert listed(raw, {HEADER: "ALICE"}) == []
    assert listed(raw) == []  # no header: the "default" tenant
    error_of(raw.get("/v1/files", params={"after": file_id}, headers=bob), 400)

    # Bob's failed delete changed nothing for Alice.
    assert listed(raw, alice) == [file_id]
    assert raw.get(f"/v1/files/{file_id}/content", headers=alice).content == b"{}\n"
    assert len(stored_files(stack.settings)) == 1


def test_the_last_tenant_header_wins(raw: httpx.Client) -> None:
    file_id = upload(raw, [(HEADER, "mallory"), (HEADER, "alice")])["id"]

    assert listed(raw, {HEADER: "alice"}) == [file_id]
    assert listed(raw, {HEADER: "mallory"}) == []
    as_alice = raw.get(f"/v1/files/{file_id}", headers=[(HEADER, "bob"), (HEADER, "alice")])
    as_bob = raw.get(f"/v1/files/{file_id}", headers=[(HEADER, "alice"), (HEADER, "bob")])
    assert (as_alice.status_code, as_bob.status_code) == (200, 404)


def test_an_empty_last_tenant_header_wins_too(raw: httpx.Client) -> None:
    """An empty last value means no tenant (the default one), not the value before it: a proxy
    that appends an empty header must not leave the client's own header in charge."""
    file_id = upload(raw, [(HEADER, "alice")])["id"]

    headers = [(HEADER, "alice"), (HEADER, "")]
    assert raw.get(f"/v1/files/{file_id}", headers=headers).status_code == 404
    assert raw.get("/v1/files", headers=headers).json()["data"] == []
    mine = upload(raw, [(HEADER, "alice"), (HEADER, "")])["id"]
    assert listed(raw, {HEADER: "default"}) == [mine]


def test_no_tenant_header_is_the_default_tenant(raw: httpx.Client) -> None:
    file_id = upload(raw)["id"]

    assert listed(raw, {HEADER: "default"}) == [file_id]
    assert listed(raw, {HEADER: ""}) == [file_id]
    assert listed(raw, {HEADER: "someone"}) == []


def test_the_tenant_header_name_is_configurable(start_stack: StartStack) -> None:
    stack = start_stack(tenant_header="X-Tenant")
    with httpx.Client(base_url=stack.base_url) as raw:
        file_id = upload(raw, [("x-tenant", "alice"), (HEADER, "bob")])["id"]

        assert listed(raw, {"X-Tenant": "alice"}) == [file_id]
        assert listed(raw, {HEADER: "bob"}) == []


# b"\x85" is legal on the wire (obs-text) and a C1 control character once decoded.
@pytest.mark.parametrize("name", [b"a\x85b", b"x" * 257])
def test_an_unusable_tenant_name_is_refused(raw: httpx.Client, name: bytes) -> None:
    response = raw.get("/v1/files", headers={HEADER.encode(): name})

    error_of(response, 400)


def test_tenants_are_kept_apart_in_storage(stack: LiveStack, raw: httpx.Client) -> None:
    alice = upload(raw, [(HEADER, "alice")])["id"]
    bob = upload(raw, [(HEADER, "../alice")])["id"]

    assert stored_files(stack.settings) == sorted(
        [file_object_key("alice", alice), file_object_key("../alice", bob)]
    )


@pytest.fixture
def keyed(start_stack: StartStack) -> LiveStack:
    return start_stack(api_keys=API_KEYS)


@pytest.mark.parametrize(
    "authorization", [None, "", "Bearer", "Basic c2stYWxpY2U=", "sk-alice-0123456789"]
)
def test_a_missing_api_key_is_a_401(keyed: LiveStack, authorization: str | None) -> None:
    headers = {} if authorization is None else {"authorization": authorization}
    with httpx.Client(base_url=keyed.base_url) as raw:
        for method, path in [("GET", "/v1/files"), ("POST", "/v1/files"), ("GET", "/v1/files/x")]:
            error = error_of(raw.request(method, path, headers=headers), 401)
            assert error["type"] == "invalid_request_error"
            assert "API key" in error["message"]


def test_an_unknown_api_key_is_a_401_that_does_not_echo_it(keyed: LiveStack) -> None:
    key = "sk-eve-secret-0123456789"
    with httpx.Client(base_url=keyed.base_url) as raw:
        response = raw.get("/v1/files", headers={"authorization": f"Bearer {key}"})

    error = error_of(response, 401)
    assert error["code"] == "invalid_api_key"
    assert key not in error["message"]
    assert "secret" not in error["message"]


def test_the_sdk_sees_a_bad_key_as_an_authentication_error(keyed: LiveStack) -> None:
    with (
        sdk_client(keyed, api_key="sk-wrong") as client,
        pytest.raises(openai.AuthenticationError) as raised,
    ):
        client.files.list()

    assert raised.value.code == "invalid_api_key"


def test_api_keys_keep_their_tenants_apart(keyed: LiveStack) -> None:
    with (
        sdk_client(keyed, api_key="sk-alice-0123456789") as alice,
        sdk_client(keyed, api_key="sk-bob-0123456789") as bob,
        # With API keys the tenant header is not trusted: it cannot make Bob into Alice.
        sdk_client(keyed, api_key="sk-bob-0123456789", default_headers={HEADER: "alice"}) as spoof,
    ):
        created = alice.files.create(file=("a.jsonl", b"{}\n"), purpose="batch")

        assert [f.id for f in alice.files.list()] == [created.id]
        for client in (bob, spoof):
            assert list(client.files.list()) == []
            with pytest.raises(openai.NotFoundError):
                client.files.retrieve(created.id)
            with pytest.raises(openai.NotFoundError):
                client.files.content(created.id)
            with pytest.raises(openai.NotFoundError):
                client.files.delete(created.id)
        assert alice.files.content(created.id).content == b"{}\n"
        assert alice.files.delete(created.id).deleted is True


def test_probes_need_no_api_key(keyed: LiveStack) -> None:
    with httpx.Client(base_url=keyed.base_url) as raw:
        assert raw.get("/health").status_code == 200
        assert raw.get("/ready").status_code == 200
        assert raw.get("/metrics").status_code == 200


def test_sdk_clients_with_other_tenant_headers_see_their_own_files(stack: LiveStack) -> None:
    with (
        sdk_client(stack, default_headers={HEADER: "alice"}) as alice,
        sdk_client(stack, default_headers={HEADER: "bob"}) as bob,
    ):
        mine = alice.files.create(file=("a.jsonl", b"{}\n"), purpose="batch")
        theirs = bob.files.create(file=("b.jsonl", b"{}\n"), purpose="batch")

        assert [f.id for f in alice.files.list()] == [mine.id]
        assert [f.id for f in bob.files.list()] == [theirs.id]
