"""How long one call of student code may run: a multiple of the reference's own time, never the whole limit.

A hung function used to cost the full call limit (30 s) in every test that called it. A call's
budget is instead `max(floor, multiple x the reference's time for the same call)`, capped by the
call limit of grading.yaml (the ceiling). The reference is timed only when a call outlives the
floor (while the worker keeps running), so a call that returns in time costs nothing extra.
Before a function has once returned in this submission it gets the ceiling (a first call may
import or warm up); after it has timed out, its later calls get a short budget,
`max(floor, short_multiple x the reference)`, so a hung function costs about a minute, not minutes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

ReferenceTimer = Callable[[str, tuple, dict], "float | None"]


def duration(seconds: float) -> str:
    """3 ms, 250 µs, 1.2 s: a duration as a person reads it."""
    if seconds >= 1:
        return f"{seconds:.3g} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3g} ms"
    return f"{max(seconds, 1e-6) * 1e6:.3g} µs"


@dataclass
class CallPlan:
    """One call's budget: `first` seconds, then (when `extend` is set) what `extend()` decides."""

    name: str | None
    first: float
    extend: Callable[[], tuple[float, float | None]] | None = None
    seconds: float = 0.0                 # the budget in force (first, or the extended one)
    reference: float | None = None       # the reference's time for this call, when it was measured

    def __post_init__(self) -> None:
        self.seconds = self.first

    def extended(self) -> float:
        """Measure the reference (once) and return the call's whole budget."""
        if self.extend is not None:
            self.seconds, self.reference = self.extend()
            self.extend = None
        return self.seconds

    def explain(self) -> str:
        took = f" (the reference takes {duration(self.reference)} for this call)" if self.reference is not None else ""
        return f"{self.name} timed out: it ran past its {self.seconds:.3g} s budget and was stopped{took}"


@dataclass
class CallBudget:
    ceiling: float                       # the call limit of grading.yaml
    floor: float = 2.0
    multiple: float = 50.0
    short_multiple: float = 5.0          # after a timeout
    reference_seconds: ReferenceTimer | None = None
    returned: set[str] = field(default_factory=set)
    timed_out: set[str] = field(default_factory=set)

    def plan(self, name: str | None, args: tuple = (), kwargs: dict | None = None) -> CallPlan:
        """The budget of `student.<name>(*args, **kwargs)`; the reference is timed only if the floor runs out."""
        if name is None or self.floor >= self.ceiling or (name not in self.returned and name not in self.timed_out):
            return CallPlan(name, self.ceiling)
        short = name in self.timed_out

        def extend() -> tuple[float, float | None]:
            reference = self._reference(name, args, kwargs or {})
            if reference is None:
                return (self.floor if short else self.ceiling), None
            budget = max(self.floor, (self.short_multiple if short else self.multiple) * reference)
            return min(self.ceiling, budget), reference

        return CallPlan(name, self.floor, extend)

    def _reference(self, name: str, args: tuple, kwargs: dict) -> float | None:
        if self.reference_seconds is None:
            return None
        try:
            seconds = self.reference_seconds(name, args, kwargs)
        except Exception:
            return None
        return float(seconds) if isinstance(seconds, (int, float)) and seconds >= 0 else None

    def record(self, name: str | None, *, timed_out: bool) -> None:
        if name is not None:
            (self.timed_out if timed_out else self.returned).add(name)
