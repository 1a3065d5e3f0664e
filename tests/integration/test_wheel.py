"""The wheel installs into a fresh environment, offline, and imports cleanly beside a user's own
`config` package: everything it ships lives under the one name `wanedit`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("wanedit", "config", "producers", "workers", "sandbox")
SKIP = shutil.ignore_patterns(
    ".git", ".venv", ".demo", ".wanedit-dev", "build", "*.egg-info", "__pycache__", ".*_cache"
)


def non_python_files(folder: Path) -> list[str]:
    """Paths below `folder` of files that are not Python; symlinked folders are not entered."""
    found = []
    for directory, folders, files in os.walk(folder):
        folders[:] = [name for name in folders if name != "__pycache__"]
        for name in files:
            if not name.endswith((".py", ".pyc")):
                found.append(str((Path(directory) / name).relative_to(folder)))
    return found


def run(*command: str | Path, cwd: Path | None = None) -> str:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("PYTHONPATH", "PYTHONHOME")
    }
    env["PYTHONNOUSERSITE"] = "1"
    env["PIP_NO_INDEX"] = "1"  # nothing may come from the network
    result = subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the sources (the work tree gets no build/ or egg-info)."""
    source = tmp_path_factory.mktemp("source") / "wanedit"
    shutil.copytree(ROOT, source, symlinks=True, ignore=SKIP)
    out = tmp_path_factory.mktemp("dist")
    run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", out, source
    )
    (built,) = out.glob("wanedit-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A new environment with the wheel installed and, for the third-party packages only, the
    test environment's site-packages as a plain path entry."""
    home = tmp_path_factory.mktemp("venv") / "env"
    run(sys.executable, "-m", "venv", home)
    python = home / "bin" / "python"
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").strip())
    # A plain path entry: the editable install's own .pth (its import hook) is not run from it.
    (site / "test-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    probe = "import importlib.util as u; print(u.find_spec('wanedit'))"
    before = run(python, "-c", probe, cwd=home)  # not the work tree: '' is on sys.path
    assert before.strip() == "None", "the test environment's editable wanedit leaked in"
    run(python, "-m", "pip", "install", "--no-deps", "--no-index", wheel)
    yield home


def test_it_imports_beside_a_users_own_config_package(venv: Path, tmp_path: Path) -> None:
    project = tmp_path / "django-like"
    (project / "config").mkdir(parents=True)
    (project / "config" / "__init__.py").write_text("")
    (project / "config" / "settings.py").write_text(
        textwrap.dedent(
            """
            class Settings:
                DEBUG = True
                INSTALLED_APPS = ["django.contrib.admin"]
            """
        )
    )
    probe = textwrap.dedent(
        """
        import importlib
        import json
        import wanedit
        import wanedit.config.settings
        from wanedit.producers import submit_edit
        # The user's own top-level package of that name, from the working directory.
        user = importlib.import_module("config.settings")
        print(json.dumps({
            "submit_edit": submit_edit.__module__,
            "user_config": user.__file__,
            "user_settings": user.Settings.INSTALLED_APPS,
            "wanedit": wanedit.__file__,
            "wanedit_config": wanedit.config.settings.__file__,
        }))
        """
    )
    seen = json.loads(run(venv / "bin" / "python", "-c", probe, cwd=project))
    assert seen["submit_edit"].startswith("wanedit.")
    assert Path(seen["user_config"]) == project / "config" / "settings.py"
    assert seen["user_settings"] == ["django.contrib.admin"]
    assert Path(seen["wanedit"]).is_relative_to(venv)
    assert Path(seen["wanedit_config"]).is_relative_to(venv)


def test_the_console_script_runs(venv: Path, tmp_path: Path) -> None:
    assert "wanedit" in run(venv / "bin" / "wanedit", "--version", cwd=tmp_path)


def test_the_wheel_holds_one_top_level_package_and_its_data(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names} - {"wanedit"}
    assert len(tops) == 1 and tops.pop().endswith(".dist-info")
    assert not [
        name for name in names if "/tests/" in name or name.startswith(("tests/", "bench/"))
    ]
    # Every file of the packages that is not Python (Lua, templates, data) ships as well.
    data = {
        f"wanedit/{path}" if package == "wanedit" else f"wanedit/{package}/{path}"
        for package in PACKAGES
        for path in non_python_files(ROOT / package)
    }
    assert sorted(data - set(names)) == []
    assert "wanedit/config/settings.py" in names and "wanedit/sandbox/dev.py" in names
