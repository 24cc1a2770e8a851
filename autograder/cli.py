"""The `autograder` command line: a thin layer over one module per verb."""
from __future__ import annotations

import argparse
import os
import sys
import traceback

from autograder.course.overrides import limit_overrides
from autograder.errors import AutograderError, ExitCode

EPILOG = """\
students: check, submit    TAs: grade, report    instructors: release, verify, export

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
                              file_times=args.file_times)
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
