"""The layering of tinyexit (.importlinter): a module imports only from its own layer or lower ones."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO

LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


def _lint(root: Path) -> subprocess.CompletedProcess:
    """Run lint-imports on the ``tinyexit`` under ``root`` (not an installed copy)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_layers_hold():
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_a_lower_layer_importing_a_higher_one_breaks_the_contract(tmp_path):
    shutil.copytree(REPO / "tinyexit", tmp_path / "tinyexit", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / ".importlinter", tmp_path)
    optimizer = tmp_path / "tinyexit" / "optim" / "optimizer.py"
    optimizer.write_text(optimizer.read_text() + "\nfrom ..l2w import allocate\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "tinyexit.optim.optimizer -> tinyexit.l2w" in result.stdout
