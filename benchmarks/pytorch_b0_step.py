#!/usr/bin/python3
"""The PyTorch baseline for BM_B0Inference / BM_B0Forward / BM_B0TrainingStep: torchvision's efficientnet_b0
(random weights, channels-last, dropout and stochastic depth off): inference (model.eval() under torch.no_grad()),
a train-mode forward with the loss, and forward, backward and AdamW, timed the same way (median, or with --min the
minimum, of several runs after a warm-up). Run with Debian's python3-torch on the CPU:
    /usr/bin/python3 benchmarks/pytorch_b0_step.py [--batch 1 8] [--threads 2]
or on a GPU machine with its PyTorch: python3 benchmarks/pytorch_b0_step.py --device cuda --amp
"""
import argparse
import json
import statistics
import time

import torch
import torchvision


def timed(fn, device, repeats, pick):
    fn()  # warm-up
    fn()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return pick(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--image", type=int, default=224)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", action="store_true", help="autocast f16 (GPU)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--min", action="store_true", help="report the fastest run, not the median")
    parser.add_argument("--json", action="store_true", help="one JSON object per batch size")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    for batch in args.batch:
        model = torchvision.models.efficientnet_b0()
        # Dropout and stochastic depth off, as in BM_B0TrainingStep.
        for module in model.modules():
            if isinstance(module, (torch.nn.Dropout, torchvision.ops.StochasticDepth)):
                module.p = 0.0
        model = model.to(args.device).to(memory_format=torch.channels_last)
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        x = torch.randn(batch, 3, args.image, args.image, device=args.device).to(memory_format=torch.channels_last)
        y = torch.randint(0, 1000, (batch,), device=args.device)

        def forward():
            with torch.autocast(args.device, enabled=args.amp):
                return torch.nn.functional.cross_entropy(model(x), y)

        def step():
            opt.zero_grad(set_to_none=True)
            forward().backward()
            opt.step()

        def infer():
            with torch.autocast(args.device, enabled=args.amp):
                return model(x)

        pick = min if args.min else statistics.median
        model.eval()
        with torch.no_grad():
            t_infer = timed(infer, args.device, args.repeats, pick)
        model.train()
        with torch.no_grad():
            t_fwd = timed(forward, args.device, args.repeats, pick)
        t_step = timed(step, args.device, args.repeats, pick)
        if args.json:
            print(json.dumps({"torch": str(torch.__version__), "device": args.device, "batch": batch,
                              "image": args.image, "infer_ms": t_infer * 1e3, "forward_ms": t_fwd * 1e3,
                              "step_ms": t_step * 1e3}))
        else:
            print(f"torch {torch.__version__} {args.device} threads={torch.get_num_threads()} batch={batch} "
                  f"{args.image}px: inference {t_infer * 1e3:.0f} ms ({batch / t_infer:.2f} img/s), "
                  f"train-mode forward {t_fwd * 1e3:.0f} ms, "
                  f"fwd+bwd+AdamW {t_step * 1e3:.0f} ms ({batch / t_step:.2f} img/s)")


if __name__ == "__main__":
    main()
