"""The client side: the `batch-gateway` commands for people and scripts (`submit`, `ls`, `get`,
`cancel`, `tail`, `download`, `files ...`), the event-stream client that follows a batch live,
and the progress view they print. Nothing of the server imports this package."""
