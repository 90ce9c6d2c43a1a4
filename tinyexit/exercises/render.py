"""Executed copies of the tutorials: run each notebook and keep its outputs and figures.

The source notebooks in ``tutorials/`` are committed without outputs; ``render`` runs each one in a
fresh ``python3`` kernel (working directory: the source folder) and writes the executed copy, with a
first markdown cell saying what it is and how it was made (quick or full mode, synthetic or CIFAR-10
data, seconds taken). Figures are embedded as PNG at a modest resolution so the copies stay small.
Running the notebooks needs ``nbclient``, ``nbformat`` and ``ipykernel`` (the ``[dev]`` extra).
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

from ..data import cifar_available

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
FIGURE_DPI = 72
FIRST_CELL = (
    "import matplotlib\n"
    "%config InlineBackend.figure_formats = ['png']\n"
    f"matplotlib.rcParams.update({{'figure.dpi': {FIGURE_DPI}, 'savefig.dpi': {FIGURE_DPI}}})"
)
HEADER_MARK = "<!-- executed copy -->"


def header(source_name: str, quick: bool, data: str | None, seconds: float) -> str:
    """The first markdown cell of an executed copy: what it is, how it was made, how to remake it.

    ``data`` is ``"cifar10"`` or ``"synthetic"`` for a notebook that reads the data root, else None.
    """
    mode = "quick mode (`TINYEXIT_QUICK=1`: smaller sizes in the slow cells)" if quick else "full mode"
    if data == "cifar10":
        mode += ", on CIFAR-10 from the data root (`TINYEXIT_DATA`)"
    elif data == "synthetic":
        mode += ", on synthetic images (no CIFAR-10 copy was found under the data root)"
    source = f"[tutorials/{source_name}](../tutorials/{source_name})"
    return (
        f"{HEADER_MARK}\n"
        f"*Executed copy of {source}, with its outputs, for reading without running. Made by "
        f"`python -m tinyexit.exercises render` in {mode}; it ran in {seconds:.0f} s on "
        f"{platform.machine()} {platform.system()}, a shared and loaded machine. Edit the source "
        "notebook, not this copy, and render again.*"
    )


def execute(path: Path, quick: bool = True, timeout_s: int = 1800):
    """Run one notebook; return the executed ``nbformat`` notebook and the seconds it took.

    Raises:
        nbclient.exceptions.CellExecutionError: A cell raised; the message names the cell.
    """
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(FIRST_CELL))
    saved = {name: os.environ.get(name) for name in ("TINYEXIT_QUICK", "PYTHONPATH")}
    os.environ.pop("TINYEXIT_QUICK", None)
    if quick:
        os.environ["TINYEXIT_QUICK"] = "1"
    # the kernel imports the tinyexit that renders, not another installed copy
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), saved["PYTHONPATH"]]))
    try:
        client = nbclient.NotebookClient(
            nb,
            kernel_name="python3",
            timeout=timeout_s,
            record_timing=False,
            resources={"metadata": {"path": str(path.parent)}},
        )
        start = time.perf_counter()
        client.execute()
        seconds = time.perf_counter() - start
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    del nb.cells[0]
    for number, cell in enumerate((c for c in nb.cells if c.cell_type == "code"), 1):
        cell.execution_count = number
        for output in cell.outputs:
            if "execution_count" in output:
                output["execution_count"] = number
    return nb, seconds


def render(path: Path, out_dir: Path, quick: bool = True) -> float:
    """Write the executed copy of the notebook at ``path`` into ``out_dir``; return the seconds taken."""
    import nbformat

    nb, seconds = execute(path, quick)
    reads_data = any("cifar_available" in cell.source for cell in nb.cells)
    data = ("cifar10" if cifar_available("cifar10") else "synthetic") if reads_data else None
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(header(path.name, quick, data, seconds)))
    nb.metadata["tinyexit"] = {"source": path.name, "quick": quick, "data": data, "seconds": round(seconds)}
    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out_dir / path.name)
    return seconds
