"""Solution regions of a reference solution, and the stub made from them.

In solutions/<id>/<module>.py each part a student writes sits between
`# BEGIN SOLUTION Task N.M: title` and `# END SOLUTION`; the stub replaces each region with
`raise NotImplementedError("Task N.M: title")`. Release writes the stub; verify grades it.
"""
from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass

from autograder.errors import ReleaseError

BEGIN = re.compile(r"^(?P<indent>[ \t]*)# BEGIN SOLUTION\b(?P<title>.*)$")


END = re.compile(r"^[ \t]*# END SOLUTION\b")


@dataclass(frozen=True)
class SolutionRegion:
    """One `# BEGIN SOLUTION ... # END SOLUTION` block of a solution file (1-based lines)."""

    title: str
    begin: int
    end: int
    indent: str
    body: tuple[str, ...]


def solution_regions(source: str, filename: str) -> list[SolutionRegion]:
    """Find the solution regions; unbalanced or nested markers are errors naming file and line."""
    regions, open_at, title, indent, body = [], None, "", "", []
    for number, line in enumerate(source.splitlines(), start=1):
        begin, end = BEGIN.match(line), END.match(line)
        if begin:
            if not begin["indent"]:
                raise ReleaseError(f"{filename}:{number}: a solution region at module level would make the stub raise "
                                   "on import; mark the body of a function or method instead")
            if open_at is not None:
                raise ReleaseError(f"{filename}:{number}: BEGIN SOLUTION inside the region opened on line {open_at}; "
                                   "close it with # END SOLUTION first")
            open_at, indent, body = number, begin["indent"], []
            title = begin["title"].strip() or "write this part"
        elif end:
            if open_at is None:
                raise ReleaseError(f"{filename}:{number}: END SOLUTION without a BEGIN SOLUTION above it")
            regions.append(SolutionRegion(title, open_at, number, indent, tuple(body)))
            open_at = None
        elif open_at is not None:
            body.append(line)
    if open_at is not None:
        raise ReleaseError(f"{filename}:{open_at}: BEGIN SOLUTION is never closed; add # END SOLUTION after the code")
    return regions


def stub_source(source: str, filename: str) -> str:
    """The solution with every region replaced by `raise NotImplementedError("<title>")`."""
    regions = solution_regions(source, filename)
    lines = source.splitlines()
    out: list[str] = []
    position = 0
    for region in regions:
        out.extend(lines[position:region.begin - 1])
        out.append(f"{region.indent}raise NotImplementedError({json.dumps(region.title, ensure_ascii=False)})")
        position = region.end
    out.extend(lines[position:])
    stub = "\n".join(out) + "\n"
    try:
        ast.parse(stub, filename=filename)
    except SyntaxError as error:
        raise ReleaseError(f"{filename}: the generated stub does not compile (line {error.lineno}: {error.msg}); "
                           "check that each solution region is a whole block of statements") from None
    return stub
