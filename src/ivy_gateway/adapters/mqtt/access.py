"""Who may connect to the embedded broker and what they may do there (amqtt plugins).

Roles (``mqtt.users.<name>.role``), ``{p}`` being the topic prefix:

========  ==========================  =====================================
role      subscribe                   publish
========  ==========================  =====================================
reader    ``{p}/#``                   nothing
operator  ``{p}/#``                   ``{p}/meters/+/command/request``
admin     anything                    anything
========  ==========================  =====================================

Anonymous clients are accepted only when ``allow_anonymous`` is set *and* no user is
configured (the zero-setup default); they get ``anonymous_role`` (``reader`` unless set).
As soon as one user exists, a CONNECT without valid credentials is refused (CONNACK 5).

Why our own plugins instead of amqtt's ``FileAuthPlugin`` + ``TopicAccessControlListPlugin``
(ECOSYSTEM.md §4.1, §4.2): the file plugin verifies argon2 on the event loop (≈100 ms stall
per CONNECT), and the ACL plugin denies every SUBSCRIBE when only ``publish_acl`` is set
and warns (DeprecationWarning) when ``acl`` is. Here a password is verified in a worker
thread, at most ``_VERIFY_CONCURRENCY`` at a time (argon2id takes 64 MiB each), and
subscribe and publish rules always come together from the role.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from amqtt.contexts import Action  # type: ignore[import-untyped]
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin  # type: ignore[import-untyped]
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = [
    "PasswordAuthPlugin",
    "Role",
    "RoleAclPlugin",
    "filter_covers",
    "hash_password",
    "verify_password",
]

log = logging.getLogger(__name__)

_VERIFY_CONCURRENCY = 2
_HASHER = PasswordHasher()  # argon2id, argon2-cffi's RFC 9106 "low memory" defaults


@functools.cache
def _dummy_hash() -> str:
    """Verified when the user is unknown, so a wrong name costs as long as a wrong password."""
    return _HASHER.hash("ivy-gateway: no such user")


class Role(enum.StrEnum):
    READER = "reader"
    OPERATOR = "operator"
    ADMIN = "admin"


def hash_password(plain: str) -> str:
    """An argon2id hash of ``plain`` for ``mqtt.users.<name>.password_hash``."""
    if not plain:
        raise ValueError("an empty password cannot be hashed")
    return _HASHER.hash(plain)


def verify_password(password_hash: str, plain: str) -> bool:
    """Whether ``plain`` matches ``password_hash`` (blocking: call it in a thread)."""
    try:
        return _HASHER.verify(password_hash, plain)
    except (VerificationError, InvalidHashError):
        return False


def _verify(password_hash: str | None, plain: str) -> bool:
    # Runs in a worker thread, including the one-time hashing of the dummy.
    return verify_password(password_hash or _dummy_hash(), plain)


def filter_covers(allowed: str, requested: str) -> bool:
    """Whether every topic matched by filter ``requested`` is matched by ``allowed``."""
    allowed_levels = allowed.split("/")
    requested_levels = requested.split("/")
    for i, level in enumerate(allowed_levels):
        if level == "#":
            return True
        if i >= len(requested_levels):
            return False
        wanted = requested_levels[i]
        if level == "+":
            if wanted == "#":
                return False
            continue
        if wanted != level:
            return False
    return len(requested_levels) == len(allowed_levels)


@dataclass
class _AccessConfig:
    prefix: str = "ivy/v1"
    users: dict[str, str] = field(default_factory=dict)  # name → argon2 hash
    roles: dict[str, str] = field(default_factory=dict)  # name → Role value
    allow_anonymous: bool = False
    anonymous_role: str = "reader"


class PasswordAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]
    """Username/password against argon2 hashes, verified off the event loop."""

    Config = _AccessConfig

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._cfg: _AccessConfig = context.config
        self._verifying = asyncio.Semaphore(_VERIFY_CONCURRENCY)

    async def authenticate(self, *, session: Any) -> bool:
        username: str | None = session.username or None
        if username is None:
            ok = self._cfg.allow_anonymous and not self._cfg.users
            session.is_anonymous = ok
            if not ok:
                log.info("MQTT: refused an anonymous client (users are configured)")
            return ok
        password: str = session.password or ""
        known = self._cfg.users.get(username)
        async with self._verifying:
            ok = await asyncio.to_thread(_verify, known, password)
        ok = ok and known is not None
        if not ok:
            # The password never reaches the log; the user name helps find a misconfigured client.
            log.info("MQTT: refused client %r: bad user name or password", username)
        return ok


class RoleAclPlugin(BaseTopicPlugin):  # type: ignore[misc]
    """Per-user subscribe/publish rules from roles; forwards permitted client publishes."""

    Config = _AccessConfig

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._cfg: _AccessConfig = context.config
        p = self._cfg.prefix
        self._subscribe: dict[Role, tuple[str, ...]] = {
            Role.READER: (f"{p}/#",),
            Role.OPERATOR: (f"{p}/#",),
            Role.ADMIN: ("#",),
        }
        self._publish: dict[Role, tuple[str, ...]] = {
            Role.READER: (),
            Role.OPERATOR: (f"{p}/meters/+/command/request",),
            Role.ADMIN: ("#",),
        }
        #: Set by ``EmbeddedBroker``: called with (topic, payload, username) per client publish.
        self.inbound: Callable[[str, bytes, str], None] | None = None

    def role_of(self, session: Any) -> Role | None:
        username: str | None = session.username if session is not None else None
        if not username:
            if self._cfg.allow_anonymous and not self._cfg.users:
                return Role(self._cfg.anonymous_role)
            return None
        raw = self._cfg.roles.get(username)
        return Role(raw) if raw is not None else None

    async def topic_filtering(
        self, *, session: Any = None, topic: str | None = None, action: Any = None
    ) -> bool:
        if topic is None:
            return False
        if action == Action.RECEIVE:
            return True  # what a client may see is decided when it subscribes
        role = self.role_of(session)
        if role is None:
            return False
        rules = self._subscribe[role] if action == Action.SUBSCRIBE else self._publish[role]
        allowed = any(filter_covers(rule, topic) for rule in rules)
        if not allowed:
            log.info("MQTT: %s by %r on %r denied", action, session.username, topic)
        return allowed

    async def on_broker_message_broadcast(self, *, client_id: str, message: Any) -> None:
        """amqtt fires this only for publishes that passed ``topic_filtering``."""
        if self.inbound is None or message is None or message.topic is None:
            return
        session = self.context.get_session(client_id)
        username = session.username if session is not None else None
        self.inbound(message.topic, bytes(message.data or b""), username or "anonymous")
