"""Golden values for the pointwise activations (forward and gradient), in float64 maths."""
import torch
import torch.nn.functional as F

FUNCTIONS = {
    "relu": F.relu,
    "relu6": F.relu6,
    "sigmoid": torch.sigmoid,
    "swish": F.silu,
    "mish": F.mish,
}


def generate(out):
    # Values spread over the interesting ranges, kinks and the softplus threshold included.
    x = torch.cat([torch.linspace(-25, 25, 101, dtype=torch.float64), torch.randn(155, dtype=torch.float64) * 4])
    x = x.reshape(2, 4, 4, 8)
    dy = torch.randn_like(x)
    out.put("x", x)
    out.put("dy", dy)
    for name, fn in FUNCTIONS.items():
        xx = x.clone().requires_grad_(True)
        y = fn(xx)
        y.backward(dy)
        out.put(f"{name}/y", y)
        out.put(f"{name}/dx", xx.grad)
