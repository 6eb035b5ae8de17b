from __future__ import annotations

import asyncio
import importlib
import sys
from types import ModuleType

import pytest

from ivy_gateway.transport import install_event_loop_policy


@pytest.fixture(autouse=True)
def _restore_policy() -> object:
    yield None
    asyncio.set_event_loop_policy(None)


def test_asyncio_when_uvloop_is_not_wanted() -> None:
    assert install_event_loop_policy(prefer_uvloop=False) == "asyncio"
    assert type(asyncio.get_event_loop_policy()) is asyncio.DefaultEventLoopPolicy


def test_falls_back_to_asyncio_when_uvloop_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = importlib.import_module

    def no_uvloop(name: str, package: str | None = None) -> ModuleType:
        if name == "uvloop":
            raise ImportError("No module named 'uvloop'")
        return real_import(name, package)

    monkeypatch.setattr(importlib, "import_module", no_uvloop)
    assert install_event_loop_policy(prefer_uvloop=True) == "asyncio"


def test_installs_uvloop_policy_when_available(monkeypatch: pytest.MonkeyPatch) -> None:
    class StubPolicy(asyncio.DefaultEventLoopPolicy):
        pass

    fake = ModuleType("uvloop")
    fake.EventLoopPolicy = StubPolicy  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "uvloop", fake)
    assert install_event_loop_policy(prefer_uvloop=True) == "uvloop"
    assert isinstance(asyncio.get_event_loop_policy(), StubPolicy)
