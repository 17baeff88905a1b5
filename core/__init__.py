"""Batch Gateway: an OpenAI-compatible Batch API, event-sourced on Redis Streams.

The physical folders `gateway/`, `projections/`, `processors/`, `gc/`, `events/` and
`storage/` are mapped under this namespace (see ADR 0001); this folder holds the pieces
every component shares: settings, the error tree, ids, logging and the command line.
"""
