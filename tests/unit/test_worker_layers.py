"""The workers' layers: policies are pure, steps know no Celery, one module sends messages."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

WORKERS = Path(__file__).resolve().parents[2] / "workers"
IO_LIBRARIES = {"celery", "redis", "boto3", "botocore", "requests", "urllib3"}


def imported(path: Path) -> set[str]:
    """Top-level names of every module `path` imports, at any depth of the file."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def sources(folder: str) -> list[Path]:
    return sorted((WORKERS / folder).glob("*.py"))


@pytest.mark.parametrize("path", sources("policy"), ids=lambda p: p.name)
def test_policies_import_no_io_library(path):
    assert {name.split(".")[0] for name in imported(path)} & IO_LIBRARIES == set()


@pytest.mark.parametrize("path", sources("steps"), ids=lambda p: p.name)
def test_steps_import_no_celery(path):
    names = imported(path)
    assert not {name for name in names if name.split(".")[0] == "celery"}
    assert "wanedit.workers.celery_app" not in names
    assert "wanedit.workers.tasks" not in names


@pytest.mark.parametrize("path", sorted(WORKERS.rglob("*.py")), ids=lambda p: p.name)
def test_only_next_sends_messages(path):
    text = path.read_text()
    if path.name == "next.py":
        return
    assert "apply_async" not in text
    assert "send_task" not in text


@pytest.mark.parametrize("path", sorted(WORKERS.rglob("*.py")), ids=lambda p: p.name)
def test_modules_stay_small(path):
    assert len(path.read_text().splitlines()) <= 400
