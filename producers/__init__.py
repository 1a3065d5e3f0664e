"""Producers: validate edit requests, stage their inputs and enqueue them by task name."""

from wanedit.errors import BackendUnavailable, IdempotencyConflict, InvalidRequest, JobNotFound
from wanedit.intake import submit_edit
from wanedit.producers.api import cancel_job, get_job, wait_for_job
from wanedit.producers.batch_ops import batch_rows, cancel_batch, export_batch, retry_batch
from wanedit.request import EditRequest

__all__ = [
    "BackendUnavailable",
    "EditRequest",
    "IdempotencyConflict",
    "InvalidRequest",
    "JobNotFound",
    "batch_rows",
    "cancel_batch",
    "cancel_job",
    "export_batch",
    "get_job",
    "retry_batch",
    "submit_edit",
    "wait_for_job",
]
