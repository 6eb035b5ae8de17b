"""Every documented EM114070 quirk is backed by vectors that show the documented handling."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ivy_gateway.codec.ivy.describe import describe_packet, describe_stream
from ivy_gateway.codec.ivy.heartbeat import decode_heartbeat
from ivy_gateway.codec.ivy.quirks import EM114070_QUIRKS, EM114070_WPORT, wrap_for_em114070
from ivy_gateway.codec.wrapper import decode_wrapped

VECTORS = Path(__file__).resolve().parents[3] / "vectors"
STANDARD = json.loads((VECTORS / "ivy.json").read_text())["vectors"]
DERIVED = json.loads((VECTORS / "ivy_quirks.json").read_text())["vectors"]
BY_NAME: dict[str, dict[str, Any]] = {v["name"]: v for v in STANDARD + DERIVED}
QUIRKS = {quirk.name: quirk for quirk in EM114070_QUIRKS}


def _bytes(name: str) -> bytes:
    return bytes.fromhex(BY_NAME[name]["hex"])


def test_quirk_names_are_unique_and_fully_described() -> None:
    assert len(QUIRKS) == len(EM114070_QUIRKS)
    for quirk in EM114070_QUIRKS:
        assert quirk.standard
        assert quirk.observed
        assert quirk.handling
        assert quirk.reference.startswith(("dlms.md", "em114070.md"))
        assert quirk.vectors


@pytest.mark.parametrize("quirk", EM114070_QUIRKS, ids=list(QUIRKS))
def test_every_quirk_vector_exists(quirk: Any) -> None:
    for name in quirk.vectors:
        assert name in BY_NAME, name


def test_derived_vectors_say_how_they_were_derived_and_are_all_used() -> None:
    used = {name for quirk in EM114070_QUIRKS for name in quirk.vectors}
    for vector in DERIVED:
        assert vector["source"].startswith("derived")
        assert vector["name"] in used
        assert vector["name"] not in {v["name"] for v in STANDARD}


def test_wport_always_one() -> None:
    assert EM114070_WPORT == 1
    for name in QUIRKS["wport_always_one"].vectors:
        packet = decode_wrapped(_bytes(name))
        assert (packet.header.source, packet.header.destination) == (1, 1)
        assert wrap_for_em114070(packet.apdu) == _bytes(name)


def test_heartbeat_in_wrapper_is_a_valid_wrapper_packet_with_a_non_apdu_payload() -> None:
    for name in QUIRKS["heartbeat_in_wrapper"].vectors:
        packet = decode_wrapped(_bytes(name))
        assert packet.apdu.startswith(b"\x0a\x02\x0c")
        assert describe_packet(_bytes(name))["type"] == "heartbeat"


def test_heartbeat_separator_varies() -> None:
    (name,) = QUIRKS["heartbeat_separator_varies"].vectors
    assert decode_heartbeat(_bytes(name)).separator != 0x0D
    assert describe_packet(_bytes(name))["type"] == "heartbeat"


def test_heartbeat_trailer_is_kept_not_validated() -> None:
    trailers = {
        decode_heartbeat(_bytes(n)).trailer for n in QUIRKS["heartbeat_trailer_unknown"].vectors
    }
    assert trailers == {b"\x00\x00", b"\x5a\x3c"}


def test_placeholder_address() -> None:
    (name,) = QUIRKS["placeholder_address"].vectors
    assert decode_heartbeat(_bytes(name)).is_placeholder


def test_heartbeat_repeated_mid_stream() -> None:
    (name,) = QUIRKS["heartbeat_repeated"].vectors
    types = [p["type"] for p in describe_stream(_bytes(name))["packets"]]  # type: ignore[attr-defined]
    assert types == ["dlms", "heartbeat"]


def test_bare_apdus_on_wrapper_socket() -> None:
    for name in QUIRKS["bare_apdus_on_wrapper_socket"].vectors:
        result = describe_stream(_bytes(name))
        assert "raw_dlms" in {p["type"] for p in result["packets"]}  # type: ignore[attr-defined]
        assert "skipped" not in result
        assert result["leftover"] == ""
