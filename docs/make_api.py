"""Write docs/api.md, the API reference, from the public names and their docstrings.

    python docs/make_api.py          # rewrite docs/api.md
    python docs/make_api.py --check  # exit 1 if docs/api.md is out of date (the test suite runs this)

The public names of a module are its ``__all__``, else its functions and classes (for a package,
those its ``__init__`` imports) whose names do not start with an underscore. Each entry gives the signature
and the docstring's first paragraph;
classes also list their public methods.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import sys
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # document this checkout, not an installed copy
import tinyexit  # noqa: E402

API_MD = Path(__file__).with_name("api.md")
MODULES = [
    ("tinyexit", "Tensors, autograd and the tensor operations (the names follow `torch`)."),
    ("tinyexit.nn", "Modules, layers and `functional_call`, as `torch.nn`."),
    ("tinyexit.nn.functional", "Functional operations with PyTorch's names and signatures."),
    ("tinyexit.nn.init", "Parameter initialisation, as `torch.nn.init`."),
    ("tinyexit.optim", "Optimisers and the cosine schedule, as `torch.optim`."),
    ("tinyexit.models", "MSDNet, RANet, presets and per-exit Mul-Add counting."),
    ("tinyexit.l2w", "The weight prediction network, meta-data allocation and the L2W training step."),
    ("tinyexit.training", "The baseline objective, checkpoints and the epoch loop."),
    ("tinyexit.evaluate", "Anytime and budgeted-batch evaluation, early-exit inference."),
    ("tinyexit.data", "CIFAR readers, long-tailed subsets, augmentation and batching."),
    ("tinyexit.experiment", "The runner behind `python -m tinyexit train` and `eval`."),
    ("tinyexit.plots", "The figures: dynamic curves, accuracy per exit, weight vs loss."),
    ("tinyexit.viz", "Pictures of an autograd graph: matplotlib drawing and Graphviz DOT text."),
    ("tinyexit.diagrams", "Pictures of MSDNet's scale grid, RANet's flows and the L2W step."),
    ("tinyexit.exercises", "The tutorials' exercises and their checks (`python -m tinyexit.exercises`)."),
    ("tinyexit.backend", "Array modules, devices and kernel dispatch."),
]


def public_names(module: ModuleType) -> list[str]:
    """The module's ``__all__``, else the non-underscore functions and classes it defines (a package:
    that its ``__init__`` imports from tinyexit)."""
    if hasattr(module, "__all__"):
        return sorted(module.__all__, key=str.lower)
    home = "tinyexit" if hasattr(module, "__path__") else module.__name__
    names = []
    for name, obj in vars(module).items():
        own = getattr(obj, "__module__", "") or ""
        if (
            not name.startswith("_")
            and (inspect.isfunction(obj) or inspect.isclass(obj))
            and own.startswith(home)
        ):
            names.append(name)
    return sorted(names, key=str.lower)


def summary(obj) -> str:
    """The first paragraph of the docstring, on one line."""
    doc = inspect.getdoc(obj) or ""
    return " ".join(doc.split("\n\n")[0].split())


def arguments(obj) -> list[str]:
    """The ``Args:`` section of a Google-style docstring as Markdown bullets, one per argument."""
    lines = (inspect.getdoc(obj) or "").splitlines()
    if "Args:" not in lines:
        return []
    items: list[str] = []
    for line in lines[lines.index("Args:") + 1 :]:
        if not line.strip():
            break
        if not line.startswith("    "):
            break
        text = line.strip()
        if line.startswith("     ") and items:  # a continuation of the argument above
            items[-1] += " " + text
        elif ":" in text:
            name, about = text.split(":", 1)
            items.append(f"  - `{name.strip()}`: {about.strip()}")
    return ["- Arguments:", *items] if items else []


def fields(cls) -> list[str]:
    """A dataclass's fields and defaults, as one Markdown bullet."""
    if not dataclasses.is_dataclass(cls):
        return []
    shown = [
        f"`{f.name}={f.default!r}`" if f.default is not dataclasses.MISSING else f"`{f.name}`"
        for f in dataclasses.fields(cls)
    ]
    return [f"- Fields: {', '.join(shown)}"]


def signature(obj) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return ""


def entry(qualified: str, obj) -> list[str]:
    """Markdown lines for one public name."""
    if inspect.isclass(obj):
        lines = [f"### `{qualified}{signature(obj)}`", "", summary(obj), "", *arguments(obj), *fields(obj)]
        for name, member in sorted(vars(obj).items()):
            if isinstance(member, (classmethod, staticmethod)):
                member = member.__func__
            if name.startswith("_") or not (inspect.isfunction(member) or isinstance(member, property)):
                continue
            if isinstance(member, property):
                lines.append(f"- `{name}` (property): {summary(member)}")
            else:
                about = summary(member) or (f"method form of `te.{name}`." if hasattr(tinyexit, name) else "")
                lines.append(f"- `{name}{signature(member)}`: {about}")
        return lines + [""]
    if callable(obj):
        return [f"### `{qualified}{signature(obj)}`", "", summary(obj), ""]
    return [
        f"### `{qualified}`",
        "",
        f"A constant: `{obj!r}`."
        if not isinstance(obj, dict)
        else f"A dict with keys {', '.join(f'`{k}`' for k in obj)}.",
        "",
    ]


def render() -> str:
    """The whole of docs/api.md."""
    lines = [
        "# API reference",
        "",
        "Generated from the docstrings by `python docs/make_api.py`; a test fails when it is out of date.",
        "Signatures and names follow PyTorch where PyTorch has one (see design-choices.md for the",
        "differences).",
        "",
    ]
    for module_name, about in MODULES:
        module = sys.modules.get(module_name) or __import__(module_name, fromlist=["_"])
        lines += [f"## `{module_name}`", "", about, ""]
        for name in public_names(module):
            obj = getattr(module, name)
            if inspect.ismodule(obj):
                continue
            lines += entry(f"{module_name}.{name}" if module_name != "tinyexit" else f"te.{name}", obj)
    return "\n".join(lines).rstrip() + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that docs/api.md is up to date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if API_MD.exists() and API_MD.read_text() == text:
            return 0
        print(f"{API_MD} is out of date: run python docs/make_api.py", file=sys.stderr)
        return 1
    API_MD.write_text(text)
    print(f"wrote {API_MD} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
