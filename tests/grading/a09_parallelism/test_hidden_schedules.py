"""Hidden: pipeline schedules against the reference, their validity under a trusted simulator,
the lecture's makespans, peak activations and bubbles, and the student's simulator."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from autograder.harness import FLOAT64, assert_close, assert_equal, diagnose, expect_raises, first_true, require
from oracle import busy_fraction_bubble, interleaved, one_f_one_b, peaks, simulate, validity_problems

stages = st.integers(1, 6)
microbatches = st.integers(1, 10)
chunks = st.integers(2, 4)


@st.composite
def interleaved_shapes(draw):
    p = draw(stages)
    return p, p * draw(st.integers(1, 4)), draw(chunks)


def as_tuples(schedule):
    return [[tuple(a) for a in actions] for actions in schedule]


def explain_interleaved(got, p, m, v):
    return first_true([
        ("you make every action a warm-up when m == p (Megatron's code does; the spec's formula does not)",
         lambda: got == interleaved(p, m, v, megatron_all_warmup=True)),
        ("backward k must run chunk v - 1 - (k // p) % v: the backwards visit the chunks in reverse",
         lambda: got == interleaved(p, m, v, backward_reversed=False)),
        ("the warm-up count is off: stage s warms up with min(2 (p - s - 1) + (v - 1) p, m v) forwards",
         lambda: any(got == interleaved(p, m, v, warmup=lambda p, s, v, m, d=d: min((p - s - 1) * 2 + (v - 1) * p + d, m * v))
                     for d in (-2, -1, 1, 2))),
    ])


def explain_1f1b(got, p, m):
    return first_true([
        ("the 1F1B warm-up count is off by one: stage s runs w = min(p - s - 1, m) forwards first",
         lambda: any(got == one_f_one_b(p, m, warmup=lambda p, s, m, d=d: max(0, min(p - s - 1 + d, m))) for d in (-1, 1))),
    ])


# ---------------------------------------------------------------- exactly against the reference

@given(p=stages, m=microbatches)
def test_schedule_gpipe_and_1f1b_exactly(student, reference, p, m):
    assert_equal(as_tuples(student.gpipe_schedule(p, m)), reference.gpipe_schedule(p, m), "gpipe_schedule")
    got = as_tuples(student.one_f_one_b_schedule(p, m))
    with diagnose(lambda: explain_1f1b(got, p, m)):
        assert_equal(got, reference.one_f_one_b_schedule(p, m), "one_f_one_b_schedule")


@given(shape=interleaved_shapes())
def test_schedule_interleaved_exactly(student, reference, shape):
    p, m, v = shape
    got = as_tuples(student.interleaved_schedule(p, m, v))
    with diagnose(lambda: explain_interleaved(got, p, m, v)):
        assert_equal(got, reference.interleaved_schedule(p, m, v), "interleaved_schedule (m a multiple of p, v >= 2)")


@given(p=st.integers(2, 6), v=chunks)
def test_schedule_interleaved_when_m_equals_p(student, reference, p, v):
    got = as_tuples(student.interleaved_schedule(p, p, v))
    with diagnose(lambda: explain_interleaved(got, p, p, v)):
        assert_equal(got, reference.interleaved_schedule(p, p, v), "interleaved_schedule with m == p")


@given(p=st.integers(2, 6), m=st.integers(1, 12), v=st.integers(-1, 4))
def test_interleaved_rejects_bad_arguments(student, p, m, v):
    if m % p != 0:
        with diagnose("interleaved_schedule takes the microbatches in groups of p: raise ValueError when m % p != 0"):
            expect_raises(ValueError, lambda: student.interleaved_schedule(p, m, max(v, 2)),
                          "interleaved_schedule with num_microbatches not a multiple of num_stages")
    if v < 2:
        with diagnose("interleaving needs at least two chunks per stage: raise ValueError when num_chunks < 2"):
            expect_raises(ValueError, lambda: student.interleaved_schedule(p, p * 2, v),
                          "interleaved_schedule with num_chunks < 2")


# ---------------------------------------------------------------- valid, with the lecture's numbers

@given(p=stages, m=microbatches, tf=st.sampled_from([1.0, 0.5, 3.0]), tb=st.sampled_from([2.0, 1.0, 4.0]))
def test_valid_gpipe_and_1f1b_with_the_lectures_makespan(student, p, m, tf, tb):
    for name in ("gpipe_schedule", "one_f_one_b_schedule"):
        schedule = as_tuples(getattr(student, name)(p, m))
        problems = validity_problems(schedule, p, m)
        require(not problems, f"{name}: not a valid schedule ({problems[0] if problems else ''})")
        makespan, _ = simulate(schedule, tf, tb)
        assert_close(makespan, (m + p - 1) * (tf + tb), f"{name}: makespan under the trusted simulator", tol=FLOAT64)


@given(shape=interleaved_shapes())
def test_valid_interleaved(student, shape):
    p, m, v = shape
    schedule = as_tuples(student.interleaved_schedule(p, m, v))
    problems = validity_problems(schedule, p, m, v)
    require(not problems, f"interleaved_schedule: not a valid schedule ({problems[0] if problems else ''})")


@given(p=stages, m=microbatches)
def test_peak_activations_of_gpipe_and_1f1b(student, p, m):
    gpipe, ofob = as_tuples(student.gpipe_schedule(p, m)), as_tuples(student.one_f_one_b_schedule(p, m))
    assert_equal(list(student.peak_activations(gpipe)), [m] * p, "peak_activations of GPipe (m on every stage)")
    with diagnose("peak_activations counts the (microbatch, chunk) whose F is done and whose B is not: "
                  "a backward frees one"):
        assert_equal(list(student.peak_activations(ofob)), [min(p - s, m) for s in range(p)],
                     "peak_activations of 1F1B (min(p - s, m) on stage s)")


@given(shape=interleaved_shapes())
def test_peak_activations_of_interleaved(student, shape):
    p, m, v = shape
    schedule = interleaved(p, m, v)
    assert_equal(list(student.peak_activations(schedule)), peaks(schedule), "peak_activations of an interleaved schedule")


def explain_bubble(inter, plain, p, m, v):
    schedule = interleaved(p, m, v)
    right = busy_fraction_bubble(schedule)
    chunk_major = simulate(schedule, chunk_major=True)
    busy = sum((1.0 if a[0] == "F" else 2.0) / v for actions in schedule for a in actions)
    return first_true([
        ("the bubble is 1 - busy / (num_stages * makespan): the busy time of every stage over the time of every "
         "stage", lambda: p > 1 and abs(plain - (1 - (1 - busy_fraction_bubble(one_f_one_b(p, m))) * p)) < 1e-9),
        ("with v chunks each action takes t / v: in the simulator as in the busy time",
         lambda: abs(inter - (1 - (1 - right) / v)) < 1e-9 or abs(inter - (1 - (1 - right) * v)) < 1e-9),
        (CHUNK_MAPPING, lambda: chunk_major is not None and abs(inter - (1 - busy / (p * chunk_major[0]))) < 1e-9),
    ])


@given(shape=interleaved_shapes())
def test_bubble_interleaved_below_1f1b(student, shape):
    p, m, v = shape
    with diagnose(lambda: CHUNK_MAPPING if simulate(interleaved(p, m, v), chunk_major=True) is None else None):
        inter = student.bubble_fraction(interleaved(p, m, v), 1.0, 2.0)
        plain = student.bubble_fraction(one_f_one_b(p, m), 1.0, 2.0)
    with diagnose(lambda: explain_bubble(float(inter), float(plain), p, m, v)):
        assert_close(float(inter), busy_fraction_bubble(interleaved(p, m, v)), "bubble_fraction of an interleaved schedule")
        assert_close(float(plain), busy_fraction_bubble(one_f_one_b(p, m)), "bubble_fraction of 1F1B")
    require(inter <= plain + 1e-12, "bubble_fraction: the interleaved schedule's bubble must not exceed 1F1B's")
    if p > 1:
        require(inter < plain - 1e-12, "bubble_fraction: with p > 1 and v > 1 interleaving must shrink the bubble")


def test_bubble_of_empty_schedule(student):
    assert_close(float(student.bubble_fraction([[], []])), 0.0, "bubble_fraction of an empty schedule")


# ---------------------------------------------------------------- the student's simulator

def explain_simulator(schedule, makespan, tf, tb):
    v = 1 + max((a[2] for actions in schedule for a in actions if len(a) > 2), default=0)
    return first_true([
        ("with v chunks each action takes t / v (v = 1 + the largest chunk index)",
         lambda: v > 1 and abs(makespan - simulate(schedule, tf * v, tb * v)[0]) < 1e-9),
        ("check the dependencies: F of virtual stage k waits for F of k - 1, the last virtual stage's B for "
         "its F, B of k for B of k + 1, and every action for the previous action of its stage", lambda: True),
    ])


@given(p=stages, m=microbatches, tf=st.sampled_from([1.0, 0.25, 2.0]), tb=st.sampled_from([2.0, 0.5, 3.0]),
       kind=st.sampled_from(["gpipe", "1f1b"]))
def test_simulate_against_the_trusted_simulator(student, p, m, tf, tb, kind):
    schedule = [[("F", i) for i in range(m)] + [("B", i) for i in range(m)]] * p if kind == "gpipe" else one_f_one_b(p, m)
    expected_makespan, expected_starts = simulate(schedule, tf, tb)
    makespan, starts = student.simulate_pipeline(schedule, tf, tb)
    with diagnose(lambda: explain_simulator(schedule, float(makespan), tf, tb)):
        assert_close(float(makespan), expected_makespan, f"simulate_pipeline({kind}): makespan")
        assert_close([[float(t) for t in row] for row in starts], expected_starts,
                     f"simulate_pipeline({kind}): start time of every action")


CHUNK_MAPPING = ("chunk c of stage s is virtual stage c * p + s: a microbatch visits every stage with chunk 0, "
                 "then every stage with chunk 1, and so on")


@given(shape=interleaved_shapes(), tf=st.sampled_from([1.0, 3.0]), tb=st.sampled_from([2.0, 5.0]))
def test_simulate_interleaved_against_the_trusted_simulator(student, shape, tf, tb):
    p, m, v = shape
    schedule = interleaved(p, m, v)
    expected_makespan, expected_starts = simulate(schedule, tf, tb)
    with diagnose(lambda: CHUNK_MAPPING if simulate(schedule, tf, tb, chunk_major=True) is None else None):
        makespan, starts = student.simulate_pipeline(schedule, tf, tb)
    with diagnose(lambda: first_true([
            (CHUNK_MAPPING, lambda: abs(float(makespan) - simulate(schedule, tf, tb, chunk_major=True)[0]) < 1e-9),
            ]) or explain_simulator(schedule, float(makespan), tf, tb)):
        assert_close(float(makespan), expected_makespan, "simulate_pipeline(interleaved): makespan")
        assert_close([[float(t) for t in row] for row in starts], expected_starts,
                     "simulate_pipeline(interleaved): start time of every action")


HAND_BUILT_BROKEN = {
    "a stage runs B before its own F (deadlock)": [[("B", 0), ("F", 0)], [("F", 0), ("B", 0)]],
    "the last stage runs B before its own F (deadlock)": [[("F", 0), ("B", 0)], [("B", 0), ("F", 0)]],
    "two stages wait on each other (deadlock)": [[("F", 0), ("B", 1), ("F", 1), ("B", 0)],
                                                [("F", 1), ("B", 1), ("F", 0), ("B", 0)]],
    "the last two of three stages wait on each other (deadlock)": [[("F", 0), ("F", 1), ("B", 0), ("B", 1)],
                                                                  [("F", 0), ("B", 0), ("F", 1), ("B", 1)],
                                                                  [("F", 1), ("F", 0), ("B", 0), ("B", 1)]],
    "an F listed twice": [[("F", 0), ("F", 0), ("B", 0)], [("F", 0), ("B", 0)]],
    "a B listed twice": [[("F", 0), ("B", 0)], [("F", 0), ("B", 0), ("B", 0)]],
    "a missing B": [[("F", 0), ("F", 1), ("B", 0)], [("F", 0), ("B", 0), ("F", 1), ("B", 1)]],
    "a missing F on the last stage": [[("F", 0), ("B", 0)], [("B", 0)]],
    "an interleaved action listed twice": [[("F", 0, 0), ("F", 0, 1), ("B", 0, 1), ("B", 0, 0), ("B", 0, 0)],
                                           [("F", 0, 0), ("F", 0, 1), ("B", 0, 1), ("B", 0, 0)]],
    "an interleaved chunk missing": [[("F", 0, 0), ("F", 0, 1), ("B", 0, 1), ("B", 0, 0)],
                                     [("F", 0, 0), ("B", 0, 0)]],
}


BROKEN_DIAGNOSES = {
    "the last stage runs B before its own F (deadlock)": "B of the last virtual stage needs its own F: a stage that "
                                                         "lists it first can never finish",
    "an F listed twice": "count every (kind, microbatch, virtual stage): one listed twice is a ValueError",
    "a B listed twice": "count every (kind, microbatch, virtual stage): one listed twice is a ValueError",
    "an interleaved action listed twice": "an action is (kind, microbatch, chunk) on a stage: listed twice is a ValueError",
    "a missing B": "every microbatch that appears needs an F and a B on every virtual stage",
    "a missing F on the last stage": "every microbatch that appears needs an F and a B on every virtual stage",
    "an interleaved chunk missing": "every microbatch needs an F and a B on every (stage, chunk)",
}


@pytest.mark.parametrize("what", sorted(HAND_BUILT_BROKEN))
def test_broken_schedules_raise(student, what):
    schedule = HAND_BUILT_BROKEN[what]
    default = ("stop when a whole pass over the stages makes no progress while actions remain, and raise "
               "ValueError('deadlock ...')") if "deadlock" in what else ""
    with diagnose(BROKEN_DIAGNOSES.get(what, default)):
        error = expect_raises(ValueError, lambda: student.simulate_pipeline(schedule), f"simulate_pipeline on {what}")
    if "deadlock" in what:
        require("deadlock" in error.message.lower(), f"simulate_pipeline on {what}: the ValueError's message must "
                                                     "start with 'deadlock'")


@given(p=st.integers(2, 4), m=st.integers(1, 4), cut=st.integers(0, 100))
def test_broken_by_one_missing_or_repeated_action(student, p, m, cut):
    schedule = one_f_one_b(p, m)
    stage = cut % p
    index = (cut // p) % len(schedule[stage])
    missing = [list(a) for a in schedule]
    del missing[stage][index]
    expect_raises(ValueError, lambda: student.simulate_pipeline(missing), "simulate_pipeline with one action missing")
    repeated = [list(a) for a in schedule]
    repeated[stage].append(repeated[stage][index])
    expect_raises(ValueError, lambda: student.simulate_pipeline(repeated), "simulate_pipeline with one action repeated")
