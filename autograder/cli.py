"""The `autograder` command line: a thin layer over one module per verb."""
from __future__ import annotations

import argparse
import os
import sys
import traceback

from autograder.course.overrides import limit_overrides
from autograder.errors import AutograderError, ExitCode

EPILOG = """\
students: check, submit    TAs: grade, status, merge, report    instructors: release, verify, export

how a submission is graded (autograder/):
  pipeline/   intake (folder, archive, .py, notebook) -> scan (static checks) -> run (trusted
              pytest, warm pool) -> score -> results (result.json, gradescope.json)
  sandbox/    the trusted side of the boundary: the worker process, its isolation, the
              session and the `student` and `probe` proxies
  runtime/    what runs inside the worker: protocol, guard, import policy, instruments
  harness/    the pytest plugin and the suite authors' kit (assert_close, diagnose, ...)
  course/     grading.yaml's model and reader, records, solution regions, late policy
  commands/   one module per verb

exit codes: 0 done, 1 a check found problems, 2 bad input or configuration, 3 grader fault"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autograder", description="Grade 'Introduction to Foundation Models'.",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="grading.yaml to use (default ./grading.yaml or $AUTOGRADER_CONFIG)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks of the tool's own errors")
    verbs = parser.add_subparsers(dest="verb", required=True)

    grade = verbs.add_parser("grade", help="grade submissions (folders, .py, .ipynb, .zip, .tar.gz)")
    grade.add_argument("assignment", help="assignment id or alias (a04)")
    grade.add_argument("submissions", nargs="+",
                       help="PATH, NAME=PATH, or a folder of submissions (one per student, named after each entry)")
    grade.add_argument("--out", required=True, help="results folder: OUT/<submission>/result.json")
    grade.add_argument("-j", "--jobs", type=int, default=None, help="submissions graded at once (default: all cores)")
    grade.add_argument("--regrade", action="store_true",
                       help="grade again even if a result exists for the same submission and suite")
    grade.add_argument("--manifest", help="CSV with the columns student,submitted_at: submission times for the late policy")
    grade.add_argument("--file-times", action="store_true", help="take submission times from the files' modification times")
    grade.add_argument("--limit", action="append", default=[], metavar="NAME=VALUE",
                       help="override a limit of grading.yaml, e.g. call_seconds=60 (beats AUTOGRADER_CALL_SECONDS)")
    grade.add_argument("--device", choices=["cuda"], default="",
                       help="grade only the CUDA tests: a device-tagged partial result (combine with `merge`)")
    _cluster_options(grade)

    status = verbs.add_parser("status", help="progress of a batch graded on Slurm (`grade --executor slurm`)")
    status.add_argument("results", help="the results folder given to `grade --out`")

    merge = verbs.add_parser("merge", help="combine CPU and GPU (--device cuda) results of each submission")
    merge.add_argument("results", nargs="+", help="results folders: one whole result per submission and its device parts")
    merge.add_argument("--out", required=True, help="where to write the merged results")

    report = verbs.add_parser("report", help="gradebook.csv, per-student feedback and a class report.html from results")
    report.add_argument("assignment", help="assignment id or alias (a04)")
    report.add_argument("results", help="the results folder that `grade --out` wrote")
    report.add_argument("--out", help="where to write the report (default: the results folder)")

    check = verbs.add_parser("check", help="students: run the public tests on your working copy")
    check.add_argument("assignment")
    check.add_argument("path", nargs="?", help="your copy (default assignments/<id>/)")
    check.add_argument("-k", "--keyword", default="", help="only tests whose id contains this text")

    submit = verbs.add_parser("submit", help="students: validate your copy and pack the submission archive")
    submit.add_argument("assignment")
    submit.add_argument("path", nargs="?", help="your copy: a folder, .py or .ipynb (default: this folder)")
    submit.add_argument("--out", help="where to write the archive (default: the current folder)")

    release = verbs.add_parser("release", help="instructors: write assignments/<id>/ from solutions/<id>/")
    release.add_argument("assignment", nargs="?", default="all", help="assignment id, alias, or 'all' (the default)")
    release.add_argument("--check", action="store_true", help="write nothing; fail naming the stale files")

    verify = verbs.add_parser("verify", help="instructors: reference = full marks, stub = 0, every mutant loses points")
    verify.add_argument("assignment", help="assignment id, alias, or 'all'")
    verify.add_argument("-j", "--jobs", type=int, default=None, help="submissions graded at once (default: all cores)")

    export = verbs.add_parser("export", help="instructors: package an assignment for another grading platform")
    export.add_argument("platform", choices=["gradescope"])
    export.add_argument("assignment")
    export.add_argument("--out", help="the .zip to write (default: <id>_gradescope.zip)")
    return parser


def _cluster_options(grade: argparse.ArgumentParser) -> None:
    cluster = grade.add_argument_group("Slurm (--executor slurm; defaults from grading.yaml's cluster: section)")
    cluster.add_argument("--executor", choices=["local", "slurm"], default="local",
                         help="local: this machine's cores (default); slurm: a job array, one task per shard")
    cluster.add_argument("--no-wait", action="store_true", help="submit the array and return with its job id")
    cluster.add_argument("--partition")
    cluster.add_argument("--account")
    cluster.add_argument("--time", help="per array task, e.g. 2:00:00")
    cluster.add_argument("--mem", help="per array task, e.g. 16G")
    cluster.add_argument("--cpus-per-task", type=int, help="per array task (its `grade -j`)")
    cluster.add_argument("--gres", help="e.g. gpu:1 (with --device cuda)")
    cluster.add_argument("--shard-size", type=int, help="submissions per array task")
    cluster.add_argument("--sbatch", action="append", default=[], metavar="OPTION", help="another sbatch option, e.g. --qos=course")
    cluster.add_argument("--array-task", action="store_true", help=argparse.SUPPRESS)


def _slurm_request(args: argparse.Namespace):
    from autograder.pipeline.slurm import SlurmRequest

    if args.no_wait and args.executor != "slurm":
        raise AutograderError("--no-wait submits a Slurm job array and returns: give it with --executor slurm")
    for name in ("cpus_per_task", "shard_size"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise AutograderError(f"--{name.replace('_', '-')} {getattr(args, name)}: must be 1 or more")
    return SlurmRequest(partition=args.partition, account=args.account, time=args.time, memory=args.mem,
                        cpus=args.cpus_per_task, gres=args.gres, shard_size=args.shard_size, sbatch=tuple(args.sbatch),
                        wait=not args.no_wait)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        # The edge: the environment is read here once, never below (command line > environment > file).
        args.config = args.config or os.environ.get("AUTOGRADER_CONFIG")
        limits = limit_overrides(os.environ, getattr(args, "limit", []))
        if args.verb == "grade":
            from autograder.commands import grade
            return grade.main(assignment=args.assignment, submissions=args.submissions, out=args.out, limits=limits,
                              config=args.config, jobs=args.jobs, regrade=args.regrade, manifest=args.manifest,
                              file_times=args.file_times, device=args.device, executor=args.executor,
                              slurm=_slurm_request(args), array_task=args.array_task)
        if args.verb == "status":
            from autograder.commands import status

            return status.main(results=args.results)
        if args.verb == "merge":
            from autograder.commands import merge

            return merge.main(results=args.results, out=args.out)
        if args.verb == "report":
            from autograder.commands import report

            return report.main(assignment=args.assignment, results=args.results, out=args.out, config=args.config)
        if args.verb == "check":
            from autograder.commands import check

            return check.main(assignment=args.assignment, path=args.path, config=args.config, keyword=args.keyword,
                              limits=limits)
        if args.verb == "submit":
            from autograder.commands import submit

            return submit.main(assignment=args.assignment, path=args.path, out=args.out, config=args.config)
        if args.verb == "release":
            from autograder.commands import release

            return release.main(assignment=args.assignment, config=args.config, check=args.check)
        if args.verb == "verify":
            from autograder.commands import verify

            return verify.main(assignment=args.assignment, config=args.config, jobs=args.jobs, limits=limits)
        if args.verb == "export":
            from autograder.commands import export

            return export.main(assignment=args.assignment, config=args.config, out=args.out)
    except AutograderError as error:
        if args.verbose:
            traceback.print_exc()
        print(f"autograder: {error}", file=sys.stderr)
        return int(error.exit_code)
    except KeyboardInterrupt:
        return int(ExitCode.INTERRUPTED)
    return int(ExitCode.USAGE)


if __name__ == "__main__":
    sys.exit(main())
