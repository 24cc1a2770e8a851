"""The allow-list language surface (issue 10, general rule for 2-4): each refusal one line naming the line.

Honest idioms of a01-a04 pass; each class of reach-around is refused, with variants.
"""
from __future__ import annotations

import ast
import textwrap

import pytest

from autograder.pipeline.surface import surface_problems


def _problems(source: str) -> list[str]:
    return [p.message for p in surface_problems(ast.parse(textwrap.dedent(source)), "sub.py", {"sub", "helper"})]


HONEST = [
    "import numpy as np\nx = np.linalg.norm(np.ones(3))\n",
    "from dataclasses import dataclass, field\n@dataclass\nclass S:\n    m: dict = field(default_factory=dict)\n",
    "import functools, itertools, operator, collections, typing, math, heapq, copy, warnings, abc, enum\n",
    "from typing import NamedTuple, Optional\nclass P(NamedTuple):\n    x: int\n",
    "import torch\nx = torch.zeros(3)\nx.add_(1).mul_(2)\ny = x.__class__.__name__\n",
    "class A:\n    def __init__(self):\n        self._private = 1\n        super().__init__()\n    def get(self):\n        return self._private\n",
    "import os\np = os.path.join('a', 'b')\nn = os.environ.get('X')\n",
    "import sys\neps = sys.float_info.epsilon\n",
    "import helper\nfrom helper import f\n",
    "def f(obj, name):\n    return getattr(obj, name)\n",     # the student's own objects: by name is fine
    "import numpy as np\nv = getattr(np, 'float64')\n",        # a constant public name
    "import torch.nn.functional as F\ny = F.relu(F.softmax(x, dim=-1))\n",
    "import torch\na, b = torch.chunk(torch.ones(4), 2)\n",       # torch.chunk is not the stdlib's chunk
]


@pytest.mark.parametrize("source", HONEST)
def test_honest_code_passes(source):
    assert _problems(source) == []


REFUSED = {
    # exec / eval / compile and dynamic import
    "exec": "exec(compile(open(f).read(), f, 'exec'))\n",
    "eval": "x = eval('1 + 1')\n",
    "builtins via a name": "b = __builtins__\n",
    "__import__": "m = __import__('to' + 'rch')\n",
    # curated standard library
    "importlib": "import importlib\n",
    "importlib.util": "from importlib import util\n",
    "runpy": "import runpy\n",
    "ctypes": "import ctypes\n",
    "gc": "import gc\n",
    "inspect": "import inspect\n",
    "marshal": "import marshal\n",
    "types": "import types\n",
    "code": "import code\n",
    "pickle": "import pickle\n",
    "subprocess": "import subprocess\n",
    "os process API": "import os\nos.system('x')\n",
    "os from-import": "from os import fork\n",
    "os file API": "import os\nos.remove('x')\n",
    "sys internals": "import sys\nm = sys.modules['torch']\n",
    "sys frames": "import sys\nf = sys._getframe()\n",
    # private attributes and modules of libraries
    "private attribute": "import torch\ntorch._fused_adam_([], [], [], [], [], [])\n",
    "private module import": "import torch._C\n",
    "private from-import": "from torch.utils._python_dispatch import _disable_current_modes\n",
    "private name from-import": "from torch import _C\n",
    "private attribute deep": "import numpy as np\nnp.linalg._umath_linalg\n",
    "torch.library": "import torch\nlib = torch.library.Library('aten', 'IMPL')\n",
    # dunder introspection
    "__globals__": "def f(): pass\ng = f.__globals__\n",
    "__code__": "def f(): pass\nc = f.__code__\n",
    "__subclasses__": "s = object.__subclasses__()\n",
    "__mro__": "m = int.__mro__\n",
    "frames": "try:\n    1/0\nexcept Exception as e:\n    f = e.__traceback__.tb_frame.f_back\n",
    "__wrapped__": "import torch\nf = torch.nn.utils.clip_grad_norm_.__wrapped__\n",
    "getattr dunder": "def f(): pass\ng = getattr(f, '__globals__')\n",
    # getattr on computed names of library objects
    "getattr computed": "import torch\nopt = getattr(torch, 'op' + 'tim')\n",
    "getattr computed deep": "import torch\nk = getattr(torch.ops.aten, name)\n",
    "getattr private constant": "import torch\nk = getattr(torch, '_fused_adam_')\n",
    "setattr computed": "import numpy as np\nsetattr(np, name, 1)\n",
    "vars of a library": "import torch\nns = vars(torch)\n",
    # the standard library reached through a library's attributes
    "ctypes through numpy": "import numpy as np\nnp.ctypeslib.ctypes.memset(8, 0, 1)\n",
    "os through a library": "import torch\ntorch.os.system('x')\n",
    "multiprocessing through torch": "import torch\np = torch.multiprocessing.Process\n",
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_reach_arounds_are_refused_with_one_line_naming_the_line(name):
    source = "x = 1\n" + REFUSED[name]
    problems = _problems(source)
    assert problems, name
    for message in problems:
        assert message.startswith("sub.py, line ") and "\n" not in message, message
    assert all(int(message.split("line ", 1)[1].split(":", 1)[0]) >= 2 for message in problems)  # not line 1


def test_scan_rejects_the_submission_before_it_runs(tmp_path):
    from autograder.course.reader import load_course
    from autograder.pipeline.scan import check_submission
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    assignment = load_course(root / "tests" / "fixtures" / "course" / "grading.yaml").assignment("a99")
    (tmp_path / "toy.py").write_text("import sys\nsys.modules['x'] = None\ndef double(x): return x\nclass Counter: pass\n")
    problems = check_submission(tmp_path, assignment)
    assert [p.fatal for p in problems] == [True] and "line 2" in problems[0].message
