"""Exercises for the tutorials, with automatic checks.

Each exercise is a function (or a ``Function`` class) that a student writes in a tutorial notebook.
The solution notebooks in ``tutorials/`` hold the solutions between ``# BEGIN SOLUTION`` and
``# END SOLUTION`` lines; ``python -m tinyexit.exercises make-student OUT_DIR`` writes the student
notebooks, where each such block becomes ``raise NotImplementedError(...)``. A student checks an
answer in the notebook with ``check("01.topological_order", topological_order)``, or from the
command line with ``python -m tinyexit.exercises check NOTEBOOK``.
"""

from __future__ import annotations

from .registry import EXERCISES, Exercise, ExerciseFailed, check

__all__ = ["EXERCISES", "Exercise", "ExerciseFailed", "check"]
