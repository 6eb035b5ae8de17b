"""TokenVerifier: sha256 and argon2 hashes, constant-time matching, names, bad configs."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from ivy_gateway.adapters.http import TokenVerifier, generate_token, hash_token


async def test_sha256_tokens_verify_to_their_name() -> None:
    ops, ci = generate_token(), generate_token()
    verifier = TokenVerifier({"ops": hash_token(ops), "ci": hash_token(ci)})
    assert len(verifier) == 2
    assert await verifier.verify(ops) == "ops"
    assert await verifier.verify(ci) == "ci"
    assert await verifier.verify(ops + "x") is None
    assert await verifier.verify("") is None


def test_generated_tokens_are_long_and_distinct() -> None:
    tokens = {generate_token() for _ in range(50)}
    assert len(tokens) == 50
    assert all(len(t) >= 43 for t in tokens)  # 32 bytes of base64


def test_hash_token_is_the_sha256_form() -> None:
    assert hash_token("abc") == (
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


async def test_argon2_hashes_work_and_are_checked_once_per_token() -> None:
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    verifier = TokenVerifier({"legacy": hasher.hash("old-token")})
    assert await verifier.verify("old-token") == "legacy"
    assert await verifier.verify("old-token") == "legacy"  # from the cache
    assert await verifier.verify("guess") is None
    assert await verifier.verify("guess") is None


@pytest.mark.parametrize(
    "value", ["plain-text", "sha256:abcd", "sha256:" + "zz" * 32, "md5:0123", ""]
)
def test_unusable_hashes_are_refused_at_start(value: str) -> None:
    with pytest.raises(ValueError, match="http token 'x'"):
        TokenVerifier({"x": value})
