"""The embedded broker's users state file: MQTT auth on by default outside ``demo``.

On the first ``serve`` with no configured MQTT user, ``ensure_users_file`` creates
``ivy-gateway.users.toml`` (mode 0600) with one ``admin`` user and a random password; the
file holds only the argon2id hash. The password is returned once (``new_password``) for
the start-up summary to print, and exists nowhere else afterwards: lose it and delete the
file (a new one is made) or add users with ``ivy-gateway hash-password``. The file has the
shape of the ``[mqtt.users]`` settings section::

    [users.admin]
    password_hash = "$argon2id$v=19$m=65536,t=3,p=4$..."
    role = "admin"
"""

from __future__ import annotations

import os
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ivy_gateway.domain.errors import ConfigError

from .access import Role, hash_password
from .broker import BrokerUser

__all__ = ["ADMIN_USER", "UsersFile", "ensure_users_file", "load_users_file"]

ADMIN_USER = "admin"
_HEADER = (
    "# MQTT users of the ivy-gateway embedded broker. Passwords are stored as argon2id\n"
    "# hashes only; add users with `ivy-gateway hash-password`. Keep this file private.\n"
)


@dataclass(frozen=True, slots=True)
class UsersFile:
    path: Path
    users: dict[str, BrokerUser]
    #: The generated admin password, only on the start that created the file.
    new_password: str | None = field(default=None, repr=False)


def load_users_file(path: Path) -> UsersFile:
    """The users in ``path``; ``ConfigError`` naming the file when it cannot be used."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"mqtt.users_file {path}: {exc}") from None
    users: dict[str, BrokerUser] = {}
    raw_users = data.get("users", {})
    if not isinstance(raw_users, dict):
        raise ConfigError(f"mqtt.users_file {path}: [users] must be a table")
    for name, entry in raw_users.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("password_hash"), str):
            raise ConfigError(f"mqtt.users_file {path}: users.{name} needs a password_hash")
        try:
            role = Role(entry.get("role", Role.READER.value))
        except ValueError:
            raise ConfigError(f"mqtt.users_file {path}: users.{name}.role is unknown") from None
        users[name] = BrokerUser(entry["password_hash"], role)
    if not users:
        raise ConfigError(f"mqtt.users_file {path}: no user (delete it to create an admin)")
    return UsersFile(path, users)


def ensure_users_file(path: Path) -> UsersFile:
    """Load ``path``, or create it with a new ``admin`` user and return its password once."""
    if path.exists():
        return load_users_file(path)
    password = secrets.token_urlsafe(18)  # 144 bits
    password_hash = hash_password(password)
    text = (
        f"{_HEADER}\n[users.{ADMIN_USER}]\n"
        f'password_hash = "{password_hash}"\nrole = "{Role.ADMIN.value}"\n'
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: two instances starting at once cannot both create (and print) a password.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_users_file(path)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    return UsersFile(path, {ADMIN_USER: BrokerUser(password_hash, Role.ADMIN)}, password)
