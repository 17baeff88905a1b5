"""The console in a real browser (headless Chromium), served under a path prefix through a
proxy, as behind the chart's HTTPRoute: a user creates a batch from the page, watches it
validate and run live, downloads its results, cancels another; another tenant sees nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from openai import OpenAI
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.console.conftest import FAILING_MODEL, KEYS, TENANT_HEADER
from tests.harness.batch_helpers import CHAT, chat_file, chat_line, create_batch, jsonl
from tests.harness.browser import screenshot_directory
from tests.harness.live_stack import LiveStack
from tests.harness.prefix_proxy import USER_COOKIE
from tests.harness.sdk import sdk_client

# Long enough to watch: 0.05 s a request, 4 at a time.
WATCHED_REQUESTS = 240
TIMEOUT_MS = 30_000


def sdk(stack: LiveStack, tenant: str) -> OpenAI:
    return OpenAI(
        base_url=f"{stack.base_url}/v1",
        api_key="unused",
        default_headers={TENANT_HEADER: tenant},
        max_retries=0,
    )


def signed_in(browser: Browser, prefixed: str, user: str) -> BrowserContext:
    """A browser session the auth proxy in front knows as `user` (by its session cookie)."""
    context = browser.new_context(accept_downloads=True, viewport={"width": 1360, "height": 900})
    context.add_cookies([{"name": USER_COOKIE, "value": user, "url": prefixed}])
    context.set_default_timeout(TIMEOUT_MS)
    return context


@pytest.fixture
def alice(browser: Browser, prefixed: str) -> Iterator[BrowserContext]:
    context = signed_in(browser, prefixed, "alice")
    yield context
    context.close()


def stays_loaded(page: Page) -> None:
    """Mark the document, so that a later check can tell that no reload happened."""
    page.evaluate("window.__notReloaded = true")


def was_not_reloaded(page: Page) -> bool:
    return bool(page.evaluate("window.__notReloaded === true"))


def count_of(page: Page, element_id: str) -> int:
    return int(page.locator(f"#{element_id}").inner_text())


def eventually(page: Page, check: Callable[[], bool], what: str) -> None:
    """Poll `check` from here: the page's CSP forbids the eval that `wait_for_function` needs."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {TIMEOUT_MS} ms: {what}")
        page.wait_for_timeout(100)


def test_a_batch_created_on_the_page_runs_live_and_its_results_download(
    alice: BrowserContext, prefixed: str, tmp_path: Path
) -> None:
    page = alice.new_page()
    page.goto(prefixed + "console/new")
    expect(page.locator("#tenant")).to_have_text("alice")
    page.set_input_files(
        "input[name=file]",
        {"name": "input.jsonl", "mimeType": "application/jsonl", "buffer": chat_file(200)},
    )
    page.select_option("select[name=endpoint]", CHAT)
    page.select_option("select[name=priority]", "high")
    page.fill("textarea[name=metadata]", "project=console")
    page.screenshot(path=screenshot_directory(tmp_path) / "new-batch.png")
    page.click("button[type=submit]")

    page.wait_for_url("**/console/batches/batch_*")
    assert page.url.startswith(prefixed + "console/batches/batch_")
    stays_loaded(page)
    expect(page.locator("#status")).to_have_text("in progress")
    # Rendered while the batch validated; its model came with the validation's event.
    expect(page.locator("#model")).to_have_text("m1")
    eventually(page, lambda: count_of(page, "completed") > 0, "progress shows")
    first = count_of(page, "completed")
    eventually(page, lambda: count_of(page, "completed") > first + 20, "progress moves")
    assert was_not_reloaded(page)
    expect(page.locator("#live")).to_be_visible()

    expect(page.locator("#status")).to_have_text("completed", timeout=TIMEOUT_MS)
    assert count_of(page, "completed") == 200
    assert was_not_reloaded(page)
    # The chart was drawn from the progress events, and the timeline reached its end.
    expect(page.locator("#chart canvas")).to_have_count(1)
    expect(page.locator("#timeline li.reached")).to_have_count(4)
    assert int(page.locator("#total-tokens").inner_text()) > 0
    page.screenshot(path=screenshot_directory(tmp_path) / "batch.png", full_page=True)

    with page.expect_download() as downloading:
        page.locator("#output-file a").click()
    lines = Path(downloading.value.path()).read_bytes().splitlines()
    assert sorted(json.loads(line)["custom_id"] for line in lines) == sorted(
        f"r{i}" for i in range(200)
    )
    assert downloading.value.suggested_filename.endswith("_output.jsonl")
    assert "priority high" in page.locator(".summary").inner_text()

    # Opened again once ended: the replay rebuilds the same figures, and no rate below zero.
    shown = {name: page.locator(f"#{name}").inner_text() for name in ("rate", "completed")}
    page.reload()
    expect(page.locator("#status")).to_have_text("completed")
    expect(page.locator("#chart canvas")).to_have_count(1)
    assert {name: page.locator(f"#{name}").inner_text() for name in shown} == shown
    assert page.evaluate("Math.min(...series.requests, ...series.tokens)") >= 0


def test_the_list_shows_a_running_batch_whose_progress_moves_without_a_reload(
    alice: BrowserContext, prefixed: str, console_stack: LiveStack, tmp_path: Path
) -> None:
    client = sdk(console_stack, "alice")
    batch = create_batch(client, chat_file(4 * WATCHED_REQUESTS), metadata={"priority": "low"})
    page = alice.new_page()
    page.goto(prefixed + "console/?status=active")
    row = page.locator(f"tr[data-batch='{batch.id}']")
    expect(row).to_have_count(1)
    stays_loaded(page)
    expect(row).to_have_attribute("data-status", "in_progress", timeout=TIMEOUT_MS)

    def done() -> int:
        return int(row.locator(".bar").get_attribute("aria-valuenow") or 0)

    eventually(page, lambda: done() > 0, "the row shows progress")
    first = done()
    eventually(page, lambda: done() > first, "the row's progress moves")
    assert was_not_reloaded(page)
    assert "low" in row.inner_text()
    assert "/v1/chat/completions" in row.inner_text()
    page.goto(prefixed + "console/")
    page.screenshot(path=screenshot_directory(tmp_path) / "batches.png", full_page=True)
    client.batches.cancel(batch.id)
    page.goto(prefixed + "console/?status=active")
    expect(page.locator(f"tr[data-batch='{batch.id}']")).to_have_count(0)
    page.goto(prefixed + "console/?status=cancelled")
    expect(page.locator(f"tr[data-batch='{batch.id}']")).to_have_count(1)


def test_cancel_from_the_batch_page_and_the_api_409_rule(
    alice: BrowserContext, prefixed: str, console_stack: LiveStack
) -> None:
    client = sdk(console_stack, "alice")
    # Several slices (500 requests each): one claimed after the cancel announces itself with
    # batch.in_progress, which must not take the page back to "in progress".
    running = create_batch(client, chat_file(1_500))
    page = alice.new_page()
    page.goto(prefixed + f"console/batches/{running.id}")
    expect(page.locator("#status")).to_have_text("in progress")
    page.evaluate(
        "window.__statuses = [];"
        "new MutationObserver(() => window.__statuses.push("
        "document.getElementById('status').textContent))"
        ".observe(document.getElementById('status'), {childList: true, characterData: true,"
        " subtree: true})"
    )
    page.click("#cancel")
    expect(page.locator("#status")).to_have_text("cancelled", timeout=TIMEOUT_MS)
    seen: list[str] = page.evaluate("window.__statuses")
    after_cancel = seen[seen.index("cancelling") :]
    assert "in progress" not in after_cancel, seen
    expect(page.locator("#timeline li[data-step=cancelling].reached")).to_have_count(1)
    expect(page.locator("#eta")).to_have_text("\N{EN DASH}")
    expect(page.locator("#cancel")).to_be_disabled()
    assert client.batches.retrieve(running.id).status == "cancelled"

    # The button is off for an ended batch; pressed anyway, the API's 409 is what shows.
    page.evaluate("document.getElementById('cancel').disabled = false")
    page.click("#cancel")
    expect(page.locator("#message")).to_have_text("Cannot cancel a batch with status 'cancelled'.")


def test_an_invalid_file_shows_its_line_errors(alice: BrowserContext, prefixed: str) -> None:
    lines = [chat_line("a"), {"custom_id": "b", "method": "POST"}, chat_line("c")]
    content = jsonl(lines) + b"not json\n"
    page = alice.new_page()
    page.goto(prefixed + "console/new/")  # with a slash: the links must not care
    page.set_input_files(
        "input[name=file]", {"name": "bad.jsonl", "mimeType": "text/plain", "buffer": content}
    )
    page.click("button[type=submit]")
    page.wait_for_url("**/console/batches/batch_*")
    expect(page.locator("#status")).to_have_text("failed")
    errors = page.locator("#errors tr")
    expect(errors).to_have_count(2)
    assert errors.nth(0).locator("td").first.inner_text() == "2"
    assert errors.nth(1).locator("td").first.inner_text() == "4"


def test_an_upload_the_api_refuses_shows_its_message(alice: BrowserContext, prefixed: str) -> None:
    page = alice.new_page()
    page.goto(prefixed + "console/new")
    too_long = "a" * 600 + ".jsonl"  # the API takes names of up to 512 characters
    page.set_input_files(
        "input[name=file]",
        {"name": too_long, "mimeType": "text/plain", "buffer": chat_file(1)},
    )
    page.click("button[type=submit]")
    expect(page.locator("#message")).to_have_text(
        "400: The filename is longer than 512 characters."
    )
    assert page.url.endswith("console/new")


def test_the_error_file_of_failed_requests_downloads_from_the_page(
    alice: BrowserContext, prefixed: str, console_stack: LiveStack
) -> None:
    batch = create_batch(sdk(console_stack, "alice"), chat_file(3, FAILING_MODEL))
    page = alice.new_page()
    page.goto(prefixed + f"console/batches/{batch.id}")
    expect(page.locator("#status")).to_have_text("completed")
    assert count_of(page, "failed") == 3
    expect(page.locator("#output-file")).to_have_text("\N{EN DASH}")
    with page.expect_download() as downloading:
        page.locator("#error-file a").click()
    lines = [json.loads(line) for line in Path(downloading.value.path()).read_bytes().splitlines()]
    assert sorted(line["custom_id"] for line in lines) == ["r0", "r1", "r2"]
    assert {line["response"]["status_code"] for line in lines} == {500}


def test_another_tenant_sees_nothing(
    browser: Browser, prefixed: str, console_stack: LiveStack
) -> None:
    alices = create_batch(sdk(console_stack, "alice"), chat_file(3, FAILING_MODEL))
    context = signed_in(browser, prefixed, "bob")
    page = context.new_page()
    page.goto(prefixed + "console/")
    expect(page.locator("#tenant")).to_have_text("bob")
    expect(page.locator("#rows tr[data-batch]")).to_have_count(0)
    response = page.goto(prefixed + f"console/batches/{alices.id}")
    assert response is not None
    assert response.status == 404
    expect(page.locator("h1")).to_have_text("No such batch")
    stream = page.request.get(prefixed + f"v1/batches/{alices.id}/events")
    assert stream.status == 404
    download = page.request.get(prefixed + f"v1/files/{alices.input_file_id}/content")
    assert download.status == 404
    context.close()


def test_signing_in_with_an_api_key_opens_the_console_its_stream_and_downloads(
    browser: Browser, keyed_stack: LiveStack, tmp_path: Path
) -> None:
    (key, tenant), *_ = KEYS.items()
    with sdk_client(keyed_stack, api_key=key) as client:
        batch = create_batch(client, chat_file(3))
    context = browser.new_context(accept_downloads=True, viewport={"width": 1360, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(keyed_stack.base_url + "/console")
    page.wait_for_url("**/console/login")
    page.fill("input[name=key]", "sk-wrong-key-000")
    page.click("button[type=submit]")
    expect(page.locator(".error")).to_contain_text("Incorrect API key provided")
    page.screenshot(path=screenshot_directory(tmp_path) / "sign-in.png")
    page.fill("input[name=key]", key)
    page.click("button[type=submit]")
    expect(page.locator("#tenant")).to_have_text(tenant)
    page.click(f"a[href$='{batch.id}']")
    # The cookie stands in for the key on the event stream and on a download.
    expect(page.locator("#live")).to_be_visible()
    with page.expect_download() as downloading:
        page.locator("#input-file").click()
    assert Path(downloading.value.path()).read_bytes() == chat_file(3)
    page.click("text=Sign out")
    page.wait_for_url("**/console/login")
    assert page.request.get(keyed_stack.base_url + "/v1/batches").status == 401
    context.close()
