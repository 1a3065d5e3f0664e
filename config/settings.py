"""The one settings class. Environment variables (and a `.env` file) are its only source."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from wanedit.accounts import SINGAPORE_BASE_URL, Account, check_base_url
from wanedit.config.listen import ListenRule, load_rules_file, merge_rules
from wanedit.config.schedules import BatchSchedule
from wanedit.errors import ConfigError
from wanedit.provider_time import BEIJING_UTC_OFFSET
from wanedit.storage import S3Location
from wanedit.webhooks import (
    DEFAULT_CALLBACK_QUEUE,
    Targets,
    check_callback_url,
    check_queue_name,
    check_task_name,
    decode_secret,
    targets_for,
)

MODEL = "wan2.5-i2i-preview"
# Task ids and result URLs live 24 h at the provider; never poll anywhere near that.
MAX_POLL_DEADLINE = 20 * 3600


def _env(name: str) -> AliasChoices:
    return AliasChoices(name, name.lower())


def redact_url(url: str) -> str:
    """The URL with any password (and user name) replaced by `***`, for logs and repr."""
    try:
        parts = urlsplit(url)
        if parts.password is None and parts.username is None:
            return url
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    except ValueError:
        return "***"
    return urlunsplit(parts._replace(netloc=netloc))


class Settings(BaseSettings):
    """Every setting wanedit reads; the environment names are part of the public interface."""

    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", populate_by_name=True, frozen=True
    )

    # Provider (names as the official SDK reads them).
    dashscope_api_key: SecretStr | None = Field(None, validation_alias=_env("DASHSCOPE_API_KEY"))
    dashscope_http_base_url: str = Field(
        SINGAPORE_BASE_URL, validation_alias=_env("DASHSCOPE_HTTP_BASE_URL")
    )
    model: str = Field(MODEL, validation_alias=_env("WANEDIT_MODEL"))
    # Several accounts as a JSON list of {name, api_key, base_url, concurrency, submit_rate,
    # query_rate, price_per_image, currency, utc_offset}, each its own main account; unset, the
    # one account below is used.
    accounts_list: list[Account] | None = Field(None, validation_alias=_env("WANEDIT_ACCOUNTS"))
    concurrency: int = Field(5, ge=1, le=1000, validation_alias=_env("WANEDIT_CONCURRENCY"))
    submit_rate: float = Field(5.0, gt=0, le=1000, validation_alias=_env("WANEDIT_SUBMIT_RATE"))
    query_rate: float = Field(20.0, gt=0, le=1000, validation_alias=_env("WANEDIT_QUERY_RATE"))
    price_per_image: float | None = Field(
        None, ge=0, validation_alias=_env("WANEDIT_PRICE_PER_IMAGE")
    )

    # Admission: leases on provider slots, the daily cap, and how long batch work may wait.
    slot_lease_seconds: float = Field(
        300.0, ge=10, validation_alias=_env("WANEDIT_SLOT_LEASE_SECONDS")
    )
    daily_image_cap: int = Field(0, ge=0, validation_alias=_env("WANEDIT_DAILY_IMAGE_CAP"))
    batch_max_wait: float = Field(600.0, ge=0, validation_alias=_env("WANEDIT_BATCH_MAX_WAIT"))
    batch_chunk_lines: int = Field(
        500, ge=1, le=100_000, validation_alias=_env("WANEDIT_BATCH_CHUNK_LINES")
    )
    batch_retention_seconds: int = Field(
        7 * 86400, ge=60, validation_alias=_env("WANEDIT_BATCH_RETENTION_SECONDS")
    )
    # Jobs on one page of a batch's contact sheet (summary-N.html).
    summary_page_jobs: int = Field(
        200, ge=1, le=10_000, validation_alias=_env("WANEDIT_SUMMARY_PAGE_JOBS")
    )

    # Redis: broker, job records and events.
    redis_url: str = Field("redis://127.0.0.1:6379/0", validation_alias=_env("WANEDIT_REDIS_URL"))
    key_prefix: str = Field("wanedit", validation_alias=_env("WANEDIT_KEY_PREFIX"))
    queue: str = Field("wanedit", validation_alias=_env("WANEDIT_QUEUE"))
    events_stream: str = Field("wanedit:events", validation_alias=_env("WANEDIT_EVENTS_STREAM"))
    events_maxlen: int = Field(100_000, ge=1, validation_alias=_env("WANEDIT_EVENTS_MAXLEN"))
    job_ttl_seconds: int = Field(7 * 86400, ge=60, validation_alias=_env("WANEDIT_JOB_TTL_SECONDS"))

    # Storage. The AWS_* names are boto3's own; they are read here too so that a `.env` file
    # reaches boto3 (which reads only the process environment). Unset, boto3's own chain
    # (profiles, instance roles) decides, as it always does.
    aws_access_key_id: SecretStr | None = Field(None, validation_alias=_env("AWS_ACCESS_KEY_ID"))
    aws_secret_access_key: SecretStr | None = Field(
        None, validation_alias=_env("AWS_SECRET_ACCESS_KEY")
    )
    aws_session_token: SecretStr | None = Field(None, validation_alias=_env("AWS_SESSION_TOKEN"))
    aws_region: str | None = Field(
        None,
        validation_alias=AliasChoices(
            "AWS_REGION", "aws_region", "AWS_DEFAULT_REGION", "aws_default_region"
        ),
    )
    aws_endpoint_url_s3: str | None = Field(None, validation_alias=_env("AWS_ENDPOINT_URL_S3"))
    output_uri: str | None = Field(None, validation_alias=_env("WANEDIT_OUTPUT_URI"))
    staging_uri: str | None = Field(None, validation_alias=_env("WANEDIT_STAGING_URI"))
    image_transport: Literal["presigned", "inline"] = Field(
        "presigned", validation_alias=_env("WANEDIT_IMAGE_TRANSPORT")
    )
    s3_addressing_style: Literal["auto", "path", "virtual"] = Field(
        "auto", validation_alias=_env("WANEDIT_S3_ADDRESSING_STYLE")
    )
    presign_ttl_seconds: int = Field(
        3600, ge=60, le=7 * 86400, validation_alias=_env("WANEDIT_PRESIGN_TTL_SECONDS")
    )
    # Lifetime of the presigned GET URL given next to each result's s3:// URI (0: none given).
    result_url_ttl: int = Field(
        0, ge=0, le=7 * 86400, validation_alias=_env("WANEDIT_RESULT_URL_TTL")
    )

    # A 256 px JPEG beside each stored result, for contact sheets and previews (the finisher
    # decodes the result to make it: the largest share of a worker's CPU per edit).
    thumbnails: bool = Field(True, validation_alias=_env("WANEDIT_THUMBNAILS"))

    # Polling and retries (seconds).
    poll_first_delay: float = Field(10.0, gt=0, validation_alias=_env("WANEDIT_POLL_FIRST_DELAY"))
    poll_interval: float = Field(5.0, gt=0, validation_alias=_env("WANEDIT_POLL_INTERVAL"))
    poll_max_interval: float = Field(15.0, gt=0, validation_alias=_env("WANEDIT_POLL_MAX_INTERVAL"))
    poll_min_interval: float = Field(1.0, gt=0, validation_alias=_env("WANEDIT_POLL_MIN_INTERVAL"))
    poll_lag_fraction: float = Field(
        0.075, gt=0, le=1, validation_alias=_env("WANEDIT_POLL_LAG_FRACTION")
    )
    poll_mode: Literal["list", "task"] = Field("list", validation_alias=_env("WANEDIT_POLL_MODE"))
    poll_deadline: float = Field(
        6 * 3600.0, gt=0, le=MAX_POLL_DEADLINE, validation_alias=_env("WANEDIT_POLL_DEADLINE")
    )
    # Completion pushed by the provider (docs/provider-events.md): with WANEDIT_PROVIDER_EVENTS
    # on, a task is looked at when its EventBridge event arrives (`wanedit provider-events`);
    # the routine looks stop, and a task with no event is looked at first after FIRST_FACTOR x
    # the recent p95 task duration (EXPECTED_DURATION while there is no history), then every
    # FALLBACK_INTERVAL.
    provider_events: bool = Field(False, validation_alias=_env("WANEDIT_PROVIDER_EVENTS"))
    provider_events_token: SecretStr | None = Field(
        None, validation_alias=_env("WANEDIT_PROVIDER_EVENTS_TOKEN")
    )
    # Where the receiver (`wanedit provider-events`) answers, as this deployment reaches it,
    # e.g. http://provider-events:8092: `wanedit doctor` checks its /healthz.
    provider_events_url: str | None = Field(
        None, validation_alias=_env("WANEDIT_PROVIDER_EVENTS_URL")
    )
    provider_events_first_factor: float = Field(
        1.5, gt=0, le=100, validation_alias=_env("WANEDIT_PROVIDER_EVENTS_FIRST_FACTOR")
    )
    provider_events_expected_duration: float = Field(
        60.0, gt=0, validation_alias=_env("WANEDIT_PROVIDER_EVENTS_EXPECTED_DURATION")
    )
    provider_events_fallback_interval: float = Field(
        30.0, gt=0, validation_alias=_env("WANEDIT_PROVIDER_EVENTS_FALLBACK_INTERVAL")
    )
    # After a task on an account ends without its event, the account's list watch runs again
    # (as with events off) for this long; each further miss starts the time again.
    provider_events_watch_seconds: float = Field(
        600.0, ge=0, validation_alias=_env("WANEDIT_PROVIDER_EVENTS_WATCH_SECONDS")
    )
    retry_base: float = Field(2.0, gt=0, validation_alias=_env("WANEDIT_RETRY_BASE"))
    retry_cap: float = Field(60.0, gt=0, validation_alias=_env("WANEDIT_RETRY_CAP"))
    retry_max: int = Field(8, ge=0, validation_alias=_env("WANEDIT_RETRY_MAX"))
    http_connect_timeout: float = Field(
        5.0, gt=0, validation_alias=_env("WANEDIT_HTTP_CONNECT_TIMEOUT")
    )
    http_read_timeout: float = Field(30.0, gt=0, validation_alias=_env("WANEDIT_HTTP_READ_TIMEOUT"))

    # Crash safety and lost answers (seconds).
    reconcile_delay: float = Field(5.0, gt=0, validation_alias=_env("WANEDIT_RECONCILE_DELAY"))
    reconcile_skew: float = Field(30.0, ge=0, validation_alias=_env("WANEDIT_RECONCILE_SKEW"))
    reconcile_tries: int = Field(12, ge=1, validation_alias=_env("WANEDIT_RECONCILE_TRIES"))
    # How long after a lost create was sent the task list must still show no task before the
    # edit is created again: a request our client gave up on may still reach the provider.
    reconcile_settle: float = Field(60.0, ge=0, validation_alias=_env("WANEDIT_RECONCILE_SETTLE"))
    # Hours east of UTC of the provider's time strings; an account in WANEDIT_ACCOUNTS may set
    # its own `utc_offset`. Set neither, and each account's zone is measured from its own
    # answers (Beijing time, UTC+8, until it is): see docs/operations.md.
    provider_utc_offset: float = Field(
        BEIJING_UTC_OFFSET, ge=-14, le=14, validation_alias=_env("WANEDIT_PROVIDER_UTC_OFFSET")
    )
    sweep_interval: float = Field(30.0, gt=0, validation_alias=_env("WANEDIT_SWEEP_INTERVAL"))
    sweep_grace: float = Field(60.0, gt=0, validation_alias=_env("WANEDIT_SWEEP_GRACE"))
    # How often a paused account is probed (one task-list call, page size 1); a 200 resumes it.
    account_probe_seconds: float = Field(
        300.0, gt=0, validation_alias=_env("WANEDIT_ACCOUNT_PROBE_SECONDS")
    )
    max_losses: int = Field(5, ge=1, validation_alias=_env("WANEDIT_MAX_LOSSES"))
    finish_deadline: float = Field(
        6 * 3600.0, gt=0, le=20 * 3600.0, validation_alias=_env("WANEDIT_FINISH_DEADLINE")
    )
    soft_shutdown_timeout: float = Field(
        60.0, ge=0, validation_alias=_env("WANEDIT_SOFT_SHUTDOWN_TIMEOUT")
    )
    # Manifests run by celery beat: a JSON list of {name, cron, manifest, output}; cron has five
    # fields in UTC, or is a shorthand such as @daily.
    batch_schedules: list[BatchSchedule] = Field(
        default_factory=list, validation_alias=_env("WANEDIT_BATCH_SCHEDULES")
    )

    # Security (see the README's "Security" section).
    # Result URLs (and other URLs a worker fetches) may point at loopback/private addresses:
    # only for development and tests, whose servers all run on 127.0.0.1.
    allow_private_urls: bool = Field(False, validation_alias=_env("WANEDIT_ALLOW_PRIVATE_URLS"))
    # Directories the Python API may read local image files from (JSON list, or separated
    # by the OS path separator); empty: local files are refused.
    local_input_dirs: Annotated[list[Path], NoDecode] = Field(
        default_factory=list, validation_alias=_env("WANEDIT_LOCAL_INPUT_DIRS")
    )
    max_request_bytes: int = Field(
        64 * 1024, ge=4096, le=16 * 1024 * 1024, validation_alias=_env("WANEDIT_MAX_REQUEST_BYTES")
    )

    # Completion callbacks (see the README's "Webhooks" and "Celery callback" sections); a
    # request's callback_url / on_complete / on_complete_queue take precedence.
    webhook_url: str | None = Field(None, validation_alias=_env("WANEDIT_WEBHOOK_URL"))
    webhook_secret: SecretStr | None = Field(None, validation_alias=_env("WANEDIT_WEBHOOK_SECRET"))
    webhook_deadline: float = Field(
        24 * 3600.0, gt=0, validation_alias=_env("WANEDIT_WEBHOOK_DEADLINE")
    )
    on_complete: str | None = Field(None, validation_alias=_env("WANEDIT_ON_COMPLETE"))
    on_complete_queue: str = Field(
        DEFAULT_CALLBACK_QUEUE, validation_alias=_env("WANEDIT_ON_COMPLETE_QUEUE")
    )

    # What a request may name (see wanedit.config.allow and docs/security.md): comma-separated
    # or a JSON list; `*` allows any. Empty: only what the settings configure themselves (the
    # output and staging buckets, the listen rules' buckets, WANEDIT_ON_COMPLETE and its queue).
    input_buckets: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("WANEDIT_INPUT_BUCKETS")
    )
    output_buckets: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("WANEDIT_OUTPUT_BUCKETS")
    )
    on_complete_tasks: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("WANEDIT_ON_COMPLETE_TASKS")
    )
    on_complete_queues: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("WANEDIT_ON_COMPLETE_QUEUES")
    )

    # Storage events (see the README's "Storage events"): a JSON list of rules mapping uploads
    # to edits, and the bearer token `wanedit listen --http` asks for (none: no check).
    listen_rules: list[ListenRule] = Field(
        default_factory=list, validation_alias=_env("WANEDIT_LISTEN_RULES")
    )
    # The same rules as a TOML file of [[rule]] tables; `listen_rules` holds both (see below).
    rules_file: str | None = Field(None, validation_alias=_env("WANEDIT_RULES_FILE"))
    listen_token: SecretStr | None = Field(None, validation_alias=_env("WANEDIT_LISTEN_TOKEN"))

    # Operations (see the README's "Run it in production"): Prometheus metrics on this port at
    # /metrics (unset: no metrics server), and the log line format ("text" for people, "json"
    # for log pipelines).
    metrics_port: int | None = Field(
        None, ge=1, le=65535, validation_alias=_env("WANEDIT_METRICS_PORT")
    )
    log_format: Literal["text", "json"] = Field("text", validation_alias=_env("WANEDIT_LOG_FORMAT"))

    @model_validator(mode="after")
    def _aws_key_pair(self) -> Settings:
        key_id, secret = self.aws_access_key_id, self.aws_secret_access_key
        if bool(key_id and key_id.get_secret_value()) != bool(secret and secret.get_secret_value()):
            raise ValueError("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together")
        return self

    @model_validator(mode="after")
    def _rules_file(self) -> Settings:
        if self.rules_file:
            # Its errors are ConfigErrors that name the file and the rule: raised as they are.
            rules = merge_rules(
                self.listen_rules, load_rules_file(self.rules_file), self.rules_file
            )
            object.__setattr__(self, "listen_rules", rules)  # settings are frozen once built
        return self

    @field_validator("provider_events_url")
    @classmethod
    def _provider_events_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http(s) URL like http://provider-events:8092: {value!r}")
        return value.rstrip("/")

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        return check_callback_url(value) if value else None

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        decode_secret(value.get_secret_value())  # its message never quotes the secret
        return value

    @field_validator("on_complete")
    @classmethod
    def _on_complete(cls, value: str | None) -> str | None:
        return check_task_name(value) if value else None

    @field_validator("on_complete_queue")
    @classmethod
    def _on_complete_queue(cls, value: str) -> str:
        return check_queue_name(value)

    def callback_targets(self, request: Mapping[str, Any]) -> Targets:
        """Who is told when a job with this stored request ends."""
        return targets_for(
            request,
            webhook_url=self.webhook_url,
            on_complete=self.on_complete,
            on_complete_queue=self.on_complete_queue,
        )

    def webhook_key(self) -> bytes:
        """The webhook signing key; ConfigError when WANEDIT_WEBHOOK_SECRET is not set."""
        if self.webhook_secret is None:
            raise ConfigError(
                "WANEDIT_WEBHOOK_SECRET is not set: webhooks are signed with a whsec_... secret"
            )
        return decode_secret(self.webhook_secret.get_secret_value())

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # URLs may carry a password; SecretStr fields already print as '**********'.
        for name, value in super().__repr_args__():
            urls = ("redis_url", "aws_endpoint_url_s3")
            yield name, redact_url(value) if name in urls and value else value

    @field_validator(
        "input_buckets", "output_buckets", "on_complete_tasks", "on_complete_queues", mode="before"
    )
    @classmethod
    def _names(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]

    @field_validator("on_complete_tasks")
    @classmethod
    def _task_names(cls, value: list[str]) -> list[str]:
        return [name if name == "*" else check_task_name(name) for name in value]

    @field_validator("on_complete_queues")
    @classmethod
    def _queue_names(cls, value: list[str]) -> list[str]:
        return [name if name == "*" else check_queue_name(name) for name in value]

    @field_validator("local_input_dirs", mode="before")
    @classmethod
    def _local_input_dirs(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part for part in text.split(os.pathsep) if part.strip()]

    @field_validator("local_input_dirs")
    @classmethod
    def _absolute_dirs(cls, value: list[Path]) -> list[Path]:
        resolved = []
        for path in value:
            path = path.expanduser()
            if not path.is_absolute():
                raise ValueError(f"{str(path)!r} must be an absolute directory")
            resolved.append(path.resolve())
        return resolved

    @field_validator("dashscope_http_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return check_base_url(value)

    @field_validator("batch_schedules")
    @classmethod
    def _batch_schedules(cls, value: list[BatchSchedule]) -> list[BatchSchedule]:
        names = [schedule.name for schedule in value]
        if len(set(names)) != len(names):
            raise ValueError("schedule names must be unique")
        return value

    def batch_schedule(self, name: str) -> BatchSchedule:
        for schedule in self.batch_schedules:
            if schedule.name == name:
                return schedule
        raise ConfigError(f"WANEDIT_BATCH_SCHEDULES has no schedule named {name!r}")

    @field_validator("accounts_list")
    @classmethod
    def _accounts(cls, value: list[Account] | None) -> list[Account] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("must list at least one account")
        names = [account.name for account in value]
        if len(set(names)) != len(names):
            raise ValueError("account names must be unique")
        keys = [a.api_key.get_secret_value() for a in value if a.api_key is not None]
        if len(set(keys)) != len(keys):
            # One key is one main account's quota: two entries would each be given all of it.
            raise ValueError(
                "two accounts have the same api_key; each entry must be its own Alibaba Cloud "
                "main account (keys of one main account share one quota)"
            )
        return value

    @cached_property
    def accounts(self) -> list[Account]:
        """The provider accounts; one, from the DASHSCOPE_* settings, unless WANEDIT_ACCOUNTS.

        An account that sets no `utc_offset` gets WANEDIT_PROVIDER_UTC_OFFSET when that is set;
        with neither, its `utc_offset` is None: its zone is measured (wanedit.workers.zone)."""
        offset = self.configured_utc_offset
        if self.accounts_list:
            return [
                a
                if a.utc_offset is not None or offset is None
                else a.model_copy(update={"utc_offset": offset})
                for a in self.accounts_list
            ]
        return [
            Account(
                name="default",
                api_key=self.dashscope_api_key,
                base_url=self.dashscope_http_base_url,
                concurrency=self.concurrency,
                submit_rate=self.submit_rate,
                query_rate=self.query_rate,
                price_per_image=self.price_per_image,
                utc_offset=offset,
            )
        ]

    @property
    def configured_utc_offset(self) -> float | None:
        """WANEDIT_PROVIDER_UTC_OFFSET when it was set (its default is no configuration)."""
        return self.provider_utc_offset if "provider_utc_offset" in self.model_fields_set else None

    @property
    def create_settle(self) -> float:
        """Seconds from a lost create's send to the first empty look that may create it again:
        WANEDIT_RECONCILE_SETTLE, and never less than the create's own connect + read timeout
        (a request is still in flight, and may still make a task, until then)."""
        return max(self.reconcile_settle, self.http_connect_timeout + self.http_read_timeout)

    def account(self, name: str) -> Account:
        for account in self.accounts:
            if account.name == name:
                return account
        raise ConfigError(f"account {name!r} is not configured (WANEDIT_ACCOUNTS)")

    @field_validator("output_uri", "staging_uri")
    @classmethod
    def _s3_prefix(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        return str(S3Location.parse_prefix(value))

    @property
    def output_location(self) -> S3Location:
        """The default destination; a clear error when it is not configured."""
        if self.output_uri is None:
            raise ConfigError(
                "WANEDIT_OUTPUT_URI is not set: give the default destination as "
                "s3://bucket/prefix/ (or pass an output URI with each request)"
            )
        return S3Location.parse_prefix(self.output_uri)

    def staging_location(self, output: S3Location) -> S3Location:
        """Where producers stage local and data-URI inputs: the setting, else beside the output."""
        if self.staging_uri:
            return S3Location.parse_prefix(self.staging_uri)
        return S3Location(output.bucket, "wanedit-staging/")

    def check_worker(self) -> None:
        """What a worker needs before its first task: a key for every account (the broker's
        limits are checked with them by `wanedit.config.celery.check_worker`)."""
        for account in self.accounts:
            account.key()
        if self.webhook_url:
            self.webhook_key()


def _one_line(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        loc = item["loc"]
        name = str(loc[0]).upper() if loc else "settings"
        name += "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc[1:])
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{name}: {message}" if loc else message)  # a check across settings
    return "invalid settings: " + "; ".join(problems)


def load_settings(**overrides: object) -> Settings:
    """Read settings now; a bad value is a one-line ConfigError, not a stack of pydantic text.

    The environment file is `.env` in the working directory, or the path in `WANEDIT_ENV_FILE`;
    `WANEDIT_ENV_FILE=` (empty) reads none (the tests and the demo set that)."""
    env_file = os.environ.get("WANEDIT_ENV_FILE", ".env") or None
    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
