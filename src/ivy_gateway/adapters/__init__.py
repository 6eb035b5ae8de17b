"""Adapters: the only code that talks to the world outside the process (databases, MQTT,
Redis, HTTP). Each one implements a Protocol of ``ivy_gateway.domain`` and translates its
driver's errors into the domain's exceptions at the edge.
"""
