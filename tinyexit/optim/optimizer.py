"""``Optimizer``: parameter groups, per-parameter state, ``zero_grad`` and saving, as PyTorch's."""

from __future__ import annotations

import copy

from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from ..backend import to_device


class Optimizer:
    """Base class; a subclass writes its update rule once, in ``update``.

    ``step`` applies the rule to the parameters' arrays in place; ``virtual_step`` applies the same
    rule to tensors, so the L2W pseudo-update (Eq. 7) is the real step by construction.

    Attributes:
        param_groups: list of dicts with key "params" and the hyper-parameters (``lr``, ...).
        state: dict from parameter to its state (for example the momentum buffer).
    """

    def __init__(self, params, defaults: dict):
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.defaults = defaults
        self.param_groups: list[dict] = []
        self.state: dict[Tensor, dict] = {}
        for g in groups:
            group = {**defaults, **g, "params": list(g["params"])}
            for p in group["params"]:
                if not isinstance(p, Tensor) or not p.requires_grad:
                    raise TypeError("optimizer parameters must be tensors that require grad")
            self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear ``.grad`` of every parameter (set to None, as PyTorch's default)."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad.data[...] = 0

    def update(self, p, g, state: dict, group: dict) -> tuple:
        """The update rule: the step Δ to subtract from ``p`` and the parameter's new state.

        Written with arithmetic operators only, so it runs on arrays (``step``) and on tensors
        (``virtual_step``). Must not change ``state``.

        Args:
            p: the parameter (array or tensor).
            g: its gradient (same kind).
            state: its current state, empty before its first step.
            group: its parameter group (the hyper-parameters).

        Returns:
            ``(delta, new_state)``: the new parameter is ``p - delta``.
        """
        raise NotImplementedError  # pragma: no cover - abstract

    def step(self) -> None:
        """Update every parameter that has a ``.grad``: ``p -= delta`` and the new state."""
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    g = p.grad.data
                    delta, state = self.update(p.data, g, self.state.get(p, {}), group)
                    p.data -= delta
                    if state:  # a state that is the gradient itself (SGD's first momentum buffer) is copied
                        self.state[p] = {k: v.copy() if v is g else v for k, v in state.items()}

    def virtual_step(self, params: list[Tensor], grads: list[Tensor]) -> list[Tensor]:
        """The parameters ``step`` would produce, as differentiable tensors (nothing is changed).

        The L2W pseudo-update (Eq. 7): the same rule, current hyper-parameters and state as ``step``;
        ``grads`` may carry a graph (``create_graph=True``), so the result is differentiable through it.
        """
        groups = {id(p): group for group in self.param_groups for p in group["params"]}
        updated = []
        for p, g in zip(params, grads):
            if id(p) not in groups:
                raise ValueError("virtual_step got a parameter this optimizer does not hold")
            state = {
                k: Tensor.wrap(v) if hasattr(v, "shape") else v for k, v in self.state.get(p, {}).items()
            }
            updated.append(p - self.update(p, g, state, groups[id(p)])[0])
        return updated

    def state_dict(self) -> dict:
        """Hyper-parameters and state, parameters referred to by their position, arrays on cpu."""
        index = {id(p): i for i, p in enumerate(p for g in self.param_groups for p in g["params"])}
        state = {
            index[id(p)]: {
                k: (to_device(v, "cpu").copy() if hasattr(v, "shape") else v) for k, v in s.items()
            }
            for p, s in self.state.items()
        }
        groups = [
            {**{k: v for k, v in g.items() if k != "params"}, "params": [index[id(p)] for p in g["params"]]}
            for g in self.param_groups
        ]
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore hyper-parameters and state saved by ``state_dict`` (same parameter layout)."""
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
            len(a["params"]) != len(b["params"]) for a, b in zip(groups, self.param_groups)
        ):
            raise ValueError("optimizer state_dict does not match this optimizer's parameter groups")
        params = [p for g in self.param_groups for p in g["params"]]
        for saved, group in zip(groups, self.param_groups):
            group.update({k: copy.deepcopy(v) for k, v in saved.items() if k != "params"})
        self.state = {}
        for i, s in state_dict["state"].items():
            p = params[int(i)]
            self.state[p] = {
                k: (to_device(v, p.device).astype(p.dtype) if hasattr(v, "shape") else v)
                for k, v in s.items()
            }
