"""The tutorials: every ``tutorials/*.ipynb`` runs top to bottom, and is committed clean and numbered.

Each notebook is executed with nbclient in a fresh ``python3`` kernel whose working directory is
``tutorials/``, with ``TINYEXIT_QUICK=1`` (smaller sizes in the slow cells). The kernel runs this
very interpreter: the test writes a ``python3`` kernelspec pointing at ``sys.executable`` into a
temporary directory put first on ``JUPYTER_PATH``, and the first cell executed checks it.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TUTORIALS = REPO / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
NAME = re.compile(r"(\d\d)_[a-z0-9]+(_[a-z0-9]+)*\.ipynb")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
CELL_TIMEOUT_S = 600


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """Point the ``python3`` kernelspec at this interpreter; set quick mode and make the repo importable."""
    kernelspec = pytest.importorskip("ipykernel.kernelspec", reason="running the notebooks needs ipykernel")
    jupyter_dir = tmp_path_factory.mktemp("jupyter")
    kernelspec.write_kernel_spec(jupyter_dir / "kernels" / "python3")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(
            "JUPYTER_PATH", os.pathsep.join(filter(None, [str(jupyter_dir), os.environ.get("JUPYTER_PATH")]))
        )
        mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        mp.setenv("TINYEXIT_QUICK", "1")
        yield


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, kernel_env):
    nbformat = pytest.importorskip("nbformat", reason="running the notebooks needs nbformat")
    nbclient = pytest.importorskip("nbclient", reason="running the notebooks needs nbclient")
    nb = nbformat.read(path, as_version=4)
    same_python = (
        "import pathlib, sys\n"
        f"assert pathlib.Path(sys.executable).resolve() == pathlib.Path({sys.executable!r}).resolve(), "
        "f'the kernel runs {sys.executable}, not the interpreter of the tests'"
    )
    nb.cells.insert(0, nbformat.v4.new_code_cell(same_python))
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=CELL_TIMEOUT_S, resources={"metadata": {"path": str(TUTORIALS)}}
    )
    error = None
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as err:
        error = err
    if error is not None:
        pytest.fail(
            f"{path.name}: a cell raised {error.ename}: {error.evalue}\n{ANSI.sub('', str(error))}",
            pytrace=False,
        )


def test_notebooks_are_committed_without_outputs():
    assert NOTEBOOKS, f"no notebooks in {TUTORIALS}"
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text(encoding="utf-8"))
        assert nb["nbformat"] == 4, f"{path.name}: nbformat {nb['nbformat']}, expected 4"
        dirty = [
            i
            for i, cell in enumerate(nb["cells"])
            if cell["cell_type"] == "code" and (cell["outputs"] or cell["execution_count"] is not None)
        ]
        assert not dirty, (
            f"{path.name}: code cells {dirty} carry outputs or execution counts; clear them with "
            f"`jupyter nbconvert --clear-output --inplace tutorials/{path.name}`"
        )


def test_notebooks_are_numbered_in_sequence():
    names = [p.name for p in NOTEBOOKS]
    assert names, f"no notebooks in {TUTORIALS}"
    bad = [n for n in names if not NAME.fullmatch(n)]
    assert not bad, f"notebooks must be named NN_name.ipynb (lower case, underscores): {bad}"
    numbers = [int(n[:2]) for n in names]
    assert numbers == list(range(1, len(names) + 1)), (
        f"notebooks must be numbered 01, 02, ... without gaps: {names}"
    )
