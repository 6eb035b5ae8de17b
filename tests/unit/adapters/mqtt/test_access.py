from __future__ import annotations

import pytest

from ivy_gateway.adapters.mqtt.access import filter_covers, hash_password, verify_password


@pytest.mark.parametrize(
    ("allowed", "requested", "covered"),
    [
        ("ivy/v1/#", "ivy/v1/#", True),
        ("ivy/v1/#", "ivy/v1/meters/+/telemetry", True),
        ("ivy/v1/#", "ivy/v1", True),
        ("ivy/v1/#", "#", False),
        ("ivy/v1/#", "+/v1/#", False),
        ("ivy/v1/#", "ivy/v2/x", False),
        ("ivy/v1/meters/+/command/request", "ivy/v1/meters/000000001234/command/request", True),
        ("ivy/v1/meters/+/command/request", "ivy/v1/meters/+/command/request", True),
        ("ivy/v1/meters/+/command/request", "ivy/v1/meters/#", False),
        ("ivy/v1/meters/+/command/request", "ivy/v1/meters/1/command/response", False),
        ("ivy/v1/meters/+/command/request", "ivy/v1/meters/1/command/request/x", False),
        ("ivy/v1/meters/+/command/request", "ivy/v1/meters/1/command", False),
        ("#", "anything/at/all", True),
    ],
)
def test_filter_covers(allowed: str, requested: str, covered: bool) -> None:
    assert filter_covers(allowed, requested) is covered


def test_hash_password_is_argon2id_and_verifies() -> None:
    h = hash_password("s3cret")
    assert h.startswith("$argon2id$")
    assert "s3cret" not in h
    assert verify_password(h, "s3cret")
    assert not verify_password(h, "wrong")
    assert not verify_password("not-a-hash", "s3cret")


def test_empty_password_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        hash_password("")
