"""Local image files are read only below WANEDIT_LOCAL_INPUT_DIRS, after symlinks and '..'."""

from __future__ import annotations

import pytest

from wanedit.intake.staging import local_path


@pytest.fixture
def tree(tmp_path):
    """allowed/ holds a.png and a symlink out; outside/ holds b.png and a symlink in."""
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    (allowed / "a.png").write_bytes(b"a")
    (outside / "b.png").write_bytes(b"b")
    (allowed / "escape.png").symlink_to(outside / "b.png")
    (outside / "into.png").symlink_to(allowed / "a.png")
    (tmp_path / "allowed-sibling").mkdir()
    (tmp_path / "allowed-sibling" / "c.png").write_bytes(b"c")
    return tmp_path


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("allowed/a.png", True),
        ("outside/into.png", True),  # a symlink counts where it points
        ("allowed/../allowed/a.png", True),
        ("allowed/escape.png", False),  # ...so one pointing out is refused
        ("allowed/../outside/b.png", False),
        ("outside/b.png", False),
        ("allowed-sibling/c.png", False),  # a prefix of the name is not the directory
    ],
)
def test_only_below_the_allowed_directories(tree, name, ok):
    source = str(tree / name)
    dirs = [(tree / "allowed").resolve()]
    for spelled in (source, f"file://{source}"):
        if ok:
            assert local_path(spelled, "images[0]", dirs) == (tree / "allowed" / "a.png").resolve()
        else:
            with pytest.raises(ValueError) as raised:
                local_path(spelled, "images[0]", dirs)
            message = str(raised.value)
            assert message.startswith(f"images[0]: local file {spelled}")
            assert f"is outside WANEDIT_LOCAL_INPUT_DIRS ({dirs[0]})" in message


def test_no_directories_means_no_local_files(tree):
    source = str(tree / "allowed" / "a.png")
    with pytest.raises(ValueError) as raised:
        local_path(source, "images[2]", [])
    assert str(raised.value).startswith(f"images[2]: local file {source} cannot be read: ")
    assert "WANEDIT_LOCAL_INPUT_DIRS is empty" in str(raised.value)


def test_a_file_named_by_a_person_may_lie_anywhere(tree):
    named = (tree / "outside" / "b.png").resolve()
    assert local_path(str(named), "images[0]", [], {named}) == named
    with pytest.raises(ValueError):
        local_path(str(tree / "allowed" / "a.png"), "images[0]", [], {named})


def test_the_resolved_path_is_shown_when_it_differs(tree):
    source = str(tree / "allowed" / "escape.png")
    with pytest.raises(ValueError, match=r"\(resolves to .*outside/b\.png\)"):
        local_path(source, "images[0]", [(tree / "allowed").resolve()])
