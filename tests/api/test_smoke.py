from pathlib import Path

from openai import OpenAI

from tests.harness.live_stack import LiveStack


def test_upload_and_read_back(live_stack: LiveStack, tmp_path: Path) -> None:
    client = OpenAI(
        base_url=f"{live_stack.base_url}/v1", api_key="x", _strict_response_validation=True
    )
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"a": 1}\n')
    uploaded = client.files.create(file=path, purpose="batch")
    assert client.files.retrieve(uploaded.id) == uploaded
    assert [f.id for f in client.files.list()] == [uploaded.id]
