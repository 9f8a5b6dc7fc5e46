"""The operator's view on moto: GET /jobs with tenant= or all_tenants=true, and GET /summary, for the
callers the policy names in api.operators (layers/core/policy.yaml: the local stack's role `local`);
everyone else reads only its own jobs and hears 403 naming the field."""

from __future__ import annotations

from typing import Any

from tests.support import api_event, tenant_input

OPERATOR = "local"  # policy.yaml's operators: arn:aws:sts::123456789012:assumed-role/local/*


def _submit(api: Any, tenant: str, job_type: str = "word-count") -> dict[str, Any]:
    body = {"job_type": job_type, "parameters": {"input": tenant_input("notes.txt", tenant)}}
    status, job, _ = api(
        api_event("POST", "/jobs", body=body, headers={"Content-Type": "application/json"}, tenant=tenant)
    )
    assert status == 202, job
    return job  # type: ignore[no-any-return]


def _list(api: Any, caller: str, **query: str) -> tuple[int, Any]:
    status, body, _ = api(api_event("GET", "/jobs", query=query or None, tenant=caller))
    return status, body


def _summary(api: Any, caller: str, **query: str) -> tuple[int, Any]:
    status, body, _ = api(api_event("GET", "/summary", query=query or None, tenant=caller))
    return status, body


def test_an_operator_lists_every_tenants_unfinished_jobs_page_by_page(aws, api) -> None:
    # Given unfinished jobs of two tenants
    made = [_submit(api, tenant)["job_id"] for tenant in ("analytics", "research", "analytics", "research")]

    # When the operator lists all tenants, one job a page
    seen: list[dict[str, Any]] = []
    query = {"all_tenants": "true", "limit": "1"}
    while True:
        status, page = _list(api, OPERATOR, **query)
        assert status == 200, page
        seen.extend(page["jobs"])
        if not page["next_token"]:
            break
        query["next_token"] = page["next_token"]

    # Then it sees each job once, newest first, with its tenant
    assert [j["job_id"] for j in seen] == made[::-1]
    assert {j["tenant"] for j in seen} == {"analytics", "research"}


def test_every_tenants_listing_pages_through_filters_that_drop_entries(aws, api) -> None:
    # Given two dispatched jobs, then queued jobs of two types and two tenants, interleaved
    _submit(api, "analytics", "sort-large")
    _submit(api, "research", "sort-large")
    aws.run_dispatcher()
    queued = [
        _submit(api, tenant, job_type)["job_id"]
        for tenant, job_type in (
            ("analytics", "sort-large"),
            ("research", "word-count"),
            ("research", "sort-large"),
            ("analytics", "word-count"),
        )
    ]

    def every_page(**query: str) -> list[str]:
        seen: list[str] = []
        query = {"all_tenants": "true", "limit": "1", **query}
        while True:
            status, page = _list(api, OPERATOR, **query)
            assert status == 200, page
            seen.extend(j["job_id"] for j in page["jobs"])
            if not page["next_token"]:
                return seen
            query["next_token"] = page["next_token"]

    # When the operator pages one job at a time through the queued ones, and through one type's
    # Then each filter gives each of its jobs once, newest first
    assert every_page(status="QUEUED") == queued[::-1]
    assert every_page(job_type="word-count") == [queued[3], queued[1]]
    assert len(every_page(job_type="sort-large")) == 4


def test_an_operator_reads_one_tenants_jobs_finished_ones_too(aws, api, engine) -> None:
    # Given a finished job of analytics and an unfinished one of research
    done = engine.run(engine.submit(), "succeeded")
    _submit(api, "research")

    # When the operator asks for analytics' jobs, and for its SUCCEEDED ones
    status, page = _list(api, OPERATOR, tenant="analytics")
    _, succeeded = _list(api, OPERATOR, tenant="analytics", status="SUCCEEDED")

    # Then it sees only analytics' job, finished
    assert status == 200
    assert [j["job_id"] for j in page["jobs"]] == [done["job_id"]]
    assert [j["status"] for j in succeeded["jobs"]] == ["SUCCEEDED"]


def test_an_operator_opens_another_tenants_job_by_naming_its_tenant(aws, api) -> None:
    # Given a job of research
    job_id = _submit(api, "research")["job_id"]
    path, resource = f"/jobs/{job_id}", "/jobs/{job_id}"

    # When the operator opens it naming research, or without; and analytics names research
    named = api(api_event("GET", path, resource=resource, query={"tenant": "research"}, tenant=OPERATOR))
    unnamed = api(api_event("GET", path, resource=resource, tenant=OPERATOR))
    other = api(api_event("GET", path, resource=resource, query={"tenant": "research"}, tenant="analytics"))

    # Then only the operator naming its tenant sees it; without the name it is not the operator's job
    assert (named[0], named[1]["job_id"], named[1]["tenant"]) == (200, job_id, "research")
    assert unnamed[0] == 404
    assert (other[0], other[1]["error"]["details"][0]["field"]) == (403, "tenant")


def test_a_tenant_that_is_not_an_operator_reads_only_its_own_jobs(aws, api) -> None:
    # Given a job of research
    _submit(api, "research")

    # When analytics asks for research's jobs, or everyone's, or its own by name
    other, other_body = _list(api, "analytics", tenant="research")
    everyone, everyone_body = _list(api, "analytics", all_tenants="true")
    summary, summary_body = _summary(api, "analytics", all_tenants="true")
    own, own_body = _list(api, "analytics", tenant="analytics")

    # Then the first three are refused naming the field, and its own listing is its own
    assert (other, other_body["error"]["details"][0]["field"]) == (403, "tenant")
    assert (everyone, everyone_body["error"]["details"][0]["field"]) == (403, "all_tenants")
    assert (summary, summary_body["error"]["details"][0]["field"]) == (403, "all_tenants")
    assert "api.operators" in other_body["error"]["details"][0]["reason"]
    assert (own, own_body["jobs"]) == (200, [])


def test_every_tenant_is_asked_of_unfinished_jobs_only_and_not_with_one_tenant(aws, api) -> None:
    # When the operator asks every tenant for a finished status, or names a tenant and all
    finished, finished_body = _list(api, OPERATOR, all_tenants="true", status="SUCCEEDED")
    both, both_body = _list(api, OPERATOR, all_tenants="true", tenant="analytics")

    # Then each is a 422 naming the field
    assert (finished, finished_body["error"]["details"][0]["field"]) == (422, "status")
    assert (both, both_body["error"]["details"][0]["field"]) == (422, "all_tenants")


def test_a_page_token_of_every_tenants_listing_opens_no_tenants_listing(aws, api) -> None:
    # Given a first page of every tenant's jobs
    _submit(api, "analytics")
    _submit(api, "analytics")
    _, page = _list(api, OPERATOR, all_tenants="true", limit="1")

    # When its token is carried to analytics' own listing
    status, body = _list(api, "analytics", next_token=page["next_token"])

    # Then it is refused before anything is read
    assert (status, body["error"]["details"][0]["field"]) == (422, "next_token")


def test_the_summary_counts_states_retries_by_class_and_spot_fallbacks(aws, api, engine) -> None:
    # Given a job that fell back from Spot and succeeded on demand, and one still queued
    fell_back = engine.submit()
    fell_back = engine.run(engine.run(fell_back, "spot_interrupted"), "succeeded")
    engine.submit("word-count")

    # When analytics asks for its summary, and the operator for analytics'
    status, summary = _summary(api, "analytics")
    _, as_operator = _summary(api, OPERATOR, tenant="analytics")

    # Then both count the two jobs by state, the Spot retry and the fallback
    assert status == 200, summary
    window = ("since", "until")  # each defaults to its request's time
    assert {k: v for k, v in summary.items() if k not in window} == {
        k: v for k, v in as_operator.items() if k not in window
    }
    assert (summary["tenant"], summary["all_tenants"], summary["jobs"], summary["complete"]) == (
        "analytics",
        False,
        2,
        True,
    )
    assert summary["by_status"]["SUCCEEDED"] == 1
    assert sum(summary["by_status"].values()) == 2
    assert summary["retries_by_failure_class"] == {"SPOT_INTERRUPTED": 1}
    assert (summary["spot_fallbacks"], summary["jobs_fallen_back"]) == (1, [fell_back["job_id"]])


def test_the_summary_window_is_checked(aws, api) -> None:
    # When the window is empty, too long, or without a zone
    empty, empty_body = _summary(
        api, "analytics", **{"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}
    )
    long_, long_body = _summary(
        api, "analytics", **{"from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}
    )
    naive, naive_body = _summary(api, "analytics", to="2026-01-01T00:00:00")

    # Then each is a 422 naming the field; and a window with no jobs counts none
    assert (empty, empty_body["error"]["details"][0]["field"]) == (422, "from")
    assert (long_, long_body["error"]["details"][0]["field"]) == (422, "from")
    assert (naive, naive_body["error"]["details"][0]["field"]) == (422, "to")
    status, none = _summary(
        api, "analytics", **{"from": "2020-01-01T00:00:00Z", "to": "2020-01-02T00:00:00Z"}
    )
    assert (status, none["jobs"], none["spot_fallbacks"]) == (200, 0, 0)
