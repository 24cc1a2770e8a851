"""`autograder release`: the student release from the solutions (build), proven free of leaks (leak_scan)."""
from autograder.commands.release.build import main

__all__ = ["main"]
