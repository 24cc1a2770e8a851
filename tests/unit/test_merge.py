"""`merge` on crafted CPU and GPU partial results: scores, statuses, both devices' reproducibility
records, the tests still deferred, the one-line refusals, and what `report` shows of the devices."""
import dataclasses
import io
import json
from pathlib import Path

import pytest

from autograder.commands import merge, report
from autograder.course import records
from autograder.pipeline.merge import MergeRefused
from autograder.pipeline.pytest_run import device_of_test
from autograder.pipeline.results import write_result

from ..conftest import ROOT

A04 = "a04_optimizers"
CPU = "cpu (AMD EPYC 7B13)"
GPU = "cuda (NVIDIA H200)"
VERSIONS_CPU = {"autograder": "0.1", "python": "3.11.2", "torch": "2.13.0+cpu", "numpy": "2.1", "hypothesis": "6", "pytest": "8"}
VERSIONS_GPU = dict(VERSIONS_CPU, torch="2.13.0")


def tcase(id, status, score, max_score, group="Task 1"):
    return records.TestResult(id=id, name=id.split("::")[-1], group=group, status=status, score=score,
                              max_score=max_score, visibility="hidden", feedback="")


def cpu_result(name="alice", **changes) -> records.SubmissionResult:
    tests = [tcase("test_hidden.py::test_sgd", "passed", 40, 40),
             tcase("test_hidden.py::test_kernel[cpu]", "passed", 20, 20, "Task 2"),
             tcase("test_hidden.py::test_kernel[cuda]", "deferred", 0, 20, "Task 2"),
             tcase("test_hidden.py::test_bf16[cuda]", "deferred", 0, 20, "Task 3")]
    result = records.SubmissionResult(
        assignment=A04, submission=name, status="graded", score=60, max_score=100, tests=tests,
        submission_hash="s" * 64, suite_hash="cpu-env-hash", suite_version="v" * 64, versions=VERSIONS_CPU,
        device=CPU, seeds={"hypothesis": "derandomize=True"}, isolation={"mode": "root"},
        late={"source": "manifest", "days_late": 1, "penalty_percent": 10.0, "penalty": 6.0, "final_score": 54.0})
    return dataclasses.replace(result, **changes)


def gpu_part(name="alice", **changes) -> records.SubmissionResult:
    tests = [tcase("test_hidden.py::test_kernel[cuda]", "passed", 20, 20, "Task 2"),
             tcase("test_hidden.py::test_bf16[cuda]", "failed", 0, 20, "Task 3")]
    result = records.SubmissionResult(
        assignment=A04, submission=name, status="graded", score=20, max_score=40, tests=tests,
        submission_hash="s" * 64, suite_hash="gpu-env-hash", suite_version="v" * 64, versions=VERSIONS_GPU,
        device=GPU, seeds={"hypothesis": "derandomize=True"}, isolation={"mode": "userns"}, part="cuda")
    return dataclasses.replace(result, **changes)


def folders(tmp_path: Path, cpu: list, gpu: list) -> tuple[str, str]:
    for result in cpu:
        write_result(result, tmp_path / "cpu" / result.submission)
    for result in gpu:
        write_result(result, tmp_path / "gpu" / result.submission)
    return str(tmp_path / "cpu"), str(tmp_path / "gpu")


def test_merge_takes_the_gpu_tests_into_the_cpu_result_with_both_devices_records(tmp_path, capsys):
    cpu, gpu = folders(tmp_path, [cpu_result(), cpu_result("bob")], [gpu_part()])
    assert merge.main(results=[cpu, gpu], out=str(tmp_path / "merged")) == 0
    merged = records.read_result(tmp_path / "merged" / "alice" / "result.json")
    assert merged.score == 80 and merged.status == "graded" and merged.max_score == 100
    assert [(t.status, t.device) for t in merged.tests] == [
        ("passed", CPU), ("passed", CPU), ("passed", GPU), ("failed", GPU)]
    assert [(p["part"], p["device"], p["tests"], p["versions"]["torch"]) for p in merged.parts] == [
        ("cpu", CPU, 4, "2.13.0+cpu"), ("cuda", GPU, 2, "2.13.0")]
    assert merged.parts[1]["isolation"] == {"mode": "userns"} and merged.parts[0]["suite_hash"] == "cpu-env-hash"
    assert merged.device == f"{CPU}, {GPU}" and merged.part == ""
    assert merged.late["penalty"] == 8.0 and merged.late["final_score"] == 72.0   # the late policy on the new score
    json.loads((tmp_path / "merged" / "alice" / "gradescope.json").read_text())
    bob = records.read_result(tmp_path / "merged" / "bob" / "result.json")
    assert bob.score == 60 and [t.status for t in bob.tests].count("deferred") == 2
    said = capsys.readouterr().out
    assert "merged 2 submission(s)" in said and "still deferred (grade them with --device cuda and merge again): bob" in said


def test_merging_again_replaces_the_gpu_part(tmp_path):
    cpu, gpu = folders(tmp_path, [cpu_result()], [gpu_part()])
    merge.main(results=[cpu, gpu], out=str(tmp_path / "merged"))
    better = gpu_part(tests=[tcase("test_hidden.py::test_bf16[cuda]", "passed", 20, 20, "Task 3")])
    write_result(better, tmp_path / "gpu2" / "alice")
    merge.main(results=[str(tmp_path / "merged"), str(tmp_path / "gpu2")], out=str(tmp_path / "merged2"))
    merged = records.read_result(tmp_path / "merged2" / "alice" / "result.json")
    assert merged.score == 100 and [p["part"] for p in merged.parts] == ["cpu", "cuda"]


def test_a_grader_error_in_the_gpu_part_flags_the_merged_result(tmp_path):
    cpu, gpu = folders(tmp_path, [cpu_result()], [gpu_part(status="grader-error", reason="grader fault: node lost")])
    merge.main(results=[cpu, gpu], out=str(tmp_path / "merged"))
    merged = records.read_result(tmp_path / "merged" / "alice" / "result.json")
    assert merged.status == "grader-error" and "node lost" in merged.reason


@pytest.mark.parametrize("change, words", [
    ({"suite_version": "w" * 64}, "different suite versions"),
    ({"submission_hash": "t" * 64}, "graded different submissions of alice"),
    ({"assignment": "a05_language_models"}, "several assignments"),
])
def test_incompatible_parts_are_refused_in_one_line_before_anything_is_written(tmp_path, change, words):
    cpu, gpu = folders(tmp_path, [cpu_result()], [gpu_part(**change)])
    with pytest.raises(MergeRefused) as refused:
        merge.main(results=[cpu, gpu], out=str(tmp_path / "merged"))
    assert words in str(refused.value) and "\n" not in str(refused.value)
    assert not (tmp_path / "merged").exists()


def test_two_whole_results_of_one_submission_are_refused(tmp_path):
    cpu, _ = folders(tmp_path, [cpu_result()], [])
    write_result(cpu_result(), tmp_path / "other" / "alice")
    with pytest.raises(MergeRefused, match="both whole results of alice"):
        merge.main(results=[cpu, str(tmp_path / "other")], out=str(tmp_path / "merged"))


def test_a_gpu_test_the_cpu_result_lacks_is_refused(tmp_path):
    stranger = gpu_part(tests=[tcase("test_hidden.py::test_other[cuda]", "passed", 20, 20)])
    cpu, gpu = folders(tmp_path, [cpu_result()], [stranger])
    with pytest.raises(MergeRefused, match="test_other.*is not in"):
        merge.main(results=[cpu, gpu], out=str(tmp_path / "merged"))


def test_the_report_says_which_device_graded_what_and_what_is_deferred(tmp_path, capsys):
    cpu, gpu = folders(tmp_path, [cpu_result(), cpu_result("bob")], [gpu_part()])
    merge.main(results=[cpu, gpu], out=str(tmp_path / "merged"))
    capsys.readouterr()
    said = io.StringIO()
    report.main(assignment="a04", results=str(tmp_path / "merged"), config=str(ROOT / "grading.yaml"), stream=said)
    said = said.getvalue()
    assert f"graded on {GPU}: 2 test(s) of 1 submission(s)" in said
    assert f"graded on {CPU}: 4 test(s) of 2 submission(s)" in said
    assert "deferred tests (a device this machine lacks; `grade --device cuda`, then `merge`): bob (2)" in said
    summary = json.loads((tmp_path / "merged" / "summary.json").read_text())
    assert summary["deferred"] == {"bob": 2} and summary["devices"][GPU]["tests"] == 2
    alice = (tmp_path / "merged" / "alice" / "feedback.md").read_text()
    assert "## Devices" in alice and f"- {GPU}: 2 test(s), 20/40 points" in alice
    assert "deferred (not graded yet" in (tmp_path / "merged" / "bob" / "feedback.md").read_text()
    assert "<h2>Devices</h2>" in (tmp_path / "merged" / "report.html").read_text()


@pytest.mark.parametrize("test_id, device", [
    ("test_public.py::test_triton[cuda]", "cuda"), ("test_hidden.py::test_x[cpu-3]", "cpu"),
    ("test_hidden.py::test_x[3-cuda]", "cuda"), ("test_hidden.py::test_x", ""), ("test_hidden.py::test_x[cudax]", ""),
])
def test_a_test_ids_device(test_id, device):
    assert device_of_test(test_id) == device
