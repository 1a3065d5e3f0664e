"""Every Redis key wanedit uses, under one deployment prefix.

Existing deployments hold data under these names: a name here never changes. The events stream
is named by its own setting (it need not share the prefix), and Celery names its own queues.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BatchKeys:
    """A batch's progress: its info hash, its job ids in enqueue order (every attempt), the
    lines enqueued (line -> the job of its latest attempt), the lines refused (line -> why),
    each line's request as the manifest gave it (line -> JSON) and the jobs of each retried
    line's earlier attempts (line -> job ids, oldest first, space-separated)."""

    info: str
    jobs: str
    lines: str
    invalid: str
    requests: str = ""
    attempts: str = ""

    @property
    def all(self) -> tuple[str, ...]:
        """Every key of the batch (they expire together)."""
        return tuple(
            k
            for k in (self.info, self.jobs, self.lines, self.invalid, self.requests, self.attempts)
            if k
        )


@dataclass(frozen=True)
class Keys:
    """The key names of one deployment, each family built by one method."""

    prefix: str

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # Job records and the indexes over them.

    def job(self, job_id: str) -> str:
        """A job's hash (its fields are declared in wanedit.store.record)."""
        return self._key("job", job_id)

    @property
    def job_prefix(self) -> str:
        """What a job id is appended to, for the scripts that read jobs by id."""
        return self.job("")

    def idempotency(self, key: str) -> str:
        """An idempotency key -> the id of the job it created."""
        return self._key("idem", key)

    @property
    def due(self) -> str:
        """Active jobs by when their next step is due: what the sweeper looks at."""
        return self._key("due")

    @property
    def callbacks(self) -> str:
        """Ended jobs whose callbacks are owed, by when the next attempt is due."""
        return self._key("callbacks")

    @property
    def lost(self) -> str:
        """Jobs whose record admission found gone, by when (ms): each is reported failed once."""
        return self._key("lost")

    @property
    def metrics(self) -> str:
        """The cluster-wide counters (see wanedit.metrics)."""
        return self._key("metrics")

    # Admission: the backlog, slots, rates and the daily cap.

    def backlog(self, priority: str) -> str:
        """Waiting jobs by arrival: one sorted set for batch work, one for everything else."""
        return self._key("backlog", "batch" if priority == "batch" else "interactive")

    def slots(self, account: str) -> str:
        """The account's jobs holding a provider slot, by lease expiry."""
        return self._key("slots", account)

    def rate(self, account: str, kind: str) -> str:
        """When the account's next `kind` call (submit or query) may go, in ms."""
        return self._key("rate", account, kind)

    def penalty(self, account: str, kind: str) -> str:
        """How much the provider's 429s stretch the account's `kind` spacing."""
        return self._key("penalty", account, kind)

    def spend(self, day: str) -> str:
        """Images reserved or billed on a UTC day (YYYYMMDD), in total and by account."""
        return self.spend_prefix + day

    @property
    def spend_prefix(self) -> str:
        return self._key("spend", "")

    @property
    def cap(self) -> str:
        """The daily image cap set at run time (absent: the setting's)."""
        return self._key("cap")

    @property
    def paused(self) -> str:
        """The cap that paused admission, while it is paused."""
        return self._key("paused")

    @property
    def account_pauses(self) -> str:
        """Paused accounts: name -> why (JSON: code, message, since)."""
        return self._key("account-paused")

    def account_probe(self, account: str) -> str:
        """Held by the one probe of a paused account in each probe interval."""
        return self._key("account-probe", account)

    @property
    def admit_nudge(self) -> str:
        """Set while an admission run is pending."""
        return self._key("admit", "nudge")

    def wake(self, name: str) -> str:
        """When a booked wake-up (an admission tick, a list watch) is due, in ms."""
        return self._key("wake", name)

    # The worker's bookkeeping.

    def provider_tasks(self, account: str) -> str:
        """Provider task id -> job id, for every task our creates made on the account."""
        return self._key("provider-tasks", account)

    def watch_seen(self, account: str) -> str:
        """Provider task id -> when the list watch last saw it (unix seconds)."""
        return self._key("watch-seen", account)

    def provider_zone(self, account: str) -> str:
        """The zone of the account's provider time strings as measured from its own answers
        (a hash: offset in hours east of UTC, when and how it was measured)."""
        return self._key("provider-zone", account)

    @property
    def sweeps(self) -> str:
        """When the last sweeps ran (unix seconds, newest first): beat's heartbeat, since only
        beat sends the sweeper."""
        return self._key("sweeps")

    def durations(self, model: str, account: str) -> str:
        """Recent provider task durations on the account, newest first."""
        return self._key("durations", model, account)

    def deliveries(self, message_id: str, retries: int) -> str:
        """How often one delivery of a task message was started."""
        return self._key("deliveries", message_id, str(retries))

    def webhook_claim(self, job_id: str, attempt: int) -> str:
        """Taken by the one copy of a message that makes a webhook attempt."""
        return self._key("webhook", job_id, str(attempt))

    @property
    def sweep_lock(self) -> str:
        """Held by the one sweep of each interval."""
        return self._key("sweep", "lock")

    # Completion events pushed by the provider.

    def provider_event(self, event_id: str) -> str:
        """Held (with an expiry) once an event with this id was handled: its copies are not."""
        return self._key("provider-event", event_id)

    def provider_event_seen(self, task_id: str) -> str:
        """Set (with an expiry) when an event for this task of ours arrived: a task that ends
        without one counts as a missed event."""
        return self._key("provider-event-seen", task_id)

    def events_missed(self, account: str) -> str:
        """Held (with an expiry) after a task on the account ended without its event: the
        account's list watch runs again until it expires."""
        return self._key("events-missed", account)

    def provider_event_early(self, task_id: str) -> str:
        """Set briefly when an event names a task no job has recorded yet (its create's answer
        may still be on its way): recording the task looks at it at once."""
        return self._key("provider-event-early", task_id)

    # Storage event listeners.

    @staticmethod
    def listen_processing(list_key: str) -> str:
        """Notifications a Redis-list listener has taken and not yet handled (next to its list)."""
        return f"{list_key}:processing"

    def listen_dead(self, list_key: str) -> str:
        """Notifications of a Redis list that could never be handled, set aside to look at."""
        return self._key("listen-dead", list_key)

    # Batches.

    def batch(self, batch_id: str) -> BatchKeys:
        base = self._key("batch", batch_id)
        return BatchKeys(
            base,
            f"{base}:jobs",
            f"{base}:lines",
            f"{base}:invalid",
            f"{base}:requests",
            f"{base}:attempts",
        )

    def batch_slot(self, batch_id: str) -> str:
        """A scheduled batch's run lock: held (with an expiry) while its chunks run."""
        return self._key("batch-slot", batch_id)
