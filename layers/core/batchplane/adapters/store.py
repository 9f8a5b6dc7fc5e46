"""DynamoDB job store: one table (layout in job_items.py), conditional writes only.

Every state change is one conditional write: a version guard for read-modify-write paths, a state
guard for the paths that read nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from batchplane.adapters.attempt_writes import progress_request, submission_moving_request, submission_request
from batchplane.adapters.dynamo_calls import (
    CancellationReasons,
    is_cancelled_transaction,
    is_conditional_failure,
    put_all,
    query_all,
    query_page,
)
from batchplane.adapters.earlier_layout import is_current, migrate_job
from batchplane.adapters.job_creation import (
    budget_full,
    creating_parts,
    input_lineage,
    quota_exceeded,
    refusal,
)
from batchplane.adapters.job_index import ACTIVITY_SHARDS, IndexReader, index_item, moves_index, put_index
from batchplane.adapters.job_items import (
    artifact_items,
    attempts_only_beside,
    expiry,
    idempotency_key,
    item_to_artifact,
    item_to_job,
    item_to_use,
    job_to_item,
    side_items,
)
from batchplane.adapters.quota_items import (
    count_change,
    counter_key,
    delete_held,
    oldest_held_query,
    quota_of,
)
from batchplane.adapters.usage_items import charge, item_to_usage, reserve, usage_query
from batchplane.errors import ConcurrentUpdate
from batchplane.models.job import (
    DISPATCHABLE_STATUSES,
    Artifact,
    Attempt,
    HistoryEntry,
    Job,
    JobStatus,
)
from batchplane.models.progress import Progress
from batchplane.observability import logger
from batchplane.policy.cost import Pricing, UsageCharge, default_pricing, settle
from batchplane.service.ports import (
    ArtifactPage,
    BudgetHold,
    KeyAlreadyUsed,
    ObjectVersion,
    Page,
    Quota,
    UnfinishedChunk,
    UsageMonth,
    UsePage,
)

DEFAULT_RETENTION = timedelta(days=90)
_BESIDE_READ_KEPT = 256  # reads remembered for the save that follows them (see DynamoJobStore.get)
TRANSACTION_MAX = 100  # TransactWriteItems' limit
SWEEP_CHUNK = 100  # jobs the sweeper takes at once: one BatchGetItem, one DescribeJobs (100 each at most)

if TYPE_CHECKING:  # types only: the stubs cost nothing at run time
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import PutTypeDef, TransactWriteItemTypeDef


class DynamoJobStore:
    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient,
        *,
        retention: timedelta = DEFAULT_RETENTION,
        sweep_page: int | None = None,
        pricing: Pricing | None = None,
    ) -> None:
        self.table_name = table_name
        self._client = client
        self.retention = retention  # how long finished jobs and their records are kept (TTL)
        # What a finish charges to its tenant's month (policy/cost.py::settle).
        self.pricing = pricing or default_pricing()
        self._index = IndexReader(client, table_name)
        self._sweep_page = sweep_page  # index entries a sweep's Query reads at once (None: 1 MB)
        # (job_id, version) of the latest reads -> the attempts found beside the job item and not in it,
        # for the save that follows a read (side_items). A miss only writes those attempts again.
        self._beside_read: OrderedDict[tuple[str, int], frozenset[int]] = OrderedDict()

    # -- creation -----------------------------------------------------------------------------------

    def create(
        self,
        job: Job,
        *,
        fingerprint: str,
        in_flight_limit: int,
        latest_object: ObjectVersion | None = None,
        budget: BudgetHold | None = None,
        over_budget: bool = False,
    ) -> None:
        """Write a new job, its idempotency key and its quota count in one transaction.

        With `budget`, the transaction also reserves the job's estimate in its tenant's month, only
        while the month has room (raises BudgetFull otherwise).

        With `latest_object`, the transaction also moves the object key's newest-seen sequencer, so an
        older event that arrives after a newer one makes no job. Raises KeyAlreadyUsed when the key
        made a job before, StaleObject for an out-of-date event, QuotaExceeded when the tenant is full
        (or, for a QUEUED job, has jobs of the type held ahead of it). A HELD job takes no slot: it
        counts as held and takes its place in the held queue; SlotFree when the type is not full and
        nothing is held after all (admit it instead). A job HELD `over_budget` joins the queue whatever
        the slots (its tenant's month is full, not its type).
        """
        parts = creating_parts(
            self.table_name,
            job,
            self.retention,
            fingerprint=fingerprint,
            in_flight_limit=in_flight_limit,
            latest_object=latest_object,
            budget=budget,
            over_budget=over_budget,
        )
        # The inputs' lineage items ride in the same transaction (up to its 100 items), so an object
        # never names a job that was not made; any beyond follow it.
        lineage = self.input_lineage(job)
        room = TRANSACTION_MAX - len(parts)
        puts: list[TransactWriteItemTypeDef] = [
            {"Put": {"TableName": self.table_name, "Item": item}} for item in lineage[:room]
        ]
        try:
            self._client.transact_write_items(TransactItems=[*parts.values(), *puts])
            put_all(self._client, self.table_name, lineage[room:])
        except ClientError as error:
            if not is_cancelled_transaction(error):
                raise
            reasons = CancellationReasons(error)
            names = list(parts)
            if job.idempotency_key is not None and reasons.failed(names.index("key")):
                self._raise_key_used(job.tenant, job.idempotency_key, reasons.item(names.index("key")))
            refused = refusal(
                reasons, names, job, in_flight_limit=in_flight_limit, latest_object=latest_object
            )
            if refused is not None:
                raise refused from error
            raise

    def input_lineage(self, job: Job) -> list[dict[str, Any]]:
        return input_lineage(job, self.retention)

    def _raise_key_used(self, tenant: str, key: str, old: dict[str, Any] | None) -> None:
        if old is None:  # not every DynamoDB (or emulator) returns the old item; read it
            old = self._client.get_item(
                TableName=self.table_name, Key=idempotency_key(tenant, key), ConsistentRead=True
            ).get("Item")
        if old is None:  # the key expired between the two calls: the caller may simply try again
            raise ConcurrentUpdate("idempotency key changed concurrently; try again")
        raise KeyAlreadyUsed(job_id=old["job_id"]["S"], fingerprint=old["fingerprint"]["S"])

    # -- held jobs -------------------------------------------------------------------------------------

    def quota(self, tenant: str, job_type: str) -> Quota:
        """The tenant's count for a job type as it is now (a consistent read of one small item)."""
        item = self._client.get_item(
            TableName=self.table_name, Key=counter_key(tenant, job_type), ConsistentRead=True
        ).get("Item", {})
        return quota_of(item)

    def oldest_held(self, tenant: str, job_type: str, limit: int) -> list[str]:
        """The ids of the tenant's oldest HELD jobs of a type, oldest first (a consistent Query)."""
        response = self._client.query(**oldest_held_query(self.table_name, tenant, job_type, limit))
        return [item["job_id"]["S"] for item in response.get("Items", [])]

    # -- reads ---------------------------------------------------------------------------------------

    def get(self, job_id: str, *, consistent: bool = True) -> Job | None:
        """The job with every attempt and decision: one Query of its partition from `ATTEMPT#` on,
        which leaves out its artifacts (`ART#` sorts first) and costs what a GetItem of the same
        bytes would."""
        found = query_all(
            self._client,
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND sk >= :from",
            ExpressionAttributeValues={":pk": {"S": f"JOB#{job_id}"}, ":from": {"S": "ATTEMPT#"}},
            ConsistentRead=consistent,
        )
        item = next((i for i in found if i["sk"]["S"] == "JOB"), None)
        if item is not None and not is_current(item) and self.migrate(job_id):
            # The earlier layout: moved into this one on first read, before anything saves it.
            return self.get(job_id, consistent=True)
        if item is None:
            return None
        beside = [i for i in found if i is not item]
        job = item_to_job(item, beside)
        self._beside_read[(job_id, job.version)] = attempts_only_beside(item, beside)
        while len(self._beside_read) > _BESIDE_READ_KEPT:
            self._beside_read.popitem(last=False)
        return job

    def list_for_tenant(
        self,
        tenant: str,
        *,
        limit: int,
        status: JobStatus | None = None,
        job_type: str | None = None,
        next_token: str | None = None,
    ) -> Page:
        """A tenant's jobs, newest first, through the index (job_index.py). The token is bound to the
        tenant and the status filter."""
        return self._index.page(tenant, limit=limit, status=status, job_type=job_type, next_token=next_token)

    def list_active(
        self,
        *,
        limit: int,
        status: JobStatus | None = None,
        job_type: str | None = None,
        next_token: str | None = None,
    ) -> Page:
        """Every tenant's unfinished jobs, newest first (the sparse by_activity index): an operator's
        view. Finished jobs are read per tenant: no index spans tenants' finished jobs."""
        return self._index.active_page(limit=limit, status=status, job_type=job_type, next_token=next_token)

    def created_between(
        self, tenant: str | None, since: datetime, until: datetime, *, most: int
    ) -> tuple[list[Job], bool]:
        """A tenant's jobs created in [since, until), or every tenant's unfinished ones (None): at most
        `most`, newest first, and whether that is all."""
        return self._index.created_between(tenant, since, until, most=most)

    def usage(self, tenant: str, first: str, last: str) -> list[UsageMonth]:
        """The tenant's usage items from month `first` to `last` (YYYY-MM, both included)."""
        items = query_all(self._client, **usage_query(self.table_name, tenant, first, last))
        return [item_to_usage(item) for item in items]

    # -- the earlier layout -------------------------------------------------------------------------------

    def migrate(self, job_id: str) -> bool:
        """Move a job of the earlier layout into this one (adapters/earlier_layout.py)."""
        return migrate_job(self, self._client, job_id)

    # -- artifacts --------------------------------------------------------------------------------------

    def record_artifacts(self, job_id: str, tenant: str, artifacts: list[Artifact], at: datetime) -> None:
        """Each artifact under its job and under its object; a repeat writes the same items again."""
        expires = expiry(at, self.retention)
        put_all(
            self._client,
            self.table_name,
            [item for a in artifacts for item in artifact_items(job_id, tenant, a, at, expires)],
        )

    def artifacts(self, job_id: str, *, limit: int, next_token: str | None = None) -> ArtifactPage:
        """A job's recorded artifacts by attempt, role and URI (its inputs are on the job itself)."""
        items, token = query_page(
            self._client, self.table_name, f"JOB#{job_id}", "ART#", limit=limit, next_token=next_token
        )
        return ArtifactPage(artifacts=[item_to_artifact(item) for item in items], next_token=token)

    def artifact_uses(self, tenant: str, uri: str, *, limit: int, next_token: str | None = None) -> UsePage:
        """The tenant's jobs and attempts that read or wrote `uri`; another tenant's never show."""
        items, token = query_page(
            self._client, self.table_name, f"ART#{uri}", f"{tenant}#", limit=limit, next_token=next_token
        )
        return UsePage(uses=[item_to_use(item) for item in items], next_token=token)

    # -- writes on the paths that read first ----------------------------------------------------------

    def save(
        self,
        job: Job,
        *,
        previous: Job,
        in_flight_limit: int | None = None,
        budget: BudgetHold | None = None,
    ) -> Job:
        """Replace the job if nobody changed it since `previous` was read; keep the quota count true.

        Leaving an unfinished state gives the tenant's in-flight slot back; re-entering one (a manual
        retry) or leaving HELD for it (a release) takes a slot, within `in_flight_limit`. A job that
        leaves HELD leaves the held queue in the same transaction. With `budget` (the release of a job
        that holds no reservation), the transaction reserves it while the month has room (BudgetFull).
        """
        saved = job.model_copy(update={"version": previous.version + 1})
        usage: UsageCharge | None = None
        if moves_index(previous, job) and job.status.is_terminal:
            # Its cost goes to the tenant's month with the same write, its reservation given back.
            saved, usage = settle(self.pricing, saved)
        elif job.status.is_terminal:
            # An attempt that ended after its job (a cancelled job's last run) adds what it cost.
            settled, late = settle(self.pricing, saved, finish=False)
            if late.cost:
                saved, usage = settled, late
        # What leaves the job item goes beside it first: immutable facts, safe to write twice, but what
        # the read of `previous` found there already is not written again.
        already = self._beside_read.pop((previous.job_id, previous.version), frozenset())
        put_all(
            self._client,
            self.table_name,
            side_items(saved, previous, job.updated_at, self.retention, beside_already=already),
        )
        put: PutTypeDef = {
            "TableName": self.table_name,
            "Item": job_to_item(saved, self.retention),
            "ConditionExpression": "version = :version",
            "ExpressionAttributeValues": {":version": {"N": str(previous.version)}},
        }
        items: list[TransactWriteItemTypeDef] = [{"Put": put}]
        counter = count_change(self.table_name, previous, job, in_flight_limit or 2**31)
        if counter is not None:
            items.append(counter)
        if moves_index(previous, job) and not job.status.is_terminal:
            # Unfinished again (queued by hand): back in by_activity with the same write, so the
            # sweeper never misses it.
            items.append(put_index(self.table_name, saved, self.retention))
        if previous.status is JobStatus.HELD and job.status is not JobStatus.HELD:
            items.append(delete_held(self.table_name, previous))
        if usage is not None:
            items.append(charge(self.table_name, usage))  # its cost to the tenant's month, same write
        reserving = len(items) if budget is not None else None
        if budget is not None:
            items.append(reserve(self.table_name, job.tenant, budget))
        try:
            if len(items) == 1:
                self._client.put_item(**put)
            else:
                self._client.transact_write_items(TransactItems=items)
        except ClientError as error:
            if is_conditional_failure(error):
                raise ConcurrentUpdate(f"job {job.job_id} changed concurrently") from error
            if is_cancelled_transaction(error):
                reasons = CancellationReasons(error)
                if reasons.failed(0):
                    raise ConcurrentUpdate(f"job {job.job_id} changed concurrently") from error
                if counter is not None and reasons.failed(1):
                    raise quota_exceeded(job.tenant, job.job_type, in_flight_limit or 0) from error
                if reserving is not None and reasons.failed(reserving):
                    raise budget_full(job) from error
            raise
        if moves_index(previous, job) and job.status.is_terminal:
            self._reindex(saved)
        return saved

    def _reindex(self, job: Job) -> None:
        """Move a finished job's index entry (its status partition, out of by_activity, expiring with
        it): after the job's own write, not in its transaction, which would double the entry's table
        unit. Lost (a failed call, a function that died), the entry still says unfinished: listings of
        unfinished jobs check each job they read, a finished status's listing misses it meanwhile, and
        the sweeper, which reads every such entry, moves it at its next run."""
        try:
            self._client.put_item(
                TableName=self.table_name,
                Item=index_item(job, self.retention),
                # Not over the entry of a later version (the job queued again by hand meanwhile).
                ConditionExpression="attribute_not_exists(version) OR version < :version",
                ExpressionAttributeValues={":version": {"N": str(job.version)}},
            )
        except (ClientError, BotoCoreError) as error:
            if isinstance(error, ClientError) and is_conditional_failure(error):
                return  # a later write of the job moved it already
            # The job's own write is done: what called save goes on (a cancel still terminates).
            logger.warning(
                "index entry of a finished job not moved; the sweeper will", extra={"job_id": job.job_id}
            )

    # -- writes on the paths that read nothing ----------------------------------------------------------

    def _update_if(self, **request: Any) -> bool:
        """UpdateItem under its condition: False, not an error, when the condition does not hold."""
        try:
            self._client.update_item(TableName=self.table_name, **request)
        except ClientError as error:
            if is_conditional_failure(error):
                return False
            raise
        return True

    def record_submission(self, job_id: str, tenant: str, attempt: Attempt, entry: HistoryEntry) -> bool:
        """Record a submitted attempt if the job still waits for exactly this attempt.

        False when it does not (cancelled meanwhile, or another dispatcher recorded it first).
        """
        if attempt.number == 1:
            return self._update_if(**submission_request(job_id, attempt, entry))
        moved = submission_moving_request(job_id, attempt, entry)
        try:
            self._client.update_item(TableName=self.table_name, **moved)
            return True
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
            old: dict[str, Any] = error.response.get("Item", {})  # type: ignore[assignment]
        # A job whose attempt before was not written beside (a decision of an earlier release) waits
        # all the same: the item keeps that attempt until the next save moves it.
        waiting = (
            old.get("attempt_count", {}).get("N") == str(attempt.number - 1)
            and old.get("status", {}).get("S") in DISPATCHABLE_STATUSES
        )
        return waiting and self._update_if(**submission_request(job_id, attempt, entry))

    def record_progress(self, job_id: str, tenant: str, progress: Progress) -> bool:
        """Move an attempt forward on a non-terminal event: one conditional write, no read.

        False when the event is stale or duplicate, belongs to an attempt that is not the job's
        current one, to a twin Batch job, or the job has finished (attempt_writes.py says when).
        """
        return self._update_if(**progress_request(job_id, progress))

    # -- the sweeper's reads (what it keeps between runs: sweep_items.py) ---------------------------------

    def activity_shards(self) -> int:
        return ACTIVITY_SHARDS

    def unfinished(self, shard: int, *, after: str | None = None) -> Iterator[UnfinishedChunk]:
        """A shard's unfinished jobs, a DescribeJobs call's worth at a time: reads only.

        The sweeper writes nothing to remember that it looked at a job (an UpdateItem of the job and of
        each of its index entries, ~12 WRU a quiet job a sweep); a job still quiet is simply read again
        next time, at 0.5 RRU per 4 KB."""
        for chunk, finished in self._index.unfinished(
            shard, after=after, chunk=SWEEP_CHUNK, page_size=self._sweep_page
        ):
            for job in finished:  # its finish did not move its entry (see _reindex)
                self._reindex(job)
            yield chunk
