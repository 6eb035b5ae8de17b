"""Throughput of the IVY/DLMS transport codecs: wrapper stream decoding, bare-APDU framing,
encoding, heartbeat and protocol detection."""

from __future__ import annotations

from harness import Row, rate
from ivy_gateway.codec.ivy.heartbeat import decode_heartbeat
from ivy_gateway.codec.sniff import sniff
from ivy_gateway.codec.wrapper import NEED_DATA, WrapperDecoder, encode_wrapped

RESPONSE = bytes.fromhex("0001000100010009C401C1000600005C54")  # 17 bytes, GET voltage
RAW = bytes.fromhex("C401C1000600005C54")
HEARTBEAT = bytes.fromhex("00010001000100120A020C3331313530313131343037300D5A3C")
BATCH = 1000


def _drain(decoder: WrapperDecoder) -> int:
    count = 0
    while decoder.next_event() is not NEED_DATA:
        count += 1
    return count


def _stream_rate(packet: bytes) -> float:
    decoder = WrapperDecoder()
    chunk = packet * BATCH  # one large read of many packets

    def run() -> None:
        decoder.feed(chunk)
        _drain(decoder)

    per_second: float = rate(run) * BATCH  # typed here: harness is untyped for mypy today
    return per_second


def _read_per_packet_rate() -> float:
    decoder = WrapperDecoder()

    def run() -> None:
        for _ in range(100):
            decoder.feed(RESPONSE)
            decoder.next_event()
            decoder.next_event()

    per_second: float = rate(run) * 100
    return per_second


def results() -> list[Row]:
    apdu = RESPONSE[8:]
    return [
        Row(
            "wrapper",
            "stream decode, 17-byte packets, 17 kB reads",
            _stream_rate(RESPONSE),
            "packets/s",
            ">= 200k",
        ),
        Row(
            "wrapper",
            "stream decode, one read per packet",
            _read_per_packet_rate(),
            "packets/s",
            ">= 200k",
        ),
        Row("wrapper", "stream decode, bare 9-byte GET-Response", _stream_rate(RAW), "APDUs/s"),
        Row("wrapper", "stream decode, heartbeats", _stream_rate(HEARTBEAT), "packets/s"),
        Row(
            "wrapper",
            "encode_wrapped",
            rate(lambda: encode_wrapped(apdu, source=1, destination=1)),
            "packets/s",
        ),
        Row("wrapper", "decode_heartbeat", rate(lambda: decode_heartbeat(HEARTBEAT)), "calls/s"),
        Row("wrapper", "sniff (wrapper header)", rate(lambda: sniff(HEARTBEAT)), "calls/s"),
    ]
