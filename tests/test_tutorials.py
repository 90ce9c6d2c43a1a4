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


EXECUTED = REPO / "tutorials-executed"
EXECUTED_MAX_BYTES = 3_000_000
RENDER = "python -m tinyexit.exercises render"


def _cells(nb: dict) -> list[tuple[str, str]]:
    return [(c["cell_type"], "".join(c["source"])) for c in nb["cells"]]


def _executed(path: Path) -> dict:
    copy = EXECUTED / path.name
    assert copy.exists(), f"{copy.relative_to(REPO)} is missing; write it with `{RENDER} {path.name[:2]}`"
    return json.loads(copy.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_executed_copy_has_the_sources_cells(path):
    executed = _executed(path)
    cells = _cells(executed)
    assert cells[0][0] == "markdown" and cells[0][1].startswith("<!-- executed copy -->"), (
        f"tutorials-executed/{path.name} does not start with the header that `{RENDER}` writes"
    )
    assert cells[1:] == _cells(json.loads(path.read_text(encoding="utf-8"))), (
        f"tutorials-executed/{path.name} is stale: {path.name} changed since it was rendered; "
        f"run `{RENDER} {path.name[:2]}`"
    )
    assert executed["metadata"]["tinyexit"]["source"] == path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_executed_copy_ran_without_errors_and_kept_its_outputs(path):
    code = [c for c in _executed(path)["cells"] if c["cell_type"] == "code"]
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1)), (
        f"tutorials-executed/{path.name}: not every code cell ran, in order"
    )
    outputs = [o for c in code for o in c["outputs"]]
    errors = [o for o in outputs if o["output_type"] == "error"]
    assert not errors, f"tutorials-executed/{path.name}: {errors[0]['ename']}: {errors[0]['evalue']}"
    tracebacks = [o for o in outputs if o.get("name") == "stderr" and "Traceback" in "".join(o["text"])]
    assert not tracebacks, f"tutorials-executed/{path.name}: a traceback on stderr"
    assert any(o["output_type"] == "stream" and o["name"] == "stdout" for o in outputs), (
        f"tutorials-executed/{path.name} printed nothing"
    )
    for cell in code:
        if "plt.show()" in "".join(cell["source"]):
            assert any("image/png" in o.get("data", {}) for o in cell["outputs"]), (
                f"tutorials-executed/{path.name}: a cell that shows a figure has no PNG:\n"
                + "".join(cell["source"])[:200]
            )


def test_executed_copies_are_small_and_have_sources():
    copies = sorted(EXECUTED.glob("*.ipynb"))
    orphans = sorted({p.name for p in copies} - {p.name for p in NOTEBOOKS})
    assert not orphans, f"executed copies without a source notebook: {orphans}"
    total = sum(p.stat().st_size for p in copies)
    assert total < EXECUTED_MAX_BYTES, f"the executed copies take {total / 1e6:.1f} MB"


def test_render_writes_an_executed_copy_and_reports_a_failing_cell(tmp_path, kernel_env, capsys):
    nbformat = pytest.importorskip("nbformat", reason="rendering needs nbformat")
    pytest.importorskip("nbclient", reason="rendering needs nbclient")
    from tinyexit.exercises.__main__ import main

    sources = tmp_path / "tutorials"
    sources.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# 01 · tiny"),
        nbformat.v4.new_code_cell("import os\nprint(6 * 7, os.environ.get('TINYEXIT_QUICK'))"),
        nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\nplt.plot([0, 1])\nplt.show()"),
    ]
    nbformat.write(nb, sources / "01_tiny.ipynb")
    assert main(["render", "--tutorials", str(sources)]) == 0
    copy = json.loads((tmp_path / "tutorials-executed" / "01_tiny.ipynb").read_text(encoding="utf-8"))
    assert _cells(copy)[1:] == _cells(nb) and "quick mode" in _cells(copy)[0][1]
    printed, drawn = copy["cells"][2]["outputs"], copy["cells"][3]["outputs"]
    assert "".join(printed[0]["text"]) == "42 1\n"
    assert [c["execution_count"] for c in copy["cells"][2:]] == [1, 2]
    assert any("image/png" in o.get("data", {}) for o in drawn)

    nb.cells.append(nbformat.v4.new_code_cell("1 / 0"))
    nbformat.write(nb, sources / "02_broken.ipynb")
    capsys.readouterr()
    assert main(["render", "02", "--tutorials", str(sources)]) == 1
    assert "a cell raised ZeroDivisionError" in capsys.readouterr().err
    assert not (tmp_path / "tutorials-executed" / "02_broken.ipynb").exists()


def test_each_notebook_says_how_long_it_runs():
    for path in NOTEBOOKS:
        first = "".join(json.loads(path.read_text(encoding="utf-8"))["cells"][0]["source"])
        line = re.search(r"\*\*Running time\.\*\*([^\n]*)", first)
        assert line and "quick mode" in line.group(1) and re.search(r"\d", line.group(1)), (
            f"{path.name}: the first cell should say how long the notebook runs in quick and full mode "
            "(a '**Running time.**' line)"
        )
