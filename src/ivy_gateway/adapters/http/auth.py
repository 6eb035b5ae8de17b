"""Bearer tokens for the HTTP API, stored only as hashes.

Two hash formats are accepted per token name:

- ``sha256:<64 hex digits>`` (recommended, ``hash_token``). A token is 32 random bytes
  (``generate_token``), so it cannot be guessed or brute-forced from its digest; a slow
  password hash buys nothing here and would cost ~100 ms of CPU per request. Digests are
  compared with ``hmac.compare_digest`` against every configured token, so timing reveals
  neither which token matched nor how much of a digest did.
- ``$argon2id$...`` (what ``ivy-gateway hash-password`` prints), for people who reuse that
  tool. It is verified off the event loop, one verification at a time, and the outcome is
  remembered by the token's SHA-256 digest so each token pays the argon2 cost once.

Tokens and hashes are never logged; the verifier only reports the token's *name*.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Mapping

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["TokenVerifier", "generate_token", "hash_token"]

_SHA256_PREFIX = "sha256:"
_ARGON2_PREFIX = "$argon2"
_CACHE_SIZE = 1024


def generate_token() -> str:
    """A new random API token (32 bytes, URL-safe base64)."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The ``sha256:<hex>`` form to put in ``http.tokens``."""
    return _SHA256_PREFIX + hashlib.sha256(token.encode()).hexdigest()


class TokenVerifier:
    """Checks a bearer token against ``{name: hash}``; ``verify`` returns the name or None."""

    def __init__(self, hashes: Mapping[str, str]) -> None:
        self._digests: list[tuple[str, bytes]] = []
        self._argon2: list[tuple[str, str]] = []
        for name, value in hashes.items():
            value = value.strip()
            if value.startswith(_SHA256_PREFIX):
                hex_digest = value[len(_SHA256_PREFIX) :]
                try:
                    digest = bytes.fromhex(hex_digest)
                except ValueError:
                    digest = b""
                if len(digest) != 32:
                    raise ValueError(f"http token {name!r}: sha256 hash must be 64 hex digits")
                self._digests.append((name, digest))
            elif value.startswith(_ARGON2_PREFIX):
                self._argon2.append((name, value))
            else:
                raise ValueError(
                    f"http token {name!r}: expected 'sha256:<hex>' or an argon2 hash "
                    "(ivy-gateway hash-password)"
                )
        self._hasher = PasswordHasher()
        self._one_at_a_time = asyncio.Lock()
        # digest → name (None: known bad); bounded, so random guesses cannot grow it.
        self._argon2_seen: OrderedDict[bytes, str | None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._digests) + len(self._argon2)

    async def verify(self, token: str) -> str | None:
        digest = hashlib.sha256(token.encode()).digest()
        match: str | None = None
        for name, expected in self._digests:
            if hmac.compare_digest(digest, expected) and match is None:
                match = name
        if match is not None or not self._argon2:
            return match
        return await self._verify_argon2(token, digest)

    async def _verify_argon2(self, token: str, digest: bytes) -> str | None:
        async with self._one_at_a_time:  # argon2 is deliberately expensive: never in parallel
            if digest in self._argon2_seen:
                self._argon2_seen.move_to_end(digest)
                return self._argon2_seen[digest]
            name = await asyncio.to_thread(self._check_argon2, token)
            self._argon2_seen[digest] = name
            while len(self._argon2_seen) > _CACHE_SIZE:
                self._argon2_seen.popitem(last=False)
            return name

    def _check_argon2(self, token: str) -> str | None:
        for name, encoded in self._argon2:
            try:
                self._hasher.verify(encoded, token)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                continue
            return name
        return None
