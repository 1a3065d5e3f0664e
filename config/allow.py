"""What a request may name: input buckets, output buckets and `on_complete` tasks and queues.

A request comes from whoever can reach a producer; the worker's role can read and write more
than any one caller should. So a request names only what the settings allow, checked at intake
(InvalidRequest, nothing enqueued) and again in the worker before the name is used (a job
record that bypassed intake fails, and the bucket or task is never touched).

Allowed, besides the WANEDIT_INPUT_BUCKETS / WANEDIT_OUTPUT_BUCKETS / WANEDIT_ON_COMPLETE_TASKS /
WANEDIT_ON_COMPLETE_QUEUES lists (`*`: any): what the settings name themselves. Outputs: the
bucket of WANEDIT_OUTPUT_URI, of each listen rule's and scheduled batch's output. Inputs: every
allowed output bucket (staged inputs live there), WANEDIT_STAGING_URI's bucket, and each listen
rule's bucket and images. Tasks: WANEDIT_ON_COMPLETE; queues: WANEDIT_ON_COMPLETE_QUEUE.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from wanedit.config.settings import Settings
from wanedit.errors import InvalidRequest, TerminalStorageError
from wanedit.request import EditRequest, SourceKind, source_kind
from wanedit.storage import S3Location
from wanedit.webhooks import Targets

ANY = "*"


class NotAllowed(TerminalStorageError):
    """A stored job names a bucket or task the settings do not allow; it is never used."""


@dataclass(frozen=True)
class Names:
    """One allow-list: the names, the setting that extends it, and whether it allows any."""

    setting: str
    names: frozenset[str]

    @property
    def any(self) -> bool:
        return ANY in self.names

    def allows(self, name: str) -> bool:
        return self.any or name in self.names

    def refusal(self, field: str, what: str, name: str) -> str | None:
        """None when `name` is allowed, else a message naming the field and what is allowed."""
        if self.allows(name):
            return None
        allowed = ", ".join(sorted(self.names)) or "none"
        return (
            f"{field}: {what} {name[:100]!r} is not allowed (allowed: {allowed}; "
            f"the setting {self.setting} adds more)"
        )


def _bucket(uri: str | None) -> list[str]:
    if not uri:
        return []
    try:
        return [S3Location.parse_prefix(uri).bucket]
    except ValueError:
        return []


def _s3_buckets(sources: Iterable[str]) -> list[str]:
    return [
        S3Location.parse_object(source).bucket
        for source in sources
        if source_kind(source) is SourceKind.S3
    ]


def output_buckets(settings: Settings) -> Names:
    names = {*settings.output_buckets, *_bucket(settings.output_uri)}
    names.update(bucket for rule in settings.listen_rules for bucket in _bucket(rule.output))
    names.update(b for schedule in settings.batch_schedules for b in _bucket(schedule.output))
    return Names("WANEDIT_OUTPUT_BUCKETS", frozenset(names))


def input_buckets(settings: Settings) -> Names:
    names = {*settings.input_buckets, *output_buckets(settings).names}
    names.update(_bucket(settings.staging_uri))
    for rule in settings.listen_rules:
        names.add(rule.bucket)
        names.update(_s3_buckets(rule.template.get("images", [])))
    return Names("WANEDIT_INPUT_BUCKETS", frozenset(names))


def tasks(settings: Settings) -> Names:
    names = {*settings.on_complete_tasks, *([settings.on_complete] if settings.on_complete else [])}
    return Names("WANEDIT_ON_COMPLETE_TASKS", frozenset(names))


def queues(settings: Settings) -> Names:
    names = {*settings.on_complete_queues, settings.on_complete_queue}
    return Names("WANEDIT_ON_COMPLETE_QUEUES", frozenset(names))


def request_problems(settings: Settings, request: EditRequest, output: S3Location) -> list[str]:
    """Every name in the request (and its destination) that the settings do not allow."""
    inputs, problems = input_buckets(settings), []
    for index, source in enumerate(request.images):
        if source_kind(source) is SourceKind.S3:
            bucket = S3Location.parse_object(source).bucket
            problems.append(inputs.refusal(f"images[{index}]", "input bucket", bucket))
    problems.append(output_buckets(settings).refusal("output", "output bucket", output.bucket))
    if request.on_complete:
        problems.append(tasks(settings).refusal("on_complete", "task", request.on_complete))
    if request.on_complete_queue:
        problems.append(
            queues(settings).refusal("on_complete_queue", "queue", request.on_complete_queue)
        )
    return [problem for problem in problems if problem]


def check_request(settings: Settings, request: EditRequest, output: S3Location) -> None:
    """At intake: InvalidRequest naming each field whose bucket, task or queue is not allowed."""
    problems = request_problems(settings, request, output)
    if problems:
        raise InvalidRequest(problems)


def check_job(settings: Settings, request: EditRequest, output_uri: str) -> None:
    """In the worker, before a stored job's inputs are read or anything is created for it:
    NotAllowed when its record names a bucket, task or queue the settings do not allow (it was
    written past intake, or before the settings changed)."""
    problems = request_problems(settings, request, S3Location.parse_prefix(output_uri))
    if problems:
        raise NotAllowed("; ".join(problems))


def check_output(settings: Settings, prefix: S3Location) -> None:
    """In the worker, before results are written: NotAllowed for a bucket not allowed."""
    refusal = output_buckets(settings).refusal("output", "output bucket", prefix.bucket)
    if refusal:
        raise NotAllowed(refusal)


def task_refusal(settings: Settings, targets: Targets) -> str | None:
    """In the worker, before an `on_complete` task is sent: why it may not be, or None."""
    if not targets.on_complete:
        return None
    return tasks(settings).refusal("on_complete", "task", targets.on_complete) or queues(
        settings
    ).refusal("on_complete_queue", "queue", targets.on_complete_queue)
