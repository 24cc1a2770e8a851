"""The device matrix end to end on the toy course with a CUDA-parametrized test (no GPU here):
CPU grading defers the CUDA test, `grade --device cuda` writes a partial result with only the
CUDA tests, `merge` combines the two, and `report` says what is still deferred."""
import json
import shutil
from pathlib import Path

import pytest

from ..conftest import TOY_COURSE, run_cli

DEVICE_TEST = '''

def test_device_double(student, device):
    x = np.ones(3)
    assert_close(student.double(x), 2 * x, f"double on {device}")
'''


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("devices") / "course"
    shutil.copytree(TOY_COURSE, root)
    config = root / "grading.yaml"
    text = config.read_text().replace("    preload: [numpy]\n", "    preload: [numpy]\n    devices: [cpu, cuda]\n")
    text = text.replace('''      - {group: "Task 3: apply"''', '''      - {group: "Task 4: on every device", match: ["test_hidden.py::test_device_*"], points: 10}
      - {group: "Task 3: apply"''')
    config.write_text(text)
    suite = root / "tests" / "grading" / "a99_toy" / "test_hidden.py"
    suite.write_text(suite.read_text() + DEVICE_TEST)
    return root


def result(folder: Path, name: str = "good") -> dict:
    return json.loads((folder / name / "result.json").read_text())


def statuses(data: dict) -> dict:
    return {t["id"]: t["status"] for t in data["tests"] if "test_device" in t["id"]}


def test_cpu_then_cuda_part_then_merge_then_report(course, tmp_path):
    config = str(course / "grading.yaml")
    cpu, gpu, merged = tmp_path / "cpu", tmp_path / "gpu", tmp_path / "merged"
    graded = run_cli("--config", config, "grade", "a99", f"good={course / 'subs' / 'good'}", "--out", str(cpu), "-j", "1")
    assert graded.returncode == 0, graded.stdout + graded.stderr
    assert statuses(result(cpu)) == {"test_hidden.py::test_device_double[cpu]": "passed",
                                     "test_hidden.py::test_device_double[cuda]": "deferred"}
    assert result(cpu)["score"] == 25 and result(cpu)["part"] == ""

    part = run_cli("--config", config, "grade", "a99", f"good={course / 'subs' / 'good'}", "--out", str(gpu),
                   "--device", "cuda", "-j", "1")
    assert part.returncode == 0, part.stdout + part.stderr
    partial = result(gpu)
    assert partial["part"] == "cuda" and [t["id"] for t in partial["tests"]] == ["test_hidden.py::test_device_double[cuda]"]
    assert partial["device"].startswith("cuda") and partial["suite_version"] == result(cpu)["suite_version"]
    assert partial["tests"][0]["status"] == "deferred"   # no CUDA on this machine: deferred, never failed

    combined = run_cli("merge", str(cpu), str(gpu), "--out", str(merged))
    assert combined.returncode == 0, combined.stderr
    assert "still deferred (grade them with --device cuda and merge again): good" in combined.stdout
    data = result(merged)
    assert [p["part"] for p in data["parts"]] == ["cpu", "cuda"] and data["score"] == 25
    said = run_cli("--config", config, "report", "a99", str(merged))
    assert said.returncode == 0 and "deferred tests (a device this machine lacks" in said.stdout, said.stdout + said.stderr


def test_device_cuda_on_an_assignment_without_cuda_tests_is_refused(tmp_path):
    refused = run_cli("--config", str(TOY_COURSE / "grading.yaml"), "grade", "a99",
                      f"good={TOY_COURSE / 'subs' / 'good'}", "--out", str(tmp_path / "out"), "--device", "cuda")
    assert refused.returncode == 2 and "has no tests parametrized for cuda" in refused.stderr, refused.stderr
