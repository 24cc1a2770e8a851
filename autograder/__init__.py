"""The course autograder: intake -> static checks -> sandboxed run -> score -> report."""

__version__ = "0.1.0"
