"""The Files API tests use the live-stack fixtures of tests/conftest.py (`module_stack`,
`tenant`, `client`, `http`, `start_stack`), shared with tests/batches."""
