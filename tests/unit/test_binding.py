import socket
from collections.abc import Iterator

import pytest

from ivy_gateway.binding import PortChoice, choose_port, port_is_free
from ivy_gateway.domain.errors import ConfigError


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_free_port_is_kept() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    choice = choose_port("127.0.0.1", port, explicit=True, option="--http-port")
    assert choice.port == port
    assert not choice.moved


def test_taken_default_port_moves_to_the_next_free_one(taken_port: int) -> None:
    choice = choose_port("127.0.0.1", taken_port, explicit=False, option="meters.port")
    assert choice.moved
    assert choice.wanted == taken_port
    assert choice.port > taken_port
    assert port_is_free("127.0.0.1", choice.port)


def test_taken_explicit_port_fails_naming_the_option(taken_port: int) -> None:
    with pytest.raises(
        ConfigError, match=rf"port {taken_port} .* in use: change --mqtt-port\. use"
    ):
        choose_port(
            "127.0.0.1", taken_port, explicit=True, option="--mqtt-port", hint="use --mqtt-url"
        )


def test_wildcard_bind_sees_a_loopback_listener(taken_port: int) -> None:
    assert not port_is_free("0.0.0.0", taken_port)


def test_port_zero_means_any() -> None:
    assert choose_port("127.0.0.1", 0, explicit=False, option="x").port == 0
    assert not PortChoice(0, 43210).moved  # bound to "any": nothing was taken
