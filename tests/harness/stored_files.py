"""What a filesystem-backed stack really holds on disk, looked at from behind the API."""

from __future__ import annotations

from pathlib import Path

from batch_gateway.gateway.settings import ApiServerSettings


def stored_files(settings: ApiServerSettings) -> list[str]:
    """Every regular file under the storage root (temp files included), relative to it."""
    assert settings.storage.kind == "filesystem"
    root = Path(settings.storage.fs_root)
    if not root.exists():
        return []
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())
