"""Golden values for the losses (value and gradient, every reduction), in float64 maths.

For reduction "none" the gradient is that of the sum of the per-item losses (upstream ones).
"""
import torch
import torch.nn.functional as F

REDUCTIONS = ("none", "mean", "sum")


def put_loss(out, prefix, fn, x, *args, **kwargs):
    for reduction in REDUCTIONS:
        xx = x.clone().requires_grad_(True)
        loss = fn(xx, *args, reduction=reduction, **kwargs)
        loss.backward(torch.ones_like(loss))
        out.put(f"{prefix}/{reduction}/loss", loss.reshape(-1) if reduction != "none" else loss)
        out.put(f"{prefix}/{reduction}/dx", xx.grad)


def generate(out):
    # Softmax cross-entropy over 6 classes (the ISUP head); large logits test the log-sum-exp.
    logits = torch.randn(7, 6, dtype=torch.float64) * 3
    logits[2] += 40
    targets = torch.randint(0, 6, (7,))
    out.put("ce/logits", logits)
    out.put("ce/targets", targets.to(torch.float64))
    put_loss(out, "ce/plain", F.cross_entropy, logits, targets)
    put_loss(out, "ce/smooth", F.cross_entropy, logits, targets, label_smoothing=0.1)

    # BCE with logits on the ordinal "binned" head: 5 outputs, label k sets the first k to 1.
    x = torch.randn(7, 5, dtype=torch.float64) * 4
    labels = torch.randint(0, 6, (7,))
    t = (torch.arange(5).unsqueeze(0) < labels.unsqueeze(1)).to(torch.float64)
    out.put("bce/x", x)
    out.put("bce/t", t)
    put_loss(out, "bce", F.binary_cross_entropy_with_logits, x, t)

    # Regression head: MSE and smooth L1 (both sides of beta).
    x = torch.randn(9, 2, dtype=torch.float64) * 2
    t = torch.randn(9, 2, dtype=torch.float64)
    out.put("reg/x", x)
    out.put("reg/t", t)
    put_loss(out, "mse", F.mse_loss, x, t)
    put_loss(out, "smooth_l1_beta1", F.smooth_l1_loss, x, t, beta=1.0)
    put_loss(out, "smooth_l1_beta0.5", F.smooth_l1_loss, x, t, beta=0.5)
