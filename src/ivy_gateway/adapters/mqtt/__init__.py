"""The MQTT north side: topics, payloads, embedded broker, external client, command intake.

Wiring (``app.py``)::

    topics = Topics(settings.mqtt.topic_prefix)
    # embedded (default)                         # external
    broker = EmbeddedBroker(BrokerConfig(...))   transport = ExternalTransport(
    await broker.start()                             ExternalBrokerConfig.from_url(url, ...))
    transport = EmbeddedTransport(broker)
    publisher = MqttPublisher(transport, topics, gateway_id=..., version=..., stats=...)
    intake = CommandIntake(command_service, runner, publisher, topics)
    intake.attach(transport)
    tg.create_task(publisher.run()); tg.create_task(intake.run())
"""

from .access import Role, hash_password, verify_password
from .broker import BrokerConfig, BrokerPortInUse, BrokerUser, EmbeddedBroker, EmbeddedTransport
from .commands import CommandIntake, CommandParser
from .external import ExternalBrokerConfig, ExternalTransport
from .outbox import OutMessage, Transport, TransportStats
from .publisher import MqttPublisher
from .topics import Topics

__all__ = [
    "BrokerConfig",
    "BrokerPortInUse",
    "BrokerUser",
    "CommandIntake",
    "CommandParser",
    "EmbeddedBroker",
    "EmbeddedTransport",
    "ExternalBrokerConfig",
    "ExternalTransport",
    "MqttPublisher",
    "OutMessage",
    "Role",
    "Topics",
    "Transport",
    "TransportStats",
    "hash_password",
    "verify_password",
]
