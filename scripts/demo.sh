#!/usr/bin/env bash
# Quick start, command 1: set everything up, then grade the example submissions of every
# assignment (the reference, the generated stub and examples/submissions/<id>/*) and print
# a score table per assignment. Results land in results/<id>/<submission>/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
jobs=${JOBS:-$(nproc)}
for solution in solutions/a*/; do
  id=$(basename "$solution")
  grep -q "^  $id:" grading.yaml || continue
  subs=("reference=solutions/$id")
  [ -d "assignments/$id" ] && subs+=("stub=assignments/$id")
  for example in examples/submissions/"$id"/*/; do
    [ -d "$example" ] && subs+=("$example")
  done
  echo "== $id"
  .venv/bin/python -m autograder grade "$id" "${subs[@]}" --out "results/$id" -j "$jobs"
done
echo
echo "Reports (gradebook.csv, feedback, report.html) for the last results:"
for out in results/a*/; do
  .venv/bin/python -m autograder report "$(basename "$out")" "$out" >/dev/null && echo "  $out"report.html
done
