"""Golden values for pooling (forward and gradients), NHWC, float64 maths."""
import torch
import torch.nn.functional as F

from golden_io import nhwc


def _grad(fn, x, dy):
    xx = x.clone().requires_grad_(True)
    y = fn(xx)
    y.backward(dy)
    return y, xx.grad


def generate(out):
    # x [2, 5, 9, 10] NCHW: odd sizes, channels not a multiple of 8; continuous values, no ties.
    x = torch.randn(2, 5, 9, 10, dtype=torch.float64)
    out.put("x", nhwc(x))

    # max_pool2d 3x3 stride 2 pad 1 (ResNet-style stem pool) and 2x2 stride 2 no padding.
    for name, k, s, p in (("max_k3s2p1", 3, 2, 1), ("max_k2s2p0", 2, 2, 0)):
        ho = (9 + 2 * p - k) // s + 1
        wo = (10 + 2 * p - k) // s + 1
        dy = torch.randn(2, 5, ho, wo, dtype=torch.float64)
        y, dx = _grad(lambda t: F.max_pool2d(t, k, s, p), x, dy)
        out.put(f"{name}/dy", nhwc(dy))
        out.put(f"{name}/y", nhwc(y))
        out.put(f"{name}/dx", nhwc(dx))

    # avg_pool2d 3x3 stride 2 pad 1, with and without the padding counted.
    for name, include in (("avg_k3s2p1_incl", True), ("avg_k3s2p1_excl", False)):
        dy = torch.randn(2, 5, 5, 5, dtype=torch.float64)
        y, dx = _grad(lambda t: F.avg_pool2d(t, 3, 2, 1, count_include_pad=include), x, dy)
        out.put(f"{name}/dy", nhwc(dy))
        out.put(f"{name}/y", nhwc(y))
        out.put(f"{name}/dx", nhwc(dx))

    # Global pools: adaptive pooling to 1x1, flattened to [N, C].
    dy = torch.randn(2, 5, dtype=torch.float64)
    out.put("global/dy", dy)
    y, dx = _grad(lambda t: F.adaptive_avg_pool2d(t, 1).flatten(1), x, dy)
    out.put("global_avg/y", y)
    out.put("global_avg/dx", nhwc(dx))
    y, dx = _grad(lambda t: F.adaptive_max_pool2d(t, 1).flatten(1), x, dy)
    out.put("global_max/y", y)
    out.put("global_max/dx", nhwc(dx))

    # GeM as the PANDA solutions write it, p a Parameter (init 3); some inputs below eps so
    # the clamp matters.
    eps = 1e-6
    xg = torch.rand(2, 5, 9, 10, dtype=torch.float64) * 2.0
    xg[0, 0, 0, :4] = 0.0
    xg[1, 2, 3, 3] = -0.5
    p = torch.nn.Parameter(torch.ones(1, dtype=torch.float64) * 3.0)
    xx = xg.clone().requires_grad_(True)
    y = F.avg_pool2d(xx.clamp(min=eps).pow(p), (xx.size(-2), xx.size(-1))).pow(1.0 / p).flatten(1)
    y.backward(dy)
    out.put("gem/x", nhwc(xg))
    out.put("gem/p", p.detach())
    out.put("gem/y", y)
    out.put("gem/dx", nhwc(xx.grad))
    out.put("gem/dp", p.grad)
