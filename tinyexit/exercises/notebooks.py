"""Exercise cells in the tutorial notebooks: find them, turn solutions into stubs, run them.

An exercise cell is a code cell whose first line is ``# Exercise NN.name``. Its solution lies between a
``# BEGIN SOLUTION`` line and an ``# END SOLUTION`` line; the student notebook gets, in its place,
``raise NotImplementedError(...)`` at the same indentation. Exercise cells use only the notebook's
first code cell (its imports) and earlier exercise cells, so they can be run without the rest of the
notebook, which is what ``python -m tinyexit.exercises check`` does.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .registry import EXERCISES

HEADER = re.compile(r"#\s*Exercise\s+(\d\d\.\w+)\s*$")
BEGIN, END = "# BEGIN SOLUTION", "# END SOLUTION"


class NotebookError(ValueError):
    """A notebook's exercise markers are malformed."""


def read_notebook(path: str | Path) -> dict:
    """The notebook at ``path`` as a JSON dict (nbformat 4)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def exercise_id(cell: dict) -> str | None:
    """The exercise id of a code cell whose first line is ``# Exercise NN.name``, else None."""
    if cell["cell_type"] != "code":
        return None
    match = HEADER.match(_source(cell).split("\n", 1)[0])
    return match.group(1) if match else None


def exercise_cells(nb: dict) -> dict[str, str]:
    """Map each exercise id of the notebook to its cell's source, in notebook order."""
    found: dict[str, str] = {}
    for cell in nb["cells"]:
        ex = exercise_id(cell)
        if ex is None:
            continue
        if ex not in EXERCISES:
            raise NotebookError(f"exercise cell names {ex!r}, which is not in tinyexit.exercises.EXERCISES")
        if ex in found:
            raise NotebookError(f"exercise {ex} appears in two cells")
        found[ex] = _source(cell)
    return found


def stub(source: str, ex: str) -> str:
    """``source`` with every solution block replaced by ``raise NotImplementedError``."""
    out, inside, blocks = [], False, 0
    for line in source.split("\n"):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise NotebookError(f"exercise {ex}: nested {BEGIN}")
            inside, blocks = True, blocks + 1
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f'{indent}raise NotImplementedError("exercise {ex}: write this part")')
        elif marker == END:
            if not inside:
                raise NotebookError(f"exercise {ex}: {END} without {BEGIN}")
            inside = False
        elif not inside:
            out.append(line)
    if inside or blocks == 0:
        raise NotebookError(f"exercise {ex}: needs one or more {BEGIN} ... {END} blocks, each closed")
    return "\n".join(out)


def to_student(nb: dict) -> dict:
    """A copy of a solution notebook with stubs for solutions and every output cleared."""
    student = json.loads(json.dumps(nb))
    for cell in student["cells"]:
        if cell["cell_type"] != "code":
            continue
        ex = exercise_id(cell)
        if ex is not None:
            cell["source"] = stub(_source(cell), ex).splitlines(keepends=True)
        cell["outputs"], cell["execution_count"] = [], None
    return student


def run_exercises(nb: dict) -> dict:
    """Run the notebook's first code cell and its exercise cells; return the namespace they filled."""
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    if not code:
        raise NotebookError("the notebook has no code cell")
    namespace: dict = {"__name__": "__exercises__"}
    exec(compile(_source(code[0]), "<first cell>", "exec"), namespace)
    for ex, source in exercise_cells(nb).items():
        name = EXERCISES[ex].name
        before = namespace.get(name)
        exec(compile(source, f"<exercise {ex}>", "exec"), namespace)
        if name not in namespace or namespace[name] is before:
            raise NotebookError(f"the cell of exercise {ex} does not define {name}")
    return namespace
