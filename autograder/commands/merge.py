"""The `merge` verb: combine the CPU and GPU results of each submission into one result.

    autograder merge results/a07 results/a07-gpu --out results/a07-merged

Each folder holds OUT/<student>/result.json as `grade` wrote them: whole results (graded on
a CPU machine, CUDA tests deferred) and device-tagged partial results (`grade --device cuda`).
Per submission there must be one whole result; each partial result's tests replace the
deferred ones. Results of different suite versions, assignments or submissions are refused
with a one-line reason, before anything is written.
"""
from __future__ import annotations

import sys
from pathlib import Path

from autograder.course import records
from autograder.errors import AutograderError
from autograder.pipeline.merge import Located, MergeRefused, deferred_tests, merge_results
from autograder.pipeline.progress import SafeStream
from autograder.pipeline.results import write_result


def _read_folder(folder: Path) -> list[Located]:
    if not folder.is_dir():
        raise AutograderError(f"{folder}: no such results folder; give folders that `autograder grade --out` wrote")
    found = []
    for path in sorted(folder.glob("*/result.json")):
        try:
            found.append(Located(records.read_result(path), str(path)))
        except (ValueError, TypeError, KeyError, OSError) as error:
            raise AutograderError(f"{path}: unreadable result ({error}); grade that submission again") from None
    if not found:
        raise AutograderError(f"{folder}: no result.json found")
    return found


def main(*, results: list[str], out: str, stream=None) -> int:
    stream = SafeStream(stream or sys.stdout)
    wholes: dict[str, Located] = {}
    parts: dict[str, list[Located]] = {}
    assignments = set()
    for folder in results:
        for located in _read_folder(Path(folder)):
            result = located.result
            assignments.add(result.assignment)
            if result.part:
                parts.setdefault(result.submission, []).append(located)
            elif result.submission in wholes:
                raise MergeRefused(f"{wholes[result.submission].where} and {located.where} are both whole results of "
                                   f"{result.submission}: merge one CPU result with its device parts")
            else:
                wholes[result.submission] = located
    if len(assignments) > 1:
        raise MergeRefused(f"the folders hold results of several assignments ({', '.join(sorted(assignments))}): "
                           "merge one assignment at a time")
    merged = {name: merge_results(whole, parts.get(name, [])) for name, whole in sorted(wholes.items())}
    out_dir = Path(out)
    for name, result in merged.items():
        write_result(result, out_dir / name)
    orphans = sorted(set(parts) - set(wholes))
    print(f"merged {len(merged)} submission(s) into {out_dir}: "
          f"{sum(1 for name in merged if name in parts)} with a GPU part", file=stream)
    still = [name for name, result in merged.items() if deferred_tests(result)]
    if still:
        print(f"still deferred (grade them with --device cuda and merge again): {', '.join(still)}", file=stream)
    if orphans:
        print(f"skipped, no whole (CPU) result to merge into: {', '.join(orphans)}", file=stream)
    return 0
