import json

from openai import OpenAI

from tests.harness.live_stack import LiveStack


def _jsonl(lines: list[dict[str, object]]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def test_create_validate_cancel(live_stack: LiveStack) -> None:
    client = OpenAI(
        base_url=f"{live_stack.base_url}/v1", api_key="x", _strict_response_validation=True
    )
    lines = [
        {"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "m1", "messages": [{"role": "user", "content": "hi"}]}}
        for i in range(3)
    ]  # fmt: skip
    f = client.files.create(file=("in.jsonl", _jsonl(lines)), purpose="batch")
    batch = client.batches.create(
        input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.status == "validating"
    print(batch)
    import time

    for _ in range(50):
        batch = client.batches.retrieve(batch.id)
        if batch.status != "validating":
            break
        time.sleep(0.1)
    print(batch)
    assert batch.status == "in_progress"
    assert batch.request_counts is not None and batch.request_counts.total == 3
    assert batch.model == "m1"
    cancelled = client.batches.cancel(batch.id)
    print(cancelled)
    assert cancelled.status == "cancelled"
    assert [b.id for b in client.batches.list()] == [batch.id]

    bad = client.files.create(
        file=("bad.jsonl", b'{"custom_id": "a"}\nnot json\n'), purpose="batch"
    )
    failed = client.batches.create(
        input_file_id=bad.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    for _ in range(50):
        failed = client.batches.retrieve(failed.id)
        if failed.status != "validating":
            break
        time.sleep(0.1)
    print(failed)
    assert failed.status == "failed"
