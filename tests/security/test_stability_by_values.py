"""Item 4: a stability check cannot be switched off (a01's stability groups are judged by values).

Silencing numpy's warnings (np.errstate, np.seterr, warnings filters) changes nothing the grader
judges; an honest sigmoid that computes both branches (and so warns) passes by its values.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NAIVE = ROOT / "examples" / "submissions" / "a01_linear_models" / "naive_exponentials" / "linear_models.py"
STABILITY = "Task 1.4 sigmoid stability"


def _variant(name: str) -> str:
    source = NAIVE.read_text()
    if name == "errstate":  # the observed cheat: the textbook sigmoid under np.errstate(all="ignore")
        return source.replace("def sigmoid(z):\n    return 1.0 / (1.0 + np.exp(-z))",
                              "def sigmoid(z):\n    with np.errstate(all=\"ignore\"):\n        return 1.0 / (1.0 + np.exp(-z))")
    if name == "seterr":  # variant: switched off for the whole module at import
        return "import numpy as np\nnp.seterr(all='ignore')\n" + source
    if name == "filters":  # variant: warnings turned into nothing by the warnings module
        return ("import warnings\nwarnings.simplefilter('ignore')\nimport numpy as np\n"
                "np.seterr(all='ignore')\n" + source)
    if name == "honest_where":  # both branches computed: numpy warns, the values are exact
        return re.sub(r"def sigmoid\(z\):\n    return 1.0 / \(1.0 \+ np.exp\(-z\)\)",
                      "def sigmoid(z):\n    z = np.asarray(z, dtype=np.float64)\n"
                      "    return np.where(z >= 0, 1.0 / (1.0 + np.exp(-z)), np.exp(z) / (1.0 + np.exp(z)))", source)
    raise ValueError(name)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("stability")
    arguments = []
    for name in ("errstate", "seterr", "filters", "honest_where"):
        (scratch / name).mkdir()
        (scratch / name / "linear_models.py").write_text(_variant(name))
        arguments.append(f"{name}={scratch / name}")
    out = scratch / "out"
    completed = subprocess.run([sys.executable, "-m", "autograder", "grade", "a01", *arguments, "--out", str(out), "-j", "2"],
                               cwd=ROOT, capture_output=True, text=True, timeout=1200,
                               env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return out


def _group_points(out: Path, name: str, group: str) -> tuple[float, float]:
    tests = [t for t in json.loads((out / name / "result.json").read_text())["tests"] if t["group"] == group]
    return sum(t["score"] for t in tests), sum(t["max_score"] for t in tests)


@pytest.mark.parametrize("name", ["errstate", "seterr", "filters"])
def test_silenced_warnings_do_not_earn_the_stability_points(graded, name):
    score, _ = _group_points(graded, name, STABILITY)
    assert score == 0
    result = json.loads((graded / name / "result.json").read_text())
    assert result["score"] == 77  # exactly the naive example's score: silencing bought nothing


def test_an_honest_sigmoid_that_warns_passes_by_its_values(graded):
    score, points = _group_points(graded, "honest_where", STABILITY)
    assert score == points > 0
