"""grading.yaml's `cluster:` section and the job array script `grade --executor slurm` submits."""
import shutil
from pathlib import Path

import pytest

from autograder.course.model import Cluster
from autograder.course.reader import load_course
from autograder.errors import ConfigError
from autograder.pipeline.slurm import SlurmRequest, file_options, job_script, shards_of

from ..conftest import TOY_COURSE


def course_with(tmp_path: Path, section: str):
    shutil.copytree(TOY_COURSE, tmp_path / "course")
    path = tmp_path / "course" / "grading.yaml"
    path.write_text(path.read_text() + section)
    return load_course(path)


def test_the_cluster_section_is_read_with_its_defaults(tmp_path):
    course = course_with(tmp_path, 'cluster:\n  partition: gpu\n  time: "2:00:00"\n  cpus: 4\n  shard_size: 5\n'
                                   '  sbatch: [--qos=course]\n')
    assert course.cluster == Cluster(partition="gpu", time="2:00:00", cpus=4, shard_size=5, sbatch=("--qos=course",))
    assert load_course(TOY_COURSE / "grading.yaml").cluster == Cluster()


@pytest.mark.parametrize("section, words", [
    ("cluster:\n  partitoin: gpu\n", "unknown key 'partitoin' in grading.yaml.cluster (did you mean 'partition'?)"),
    ("cluster:\n  time: 2:00:00\n", 'write it in quotes, e.g. "1:00:00"'),
    ("cluster:\n  shard_size: 0\n", "cluster.shard_size: must be positive"),
])
def test_a_bad_cluster_section_names_file_and_line(tmp_path, section, words):
    with pytest.raises(ConfigError, match=r"grading.yaml:\d+: .*") as error:
        course_with(tmp_path, section)
    assert words in str(error.value)


def test_command_line_beats_the_environment_which_beats_the_file():
    """File values become #SBATCH lines (SBATCH_* variables beat those); command-line values go to sbatch itself."""
    cluster = Cluster(partition="cpu", memory="8G", cpus=2, sbatch=("--qos=course",))
    request = SlurmRequest(partition="gpu", gres="gpu:1", shard_size=3, sbatch=("--exclusive",))
    assert file_options(cluster) == ["--partition=cpu", "--mem=8G", "--cpus-per-task=2", "--qos=course"]
    assert request.command_line_options() == ["--partition=gpu", "--gres=gpu:1", "--exclusive"]
    merged = request.settings(cluster)
    assert (merged.partition, merged.shard_size, merged.cpus, merged.sbatch) == ("gpu", 3, 2, ("--qos=course", "--exclusive"))


def test_the_job_script_runs_the_ordinary_grade_on_its_shard(tmp_path):
    script = job_script(out=tmp_path / "out", round_dir=tmp_path / "out" / ".slurm" / "round-1", assignment="a04_optimizers",
                        shard_count=3, cluster=Cluster(cpus=4, gres="gpu:1"), python="/venv/bin/python",
                        grade_arguments=["--config", "/course/grading.yaml", "grade", "a04_optimizers", "--device", "cuda"])
    assert "#SBATCH --array=0-2\n" in script and "#SBATCH --gres=gpu:1\n" in script and "#SBATCH --cpus-per-task=4\n" in script
    assert ('/venv/bin/python -m autograder --config /course/grading.yaml grade a04_optimizers "${submissions[@]}" '
            f'--device cuda --out {tmp_path / "out"} -j 4 --array-task') in script
    assert shards_of(list("abcdefg"), 3) == [["a", "b", "c"], ["d", "e", "f"], ["g"]]
