"""The ``ivy-gateway`` command line. Composition root: may import every layer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ivy_gateway import __version__
from ivy_gateway.codec.errors import DecodeError
from ivy_gateway.decoding import DecodeKeys, describe_bytes, parse_hex

app = typer.Typer(
    name="ivy-gateway",
    help="Gateway for 4G electricity meters (DL/T 645-2007 and DLMS/COSEM over TCP).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ivy-gateway {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Gateway for 4G electricity meters (DL/T 645-2007 and DLMS/COSEM over TCP)."""


def _key(value: str | None, option: str, size: int) -> bytes | None:
    if value is None:
        return None
    try:
        key = parse_hex(value)
    except DecodeError:
        raise typer.BadParameter("must be hex", param_hint=option) from None
    if len(key) != size:
        raise typer.BadParameter(f"must be {size} bytes", param_hint=option)
    return key


def _print_readable(value: Any, indent: int = 0) -> None:
    pad = "  " * indent
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                typer.echo(f"{pad}{key}:")
                _print_readable(item, indent + 1)
            else:
                typer.echo(f"{pad}{key}: {json.dumps(item, ensure_ascii=False)}")
    elif isinstance(value, list):
        for item in value:
            typer.echo(f"{pad}-")
            _print_readable(item, indent + 1)
    else:
        typer.echo(f"{pad}{value}")


@app.command()
def decode(
    inputs: Annotated[
        list[str] | None, typer.Argument(metavar="HEX...", help="frames, packets or APDUs")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per input")] = False,
    stream: Annotated[
        bool, typer.Option("--stream", help="treat each input as a byte stream")
    ] = False,
    capture: Annotated[
        Path | None, typer.Option("--capture", help="decode a traffic capture file (JSONL)")
    ] = None,
    ek: Annotated[str | None, typer.Option("--ek", help="DLMS encryption key (hex)")] = None,
    ak: Annotated[str | None, typer.Option("--ak", help="DLMS authentication key (hex)")] = None,
    system_title: Annotated[
        str | None, typer.Option("--system-title", help="sender's system title (hex)")
    ] = None,
    aes_key: Annotated[
        str | None, typer.Option("--aes-key", help="DL/T 645 vendor relay AES key (hex)")
    ] = None,
) -> None:
    """Decode DL/T 645 frames, wrapper packets, heartbeats and DLMS APDUs.

    Bad hex or an undecodable input: exit code 2 and a one-line reason with the byte offset.
    """
    keys = DecodeKeys(
        ek=_key(ek, "--ek", 16),
        ak=_key(ak, "--ak", 16),
        system_title=_key(system_title, "--system-title", 8),
        vendor_aes_key=_key(aes_key, "--aes-key", 16),
    )
    items: list[tuple[str, bytes, dict[str, Any]]] = []
    if capture is not None:
        items.extend(_capture_items(capture))
    for index, text in enumerate(inputs or [], start=1):
        try:
            items.append((f"input {index}", parse_hex(text), {}))
        except DecodeError as exc:
            _fail(f"input {index}: {exc}")
    if not items:
        _fail("nothing to decode: give HEX arguments or --capture FILE")
    for label, data, extra in items:
        try:
            described = describe_bytes(data, stream=stream or bool(extra), keys=keys)
        except DecodeError as exc:
            _fail(f"{label}: {exc}")
        described = {**extra, **described}
        if as_json:
            typer.echo(json.dumps(described, ensure_ascii=False))
        else:
            typer.echo(f"# {label}")
            _print_readable(described)


def _capture_items(path: Path) -> list[tuple[str, bytes, dict[str, Any]]]:
    from ivy_gateway.services.capture import read_capture

    try:
        records = list(read_capture(path))
    except (OSError, ValueError) as exc:
        _fail(f"--capture {path}: {exc}")
    return [
        (
            f"{path.name} record {n}",
            record.data,
            {"ts": record.ts_ms, "meterId": str(record.meter), "direction": record.direction},
        )
        for n, record in enumerate(records, start=1)
    ]


def _fail(message: str) -> Any:
    typer.echo(f"ivy-gateway: {message}", err=True)
    raise typer.Exit(2)


def main() -> None:
    app()
