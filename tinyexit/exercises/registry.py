"""The list of exercises and ``check``, which runs one exercise's check on a student's answer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import checks_autograd, checks_l2w
from .base import WrongAnswer


class ExerciseFailed(AssertionError):
    """A student's answer did not pass its check; the message says what went wrong."""


@dataclass(frozen=True)
class Exercise:
    """One exercise: its id (``"NN.name"``), the name the answer has in the notebook, and its check."""

    id: str
    name: str
    summary: str
    run: Callable[[Any], None]

    @property
    def notebook(self) -> str:
        """The two-digit number of the notebook the exercise belongs to."""
        return self.id.split(".")[0]


EXERCISES: dict[str, Exercise] = {
    e.id: e
    for e in [
        Exercise(
            "01.topological_order",
            "topological_order",
            "every node reachable from the output, each after the nodes that made its inputs",
            checks_autograd.check_topological_order,
        ),
        Exercise(
            "01.mini_grad",
            "mini_grad",
            "gradients of a scalar output by one backward call per node, in reverse topological order",
            checks_autograd.check_mini_grad,
        ),
        Exercise(
            "02.LogCosh",
            "LogCosh",
            "a Function log(cosh(x)) whose backward passes gradcheck and gradgradcheck",
            checks_autograd.check_logcosh,
        ),
        Exercise(
            "02.hvp", "hvp", "a Hessian-vector product by two reverse passes", checks_autograd.check_hvp
        ),
        Exercise(
            "03.col2im",
            "col2im",
            "the adjoint of im2col: scatter-add columns back to an image",
            checks_autograd.check_col2im,
        ),
        Exercise(
            "03.conv2d_input_grad",
            "conv2d_input_grad",
            "the input gradient of a convolution as a matrix product and col2im",
            checks_autograd.check_conv2d_input_grad,
        ),
        Exercise(
            "04.assign_exits",
            "assign_exits",
            "the exit each sample leaves at, given thresholds",
            checks_l2w.check_assign_exits,
        ),
        Exercise(
            "05.find_thresholds",
            "find_thresholds",
            "the threshold walk: thresholds that give each exit its share of held-out samples",
            checks_l2w.check_find_thresholds,
        ),
        Exercise(
            "06.allocate",
            "allocate_meta",
            "the meta-data allocation of meta samples to exits",
            checks_l2w.check_allocate,
        ),
        Exercise(
            "06.pseudo_update",
            "pseudo_update",
            "the SGD pseudo-update of Eq. 7 as a differentiable function of the gradients",
            checks_l2w.check_pseudo_update,
        ),
        Exercise(
            "06.half_step",
            "half_step",
            "one L2W half-step: Eq. 5, 7, 6, 8 and 9 in order, as L2WTrainer.step runs it",
            checks_l2w.check_half_step,
        ),
        Exercise(
            "07.paired_difference",
            "paired_difference",
            "mean and standard error of a paired difference over seeds",
            checks_l2w.check_paired_difference,
        ),
    ]
}


def check(exercise_id: str, answer: Any, quiet: bool = False) -> bool:
    """Run the check of one exercise on a student's answer.

    Args:
        exercise_id: ``"NN.name"``, e.g. ``"01.topological_order"``.
        answer: The student's function (or class).
        quiet: Do not print the line that says the check passed.

    Returns:
        True when the answer passes.

    Raises:
        ExerciseFailed: The answer is missing (the stub still raises ``NotImplementedError``),
            raised an error, or gave a wrong result; the message says which.
        KeyError: No exercise has this id.
    """
    if exercise_id not in EXERCISES:
        raise KeyError(f"no exercise {exercise_id!r}; known: {', '.join(EXERCISES)}")
    try:
        EXERCISES[exercise_id].run(answer)
    except NotImplementedError as err:
        raise ExerciseFailed(
            f"{exercise_id}: not written yet (the stub raises NotImplementedError: {err})"
        ) from None
    except WrongAnswer as err:
        raise ExerciseFailed(f"{exercise_id}: {err}") from None
    except Exception as err:
        raise ExerciseFailed(f"{exercise_id}: your code raised {type(err).__name__}: {err}") from err
    if not quiet:
        print(f"{exercise_id}: passed")
    return True
