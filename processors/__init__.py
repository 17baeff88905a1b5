"""Processors: the consumers that validate new batches and (next) execute queued jobs."""
