"""Compare two result trees (OUT/<assignment>/<submission>/result.json): every field but the times.

Used for issue 16's proof that the oracle store changes no grade: every example, mutant and the
reference of the nine assignments, each a folder of its own, graded twice with
`autograder grade <id> <folders> --out A/<id> -j 2 --regrade`, once with AUTOGRADER_ORACLE_CACHE=0;
then `python bench/compare_results.py A B`. Recorded: bench/results/oracle_store_identity.txt.
"""
import json, sys
from pathlib import Path
before, after = Path(sys.argv[1]), Path(sys.argv[2])
DROP = {"started_at", "finished_at", "duration_seconds", "timings", "versions", "suite_hash", "suite_version"}
def clean(d):
    d = {k: v for k, v in d.items() if k not in DROP}
    for t in d.get("tests", []):
        t.pop("duration", None); t.pop("duration_seconds", None)
    return d
same = diff = 0
for res in sorted(before.glob('*/*/result.json')):
    rel = res.relative_to(before); other = after / rel
    if not other.exists():
        print("MISSING", rel); diff += 1; continue
    a, b = clean(json.loads(res.read_text())), clean(json.loads(other.read_text()))
    if a != b:
        diff += 1
        keys = [k for k in set(a) | set(b) if a.get(k) != b.get(k)]
        detail = ""
        if "tests" in keys:
            ta = {t["id"]: t for t in a["tests"]}; tb = {t["id"]: t for t in b["tests"]}
            for i in ta:
                if ta[i] != tb.get(i):
                    detail = f"{i}: " + str({k: (ta[i].get(k), (tb.get(i) or {}).get(k)) for k in ta[i] if ta[i].get(k) != (tb.get(i) or {}).get(k)})[:400]; break
        print(f"DIFF {rel.parent}: {keys} {detail}")
    else:
        same += 1
print(f"{same} identical, {diff} different")
