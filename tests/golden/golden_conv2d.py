"""Golden values for conv2d (forward, dx, dw, dbias), in float64 maths, stored NHWC / OHWI.

Padding is applied explicitly with F.pad (left, right, top, bottom) and the convolution runs
with padding=0, so TF-SAME's asymmetric pads are exactly what the engine must reproduce.
Each case stores its geometry too: kernel, stride, groups, tf_same (0/1) and the pads
[top, bottom, left, right] that make_conv2d_params must resolve.
"""
import torch
import torch.nn.functional as F

from golden_io import nhwc, ohwi


def pads_for(in_size, k, stride, tf_same):
    if not tf_same:
        return (k - 1) // 2, (k - 1) // 2
    out = (in_size + stride - 1) // stride
    total = max((out - 1) * stride + k - in_size, 0)
    return total // 2, total - total // 2


# name: (N, H, W, Cin, Cout, k, stride, groups, tf_same)
CASES = {
    "dense3x3_s1": (2, 6, 7, 5, 4, 3, 1, 1, False),
    "depthwise3x3_s2_same": (2, 8, 9, 6, 6, 3, 2, 6, True),  # pads (0, 1) rows, (1, 1) cols
    "depthwise5x5_s2_same": (1, 10, 10, 8, 8, 5, 2, 8, True),  # pads (1, 2)
    "pointwise": (2, 5, 5, 12, 7, 1, 1, 1, False),
    "stem3x3_s2": (1, 16, 16, 3, 8, 3, 2, 1, False),  # EfficientNet stem, torchvision padding
}


def generate(out):
    for name, (n, h, w, cin, cout, k, stride, groups, tf_same) in CASES.items():
        top, bottom = pads_for(h, k, stride, tf_same)
        left, right = pads_for(w, k, stride, tf_same)
        x = torch.randn(n, cin, h, w, dtype=torch.float64, requires_grad=True)
        weight = (torch.randn(cout, cin // groups, k, k, dtype=torch.float64) / (k * (cin // groups)) ** 0.5)
        weight.requires_grad_(True)
        bias = torch.randn(cout, dtype=torch.float64, requires_grad=True)
        y = F.conv2d(F.pad(x, (left, right, top, bottom)), weight, bias, stride=stride, padding=0, groups=groups)
        dy = torch.randn_like(y)
        y.backward(dy)
        out.put(f"{name}/x", nhwc(x))
        out.put(f"{name}/w", ohwi(weight))
        out.put(f"{name}/bias", bias)
        out.put(f"{name}/y", nhwc(y))
        out.put(f"{name}/dy", nhwc(dy))
        out.put(f"{name}/dx", nhwc(x.grad))
        out.put(f"{name}/dw", ohwi(weight.grad))
        out.put(f"{name}/dbias", bias.grad)
        out.put(f"{name}/kernel", [k])
        out.put(f"{name}/stride", [stride])
        out.put(f"{name}/groups", [groups])
        out.put(f"{name}/tf_same", [1 if tf_same else 0])
        out.put(f"{name}/pads", [top, bottom, left, right])
