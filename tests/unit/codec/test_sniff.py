"""Protocol detection on a connection's first bytes (dlms.md §A4) and its vectors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ivy_gateway.codec.sniff import SNIFF_LIMIT, ProtocolGuess, sniff
from ivy_gateway.codec.wrapper import RAW_APDU_TAGS

VECTORS = Path(__file__).resolve().parents[2] / "vectors"
DETECT = [
    v
    for v in json.loads((VECTORS / "ivy.json").read_text())["vectors"]
    if v["name"].startswith("detect_")
]
DLT645 = bytes.fromhex("6834120000000068110433333333F716")
HEARTBEAT = bytes.fromhex("00010001000100120A020C3030303030303030303030300D0000")


@pytest.mark.parametrize("vector", DETECT, ids=[v["name"] for v in DETECT])
def test_detect_vector(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    guess = sniff(data)
    assert guess.protocol == vector["decoded"]["protocol"]
    assert guess.is_final


def test_detect_vectors_cover_every_expected_protocol() -> None:
    assert {v["decoded"]["protocol"] for v in DETECT} == {"dlt645", "ivy_dlms"}
    assert len(DETECT) == 4


def test_fe_preamble_then_68_is_dlt645_unlike_the_reference_gateway() -> None:
    assert sniff(b"\xfe\xfe\xfe\xfe" + DLT645) is ProtocolGuess.DLT645


@pytest.mark.parametrize(
    "prefix", [b"", b"\x00", b"\x00\x01", b"\x00\x01\x00", b"\xfe", b"\xfe\xfe\xfe"]
)
def test_undecidable_prefixes_need_more(prefix: bytes) -> None:
    guess = sniff(prefix)
    assert guess is ProtocolGuess.NEED_MORE
    assert guess.protocol is None
    assert not guess.is_final


def test_every_byte_prefix_of_a_vector_never_guesses_wrong() -> None:
    for data, final in ((HEARTBEAT, ProtocolGuess.IVY_DLMS), (DLT645, ProtocolGuess.DLT645)):
        for size in range(len(data) + 1):
            assert sniff(data[:size]) in (ProtocolGuess.NEED_MORE, final)
        assert sniff(data) is final


def test_wrapper_magic_is_ivy_dlms() -> None:
    assert sniff(b"\x00\x01\x00\x01") is ProtocolGuess.IVY_DLMS


@pytest.mark.parametrize("tag", sorted(RAW_APDU_TAGS))
def test_every_bare_apdu_tag_is_raw_dlms(tag: int) -> None:
    guess = sniff(bytes((tag,)))
    assert guess is ProtocolGuess.RAW_DLMS
    assert guess.protocol == "ivy_dlms"  # one session serves wrapped and bare APDUs


@pytest.mark.parametrize("first", [0x01, 0x0A, 0x16, 0xC6, 0xCE, 0xD6, 0xFF])
def test_other_first_bytes_wait_for_a_signature(first: int) -> None:
    assert sniff(bytes((first,))) is ProtocolGuess.NEED_MORE


def test_fe_then_non_68_is_not_dlt645_and_not_raw_dlms() -> None:
    assert sniff(b"\xfe\xfe\xd8\x01\x02") is ProtocolGuess.NEED_MORE


def test_noise_then_wrapper_magic_is_ivy_dlms() -> None:
    assert sniff(bytes.fromhex("FF00FE") + HEARTBEAT) is ProtocolGuess.IVY_DLMS


def test_noise_then_dlt645_header_is_dlt645() -> None:
    assert sniff(b"\x55\xaa" + DLT645) is ProtocolGuess.DLT645


def test_noise_with_a_lone_tag_byte_is_not_enough() -> None:
    assert sniff(b"\x55\xc4\x01\x68") is ProtocolGuess.NEED_MORE


def test_gives_up_after_the_limit() -> None:
    noise = b"\x55" * (SNIFF_LIMIT - 1)
    assert sniff(noise) is ProtocolGuess.NEED_MORE
    assert sniff(noise + b"\x55") is ProtocolGuess.UNKNOWN
    assert sniff(noise + b"\x55").protocol is None
    assert sniff(b"\xfe" * SNIFF_LIMIT) is ProtocolGuess.UNKNOWN


def test_signature_past_the_limit_is_not_looked_at() -> None:
    late = b"\x55" * SNIFF_LIMIT + HEARTBEAT
    assert sniff(late) is ProtocolGuess.UNKNOWN
    assert sniff(late, limit=len(late)) is ProtocolGuess.IVY_DLMS
    assert sniff(b"\x55\x55\x55", limit=3) is ProtocolGuess.UNKNOWN
