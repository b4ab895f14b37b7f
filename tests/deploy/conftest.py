"""The many-machines lanes: a real redis-server for the test session, a real PgBouncer in transaction mode in
front of the test database, and the machines of deploy/compose.yaml started per test (and stopped after it)."""

from __future__ import annotations

import pytest

from tests.deploy.recipe import Lane, PgBouncer, RedisServer


@pytest.fixture(scope="session")
def redis_server():
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pgbouncer(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        bouncer = PgBouncer().start()
    yield bouncer
    bouncer.stop()


@pytest.fixture
def redis_lane(redis_server, tmp_path):
    """Redis as the broker, the database straight (no pooler)."""
    redis_server.flush()
    (tmp_path / "logs").mkdir()
    lane = Lane(redis=redis_server, logs=tmp_path / "logs")
    yield lane
    lane.stop()


@pytest.fixture(params=["redis", "redis+pgbouncer"])
def lane(request, redis_server, tmp_path):
    """Both lanes: Redis with the database straight, and Redis with every ordinary query through PgBouncer in
    transaction mode (the ingestion on its direct connection)."""
    redis_server.flush()
    (tmp_path / "logs").mkdir()
    bouncer = request.getfixturevalue("pgbouncer") if request.param == "redis+pgbouncer" else None
    lane = Lane(redis=redis_server, logs=tmp_path / "logs", pgbouncer=bouncer)
    yield lane
    lane.stop()
