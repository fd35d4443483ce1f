"""Golden values for the fused bias + activation epilogue: y = act(x + bias), with gradients."""
import torch
import torch.nn.functional as F

FUNCTIONS = {"relu": F.relu, "relu6": F.relu6, "sigmoid": torch.sigmoid, "swish": F.silu, "mish": F.mish}


def generate(out):
    x = torch.randn(3, 5, 7, 13, dtype=torch.float64) * 3  # NHWC, C = 13
    bias = torch.randn(13, dtype=torch.float64)
    dy = torch.randn_like(x)
    out.put("x", x)
    out.put("bias", bias)
    out.put("dy", dy)
    for name, fn in FUNCTIONS.items():
        xx = x.clone().requires_grad_(True)
        bb = bias.clone().requires_grad_(True)
        y = fn(xx + bb)
        y.backward(dy)
        out.put(f"{name}/y", y)
        out.put(f"{name}/dx", xx.grad)
        out.put(f"{name}/dbias", bb.grad)
