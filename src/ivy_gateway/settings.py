"""One typed ``Settings`` object: TOML file, then ``IVY_<SECTION>__<KEY>`` env, then CLI flags.

Read once in ``cli``/``app`` and injected everywhere; nothing reads configuration at import
time. Secrets are ``SecretStr`` (never printed, not even in ``repr``) and can be given as a
``…_file`` path instead of a value, so they never have to sit in the TOML file.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from ivy_gateway.domain.errors import ConfigError

__all__ = [
    "AlarmSettings",
    "ClusterSettings",
    "HttpSettings",
    "LoggingSettings",
    "MeterOverride",
    "MeterSettings",
    "MqttSettings",
    "MqttUser",
    "PollingSettings",
    "ProfileSettings",
    "Settings",
    "StorageSettings",
    "load_settings",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MeterSettings(_Section):
    """The meter-facing TCP listener (CONTRACT.md: port 8899)."""

    host: str = "0.0.0.0"  # meters dial in from the mobile network: every interface
    port: int = Field(8899, ge=0, le=65535)
    max_connections: int = Field(20_000, ge=1)
    max_connections_per_ip: int = Field(
        64, ge=1, description="4G carriers NAT many meters behind one address; keep it generous"
    )
    new_connections_per_ip: int = Field(30, ge=1, description="per rate window")
    rate_window_s: float = Field(10.0, gt=0)
    rate_block_s: float = Field(60.0, ge=0)
    idle_timeout_s: float = Field(300.0, gt=0, description="no byte received → close")
    max_buffer_bytes: int = Field(65_536, ge=512)
    identify_timeout_s: float = Field(
        10.0, gt=0, description="DL/T 645 meter silent this long → ask with read-address (0x13)"
    )
    unknown_traffic_limit_bytes: int = Field(256, ge=16)
    capture_dir: Path = Field(
        Path("captures"), description="where per-meter traffic captures (JSONL) are written"
    )


class PollingSettings(_Section):
    enabled: bool = True
    timeout_s: float = Field(5.0, gt=0, description="per request to a meter")
    retries: int = Field(2, ge=0)
    concurrency: int = Field(256, ge=1, description="meter requests in flight at once")
    interval_scale: float = Field(
        1.0, gt=0, description="multiplies every profile poll interval (0.1 = ten times faster)"
    )


class AlarmSettings(_Section):
    """Alarm thresholds in canonical units; leave one out (or set it to none) to switch it off.

    Voltage defaults are 230 V ± 10 % (EN 50160).
    """

    over_voltage_v: float | None = 253.0
    under_voltage_v: float | None = 207.0
    voltage_hysteresis_v: float = Field(2.0, ge=0)
    over_current_a: float | None = None
    current_hysteresis_a: float = Field(0.5, ge=0)
    overload_w: float | None = None
    power_hysteresis_w: float = Field(100.0, ge=0)
    low_power_factor: float | None = None
    power_factor_hysteresis: float = Field(0.02, ge=0)
    low_balance_money: float | None = None
    low_balance_energy_kwh: float | None = None
    balance_hysteresis: float = Field(1.0, ge=0)


class ClusterSettings(_Section):
    gateway_id: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="default: host name + port"
    )
    redis_url: SecretStr | None = Field(
        None, description="redis://[:password@]host:port/db — set it to turn on cluster mode"
    )
    namespace: str = Field(
        "ivy", pattern=r"^[A-Za-z0-9_.-]{1,32}$", description="key prefix in Redis"
    )
    lease_ttl_s: float = Field(
        15.0, ge=2, description="a dead instance's meters are free after this"
    )
    heartbeat_s: float = Field(2.0, gt=0, description="membership heartbeat and lease renewal")
    forward_timeout_s: float = Field(
        5.0, gt=0, description="margin over a command's own timeout when forwarded"
    )
    shared_limits: bool = Field(True, description="per-IP connection limits counted cluster-wide")


class StorageSettings(_Section):
    """History store. ``sqlite:///relative/path.db``, ``sqlite:////abs/path.db`` or
    ``postgresql://user:pass@host:port/db`` (the password may instead be in ``password_file``)."""

    url: str = "sqlite:///ivy-gateway.db"
    password_file: Path | None = None
    batch_size: int = Field(2_000, ge=1, description="rows per write")
    batch_interval_s: float = Field(1.0, gt=0, description="longest a reading waits to be written")
    max_backlog: int = Field(500_000, ge=1_000, description="readings held while the store is down")
    retention_days: int = Field(400, ge=1, description="readings/events older than this are pruned")
    command_retention_days: int = Field(400, ge=1)


class MqttUser(_Section):
    """An MQTT user of the embedded broker; ``password_hash`` from ``ivy-gateway hash-password``."""

    password_hash: SecretStr
    role: str = Field("reader", pattern=r"^(reader|operator|admin)$")


class MqttSettings(_Section):
    mode: str = Field("embedded", pattern=r"^(embedded|external)$")
    url: SecretStr | None = Field(
        None, description="external broker: mqtt[s]://user:pass@host:port (secret: has a password)"
    )
    password_file: Path | None = None
    topic_prefix: str = Field("ivy/v1", pattern=r"^[^#+]+$")
    host: str = "0.0.0.0"  # the embedded broker's TCP and WebSocket listeners
    port: int = Field(1883, ge=0, le=65535)
    ws_port: int = Field(9001, ge=0, le=65535)
    users: dict[str, MqttUser] = Field(default_factory=dict)
    allow_anonymous: bool = Field(True, description="embedded broker without users: open")
    client_id: str | None = None
    keepalive_s: int = Field(30, ge=5)
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    outbox_size: int = Field(100_000, ge=100, description="messages held while the broker is away")
    # TLS for the *embedded* broker's listeners (cert_file/key_file above are the client
    # certificate for an external broker, so these have their own names).
    listener_cert_file: Path | None = Field(None, description="embedded broker TLS cert (PEM)")
    listener_key_file: Path | None = Field(None, description="embedded broker TLS key (PEM)")
    users_file: Path | None = Field(
        None,
        description="embedded broker users (argon2 hashes); default ivy-gateway.users.toml "
        "next to the SQLite database, else in the working directory",
    )

    @model_validator(mode="after")
    def _listener_tls_pair(self) -> Self:
        if (self.listener_cert_file is None) != (self.listener_key_file is None):
            raise ValueError("listener_cert_file and listener_key_file go together")
        return self

    stats_interval_s: float = Field(30.0, gt=0)


class HttpSettings(_Section):
    """REST API, live feed, /metrics and (later) the dashboard (CONTRACT.md: port 3000)."""

    host: str = Field(
        "127.0.0.1", description="loopback by default: commands are open until tokens are set"
    )
    port: int = Field(3000, ge=0, le=65535)
    tokens: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="name → sha256:<hex> or argon2 hash of a bearer token (write endpoints)",
    )
    protect_reads: bool = False
    access_log: bool = False
    meter_list_max_age_s: float = Field(1.0, ge=0)
    live_queue_size: int = Field(1000, ge=10)
    max_live_clients: int = Field(100, ge=1)
    cert_file: Path | None = Field(None, description="HTTPS certificate (PEM)")
    key_file: Path | None = Field(None, description="HTTPS private key (PEM)")

    @model_validator(mode="after")
    def _tls_pair(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        return self


class LoggingSettings(_Section):
    level: str = "INFO"
    modules: dict[str, str] = Field(default_factory=dict, description="per-module levels")
    json_format: bool | None = Field(None, description="default: JSON when not on a TTY")


class MeterOverride(_Section):
    """Per-meter settings under ``[profiles.meters."<12-digit id>"]``."""

    model: str | None = None
    relay_method: str | None = None
    dlt645_password: SecretStr | None = None
    dlt645_password_file: Path | None = None
    dlt645_operator: str | None = Field(None, pattern=r"^[0-9]{8}$")
    dlms_ek: SecretStr | None = None
    dlms_ek_file: Path | None = None
    dlms_ak: SecretStr | None = None
    dlms_ak_file: Path | None = None
    dlms_system_title: str | None = Field(None, pattern=r"^[0-9A-Fa-f]{16}$")
    vendor_aes_key: SecretStr | None = None
    vendor_aes_key_file: Path | None = None

    def secret(self, name: str) -> str | None:
        """The secret ``name`` from its value or from its ``_file`` (stripped); never logged."""
        value: SecretStr | None = getattr(self, name)
        if value is not None:
            return value.get_secret_value()
        path: Path | None = getattr(self, f"{name}_file")
        if path is None:
            return None
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"profiles.meters: cannot read {name}_file {path}: {exc}") from exc


class ProfileSettings(_Section):
    paths: list[Path] = Field(
        default_factory=list, description="extra folders of meter-model TOML files"
    )
    default_dlt645: str = "dlt645-three-phase"
    default_dlms: str = "em114070"
    meters: dict[str, MeterOverride] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_ids(self) -> Self:
        for key in self.meters:
            if len(key) != 12 or not key.isdigit():
                raise ValueError(f"profiles.meters: {key!r} is not a 12-digit meter id")
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="IVY_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    meters: MeterSettings = MeterSettings()
    polling: PollingSettings = PollingSettings()
    alarms: AlarmSettings = AlarmSettings()
    logging: LoggingSettings = LoggingSettings()
    storage: StorageSettings = StorageSettings()
    mqtt: MqttSettings = MqttSettings()
    http: HttpSettings = HttpSettings()
    profiles: ProfileSettings = ProfileSettings()
    cluster: ClusterSettings = ClusterSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Init kwargs carry the TOML file merged with CLI flags (flags win); env wins over
        # the file but not over flags, which ``load_settings`` applies last.
        return (env_settings, init_settings)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_settings(
    config_file: Path | None = None, overrides: dict[str, Any] | None = None
) -> Settings:
    """Settings from ``config_file`` (TOML), the environment, then ``overrides`` (CLI flags).

    Every problem becomes a ``ConfigError`` whose message names the setting to change.
    """
    data: dict[str, Any] = {}
    if config_file is not None:
        try:
            data = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"--config {config_file}: {exc.strerror or exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"--config {config_file}: not valid TOML: {exc}") from exc
    try:
        settings = Settings(**data)
        # Flags win over the environment: apply them after the sources, section by section.
        for section_name, values in (overrides or {}).items():
            section: BaseModel = getattr(settings, section_name)
            merged = _merge(section.model_dump(exclude_unset=True), values)
            new_section = type(section).model_validate(merged)
            settings = settings.model_copy(update={section_name: new_section})
    except ValidationError as exc:
        raise ConfigError(_describe_validation_error(exc, config_file)) from None
    return settings


def _describe_validation_error(exc: ValidationError, config_file: Path | None) -> str:
    where = f" in {config_file}" if config_file else ""
    parts = []
    for err in exc.errors():
        setting = ".".join(str(p) for p in err["loc"])
        # The input of a secret field must not reach the message.
        parts.append(f"{setting}: {err['msg']}")
    return f"invalid configuration{where}: " + "; ".join(parts)


def is_explicit(settings: BaseModel, *path: str) -> bool:
    """Whether the user set ``path`` (e.g. ``"meters", "port"``) rather than taking the default."""
    node: BaseModel = settings
    for name in path[:-1]:
        if name not in node.model_fields_set:
            return False
        node = getattr(node, name)
    return path[-1] in node.model_fields_set
