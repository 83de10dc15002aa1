"""Checkers for the exercises in the chapters.

Each exercise in a notebook has a cell tagged ``solution`` (where the learner
writes an answer) and a check cell that calls one function here. A checker
prints a short confirmation when the answer is right, and raises
:class:`ExerciseError` with a hint when it is not: what was expected, what
came back, and what to look at.
"""

from __future__ import annotations


class ExerciseError(AssertionError):
    """The answer to an exercise is not right yet; the message says what to look at."""


def expect(condition: bool, hint: str) -> None:
    """Raise :class:`ExerciseError` with ``hint`` unless ``condition`` holds."""
    if not condition:
        raise ExerciseError(hint)


def passed(message: str) -> None:
    print(f"Correct: {message}")


def call(fn, *args, **kwargs):
    """Call the learner's function, turning an unfinished stub into a friendly message."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as err:
        raise ExerciseError(
            f"Not done yet: {str(err) or 'replace the NotImplementedError with your code.'}"
        ) from None
