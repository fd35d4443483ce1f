"""Golden values for the tensor ops (squeeze-excite scale, mul, concat), NHWC, float64 maths."""
import torch

from golden_io import nhwc


def generate(out):
    # Channel scale x * s (s broadcast over H, W as in squeeze-excite), with gradients.
    x = torch.randn(2, 6, 5, 7, dtype=torch.float64, requires_grad=True)
    s = torch.sigmoid(torch.randn(2, 6, dtype=torch.float64)).requires_grad_(True)
    y = x * s.view(2, 6, 1, 1)
    dy = torch.randn_like(y)
    y.backward(dy)
    out.put("scale/x", nhwc(x))
    out.put("scale/s", s.detach())
    out.put("scale/dy", nhwc(dy))
    out.put("scale/y", nhwc(y))
    out.put("scale/dx", nhwc(x.grad))
    out.put("scale/ds", s.grad)

    # Elementwise multiply with gradients.
    a = torch.randn(3, 4, 5, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, 4, 5, dtype=torch.float64, requires_grad=True)
    y = a * b
    dy = torch.randn_like(y)
    y.backward(dy)
    for name, t in (("a", a.detach()), ("b", b.detach()), ("dy", dy), ("y", y), ("da", a.grad), ("db", b.grad)):
        out.put(f"mul/{name}", t)

    # torch.cat on channels (dim 1 in NCHW = the last axis in NHWC), three inputs of 3, 5, 2.
    parts = [torch.randn(2, c, 4, 3, dtype=torch.float64, requires_grad=True) for c in (3, 5, 2)]
    y = torch.cat(parts, dim=1)
    dy = torch.randn_like(y)
    y.backward(dy)
    for i, t in enumerate(parts):
        out.put(f"cat/x{i}", nhwc(t))
        out.put(f"cat/dx{i}", nhwc(t.grad))
    out.put("cat/y", nhwc(y))
    out.put("cat/dy", nhwc(dy))
