"""docker-compose.yml, read and checked against the code (there is no Docker engine to run it)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.deploy_files import (
    command_problems,
    compose,
    compose_argv,
    compose_default,
    option_value,
    setting_name,
    unknown_env,
)
from wanedit.config.settings import Settings

SERVICES: dict[str, dict[str, Any]] = compose()["services"]


def ours(service: dict[str, Any]) -> bool:
    """Built from deploy/Dockerfile (anything else is a third-party image)."""
    build = service.get("build")
    return isinstance(build, dict) and build.get("dockerfile") == "deploy/Dockerfile"


OURS = {name: service for name, service in SERVICES.items() if ours(service)}


def argv(service: dict[str, Any]) -> list[str]:
    return compose_argv(service.get("entrypoint")) + compose_argv(service.get("command"))


def env(service: dict[str, Any]) -> dict[str, str]:
    """The service's environment with compose's ${NAME:-default} defaults (no .env)."""
    return {name: compose_default(value) for name, value in service.get("environment", {}).items()}


def one_shot(service: dict[str, Any]) -> bool:
    return service.get("restart") == "no"


def running(subcommand: str) -> list[str]:
    return [
        name
        for name, service in OURS.items()
        if argv(service)[:1] == ["celery"] and subcommand in argv(service)[1:4]
    ]


def test_every_command_of_our_image_exists_with_its_options() -> None:
    problems = []
    for name, service in OURS.items():
        problems += command_problems(
            argv(service) or ["celery", "-A", "wanedit.workers", "worker"], name
        )
        test = service.get("healthcheck", {}).get("test")
        if test:
            assert test[0] == "CMD", f"{name}: healthcheck should be exec form ['CMD', ...]"
            problems += command_problems(test[1:], f"{name} healthcheck")
    assert problems == []


def test_every_environment_name_is_a_setting() -> None:
    for name, service in OURS.items():
        assert unknown_env(list(env(service))) == [], name


def test_the_defaults_are_valid_settings(monkeypatch) -> None:
    for name, service in OURS.items():
        for key, value in env(service).items():
            monkeypatch.setenv(key, value)
        Settings(_env_file=None)  # type: ignore[call-arg]  # raises on any invalid value
        for key in env(service):
            monkeypatch.delenv(key)
        assert name


def test_settings_come_from_dot_env_which_may_be_missing() -> None:
    for name, service in OURS.items():
        assert service.get("env_file") == [{"path": ".env", "required": False}], name


def test_every_long_running_service_has_a_healthcheck() -> None:
    for name, service in SERVICES.items():
        check = service.get("healthcheck", {})
        if one_shot(service):
            continue
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"


def test_dependencies_wait_for_health_or_completion() -> None:
    for name, service in SERVICES.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on should name a condition"
        for other, rule in depends.items():
            condition = rule["condition"]
            if condition == "service_healthy":
                assert SERVICES[other].get("healthcheck", {}).get("test"), (name, other)
            else:
                assert condition == "service_completed_successfully", (name, other)
                assert one_shot(SERVICES[other]), f"{other} is not a one-shot job"


def test_workers_start_after_redis_and_the_bucket() -> None:
    depends = SERVICES["worker"]["depends_on"]
    assert depends["redis"] == {"condition": "service_healthy"}
    assert depends["buckets"] == {"condition": "service_completed_successfully"}
    assert SERVICES["buckets"]["depends_on"]["s3"] == {"condition": "service_healthy"}


def test_exactly_one_beat() -> None:
    beats = running("beat")
    assert len(beats) == 1, beats
    service = SERVICES[beats[0]]
    assert service.get("deploy", {}).get("replicas", 1) == 1
    assert "scale" not in service
    assert not any("--beat" in argv(s) or "-B" in argv(s) for s in OURS.values())


def test_workers_and_flower_exist() -> None:
    assert running("worker") == ["worker"]
    assert running("flower") == ["flower"]


def test_the_sandbox_runs_only_in_the_dev_profile() -> None:
    sandboxes = [name for name, s in OURS.items() if argv(s)[:2] == ["wanedit", "sandbox"]]
    assert sandboxes == ["sandbox"]
    assert SERVICES["sandbox"]["profiles"] == ["dev"]
    for name, service in SERVICES.items():
        if "dev" not in service.get("profiles", []):
            assert "sandbox" not in service.get("depends_on", {}), name


def test_the_default_provider_is_the_sandbox_on_its_port() -> None:
    url = urlsplit(env(SERVICES["worker"])["DASHSCOPE_HTTP_BASE_URL"])
    command = argv(SERVICES["sandbox"])
    assert url.hostname == "sandbox"
    assert str(url.port) == option_value(command, "--port")
    assert option_value(command, "--host") == "0.0.0.0"


def test_redis_persists_and_never_evicts() -> None:
    command = argv(SERVICES["redis"])
    assert command[0] == "redis-server"
    assert option_value(command, "--appendonly") == "yes"
    assert option_value(command, "--maxmemory-policy") == "noeviction"
    url = urlsplit(env(SERVICES["worker"])["WANEDIT_REDIS_URL"])
    assert (url.hostname, url.port) == ("redis", 6379)


def test_s3_is_seaweedfs_with_the_bucket_of_the_output_uri() -> None:
    s3 = SERVICES["s3"]
    assert s3["image"].startswith("chrislusf/seaweedfs")
    assert "-s3" in argv(s3)
    endpoint = urlsplit(env(SERVICES["worker"])["AWS_ENDPOINT_URL_S3"])
    assert endpoint.hostname == "s3"
    assert f"-s3.port={endpoint.port}" in argv(s3)
    assert str(endpoint.port) in " ".join(s3["healthcheck"]["test"])
    # The server's admin key pair is the one the workers sign with.
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert env(s3)[key] == env(SERVICES["worker"])[key]
    script = argv(SERVICES["buckets"])[2]
    assert "output_location.bucket" in script and "create_bucket" in script


def test_metrics_port_is_exposed() -> None:
    worker = SERVICES["worker"]
    port = env(worker)[setting_name("metrics_port")]
    assert port.isdigit()
    assert port in [
        str(p).split(":")[-1] for p in worker.get("expose", []) + worker.get("ports", [])
    ]


def test_flower_serves_on_5555() -> None:
    flower = SERVICES["flower"]
    assert option_value(argv(flower), "--port") == "5555"
    assert "127.0.0.1:5555:5555" in flower["ports"]
    assert "127.0.0.1:5555/" in " ".join(flower["healthcheck"]["test"])
    assert flower["build"]["args"] == {"EXTRAS": "flower"}


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for unit in ("ms", "s", "m", "h"):
        if duration.endswith(unit):
            return float(duration[: -len(unit)]) * units[unit]
    return float(duration)


@pytest.mark.parametrize("service", ["worker"])
def test_workers_get_a_soft_shutdown_and_time_for_it(service: str) -> None:
    worker = SERVICES[service]
    assert env(worker)["REMAP_SIGTERM"] == "SIGQUIT"
    timeout = float(
        env(worker).get(setting_name("soft_shutdown_timeout"))
        or Settings.model_fields["soft_shutdown_timeout"].default
    )
    assert _seconds(worker["stop_grace_period"]) > timeout


def test_flower_is_published_only_behind_basic_auth() -> None:
    flower = SERVICES["flower"]
    value = str(flower["environment"]["FLOWER_BASIC_AUTH"])
    # Required (`:?`): compose stops with this message when .env does not set it; no default.
    assert value.startswith("${FLOWER_BASIC_AUTH:?") and ":-" not in value
    assert "--basic-auth" not in " ".join(argv(flower))  # never a password on a command line
    # The web UI is published on the host's loopback only, never on every interface.
    for port in flower.get("ports", []):
        assert str(port).startswith("127.0.0.1:"), port
    # It still gets the stack's settings (the broker) besides its own.
    assert (
        flower["environment"]["WANEDIT_REDIS_URL"]
        == SERVICES["worker"]["environment"]["WANEDIT_REDIS_URL"]
    )
