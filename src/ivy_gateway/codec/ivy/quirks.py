"""Where the EM114070 firmware departs from the DLMS/COSEM standard, as data.

Each ``Quirk`` says what the standard expects, what the meter does, how this code copes and
which test vectors show it (``tests/vectors/ivy.json``, or ``ivy_quirks.json`` for vectors
derived here; every vector there names its derivation in ``source``). ``test_quirks.py``
checks that every listed vector exists and behaves as described.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ..wrapper import encode_wrapped

__all__ = ["EM114070_QUIRKS", "EM114070_WPORT", "Quirk", "wrap_for_em114070"]

#: The wPort the EM114070 puts in *both* source and destination, in both directions, and the
#: only one it answers to (dlms.md §A1; em114070.md §2, §3).
EM114070_WPORT: Final = 0x0001


@dataclass(frozen=True, slots=True)
class Quirk:
    name: str
    standard: str  # what the DLMS/COSEM standard (or §A-rule) would have
    observed: str  # what the meter does
    handling: str  # what this codebase does about it
    reference: str  # where it is documented
    vectors: tuple[str, ...]


EM114070_QUIRKS: Final[tuple[Quirk, ...]] = (
    Quirk(
        name="wport_always_one",
        standard="server sends source 0x0001 to destination = client SAP (0x0010 public)",
        observed="meter sends source 1 / destination 1 and only answers packets sent 1 -> 1",
        handling="wrap_for_em114070 sends 0001 0001; the decoder never routes on wPorts",
        reference="dlms.md §A1, em114070.md §2-§3",
        vectors=(
            "wrapped_get_request_voltage",
            "wrapped_get_response_voltage",
            "wrapped_exception_response",
        ),
    ),
    Quirk(
        name="heartbeat_in_wrapper",
        standard="a wrapper payload is an APDU",
        observed="after connecting the meter sends an 18-byte non-APDU payload 0A 02 0C + address",
        handling="WrapperDecoder yields it as Heartbeat (26 bytes, §A2 detection rule)",
        reference="dlms.md §A2",
        vectors=("heartbeat_unconfigured_meter", "heartbeat_configured_meter"),
    ),
    Quirk(
        name="heartbeat_separator_varies",
        standard="(vendor format) separator documented as 0D",
        observed="other separator values were seen in the reference project's tests",
        handling="the separator is decoded and reported, never checked",
        reference="dlms.md §A2",
        vectors=("heartbeat_separator_not_0d",),
    ),
    Quirk(
        name="heartbeat_trailer_unknown",
        standard="(vendor format) 2 trailing bytes called 'CRC', algorithm unknown",
        observed="arbitrary values, e.g. 0000 and 5A3C",
        handling="kept as bytes, never validated; simulators may send any two bytes",
        reference="dlms.md §A2, em114070.md §7",
        vectors=("heartbeat_unconfigured_meter", "heartbeat_configured_meter"),
    ),
    Quirk(
        name="placeholder_address",
        standard="(vendor format) the address identifies the meter",
        observed="an unconfigured meter sends 000000000000, shared by every such meter",
        handling="Heartbeat.is_placeholder; the session must identify the meter otherwise",
        reference="dlms.md §A2, em114070.md §1",
        vectors=("heartbeat_unconfigured_meter",),
    ),
    Quirk(
        name="heartbeat_repeated",
        standard="(vendor format) registration once per connection",
        observed="the reference project says the heartbeat may come again later",
        handling="WrapperDecoder recognises a heartbeat anywhere in the stream",
        reference="dlms.md §A2",
        vectors=("stream_heartbeat_after_dlms_reply",),
    ),
    Quirk(
        name="bare_apdus_on_wrapper_socket",
        standard="every APDU on a wrapper connection carries the 8-byte header",
        observed="APDUs may follow the heartbeat without a header, even in the same segment",
        handling="WrapperDecoder frames bare APDUs by their tag's length rule (RawApdu)",
        reference="dlms.md §A3, em114070.md §2, §6",
        vectors=(
            "stream_heartbeat_then_raw_event_notification",
            "stream_heartbeat_raw_get_response_raw_exception",
            "stream_raw_aare_ber_length",
        ),
    ),
)


def wrap_for_em114070(apdu: bytes) -> bytes:
    """``00 01 00 01 00 01 LLLL`` + ``apdu``: the only header the meter answers (§A1)."""
    return encode_wrapped(apdu, source=EM114070_WPORT, destination=EM114070_WPORT)
