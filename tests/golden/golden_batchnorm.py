"""Golden values for batch norm (training and evaluation, running statistics, fused SiLU/Mish).

PyTorch's F.batch_norm in float64, stored float32, activations NHWC. saved_mean/saved_invstd
are the batch's mean and 1/sqrt(biased var + eps), which our backward takes.
"""
import torch
import torch.nn.functional as F

from golden_io import nhwc

def f32(t):
    """Rounds to float32 first so that the stored inputs are exactly what PyTorch used."""
    return t.float().double()


CASES = [
    # name, shape (NCHW), training, activation, eps, momentum
    ("train", (3, 6, 7, 5), True, None, 1e-5, 0.1),
    ("eval", (3, 6, 7, 5), False, None, 1e-3, 0.1),
    ("train_silu", (3, 6, 7, 5), True, F.silu, 1e-3, 0.01),
    ("train_mish", (2, 5, 4, 3), True, F.mish, 1e-5, 0.1),
    ("eval_silu", (2, 5, 4, 3), False, F.silu, 1e-5, 0.1),
]


def put_case(out, name, shape, training, act, eps, momentum):
    c = shape[1]
    x = f32(torch.randn(shape, dtype=torch.float64) * 1.5 + 0.7).requires_grad_(True)
    gamma = f32(torch.rand(c, dtype=torch.float64) + 0.5).requires_grad_(True)
    beta = f32(torch.randn(c, dtype=torch.float64) * 0.3).requires_grad_(True)
    running_mean = f32(torch.randn(c, dtype=torch.float64) * 0.2)
    running_var = f32(torch.rand(c, dtype=torch.float64) + 0.5)
    rm, rv = running_mean.clone(), running_var.clone()
    y = F.batch_norm(x, rm, rv, gamma, beta, training=training, momentum=momentum, eps=eps)
    if act is not None:
        y = act(y)
    dy = f32(torch.randn_like(y))
    y.backward(dy)
    out.put(f"{name}/x", nhwc(x))
    out.put(f"{name}/dy", nhwc(dy))
    out.put(f"{name}/gamma", gamma)
    out.put(f"{name}/beta", beta)
    out.put(f"{name}/running_mean", running_mean)
    out.put(f"{name}/running_var", running_var)
    out.put(f"{name}/eps", [eps])
    out.put(f"{name}/momentum", [momentum])
    out.put(f"{name}/y", nhwc(y))
    out.put(f"{name}/dx", nhwc(x.grad))
    out.put(f"{name}/dgamma", gamma.grad)
    out.put(f"{name}/dbeta", beta.grad)
    out.put(f"{name}/running_mean_after", rm)
    out.put(f"{name}/running_var_after", rv)
    if training:
        xd = x.detach()
        mean = xd.mean(dim=(0, 2, 3))
        var = xd.var(dim=(0, 2, 3), unbiased=False)
        out.put(f"{name}/saved_mean", mean)
        out.put(f"{name}/saved_invstd", 1.0 / torch.sqrt(var + eps))


def put_steps(out):
    # Several training steps with Keras's momentum 0.99 (PyTorch 0.01) and eps 1e-3.
    c, steps = 5, 4
    gamma = f32(torch.rand(c, dtype=torch.float64) + 0.5)
    beta = f32(torch.randn(c, dtype=torch.float64) * 0.3)
    rm = f32(torch.randn(c, dtype=torch.float64) * 0.2)
    rv = f32(torch.rand(c, dtype=torch.float64) + 0.5)
    out.put("steps/gamma", gamma)
    out.put("steps/beta", beta)
    out.put("steps/running_mean", rm)
    out.put("steps/running_var", rv)
    out.put("steps/eps", [1e-3])
    out.put("steps/momentum", [0.01])
    out.put("steps/count", [steps])
    for s in range(steps):
        x = f32(torch.randn(2, c, 3, 4, dtype=torch.float64) * (s + 1) + s)
        F.batch_norm(x, rm, rv, gamma, beta, training=True, momentum=0.01, eps=1e-3)
        out.put(f"steps/x{s}", nhwc(x))
    out.put("steps/running_mean_after", rm)
    out.put("steps/running_var_after", rv)


def generate(out):
    for case in CASES:
        put_case(out, *case)
    put_steps(out)
