"""Golden values for the optimizers: three steps of torch.optim.SGD and torch.optim.AdamW on
fixed params and gradients (float32, the master-weight dtype), and clip_grad_norm_."""
import torch

STEPS = 3

SGD_CONFIGS = {
    "sgd_momentum": dict(lr=0.1, momentum=0.9, nesterov=False, weight_decay=1e-2),
    "sgd_nesterov": dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2),
    "sgd_plain": dict(lr=0.1, momentum=0.0, weight_decay=1e-2),
}


def run(out, name, make_optimizer, p0, grads):
    p = p0.clone().requires_grad_(True)
    opt = make_optimizer([p])
    for step in range(STEPS):
        p.grad = grads[step].clone()
        opt.step()
        out.put(f"{name}/param_{step + 1}", p)


def generate(out):
    p0 = torch.randn(4, 9)
    grads = [torch.randn(4, 9) for _ in range(STEPS)]
    out.put("param_0", p0)
    for step, g in enumerate(grads):
        out.put(f"grad_{step + 1}", g)
    for name, cfg in SGD_CONFIGS.items():
        run(out, name, lambda ps, cfg=cfg: torch.optim.SGD(ps, **cfg), p0, grads)
    run(out, "adamw", lambda ps: torch.optim.AdamW(ps, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01),
        p0, grads)

    # clip_grad_norm_ over a list of two tensors, once clipping (max_norm 1) and once not (100).
    g_a, g_b = torch.randn(4, 9), torch.randn(7) * 3
    out.put("clip/grad_a", g_a)
    out.put("clip/grad_b", g_b)
    for max_norm in (1.0, 100.0):
        a = torch.nn.Parameter(torch.zeros(4, 9))
        b = torch.nn.Parameter(torch.zeros(7))
        a.grad, b.grad = g_a.clone(), g_b.clone()
        total = torch.nn.utils.clip_grad_norm_([a, b], max_norm)
        key = f"clip/max_norm_{int(max_norm)}"
        out.put(f"{key}/total_norm", total.reshape(1))
        out.put(f"{key}/grad_a", a.grad)
        out.put(f"{key}/grad_b", b.grad)
