"""deploy/Dockerfile, read and checked against pyproject.toml and the code (no Docker here)."""

from __future__ import annotations

import json
import re

from tests.deploy_files import ROOT, command_problems, dockerfile_instructions, pyproject

INSTRUCTIONS = dockerfile_instructions()


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, args in INSTRUCTIONS:
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, args))
    return result


def final(keyword: str) -> list[str]:
    return [args for kw, args in stages()[-1] if kw == keyword]


def test_multi_stage_on_python_3_11_slim() -> None:
    args = dict(a.split("=", 1) for kw, a in INSTRUCTIONS if kw == "ARG" and "=" in a)
    bases = [a.split()[0] for kw, a in INSTRUCTIONS if kw == "FROM"]
    resolved = [re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base) for base in bases]
    assert len(resolved) >= 2
    assert set(resolved) == {"python:3.11-slim"}
    assert pyproject()["project"]["requires-python"] == ">=3.11"
    assert any(kw == "COPY" and a.startswith("--from=") for kw, a in stages()[-1])


def test_runs_as_a_fixed_non_root_uid() -> None:
    (user,) = final("USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000, f"USER {user}: give a numeric non-root uid"
    created = " ".join(a for kw, a in stages()[-1] if kw == "RUN")
    assert f"--uid {uid}" in created


def test_the_default_command_is_a_celery_worker() -> None:
    (cmd,) = final("CMD")
    argv = json.loads(cmd)
    assert argv[:4] == ["celery", "-A", "wanedit.workers", "worker"]
    assert command_problems(argv, "CMD") == []


def test_healthcheck_and_stop_signal() -> None:
    (check,) = final("HEALTHCHECK")
    argv = json.loads(check[check.index("CMD") + 3 :].strip())
    assert command_problems(argv, "HEALTHCHECK") == []
    # Celery's warm and soft shutdowns start on SIGTERM (with REMAP_SIGTERM=SIGQUIT: the soft one).
    assert final("STOPSIGNAL") == ["SIGTERM"]


def test_copies_every_package_pyproject_installs() -> None:
    include = pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    assert include == ["wanedit", "wanedit.*"], "one import name"
    # wanedit/ links to the top-level folders it packages: each must be in the image too.
    linked = {
        str(path.resolve().relative_to(ROOT))
        for path in (ROOT / "wanedit").iterdir()
        if path.is_symlink()
    }
    assert linked == {"config", "doctor", "producers", "sandbox", "workers"}
    copied = {
        source
        for kw, args in INSTRUCTIONS
        if kw == "COPY" and not args.startswith("--from=")
        for source in args.split()[:-1]
    }
    needed = {"wanedit"} | linked | {"pyproject.toml", pyproject()["project"]["readme"]}
    assert needed <= copied, f"not copied into the image: {sorted(needed - copied)}"
    for package in linked | {"wanedit"}:
        assert (ROOT / package / "__init__.py").exists(), package


def test_only_runtime_dependencies_are_installed() -> None:
    runs = " ".join(a for kw, a in INSTRUCTIONS if kw == "RUN")
    for extra in ("dev", "local", "bench"):
        assert f"[{extra}" not in runs and f"{extra}]" not in runs, extra
    defaults = dict(a.split("=", 1) for kw, a in INSTRUCTIONS if kw == "ARG" and "=" in a)
    assert defaults.get("EXTRAS") == '""'
    # Flower, for the compose service that builds with EXTRAS=flower, is an extra of its own.
    assert "flower" in pyproject()["project"]["optional-dependencies"]


def test_the_build_context_leaves_out_what_the_image_does_not_need() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".venv", ".env", ".git", "tests"} <= ignored
