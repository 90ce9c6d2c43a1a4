"""The documentation: the README's first commands, its links, and an API reference in step with the code."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_starts_with_the_two_commands():
    lines = [line for line in (ROOT / "README.md").read_text().splitlines() if line.strip()]
    assert lines[1:5] == [
        "```bash",
        "pip install -e . && python -m tinyexit demo",
        'pip install -e ".[dev]" && python -m pytest',
        "```",
    ]


def test_every_local_link_of_the_readme_and_docs_exists():
    for page in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        for target in re.findall(r"\]\(([^)#]+)\)", page.read_text()):
            if not target.startswith("http"):
                assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_every_local_link_of_the_notebooks_exists():
    notebooks = sorted((ROOT / "tutorials").rglob("*.ipynb"))
    assert notebooks
    for notebook in notebooks:
        for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] != "markdown":
                continue
            for target in re.findall(r"\]\(([^)#]+)\)", "".join(cell["source"])):
                if not target.startswith("http"):
                    assert (notebook.parent / target).exists(), (
                        f"{notebook.relative_to(ROOT)} links to missing {target}"
                    )


def test_api_reference_is_up_to_date():
    result = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "make_api.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


# Names of things a user of the repository does not have: the maintainers' working notes, the folder
# next to the checkout, and work-item numbers.
PRIVATE = re.compile(r"DESIGN\.md|\.\./shared|\b[Ii]ssues? #?\d")


def _repository_text_files() -> list[Path]:
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    paths = [ROOT / name for name in tracked.splitlines()]
    return [
        p for p in paths if p.is_file() and p.suffix in {".md", ".py", ".ipynb", ".cfg", ".ini", ".txt", ""}
    ]


def test_no_file_names_private_notes_or_work_items():
    files = _repository_text_files()
    assert any(p.name == "README.md" for p in files) and any(p.suffix == ".ipynb" for p in files)
    hits = [
        f"{p.relative_to(ROOT)}:{i}: {line.strip()}"
        for p in files
        for i, line in enumerate(p.read_text(errors="replace").splitlines(), 1)
        if PRIVATE.search(line)
    ]
    assert not hits, "\n".join(hits)


def test_private_names_are_caught():
    # built from parts, so that this file does not name them itself
    for line in (
        "see DESIGN" + ".md",
        "TINYEXIT_DATA=../" + "shared/data",
        "## Issue " + "4: a run",
        "(issue " + "8)",
    ):
        assert PRIVATE.search(line), line
    assert not PRIVATE.search("an issue with the data, 4 exits")


def test_commands_in_the_docs_use_a_data_folder_the_reader_chooses():
    for page in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        for folder in re.findall(r"TINYEXIT_DATA=([^\s`]+)", page.read_text()):
            assert folder == "/path/to/data", f"{page.name} sets TINYEXIT_DATA={folder}"
