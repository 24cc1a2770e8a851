"""autograder.pipeline.feedback: tasks from group names, the per-task line, clearest cases, points."""
from autograder.course import records
from autograder.pipeline.feedback import (CROSS_CUTTING, gradescope_tests, md_line, points, student_text, task_key, task_line,
                                 tasks_of)


def _test(group, status="passed", score=1.0, max_score=1.0, visibility="hidden", feedback="", diagnosis="", name="t"):
    return records.TestResult(id=f"x.py::{name}", name=name, group=group, status=status,
                              score=score if status == "passed" else 0.0, max_score=max_score,
                              visibility=visibility, feedback=feedback, diagnosis=diagnosis)


def _result(tests):
    return records.SubmissionResult(assignment="a", submission="s", status="graded",
                                    score=sum(t.score for t in tests), max_score=sum(t.max_score for t in tests),
                                    tests=tests)


def test_points_show_at_most_two_decimals():
    assert [points(v) for v in (67.05185185, 20.0, 0.148148, 3.5, 0.0, -0.0, None)] == \
        ["67.05", "20", "0.15", "3.5", "0", "0", ""]


def test_task_keys_come_from_group_names():
    assert task_key("Task 4 Adam trajectories") == "Task 4"
    assert task_key("Task 1.3 ridge: shrinkage") == "Task 1.3"
    assert task_key("Tasks 2.6-2.7 Value conventions") == "Tasks 2.6-2.7"
    assert task_key("All: float32 in, float32 out") == ""


def test_the_task_line_names_the_failed_groups_and_the_diagnosis():
    tests = [
        _test("Task 4 Adam (public)", visibility="public", name="test_adam[a]"),
        _test("Task 4 Adam (public)", "failed", visibility="public", name="test_adam[b]", feedback="param after step 1: got 1"),
        _test("Task 4 Adam trajectories", "failed", max_score=9.0, feedback="param after step 1: got 2",
              diagnosis="the first step moves by 0.707*lr: is the bias correction applied?"),
        _test("Task 1 SGD (public)", visibility="public"),
        _test("All: float32 in, float32 out", "failed", feedback="dtype"),
    ]
    tasks = tasks_of(_result(tests))
    assert [t.title for t in tasks] == ["Task 1 SGD", "Task 4 Adam", CROSS_CUTTING]
    line = task_line(tasks[1])
    assert line.startswith("Task 4 Adam: 1 / 11, groups failed: Task 4 Adam; Task 4 Adam trajectories. Why: the first step")
    trajectories = tasks[1].groups[1]
    assert trajectories.clearest().diagnosis  # a diagnosed failure is the clearest case
    hidden = gradescope_tests(_result(tests), {"public": "visible", "hidden": "after_published"})
    assert len(hidden) == 4 and hidden[1]["score"] == 1.0 and hidden[1]["max_score"] == 2.0  # one per group


def test_a_task_that_only_raises_not_implemented_is_not_started():
    stub = "your code raised NotImplementedError: Task 2: AdaGrad"
    tests = [_test("Task 2 AdaGrad (public)", "error", feedback=stub, visibility="public", name=f"t{i}") for i in range(3)]
    assert task_line(tasks_of(_result(tests))[0]) == "Task 2 AdaGrad: not started (3 points open)"


def test_student_text_drops_pytest_diffs_and_library_frames():
    text = ("x should raise ValueError; it returned 0.5\nassert 'a' == 'b'\n- ValueError\n+ NotImplementedError\n"
            '  File "mine.py", line 3, in f\n    return g()\n'
            '  File "/usr/lib/python3/site-packages/numpy/linalg.py", line 9, in solve\n    raise LinAlgError\n'
            "LinAlgError: Singular matrix")
    assert student_text(text) == ('x should raise ValueError; it returned 0.5\n  File "mine.py", line 3, in f\n'
                                  '    return g()\nLinAlgError: Singular matrix')


def test_markdown_lines_cannot_carry_markup():
    assert md_line("<script>x</script> a_b | c\nd") == "&lt;script&gt;x&lt;/script&gt; a\\_b \\| c d"
