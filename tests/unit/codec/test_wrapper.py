"""Wrapper header, bare-APDU framing (dlms.md §A3) and the stream decoder, on the vectors."""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivy_gateway.codec.errors import BufferOverflowError, DecodeError, EncodeError, TruncatedError
from ivy_gateway.codec.ivy.heartbeat import Heartbeat
from ivy_gateway.codec.wrapper import (
    DEFAULT_MAX_PAYLOAD,
    NEED_DATA,
    PUBLIC_CLIENT_WPORT,
    RAW_APDU_TAGS,
    RawApdu,
    Skipped,
    WrappedPacket,
    WrapperDecoder,
    WrapperEvent,
    WrapperHeader,
    decode_header,
    decode_wrapped,
    encode_wrapped,
    raw_apdu_length,
)

VECTORS = Path(__file__).resolve().parents[2] / "vectors"


def _load(name: str) -> list[dict[str, Any]]:
    vectors: list[dict[str, Any]] = json.loads((VECTORS / name).read_text())["vectors"]
    return vectors


ALL = _load("ivy.json") + _load("ivy_quirks.json")
PACKETS = [v for v in ALL if "type" in v["decoded"]]
STREAMS = [v for v in ALL if "packets" in v["decoded"]]
WRAPPED = [v for v in PACKETS if v["decoded"]["type"] == "dlms"]


def _ids(vectors: list[dict[str, Any]]) -> list[str]:
    return [v["name"] for v in vectors]


def _summary(events: list[WrapperEvent], leftover: bytes) -> dict[str, Any]:
    packets: list[dict[str, str]] = []
    skipped = b""
    for event in events:
        if isinstance(event, Heartbeat):
            packets.append({"type": "heartbeat", "meter_address": event.meter_address})
        elif isinstance(event, WrappedPacket):
            packets.append({"type": "dlms", "apdu": event.apdu.hex().upper()})
        elif isinstance(event, RawApdu):
            packets.append({"type": "raw_dlms", "apdu": event.apdu.hex().upper()})
        else:
            skipped += event.data
    return {
        "packets": packets,
        "skipped": skipped.hex().upper(),
        "leftover": leftover.hex().upper(),
    }


def _run(chunks: list[bytes], decoder: WrapperDecoder | None = None) -> dict[str, Any]:
    decoder = decoder or WrapperDecoder()
    events: list[WrapperEvent] = []
    for chunk in chunks:
        decoder.feed(chunk)
        events.extend(decoder.events())
        assert len(decoder) < 8 + decoder.max_payload  # the NEED_DATA invariant
    return _summary(events, decoder.pending)


def _expected(vector: dict[str, Any]) -> dict[str, Any]:
    decoded = vector["decoded"]
    if "packets" in decoded:
        return {"skipped": "", **decoded}
    short = {"type": decoded["type"]}
    short.update(
        {"meter_address": decoded["meter_address"]}
        if decoded["type"] == "heartbeat"
        else {"apdu": decoded["apdu"]}
    )
    return {"packets": [short], "skipped": "", "leftover": ""}


def _events(data: bytes, **options: Any) -> list[WrapperEvent]:
    decoder = WrapperDecoder(**options)
    decoder.feed(data)
    return list(decoder.events())


# -- header ------------------------------------------------------------------------------

U16 = st.integers(0, 0xFFFF)


@pytest.mark.parametrize("vector", WRAPPED, ids=_ids(WRAPPED))
def test_wrapped_vector_decodes_and_reencodes_byte_exact(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    packet = decode_wrapped(data)
    decoded = vector["decoded"]
    header = packet.header
    assert asdict(header) == {k: decoded[k] for k in ("version", "source", "destination", "length")}
    assert packet.apdu.hex().upper() == decoded["apdu"]
    assert packet.encode() == data
    assert encode_wrapped(packet.apdu, source=1, destination=1) == data  # all vectors are 1 -> 1


@given(source=U16, destination=U16, length=U16)
def test_header_round_trips(source: int, destination: int, length: int) -> None:
    header = WrapperHeader(1, source, destination, length)
    raw = header.encode()
    assert len(raw) == 8
    assert decode_header(raw) == header
    assert decode_header(b"pad" + raw, 3) == header


@given(apdu=st.binary(max_size=300), source=U16, dest=U16)
def test_wrapped_packet_round_trips(apdu: bytes, source: int, dest: int) -> None:
    raw = encode_wrapped(apdu, source=source, destination=dest)
    assert decode_wrapped(raw) == WrappedPacket(WrapperHeader(1, source, dest, len(apdu)), apdu)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ((2, 1, 1, 0), "version"),
        ((1, -1, 1, 0), "source"),
        ((1, 1, 0x10000, 0), "destination"),
        ((1, 1, 1, 0x10000), "length"),
    ],
)
def test_header_rejects_out_of_range_fields(
    fields: tuple[int, int, int, int], message: str
) -> None:
    with pytest.raises(EncodeError, match=message):
        WrapperHeader(*fields)


def test_encode_wrapped_rejects_oversize_apdu() -> None:
    with pytest.raises(EncodeError, match="length"):
        encode_wrapped(bytes(0x10000), source=1, destination=1)


def test_wrapped_packet_rejects_length_mismatch() -> None:
    with pytest.raises(EncodeError, match="header says 2"):
        WrappedPacket(WrapperHeader(1, 1, 1, 2), b"\x01")


def test_decode_header_rejects_short_input_as_truncated() -> None:
    with pytest.raises(TruncatedError):
        decode_header(bytes.fromhex("00010001000100"))


def test_decode_header_rejects_other_versions() -> None:
    with pytest.raises(DecodeError, match="version 2") as info:
        decode_header(bytes.fromhex("0002000100010000"))
    assert not isinstance(info.value, TruncatedError)
    assert info.value.offset == 0


def test_decode_wrapped_rejects_missing_and_extra_payload() -> None:
    with pytest.raises(TruncatedError):
        decode_wrapped(bytes.fromhex("0001000100010003D801"))
    with pytest.raises(DecodeError, match="after") as info:
        decode_wrapped(bytes.fromhex("0001000100010003D8010200"))
    assert info.value.offset == 11


# -- bare APDU length rules (§A3) ----------------------------------------------------------

DT = "07EA011E05042213008000FF"  # a COSEM date-time (em114070.md §1)
TRUNC = "truncated"
BAD = "invalid"

RAW_CASES: list[tuple[str, str, int | str]] = [
    ("ber_short_form", "6003A10100", 5),
    ("ber_long_form_81", "608103A10100", 6),
    ("ber_long_form_82", "60820003A10100", 7),
    ("ber_length_missing", "60", TRUNC),
    ("ber_long_form_cut", "6081", TRUNC),
    ("ber_body_missing", "6105A103", TRUNC),
    ("ber_indefinite", "6280", BAD),
    ("ber_too_many_octets", "6385", BAD),
    ("glo_ciphered", "C803AABBCC", 5),
    ("ded_ciphered", "D70100", 3),
    ("general_glo_ciphering", "DB08" + "11" * 8 + "02AABB", 13),
    ("general_glo_ciphering_cut", "DB08" + "11" * 3, TRUNC),
    ("general_glo_ciphering_bad_title", "DB07" + "11" * 7 + "00", BAD),
    ("exception", "D80102", 3),
    ("exception_cut", "D801", TRUNC),
    ("exception_invocation_counter", "D8010600000001", 7),
    ("exception_invocation_counter_cut", "D80106", TRUNC),
    ("event_without_time", "C20000030100010800FF020600008364", 16),
    ("event_with_time", "C2010C" + DT + "00010000600B00FF0212004C", 27),
    ("event_time_flag_cut", "C201", TRUNC),
    ("event_time_flag_invalid", "C202", BAD),
    ("event_time_not_12", "C2010B", BAD),
    ("event_value_cut", "C20000030100010800FF02", TRUNC),
    ("data_notification_no_time", "0F0000000100" + "1105", 8),
    ("data_notification_time", "0F000000010C" + DT + "1105", 20),
    ("data_notification_time_3", "0F0000000103", BAD),
    ("data_notification_cut", "0F000000", TRUNC),
    ("get_response_data", "C401C1000600005C54", 9),
    ("get_response_dar", "C401C10104", 5),
    ("get_response_choice_invalid", "C401C102", BAD),
    ("get_response_cut", "C401C1", TRUNC),
    ("get_response_data_tag_invalid", "C401C100FE", BAD),
    ("get_response_block_raw", "C402C1000000000100" + "03AABBCC", 13),
    ("get_response_block_dar", "C402C10000000001010E", 10),
    ("get_response_block_choice_invalid", "C402C1000000000102", BAD),
    ("get_response_block_cut", "C402C10000", TRUNC),
    ("get_response_with_list_unsupported", "C403C101", BAD),
    ("set_response", "C501C100", 4),
    ("set_response_other_variant", "C502C1", BAD),
    ("action_response_no_data", "C701C10000", 5),
    ("action_response_data", "C701C100010011" + "01", 8),
    ("action_response_dar", "C701C100010103", 7),
    ("action_response_flag_invalid", "C701C10002", BAD),
    ("action_response_choice_invalid", "C701C1000102", BAD),
    ("action_response_cut", "C701C100", TRUNC),
    ("get_request_normal", "C001C1000301000C0700FF0200", 13),
    ("get_request_selective", "C001C100070100630100FF0201" + "02" + "1100", 16),
    ("get_request_selective_cut", "C001C100070100630100FF0201", TRUNC),
    ("get_request_next", "C002C100000002", 7),
    ("get_request_cut", "C001C1000301", TRUNC),
    ("get_request_selection_invalid", "C001C1000301000C0700FF0202", BAD),
    ("set_request", "C101C10008000001000 0FF0200".replace(" ", "") + "1105", 15),
    ("set_request_selective", "C101C1000800000100 00FF0201".replace(" ", "") + "01110011 05", 18),
    ("action_request_no_params", "C301C10046000060 0300FF0100".replace(" ", ""), 13),
    ("action_request_params", "C301C10046000060 0300FF01010F00".replace(" ", ""), 15),
    ("action_request_other_variant", "C302C1", BAD),
    ("not_a_tag", "FF01", BAD),
    ("no_tag_c6", "C601", BAD),
    ("empty", "", TRUNC),
]


@pytest.mark.parametrize(
    ("hex_", "expected"), [c[1:] for c in RAW_CASES], ids=[c[0] for c in RAW_CASES]
)
def test_raw_apdu_length_rules(hex_: str, expected: int | str) -> None:
    data = bytes.fromhex(hex_.replace(" ", ""))
    if expected == TRUNC:
        with pytest.raises(TruncatedError):
            raw_apdu_length(data)
    elif expected == BAD:
        with pytest.raises(DecodeError) as info:
            raw_apdu_length(data)
        assert not isinstance(info.value, TruncatedError)
    else:
        assert raw_apdu_length(data) == expected
        assert raw_apdu_length(data + b"\x99\x98") == expected  # ignores what follows
        assert raw_apdu_length(memoryview(data)) == expected


def test_every_raw_tag_has_a_case() -> None:
    tags = {bytes.fromhex(c[1].replace(" ", ""))[0] for c in RAW_CASES if c[1]}
    assert {0x60, 0x61, 0x62, 0x63, 0x0F, 0xC0, 0xC1, 0xC2, 0xC3} <= tags
    assert {0xC4, 0xC5, 0xC7, 0xC8, 0xD7, 0xD8, 0xDB} <= tags
    assert 0x00 not in RAW_APDU_TAGS  # a wrapper header is never a bare APDU


def test_raw_apdu_longer_than_cap_is_invalid_even_before_complete() -> None:
    with pytest.raises(DecodeError, match="exceeds"):
        raw_apdu_length(bytes.fromhex("6082FFFF"))  # announces 65539 bytes
    with pytest.raises(DecodeError, match="exceeds"):
        raw_apdu_length(bytes.fromhex("D80102"), max_size=2)


def test_raw_apdu_walk_past_cap_is_invalid_not_truncated() -> None:
    # an octet-string of 4096 bytes inside a GET-Response: the walk cannot finish in 4096
    head = bytes.fromhex("C401C10009821000")
    with pytest.raises(TruncatedError):
        raw_apdu_length(head + bytes(100))
    with pytest.raises(DecodeError, match="longer than") as info:
        raw_apdu_length(head + bytes(DEFAULT_MAX_PAYLOAD - len(head)))
    assert not isinstance(info.value, TruncatedError)


# -- the stream decoder on the vectors ----------------------------------------------------


IVY_BYTES = [v for v in ALL if v["decoded"].get("protocol") != "dlt645"]


@pytest.mark.parametrize("vector", IVY_BYTES, ids=_ids(IVY_BYTES))
def test_decoder_on_vector_whole(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    result = _run([data])
    if vector["name"].startswith("detect_"):
        assert result["packets"]  # detection vectors decode to at least one packet
    else:
        assert result == _expected(vector)


@pytest.mark.parametrize("vector", PACKETS + STREAMS, ids=_ids(PACKETS + STREAMS))
def test_decoder_on_vector_split_at_every_byte(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    expected = _expected(vector)
    if "chunks" in vector:
        assert b"".join(bytes.fromhex(c) for c in vector["chunks"]) == data
        assert _run([bytes.fromhex(c) for c in vector["chunks"]]) == expected
    for cut in range(1, len(data)):
        assert _run([data[:cut], data[cut:]]) == expected, cut
    assert _run([data[i : i + 1] for i in range(len(data))]) == expected


@pytest.mark.parametrize("vector", PACKETS, ids=_ids(PACKETS))
def test_decoded_packet_reencodes_byte_exact(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    (event,) = _events(data)
    assert isinstance(event, WrappedPacket | Heartbeat)
    assert event.encode() == data


@given(
    items=st.lists(
        st.one_of(
            st.binary(max_size=64).filter(lambda b: not b.startswith(b"\x0a\x02\x0c")),
            st.text("0123456789", min_size=12, max_size=12),
        ),
        max_size=8,
    ),
    cuts=st.lists(st.integers(0, 600), max_size=6),
)
def test_stream_of_packets_round_trips_in_any_segmentation(
    items: list[bytes | str], cuts: list[int]
) -> None:
    sent: list[WrappedPacket | Heartbeat] = [
        Heartbeat(meter_address=item)
        if isinstance(item, str)
        else WrappedPacket(WrapperHeader(1, 1, 1, len(item)), item)
        for item in items
    ]
    data = b"".join(event.encode() for event in sent)
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    decoder = WrapperDecoder()
    received: list[WrapperEvent] = []
    for start, end in itertools.pairwise(bounds):
        decoder.feed(data[start:end])
        received.extend(decoder.events())
    assert received == sent
    assert decoder.wrapped_packets + decoder.heartbeats == len(sent)
    assert decoder.skipped_bytes == 0


# -- resynchronisation, limits and counters ----------------------------------------------

RESPONSE = bytes.fromhex("0001000100010009C401C1000600005C54")


def test_garbage_before_packet_is_reported_once_and_counted() -> None:
    decoder = WrapperDecoder()
    decoder.feed(bytes.fromhex("FF00FE") + RESPONSE)
    assert decoder.next_event() == Skipped(bytes.fromhex("FF00FE"))
    assert isinstance(decoder.next_event(), WrappedPacket)
    assert decoder.next_event() is NEED_DATA
    assert (decoder.skipped_bytes, decoder.resyncs, decoder.wrapped_packets) == (3, 1, 1)


@pytest.mark.parametrize("tail", ["00", "0001", "000100", "00010001", "0001000100"])
def test_lone_partial_magic_at_end_of_read_is_kept(tail: str) -> None:
    decoder = WrapperDecoder()
    decoder.feed(bytes.fromhex("AB" + tail))
    assert decoder.next_event() == Skipped(b"\xab")
    assert decoder.next_event() is NEED_DATA
    assert decoder.pending == bytes.fromhex(tail)
    decoder.feed(RESPONSE[len(tail) // 2 :])
    assert isinstance(decoder.next_event(), WrappedPacket)
    assert decoder.skipped_bytes == 1


def test_partial_magic_that_goes_wrong_is_skipped() -> None:
    decoder = WrapperDecoder()
    decoder.feed(b"\x00\x01")
    assert decoder.next_event() is NEED_DATA
    decoder.feed(b"\x00\x02")
    assert decoder.next_event() == Skipped(b"\x00\x01\x00\x02")
    assert decoder.next_event() is NEED_DATA


def test_short_non_magic_start_is_garbage() -> None:
    assert _events(b"\x00\x05") == [Skipped(b"\x00\x05")]


def test_header_with_payload_over_cap_is_resynced_and_counted() -> None:
    oversize = bytes.fromhex("000100010001FFFF")  # length 65535 > 4096
    decoder = WrapperDecoder()
    decoder.feed(oversize + RESPONSE)
    assert decoder.next_event() == Skipped(oversize)
    assert decoder.next_event() == decode_wrapped(RESPONSE)
    assert decoder.oversize_headers == 1


def test_resync_does_not_take_a_dropped_headers_tail_for_a_header() -> None:
    # after dropping 00 of 00 01 00 01 00 01 10 01, the bytes 00 01 00 01 10 01 00 01 would
    # pass a 4-byte search as a header of length 1; the 6-byte one skips to RESPONSE
    oversize = bytes.fromhex("0001000100011001")
    assert _events(oversize + RESPONSE) == [Skipped(oversize), decode_wrapped(RESPONSE)]


def test_payload_cap_is_configurable() -> None:
    assert _events(RESPONSE, max_payload=9)[0] == decode_wrapped(RESPONSE)
    # length 9 > 8: resync to the bare C4 01 ..., which is 9 bytes > 8 as well
    assert _events(RESPONSE, max_payload=8) == [Skipped(RESPONSE)]


def test_header_waits_for_all_eight_bytes_and_the_payload() -> None:
    decoder = WrapperDecoder()
    decoder.feed(RESPONSE[:7])
    assert decoder.next_event() is NEED_DATA
    decoder.feed(RESPONSE[7:-1])
    assert decoder.next_event() is NEED_DATA
    decoder.feed(RESPONSE[-1:])
    assert decoder.next_event() == decode_wrapped(RESPONSE)


def test_heartbeat_shaped_packet_with_non_digit_address_is_a_plain_packet() -> None:
    data = bytes.fromhex("00010001000100120A020C") + b"31150111407X" + bytes.fromhex("0D0000")
    (event,) = _events(data)
    assert isinstance(event, WrappedPacket)
    assert event.apdu == data[8:]


def test_heartbeat_is_counted() -> None:
    decoder = WrapperDecoder()
    decoder.feed(Heartbeat(meter_address="123456789012").encode())
    assert isinstance(decoder.next_event(), Heartbeat)
    assert (decoder.heartbeats, decoder.wrapped_packets) == (1, 0)


def test_bare_apdu_waits_until_complete() -> None:
    decoder = WrapperDecoder()
    decoder.feed(bytes.fromhex("C401C10006"))
    assert decoder.next_event() is NEED_DATA
    decoder.feed(bytes.fromhex("00005C54"))
    assert decoder.next_event() == RawApdu(bytes.fromhex("C401C1000600005C54"))
    assert decoder.raw_apdus == 1


def test_invalid_bare_apdu_is_skipped_to_next_candidate() -> None:
    # C4 03 has no length rule, 03 is no tag, then a valid exception response
    assert _events(bytes.fromhex("C403D80102")) == [
        Skipped(bytes.fromhex("C403")),
        RawApdu(bytes.fromhex("D80102")),
    ]


def test_consecutive_bad_candidates_coalesce_into_one_skip() -> None:
    # C5 02: no rule; C4 FF: no rule; then the wrapped packet
    events = _events(bytes.fromhex("C502C4FF") + RESPONSE)
    assert events == [Skipped(bytes.fromhex("C502C4FF")), decode_wrapped(RESPONSE)]


def test_truncated_bare_apdu_over_cap_is_given_up() -> None:
    decoder = WrapperDecoder(max_payload=16, max_buffer=64)
    decoder.feed(bytes.fromhex("C401C1000920") + bytes(9))  # octet-string of 32 > cap
    assert decoder.next_event() is NEED_DATA  # 15 bytes: the walk might still end by 16
    decoder.feed(b"\x00")  # 16 buffered and still unfinished: can never fit the cap
    event = decoder.next_event()
    assert isinstance(event, Skipped)
    assert decoder.next_event() is NEED_DATA
    assert len(decoder) < 8 + 16


def test_resync_gives_up_a_partial_packet_on_request() -> None:
    decoder = WrapperDecoder()
    decoder.feed(bytes.fromhex("C401C1000920") + RESPONSE)  # false candidate swallows RESPONSE
    assert decoder.next_event() is NEED_DATA
    decoder.resync()
    decoder.resync()  # a second call before the report is a no-op
    assert decoder.next_event() == Skipped(b"\xc4")
    assert decoder.next_event() == Skipped(bytes.fromhex("01C1000920"))
    assert decoder.next_event() == decode_wrapped(RESPONSE)
    assert decoder.skipped_bytes == 6


def test_resync_on_empty_decoder_does_nothing() -> None:
    decoder = WrapperDecoder()
    decoder.resync()
    assert decoder.next_event() is NEED_DATA
    assert decoder.resyncs == 0


def test_trailing_garbage_without_candidate_is_dropped_entirely() -> None:
    assert _events(RESPONSE + b"\xff\xfe\x01") == [
        decode_wrapped(RESPONSE),
        Skipped(b"\xff\xfe\x01"),
    ]


def test_accepted_wports_select_the_header_magic() -> None:
    request = encode_wrapped(bytes.fromhex("D80102"), source=PUBLIC_CLIENT_WPORT, destination=1)
    assert isinstance(_events(request)[0], Skipped)  # default: only 1 -> 1 is a header
    pairs = [(1, 1), (PUBLIC_CLIENT_WPORT, 1)]
    both = _events(request + RESPONSE, accepted_wports=pairs)
    assert both == [decode_wrapped(request), decode_wrapped(RESPONSE)]


def test_partial_magic_kept_for_every_accepted_pair() -> None:
    decoder = WrapperDecoder(accepted_wports=[(0x0110, 0x0001)])
    decoder.feed(b"\xff\x00\x01\x01\x10\x00")
    assert decoder.next_event() == Skipped(b"\xff")
    assert decoder.next_event() is NEED_DATA
    assert decoder.pending == b"\x00\x01\x01\x10\x00"


def test_free_space_and_feed_overflow() -> None:
    decoder = WrapperDecoder(max_payload=8, max_buffer=20)
    decoder.feed(b"\x00\x01\x00")
    assert decoder.free_space == 17
    with pytest.raises(BufferOverflowError):
        decoder.feed(bytes(18))
    assert len(decoder) == 3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_payload": 0}, "max_payload"),
        ({"max_payload": 0x10000, "max_buffer": 1 << 20}, "max_payload"),
        ({"max_payload": 100, "max_buffer": 107}, "max_buffer"),
        ({"accepted_wports": ()}, "accepted_wports"),
        ({"accepted_wports": [(1, 0x10000)]}, "accepted_wports"),
        ({"accepted_wports": [(-1, 1)]}, "accepted_wports"),
    ],
)
def test_decoder_rejects_bad_configuration(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WrapperDecoder(**options)


def test_deeply_nested_bare_apdu_is_framed_without_recursion_limits() -> None:
    nested = b"\x02\x01" * 2000 + b"\x00"  # structure{structure{... null-data}}
    apdu = bytes.fromhex("C401C100") + nested
    assert _events(apdu) == [RawApdu(apdu)]
