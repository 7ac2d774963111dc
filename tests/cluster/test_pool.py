"""A sweep's points in one process share one cluster while its settings stay the same."""

from __future__ import annotations

import contextlib

from hpcseg.cluster.pool import pooled, shared_clusters


class FakeClient:
    status = "running"


def _starter(log: list[str]):
    @contextlib.contextmanager
    def start():
        log.append("start")
        client = FakeClient()
        try:
            yield client
        finally:
            client.status = "closed"
            log.append("close")

    return start


def test_without_a_pool_every_run_starts_and_closes_its_own_cluster():
    log: list[str] = []
    for _ in range(2):
        with pooled("a", _starter(log)) as client:
            assert client.status == "running"
    assert log == ["start", "close", "start", "close"]


def test_in_a_pool_the_same_settings_reuse_one_cluster_until_the_pool_ends():
    log: list[str] = []
    with shared_clusters() as pool:
        clients = []
        for key in ("a", "a", "a"):
            with pooled(key, _starter(log)) as client:
                clients.append(client)
        assert log == ["start"] and clients[0] is clients[1] is clients[2]
        with pooled("b", _starter(log)) as other:  # other settings: the old one is closed
            assert other is not clients[0]
        assert log == ["start", "close", "start"] and pool.started == 2
        other.status = "closed"  # a cluster that died is not handed out again
        with pooled("b", _starter(log)):
            pass
        assert pool.started == 3
    assert log[-1] == "close"
