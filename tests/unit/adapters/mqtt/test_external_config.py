from __future__ import annotations

import pytest

from ivy_gateway.adapters.mqtt.external import ExternalBrokerConfig


def test_url_with_credentials_is_parsed_and_never_described_with_its_password() -> None:
    cfg = ExternalBrokerConfig.from_url("mqtts://gw%40site:p%3Ass@broker.local")
    assert (cfg.host, cfg.port, cfg.tls) == ("broker.local", 8883, True)
    assert (cfg.username, cfg.password) == ("gw@site", "p:ss")
    assert "p:ss" not in cfg.describe()
    assert "p:ss" not in repr(cfg)
    assert cfg.describe() == "mqtts://gw@site@broker.local:8883"


def test_password_file_value_wins_over_the_url() -> None:
    cfg = ExternalBrokerConfig.from_url("mqtt://u:old@127.0.0.1:1884", password="new")
    assert (cfg.port, cfg.tls, cfg.password) == (1884, False, "new")


def test_options_pass_through() -> None:
    cfg = ExternalBrokerConfig.from_url("mqtt://127.0.0.1", outbox_size=500, client_id="gw-1")
    assert (cfg.outbox_size, cfg.client_id, cfg.port) == (500, "gw-1", 1883)


@pytest.mark.parametrize("url", ["http://x", "mqtt://", "broker:1883", "mqtt://u:secret@"])
def test_bad_url_error_does_not_echo_the_url(url: str) -> None:
    with pytest.raises(ValueError, match=r"mqtt\.url must look like") as info:
        ExternalBrokerConfig.from_url(url)
    assert "secret" not in str(info.value)
