"""Building the shared clients (Redis, S3, the job store) from settings, once per process."""

from __future__ import annotations

from typing import Any

import boto3
import redis
from botocore.config import Config

from wanedit.config.settings import Settings
from wanedit.metrics import Snapshot
from wanedit.store.admission import Admission
from wanedit.store.counters import Counters
from wanedit.store.jobs import JobStore


def make_redis(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_connect_timeout=5,
        socket_timeout=30,
        health_check_interval=30,
    )


def aws_session(settings: Settings) -> boto3.session.Session:
    """A boto3 session with the AWS_* settings given explicitly where they are set (so a
    `.env` file reaches boto3 too); what is unset is left to boto3's own chain."""
    key_id, secret, token = (
        value.get_secret_value() if value else None
        for value in (
            settings.aws_access_key_id,
            settings.aws_secret_access_key,
            settings.aws_session_token,
        )
    )
    if not (key_id and secret):
        key_id = secret = token = None  # a session token alone means nothing
    return boto3.session.Session(
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        aws_session_token=token or None,
        region_name=settings.aws_region or None,
    )


def make_s3(settings: Settings) -> Any:
    """An S3 client from the AWS_* settings, else boto3's own chain."""
    config = Config(
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        s3={"addressing_style": settings.s3_addressing_style},
        signature_version="s3v4",
    )
    endpoint = settings.aws_endpoint_url_s3 or None
    return aws_session(settings).client("s3", config=config, endpoint_url=endpoint)


def make_store(settings: Settings, client: redis.Redis) -> JobStore:
    return JobStore(
        client,
        key_prefix=settings.key_prefix,
        events_stream=settings.events_stream,
        events_maxlen=settings.events_maxlen,
        ttl_seconds=settings.job_ttl_seconds,
        targets=settings.callback_targets,
        provider_utc_offset=settings.provider_utc_offset,
    )


def make_admission(settings: Settings, client: redis.Redis) -> Admission:
    return Admission(
        client,
        key_prefix=settings.key_prefix,
        accounts=settings.accounts,
        lease_seconds=settings.slot_lease_seconds,
        batch_max_wait=settings.batch_max_wait,
        daily_image_cap=settings.daily_image_cap,
    )


def make_metrics(settings: Settings, client: redis.Redis) -> Counters:
    return Counters(client, key_prefix=settings.key_prefix)


def read_snapshot(settings: Settings, metrics: Counters, admission: Admission) -> Snapshot:
    """Counters and live gauges for `/metrics` and `wanedit top`, in one round trip."""
    return metrics.snapshot(
        accounts=[(account.name, account.concurrency) for account in admission.accounts],
        broker_queue=settings.queue,
    )
