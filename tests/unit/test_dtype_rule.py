"""The scoped forbidden-dtype rule: honest code passes, every evasion is refused with its line."""
import textwrap

import pytest

from autograder.pipeline.scan import scan_source
from autograder.course.reader import load_course
from autograder.pipeline.dtype_rule import DtypeRule, scan_dtypes

RULE = DtypeRule(names=("float16", "half", "bfloat16", "HalfTensor", "BFloat16Tensor"), codes=("e", "f2"),
                 within=("round_to_fp16", "fp16_ulp"))


def findings(source: str) -> list[tuple[int, str]]:
    return [(f.line, f.message) for f in scan_dtypes(textwrap.dedent(source), RULE, filename="m.py")]


HONEST = '''
"""Module docstring: we round to float16 (np.float16) by hand."""
import struct
import numpy as np
import torch
from numpy import float16 as f16          # used outside the scope only

EXPONENT_BITS = 5   # float16 has 5 exponent bits; np.float16 is not used below


def round_to_fp16(x):
    """Round like x.astype(np.float16), but with arithmetic: 'float16', "e", '<f2'."""
    float16_max = 65504.0          # a local name mentioning float16
    half = 0.5                     # a local called half
    x = np.asarray(x, dtype=np.float64)
    text = f"{float16_max:e} {format(half, 'e')}"   # scientific notation
    e = np.e
    return _helper(x) * half * 2 + 0 * e + 0 * len(text) + EXPONENT_BITS * 0


def _helper(x):
    # x.astype(np.float16) would be forbidden here
    bits = x.view(np.uint64)
    return (bits & ~np.uint64(0)).view(np.float64)


def fp16_ulp(x):
    return np.ldexp(1.0, np.floor(np.log2(np.abs(x))).astype(int) - 10)


def mixed_copy(master):
    return master.to(torch.float16), master.half(), np.float16(1.0), f16(2), struct.pack("<e", 1.0)


def underflow(grads):
    return getattr(grads, "half")().float(), (grads * 2).to(dtype=torch.bfloat16)
'''


def test_honest_code_mentioning_float16_passes():
    assert findings(HONEST) == []


EVASIONS = {
    "attribute": ("import numpy as np\ndef round_to_fp16(x):\n    return x.astype(np.float16)\n", 3),
    "torch method": ("import torch\ndef round_to_fp16(x):\n    return torch.as_tensor(x).half().double()\n", 3),
    "torch dtype": ("import torch\ndef round_to_fp16(x):\n    t = torch.as_tensor(x)\n    return t.to(torch.bfloat16)\n", 4),
    "numpy half": ("import numpy as np\ndef fp16_ulp(x):\n    return np.spacing(np.half(x))\n", 3),
    "imported name": ("from numpy import float16 as small\ndef round_to_fp16(x):\n    return small(x)\n", 3),
    "star import": ("from numpy import *\ndef round_to_fp16(x):\n    return float16(x)\n", 3),
    "module-level alias": ("import numpy as np\nF = np.float16\nG = F\ndef round_to_fp16(x):\n    return x.astype(G)\n", 5),
    "dtype string": ("def round_to_fp16(x):\n    return x.astype('float16')\n", 2),
    "dtype keyword": ("import numpy as np\ndef round_to_fp16(x):\n    return np.asarray(x, dtype='<f2')\n", 3),
    "view code": ("def round_to_fp16(x):\n    return x.view('e')\n", 2),
    "folded string": ("def round_to_fp16(x):\n    return x.astype('float' + '16')\n", 2),
    "f-string": ("def round_to_fp16(x):\n    n = 16\n    w = 'float'\n    return x.astype(f'{w}16')\n", 4),
    "local constant": ("def round_to_fp16(x):\n    kind = 'e'\n    return x.view(kind)\n", 3),
    "module constant": ("KIND = 'f2'\ndef round_to_fp16(x):\n    return x.astype(KIND)\n", 3),
    "struct e": ("import struct\ndef round_to_fp16(x):\n    return struct.unpack('<e', struct.pack('<e', x))[0]\n", 3),
    "struct alias": ("from struct import pack as p, unpack as u\ndef round_to_fp16(x):\n    return u('>e', p('>e', x))[0]\n", 3),
    "struct computed": ("import struct\ndef round_to_fp16(x, c):\n    return struct.unpack(c, struct.pack(c, x))[0]\n", 3),
    "getattr computed": ("import numpy as np\ndef round_to_fp16(x):\n    return x.astype(getattr(np, 'float' + str(16)))\n", 3),
    "getattr constant": ("import torch\ndef round_to_fp16(x):\n    return getattr(x, 'half')()\n", 3),
    "getattr on a name": ("import numpy as np\nN = 'float'\ndef round_to_fp16(x, k):\n    return getattr(np, N + k)\n", 4),
    "eval": ("def round_to_fp16(x):\n    return eval('x.astype(np.float16)')\n", 2),
    "vars lookup": ("import numpy as np\ndef round_to_fp16(x):\n    return vars(np)['float' + '16'](x)\n", 3),
    "dict key": ("import numpy as np\ndef round_to_fp16(x):\n    return np.sctypeDict['e'](x)\n", 3),
    "helper": ("import numpy as np\ndef round_to_fp16(x):\n    return _cast(x)\ndef _cast(x):\n    return _deeper(x)\n"
               "def _deeper(x):\n    return x.astype(np.float16)\n", 7),
    "helper passed as value": ("import numpy as np\ndef round_to_fp16(x):\n    return list(map(_cast, x))\n"
                               "def _cast(v):\n    return np.float16(v)\n", 5),
    "lambda helper": ("import numpy as np\n_cast = lambda v: v.astype(np.float16)\ndef fp16_ulp(x):\n    return _cast(x)\n", 2),
    "class helper": ("import numpy as np\nclass R:\n    def go(self, x):\n        return x.astype(np.float16)\n"
                     "def round_to_fp16(x):\n    return R().go(x)\n", 4),
    "default argument": ("import numpy as np\ndef round_to_fp16(x, dtype=np.float16):\n    return x.astype(dtype)\n", 2),
    "importlib": ("import importlib\ndef round_to_fp16(x):\n    return importlib.import_module('numpy')\n", 3),
    "HalfTensor": ("import torch\ndef round_to_fp16(x):\n    return torch.as_tensor(x).type(torch.HalfTensor)\n", 3),
}


@pytest.mark.parametrize("name", list(EVASIONS))
def test_evasion_is_refused_with_its_line(name):
    source, line = EVASIONS[name]
    found = findings(source)
    assert found, f"{name}: not refused"
    assert line in [f[0] for f in found], f"{name}: expected a finding on line {line}, got {found}"


def test_float16_outside_the_scoped_functions_is_allowed():
    source = "import numpy as np\ndef round_to_fp16(x):\n    return x * 1.0\ndef to_half(x):\n    return x.astype(np.float16)\n"
    assert findings(source) == []


def test_finding_names_the_function_and_the_helper_chain():
    source = EVASIONS["helper"][0]
    (line, message), = findings(source)
    assert line == 7 and "_deeper" in message and "round_to_fp16" in message


def test_grading_yaml_key_reaches_the_static_check(tmp_path):
    (tmp_path / "grading.yaml").write_text(textwrap.dedent("""\
        course: T
        assignments:
          a08_mixed_precision:
            title: Mixed precision
            lecture: 10
            module: mixed_precision.py
            forbidden:
              dtypes: {names: [float16, half], codes: [e], within: [round_to_fp16]}
            tests:
              - {group: "g", match: "test_public.py::*", points: 100, visibility: public}
        """))
    assignment = load_course(tmp_path / "grading.yaml").assignment("a08")
    assert assignment.forbidden.dtypes.within == ("round_to_fp16",)
    problems = scan_source("import numpy as np\n\ndef round_to_fp16(x):\n    return x.astype(np.float16)\n",
                           assignment, filename="mixed_precision.py")
    assert [(p.fatal, p.line) for p in problems] == [(True, 4)]
    assert "mixed_precision.py, line 4" in problems[0].message and "round_to_fp16" in problems[0].message
    assert scan_source(HONEST, assignment, filename="mixed_precision.py") == []


def test_dtype_rule_needs_its_functions(tmp_path):
    from autograder.errors import ConfigError

    (tmp_path / "grading.yaml").write_text(textwrap.dedent("""\
        course: T
        assignments:
          a08_mixed_precision:
            title: Mixed precision
            lecture: 10
            module: mixed_precision.py
            forbidden:
              dtypes: {names: [float16], withn: [round_to_fp16]}
            tests:
              - {group: "g", match: "test_public.py::*", points: 100, visibility: public}
        """))
    with pytest.raises(ConfigError, match="did you mean 'within'"):
        load_course(tmp_path / "grading.yaml")
