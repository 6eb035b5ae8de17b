import io
import json
import logging

import pytest

from ivy_gateway.observability import bind_log_context, configure_logging, log_context


@pytest.fixture
def restore_root() -> object:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_the_task_context(restore_root: object) -> None:
    out = io.StringIO()
    configure_logging("INFO", {"noisy": "ERROR"}, json_format=True, stream=out)
    log = logging.getLogger("ivy.test")
    with log_context(meter="000000001234", conn=7):
        log.info("reply timed out", extra={"di": "02010100"})
    logging.getLogger("noisy").warning("hidden")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 1
    assert lines[0]["msg"] == "reply timed out"
    assert lines[0]["meter"] == "000000001234"
    assert lines[0]["conn"] == 7
    assert lines[0]["di"] == "02010100"
    assert lines[0]["level"] == "info"


def test_readable_lines_and_exceptions(restore_root: object) -> None:
    out = io.StringIO()
    configure_logging("DEBUG", json_format=False, stream=out)
    bind_log_context(peer="127.0.0.1:5000")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("ivy.test").exception("crashed")
    text = out.getvalue()
    assert "ERROR" in text
    assert "crashed" in text
    assert "peer=127.0.0.1:5000" in text
    assert "ValueError: boom" in text


def test_json_exception_is_a_field(restore_root: object) -> None:
    out = io.StringIO()
    configure_logging(json_format=True, stream=out)
    try:
        raise KeyError("x")
    except KeyError:
        logging.getLogger("ivy.test").exception("crashed")
    assert "KeyError" in json.loads(out.getvalue())["exc"]


def test_format_follows_the_terminal(restore_root: object) -> None:
    out = io.StringIO()  # not a TTY → JSON
    configure_logging(stream=out)
    logging.getLogger("ivy.test").warning("hello")
    assert json.loads(out.getvalue())["msg"] == "hello"
