"""Every flow of the integration tests, end to end, each function and job with its own role: REST submit
(pinned inputs, Idempotency-Key), file drop, dispatch (first delivery, redelivery, twin), the example
workers and the ECS agent, state changes (retry, Spot fallback, give-up), the outbox stream (alert
and job events), outputs recorded, reads and lineage, cancel (recorded or not yet), manual retry, the
sweeper after lost messages and events, waits in vain (a blocked queue, a starved Spot wait), a job of
the earlier item layout, undeliverable events.

Each flow names itself on the recorder, so a call a role may not make fails naming the flow."""

from __future__ import annotations

import contextlib
import json
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from moto.batch_simple.models import batch_simple_backends

from batchplane.models.batch_event import BatchJobDetail
from batchplane.wiring import ports
from batchplane_tools.fixtures import load_event, s3_notification
from batchplane_tools.local.template import ACCOUNT, REGION
from tests.iam.batch_model import run_job
from tests.iam.harness import IamStack
from tests.iam.lambda_model import Outbox, deliver_queue, invoke, invoke_async
from tests.support import api_event, batch_event

TENANT = "analytics"
EARLIER_LAYOUT = Path(__file__).parents[1] / "integration" / "fixtures" / "earlier_layout_job.json"


class Tour:
    def __init__(self, iam: IamStack) -> None:
        self.iam = iam
        self.outbox = Outbox(iam)
        self.ingest, self.artifacts = iam.env["INGEST_BUCKET"], iam.env["ARTIFACT_BUCKET"]
        self.failures: dict[str, str] = {}  # flow -> its traceback
        self.output = ""  # an output of the first job, read by the next as its input

    @contextmanager
    def flow(self, name: str) -> Iterator[None]:
        """The calls inside are the flow `name`'s; a failure is kept, with its traceback, for the test
        to show, and the tour goes on."""
        outer, self.iam.recorder.flow = self.iam.recorder.flow, name
        try:
            yield
        except Exception:
            self.failures[name] = traceback.format_exc()
        finally:
            self.iam.recorder.flow = outer

    # ---- helpers: what a client, S3, EventBridge and the harness do ------------------------------

    def api(
        self, method: str, path: str, resource: str | None = None, caller: str = TENANT, **fields: Any
    ) -> tuple[int, Any]:
        event = api_event(method, path, resource=resource, tenant=caller, **fields)
        response = invoke(self.iam, "ApiFunction", event)
        return response["statusCode"], json.loads(response["body"]) if response.get("body") else None

    def post(self, job_type: str, uri: str, **fields: Any) -> dict[str, Any]:
        body = {"job_type": job_type, "parameters": {"input": uri}, **fields.pop("body", {})}
        headers = {"Content-Type": "application/json", **fields.pop("headers", {})}
        status, job = self.api("POST", "/jobs", body=body, headers=headers)
        assert status in (200, 202), job
        return job  # type: ignore[no-any-return]

    def get(self, job_id: str) -> dict[str, Any]:
        status, job = self.api("GET", f"/jobs/{job_id}", resource="/jobs/{job_id}")
        assert status == 200, job
        return job  # type: ignore[no-any-return]

    def upload(self, key: str, body: bytes) -> dict[str, Any]:
        """A tenant's upload to the ingest bucket (the harness's, not a role's)."""
        return self.iam.client("s3").put_object(Bucket=self.ingest, Key=key, Body=body)  # type: ignore[no-any-return]

    def batch_state(self, fixture: str, job_id: str) -> None:
        """Batch's state event for the job's current attempt, delivered by the rule, then the outbox."""
        handled = invoke_async(self.iam, "StateChangeFunction", batch_event(fixture, job=self.get(job_id)))
        assert handled is not None, f"the {fixture} event of job {job_id} went to the dead-letter queue"
        self.outbox.drain()

    def dispatch(self) -> None:
        deliver_queue(self.iam, "DispatcherFunction")

    def run_submitted(self, job_id: str) -> int:
        """Run the Batch job the job's current attempt was submitted as."""
        attempt = self.get(job_id)["attempts"][-1]
        name = f"bp-{job_id}-{attempt['number']}"
        [submitted] = [
            c.params
            for c in self.iam.recorder.calls
            if c.operation == "batch:SubmitJob" and c.params["jobName"] == name
        ]
        return run_job(self.iam, submitted, attempt["batch_job_id"], attempt["number"])

    def record_outputs(self, job_id: str) -> list[str]:
        """The artifact bucket's "Object Created" events for the job's outputs, to the artifacts rule."""
        s3 = self.iam.client("s3")
        listed = s3.list_object_versions(Bucket=self.artifacts, Prefix=f"outputs/{TENANT}/{job_id}/")
        keys = []
        for version in listed.get("Versions", []):
            event = load_event("s3/eventbridge_output_created.json")
            event["resources"] = [f"arn:aws:s3:::{self.artifacts}"]
            event["detail"]["bucket"]["name"] = self.artifacts
            event["detail"]["object"].update(
                key=version["Key"],
                size=version["Size"],
                etag=version["ETag"].strip('"'),
                **{"version-id": version["VersionId"]},
            )
            assert invoke_async(self.iam, "ArtifactsFunction", event) == {"recorded": 1, "skipped": 0}
            keys.append(version["Key"])
        return keys

    def read_log(self, job_id: str) -> None:
        """The attempt's awslogs stream (written by the ECS agent: the harness here), read over REST."""
        stream = self.get(job_id)["attempts"][-1]["log_stream"]
        logs = self.iam.client("logs")
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_group(logGroupName="/aws/batch/job")
        logs.create_log_stream(logGroupName="/aws/batch/job", logStreamName=stream)
        event = {"timestamp": int(time.time() * 1000), "message": "word_count: done"}
        logs.put_log_events(logGroupName="/aws/batch/job", logStreamName=stream, logEvents=[event])
        status, page = self.api(
            "GET", f"/jobs/{job_id}/attempts/1/log", resource="/jobs/{job_id}/attempts/{attempt}/log"
        )
        assert status == 200, page
        assert [line["message"] for line in page["lines"]] == ["word_count: done"]

    def later(self, seconds: int) -> None:
        """The handlers' clock, `seconds` on (past the sweeper's quiet threshold)."""
        real = ports().clock
        self.iam.monkeypatch.setattr(ports(), "clock", lambda: real() + timedelta(seconds=seconds))

    # ---- the flows --------------------------------------------------------------------------------

    def run(self) -> None:
        for step in (
            self.submitted_pinned_and_succeeded,
            self.chained_output_as_input,
            self.file_drop,
            # Before refused_submission takes the checksum definition away; it moves the handlers'
            # clock 31 s on, which the flows after it do not mind.
            self.array_jobs,
            self.spot_fallback_then_give_up,
            self.cancel_and_retry,
            self.cancel_while_the_dispatcher_is_gone,
            self.bulk_cancel_and_retry,
            self.redelivery_and_twin,
            self.sweeper_repairs,
            self.waits_in_vain,
            self.earlier_layout,
            self.refused_submission,
            self.undeliverable_events,
        ):
            with self.flow(step.__name__):
                step()

    def submitted_pinned_and_succeeded(self) -> None:
        with self.flow("REST submit, pinned by version, Idempotency-Key"):
            key = f"incoming/{TENANT}/manual/notes.txt"
            version = self.upload(key, b"to be or not to be\nthat is the question\n")["VersionId"]
            uri = f"s3://{self.ingest}/{key}"
            fields = {
                "body": {"inputs": [{"uri": uri, "version_id": version}]},
                "headers": {"Idempotency-Key": "k-1"},
            }
            job = self.post("word-count", uri, **fields)
            replay = self.post("word-count", uri, body=fields["body"], headers=fields["headers"])
            assert replay["job_id"] == job["job_id"]
        with self.flow("dispatch: first delivery"):
            self.dispatch()
        with self.flow("worker: word-count reads its pinned version, writes its outputs"):
            assert self.run_submitted(job["job_id"]) == 0
            self.batch_state("runnable", job["job_id"])
            self.batch_state("starting", job["job_id"])
            self.batch_state("running", job["job_id"])
        with self.flow("outputs recorded as written"):
            outputs = self.record_outputs(job["job_id"])
            assert outputs
        with self.flow("state change: succeeded; outbox publishes the job event"):
            self.batch_state("succeeded", job["job_id"])
        with self.flow("REST reads: job, listings, artifacts, lineage, OpenAPI"):
            assert self.get(job["job_id"])["status"] == "SUCCEEDED"
            assert self.api("GET", "/jobs", query={"status": "SUCCEEDED"})[0] == 200
            assert self.api("GET", "/jobs", query={"job_type": "word-count", "limit": "1"})[0] == 200
            path = f"/jobs/{job['job_id']}/artifacts"
            assert self.api("GET", path, resource="/jobs/{job_id}/artifacts")[0] == 200
            assert self.api("GET", "/artifacts", query={"uri": uri})[0] == 200
            assert self.api("GET", "/openapi.json")[0] == 200
            assert self.api("GET", "/summary")[0] == 200
            self.read_log(job["job_id"])
        with self.flow("REST reads of an operator: every tenant's jobs and summary"):
            every = {"all_tenants": "true"}
            operator = "local"  # policy.yaml's api.operators: the local stack's role `local`
            assert self.api("GET", "/jobs", query=every, caller=operator)[0] == 200
            assert self.api("GET", "/summary", query=every, caller=operator)[0] == 200
            assert self.api("GET", "/jobs", query={"tenant": TENANT}, caller=operator)[0] == 200
        self.output = f"s3://{self.artifacts}/{outputs[0]}"

    def chained_output_as_input(self) -> None:
        with self.flow("a job reads the tenant's own output, pinned by ETag"):
            output = self.output
            bucket, _, key = output.removeprefix("s3://").partition("/")
            etag = self.iam.client("s3").head_object(Bucket=bucket, Key=key)["ETag"]
            job = self.post("checksum-manifest", output, body={"inputs": [{"uri": output, "etag": etag}]})
            self.dispatch()
            assert self.run_submitted(job["job_id"]) == 0

    def file_drop(self) -> None:
        with self.flow("file drop: S3 notification through the ingest queue"):
            key = f"incoming/{TENANT}/word-count/dropped.txt"
            put = self.upload(key, b"one two three\n")
            notification = s3_notification(
                bucket=self.ingest, key=key, size=14, eTag=put["ETag"].strip('"'), versionId=put["VersionId"]
            )
            for _ in range(2):  # delivered twice: the second finds its Idempotency-Key and reads the job
                self.iam.client("sqs").send_message(
                    QueueUrl=self.iam.stack.refs["IngestQueue"], MessageBody=json.dumps(notification)
                )
            deliver_queue(self.iam, "FileDropFunction")
            _, listed = self.api("GET", "/jobs", query={"job_type": "word-count", "limit": "1"})
            [job] = listed["jobs"]
            assert job["parameters"]["input"] == f"s3://{self.ingest}/{key}"
            self.dispatch()
            assert self.run_submitted(job["job_id"]) == 0

    def array_jobs(self) -> None:
        with self.flow("array jobs: a drop and a REST opt-in wait together, then go as one array"):
            key = f"incoming/{TENANT}/checksum/part-1.bin"
            self.upload(key, b"0123456789")  # the bucket's own notification reaches the ingest queue
            sqs, url = self.iam.client("sqs"), self.iam.stack.refs["ArrayQueue"]
            deliver_queue(self.iam, "FileDropFunction")
            self.post("checksum-manifest", f"s3://{self.ingest}/{key}", body={"array": True})
            deliver_queue(self.iam, "CoalescerFunction")  # too soon: both sent back, delayed
            # Their wait, as SQS would hold them: the harness puts the delayed copies back undelayed.
            delayed = [
                entry["MessageBody"]
                for c in self.iam.recorder.calls
                if c.operation in ("sqs:SendMessage", "sqs:SendMessageBatch")
                and c.params.get("QueueUrl") == url
                for entry in c.params.get("Entries", [c.params])
                if entry.get("DelaySeconds")
            ]
            assert len({json.loads(body)["job_id"] for body in delayed}) >= 2, delayed
            sqs.purge_queue(QueueUrl=url)
            for body in delayed:
                sqs.send_message(QueueUrl=url, MessageBody=body)
            self.later(31)
            deliver_queue(self.iam, "CoalescerFunction")
            assert [c for c in self.iam.recorder.calls if (c.params or {}).get("arrayProperties")]
        with self.flow("array jobs: the sweeper's look-first message finds its array"):
            sqs.send_message(
                QueueUrl=url, MessageBody=json.dumps({**json.loads(delayed[0]), "look_first": True})
            )
            deliver_queue(self.iam, "CoalescerFunction")

    def spot_fallback_then_give_up(self) -> None:
        with self.flow("Spot reclaim retried on demand, then an application error gives up with an alert"):
            key = f"incoming/{TENANT}/sort/big.csv"
            self.upload(key, b"b\na\n")
            job = self.post("sort-large", f"s3://{self.ingest}/{key}")
            self.dispatch()
            self.batch_state("running", job["job_id"])
            self.batch_state("spot_interrupted", job["job_id"])
            self.dispatch()
            self.batch_state("running", job["job_id"])
            self.batch_state("application_error", job["job_id"])
            assert self.get(job["job_id"])["status"] == "FAILED"

    def cancel_and_retry(self) -> None:
        with self.flow("cancel of a submitted job terminates its Batch job; manual retry"):
            key = f"incoming/{TENANT}/manual/cancel-me.txt"
            self.upload(key, b"x\n")
            job = self.post("word-count", f"s3://{self.ingest}/{key}")
            self.dispatch()
            path = f"/jobs/{job['job_id']}/cancel"
            assert self.api("POST", path, resource="/jobs/{job_id}/cancel")[0] == 200
            self.batch_state("cancelled", job["job_id"])
            path = f"/jobs/{job['job_id']}/retry"
            assert self.api("POST", path, resource="/jobs/{job_id}/retry")[0] in (200, 202)
            self.dispatch()

    def cancel_while_the_dispatcher_is_gone(self) -> None:
        with self.flow("cancel of a job whose dispatcher died after SubmitJob; the redelivery terminates it"):
            key = f"incoming/{TENANT}/manual/unrecorded.txt"
            self.upload(key, b"x\n")
            job = self.post("word-count", f"s3://{self.ingest}/{key}")
            self._lose_dispatch_message(submitted_as=job, delete=False)
            path = f"/jobs/{job['job_id']}/cancel"
            assert self.api("POST", path, resource="/jobs/{job_id}/cancel")[0] == 200
            self.dispatch()  # adopts the Batch job by name, cannot record it, terminates it
            assert self.get(job["job_id"])["status"] == "CANCELLED"

    def bulk_cancel_and_retry(self) -> None:
        with self.flow("bulk cancel by filter terminates the Batch job; bulk retry, a dry run first"):
            key = f"incoming/{TENANT}/manual/bulk.txt"
            self.upload(key, b"x\n")
            job = self.post("word-count", f"s3://{self.ingest}/{key}")
            self.dispatch()
            only = {"filter": {"job_type": "word-count", "created_from": job["created_at"]}}
            headers = {"Content-Type": "application/json", "Idempotency-Key": "bulk-cancel"}
            status, done = self.api("POST", "/bulk/cancel", body=only, headers=headers)
            assert (status, done["counts"]["cancelled"]) == (200, 1), done
            dry = {**only, "dry_run": True}
            status, done = self.api(
                "POST", "/bulk/retry", body=dry, headers={"Content-Type": "application/json"}
            )
            assert (status, done["counts"]["matched"]) == (200, 1), done
            headers["Idempotency-Key"] = "bulk-retry"
            status, done = self.api("POST", "/bulk/retry", body=only, headers=headers)
            assert (status, done["counts"]["retried"]) == (200, 1), done
            self.dispatch()

    def _lose_dispatch_message(
        self, submitted_as: dict[str, Any] | None = None, delete: bool = True
    ) -> dict[str, Any]:
        """The dispatch message taken by a dispatcher that died: deleted (lost), or left to come back;
        with `submitted_as`, after its SubmitJob went through."""
        sqs, url = self.iam.client("sqs"), self.iam.env["DISPATCH_QUEUE_URL"]
        [message] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=0)["Messages"]
        if delete:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        if submitted_as is not None:
            self.iam.client("batch").submit_job(
                jobName=f"bp-{submitted_as['job_id']}-1",
                jobQueue=self.iam.env["ON_DEMAND_JOB_QUEUE"],
                jobDefinition=f"{self.iam.stack.name}-{submitted_as['job_type']}",
            )
        return message  # type: ignore[no-any-return]

    def redelivery_and_twin(self) -> None:
        with self.flow("dispatch: a redelivery adopts the earlier submission; a twin terminates its own"):
            key = f"incoming/{TENANT}/manual/twice.txt"
            self.upload(key, b"x\n")
            adopted = self.post("word-count", f"s3://{self.ingest}/{key}")
            self._lose_dispatch_message(submitted_as=adopted, delete=False)
            self.dispatch()
            assert self.get(adopted["job_id"])["status"] == "SUBMITTED"
            sqs, url = self.iam.client("sqs"), self.iam.env["DISPATCH_QUEUE_URL"]
            twin = self.post("word-count", f"s3://{self.ingest}/{key}", headers={"Idempotency-Key": "twin"})
            body = self._lose_dispatch_message()["Body"]
            for _ in range(2):
                sqs.send_message(QueueUrl=url, MessageBody=body)
            self.dispatch()
            assert self.get(twin["job_id"])["status"] == "SUBMITTED"

    def sweeper_repairs(self) -> None:
        with self.flow("sweeper: lost dispatch message, unrecorded submission, missed terminal event"):
            key = f"incoming/{TENANT}/manual/swept.txt"
            self.upload(key, b"x\n")
            lost = self.post("word-count", f"s3://{self.ingest}/{key}", headers={"Idempotency-Key": "lost"})
            self._lose_dispatch_message()
            unrecorded = self.post(
                "word-count", f"s3://{self.ingest}/{key}", headers={"Idempotency-Key": "unrec"}
            )
            self._lose_dispatch_message(submitted_as=unrecorded)
            missed = self.post(
                "word-count", f"s3://{self.ingest}/{key}", headers={"Idempotency-Key": "missed"}
            )
            self.dispatch()  # moto's Batch finishes the job at once; its events never arrive
            self.later(60 * 60)
            invoke(self.iam, "SweeperFunction", load_event("schedule/sweep.json"))
            self.dispatch()
            self.outbox.drain()
            assert self.get(lost["job_id"])["status"] == "SUBMITTED"
            assert self.get(missed["job_id"])["status"] == "SUCCEEDED"

    def waits_in_vain(self) -> None:
        with self.flow("a blocked queue fails its job at once; the sweeper moves a starved Spot wait on"):
            key = f"incoming/{TENANT}/sort/waits.csv"
            self.upload(key, b"b\na\n")
            uri = f"s3://{self.ingest}/{key}"
            blocked = self.post("sort-large", uri, headers={"Idempotency-Key": "blocked"})
            starved = self.post("sort-large", uri, headers={"Idempotency-Key": "starved"})
            self.dispatch()
            self.batch_state("queue_blocked_misconfiguration", blocked["job_id"])
            assert self.get(blocked["job_id"])["status"] == "FAILED"
            # moto's Batch ran the job at once: the sweeper is told it still waits for Spot capacity
            waiting = BatchJobDetail.model_validate(
                batch_event("queue_blocked_capacity", job=self.get(starved["job_id"]))["detail"]
            )
            described = ports().batch.describe
            with self.iam.monkeypatch.context() as patch:
                patch.setattr(
                    ports().batch,
                    "describe",
                    lambda ids: [waiting if d.job_id == waiting.job_id else d for d in described(ids)],
                )
                self.later(3 * 60 * 60)
                invoke(self.iam, "SweeperFunction", load_event("schedule/sweep.json"))
            self.dispatch()
            self.outbox.drain()
            assert [a["capacity"] for a in self.get(starved["job_id"])["attempts"]] == ["SPOT", "ON_DEMAND"]

    def _earlier_job(self, job_id: str) -> dict[str, Any]:
        """A job the earlier item layout wrote, under `job_id`, in the table."""
        text = EARLIER_LAYOUT.read_text(encoding="utf-8")
        item: dict[str, Any] = json.loads(text.replace(json.loads(text)["job_id"]["S"], job_id))
        self.iam.client("dynamodb").put_item(TableName=self.iam.env["JOBS_TABLE_NAME"], Item=item)
        return item

    def earlier_layout(self) -> None:
        with self.flow("jobs of the earlier item layout, moved on their first read by each reader"):
            read_by_api = self._earlier_job("0b9c7e52-1f4a-4d3b-9a8e-5c6d7e8f9a01")
            assert self.get(read_by_api["job_id"]["S"])["job_id"] == read_by_api["job_id"]["S"]
            output = self._earlier_job("0b9c7e52-1f4a-4d3b-9a8e-5c6d7e8f9a02")["job_id"]["S"]
            event = load_event("s3/eventbridge_output_created.json")
            event["detail"]["bucket"]["name"] = self.artifacts
            event["detail"]["object"]["key"] = f"outputs/{TENANT}/{output}/attempt-2/late.json"
            assert invoke_async(self.iam, "ArtifactsFunction", event) == {"recorded": 1, "skipped": 0}
            late = self._earlier_job("0b9c7e52-1f4a-4d3b-9a8e-5c6d7e8f9a03")
            [attempt] = [a["M"] for n, a in late["attempts"]["M"].items() if n == "2"]
            job = {
                "job_id": late["job_id"]["S"],
                "tenant": TENANT,
                "job_type": late["job_type"]["S"],
                "attempts": [
                    {
                        "number": 2,
                        "batch_job_id": attempt["batch_job_id"]["S"],
                        "queue": attempt["queue"]["S"],
                    }
                ],
            }
            assert (
                invoke_async(self.iam, "StateChangeFunction", batch_event("succeeded", job=job)) is not None
            )
            self.outbox.drain()

    def refused_submission(self) -> None:
        with self.flow("a retry's SubmitJob Batch refuses fails the job for good, with an alert"):
            key = f"incoming/{TENANT}/checksum/refused.bin"
            self.upload(key, b"x")
            job = self.post("checksum-manifest", f"s3://{self.ingest}/{key}")
            self.dispatch()
            self.batch_state("running", job["job_id"])
            self.batch_state("spot_interrupted", job["job_id"])
            # The job type's definition gone from Batch (moto keeps a deregistered one submittable):
            # SubmitJob answers ClientException.
            backend = batch_simple_backends[ACCOUNT][REGION]
            name = f"{self.iam.stack.name}-checksum-manifest"
            for arn in [a for a, d in backend._job_definitions.items() if d.name == name]:
                del backend._job_definitions[arn]
            self.dispatch()
            self.outbox.drain()
            assert self.get(job["job_id"])["status"] == "FAILED"

    def undeliverable_events(self) -> None:
        with self.flow("events a function cannot take go to its dead-letter queue"):
            broken = load_event("batch/succeeded.json")
            del broken["detail"]["jobName"]
            assert invoke_async(self.iam, "StateChangeFunction", broken) is None
            output = load_event("s3/eventbridge_output_created.json")
            del output["detail"]["object"]
            assert invoke_async(self.iam, "ArtifactsFunction", output) is None
