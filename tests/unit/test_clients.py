"""boto3 clients: one session per process, one client per service, made safely from many threads."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from batchplane.adapters.clients import LazyClient, _session, client, made_clients, reset_clients


@pytest.fixture(autouse=True)
def _no_clients() -> Iterator[None]:
    reset_clients()
    yield
    reset_clients()


def at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Runs the calls in threads that start together; returns their results (or exceptions)."""
    start = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        start.wait()
        try:
            results[index] = calls[index]()
        except BaseException as exc:  # a Session used from two threads fails in odd ways
            results[index] = exc

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_clients_of_different_services_share_one_session() -> None:
    # When two services' clients are asked for, one of them twice
    sqs, sns = client("sqs"), client("sns")
    again = client("sqs")

    # Then one session made both, and the second ask returns the same client
    assert _session.cache_info().misses == 1
    assert again is sqs
    assert sns.meta.service_model.service_name == "sns"
    assert made_clients() == ["sns", "sqs"]


def test_clients_of_many_services_asked_for_at_once_are_all_made() -> None:
    # Given eight threads, each wanting a different service's client
    services = ["sqs", "sns", "events", "batch", "s3", "dynamodb", "sts", "lambda"]

    # When they ask at the same moment
    made = at_once([lambda service=service: client(service) for service in services])

    # Then every client is made, each for its service, from one session
    assert [c.meta.service_model.endpoint_prefix for c in made] == services
    assert _session.cache_info().misses == 1


def test_one_service_asked_for_by_many_threads_at_once_gets_one_client() -> None:
    # When eight threads ask for DynamoDB's client at the same moment
    made = at_once([lambda: client("dynamodb")] * 8)

    # Then they all get the same one: a hook registered on it sees every call
    assert all(c is made[0] for c in made)
    assert made_clients() == ["dynamodb"]


def test_a_lazy_client_is_made_at_its_first_use_only() -> None:
    # Given a lazy S3 client, copied as a Ports bundle might be
    s3 = copy.deepcopy(LazyClient("s3"))

    # When nothing calls it, no client exists
    assert made_clients() == []

    # When it is first used, the real client is made, and is the one client("s3") returns
    assert s3.meta.service_model.service_name == "s3"
    assert s3.meta is client("s3").meta
    assert made_clients() == ["s3"]
