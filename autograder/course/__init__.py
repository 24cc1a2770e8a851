"""The course: grading.yaml's model (assignments, groups, limits, feedback policy), its reader
and overrides, the records passed between pipeline stages, solution regions and late policy."""
