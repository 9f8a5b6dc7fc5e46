"""boto3 clients: one session per process, clients made once, safely from several threads."""

from __future__ import annotations

import threading

from batchplane.adapters.clients import LazyClient, _session, client, reset_clients


def test_clients_of_different_services_share_one_session() -> None:
    # Given no clients yet
    reset_clients()

    # When two services' clients are asked for, twice each
    sqs, sns = client("sqs"), client("sns")
    again = client("sqs")

    # Then one session made both, and the second ask returns the same client
    assert _session.cache_info().misses == 1
    assert again is sqs
    assert sns.meta.service_model.service_name == "sns"
    reset_clients()


def test_clients_asked_for_from_many_threads_at_once_are_all_made() -> None:
    # Given no clients yet, and eight threads that start together
    reset_clients()
    start = threading.Barrier(8)
    made: dict[str, object] = {}
    errors: list[BaseException] = []

    def ask(service: str) -> None:
        start.wait()
        try:
            made[service] = client(service)
        except BaseException as exc:  # a Session used from two threads fails in odd ways
            errors.append(exc)

    services = ["sqs", "sns", "events", "batch", "s3", "dynamodb", "sts", "lambda"]
    threads = [threading.Thread(target=ask, args=(service,)) for service in services]

    # When each asks for a different service's client at the same moment
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then every client is made, each for its service, from one session
    assert errors == []
    assert {name: c.meta.service_model.endpoint_prefix for name, c in made.items()} == {
        "sqs": "sqs",
        "sns": "sns",
        "events": "events",
        "batch": "batch",
        "s3": "s3",
        "dynamodb": "dynamodb",
        "sts": "sts",
        "lambda": "lambda",
    }
    assert _session.cache_info().misses == 1
    reset_clients()


def test_a_lazy_client_is_made_at_its_first_use_only() -> None:
    # Given a lazy S3 client
    reset_clients()
    s3 = LazyClient("s3")

    # When nothing calls it, no client exists
    assert client.cache_info().currsize == 0

    # When it is first used, the real client is made, and is the one client("s3") returns
    assert s3.meta.service_model.service_name == "s3"
    assert s3.meta is client("s3").meta
    assert client.cache_info().currsize == 1
    reset_clients()
