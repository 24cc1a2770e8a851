"""Intake: what is accepted, and every refusal as the one sentence the submitter reads.

Every archive here is a real .zip or .tar.gz written into tmp_path. A refusal is an
IntakeError naming the submission and the offending member, and nothing may be written
outside the staging folder.
"""
import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from autograder.course.reader import load_course
from autograder.errors import IntakeError
from autograder.pipeline import intake
from autograder.pipeline.intake import MAX_FILES, MAX_TOTAL_BYTES, stage_submission

from ..conftest import ROOT

A01 = load_course(ROOT / "grading.yaml").assignment("a01")
MODULE = A01.module                     # linear_models.py
CODE = b"import numpy as np\n"


def write_zip(path: Path, members: list) -> Path:
    """members: (name or ZipInfo, bytes)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as bundle:
        for name, data in members:
            bundle.writestr(name, data)
    return path


def tar_member(name: str, data: bytes | None = None, kind: bytes = tarfile.REGTYPE, link: str = ""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    if data is not None:
        info.size = len(data)
    return info, (io.BytesIO(data) if data is not None else None)


def write_tar(path: Path, members: list) -> Path:
    with tarfile.open(path, "w:gz", compresslevel=1) as bundle:
        for info, data in members:
            bundle.addfile(info, data)
    return path


def stage(source: Path, tmp_path: Path):
    return stage_submission(source, A01, tmp_path / "staging")


def refusal(source: Path, tmp_path: Path) -> str:
    with pytest.raises(IntakeError) as failure:
        stage(source, tmp_path)
    message = str(failure.value)
    assert "\n" not in message and message.count(". ") == 0       # one sentence
    return message


def nothing_written_for(member: str, tmp_path: Path) -> bool:
    """The refused member was written nowhere under the test's folder (staging included)."""
    return not list(tmp_path.rglob(Path(member.replace("\\", "/")).name))


# --------------------------------------------------------------------------- accepted


def test_a_zip_with_the_module_at_the_top_is_staged(tmp_path):
    staged = stage(write_zip(tmp_path / "alice.zip", [(MODULE, CODE), ("helpers.py", b"x = 1\n")]), tmp_path)
    assert staged.name == "alice" and staged.notes == ()
    assert staged.module_file.read_bytes() == CODE
    assert (staged.directory / "helpers.py").is_file()


def test_a_module_one_folder_down_is_found_with_its_helpers(tmp_path):
    source = write_zip(tmp_path / "bob.zip", [("bob_a01/", b""), (f"bob_a01/{MODULE}", CODE),
                                              ("bob_a01/helpers.py", b""), ("__MACOSX/._x", b"junk")])
    staged = stage(source, tmp_path)
    assert staged.directory.name == "bob_a01" and staged.module_file.read_bytes() == CODE
    assert sorted(p.name for p in staged.directory.iterdir()) == ["helpers.py", MODULE]
    assert not any("__MACOSX" in str(p) for p in (tmp_path / "staging").rglob("*"))


def test_a_tar_gz_is_staged_like_a_zip(tmp_path):
    staged = stage(write_tar(tmp_path / "carol.tar.gz", [tar_member(f"sub/{MODULE}", CODE)]), tmp_path)
    assert staged.name == "carol" and staged.module_file.read_bytes() == CODE


def test_a_single_py_of_any_name_is_graded_as_the_module(tmp_path):
    (tmp_path / "dave.py").write_bytes(CODE)
    staged = stage(tmp_path / "dave.py", tmp_path)
    assert staged.name == "dave" and staged.module_file.name == MODULE and staged.module_file.read_bytes() == CODE


def test_a_lone_python_file_under_another_name_is_renamed_with_a_note(tmp_path):
    staged = stage(write_zip(tmp_path / "erin.zip", [("my_solution.py", CODE)]), tmp_path)
    assert staged.module_file.read_bytes() == CODE
    assert staged.notes == (f"your file my_solution.py was graded as {MODULE}",)


def test_a_folder_is_copied(tmp_path):
    folder = tmp_path / "frank"
    (folder / "__pycache__").mkdir(parents=True)
    (folder / MODULE).write_bytes(CODE)
    (folder / "__pycache__" / "x.pyc").write_bytes(b"\0")
    staged = stage(folder, tmp_path)
    assert staged.name == "frank" and [p.name for p in staged.directory.iterdir()] == [MODULE]


def test_the_same_files_give_the_same_hash(tmp_path):
    first = stage(write_zip(tmp_path / "a.zip", [(MODULE, CODE)]), tmp_path / "1")
    second = stage(write_tar(tmp_path / "a.tar.gz", [tar_member(MODULE, CODE)]), tmp_path / "2")
    assert first.sha256 == second.sha256


def test_exactly_max_files_is_accepted(tmp_path):
    members = [(MODULE, CODE)] + [(f"data/{i}.txt", b"") for i in range(MAX_FILES - 1)]
    assert stage(write_zip(tmp_path / "g.zip", members), tmp_path).module_file.is_file()


# --------------------------------------------------------------------------- members that point outside


@pytest.mark.parametrize("member", ["../evil.py", "sub/../../evil.py", "/etc/evil.py", "..\\evil.py",
                                    "C:/Users/evil.py", "c:evil.py"])
def test_a_zip_member_pointing_outside_is_refused_by_name(tmp_path, member):
    source = write_zip(tmp_path / "h.zip", [(MODULE, CODE), (member, b"pwned")])
    assert refusal(source, tmp_path) == f"h.zip: refused: the archive member {member!r} points outside the archive"
    assert nothing_written_for(member, tmp_path)


@pytest.mark.parametrize("member", ["../evil.py", "a/../../evil.py", "/tmp/evil.py"])
def test_a_tar_member_pointing_outside_is_refused_by_name(tmp_path, member):
    source = write_tar(tmp_path / "i.tar.gz", [tar_member(MODULE, CODE), tar_member(member, b"pwned")])
    assert refusal(source, tmp_path) == f"i.tar.gz: refused: the archive member {member!r} points outside the archive"
    assert nothing_written_for(member, tmp_path)


# --------------------------------------------------------------------------- links and special files


def test_a_zip_symlink_is_refused_by_name(tmp_path):
    link = zipfile.ZipInfo("helpers.py")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    source = write_zip(tmp_path / "j.zip", [(MODULE, CODE), (link, b"/etc/passwd")])
    assert refusal(source, tmp_path) == "j.zip: refused: 'helpers.py' is a symbolic link"


@pytest.mark.parametrize("kind, target", [(tarfile.SYMTYPE, "/etc/passwd"), (tarfile.SYMTYPE, "../.."),
                                          (tarfile.LNKTYPE, MODULE)])
def test_a_tar_symlink_or_hardlink_is_refused_by_name(tmp_path, kind, target):
    source = write_tar(tmp_path / "k.tar.gz", [tar_member(MODULE, CODE), tar_member("helpers.py", None, kind, target)])
    assert refusal(source, tmp_path) == "k.tar.gz: refused: 'helpers.py' is a link"


@pytest.mark.parametrize("kind", [tarfile.FIFOTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE])
def test_a_tar_device_or_fifo_is_refused_by_name(tmp_path, kind):
    source = write_tar(tmp_path / "l.tar.gz", [tar_member(MODULE, CODE), tar_member("dev/thing", None, kind)])
    assert refusal(source, tmp_path) == "l.tar.gz: refused: 'dev/thing' is not a regular file"


def test_a_symlink_inside_a_folder_is_refused_by_name(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / MODULE).write_bytes(CODE)
    (folder / "helpers.py").symlink_to("/etc/passwd")
    assert refusal(folder, tmp_path) == "m: refused: helpers.py is a symbolic link"


def test_a_symlinked_folder_inside_a_folder_is_refused_by_name(tmp_path):
    folder = tmp_path / "n"
    folder.mkdir()
    (folder / MODULE).write_bytes(CODE)
    (folder / "data").symlink_to("/etc", target_is_directory=True)
    assert refusal(folder, tmp_path) == "n: refused: data is a symbolic link"


def test_a_fifo_inside_a_folder_is_refused_by_name(tmp_path):
    folder = tmp_path / "o"
    folder.mkdir()
    (folder / MODULE).write_bytes(CODE)
    os.mkfifo(folder / "pipe")
    assert refusal(folder, tmp_path) == "o: refused: pipe is not a regular file"


def test_a_submission_that_is_itself_a_symlink_is_refused(tmp_path):
    (tmp_path / "real.py").write_bytes(CODE)
    (tmp_path / "p.py").symlink_to(tmp_path / "real.py")
    assert refusal(tmp_path / "p.py", tmp_path) == "p.py: refused: the submission is a symbolic link"


# --------------------------------------------------------------------------- size and count


def test_a_zip_that_unpacks_past_the_size_limit_is_refused(tmp_path):
    source = write_zip(tmp_path / "q.zip", [(MODULE, CODE), ("weights.npy", bytes(MAX_TOTAL_BYTES))])
    assert refusal(source, tmp_path) == f"q.zip: refused: unpacks to more than {MAX_TOTAL_BYTES >> 20} MiB"
    assert not (tmp_path / "staging" / "unpacked" / "weights.npy").exists()


def test_a_tar_that_unpacks_past_the_size_limit_is_refused(tmp_path):
    source = write_tar(tmp_path / "r.tar.gz", [tar_member(MODULE, CODE), tar_member("w.npy", bytes(MAX_TOTAL_BYTES))])
    assert refusal(source, tmp_path) == f"r.tar.gz: refused: unpacks to more than {MAX_TOTAL_BYTES >> 20} MiB"


def test_an_oversized_single_file_is_refused(tmp_path):
    with open(tmp_path / "s.py", "wb") as sparse:
        sparse.truncate(MAX_TOTAL_BYTES + 1)
    assert refusal(tmp_path / "s.py", tmp_path) == f"s.py: refused: larger than {MAX_TOTAL_BYTES >> 20} MiB"


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
def test_an_archive_with_too_many_files_is_refused(tmp_path, suffix):
    names = [MODULE] + [f"data/{i}.txt" for i in range(MAX_FILES)]
    source = (write_zip(tmp_path / f"t{suffix}", [(n, b"") for n in names]) if suffix == ".zip"
              else write_tar(tmp_path / f"t{suffix}", [tar_member(n, b"") for n in names]))
    assert refusal(source, tmp_path) == f"t{suffix}: refused: more than {MAX_FILES} files"


def test_a_folder_over_the_size_limit_is_told_so(tmp_path):
    folder = tmp_path / "u"
    folder.mkdir()
    (folder / MODULE).write_bytes(CODE)
    with open(folder / "big.bin", "wb") as sparse:
        sparse.truncate(MAX_TOTAL_BYTES + 1)
    assert refusal(folder, tmp_path) == f"u: refused: more than {MAX_TOTAL_BYTES >> 20} MiB"


def test_a_folder_with_too_many_files_is_told_so(tmp_path, monkeypatch):
    monkeypatch.setattr(intake, "MAX_FILES", 3)
    folder = tmp_path / "v"
    folder.mkdir()
    for name in (MODULE, "a.txt", "b.txt", "c.txt"):
        (folder / name).write_bytes(b"")
    assert refusal(folder, tmp_path) == "v: refused: more than 3 files"


# --------------------------------------------------------------------------- no module, bad input


def test_no_module_is_refused_naming_the_file_expected(tmp_path):
    source = write_zip(tmp_path / "w.zip", [("notes.txt", b""), ("a.py", b""), ("b.py", b"")])
    assert refusal(source, tmp_path) == f"w.zip: no {MODULE} found; the submission must contain the file {MODULE}"


def test_two_modules_are_refused_naming_both(tmp_path):
    source = write_zip(tmp_path / "x.zip", [(f"v1/{MODULE}", CODE), (f"v2/{MODULE}", CODE)])
    assert refusal(source, tmp_path) == \
        f"x.zip: several files are named {MODULE} (v1/{MODULE}, v2/{MODULE}); submit exactly one"


def test_a_deeply_nested_module_is_not_renamed_to_itself(tmp_path):
    staged = stage(write_zip(tmp_path / "y.zip", [(f"a/b/c/d/e/{MODULE}", CODE)]), tmp_path)
    assert f"your file {MODULE} was graded as {MODULE}" not in staged.notes


def test_a_deeply_nested_module_is_never_said_to_be_missing(tmp_path):
    source = write_zip(tmp_path / "y.zip", [(f"a/b/c/d/e/{MODULE}", CODE), ("a/b/c/d/e/helpers.py", b"")])
    try:
        stage(source, tmp_path)
    except IntakeError as error:
        assert f"no {MODULE} found" not in str(error)


def test_a_truncated_archive_is_refused(tmp_path):
    whole = write_tar(tmp_path / "full.tar.gz", [tar_member(MODULE, bytes(range(256)) * 400)]).read_bytes()
    (tmp_path / "z.tar.gz").write_bytes(whole[: len(whole) // 2])
    assert refusal(tmp_path / "z.tar.gz", tmp_path).startswith("z.tar.gz: not a readable tar archive (")


def test_a_file_that_is_no_tar_archive_is_refused_in_one_line(tmp_path):
    (tmp_path / "z.tar.gz").write_bytes(b"")
    assert refusal(tmp_path / "z.tar.gz", tmp_path).startswith("z.tar.gz: not a readable tar archive")


def test_a_file_that_is_no_zip_archive_is_refused(tmp_path):
    (tmp_path / "z.zip").write_bytes(b"not a zip at all")
    assert refusal(tmp_path / "z.zip", tmp_path) == "z.zip: not a readable zip archive (File is not a zip file)"


def test_an_unknown_kind_of_file_is_refused(tmp_path):
    (tmp_path / "solution.rar").write_bytes(b"Rar!")
    assert refusal(tmp_path / "solution.rar", tmp_path) == \
        "solution.rar: not a submission: give a folder, a .py, a .ipynb, a .zip or a .tar.gz"


def test_a_missing_submission_is_refused(tmp_path):
    assert refusal(tmp_path / "nobody.zip", tmp_path) == f"{tmp_path / 'nobody.zip'}: no such file or folder"
