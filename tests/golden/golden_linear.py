"""Golden values for the fully connected layer: F.linear and its gradients (float64 maths)."""
import torch
import torch.nn.functional as F


def generate(out):
    x = torch.randn(5, 37, dtype=torch.float64).requires_grad_(True)
    w = (torch.randn(6, 37, dtype=torch.float64) * 0.3).requires_grad_(True)
    b = torch.randn(6, dtype=torch.float64).requires_grad_(True)
    dy = torch.randn(5, 6, dtype=torch.float64)
    y = F.linear(x, w, b)
    y.backward(dy)
    out.put("x", x)
    out.put("w", w)
    out.put("b", b)
    out.put("dy", dy)
    out.put("y", y)
    out.put("dx", x.grad)
    out.put("dw", w.grad)
    out.put("db", b.grad)
