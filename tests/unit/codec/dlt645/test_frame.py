"""Frame encode/decode, checksum, the 0x33 offset and the preamble (reference §1, §4)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivy_gateway.codec.dlt645 import (
    WILDCARD,
    Address,
    ControlCode,
    Frame,
    Function,
    checksum,
    decode_frame,
    encode_frame,
    looks_like_dlt645,
)
from ivy_gateway.codec.errors import DecodeError, EncodeError, TruncatedError

READ = bytes.fromhex("6834120000000068110433333433F816")
METER = Address.parse("000000001234")


def test_checksum_of_the_read_address_frame() -> None:
    assert checksum(bytes.fromhex("68AAAAAAAAAAAA681300")) == 0xDF


def test_encode_applies_offset_and_checksum() -> None:
    frame = Frame(METER, ControlCode.request(Function.READ_DATA), bytes.fromhex("00000100"))
    assert encode_frame(frame) == READ
    assert decode_frame(READ) == frame


def test_encode_and_decode_any_preamble_length() -> None:
    frame = Frame(WILDCARD, ControlCode.request(Function.READ_ADDRESS), preamble_len=7)
    wire = encode_frame(frame)
    assert wire == b"\xfe" * 7 + bytes.fromhex("68AAAAAAAAAAAA681300DF16")
    assert decode_frame(wire) == frame


def test_decode_accepts_bytearray_and_memoryview() -> None:
    assert decode_frame(bytearray(READ)) == decode_frame(memoryview(READ)) == decode_frame(READ)


def test_documented_bad_checksum_of_the_reference_docs_is_rejected() -> None:
    # The reference gateway's docs show B2; the correct checksum is F7 (reference §9).
    with pytest.raises(DecodeError, match="checksum"):
        decode_frame(bytes.fromhex("6834120000000068110433333333B216"))


@pytest.mark.parametrize(
    ("wire", "offset"),
    [
        ("", 0),
        ("FEFE", 2),
        ("68341200000000", 7),
        ("FE683412000000006811", 10),
        ("6834120000000068110433333433F8", 15),
    ],
)
def test_decode_reports_truncation_separately(wire: str, offset: int) -> None:
    with pytest.raises(TruncatedError) as info:
        decode_frame(bytes.fromhex(wire))
    assert info.value.offset == offset


@pytest.mark.parametrize(
    ("wire", "offset", "reason"),
    [
        ("00" + READ.hex(), 0, "start with 68"),
        ("FEFE55" + READ.hex(), 2, "start with 68"),
        ("6834120000000069110433333433F816", 7, "second start"),
        ("6834120000000068110433333433F817", 15, "end byte"),
        ("6834120000000068110433333433F916", 14, "checksum"),
        ("683F1200000000681104333334330316", 1, "address"),
        (READ.hex() + "16", 16, "after the end"),
    ],
)
def test_decode_rejects_invalid_frames_with_offset(wire: str, offset: int, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason) as info:
        decode_frame(bytes.fromhex(wire))
    assert info.value.offset == offset
    assert not isinstance(info.value, TruncatedError)


def test_encode_rejects_oversized_data_and_negative_preamble() -> None:
    control = ControlCode.request(Function.WRITE_DATA)
    with pytest.raises(EncodeError):
        encode_frame(Frame(METER, control, bytes(256)))
    with pytest.raises(EncodeError):
        encode_frame(Frame(METER, control, preamble_len=-1))


def test_looks_like_dlt645_skips_preamble_then_needs_68() -> None:
    assert looks_like_dlt645(b"") is None
    assert looks_like_dlt645(b"\xfe\xfe") is None
    assert looks_like_dlt645(b"\xfe\xfe\x68") is True
    assert looks_like_dlt645(b"\x68") is True
    assert looks_like_dlt645(b"\x00\x01\x00\x01") is False
    assert looks_like_dlt645(b"\xfe\x60") is False


addresses = st.one_of(
    st.integers(0, 10**12 - 1).map(lambda n: Address.parse(f"{n:012d}")),
    st.integers(0, 6).flatmap(
        lambda k: st.integers(0, 10 ** (2 * k) - 1).map(
            lambda n: Address.parse("AA" * (6 - k) + (f"{n:0{2 * k}d}" if k else ""))
        )
    ),
)
frames = st.builds(
    Frame,
    addresses,
    st.integers(0, 255).map(ControlCode.from_byte),
    st.binary(max_size=255),
    st.integers(0, 5),
)


@given(frames)
def test_frames_round_trip(frame: Frame) -> None:
    wire = encode_frame(frame)
    assert len(wire) == frame.preamble_len + 12 + len(frame.data)
    assert decode_frame(wire) == frame
