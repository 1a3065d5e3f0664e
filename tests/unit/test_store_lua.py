"""The Lua files: each is a script loaded by name, and the wheel ships them."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from wanedit.store.scripts import NAMES, source

ROOT = Path(__file__).parents[2]
LUA = ROOT / "wanedit" / "store" / "lua"


def test_every_lua_file_is_a_script_or_the_clock():
    assert {path.stem for path in LUA.glob("*.lua")} == {*NAMES, "now"}


@pytest.mark.parametrize("name", NAMES)
def test_each_script_loads_by_name(name: str) -> None:
    clocked = name in ("admit", "claim", "reserve")
    assert source(name).endswith((LUA / f"{name}.lua").read_text())
    assert ("redis.call('TIME')" in source(name)) is clocked


@pytest.mark.parametrize("name", NAMES)
def test_no_script_spells_a_status(name: str) -> None:
    # Statuses come from the Status enum as arguments.
    assert "'queued'" not in source(name) and "'running'" not in source(name)


def test_the_wheel_ships_the_lua_files():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "lua/*.lua" in config["package-data"]["wanedit.store"]
