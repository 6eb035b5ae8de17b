"""Fixtures for the MQTT adapter unit tests: the v1 JSON Schemas as validators."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

SCHEMAS = Path(__file__).resolve().parents[4] / "docs" / "schemas" / "v1"


@pytest.fixture(scope="session")
def validate() -> Callable[[str, bytes | dict[str, Any]], dict[str, Any]]:
    """``validate("telemetry", payload)`` → the decoded payload, or a ValidationError."""
    cache: dict[str, jsonschema.Draft202012Validator] = {}

    def check(name: str, payload: bytes | dict[str, Any]) -> dict[str, Any]:
        if name not in cache:
            schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
            jsonschema.Draft202012Validator.check_schema(schema)
            cache[name] = jsonschema.Draft202012Validator(schema)
        data: dict[str, Any] = json.loads(payload) if isinstance(payload, bytes) else payload
        cache[name].validate(data)
        return data

    return check
