from ivy_gateway.domain.meter import MeterId
from ivy_gateway.sessions.registry import SessionRegistry

METER = MeterId("000000001234")


def test_second_connection_replaces_the_first() -> None:
    registry: SessionRegistry[str] = SessionRegistry()
    assert registry.claim(METER, "old") is None
    assert registry.claim(METER, "new") == "old"
    assert registry.get(METER) == "new"
    assert registry.meters() == [METER]
    assert len(registry) == 1


def test_stale_session_cannot_release_the_new_one() -> None:
    registry: SessionRegistry[str] = SessionRegistry()
    registry.claim(METER, "old")
    registry.claim(METER, "new")
    assert registry.release(METER, "old") is False
    assert registry.get(METER) == "new"
    assert registry.release(METER, "new") is True
    assert registry.get(METER) is None


def test_reclaiming_the_same_session_displaces_nothing() -> None:
    registry: SessionRegistry[str] = SessionRegistry()
    registry.claim(METER, "s")
    assert registry.claim(METER, "s") is None
