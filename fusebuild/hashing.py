"""The one hash function: sha256, of bytes or of canonical JSON.

Graph digests, up-to-date keys, cache action digests and file fingerprints all go
through here, so two keys built from the same fields are the same string everywhere.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical(obj) -> bytes:
    """JSON with sorted keys; anything not JSON-able is written as its str()."""
    return json.dumps(obj, sort_keys=True, default=str).encode()


def digest(obj) -> str:
    return sha256(canonical(obj))


def file_sha256(path) -> str | None:
    """The file's sha256, or None if it cannot be read."""
    try:
        return sha256(Path(path).read_bytes())
    except OSError:
        return None
