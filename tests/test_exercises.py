"""The tutorial exercises: every solution passes its check, every stub and typical mistake fails it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinyexit as te
from tinyexit.exercises import EXERCISES, ExerciseFailed, check
from tinyexit.exercises.notebooks import (
    BEGIN,
    END,
    NotebookError,
    exercise_cells,
    exercise_id,
    read_notebook,
    run_exercises,
    stub,
    to_student,
)

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "tutorials").glob("*.ipynb"))
BY_ID = {ex: path for path in NOTEBOOKS for ex in exercise_cells(read_notebook(path))}


def test_every_exercise_is_in_its_notebook():
    assert sorted(BY_ID) == sorted(EXERCISES)
    for ex, path in BY_ID.items():
        assert path.name.startswith(EXERCISES[ex].notebook + "_"), f"{ex} lives in {path.name}"


def test_each_exercise_cell_is_followed_by_its_check():
    for path in NOTEBOOKS:
        cells = read_notebook(path)["cells"]
        for cell, after in zip(cells, cells[1:]):
            ex = exercise_id(cell)
            if ex is not None:
                assert "".join(after["source"]).strip() == f'check("{ex}", {EXERCISES[ex].name})', path.name


@pytest.mark.parametrize("ex", sorted(EXERCISES))
def test_solution_passes(ex, capsys):
    namespace = run_exercises(read_notebook(BY_ID[ex]))
    assert check(ex, namespace[EXERCISES[ex].name]) is True
    assert capsys.readouterr().out == f"{ex}: passed\n"


@pytest.mark.parametrize("ex", sorted(EXERCISES))
def test_stub_fails(ex):
    namespace = run_exercises(to_student(read_notebook(BY_ID[ex])))
    with pytest.raises(ExerciseFailed, match=rf"^{ex}: not written yet"):
        check(ex, namespace[EXERCISES[ex].name])


def test_student_notebooks_hold_no_solution():
    for path in NOTEBOOKS:
        nb = read_notebook(path)
        solutions, students = exercise_cells(nb), exercise_cells(to_student(nb))
        assert list(solutions) == list(students)
        for ex, source in students.items():
            assert BEGIN not in source and END not in source
            hidden = solutions[ex].split(BEGIN)[1].split(END)[0].strip().splitlines()
            assert not any(line.strip() in source for line in hidden if len(line.strip()) > 12), ex


def _wrong_mini_grad(output, leaves):
    # naive recursion: correct values, one backward call per path
    totals = {}

    def push(t, g):
        if t.grad_fn is None:
            totals[id(t)] = g + totals[id(t)] if id(t) in totals else g
            return
        gs = t.grad_fn.backward(g)
        for parent, gp in zip(t.grad_fn.inputs, gs if isinstance(gs, tuple) else (gs,)):
            push(parent, gp)

    with te.no_grad():
        push(output, te.ones_like(output))
    return [totals[id(leaf)] for leaf in leaves]


class _NumpyBackwardLogCosh(te.Function):
    def forward(self, x):
        return np.logaddexp(x, -x) - np.log(2.0)

    def backward(self, gy):
        return gy * te.tensor(np.tanh(self.inputs[0].data))  # right values, but a constant to autograd


class _OverflowingLogCosh(_NumpyBackwardLogCosh):
    def forward(self, x):
        with np.errstate(over="ignore"):
            return np.log(np.cosh(x))

    def backward(self, gy):
        return gy * te.tanh(self.inputs[0])


def _col2im_without_accumulation(cols, x_shape, kh, kw, stride, padding):
    n, c, h, w = x_shape
    ho, wo = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    cols = cols.reshape(n, c, kh, kw, ho, wo)
    xpad = np.zeros((n, c, h + 2 * padding, w + 2 * padding))
    for p in range(kh):
        for q in range(kw):
            xpad[:, :, p : p + stride * ho : stride, q : q + stride * wo : stride] = cols[
                :, :, p, q
            ]  # = instead of +=
    return xpad[:, :, padding : padding + h, padding : padding + w]


def _half_step_with_old_weights(model, wpn, optimizer, wpn_optimizer, x_tr, y_tr, x_me, y_me, q=0.75):
    from tinyexit import nn
    from tinyexit.l2w import allocate, allocated_loss, weighted_loss
    from tinyexit.models import exit_confidences, exit_losses

    model.train()
    params, names = list(model.parameters()), [name for name, _ in model.named_parameters()]
    losses = exit_losses(model(x_tr), y_tr)
    with te.no_grad():
        w_old = wpn(losses)  # the mistake: the real update uses the WPN before its meta step
    theta_hat = optimizer.virtual_step(
        params, te.grad(weighted_loss(wpn(losses), losses), params, create_graph=True)
    )
    scratch = {name: te.tensor(b.numpy().copy()) for name, b in model.named_buffers()}
    meta_logits = nn.functional_call(model, {**dict(zip(names, theta_hat)), **scratch}, x_me)
    meta = allocated_loss(meta_logits, y_me, allocate(exit_confidences(meta_logits).numpy().T, q))
    wpn_optimizer.zero_grad()
    for p, g in zip(wpn.parameters(), te.grad(meta, list(wpn.parameters()))):
        p.grad = g
    wpn_optimizer.step()
    optimizer.zero_grad()
    weighted_loss(w_old, losses).backward()
    optimizer.step()


MISTAKES = {
    "01.topological_order": (
        "outputs first",
        lambda out: [out.grad_fn] + [t.grad_fn for t in out.grad_fn.inputs if t.grad_fn is not None],
    ),
    "01.mini_grad": ("one backward per path", _wrong_mini_grad),
    "02.LogCosh": ("a NumPy backward", _NumpyBackwardLogCosh),
    "02.hvp": ("the gradient instead of H v", lambda f, x, v: te.grad(f(x), x)[0]),
    "03.col2im": ("overwriting instead of adding", _col2im_without_accumulation),
    "03.conv2d_input_grad": ("missing the transpose", lambda gy, w, x_shape, s, p: np.zeros(x_shape)),
    "04.assign_exits": (
        "the last confident exit",
        lambda probs, th: np.where(
            probs.max(axis=2) >= np.asarray(th)[:, None], np.arange(len(th))[:, None], 0
        ).max(axis=0),
    ),
    "05.find_thresholds": (
        "quota from the first exit's share",
        lambda probs, shares: np.append(np.quantile(probs.max(axis=2), 1 - shares[0], axis=1)[:-1], -np.inf),
    ),
    "06.allocate": (
        "least confident first",
        lambda conf, q: [
            np.argsort(conf[0])[: conf.shape[1] // 2],
            np.argsort(conf[0])[conf.shape[1] // 2 :],
        ],
    ),
    "06.pseudo_update": (
        "a NumPy step",
        lambda ps, gs, bs, lr, mu, wd: [
            te.tensor(p.numpy() - lr * (mu * b + g.numpy() + wd * p.numpy())) for p, g, b in zip(ps, gs, bs)
        ],
    ),
    "06.half_step": ("the real update with the WPN before its step", _half_step_with_old_weights),
    "07.paired_difference": (
        "the standard deviation, not the error",
        lambda a, b: (np.mean(np.subtract(a, b)), np.std(np.subtract(a, b), ddof=1)),
    ),
}


@pytest.mark.parametrize("ex", sorted(EXERCISES))
def test_typical_mistake_fails(ex):
    what, answer = MISTAKES[ex]
    with pytest.raises(ExerciseFailed, match=rf"^{ex}: ") as info:
        check(ex, answer)
    assert "not written yet" not in str(info.value), what


def test_overflowing_forward_is_caught():
    with pytest.raises(ExerciseFailed, match="overflows"):
        check("02.LogCosh", _OverflowingLogCosh)


def test_library_function_is_not_an_answer():
    from tinyexit.evaluate import assign_exits

    with pytest.raises(ExerciseFailed, match="the library's assign_exits"):
        check("04.assign_exits", assign_exits)


def test_unknown_exercise():
    with pytest.raises(KeyError, match="no exercise '01.nope'"):
        check("01.nope", len)


def test_stub_markers_must_be_well_formed():
    assert (
        stub(f"def f():\n    {BEGIN}\n    return 1\n    {END}\n", "01.x")
        == 'def f():\n    raise NotImplementedError("exercise 01.x: write this part")\n'
    )
    for bad in [
        f"def f():\n    {BEGIN}\n    return 1\n",
        "def f():\n    return 1\n",
        f"{END}\n",
        f"{BEGIN}\n{BEGIN}\n{END}\n",
    ]:
        with pytest.raises(NotebookError):
            stub(bad, "01.x")


def _cli(*args, cwd=REPO):
    return subprocess.run(
        [sys.executable, "-m", "tinyexit.exercises", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_command_line_list():
    listed = _cli("list")
    assert listed.returncode == 0
    assert [line.split()[0] for line in listed.stdout.splitlines()] == list(EXERCISES)


def test_command_line_make_student_and_check(tmp_path):
    out = tmp_path / "student"
    made = _cli("make-student", str(out))
    assert made.returncode == 0, made.stderr
    assert sorted(p.name for p in out.glob("*.ipynb")) == [p.name for p in NOTEBOOKS]
    for path in out.glob("*.ipynb"):
        nb = json.loads(path.read_text(encoding="utf-8"))
        assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")
    again = _cli("make-student", str(out))
    assert again.returncode == 2 and "--force" in again.stderr
    student = _cli("check", str(out / "01_autograd_from_scratch.ipynb"))
    assert student.returncode == 1 and "FAILED 01.mini_grad: not written yet" in student.stdout
    solution = _cli("check", "tutorials/02_second_order.ipynb", "02.hvp")
    assert solution.returncode == 0 and solution.stdout.endswith("1 of 1 exercises passed\n")
    unknown = _cli("check", "tutorials/02_second_order.ipynb", "02.nope")
    assert unknown.returncode == 2 and "has no exercise 02.nope" in unknown.stderr


def test_a_cell_that_does_not_define_its_answer_is_reported():
    nb = read_notebook(BY_ID["04.assign_exits"])
    for cell in nb["cells"]:
        if exercise_id(cell) == "04.assign_exits":
            cell["source"] = ["# Exercise 04.assign_exits\n", "pass\n"]
    with pytest.raises(NotebookError, match="does not define assign_exits"):
        run_exercises(nb)
