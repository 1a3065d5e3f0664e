"""One import name, dependencies one way: what `lint-imports` checks must cover the whole tree,
and no file (code, docs, deploy files) may still use the old top-level names."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[2]
OLD = "config|producers|workers|sandbox"
# An import, a Celery app or a `python -m` of a top-level name that is no longer installed.
STALE = re.compile(
    rf"^\s*(from|import) ({OLD})\b(?!\.?\w*\s*[=(])|-A\"?,? *\"?({OLD})\b(?!\.)"
    rf"|-m ({OLD})\b|\"({OLD})\.\w+:",
    re.M,
)


def _contracts() -> list[dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return list(config["contracts"])


def test_every_core_module_is_under_the_forbidden_contract() -> None:
    (core,) = [c for c in _contracts() if c["type"] == "forbidden"]
    modules = {
        f"wanedit.{path.stem}"
        for path in (ROOT / "wanedit").glob("*.py")
        if path.name != "__init__.py"
    }
    assert set(core["source_modules"]) == modules  # type: ignore[arg-type]


def test_every_subpackage_is_a_layer() -> None:
    (layers,) = [c for c in _contracts() if c["type"] == "layers"]
    named = {
        name.strip()
        for layer in layers["layers"]
        for name in str(layer).split("|")  # type: ignore[attr-defined]
    }
    packages = {
        f"wanedit.{path.name}"
        for path in (ROOT / "wanedit").iterdir()
        if path.is_dir() and (path / "__init__.py").exists()
    }
    assert packages == named


def test_no_file_uses_the_old_top_level_names() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    stale = []
    for name in tracked:
        path = ROOT / name
        if path.is_symlink() or path.suffix not in {".py", ".md", ".yml", ".yaml", ".toml", ""}:
            continue
        if path == Path(__file__) or not path.is_file():
            continue
        for match in STALE.finditer(path.read_text(errors="replace")):
            line = path.read_text(errors="replace")[: match.start()].count("\n") + 1
            stale.append(f"{name}:{line}: {match.group(0).strip()}")
    assert stale == []


def test_the_pattern_catches_what_it_is_for() -> None:
    for text in (
        "from config.settings import x",
        "import workers",
        'command: ["celery", "-A", "workers", "worker"]',
        "celery -A workers beat",
        "python -m sandbox --port 1",
        'wanedit = "producers.cli:main"',
    ):
        assert STALE.search(text), text
    for text in (
        "from wanedit.config.settings import x",
        'command: ["celery", "-A", "wanedit.workers", "worker"]',
        "celery -A bench.naive worker",
        "the workers import the config",
    ):
        assert not STALE.search(text), text
