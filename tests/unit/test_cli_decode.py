"""``ivy-gateway decode --json`` reproduces every protocol vector (issues #2 and #3)."""

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ivy_gateway.cli import app

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
runner = CliRunner()

#: Keys that describe more than one APDU (a block transfer's reassembly, the HLS-GMAC
#: exchange): checked by the association tests, not derivable from one input.
MULTI_APDU_KEYS = {"reassembled_data", "f_stoc", "f_ctos"}


def _vectors(name: str) -> list[dict[str, Any]]:
    vectors: list[dict[str, Any]] = json.loads((VECTORS / name).read_text())["vectors"]
    return vectors


def _key_options(params: dict[str, Any]) -> list[str]:
    options: list[str] = []
    if "aes_key" in params:
        options += ["--aes-key", params["aes_key"]]
    ek = params.get("ek") or params.get("dedicated_key")
    if ek and "ak" in params:
        options += ["--ek", ek, "--ak", params["ak"]]
    title = (
        params.get("system_title")
        or params.get("client_system_title")
        or params.get("server_system_title")
    )
    if title:
        options += ["--system-title", title]
    return options


def _decode(args: list[str]) -> Any:
    result = runner.invoke(app, ["decode", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _assert_includes(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    for key, value in expected.items():
        if key in MULTI_APDU_KEYS or key == "standard":
            continue
        assert key in actual, f"missing key {key!r}"
        assert actual[key] == value, key


@pytest.mark.parametrize("vector", _vectors("dlt645.json"), ids=lambda v: v["name"])
def test_dlt645_vectors(vector: dict[str, Any]) -> None:
    expected = vector["decoded"]
    stream = "frames" in expected
    options = _key_options(vector.get("params") or {})
    actual = _decode([*options, *(["--stream"] if stream else []), vector["hex"]])
    assert actual["protocol"] == "dlt645"
    if stream:
        assert actual["rejected"] == expected.get("rejected", [])
    _assert_includes(actual, expected)


@pytest.mark.parametrize("vector", _vectors("ivy.json"), ids=lambda v: v["name"])
def test_ivy_vectors(vector: dict[str, Any]) -> None:
    expected = vector["decoded"]
    if set(expected) == {"protocol"}:  # a detection vector: the protocol is the answer
        actual = _decode(["--stream", vector["hex"]])
        assert actual["protocol"] == expected["protocol"]
        return
    stream = "packets" in expected
    actual = _decode([*(["--stream"] if stream else []), vector["hex"]])
    assert actual["protocol"] == "ivy_dlms"
    if stream:
        assert actual.get("skipped", "") == expected.get("skipped", "")
    _assert_includes(actual, expected)


@pytest.mark.parametrize("vector", _vectors("dlms.json"), ids=lambda v: v["name"])
def test_dlms_vectors(vector: dict[str, Any]) -> None:
    options = _key_options(vector.get("params") or {})
    actual = _decode([*options, vector["hex"]])
    assert actual["protocol"] == "dlms"
    _assert_includes(actual, vector["decoded"])


def test_wrapped_apdu_is_decoded_too() -> None:
    actual = _decode(["0001000100010009C401C1000600005C54"])
    assert actual["decoded"]["value"] == 23636


def test_inputs_come_out_in_order() -> None:
    result = runner.invoke(app, ["decode", "--json", "C401C1000600005C54", "D80102"])
    assert result.exit_code == 0
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert first["apdu"] == "GET-Response-Normal"
    assert second["apdu"] == "Exception-Response"


def test_readable_output() -> None:
    result = runner.invoke(app, ["decode", "0001000100010009C401C1000600005C54"])
    assert result.exit_code == 0
    assert "value: 23636" in result.stdout
    assert "decoded:" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ZZ"], "input 1: not a hex digit: 'Z' (at byte 0)"),
        (["C4", "ABC"], "input 2: odd number of hex digits (at byte 1)"),
        (["68341200"], "input 1: input ends inside the frame header (at byte 4)"),
        (["--stream", "7777"], "no protocol recognised"),
        ([], "nothing to decode"),
        (["--ek", "0011", "C4"], "--ek"),
    ],
)
def test_bad_input_exits_2_with_one_line(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["decode", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_keys_never_echoed_on_error() -> None:
    key = "000102030405060708090A0B0C0D0E0F"
    result = runner.invoke(app, ["decode", "--ek", key, "--ak", key, "ZZ"])
    assert result.exit_code == 2
    assert key not in result.output


def test_help_lists_decode() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "decode" in result.stdout


def test_capture_file_is_decoded_record_by_record(tmp_path: Path) -> None:
    capture = tmp_path / "000000001234.jsonl"
    rows = [
        {"ts_ms": 1, "meter": "000000001234", "direction": "tx", "hex": "0001000100010003D80102"},
        {"ts_ms": 2, "meter": "000000001234", "direction": "rx", "hex": "C401C1000600005C54"},
    ]
    capture.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = runner.invoke(app, ["decode", "--json", "--capture", str(capture)])
    assert result.exit_code == 0, result.output
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert (first["direction"], first["meterId"], first["packets"][0]["apdu"]) == (
        "tx",
        "000000001234",
        "D80102",
    )
    assert second["packets"] == [{"type": "raw_dlms", "apdu": "C401C1000600005C54"}]


def test_bad_capture_file_exits_2(tmp_path: Path) -> None:
    capture = tmp_path / "bad.jsonl"
    capture.write_text('{"ts_ms": 1}\n')
    result = runner.invoke(app, ["decode", "--capture", str(capture)])
    assert result.exit_code == 2
    assert "bad.jsonl:1" in result.output
