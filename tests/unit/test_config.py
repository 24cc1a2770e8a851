"""grading.yaml validation: every error names the file and line and says how to fix it."""
from pathlib import Path

import pytest

from autograder.course.overrides import apply_overrides
from autograder.course.reader import check_suite_coverage, load_course
from autograder.course.model import Limits
from autograder.errors import ConfigError, UnknownAssignment

VALID = """\
course: Test course
defaults:
  hypothesis_examples: 7
assignments:
  a04_optimizers:
    title: Optimizers
    lecture: 5
    module: optimizers.py
    due: 2025-04-01T23:59:00+08:00
    tests:
      - {group: "SGD", match: ["test_public.py::test_sgd*"], points: 10, visibility: public}
      - {group: "Adam", match: ["test_hidden.py::test_adam*"], points: 90}
    unscored: ["test_hidden.py::test_smoke"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "grading.yaml"
    path.write_text(text)
    return path


def test_valid_file_loads_with_defaults_and_points(tmp_path):
    course = load_course(write(tmp_path, VALID))
    assignment = course.assignment("a04")
    assert assignment.id == "a04_optimizers"
    assert assignment.hypothesis_examples == 7
    assert assignment.max_score == 100
    assert assignment.tests[0].visibility == "public"
    assert assignment.tests[1].visibility == "hidden"
    assert assignment.due.utcoffset().total_seconds() == 8 * 3600


def test_unknown_key_suggests_the_right_one_with_file_and_line(tmp_path):
    path = write(tmp_path, VALID.replace("    lecture: 5", "    lectur: 5"))
    with pytest.raises(ConfigError) as error:
        load_course(path)
    message = str(error.value)
    assert f"{path.resolve()}:7:" in message
    assert "unknown key 'lectur'" in message and "did you mean 'lecture'" in message


def test_bad_visibility_is_named_with_its_line(tmp_path):
    path = write(tmp_path, VALID.replace("visibility: public", "visibility: publik"))
    with pytest.raises(ConfigError, match=r":11: .*'publik' is not one of public, hidden, after_due \(did you mean 'public'\?\)"):
        load_course(path)


def test_missing_required_key_names_the_assignment(tmp_path):
    path = write(tmp_path, VALID.replace("    module: optimizers.py\n", ""))
    with pytest.raises(ConfigError, match=r"assignments.a04_optimizers needs the key 'module'"):
        load_course(path)


def test_due_date_without_time_zone_is_refused(tmp_path):
    path = write(tmp_path, VALID.replace("+08:00", ""))
    with pytest.raises(ConfigError, match=r":9: .*due: .* needs a time zone"):
        load_course(path)


def test_invalid_yaml_reports_the_line(tmp_path):
    path = write(tmp_path, VALID.replace("title: Optimizers", "title: [Optimizers"))
    with pytest.raises(ConfigError, match=r"grading.yaml:\d+: not valid YAML"):
        load_course(path)


def test_negative_points_and_wrong_types_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="must not be negative"):
        load_course(write(tmp_path, VALID.replace("points: 90", "points: -1")))
    with pytest.raises(ConfigError, match=r"lecture: expected int, got 'five'"):
        load_course(write(tmp_path, VALID.replace("lecture: 5", "lecture: five")))


def test_unknown_assignment_alias_suggests_known_ones(tmp_path):
    course = load_course(write(tmp_path, VALID))
    assert course.assignment("4").id == "a04_optimizers"
    with pytest.raises(UnknownAssignment, match="known: a04_optimizers"):
        course.assignment("a05")


def test_suite_coverage_finds_unpointed_tests_and_empty_groups(tmp_path):
    assignment = load_course(write(tmp_path, VALID)).assignment("a04")
    problems = check_suite_coverage(assignment, ["test_public.py::test_sgd_steps", "test_hidden.py::test_other",
                                                 "test_hidden.py::test_smoke"], Path("grading.yaml"))
    assert any("test_hidden.py::test_other of a04_optimizers is worth no points" in p for p in problems)
    assert any("group 'Adam' of a04_optimizers matches no test" in p for p in problems)
    assert not any("test_smoke" in p for p in problems)


def test_public_group_must_match_only_public_files(tmp_path):
    text = VALID.replace('match: ["test_public.py::test_sgd*"]', 'match: ["*::test_sgd*"]')
    assignment = load_course(write(tmp_path, text)).assignment("a04")
    problems = check_suite_coverage(assignment, ["test_hidden.py::test_sgd_x", "test_hidden.py::test_adam"], Path("g"))
    assert any("not in a test_public*.py file" in p for p in problems)


def test_parametrised_ids_match_patterns_without_parameters(tmp_path):
    assignment = load_course(write(tmp_path, VALID)).assignment("a04")
    assert assignment.group_for("test_hidden.py::test_adam_steps[cpu]").name == "Adam"


def test_environment_and_command_line_override_limits_in_that_order():
    from autograder.course.overrides import limit_overrides

    limits = apply_overrides(Limits(), limit_overrides({"AUTOGRADER_CALL_SECONDS": "5"}))
    assert limits.call_seconds == 5.0
    limits = apply_overrides(Limits(), limit_overrides({"AUTOGRADER_CALL_SECONDS": "5"}, ["call_seconds=7"]))
    assert limits.call_seconds == 7.0
    with pytest.raises(ConfigError, match="AUTOGRADER_MEMORY_MB='lots'"):
        limit_overrides({"AUTOGRADER_MEMORY_MB": "lots"})


def test_the_course_file_of_the_repository_is_valid():
    course = load_course(Path(__file__).resolve().parents[2] / "grading.yaml")
    for assignment in course.assignments.values():
        assert assignment.max_score == 100, f"{assignment.id} points add up to {assignment.max_score}, not 100"


def test_environment_overrides_the_limits_of_every_assignment(tmp_path):
    from autograder.course.overrides import limit_overrides

    limits = limit_overrides({"AUTOGRADER_CALL_SECONDS": "2.5"})
    assert load_course(write(tmp_path, VALID), limits=limits).assignment("a04").limits.call_seconds == 2.5
    with pytest.raises(ConfigError, match="not a positive number"):
        limit_overrides({"AUTOGRADER_CALL_SECONDS": "-1"})


def test_the_command_line_beats_the_environment():
    from autograder.course.overrides import limit_overrides

    assert limit_overrides({"AUTOGRADER_CALL_SECONDS": "2.5"}, ["call_seconds=60"]) == {"call_seconds": "60"}


def test_load_course_is_a_pure_function_of_the_file_and_the_overrides(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOGRADER_CALL_SECONDS", "2.5")
    assert load_course(write(tmp_path, VALID)).assignment("a04").limits.call_seconds != 2.5


def test_limit_option_is_checked_with_a_suggestion():
    from autograder.course.overrides import limit_override

    assert limit_override("call_seconds=60") == ("call_seconds", "60")
    with pytest.raises(ConfigError, match="did you mean 'call_seconds'"):
        limit_override("call_second=60")
    with pytest.raises(ConfigError, match="'lots' is not a positive number"):
        limit_override("memory_mb=lots")
