"""Whether the sandbox uid can reach a path through ordinary permissions: the runner keeps uid 0 (and
says why) rather than switch to a uid that could not open its own Python or its work directory."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from stratus_worker.sandbox import confine

OTHER = 61999  # neither the owner of tmp_path nor in its group


@pytest.fixture
def top() -> Iterator[Path]:
    """A directory in /tmp itself (pytest's tmp_path lies under a private mode-0700 directory)."""
    path = Path(tempfile.mkdtemp(prefix="stratus-reach-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path)


def test_a_directory_under_a_private_one_is_out_of_reach(top: Path) -> None:
    private = top / "private"
    base = private / "base"
    base.mkdir(parents=True)
    private.chmod(0o700)
    base.chmod(0o711)
    [blocked] = confine.searchable_by(OTHER, OTHER, [str(base)])
    assert str(private) in blocked and "0o700" in blocked
    assert confine.readable_by(OTHER, OTHER, [str(base)])

    private.chmod(0o711)  # passable, not listable: enough to reach base, not to read a 0711 base
    assert confine.searchable_by(OTHER, OTHER, [str(base)]) == []
    [unreadable] = confine.readable_by(OTHER, OTHER, [str(base)])
    assert str(base) in unreadable


def test_the_owner_and_missing_paths(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o700)
    owner = mine.stat().st_uid
    gid = mine.stat().st_gid
    assert confine.readable_by(owner, gid, [str(mine)]) == []
    assert confine.searchable_by(OTHER, OTHER, [str(tmp_path / "absent")]) == []  # grants nothing
