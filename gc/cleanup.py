"""Running the cleanups events call for, and the orphan sweep over storage.

- The bytes of a file that was deleted or expired are deleted (the API deletes them on a
  delete too, best-effort; whoever is second finds nothing and counts nothing).
- A batch that ended leaves nothing behind: its committed result chunks (copied into its
  output and error files before the terminal event, so nothing reads them again), chunks a
  processor that lost its job wrote late, its captured pass-through headers, and an error file
  the gc published for an expiry that lost to a processor's claim.
- The orphan sweep removes objects under `files/` that no active file names and objects under
  `results/` whose batch is unknown or ended, once they are older than the grace period (an
  upload stores its bytes before its event is appended; a chunk is stored before the event
  that commits it), and abandoned `.partial` temp files anywhere. It decides from the gc's
  view of the log, read up to date after the listing, never from the projections.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from batch_gateway.gc.expiry import Expirer, expiry_error_file_id
from batch_gateway.gc.metrics import DeletionKind, Tally
from batch_gateway.gc.schedule import Cleanup, EndBatch, RemoveFileBytes, Schedule
from batch_gateway.logs import batch_context
from batch_gateway.secret_store import SecretStore
from batch_gateway.storage import ObjectStorage, StoredObject, result_chunk_prefix
from batch_gateway.storage.partial_file import PARTIAL_SUFFIX

logger = logging.getLogger(__name__)

SWEPT_PREFIXES = ("files/", "results/")


class Cleaner:
    def __init__(
        self,
        storage: ObjectStorage,
        secrets: SecretStore,
        expirer: Expirer,
        schedule: Schedule,
        *,
        dry_run: bool,
    ) -> None:
        self._storage = storage
        self._secrets = secrets
        self._expirer = expirer
        self._schedule = schedule
        self._dry_run = dry_run

    async def run(self, cleanup: Cleanup, tally: Tally) -> None:
        match cleanup:
            case RemoveFileBytes():
                await self._delete(cleanup.storage_key, cleanup.size, "file", tally)
            case EndBatch():
                with batch_context(cleanup.batch_id):
                    await self._end_batch(cleanup, tally)

    async def _end_batch(self, cleanup: EndBatch, tally: Tally) -> None:
        prefix = result_chunk_prefix(cleanup.tenant, cleanup.batch_id)
        leftovers = [stored async for stored in self._storage.list(prefix)]
        for stored in leftovers:
            await self._delete(stored.key, stored.size, "chunk", tally)
        if self._dry_run:
            return
        await self._secrets.delete(cleanup.batch_id)
        # An error file the gc published for an expiry that lost to a processor's claim.
        unused = expiry_error_file_id(cleanup.batch_id)
        if cleanup.error_file_id != unused and self._schedule.is_active_file(unused):
            await self._expirer.withdraw_error_file(cleanup.batch_id)

    async def list_orphan_candidates(self, now: float, grace_seconds: float) -> list[StoredObject]:
        """Objects old enough to be orphans; list them BEFORE bringing the view up to date."""
        candidates: list[StoredObject] = []
        for prefix in SWEPT_PREFIXES:
            async for stored in self._storage.list(prefix):
                if now - stored.modified_at >= grace_seconds:
                    candidates.append(stored)
        return candidates

    async def remove_orphans(self, candidates: Sequence[StoredObject], tally: Tally) -> None:
        for stored in candidates:
            if self.is_orphan(stored.key):
                await self._delete(stored.key, stored.size, "orphan", tally)

    def is_orphan(self, key: str) -> bool:
        if key.endswith(PARTIAL_SUFFIX):
            return True  # a write that never completed, older than any write takes
        if key.startswith("files/"):
            return not self._schedule.is_active_file_key(key)
        parts = key.split("/")
        if parts[0] != "results" or len(parts) < 4:
            return False
        batch = self._schedule.batches.get(parts[2])
        if batch is None or batch.terminal:
            return True
        # A live batch's chunks stay, unless the key does not belong to it (a forged tenant).
        return not key.startswith(result_chunk_prefix(batch.tenant, batch.id))

    async def _delete(self, key: str, size: int, kind: DeletionKind, tally: Tally) -> None:
        if self._dry_run:
            if key not in tally.planned and await self._storage.exists(key):
                tally.planned.add(key)
                logger.info("dry run: would delete %s (%s, %d bytes)", key, kind, size)
                tally.deletion(kind, size, dry_run=True)
            return
        if await self._storage.delete(key):
            logger.info("deleted %s (%s, %d bytes)", key, kind, size)
            tally.deletion(kind, size, dry_run=False)
