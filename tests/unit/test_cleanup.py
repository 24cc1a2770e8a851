"""remove_tree survives whatever tree a submission leaves behind (issue 10, item 5)."""
import os

from autograder.sandbox.cleanup import remove_tree


def test_removes_deep_locked_and_odd_trees(tmp_path):
    root = tmp_path / "left"
    root.mkdir()
    path = str(root)
    for _ in range(1200):  # deeper than Python's recursion limit
        path += "/d"
        os.mkdir(path)
    locked = root / "locked"
    (locked / "inner").mkdir(parents=True)
    (locked / "inner" / "file").write_text("x")
    os.chmod(locked / "inner", 0)
    os.chmod(locked, 0)
    (root / bytes.decode(b"odd-\xff-name", "utf-8", "surrogateescape")).write_text("x")
    os.symlink("/etc", root / "link")  # a link is removed, never followed
    assert remove_tree(root) == []
    assert not root.exists() and os.path.isdir("/etc")


def test_missing_tree_and_single_file(tmp_path):
    assert remove_tree(tmp_path / "absent") == []
    (tmp_path / "f").write_text("x")
    assert remove_tree(tmp_path / "f") == [] and not (tmp_path / "f").exists()
