"""The ``ivy-gateway`` command line. Composition root: may import every layer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ivy_gateway import __version__
from ivy_gateway.codec.errors import DecodeError
from ivy_gateway.decoding import DecodeKeys, describe_bytes, describe_traffic, parse_hex

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
            if extra:  # a capture record: the stream view plus each message decoded
                described = describe_traffic(data, keys=keys)
            else:
                described = describe_bytes(data, stream=stream, keys=keys)
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


def _load(config: Path | None, overrides: dict[str, Any]) -> Any:
    from ivy_gateway.domain.errors import ConfigError
    from ivy_gateway.settings import load_settings

    try:
        return load_settings(config, overrides)
    except ConfigError as exc:
        _fail(str(exc))


def _default_users_file(settings: Any) -> Path:
    """``ivy-gateway.users.toml`` next to a SQLite database, else in the working directory."""
    url: str = settings.storage.url
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///")).parent / "ivy-gateway.users.toml"
    return Path("ivy-gateway.users.toml")


def _mqtt_users(settings: Any) -> Any:
    """MQTT auth on by default: the embedded broker gets users unless anonymous was chosen.

    The first start creates the users file with an ``admin`` user whose password is shown
    once in the start-up summary; only its argon2 hash is stored.
    """
    from ivy_gateway.adapters.mqtt.users_file import ensure_users_file
    from ivy_gateway.settings import is_explicit

    mqtt = settings.mqtt
    if mqtt.mode != "embedded" or mqtt.users or is_explicit(settings, "mqtt", "allow_anonymous"):
        return None
    return ensure_users_file(mqtt.users_file or _default_users_file(settings))


async def _serve(settings: Any, *, ready: Any = None, mqtt_users: Any = None) -> None:
    import signal

    from ivy_gateway.app import Gateway

    async with Gateway(settings, mqtt_users=mqtt_users) as gateway:
        for line in gateway.summary():
            typer.echo(line)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, gateway.request_stop)
        background = await ready(gateway) if ready is not None else None
        await gateway.wait_stopped()
        typer.echo("stopping: closing meter connections and flushing the store ...")
        if background is not None:
            background.cancel()
            await asyncio.gather(background, return_exceptions=True)


def _flag_overrides(**flags: Any) -> dict[str, Any]:
    """CLI flags as a nested settings dict: ``meters__port=9000`` → {"meters": {"port": 9000}}."""
    out: dict[str, Any] = {}
    for dotted, value in flags.items():
        if value is None:
            continue
        section, key = dotted.split("__")
        out.setdefault(section, {})[key] = value
    return out


@app.command()
def serve(
    config: Annotated[Path | None, typer.Option("--config", help="TOML settings file")] = None,
    meter_port: Annotated[
        int | None, typer.Option("--meter-port", help="meter listener port [8899]")
    ] = None,
    db: Annotated[
        str | None, typer.Option("--db", help="sqlite:///file.db or postgresql://…")
    ] = None,
    mqtt_port: Annotated[
        int | None, typer.Option("--mqtt-port", help="embedded MQTT broker port [1883]")
    ] = None,
    mqtt_url: Annotated[
        str | None,
        typer.Option("--mqtt-url", help="use an external broker: mqtt[s]://user:pass@host:port"),
    ] = None,
    http_port: Annotated[
        int | None, typer.Option("--http-port", help="REST API / live feed port [3000]")
    ] = None,
    redis: Annotated[
        str | None, typer.Option("--redis", help="redis://host:port — cluster mode")
    ] = None,
    gateway_id: Annotated[str | None, typer.Option("--gateway-id")] = None,
) -> None:
    """Serve meters: listen, identify, poll, store and publish. Ctrl-C stops cleanly."""
    if mqtt_port is not None and mqtt_url is not None:
        _fail("--mqtt-port (embedded broker) and --mqtt-url (external broker) exclude each other")
    settings = _load(
        config,
        _flag_overrides(
            meters__port=meter_port,
            storage__url=db,
            cluster__gateway_id=gateway_id,
            mqtt__port=mqtt_port,
            mqtt__url=mqtt_url,
            mqtt__mode="external" if mqtt_url else None,
            http__port=http_port,
            cluster__redis_url=redis,
        ),
    )
    _run_gateway(settings, auth_by_default=True)


def _run_gateway(settings: Any, ready: Any = None, *, auth_by_default: bool = False) -> None:
    from ivy_gateway.domain.errors import ConfigError
    from ivy_gateway.observability import configure_logging
    from ivy_gateway.transport import install_event_loop_policy

    configure_logging(
        settings.logging.level, settings.logging.modules, json_format=settings.logging.json_format
    )
    install_event_loop_policy(prefer_uvloop=True)
    try:
        users = _mqtt_users(settings) if auth_by_default else None
        asyncio.run(_serve(settings, ready=ready, mqtt_users=users))
    except ConfigError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot start: {exc}")


def _fleet_plan(dlt645: int, em114070: int, dlms: int, seed: int, rate: float) -> Any:
    from ivy_gateway.simulators.fleet import FleetPlan

    try:
        return FleetPlan(
            dlt645=dlt645, em114070=em114070, dlms=dlms, seed=seed, dial_rate_per_s=rate
        )
    except ValueError as exc:
        _fail(str(exc))


def _progress(fleet: Any) -> None:
    typer.echo(
        f"fleet: {fleet.connected}/{fleet.plan.size} connected, "
        f"{fleet.dials} dials, {fleet.failed_dials} failed",
        err=True,
    )


@app.command()
def simulate(
    host: Annotated[str, typer.Option("--host", help="the gateway's meter host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="the gateway's meter port")] = 8899,
    dlt645: Annotated[int, typer.Option("--dlt645", help="DL/T 645 meters")] = 0,
    em114070: Annotated[int, typer.Option("--em114070", help="IVY EM114070 meters")] = 0,
    dlms: Annotated[int, typer.Option("--dlms", help="ciphered DLMS three-phase meters")] = 0,
    seed: Annotated[int, typer.Option("--seed", help="seed of every random value")] = 1,
    rate: Annotated[float, typer.Option("--rate", help="new connections per second")] = 200.0,
) -> None:
    """Run a fleet of simulated meters against a gateway until Ctrl-C.

    Addresses: DL/T 645 00000001nnnn, EM114070 31150111nnnn, DLMS 41000000nnnn. The DLMS
    meters use the Green Book's example keys (see docs/simulators.md).
    """
    from ivy_gateway.simulators.fleet import Fleet

    plan = _fleet_plan(dlt645, em114070, dlms, seed, rate)
    if plan.size == 0:
        _fail("no meters: give --dlt645, --em114070 and/or --dlms")
    fleet = Fleet(plan)

    async def run() -> None:
        reporter = asyncio.create_task(_report_every(fleet, 5.0))
        try:
            await fleet.run(host, port, on_progress=_progress)
        finally:
            reporter.cancel()

    typer.echo(f"simulating {plan.size} meters against {host}:{port} (Ctrl-C stops)", err=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


async def _report_every(fleet: Any, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        _progress(fleet)


@app.command()
def demo(
    dlt645: Annotated[int, typer.Option("--dlt645")] = 4,
    em114070: Annotated[int, typer.Option("--em114070")] = 3,
    dlms: Annotated[int, typer.Option("--dlms")] = 2,
    db: Annotated[str, typer.Option("--db")] = "sqlite:///ivy-demo.db",
) -> None:
    """The gateway plus a small simulated fleet in one process; prints where to look."""
    from ivy_gateway.simulators.fleet import Fleet, gateway_settings_for

    plan = _fleet_plan(dlt645, em114070, dlms, 1, 50.0)
    overrides = {
        **gateway_settings_for(plan),
        "polling": {"interval_scale": 0.1},
        "storage": {"url": db},
    }
    settings = _load(None, overrides)

    async def start_fleet(gateway: Any) -> asyncio.Task[None]:
        port = gateway.ports["meters"].port
        task = asyncio.create_task(Fleet(plan).run("127.0.0.1", port))
        mqtt = gateway.ports.get("mqtt")
        typer.echo(f"demo: {plan.size} simulated meters dialling 127.0.0.1:{port}")
        http = gateway.ports.get("http")
        if http is not None:
            typer.echo(f"demo: dashboard http://{settings.http.host}:{http.port}/")
        if mqtt is not None:
            prefix = settings.mqtt.topic_prefix
            typer.echo(f"demo: watch   mosquitto_sub -p {mqtt.port} -t '{prefix}/#' -v")
        typer.echo(f"demo: history {db} (tables meters, readings, events, commands)")
        return task

    _run_gateway(settings, ready=start_fleet)


@app.command()
def bench(
    meters: Annotated[int, typer.Option("--meters", help="simulated DL/T 645 meters")] = 2_000,
    duration: Annotated[float, typer.Option("--duration", help="measured seconds")] = 30.0,
    poll_interval: Annotated[
        float, typer.Option("--poll-interval", help="instantaneous group interval, s")
    ] = 4.8,
    idle: Annotated[bool, typer.Option("--idle", help="no polling: RSS per held meter")] = False,
    swarm_processes: Annotated[int, typer.Option("--swarm-processes")] = 1,
    dial_rate: Annotated[
        float, typer.Option("--dial-rate", help="connections per second")
    ] = 2_000.0,
) -> None:
    """Load benchmark: a gateway process and a meter swarm on 127.0.0.1; prints a table."""
    from ivy_gateway.loadtest import run_bench

    try:
        run_bench(
            meters=meters,
            duration_s=duration,
            poll_interval_s=None if idle else poll_interval,
            swarm_processes=swarm_processes,
            dial_rate_per_s=dial_rate,
            echo=typer.echo,
        )
    except ValueError as exc:
        _fail(str(exc))


db_app = typer.Typer(
    help="History database: schema migrations and retention.", no_args_is_help=True
)
app.add_typer(db_app, name="db")


def _store_password(settings: Any) -> str | None:
    path = settings.storage.password_file
    return None if path is None else path.read_text(encoding="utf-8").strip()


def _redacted(url: str) -> str:
    from ivy_gateway.assembly import redact_url

    return redact_url(url)


@db_app.command("upgrade")
def db_upgrade(
    config: Annotated[Path | None, typer.Option("--config", help="TOML settings file")] = None,
    db: Annotated[str | None, typer.Option("--db", help="database URL")] = None,
) -> None:
    """Apply pending schema migrations (serve also does this on start)."""
    from ivy_gateway.adapters.storage import upgrade_database

    settings = _load(config, _flag_overrides(storage__url=db))
    url = settings.storage.url
    typer.echo(f"upgrading {_redacted(url)} ...", err=True)
    try:
        applied = asyncio.run(upgrade_database(url, _store_password(settings)))
    except Exception as exc:  # a driver error: one line, never the URL's password
        _fail(f"db upgrade failed: {type(exc).__name__}: {exc}")
    for name in applied:
        typer.echo(f"applied {name}")
    typer.echo("schema is up to date" if not applied else f"{len(applied)} migration(s) applied")


@db_app.command("prune")
def db_prune(
    config: Annotated[Path | None, typer.Option("--config", help="TOML settings file")] = None,
    db: Annotated[str | None, typer.Option("--db", help="database URL")] = None,
    retention_days: Annotated[
        int | None, typer.Option("--retention-days", help="[storage.retention_days]")
    ] = None,
) -> None:
    """Delete readings and events older than the retention (commands: their own retention)."""
    import time

    from ivy_gateway.adapters.storage import prune_database

    settings = _load(
        config, _flag_overrides(storage__url=db, storage__retention_days=retention_days)
    )
    s = settings.storage
    typer.echo(
        f"pruning {_redacted(s.url)}: readings/events older than {s.retention_days} days, "
        f"commands older than {s.command_retention_days} days ...",
        err=True,
    )
    try:
        counts = asyncio.run(
            prune_database(
                s.url,
                _store_password(settings),
                s.retention_days,
                s.command_retention_days,
                time.time_ns() // 1_000_000,
            )
        )
    except Exception as exc:
        _fail(f"db prune failed: {type(exc).__name__}: {exc}")
    for table, count in counts.items():
        typer.echo(f"{table}: {count} rows deleted")


@app.command("hash-password")
def hash_password_command(
    password_stdin: Annotated[
        bool, typer.Option("--stdin", help="read the password from standard input")
    ] = False,
) -> None:
    """Hash a password (argon2id) for mqtt.users.<name>.password_hash or an HTTP token."""
    import getpass

    from ivy_gateway.adapters.mqtt import hash_password

    if password_stdin:
        plain = sys.stdin.readline().rstrip("\n")
    else:
        plain = getpass.getpass("password: ")
        if getpass.getpass("again: ") != plain:
            _fail("the two passwords differ")
    if not plain:
        _fail("an empty password cannot be hashed")
    typer.echo(hash_password(plain))


def main() -> None:
    app()
