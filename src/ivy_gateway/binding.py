"""Choosing listen ports at start-up (CONTRACT.md "Ports").

A *default* port that is taken is not an error — ``make run`` must come up on a machine
where Mosquitto already holds 1883 — so the next free port is taken and reported. A port
the user set explicitly is a promise to someone (a firewall rule, a meter's configuration):
if it is taken, start-up stops with a message naming the port and the option to change.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from ivy_gateway.domain.errors import ConfigError

__all__ = ["PortChoice", "choose_port", "port_is_free"]

_SEARCH_SPAN = 100


@dataclass(frozen=True, slots=True)
class PortChoice:
    wanted: int
    port: int

    @property
    def moved(self) -> bool:
        """A wanted port was taken; port 0 ("any free port") never counts as moved."""
        return self.wanted != 0 and self.port != self.wanted


def port_is_free(host: str, port: int) -> bool:
    """Whether a listening socket could bind ``host:port`` now (as asyncio binds it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def choose_port(host: str, port: int, *, explicit: bool, option: str, hint: str = "") -> PortChoice:
    """The port to listen on; raise ``ConfigError`` when an explicit port is taken."""
    if port == 0 or port_is_free(host, port):
        return PortChoice(port, port)
    if explicit:
        extra = f" {hint}" if hint else ""
        raise ConfigError(f"port {port} on {host} is already in use: change {option}.{extra}")
    for candidate in range(port + 1, min(port + _SEARCH_SPAN, 65535) + 1):
        if port_is_free(host, candidate):
            return PortChoice(port, candidate)
    raise ConfigError(f"ports {port}..{port + _SEARCH_SPAN} on {host} are all in use: set {option}")
