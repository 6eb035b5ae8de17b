"""Structured logging: JSON lines when not on a TTY, readable lines otherwise.

Every record carries the context of the task that logged it (``meter``, ``conn``, ``peer``)
through a context variable, so a line about a meter says which meter without each call
site formatting it in. Set it with ``log_context(meter=..., conn=...)``.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import IO, Any

__all__ = ["bind_log_context", "configure_logging", "log_context"]

#: Libraries that log every internal step at INFO; ``logging.modules`` can still lower these.
QUIET_LIBRARIES = {"transitions": "WARNING", "amqtt": "WARNING", "websockets": "WARNING"}

_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "ivy_log_context", default=MappingProxyType({})
)

# Attributes every LogRecord has; anything else given through ``extra=`` is structured data.
_RECORD_KEYS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to every log line of the current task while the block runs."""
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def bind_log_context(**fields: Any) -> None:
    """Add ``fields`` for the rest of the current task (e.g. once a meter is identified)."""
    _context.set({**_context.get(), **fields})


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = dict(_context.get())
    fields.update((k, v) for k, v in vars(record).items() if k not in _RECORD_KEYS)
    return fields


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(_fields(record))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


class ReadableFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        extra = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        line = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if extra:
            line = f"{line}  [{extra}]"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


def configure_logging(
    level: str = "INFO",
    modules: Mapping[str, str] | None = None,
    *,
    json_format: bool | None = None,
    stream: IO[str] | None = None,
) -> None:
    """Install one handler on the root logger; per-module levels from ``modules``."""
    stream = stream or sys.stderr
    if json_format is None:
        json_format = not stream.isatty()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if json_format else ReadableFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name, module_level in {**QUIET_LIBRARIES, **(modules or {})}.items():
        logging.getLogger(name).setLevel(module_level.upper())
