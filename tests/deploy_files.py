"""The deployment files, parsed, and the code they must agree with.

There is no Docker engine or cluster in CI, so docker-compose.yml, deploy/Dockerfile and
deploy/k8s/ are kept honest by reading them: every command they run must resolve to a real
command with real options, every environment name they set must be a real setting.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import shlex
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import click
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
K8S = ROOT / "deploy" / "k8s"
ENV_EXAMPLE = ROOT / ".env.example"

# Read by boto3 and Celery/billiard, not by wanedit's settings; anything else must be a setting.
EXTERNAL_ENV = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "REMAP_SIGTERM",
    "FLOWER_BASIC_AUTH",
}


# --- the code's side --------------------------------------------------------------------------


@cache
def setting_names() -> frozenset[str]:
    """Every environment name wanedit.config.settings.Settings reads (upper-case aliases)."""
    from wanedit.config.settings import Settings

    names = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        choices = getattr(alias, "choices", [alias])
        names.update(str(choice) for choice in choices if str(choice).isupper())
    return frozenset(names)


def setting_name(field: str) -> str:
    from wanedit.config.settings import Settings

    return str(Settings.model_fields[field].validation_alias.choices[0])  # type: ignore[union-attr]


@cache
def cli_envvars() -> frozenset[str]:
    """Environment names the `wanedit` commands read through click (e.g. the sandbox's keys)."""
    from wanedit.producers.cli import main

    names = set()
    with click.Context(main) as ctx:
        commands = [main.get_command(ctx, name) for name in main.list_commands(ctx)]
    for command in commands:
        for param in command.params if command else ():
            envvar = getattr(param, "envvar", None)
            if isinstance(envvar, str):
                names.add(envvar)
            elif envvar:
                names.update(envvar)
    return frozenset(names)


def unknown_env(names: set[str] | list[str]) -> list[str]:
    known = setting_names() | cli_envvars() | EXTERNAL_ENV
    return sorted(name for name in names if name not in known)


@cache
def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def optional_distributions() -> set[str]:
    """Distributions named by pyproject's extras (their celery subcommands may be absent here)."""
    names = set()
    for requirements in pyproject()["project"]["optional-dependencies"].values():
        for requirement in requirements:
            names.add(re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0].lower())
    return names


def _options(command: click.Command) -> set[str]:
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def _bad_options(command: click.Command, args: list[str], where: str) -> list[str]:
    known = _options(command) | {"--help"}
    return [
        f"{where}: {command.name} has no option {arg.split('=', 1)[0]}"
        for arg in args
        if arg.startswith("-") and arg.split("=", 1)[0] not in known
    ]


def _celery(args: list[str], where: str) -> list[str]:
    from celery.app.utils import find_app
    from celery.bin.celery import celery as group

    app_name, rest = None, []
    tokens = iter(args)
    for token in tokens:
        if token in ("-A", "--app"):
            app_name = next(tokens, None)
        elif token.startswith("--app="):
            app_name = token.split("=", 1)[1]
        else:
            rest.append(token)
    if app_name is None:
        return [f"{where}: celery without -A"]
    try:
        find_app(app_name)
    except Exception as exc:
        return [f"{where}: celery -A {app_name}: {type(exc).__name__}: {exc}"]
    if not rest:
        return [f"{where}: celery without a subcommand"]
    name, options = rest[0], rest[1:]
    if name in group.commands:
        return _bad_options(group.commands[name], options, where)
    if name in optional_distributions():
        return []  # a plugin from an extra (flower) that the dev install does not include
    return [f"{where}: celery has no subcommand {name!r}"]


def _wanedit(args: list[str], where: str) -> list[str]:
    from wanedit.producers.cli import main

    if not args:
        return []
    if args[0].startswith("-"):
        return _bad_options(main, args, where)
    # Commands come from the group itself and from the `wanedit.commands` entry points.
    with click.Context(main) as ctx:
        command = main.get_command(ctx, args[0])
    if command is None:
        return [f"{where}: wanedit has no command {args[0]!r}"]
    return _bad_options(command, args[1:], where)


def _python_code(code: str, where: str) -> list[str]:
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        return [f"{where}: python -c does not parse: {exc}"]
    problems = []
    for node in ast.walk(tree):
        modules = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module]
        for module in modules:
            if importlib.util.find_spec(module) is None:
                problems.append(f"{where}: python -c imports {module}, which does not exist")
    return problems


def _python(args: list[str], where: str) -> list[str]:
    if args[:1] == ["-c"] and len(args) >= 2:
        return _python_code(args[1], where)
    if args[:1] == ["-m"] and len(args) >= 2:
        module, rest = args[1], args[2:]
        if importlib.util.find_spec(module) is None:
            return [f"{where}: python -m {module}: no such module"]
        if module == "wanedit.workers.health":
            from wanedit.workers.health import UsageError, parse

            try:
                parse(rest)
            except UsageError as exc:
                return [f"{where}: python -m wanedit.workers.health {shlex.join(rest)}: {exc}"]
        return []
    return [f"{where}: python {shlex.join(args)}: expected -c CODE or -m MODULE"]


def command_problems(argv: list[str], where: str) -> list[str]:
    """Why `argv`, run in the wanedit image, would not start the intended program ([] if fine)."""
    if not argv:
        return [f"{where}: empty command"]
    program, args = argv[0], argv[1:]
    if program == "celery":
        return _celery(args, where)
    if program == "wanedit":
        return _wanedit(args, where)
    if program == "python":
        return _python(args, where)
    return [f"{where}: {program!r} is not a program of the wanedit image"]


def celery_subcommand(argv: list[str]) -> str | None:
    """`worker` for `celery -A wanedit.workers worker ...`; None for anything else."""
    if not argv or argv[0] != "celery":
        return None
    rest, skip = [], False
    for token in argv[1:]:
        if skip:
            skip = False
        elif token in ("-A", "--app"):
            skip = True
        elif not token.startswith("--app="):
            rest.append(token)
    return rest[0] if rest else None


def option_value(argv: list[str], *names: str) -> str | None:
    """The value of `--name value` or `--name=value` in argv."""
    for index, token in enumerate(argv):
        for name in names:
            if token == name and index + 1 < len(argv):
                return argv[index + 1]
            if token.startswith(name + "="):
                return token.split("=", 1)[1]
    return None


# --- the files' side --------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?::?-(?P<default>[^}]*))?\}")


def compose_default(value: object) -> str:
    """A compose value with every ${NAME:-default} replaced by its default (no .env)."""
    return _INTERPOLATION.sub(lambda m: m.group("default") or "", str(value))


def compose_argv(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return shlex.split(value)
    return [str(item) for item in value]


def k8s_documents() -> dict[str, list[dict[str, Any]]]:
    """Every manifest file of deploy/k8s/ (but the kustomization), parsed."""
    return {
        path.name: [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        for path in sorted(K8S.glob("*.yaml"))
        if path.name != "kustomization.yaml"
    }


def k8s_objects() -> list[dict[str, Any]]:
    return [doc for docs in k8s_documents().values() for doc in docs]


def k8s_object(kind: str, name: str) -> dict[str, Any]:
    found = [
        obj for obj in k8s_objects() if obj["kind"] == kind and obj["metadata"]["name"] == name
    ]
    assert len(found) == 1, f"deploy/k8s/ should have one {kind} {name!r}, found {len(found)}"
    return found[0]


def k8s_kind(kind: str) -> list[dict[str, Any]]:
    return [obj for obj in k8s_objects() if obj["kind"] == kind]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of deploy/Dockerfile, continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    buffer = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            buffer += stripped[:-1] + " "
            continue
        buffer += stripped
        keyword, _, rest = buffer.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        buffer = ""
    return instructions


def measured_worker_peak_mib() -> float:
    """wanedit's 'worker peak memory' from bench/RESULTS.md (the last `make bench`)."""
    text = (ROOT / "bench" / "RESULTS.md").read_text()
    match = re.search(r"^\| worker peak memory[^|]*\| ([0-9.]+) \|", text, re.MULTILINE)
    assert match, "bench/RESULTS.md has no 'worker peak memory' row"
    return float(match.group(1))


def quantity_mib(value: str) -> float:
    """A Kubernetes memory quantity in MiB."""
    for unit, factor in {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}.items():
        if value.endswith(unit):
            return float(value[: -len(unit)]) * factor
    raise AssertionError(f"memory {value!r}: give it in Ki, Mi or Gi")
