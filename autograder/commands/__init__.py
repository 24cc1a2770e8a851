"""One module (or subpackage) per verb, each with a keyword-only `main`: check, submit, grade,
report, release, verify, export. A verb never imports another verb; what two share lives in
pipeline/ or course/."""
