from __future__ import annotations

import pytest

from ivy_gateway.adapters.mqtt.topics import Topics, validate_prefix
from ivy_gateway.domain.meter import MeterId

METER = MeterId("000000001234")


def test_topics_follow_the_contract_table() -> None:
    t = Topics()
    assert t.telemetry(METER) == "ivy/v1/meters/000000001234/telemetry"
    assert t.status(METER) == "ivy/v1/meters/000000001234/status"
    assert t.events(METER) == "ivy/v1/meters/000000001234/events"
    assert t.command_request(METER) == "ivy/v1/meters/000000001234/command/request"
    assert t.command_response(METER) == "ivy/v1/meters/000000001234/command/response"
    assert t.command_request_filter == "ivy/v1/meters/+/command/request"
    assert t.gateway_status == "ivy/v1/gateway/status"
    assert t.gateway_stats == "ivy/v1/gateway/stats"
    assert t.gateway_events == "ivy/v1/gateway/events"


def test_topics_use_the_configured_prefix() -> None:
    assert Topics("site-7/meters-v1").telemetry(METER).startswith("site-7/meters-v1/meters/")


@pytest.mark.parametrize("prefix", ["", "/ivy", "ivy/", "ivy//v1", "ivy/+", "ivy/#", "$SYS/x"])
def test_prefix_with_wildcards_or_empty_levels_is_rejected(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        validate_prefix(prefix)
    with pytest.raises(ValueError, match="prefix"):
        Topics(prefix)


def test_a_plain_string_cannot_become_a_meter_level() -> None:
    with pytest.raises(TypeError):
        Topics().telemetry("+")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["+", "#", "00000000123/", "0000000012345", "00000000123a"])
def test_meter_ids_with_wildcards_cannot_be_built(bad: str) -> None:
    with pytest.raises(ValueError, match="12 decimal digits"):
        MeterId(bad)


def test_command_request_topic_parses_back_to_its_meter() -> None:
    t = Topics("a/b")
    assert t.parse_command_request(t.command_request(METER)) == METER


@pytest.mark.parametrize(
    "topic",
    [
        "ivy/v1/meters/000000001234/command/response",
        "ivy/v1/meters/+/command/request",
        "ivy/v1/meters/#/command/request",
        "ivy/v1/meters/000000001234/x/command/request",
        "ivy/v1/meters//command/request",
        "other/v1/meters/000000001234/command/request",
        "ivy/v1/meters/00000000123/command/request",
    ],
)
def test_anything_but_a_command_request_topic_is_rejected(topic: str) -> None:
    with pytest.raises(ValueError, match=r"command request|12 decimal digits"):
        Topics().parse_command_request(topic)
