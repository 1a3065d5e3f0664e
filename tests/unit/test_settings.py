"""Settings: the public names, defaults, one-line errors, and no secret in repr."""

from __future__ import annotations

import pytest

from wanedit.config.celery import check_worker
from wanedit.config.settings import load_settings
from wanedit.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in (
        "DASHSCOPE_API_KEY",
        "DASHSCOPE_HTTP_BASE_URL",
        "WANEDIT_REDIS_URL",
        "WANEDIT_OUTPUT_URI",
        "WANEDIT_EVENTS_STREAM",
        "WANEDIT_POLL_DEADLINE",
        "WANEDIT_ACCOUNTS",
        "WANEDIT_ALLOW_PRIVATE_URLS",
        "WANEDIT_LOCAL_INPUT_DIRS",
        "WANEDIT_MAX_REQUEST_BYTES",
        "WANEDIT_ENV_FILE",  # tests/conftest.py switches .env off for every other test
    ):
        monkeypatch.delenv(name, raising=False)


def test_defaults():
    settings = load_settings()
    assert settings.dashscope_http_base_url == "https://dashscope-intl.aliyuncs.com/api/v1"
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.events_stream == "wanedit:events"
    assert settings.job_ttl_seconds == 7 * 86400


def test_environment_names(monkeypatch):
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-very-secret")
    monkeypatch.setenv("DASHSCOPE_HTTP_BASE_URL", "https://dashscope.aliyuncs.com/api/v1/")
    monkeypatch.setenv("WANEDIT_REDIS_URL", "redis://redis:6379/2")
    monkeypatch.setenv("WANEDIT_OUTPUT_URI", "s3://out-bucket/edits")
    monkeypatch.setenv("WANEDIT_EVENTS_STREAM", "edits:done")
    settings = load_settings()
    assert settings.accounts[0].key() == "sk-very-secret"
    assert settings.dashscope_http_base_url == "https://dashscope.aliyuncs.com/api/v1"
    assert settings.redis_url == "redis://redis:6379/2"
    assert settings.output_uri == "s3://out-bucket/edits/"
    assert settings.events_stream == "edits:done"
    assert "sk-very-secret" not in repr(settings)
    assert "sk-very-secret" not in str(settings.model_dump())


def test_dotenv_file_is_read(tmp_path):
    (tmp_path / ".env").write_text("WANEDIT_OUTPUT_URI=s3://from-dotenv/x/\n")
    assert load_settings().output_uri == "s3://from-dotenv/x/"


def test_missing_api_key_is_one_clear_line():
    with pytest.raises(ConfigError) as raised:
        check_worker(load_settings())
    assert "DASHSCOPE_API_KEY is not set" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_missing_output_uri_is_one_clear_line():
    with pytest.raises(ConfigError, match="WANEDIT_OUTPUT_URI is not set"):
        _ = load_settings().output_location


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("DASHSCOPE_HTTP_BASE_URL", "https://dashscope-intl.aliyuncs.com", "ending in /api/v1"),
        ("WANEDIT_OUTPUT_URI", "/local/dir", "must start with s3://"),
        ("WANEDIT_POLL_DEADLINE", "90000", "less than or equal to 72000"),
    ],
)
def test_bad_values_are_one_line_errors(monkeypatch, name, value, problem):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    message = str(raised.value)
    assert "\n" not in message
    assert name in message
    assert problem in message


def test_default_account_comes_from_the_dashscope_settings(monkeypatch):
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-1")
    monkeypatch.setenv("DASHSCOPE_HTTP_BASE_URL", "https://dashscope.aliyuncs.com/api/v1")
    [account] = load_settings().accounts
    assert (account.name, account.key(), account.concurrency) == ("default", "sk-1", 5)
    assert (account.submit_rate, account.query_rate) == (5.0, 20.0)
    assert account.price == 0.20  # Beijing


def test_several_accounts_from_json(monkeypatch):
    monkeypatch.setenv(
        "WANEDIT_ACCOUNTS",
        '[{"name": "sg", "api_key": "sk-sg"},'
        ' {"name": "bj", "api_key": "sk-bj", "base_url": "https://dashscope.aliyuncs.com/api/v1",'
        '  "concurrency": 3, "price_per_image": 0.19}]',
    )
    settings = load_settings()
    sg, bj = settings.accounts
    assert (sg.name, sg.price, sg.concurrency) == ("sg", 0.220177, 5)
    assert (bj.name, bj.price, bj.concurrency) == ("bj", 0.19, 3)
    assert settings.account("bj").key() == "sk-bj"
    assert "sk-sg" not in repr(settings)


def test_provider_times_are_beijing_time_unless_an_account_says_otherwise(monkeypatch):
    [default] = load_settings().accounts
    assert default.provider_utc_offset == 8.0
    monkeypatch.setenv(
        "WANEDIT_ACCOUNTS",
        '[{"name": "a", "api_key": "sk-a"}, {"name": "b", "api_key": "sk-b", "utc_offset": 0}]',
    )
    assert [a.provider_utc_offset for a in load_settings().accounts] == [8.0, 0.0]
    monkeypatch.setenv("WANEDIT_PROVIDER_UTC_OFFSET", "9")
    assert [a.provider_utc_offset for a in load_settings().accounts] == [9.0, 0.0]
    assert load_settings().account("a").provider_utc_offset == 9.0


def test_a_zone_is_configured_only_when_a_setting_names_one(monkeypatch):
    """Unset, the account's utc_offset stays None: the workers measure the zone."""
    [default] = load_settings().accounts
    assert (default.utc_offset, load_settings().configured_utc_offset) == (None, None)
    monkeypatch.setenv("WANEDIT_PROVIDER_UTC_OFFSET", "8")  # the default's value, but set
    [default] = load_settings().accounts
    assert (default.utc_offset, load_settings().configured_utc_offset) == (8.0, 8.0)
    monkeypatch.delenv("WANEDIT_PROVIDER_UTC_OFFSET")
    monkeypatch.setenv(
        "WANEDIT_ACCOUNTS",
        '[{"name": "a", "api_key": "sk-a"}, {"name": "b", "api_key": "sk-b", "utc_offset": -5.5}]',
    )
    assert [a.utc_offset for a in load_settings().accounts] == [None, -5.5]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("http://provider-events:8092/", "http://provider-events:8092"), ("", None)],
)
def test_the_events_receiver_url(monkeypatch, value, expected):
    monkeypatch.setenv("WANEDIT_PROVIDER_EVENTS_URL", value)
    assert load_settings().provider_events_url == expected


def test_the_events_receiver_url_must_be_http(monkeypatch):
    monkeypatch.setenv("WANEDIT_PROVIDER_EVENTS_URL", "provider-events:8092")
    with pytest.raises(ConfigError, match="WANEDIT_PROVIDER_EVENTS_URL: must be an http"):
        load_settings()


def test_one_key_listed_as_two_accounts_is_refused_without_showing_it(monkeypatch):
    monkeypatch.setenv(
        "WANEDIT_ACCOUNTS",
        '[{"name": "a", "api_key": "sk-same-secret"}, {"name": "b", "api_key": "sk-same-secret"}]',
    )
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert "each entry must be its own Alibaba Cloud main account" in str(raised.value)
    assert "sk-same-secret" not in str(raised.value)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("[]", "WANEDIT_ACCOUNTS: must list at least one account"),
        ('[{"name": "a"}, {"name": "a"}]', "WANEDIT_ACCOUNTS: account names must be unique"),
        ('[{"name": "Bad Name"}]', "WANEDIT_ACCOUNTS[0].name: an account name is 1-32 of"),
        ('[{"name": "a", "concurrency": 0}]', "WANEDIT_ACCOUNTS[0].concurrency: Input should be"),
        (
            '[{"name": "a", "base_url": "https://x"}]',
            "WANEDIT_ACCOUNTS[0].base_url: must be a full",
        ),
        ('[{"name": "a", "utc_offset": 15}]', "WANEDIT_ACCOUNTS[0].utc_offset: Input should be"),
    ],
)
def test_bad_accounts(monkeypatch, value, problem):
    monkeypatch.setenv("WANEDIT_ACCOUNTS", value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert problem in str(raised.value)


def test_account_without_key_stops_the_worker(monkeypatch):
    monkeypatch.setenv("WANEDIT_ACCOUNTS", '[{"name": "sg", "api_key": "k"}, {"name": "bj"}]')
    with pytest.raises(ConfigError, match="account 'bj' is not set"):
        check_worker(load_settings())


def test_security_defaults_are_strict():
    settings = load_settings()
    assert settings.allow_private_urls is False
    assert settings.local_input_dirs == []
    assert settings.max_request_bytes == 64 * 1024


def test_security_settings_from_the_environment(monkeypatch, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "in")
    monkeypatch.setenv("WANEDIT_ALLOW_PRIVATE_URLS", "true")
    monkeypatch.setenv("WANEDIT_LOCAL_INPUT_DIRS", f"{tmp_path}/link:{tmp_path}/in/../other")
    monkeypatch.setenv("WANEDIT_MAX_REQUEST_BYTES", "8192")
    settings = load_settings()
    assert settings.allow_private_urls is True
    # Symlinks and '..' are resolved once, here.
    assert settings.local_input_dirs == [
        (tmp_path / "in").resolve(),
        (tmp_path / "other").resolve(),
    ]
    assert settings.max_request_bytes == 8192
    monkeypatch.setenv("WANEDIT_LOCAL_INPUT_DIRS", f'["{tmp_path}/in"]')
    assert load_settings().local_input_dirs == [(tmp_path / "in").resolve()]


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        (
            "WANEDIT_LOCAL_INPUT_DIRS",
            "relative/dir",
            "LOCAL_INPUT_DIRS: 'relative/dir' must be an absolute directory",
        ),
        (
            "WANEDIT_MAX_REQUEST_BYTES",
            "100",
            "MAX_REQUEST_BYTES: Input should be greater than or equal to 4096",
        ),
        (
            "WANEDIT_ALLOW_PRIVATE_URLS",
            "maybe",
            "ALLOW_PRIVATE_URLS: Input should be a valid boolean",
        ),
    ],
)
def test_bad_security_settings_are_one_line(monkeypatch, name, value, problem):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert problem in str(raised.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter2@redis:6379/0", "redis://***@redis:6379/0"),
        (
            "rediss://app:hunter2@redis.example:6380/1?ssl_cert_reqs=required",
            "rediss://***@redis.example:6380/1?ssl_cert_reqs=required",
        ),
        ("redis://redis:6379/0", "redis://redis:6379/0"),
    ],
)
def test_redis_password_never_in_repr(monkeypatch, url, shown):
    monkeypatch.setenv("WANEDIT_REDIS_URL", url)
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-very-secret")
    settings = load_settings()
    assert settings.redis_url == url  # the clients still get the real URL
    for text in (repr(settings), str(settings)):
        assert "hunter2" not in text and "sk-very-secret" not in text
        assert repr(shown) in text


def test_every_countdown_stays_below_the_visibility_timeout(monkeypatch):
    from wanedit.config.celery import VISIBILITY_TIMEOUT, celery_config, longest_wait

    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-test")
    settings = load_settings()
    check_worker(settings)
    config = celery_config(settings)
    assert config["broker_transport_options"]["visibility_timeout"] == VISIBILITY_TIMEOUT
    assert config["result_backend_transport_options"]["visibility_timeout"] == VISIBILITY_TIMEOUT
    assert longest_wait(settings) < VISIBILITY_TIMEOUT
    assert config["task_time_limit"] < VISIBILITY_TIMEOUT
    assert config["beat_schedule"]["wanedit-sweep"]["schedule"] == settings.sweep_interval


def test_a_countdown_above_the_visibility_timeout_stops_the_worker(monkeypatch):
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-test")
    monkeypatch.setenv("WANEDIT_SLOT_LEASE_SECONDS", str(4 * 3600))
    with pytest.raises(ConfigError, match="visibility timeout"):
        check_worker(load_settings())


def test_env_file_is_read_unless_switched_off(monkeypatch, tmp_path):
    (tmp_path / ".env").write_text("WANEDIT_QUEUE=from-dotenv\n")
    (tmp_path / "other.env").write_text("WANEDIT_QUEUE=from-other\n")
    monkeypatch.delenv("WANEDIT_QUEUE", raising=False)
    assert load_settings().queue == "from-dotenv"
    monkeypatch.setenv("WANEDIT_ENV_FILE", str(tmp_path / "other.env"))
    assert load_settings().queue == "from-other"
    monkeypatch.setenv("WANEDIT_ENV_FILE", "")
    assert load_settings().queue == "wanedit"


@pytest.mark.parametrize(
    ("settle", "connect", "read", "expected"),
    [
        ("60", "5", "30", 60.0),  # the defaults: the setting wins
        ("10", "5", "30", 35.0),  # never before the create's own timeouts have run out
        ("0", "0.5", "1", 1.5),
        ("90", "5", "120", 125.0),
    ],
)
def test_create_settle_is_never_shorter_than_the_create_timeouts(
    monkeypatch: pytest.MonkeyPatch, settle: str, connect: str, read: str, expected: float
) -> None:
    monkeypatch.setenv("WANEDIT_RECONCILE_SETTLE", settle)
    monkeypatch.setenv("WANEDIT_HTTP_CONNECT_TIMEOUT", connect)
    monkeypatch.setenv("WANEDIT_HTTP_READ_TIMEOUT", read)
    assert load_settings().create_settle == expected


AWS_NAMES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL_S3",
)


@pytest.fixture
def no_aws_env(monkeypatch):
    for name in AWS_NAMES:
        monkeypatch.delenv(name, raising=False)


def test_aws_settings_are_read_from_dotenv_and_never_shown(tmp_path, no_aws_env):
    (tmp_path / ".env").write_text(
        "AWS_ACCESS_KEY_ID=AKIADOTENVKEYID\n"
        "AWS_SECRET_ACCESS_KEY=dotenv-secret-value\n"
        "AWS_SESSION_TOKEN=dotenv-session-token\n"
        "AWS_DEFAULT_REGION=eu-west-3\n"
        "AWS_ENDPOINT_URL_S3=http://127.0.0.1:9000\n"
    )
    settings = load_settings()
    assert settings.aws_access_key_id is not None
    assert settings.aws_access_key_id.get_secret_value() == "AKIADOTENVKEYID"
    assert settings.aws_region == "eu-west-3"
    assert settings.aws_endpoint_url_s3 == "http://127.0.0.1:9000"
    shown = repr(settings) + str(settings) + str(settings.model_dump())
    for secret in ("AKIADOTENVKEYID", "dotenv-secret-value", "dotenv-session-token"):
        assert secret not in shown


def test_aws_region_prefers_aws_region(monkeypatch, no_aws_env):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "ap-southeast-1")
    assert load_settings().aws_region == "ap-southeast-1"


def test_aws_settings_are_optional(no_aws_env):
    settings = load_settings()
    assert (settings.aws_access_key_id, settings.aws_region, settings.aws_endpoint_url_s3) == (
        None,
        None,
        None,
    )


def test_an_aws_key_id_without_its_secret_is_one_clear_line(monkeypatch, no_aws_env):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAONLYTHEID")
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together" in str(raised.value)
    assert "AKIAONLYTHEID" not in str(raised.value)


def test_the_aws_secrets_are_redacted_from_logs(monkeypatch, no_aws_env):
    from wanedit.logs import settings_secrets

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIDENTIFIER")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "the-secret-access-key")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "the-session-token")
    secrets = settings_secrets(load_settings())
    assert {"the-secret-access-key", "the-session-token"} <= set(secrets)
