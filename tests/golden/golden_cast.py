"""Golden values for the casts: PyTorch's own f32 -> f16 and f32 -> bf16 rounding."""
import torch


def generate(out):
    # Values near every rounding boundary: random mantissas over many binades, exact ties,
    # subnormal and overflow ranges of f16.
    x = torch.cat([
        torch.randn(2000) * torch.pow(2.0, torch.randint(-30, 20, (2000,)).float()),
        torch.tensor([65504.0, 65519.0, 65520.0, 1e-8, 2.0 ** -25, 3 * 2.0 ** -25, 1 + 2.0 ** -11, 1 + 3 * 2.0 ** -11,
                      1 + 2.0 ** -8, 1 + 3 * 2.0 ** -8, -0.0, 3.0e38]),
    ]).float()
    out.put("x", x)
    out.put("f16", x.half().float())
    out.put("bf16", x.bfloat16().float())
