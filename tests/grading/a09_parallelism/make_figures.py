"""Draw the a09 README's pipeline timelines from the reference into solutions/a09_parallelism/figures/.

Run `python tests/grading/a09_parallelism/make_figures.py` after changing the schedules, then
`autograder release a09`. (It lives here, not beside the reference: the submission scan would
refuse its matplotlib import in the reference folder.)

One figure per schedule (p = 4 stages, m = 8 microbatches, tF = 1, tB = 2; interleaved with
v = 2 chunks): a row per stage, a box per action at the start time the reference's
simulate_pipeline gives it, forwards light and backwards dark, chunk 1 hatched.
"""
import importlib.util
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

SOLUTION = Path(__file__).resolve().parents[3] / "solutions" / "a09_parallelism"
HERE = SOLUTION / "figures"
spec = importlib.util.spec_from_file_location("parallelism", SOLUTION / "parallelism.py")
reference = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reference)

P, M, V, TF, TB = 4, 8, 2, 1.0, 2.0
SCHEDULES = {
    "gpipe": ("GPipe", reference.gpipe_schedule(P, M)),
    "1f1b": ("1F1B (PipeDream-Flush)", reference.one_f_one_b_schedule(P, M)),
    "interleaved": (f"Interleaved 1F1B, v = {V} chunks", reference.interleaved_schedule(P, M, V)),
}


def draw(name: str, title: str, schedule) -> None:
    makespan, starts = reference.simulate_pipeline(schedule, TF, TB)
    v = 1 + max((a[2] for actions in schedule for a in actions if len(a) > 2), default=0)
    bubble = reference.bubble_fraction(schedule, TF, TB)
    peaks = reference.peak_activations(schedule)
    figure, axes = plt.subplots(figsize=(10, 2.4), dpi=80)
    for s, actions in enumerate(schedule):
        for action, start in zip(actions, starts[s]):
            width = (TF if action[0] == "F" else TB) / v
            color = "#9ecae1" if action[0] == "F" else "#3182bd"
            hatch = "//" if len(action) > 2 and action[2] == 1 else None
            axes.barh(s, width, left=start, height=0.8, color=color, edgecolor="black", linewidth=0.5, hatch=hatch)
            axes.text(start + width / 2, s, str(action[1]), ha="center", va="center", fontsize=7,
                      color="black" if action[0] == "F" else "white")
    axes.set_yticks(range(len(schedule)), [f"stage {s} (peak {peaks[s]})" for s in range(len(schedule))])
    axes.invert_yaxis()
    axes.set_xlim(0, max(makespan, (M + P - 1) * (TF + TB)))
    axes.set_xlabel("time (tF = 1, tB = 2)")
    axes.set_title(f"{title}: p = {P}, m = {M}, makespan {makespan:g}, bubble {bubble:.1%}", fontsize=10)
    legend = [Patch(color="#9ecae1", label="forward"), Patch(color="#3182bd", label="backward")]
    if v > 1:
        legend.append(Patch(facecolor="white", edgecolor="black", hatch="//", label="chunk 1"))
    axes.legend(handles=legend, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)
    figure.tight_layout()
    figure.savefig(HERE / f"{name}.png", metadata={"Software": None})
    plt.close(figure)


if __name__ == "__main__":
    for name, (title, schedule) in SCHEDULES.items():
        draw(name, title, schedule)
