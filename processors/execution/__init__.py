"""Execution: batches cut into slices, claimed by priority and shared fairly, sent downstream."""
