"""Golden values for train/: the learning-rate sequences of torch.optim.lr_scheduler
(CosineAnnealingWarmRestarts, StepLR, CosineAnnealingLR, LinearLR then CosineAnnealingLR via
SequentialLR) and a few optimizer steps over parameter groups that exempt biases and norm
parameters from weight decay (torch.optim.AdamW and torch.optim.SGD), with the LR changing per step.

lr/<name> [STEPS]: the learning rate used by optimizer step s (0-based), read before
scheduler.step() as a training loop sees it."""
import torch

STEPS = 50
BASE_LR = 0.1


def lr_sequence(make_scheduler):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=BASE_LR)
    sched = make_scheduler(opt)
    lrs = []
    for _ in range(STEPS):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return torch.tensor(lrs, dtype=torch.float64)


def warmup_cosine(opt, warmup=5, start_factor=0.1, total=STEPS, eta_min=1e-4):
    S = torch.optim.lr_scheduler
    return S.SequentialLR(opt, [S.LinearLR(opt, start_factor=start_factor, end_factor=1.0, total_iters=warmup),
                                S.CosineAnnealingLR(opt, T_max=total - warmup, eta_min=eta_min)],
                          milestones=[warmup])


SCHEDULES = {
    # Parameters repeated in tests/train/test_lr_schedule.cpp.
    "warm_restarts_t0_10_mult_1": lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        o, T_0=10, T_mult=1, eta_min=1e-3),
    "warm_restarts_t0_5_mult_2": lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        o, T_0=5, T_mult=2, eta_min=1e-3),
    "step_7_gamma_0.5": lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=7, gamma=0.5),
    "cosine_t50": lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=STEPS, eta_min=1e-4),
    "warmup_5_cosine_t50": warmup_cosine,
}

OPT_STEPS = 4
# Per-step learning rates (a scheduler would set them).
OPT_LRS = [0.01, 0.02, 0.015, 0.005]


def optimizer_steps(out, name, make_optimizer, params0, grads):
    """params0: list of (name, tensor, is_bias_or_norm). Decay and no-decay param groups."""
    params = {n: torch.nn.Parameter(t.clone()) for n, t, _ in params0}
    decay = [params[n] for n, _, exempt in params0 if not exempt]
    no_decay = [params[n] for n, _, exempt in params0 if exempt]
    opt = make_optimizer([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}])
    for step in range(OPT_STEPS):
        for group in opt.param_groups:
            group["lr"] = OPT_LRS[step]
        for n, p in params.items():
            p.grad = grads[step][n].clone()
        opt.step()
        for n, p in params.items():
            out.put(f"{name}/step_{step + 1}/{n}", p)
    # The state after the last step, by the names the C++ optimizer gives it.
    for n, p in params.items():
        for key in ("exp_avg", "exp_avg_sq", "momentum_buffer"):
            if key in opt.state[p]:
                out.put(f"{name}/state/{n}/{key}", opt.state[p][key])


def generate(out):
    for name, make in SCHEDULES.items():
        out.put(f"lr/{name}", lr_sequence(make))

    # A tiny layer: weight, bias, and a norm's gamma; the last two exempt from weight decay.
    params0 = [("fc.weight", torch.randn(3, 4), False), ("fc.bias", torch.randn(3), True),
               ("bn.weight", torch.randn(4) * 0.1 + 1, True)]
    grads = [{n: torch.randn_like(t) for n, t, _ in params0} for _ in range(OPT_STEPS)]
    for n, t, _ in params0:
        out.put(f"param_0/{n}", t)
    for step, g in enumerate(grads):
        for n, t in g.items():
            out.put(f"grad_{step + 1}/{n}", t)
    optimizer_steps(out, "adamw", lambda groups: torch.optim.AdamW(groups, lr=0.01, betas=(0.9, 0.99), eps=1e-8,
                                                                   weight_decay=0.05), params0, grads)
    optimizer_steps(out, "sgd_nesterov", lambda groups: torch.optim.SGD(groups, lr=0.01, momentum=0.9, nesterov=True,
                                                                        weight_decay=0.05), params0, grads)
