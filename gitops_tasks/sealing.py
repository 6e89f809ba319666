"""Cache entries that carry Secret data are never stored in clear.

The render cache and the dry-run cache keep manifests and predicted objects in Redis for days;
a Secret among them would put its data there for anyone who can read Redis. An entry that holds
Secret data is sealed with Fernet (AES-128-CBC and HMAC-SHA256, from `cryptography`) under the
keys of GITOPS_TASKS_CACHE_ENCRYPTION_KEYS (the first seals; every one opens, so keys rotate
without losing the cache). With no key configured, a process seals under a random key of its
own that never leaves its memory: its entries help only itself (a refresh after a sync still
needs no dry-run of the app's Secrets), and other processes miss them, so workers share Secret
entries only when they share a configured key. Entries without Secret data stay plain: they are
most of the cache and cost nothing to seal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

# Marks a sealed entry; plain entries are zlib streams, which never start with it.
SEALED = b"gitops-sealed-v1:"


def holds_secret_data(objects: Iterable[Any]) -> bool:
    """True when any object is a Secret with values (data or stringData)."""
    return any(isinstance(o, dict) and o.get("kind") == "Secret"
               and (o.get("data") or o.get("stringData")) for o in objects)


class Sealer:
    def __init__(self, keys: Sequence[str] = ()) -> None:
        self.shared = bool(keys)
        self._fernet = MultiFernet([Fernet(k) for k in keys] if keys
                                   else [Fernet(Fernet.generate_key())])

    def seal(self, blob: bytes) -> bytes:
        return SEALED + self._fernet.encrypt(blob)

    def open(self, blob: bytes) -> bytes | None:
        """The plain bytes of a stored entry; None for a sealed entry no key here opens."""
        if not blob.startswith(SEALED):
            return blob
        try:
            return self._fernet.decrypt(blob[len(SEALED):])
        except InvalidToken:
            return None


def valid_key(text: str) -> bool:
    try:
        Fernet(text)
    except (ValueError, TypeError):
        return False
    return True
