"""The class report's plots, drawn with matplotlib (no pyplot: no global state) into PNG data
URIs so report.html reads offline as one file."""
from __future__ import annotations

import base64
import io
from dataclasses import dataclass

from autograder.course import records

VISIBILITY_COLOURS = {"public": "#4c78a8", "hidden": "#f58518", "after_due": "#54a24b"}


@dataclass(frozen=True)
class Plot:
    title: str
    alt: str
    data_uri: str


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _data_uri(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _short(test_id: str, width: int = 70) -> str:
    """Long parametrised ids keep their start and their distinguishing end."""
    return test_id if len(test_id) <= width else test_id[: width // 2 - 2] + "..." + test_id[-(width // 2 - 1):]


def score_histogram(finals: list[float], raws: list[float], max_score: float) -> Plot:
    figure = _figure(7, 3.6)
    axes = figure.add_subplot()
    bins = [max_score * i / 20 for i in range(21)] if max_score > 0 else 10
    axes.hist(raws, bins=bins, histtype="step", linewidth=1.5, color="#888888", label="before late penalty")
    axes.hist(finals, bins=bins, color="#4c78a8", alpha=0.8, label="final")
    axes.set_xlabel(f"score (of {max_score:g})")
    axes.set_ylabel("submissions")
    from matplotlib.ticker import MaxNLocator

    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlim(0, max_score or None)
    axes.legend(loc="upper left")
    return Plot("Score histogram", f"histogram of the final scores of {len(finals)} graded submissions", _data_uri(figure))


def pass_rates(tests: list[tuple[str, str, float]]) -> Plot:
    """`tests`: (group name, visibility, fraction of submissions passing it) in suite order."""
    figure = _figure(8, 1.0 + 0.28 * max(1, len(tests)))
    axes = figure.add_subplot()
    positions = list(range(len(tests)))[::-1]
    axes.barh(positions, [100 * rate for _, _, rate in tests],
              color=[VISIBILITY_COLOURS.get(visibility, "#888888") for _, visibility, _ in tests])
    axes.set_yticks(positions, [_short(name) for name, _, _ in tests], fontsize=8)
    axes.set_xlim(0, 100)
    axes.set_ylim(-0.6, len(tests) - 0.4)
    axes.set_xlabel("graded submissions passing (%)")
    from matplotlib.patches import Patch

    shown = {visibility for _, visibility, _ in tests}
    axes.legend(handles=[Patch(color=colour, label=visibility) for visibility, colour in VISIBILITY_COLOURS.items()
                         if visibility in shown], loc="lower right", fontsize=8)
    return Plot("Pass rate per group", f"share of graded submissions passing each of {len(tests)} test groups",
                _data_uri(figure))


def time_per_submission(durations: list[tuple[str, float]]) -> Plot:
    """`durations`: (student, seconds), drawn slowest first; names shown while they fit."""
    ordered = sorted(durations, key=lambda item: -item[1])
    figure = _figure(8, 3.6)
    axes = figure.add_subplot()
    axes.bar(range(len(ordered)), [seconds for _, seconds in ordered], color="#72b7b2")
    if len(ordered) <= 40:
        axes.set_xticks(range(len(ordered)), [name[:16] for name, _ in ordered], rotation=70, fontsize=7)
    else:
        axes.set_xlabel("submissions, slowest first")
    axes.set_ylabel("grading time (s)")
    return Plot("Time per submission", f"grading time of {len(ordered)} submissions, slowest first", _data_uri(figure))


def class_plots(results: list[records.SubmissionResult], finals: dict[str, float], max_score: float) -> tuple[list[Plot], str]:
    """The three plots, or none and a note saying why (matplotlib missing)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return [], "plots need matplotlib: install it with `pip install -e '.[dev]'` and run the report again"
    graded = [r for r in results if r.status == records.GRADED]
    plots = [score_histogram([finals[r.submission] for r in graded], [r.score for r in graded], max_score)]
    order: dict[str, tuple[str, list[bool]]] = {}
    for result in graded:  # one bar per group: the share of submissions passing every test of it
        outcome: dict[str, tuple[str, bool]] = {}
        for test in result.tests:
            passed = outcome.get(test.group, (test.visibility, True))[1] and test.status == records.PASSED
            outcome[test.group] = (test.visibility, passed)
        for group, (visibility, passed) in outcome.items():
            order.setdefault(group, (visibility, []))[1].append(passed)
    if order:
        plots.append(pass_rates([(group, visibility, sum(passed) / len(passed))
                                 for group, (visibility, passed) in order.items()]))
    plots.append(time_per_submission([(r.submission, r.duration_seconds) for r in results]))
    return plots, ""
