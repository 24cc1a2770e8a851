"""Code that runs inside the student worker: stdlib, numpy and torch only, no grader secrets."""
