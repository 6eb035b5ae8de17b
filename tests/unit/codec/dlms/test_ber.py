"""BER tags, lengths and TLVs (X.690 §8.1) as used by the DLMS ACSE codecs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivy_gateway.codec.dlms.ber import (
    MAX_LENGTH,
    MAX_TAG_NUMBER,
    Tag,
    TagClass,
    Tlv,
    decode_length,
    decode_tag,
    decode_tlv,
    decode_tlvs,
    encode_length,
    encode_tlv,
)
from ivy_gateway.codec.errors import DecodeError, EncodeError, TruncatedError


@pytest.mark.parametrize(
    ("length", "wire"),
    [
        (0, "00"),
        (0x7F, "7F"),
        (0x80, "8180"),
        (0xC8, "81C8"),
        (0xFF, "81FF"),
        (0x100, "820100"),
        (0xFFFF, "82FFFF"),
        (0x10000, "83010000"),
        (MAX_LENGTH, "84FFFFFFFF"),
    ],
)
def test_length_uses_the_shortest_definite_form(length: int, wire: str) -> None:
    assert encode_length(length).hex().upper() == wire
    assert decode_length(bytes.fromhex(wire)) == (length, len(wire) // 2)


def test_decoding_accepts_a_non_minimal_long_form_length() -> None:
    assert decode_length(bytes.fromhex("820005")) == (5, 3)


@pytest.mark.parametrize("length", [-1, MAX_LENGTH + 1])
def test_encode_length_rejects_out_of_range(length: int) -> None:
    with pytest.raises(EncodeError):
        encode_length(length)


@pytest.mark.parametrize(
    ("wire", "reason"),
    [("80", "indefinite"), ("85", "too long"), ("FF", "too long")],
)
def test_decode_length_rejects_indefinite_and_oversized_forms(wire: str, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason) as info:
        decode_length(bytes.fromhex(wire))
    assert not isinstance(info.value, TruncatedError)
    assert info.value.offset == 0


@pytest.mark.parametrize("wire", ["", "81", "8201", "84FFFFFF"])
def test_decode_length_at_the_end_of_input_is_truncated(wire: str) -> None:
    with pytest.raises(TruncatedError):
        decode_length(bytes.fromhex(wire))


def test_decode_length_past_an_enclosing_end_is_malformed_not_truncated() -> None:
    data = bytes.fromhex("8201" + "00")  # the third byte exists but lies beyond end=2
    with pytest.raises(DecodeError, match="enclosing") as info:
        decode_length(data, 0, 2)
    assert not isinstance(info.value, TruncatedError)


@pytest.mark.parametrize(
    ("wire", "tag"),
    [
        ("A1", Tag(TagClass.CONTEXT, True, 1)),
        ("8A", Tag(TagClass.CONTEXT, False, 10)),
        ("60", Tag(TagClass.APPLICATION, True, 0)),
        ("04", Tag(TagClass.UNIVERSAL, False, 4)),
        ("5F1F", Tag(TagClass.APPLICATION, False, 31)),
        ("DF8100", Tag(TagClass.PRIVATE, False, 128)),
        ("BFFFFFFF7F", Tag(TagClass.CONTEXT, True, MAX_TAG_NUMBER)),
    ],
)
def test_tags_in_low_and_high_number_forms(wire: str, tag: Tag) -> None:
    assert tag.encode().hex().upper() == wire
    assert decode_tag(bytes.fromhex(wire)) == (tag, len(wire) // 2)


@pytest.mark.parametrize("number", [-1, MAX_TAG_NUMBER + 1])
def test_tag_rejects_number_out_of_range(number: int) -> None:
    with pytest.raises(EncodeError):
        Tag(TagClass.CONTEXT, False, number)


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        ("5F8001", "leading zero"),
        ("5F05", "below 31"),
        ("5F8181818101", "too long"),
    ],
)
def test_decode_tag_rejects_malformed_high_numbers(wire: str, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        decode_tag(bytes.fromhex(wire))


@pytest.mark.parametrize("wire", ["", "5F", "5F81"])
def test_decode_tag_at_the_end_of_input_is_truncated(wire: str) -> None:
    with pytest.raises(TruncatedError):
        decode_tag(bytes.fromhex(wire))


def test_decode_tlv_reads_one_value_and_records_its_offset() -> None:
    data = bytes.fromhex("FF" + "A103020100" + "EE")
    tlv, end = decode_tlv(data, 1, 6)
    assert tlv == Tlv(Tag(TagClass.CONTEXT, True, 1), bytes.fromhex("020100"), 1)
    assert end == 6


def test_decode_tlv_value_cut_at_end_of_input_is_truncated() -> None:
    with pytest.raises(TruncatedError):
        decode_tlv(bytes.fromhex("0405010203"))


def test_decode_tlv_value_past_an_enclosing_end_is_malformed() -> None:
    with pytest.raises(DecodeError) as info:
        decode_tlv(bytes.fromhex("0403010203FF"), 0, 4)
    assert not isinstance(info.value, TruncatedError)


def test_decode_tlvs_reads_components_back_to_back() -> None:
    data = bytes.fromhex("800100" + "BE00" + "0401AA")
    items = decode_tlvs(data)
    assert [(t.tag.encode().hex(), t.value.hex(), t.offset) for t in items] == [
        ("80", "00", 0),
        ("be", "", 3),
        ("04", "aa", 5),
    ]


def test_encode_tlv_uses_long_form_for_long_values() -> None:
    wire = encode_tlv(Tag(TagClass.UNIVERSAL, False, 4), bytes(200))
    assert wire[:3] == bytes.fromhex("0481C8")
    assert len(wire) == 203


tags = st.builds(
    Tag,
    st.sampled_from(TagClass),
    st.booleans(),
    st.integers(min_value=0, max_value=MAX_TAG_NUMBER),
)


@given(st.integers(min_value=0, max_value=MAX_LENGTH))
def test_any_length_round_trips(length: int) -> None:
    wire = encode_length(length)
    assert decode_length(wire) == (length, len(wire))


@given(tags, st.binary(max_size=300))
def test_any_tlv_round_trips(tag: Tag, value: bytes) -> None:
    wire = encode_tlv(tag, value)
    assert decode_tlv(wire) == (Tlv(tag, value, 0), len(wire))


@given(st.lists(st.tuples(tags, st.binary(max_size=40)), max_size=6))
def test_any_tlv_sequence_round_trips(items: list[tuple[Tag, bytes]]) -> None:
    wire = b"".join(encode_tlv(tag, value) for tag, value in items)
    assert [(t.tag, t.value) for t in decode_tlvs(wire)] == items


@given(tags, st.binary(min_size=1, max_size=40), st.data())
def test_any_cut_tlv_is_truncated(tag: Tag, value: bytes, data: st.DataObject) -> None:
    wire = encode_tlv(tag, value)
    cut = data.draw(st.integers(min_value=0, max_value=len(wire) - 1))
    with pytest.raises(TruncatedError):
        decode_tlv(wire[:cut])
