"""Grading one submission, stage by stage: intake (folders, archives, .py, notebooks) -> scan
(the static checks) -> run (a trusted pytest run, warm-pooled) -> score -> results."""
