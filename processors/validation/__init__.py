"""Validation: new batches' input files checked line by line, then queued or failed."""
