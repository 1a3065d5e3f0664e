"""AWS settings written in a `.env` file reach boto3 (which itself reads only the environment)."""

from __future__ import annotations

import pytest
from botocore.exceptions import NoCredentialsError

from wanedit.config.clients import make_s3
from wanedit.config.settings import load_settings

pytestmark = pytest.mark.integration

AWS_NAMES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_PROFILE",
)


@pytest.fixture
def bare_env(monkeypatch, tmp_path):
    """A working directory of its own, and no AWS source but the `.env` file written there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WANEDIT_ENV_FILE", raising=False)  # read ./.env, as a user's CLI does
    for name in AWS_NAMES:
        monkeypatch.delenv(name, raising=False)
    # No ~/.aws files and no instance metadata: nothing else could supply credentials.
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return tmp_path


def test_a_dotenv_file_gives_a_working_s3_client(bare_env, s3_server):
    lines = [f"{name}={s3_server[name]}" for name in sorted(s3_server)]
    (bare_env / ".env").write_text("\n".join(lines) + "\n")
    s3 = make_s3(load_settings())
    assert s3.meta.endpoint_url == s3_server["AWS_ENDPOINT_URL_S3"]
    assert s3.meta.region_name == s3_server["AWS_DEFAULT_REGION"]
    s3.create_bucket(Bucket="from-dotenv")
    s3.put_object(Bucket="from-dotenv", Key="k.txt", Body=b"reached")
    assert s3.get_object(Bucket="from-dotenv", Key="k.txt")["Body"].read() == b"reached"


def test_without_them_boto3s_own_chain_decides(bare_env, s3_server):
    (bare_env / ".env").write_text(f"AWS_ENDPOINT_URL_S3={s3_server['AWS_ENDPOINT_URL_S3']}\n")
    s3 = make_s3(load_settings())
    with pytest.raises(NoCredentialsError):
        s3.list_buckets()


def test_the_process_environment_still_works(bare_env, s3_server, monkeypatch):
    for name, value in s3_server.items():
        monkeypatch.setenv(name, value)
    s3 = make_s3(load_settings())
    s3.create_bucket(Bucket="from-environment")
    assert "from-environment" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
