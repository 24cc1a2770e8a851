"""`autograder report`: gradebook.csv, per-student feedback and the class report (pages, plots)."""
from autograder.commands.report.build import main

__all__ = ["main"]
