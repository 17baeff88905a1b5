"""The console's pages over plain HTTP: signing in where the gateway asks for API keys, the
same tenancy as the API, escaping what callers wrote, and the switch that turns it off."""

from __future__ import annotations

import httpx

from tests.harness.batch_helpers import chat_file, create_batch
from tests.harness.live_stack import LiveStack, StartStack
from tests.harness.sdk import sdk_client

KEYS = {"sk-console-alice-0001": "alice", "sk-console-bob-00002": "bob"}


def browser_like(stack: LiveStack) -> httpx.Client:
    return httpx.Client(base_url=stack.base_url, follow_redirects=False, timeout=10)


def test_signing_in_with_an_api_key_scopes_the_console_and_the_api_to_its_tenant(
    start_stack: StartStack,
) -> None:
    stack = start_stack(api_keys=KEYS, with_processor=False)
    with sdk_client(stack, api_key="sk-console-alice-0001") as alice:
        batch = create_batch(alice, chat_file(2))
    with browser_like(stack) as browser:
        away = browser.get("/console/")
        assert away.status_code == 303
        assert away.headers["location"] == "../console/login"

        wrong = browser.post("/console/login", data={"key": "sk-not-a-key-at-all"})
        assert wrong.status_code == 401
        assert "Incorrect API key provided: sk-" in wrong.text
        assert "batch_gateway_key" not in browser.cookies

        signed = browser.post("/console/login", data={"key": "sk-console-alice-0001"})
        assert signed.status_code == 303
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "samesite=strict" in cookie.lower()
        assert "Path=/" in cookie

        listing = browser.get("/console/")
        assert listing.status_code == 200
        assert '<strong id="tenant">alice</strong>' in listing.text
        assert batch.id in listing.text
        # The same cookie stands in for the bearer key on the API the page's scripts call.
        api = browser.get(f"/v1/batches/{batch.id}")
        assert api.status_code == 200
        assert api.json()["id"] == batch.id

        browser.post("/console/logout")
        assert browser.get("/console/").status_code == 303

        browser.post("/console/login", data={"key": "sk-console-bob-00002"})
        assert batch.id not in browser.get("/console/").text
        assert browser.get(f"/console/batches/{batch.id}").status_code == 404
        assert browser.get(f"/v1/batches/{batch.id}").status_code == 404


def test_a_bearer_key_still_wins_over_the_cookie(start_stack: StartStack) -> None:
    stack = start_stack(api_keys=KEYS, with_processor=False)
    with browser_like(stack) as browser:
        browser.post("/console/login", data={"key": "sk-console-alice-0001"})
        as_bob = browser.get("/console/", headers={"Authorization": "Bearer sk-console-bob-00002"})
        assert '<strong id="tenant">bob</strong>' in as_bob.text


def test_pages_escape_what_a_caller_wrote(start_stack: StartStack) -> None:
    stack = start_stack(with_processor=False)
    hostile = "<script>alert(1)</script>"
    with sdk_client(stack, default_headers={"X-MaaS-Username": "<b>x</b>"}) as client:
        batch = create_batch(client, chat_file(1), metadata={"note": hostile, hostile: "v"})
    with browser_like(stack) as browser:
        headers = {"X-MaaS-Username": "<b>x</b>"}
        page = browser.get(f"/console/batches/{batch.id}", headers=headers)
        assert page.status_code == 200
        assert hostile not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
        assert "&lt;b&gt;x&lt;/b&gt;" in page.text
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy


def test_list_paging_filters_and_stale_cursors(start_stack: StartStack) -> None:
    stack = start_stack(with_processor=False)
    headers = {"X-MaaS-Username": "pager"}
    with sdk_client(stack, default_headers=headers) as client:
        ids = [create_batch(client, chat_file(1)).id for _ in range(22)]
    with browser_like(stack) as browser:
        first = browser.get("/console/", headers=headers).text
        assert all(batch_id in first for batch_id in ids[2:])  # newest first, 20 a page
        assert ids[0] not in first
        assert f'href="?after={ids[2]}"' in first
        older = browser.get(f"/console/?after={ids[2]}", headers=headers).text
        assert ids[1] in older
        assert ids[0] in older
        assert ids[5] not in older
        # A filter with no match, an unknown filter (all), a cursor of another tenant's batch.
        assert (
            "No batches with this status"
            in browser.get("/console/?status=expired", headers=headers).text
        )
        unknown = browser.get("/console/?status=nonsense", headers=headers).text
        assert ids[21] in unknown
        assert '<a href="./" aria-current="page">all</a>' in unknown
        stale = browser.get(f"/console/?after={ids[2]}", headers={"X-MaaS-Username": "other"})
        assert stale.status_code == 200
        mangled = browser.get("/console/?after=not-a-batch", headers=headers)
        assert mangled.status_code == 200
        assert ids[21] in mangled.text
        bad = browser.get("/console/?status=" + "x" * 5, headers={"X-MaaS-Username": "\x01"})
        assert bad.status_code == 400
        assert "text/html" in bad.headers["content-type"]
        assert "not a valid tenant name" in bad.text
        rows = browser.get("/console/rows?status=validating", headers=headers)
        assert rows.status_code == 200
        assert "<html" not in rows.text


def test_the_console_can_be_switched_off(start_stack: StartStack) -> None:
    stack = start_stack(console=False, with_processor=False)
    with browser_like(stack) as browser:
        assert browser.get("/console/").status_code == 404
        assert browser.get("/console/static/console.css").status_code == 404
        assert browser.get("/v1/batches").status_code == 200


def test_console_without_a_slash_redirects_into_its_folder(start_stack: StartStack) -> None:
    stack = start_stack(with_processor=False)
    with browser_like(stack) as browser:
        moved = browser.get("/console")
        assert moved.status_code == 308
        assert moved.headers["location"] == "console/"
        no_batch = browser.get("/console/batches/")
        assert no_batch.status_code == 303
        assert no_batch.headers["location"] == "../../console/"
        script = browser.get("/console/static/vendor/uplot-1.6.32/uPlot.iife.min.js")
        assert script.status_code == 200
        assert "uPlot" in script.text
