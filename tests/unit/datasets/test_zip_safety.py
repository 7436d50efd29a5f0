"""ZIP safety: every unsafe archive is refused with a 400 before anything is decompressed or written."""

from __future__ import annotations

import random
import struct
import zipfile
from pathlib import Path

import pytest

from stratus.datasets.formats import DatasetFormat
from stratus.datasets.ingest import IngestLimits, analyse, read_rows, validate_zip
from stratus.errors import InvalidInput

PREFIX = "File must be a valid ZIP archive: "


def make_zip(
    path: Path, entries: dict[str | zipfile.ZipInfo, bytes], method: int = zipfile.ZIP_DEFLATED
) -> Path:
    with zipfile.ZipFile(path, "w", method) as archive:
        for member, data in entries.items():
            archive.writestr(member, data)
    return path


def symlink(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix, so the mode bits in external_attr mean what they say
    info.external_attr = 0o120777 << 16  # S_IFLNK | rwxrwxrwx
    return info


def refusal(path: Path, limits: IngestLimits | None = None) -> str:
    """The 400's message from validate_zip, checking analyse and read_rows refuse the file the same way."""
    limits = limits or IngestLimits()
    with pytest.raises(InvalidInput) as caught:
        validate_zip(path, limits)
    for call in (
        lambda: analyse(path, DatasetFormat.ZIP, limits=limits),
        lambda: read_rows(path, DatasetFormat.ZIP, offset=0, limit=10, limits=limits),
    ):
        with pytest.raises(InvalidInput) as again:
            call()
        assert again.value.message == caught.value.message
    assert caught.value.message.startswith(PREFIX)
    return caught.value.message.removeprefix(PREFIX)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory: anything extracted relative to it would show up in it."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def assert_nothing_written(tmp_path: Path, *archives: Path) -> None:
    assert sorted(p for p in tmp_path.rglob("*") if p.name != "work") == sorted(archives)


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        ("../evil.csv", "entry '../evil.csv' leaves the archive's folder (..)"),
        ("data/../../evil.csv", "entry 'data/../../evil.csv' leaves the archive's folder (..)"),
        ("..\\..\\evil.csv", "entry '..\\\\..\\\\evil.csv' leaves the archive's folder (..)"),
        ("/etc/passwd", "entry '/etc/passwd' has an absolute path"),
        ("C:/Windows/evil.csv", "entry 'C:/Windows/evil.csv' has an absolute path"),
        ("C:\\evil.csv", "entry 'C:\\\\evil.csv' has an absolute path"),
    ],
)
def test_path_traversal_and_absolute_paths(tmp_path: Path, workdir: Path, member: str, reason: str) -> None:
    # GIVEN an otherwise usable archive with one entry that would escape on extraction
    path = make_zip(tmp_path / "slip.zip", {"ok.csv": b"a\n1\n", member: b"a\n1\n"})
    # THEN it is refused by name, and nothing appears anywhere
    assert refusal(path) == reason
    assert_nothing_written(tmp_path, path)
    assert not (tmp_path / "evil.csv").exists()


def test_symlink_entries(tmp_path: Path, workdir: Path) -> None:
    path = make_zip(tmp_path / "link.zip", {"ok.csv": b"a\n1\n", symlink("data/passwd.csv"): b"/etc/passwd"})
    assert refusal(path) == "entry 'data/passwd.csv' is a symbolic link"
    assert_nothing_written(tmp_path, path)


def test_decompression_bomb_by_ratio(tmp_path: Path, workdir: Path) -> None:
    # GIVEN one entry of 50 MB of zeros, which deflates about 1000 to 1
    path = make_zip(tmp_path / "bomb.zip", {"zeros.csv": b"0" * (50 * 1024 * 1024)})
    assert path.stat().st_size < 200 * 1024
    message = refusal(path)
    assert message.startswith("entry 'zeros.csv' expands ")
    assert "at most 100 is allowed" in message
    assert_nothing_written(tmp_path, path)


def test_bomb_is_judged_without_decompressing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_zip(tmp_path / "bomb.zip", {"zeros.csv": b"0" * (20 * 1024 * 1024)})

    def no_reading(*args: object, **kwargs: object) -> None:
        raise AssertionError("validate_zip must not open a member")

    monkeypatch.setattr(zipfile.ZipFile, "open", no_reading)
    with pytest.raises(InvalidInput, match="decompression bomb"):
        validate_zip(path, IngestLimits())


def test_total_uncompressed_size_cap(tmp_path: Path, workdir: Path) -> None:
    path = make_zip(tmp_path / "big.zip", {"a.csv": b"x" * 600, "b.csv": b"y" * 600}, zipfile.ZIP_STORED)
    limits = IngestLimits(max_zip_uncompressed_bytes=1000)
    assert refusal(path, limits) == "it expands to more than 1000 bytes (a decompression bomb?)"
    assert_nothing_written(tmp_path, path)


def test_too_many_entries(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "many.zip", {f"{i}.csv": b"a\n1\n" for i in range(6)})
    assert refusal(path, IngestLimits(max_zip_entries=5)) == "it has 6 entries; at most 5 are allowed"


def test_encrypted_entries(tmp_path: Path) -> None:
    # GIVEN an archive whose central directory marks its entry encrypted (zipfile cannot write one)
    path = make_zip(tmp_path / "locked.zip", {"a.csv": b"a\n1\n"})
    data = bytearray(path.read_bytes())
    flags_at = data.index(b"PK\x01\x02") + 8
    data[flags_at] |= 0x1
    path.write_bytes(bytes(data))
    assert refusal(path) == "entry 'a.csv' is encrypted"


def test_entry_that_lies_about_its_size(tmp_path: Path, workdir: Path) -> None:
    # GIVEN a 10 MB entry whose central directory claims 10 bytes (so the ratio check passes)
    path = make_zip(tmp_path / "liar.zip", {"a.csv": b"a\n" + b"1\n" * (5 * 1024 * 1024)})
    data = bytearray(path.read_bytes())
    size_at = data.index(b"PK\x01\x02") + 24
    data[size_at : size_at + 4] = struct.pack("<I", 10)
    path.write_bytes(bytes(data))
    assert len(validate_zip(path, IngestLimits())) == 1
    # THEN reading stops at the claimed size, the checksum gives the lie away, and it is a 400
    with pytest.raises(InvalidInput, match=f"^{PREFIX}Bad CRC-32"):
        analyse(path, DatasetFormat.ZIP)
    assert_nothing_written(tmp_path, path)


@pytest.mark.parametrize(
    "data",
    [b"PK\x03\x04 truncated", b"PK\x05\x06" + b"\x00" * 4, b"not a zip at all"],
)
def test_damaged_archives(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "bad.zip"
    path.write_bytes(data)
    assert refusal(path) == "File is not a zip file"


def test_small_compressible_members_are_not_bombs(tmp_path: Path) -> None:
    # GIVEN a 500 KB CSV of one repeated value: far past 100:1, but below the size where ratios count
    path = make_zip(tmp_path / "ok.zip", {"a.csv": b"a\n" + b"0\n" * 250_000})
    infos = validate_zip(path, IngestLimits())
    assert infos[0].file_size / infos[0].compress_size > 100
    assert analyse(path, DatasetFormat.ZIP).row_count == 250_000


def test_safe_archive_lists_its_entries(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "ok.zip", {"cats/": b"", "cats/1.png": b"\x89PNG\r\n\x1a\n"})
    assert [i.filename for i in validate_zip(path, IngestLimits())] == ["cats/", "cats/1.png"]


def report_archive(path: Path) -> Path:
    """The archive from the reliability report: 500 members of 1,000,000 bytes of repeated CSV rows."""
    member = (b"a,b\n" + b"1,2\n" * 250_000)[:1_000_000]
    return make_zip(path, {f"part{i:03}.csv": member for i in range(500)})


def test_many_members_just_under_the_ratio_size_are_judged_as_one_archive(
    tmp_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN ~0.5 MB that expands to 500 MB, in members each too small for the per-member ratio check
    path = report_archive(tmp_path / "bomb.zip")
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
    assert all(i.file_size < IngestLimits().ratio_min_bytes for i in infos)
    packed = sum(i.compress_size for i in infos)
    assert path.stat().st_size < 600 * 1024

    def no_reading(*args: object, **kwargs: object) -> None:
        raise AssertionError("a bomb must be refused before a member is opened")

    # WHEN it is checked, analysed or read THEN it is refused from the central directory alone
    monkeypatch.setattr(zipfile.ZipFile, "open", no_reading)
    assert refusal(path) == (
        f"it expands {500_000_000 / packed:.0f} times (500000000 bytes from {packed}); "
        "at most 100 is allowed (a decompression bomb?)"
    )
    assert_nothing_written(tmp_path, path)


def test_the_archive_ratio_is_only_judged_once_it_expands_past_the_ratio_size(tmp_path: Path) -> None:
    # GIVEN 200 small members of repeated rows: 1000:1 each, but under 1 MiB in all
    member = b"a,b\n" + b"1,2\n" * 1000
    path = make_zip(tmp_path / "small.zip", {f"{i:03}.csv": member for i in range(200)})
    infos = validate_zip(path, IngestLimits())
    assert sum(i.file_size for i in infos) / sum(i.compress_size for i in infos) > 100
    assert analyse(path, DatasetFormat.ZIP).row_count == 200 * 1000


def test_a_large_legitimate_multi_file_archive_is_not_a_bomb(tmp_path: Path) -> None:
    # GIVEN three CSVs of varied values, 3 MB in all: they compress a few times, as real data does
    rng = random.Random(6)
    members = {
        f"part{m}.csv": (
            "id,score,region\n"
            + "".join(f"{m * 40_000 + i},{rng.random():.6f},{rng.choice('NSEW')}\n" for i in range(40_000))
        ).encode()
        for m in range(3)
    }
    path = make_zip(tmp_path / "ok.zip", members)
    assert sum(map(len, members.values())) > IngestLimits().ratio_min_bytes
    summary = analyse(path, DatasetFormat.ZIP)
    assert (summary.row_count, summary.entries, summary.headers) == (120_000, 3, ["id", "score", "region"])
