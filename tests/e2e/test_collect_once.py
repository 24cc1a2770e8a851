"""Collect once, fork per submission: the warm pool's suite server grades a batch like fresh runs do."""
from pathlib import Path

from autograder.pipeline.pytest_run import RunRequest
from autograder.pipeline.run import run_suite
from autograder.pipeline.warm_pool import WarmPool

from ..conftest import TOY_COURSE


def _request(tmp_path: Path, submission: Path, name: str, visibility: str = "all") -> RunRequest:
    return RunRequest(course_file=str(TOY_COURSE / "grading.yaml"), assignment="a99_toy",
                      suite_dir=str(TOY_COURSE / "tests" / "grading" / "a99_toy"), submission_dir=str(submission),
                      outcomes_file=str(tmp_path / f"{name}.jsonl"), visibility=visibility)


def test_one_collected_suite_serves_every_submission_and_visibility(tmp_path):
    reference = TOY_COURSE / "solutions" / "a99_toy"
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "toy.py").write_text((reference / "toy.py").read_text().replace("return", "return 1 +", 1))
    runs = [(f"{name}-{visibility}", path, visibility) for name, path in (("reference", reference), ("broken", broken))
            for visibility in ("all", "public")]
    with WarmPool(("numpy",)) as pool:
        warm = {name: run_suite(_request(tmp_path, path, f"warm-{name}", visibility), timeout=600, pool=pool)
                for name, path, visibility in runs}
        servers = [connection for connection in pool.suites.values() if connection is not None]
        assert len(servers) == 1, "one collect-once server for the suite, whatever the submission or visibility"
    fresh = {name: run_suite(_request(tmp_path, path, f"fresh-{name}", visibility), timeout=600, warm=False)
             for name, path, visibility in runs}
    for name, run in warm.items():
        assert run.fault is None, run.fault
        statuses = {outcome.id: outcome.status for outcome in run.outcomes}
        assert statuses == {outcome.id: outcome.status for outcome in fresh[name].outcomes}, name
        if name.endswith("public"):
            assert all(test_id.startswith("test_public.py") for test_id in statuses)
        else:
            assert any(test_id.startswith("test_hidden.py") for test_id in statuses)
    assert all(o.status == "passed" for o in warm["reference-all"].outcomes)
    assert any(o.status == "failed" for o in warm["broken-all"].outcomes)
