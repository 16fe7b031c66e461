"""nn.Module wrappers that hold the weights of a loaded op and take the activations.

  Fused(op, **held)     any op: the named inputs are held (as buffers, so .to() and
                        state_dict see them); forward takes the others in spec order
  Linear(op, w, b)      GEMM + epilogue (nn.Linear layout: w is [N, K]); forward(x)
                        takes x of shape [..., K] and returns [..., N]
  MLP(op, wg, wu, wd)   SwiGLU block: down(silu(gate(x)) * up(x)); forward(x) as Linear

They call the op directly in eager mode (the cheapest path) and through
torch.ops.fusebuild.<spec> while torch.compile traces them, so a compiled model keeps the
fused kernel as one node. The held tensors are not parameters: these are inference
modules (fusebuild ops do not compute gradients).
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import UseError


class Fused(nn.Module):
    def __init__(self, op, **held):
        super().__init__()
        unknown = sorted(set(held) - set(op.inputs))
        if unknown:
            raise UseError(f"{op.spec} has no input {', '.join(unknown)}", path=f"fusebuild op {op.spec}",
                           valid=", ".join(op.inputs))
        self.op, self.names = op, op.inputs
        self.free = tuple(n for n in op.inputs if n not in held)
        for name, t in held.items():
            if hasattr(self, name):
                raise UseError(f"input {name} of {op.spec} clashes with an nn.Module attribute",
                               path=f"fusebuild op {op.spec}", valid="hold it under another input name (rename it "
                               "in the spec) or call the op directly")
            self.register_buffer(name, t.detach().contiguous())

    def args(self, *free) -> list:
        """Every input of the op in spec order: the given ones and the held ones."""
        if len(free) != len(self.free):
            raise UseError(f"takes {len(self.free)} inputs ({', '.join(self.free)}), got {len(free)}",
                           path=f"fusebuild module {self.op.spec}")
        given = dict(zip(self.free, free))
        return [given[n] if n in given else getattr(self, n) for n in self.names]

    def forward(self, *free):
        args = self.args(*free)
        if torch.compiler.is_compiling():
            return self.op.torch_op(*args)
        return self.op(*args)

    def tolerance(self, *free, ref) -> tuple:
        """(atol, rtol) validation allows for these inputs, given a reference output."""
        return self.op.tolerance(*self.args(*free), ref=ref)

    def extra_repr(self) -> str:
        return f"{self.op.spec}({', '.join(self.names)}), takes {', '.join(self.free)}"


class _Rows(Fused):
    """An op whose first input is the activations [M, K]: any leading dims are flattened
    into M for the call and restored after."""

    def __init__(self, op, weights: list, roles: str):
        if len(op.inputs) != len(weights) + 1:
            raise UseError(f"{op.spec} takes {len(op.inputs)} inputs ({', '.join(op.inputs)}); "
                           f"a {type(self).__name__} holds {roles} after the activations",
                           path=f"fusebuild op {op.spec}")
        super().__init__(op, **dict(zip(op.inputs[1:], weights)))

    def forward(self, x):
        lead = x.shape[:-1]
        y = super().forward(x.reshape(-1, x.shape[-1]))
        return y.reshape(*lead, y.shape[-1])

    def tolerance(self, x, ref) -> tuple:
        return super().tolerance(x.reshape(-1, x.shape[-1]), ref=ref)


class Linear(_Rows):
    def __init__(self, op, weight, bias=None):
        super().__init__(op, [weight] + ([bias] if bias is not None else []),
                         "weight [N, K]" + (" and bias [N]" if bias is not None else ""))

    @classmethod
    def from_linear(cls, op, linear: nn.Linear) -> Linear:
        return cls(op, linear.weight, linear.bias)


class MLP(_Rows):
    def __init__(self, op, gate, up, down):
        super().__init__(op, [gate, up, down], "gate [H, E], up [H, E] and down [E, H] weights")

    @classmethod
    def from_linears(cls, op, gate_proj: nn.Linear, up_proj: nn.Linear, down_proj: nn.Linear) -> MLP:
        return cls(op, gate_proj.weight, up_proj.weight, down_proj.weight)
