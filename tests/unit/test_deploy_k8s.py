"""deploy/k8s/, read and checked against the code (there is no cluster to apply it to)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import yaml

from tests.deploy_files import (
    K8S,
    command_problems,
    dockerfile_instructions,
    k8s_documents,
    k8s_kind,
    k8s_object,
    measured_worker_peak_mib,
    option_value,
    pyproject,
    quantity_mib,
    setting_name,
    unknown_env,
)
from wanedit.config.celery import TASK_TIME_LIMIT, celery_config
from wanedit.config.settings import Settings

CONFIG: dict[str, str] = k8s_object("ConfigMap", "wanedit")["data"]
SECRET: dict[str, str] = k8s_object("Secret", "wanedit")["stringData"]
WORKER = k8s_object("Deployment", "wanedit-worker")
BEAT = k8s_object("Deployment", "wanedit-beat")
SCALER = k8s_object("ScaledObject", "wanedit-worker")


def pod(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = pod(deployment)["containers"]
    assert len(containers) == 1
    return containers[0]


def env_of(deployment: dict[str, Any]) -> dict[str, str]:
    """Every variable the container gets: ConfigMap and Secret through envFrom, then env."""
    values: dict[str, str] = {}
    for source in container(deployment).get("envFrom", []):
        if "configMapRef" in source:
            values.update(k8s_object("ConfigMap", source["configMapRef"]["name"])["data"])
        else:
            values.update(k8s_object("Secret", source["secretRef"]["name"])["stringData"])
    for item in container(deployment).get("env", []):
        if "value" in item:
            values[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            values[item["name"]] = k8s_object("Secret", ref["name"])["stringData"][ref["key"]]
    return values


def setting(deployment: dict[str, Any], field: str) -> Any:
    """The setting's value in this pod: its environment if set there, else the default."""
    raw = env_of(deployment).get(setting_name(field))
    if raw is None:
        return Settings.model_fields[field].default
    return type(Settings.model_fields[field].default)(raw)


def test_kustomization_lists_every_manifest() -> None:
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(k8s_documents())


def test_every_command_and_probe_exists_with_its_options() -> None:
    problems = []
    for deployment in k8s_kind("Deployment"):
        name = deployment["metadata"]["name"]
        spec = container(deployment)
        problems += command_problems(spec["command"] + spec.get("args", []), name)
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            if "exec" in spec.get(probe, {}):
                problems += command_problems(spec[probe]["exec"]["command"], f"{name} {probe}")
    assert problems == []


def test_every_environment_name_is_a_setting() -> None:
    assert unknown_env(list(CONFIG) + list(SECRET)) == []
    for deployment in k8s_kind("Deployment"):
        assert unknown_env(list(env_of(deployment))) == [], deployment["metadata"]["name"]


def test_the_settings_load(monkeypatch) -> None:
    for deployment in (WORKER, BEAT):
        for key, value in env_of(deployment).items():
            monkeypatch.setenv(key, value)
        settings = Settings(_env_file=None)  # type: ignore[call-arg]  # raises when invalid
        assert settings.log_format == "json"


def test_beat_gets_no_provider_or_storage_secret() -> None:
    names = set(env_of(BEAT))
    assert setting_name("redis_url") in names
    assert not names & {setting_name("dashscope_api_key"), "AWS_SECRET_ACCESS_KEY"}


def test_secrets_are_in_the_secret_only() -> None:
    secret_names = {
        setting_name(field)
        for field, info in Settings.model_fields.items()
        if "SecretStr" in str(info.annotation)
    }
    assert setting_name("dashscope_api_key") in secret_names
    secret_names |= {setting_name("redis_url"), "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"}
    assert not secret_names & set(CONFIG)
    assert {setting_name("dashscope_api_key"), setting_name("redis_url")} <= set(SECRET)


def test_workers_shut_down_softly_within_the_grace_period() -> None:
    grace = pod(WORKER)["terminationGracePeriodSeconds"]
    assert env_of(WORKER)["REMAP_SIGTERM"] == "SIGQUIT"
    assert grace > setting(WORKER, "soft_shutdown_timeout")
    config = celery_config(Settings(_env_file=None))  # type: ignore[call-arg]
    assert grace > config["task_time_limit"] == TASK_TIME_LIMIT
    assert grace > config["task_soft_time_limit"]


def test_beat_is_one_replica_recreated() -> None:
    assert BEAT["spec"]["replicas"] == 1
    assert BEAT["spec"]["strategy"] == {"type": "Recreate"}
    beats = [d for d in k8s_kind("Deployment") if "beat" in container(d)["command"][3:4]]
    assert beats == [BEAT]
    assert "--beat" not in container(WORKER)["command"]
    assert not any(
        o["kind"] in ("ScaledObject", "HorizontalPodAutoscaler")
        and o["spec"]["scaleTargetRef"]["name"] == BEAT["metadata"]["name"]
        for o in k8s_kind("ScaledObject") + k8s_kind("HorizontalPodAutoscaler")
    )


def test_non_root_with_the_image_uid_and_a_writable_tmp() -> None:
    users = [args for keyword, args in dockerfile_instructions() if keyword == "USER"]
    uid = int(users[-1].split(":")[0])
    for deployment in (WORKER, BEAT):
        security = pod(deployment)["securityContext"]
        assert security["runAsNonRoot"] is True
        assert security["runAsUser"] == uid
        spec = container(deployment)
        assert spec["securityContext"]["readOnlyRootFilesystem"] is True
        mounts = {m["mountPath"]: m["name"] for m in spec["volumeMounts"]}
        volumes = {v["name"]: v for v in pod(deployment)["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]]
    schedule = option_value(container(BEAT)["command"], "--schedule", "-s")
    assert schedule and schedule.startswith("/tmp/")


def test_metrics_port_agrees_everywhere() -> None:
    port = int(CONFIG[setting_name("metrics_port")])
    ports = {p["name"]: p["containerPort"] for p in container(WORKER)["ports"]}
    annotations = WORKER["spec"]["template"]["metadata"]["annotations"]
    assert ports["metrics"] == port
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == port
    assert annotations["prometheus.io/path"] == "/metrics"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        check = container(WORKER)[probe]["httpGet"]
        assert check == {"path": "/metrics", "port": "metrics"}, probe


def test_worker_resources_cover_the_measured_peak() -> None:
    resources = container(WORKER)["resources"]
    peak = measured_worker_peak_mib()
    concurrency = int(option_value(container(WORKER)["command"], "--concurrency", "-c") or 0)
    assert concurrency == 2, "bench/RESULTS.md measured a --concurrency 2 worker"
    assert quantity_mib(resources["requests"]["memory"]) >= peak
    assert quantity_mib(resources["limits"]["memory"]) > quantity_mib(
        resources["requests"]["memory"]
    )
    assert "cpu" in resources["requests"]


def _kombu_lists(queue: str) -> set[str]:
    """The Redis lists a worker consuming `queue` pops (kombu adds one per priority step)."""
    from kombu.transport.redis import PRIORITY_STEPS, Channel

    options = celery_config(Settings(_env_file=None))["broker_transport_options"]  # type: ignore[call-arg]
    steps = options.get("priority_steps", PRIORITY_STEPS)
    return {f"{queue}{Channel.sep}{step}" if step else queue for step in steps}


def test_keda_scales_workers_on_the_celery_queue_lists() -> None:
    spec = SCALER["spec"]
    assert spec["scaleTargetRef"]["name"] == WORKER["metadata"]["name"]
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    queue = setting(WORKER, "queue")
    # The worker consumes the default queue only: no -Q, no other queues configured.
    config = celery_config(Settings(_env_file=None, queue=queue))  # type: ignore[call-arg]
    assert config["task_default_queue"] == queue
    assert "task_queues" not in config and "task_routes" not in config
    assert option_value(container(WORKER)["command"], "-Q", "--queues") is None
    lists = {t["metadata"]["listName"] for t in spec["triggers"]}
    assert {t["type"] for t in spec["triggers"]} == {"redis"}
    assert lists == _kombu_lists(queue)


def test_keda_reads_the_redis_wanedit_uses() -> None:
    url = urlsplit(SECRET[setting_name("redis_url")])
    for trigger in SCALER["spec"]["triggers"]:
        meta = trigger["metadata"]
        assert meta["address"] == f"{url.hostname}:{url.port or 6379}"
        assert meta["databaseIndex"] == (url.path.strip("/") or "0")
        assert meta["enableTLS"] == str(url.scheme == "rediss").lower()
        auth = k8s_object("TriggerAuthentication", trigger["authenticationRef"]["name"])
        (ref,) = auth["spec"]["secretTargetRef"]
        assert ref["parameter"] == "password"
        password = k8s_object("Secret", ref["name"])["stringData"][ref["key"]]
        assert password == url.password


def test_the_disruption_budget_covers_workers_and_never_blocks_a_drain() -> None:
    (budget,) = k8s_kind("PodDisruptionBudget")
    labels = WORKER["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert budget["spec"]["minAvailable"] < SCALER["spec"]["minReplicaCount"]


def test_images_are_the_one_kustomize_replaces_tagged_with_the_version() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    (image,) = kustomization["images"]
    for deployment in k8s_kind("Deployment"):
        assert container(deployment)["image"] == image["name"]
    assert image["newTag"] == pyproject()["project"]["version"]
