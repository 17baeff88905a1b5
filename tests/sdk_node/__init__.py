"""The official OpenAI Node SDK (npm `openai`, pinned in package-lock.json) against a live
stack: tests/sdk_node/batch_lifecycle.mjs drives it, test_node_sdk.py checks what it saw."""
