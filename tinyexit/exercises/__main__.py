"""Command line: ``python -m tinyexit.exercises {list,check,make-student,render}``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .notebooks import NotebookError, exercise_cells, read_notebook, run_exercises, to_student
from .registry import EXERCISES, ExerciseFailed, check

EXECUTED_DIR = "tutorials-executed"


def _list(_args) -> int:
    for ex in EXERCISES.values():
        print(f"{ex.id:<26} {ex.summary}")
    return 0


def _check(args) -> int:
    nb = read_notebook(args.notebook)
    ids = list(exercise_cells(nb))
    wanted = args.exercise or ids
    unknown = [e for e in wanted if e not in ids]
    if unknown:
        print(
            f"{args.notebook} has no exercise {', '.join(unknown)}; it has: {', '.join(ids) or 'none'}",
            file=sys.stderr,
        )
        return 2
    try:
        namespace = run_exercises(nb)
    except Exception as err:  # a student's cell that does not even run is reported, not a traceback
        print(
            f"running the exercise cells of {args.notebook} raised {type(err).__name__}: {err}",
            file=sys.stderr,
        )
        return 1
    failed = 0
    for ex in wanted:
        name = EXERCISES[ex].name
        try:
            check(ex, namespace[name])
        except ExerciseFailed as err:
            failed += 1
            print(f"FAILED {err}")
    print(f"{len(wanted) - failed} of {len(wanted)} exercises passed")
    return 1 if failed else 0


def _make_student(args) -> int:
    out = Path(args.out_dir)
    sources = sorted(Path(args.tutorials).glob("*.ipynb"))
    if not sources:
        print(f"no notebooks in {args.tutorials}", file=sys.stderr)
        return 2
    if out.resolve() == Path(args.tutorials).resolve():
        print("the output folder must differ from the solution notebooks' folder", file=sys.stderr)
        return 2
    existing = [p.name for p in sources if (out / p.name).exists()]
    if existing and not args.force:
        print(f"{out} already holds {', '.join(existing)}; pass --force to overwrite them", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    for path in sources:
        nb = read_notebook(path)
        (out / path.name).write_text(
            json.dumps(to_student(nb), indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        print(f"{out / path.name}: exercises {', '.join(exercise_cells(nb)) or 'none'}")
    return 0


def _render(args) -> int:
    from .render import render

    sources = sorted(Path(args.tutorials).glob("*.ipynb"))
    if args.notebook:
        sources = [p for p in sources if p.name[:2] in args.notebook or p.name in args.notebook]
    if not sources:
        print(f"no notebooks to render in {args.tutorials}", file=sys.stderr)
        return 2
    # a sibling of the source folder, so that relative links in the notebooks resolve in both
    out = Path(args.out_dir) if args.out_dir else Path(args.tutorials).resolve().parent / EXECUTED_DIR
    if out.resolve() == Path(args.tutorials).resolve():
        print("the output folder must differ from the source notebooks' folder", file=sys.stderr)
        return 2
    from nbclient.exceptions import CellExecutionError

    for path in sources:
        try:
            seconds = render(path, out, quick=not args.full)
        except CellExecutionError as err:
            print(f"{path}: a cell raised {err.ename}: {err.evalue}; nothing written for it", file=sys.stderr)
            return 1
        print(f"{out / path.name}: {seconds:.0f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m tinyexit.exercises``."""
    parser = argparse.ArgumentParser(prog="python -m tinyexit.exercises", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the exercises").set_defaults(run=_list)
    p = sub.add_parser("check", help="run the checks of a notebook's exercises")
    p.add_argument("notebook", help="a notebook holding exercise cells (a student or a solution notebook)")
    p.add_argument("exercise", nargs="*", help="exercise ids to check (default: all in the notebook)")
    p.set_defaults(run=_check)
    p = sub.add_parser("make-student", help="write student notebooks (solutions replaced by stubs)")
    p.add_argument("out_dir", help="folder for the student notebooks")
    p.add_argument(
        "--tutorials", default="tutorials", help="folder of the solution notebooks (default: tutorials)"
    )
    p.add_argument("--force", action="store_true", help="overwrite student notebooks already in out_dir")
    p.set_defaults(run=_make_student)
    p = sub.add_parser("render", help="run the notebooks and write executed copies with their outputs")
    p.add_argument("notebook", nargs="*", help="notebook numbers or names to render (default: all)")
    p.add_argument(
        "--out-dir", help=f"folder for the executed copies (default: {EXECUTED_DIR}/ next to the tutorials)"
    )
    p.add_argument(
        "--tutorials", default="tutorials", help="folder of the source notebooks (default: tutorials)"
    )
    p.add_argument("--full", action="store_true", help="full sizes instead of quick mode (TINYEXIT_QUICK=1)")
    p.set_defaults(run=_render)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (NotebookError, OSError, json.JSONDecodeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
