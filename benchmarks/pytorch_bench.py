#!/usr/bin/python3
"""PyTorch's side of `slidegrade bench`: the same network, shapes, mode and precision, timed the same way
(median and best of ITERATIONS after WARMUP), printed in the same words so benchmarks/compare_bench.sh can
read both.

    /usr/bin/python3 benchmarks/pytorch_bench.py --arch b0 --image 224 --batch 8 --mode infer --threads 2
    python3 benchmarks/pytorch_bench.py --device cuda --precision f16 --mode train   (GPU machine)

The network is timm's efficientnet_<arch> when timm is installed (the GPU machine), torchvision's otherwise
(Debian's python3-torchvision on the CPU), both with dropout 0.2 and stochastic depth 0.2 like ours, in
channels-last. infer: model.eval() under torch.no_grad(). train: forward, cross-entropy, backward, AdamW,
zero_grad. f16/bf16: torch.autocast (with a GradScaler for f16 training), PyTorch's usual mixed precision.
Peak memory: torch.cuda.max_memory_allocated on a GPU; the process's peak RSS on the CPU (PyTorch's CPU
allocator keeps no statistics), which includes the interpreter and libraries.
"""
import argparse
import resource
import statistics
import time

import torch


def build(arch, outputs):
    try:
        import timm
        return timm.create_model(f"efficientnet_{arch}", num_classes=outputs, drop_rate=0.2,
                                 drop_path_rate=0.2), "timm " + timm.__version__
    except ImportError:
        import torchvision
        model = getattr(torchvision.models, f"efficientnet_{arch}")(num_classes=outputs)
        return model, "torchvision " + torchvision.__version__


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--arch", default="b0")
    p.add_argument("--image", type=int, default=224)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--outputs", type=int, default=1000)
    p.add_argument("--mode", choices=["infer", "train"], default="infer")
    p.add_argument("--precision", choices=["f32", "f16", "bf16"], default="f32")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iterations", type=int, default=10)
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    device = torch.device(a.device)
    model, source = build(a.arch, a.outputs)
    model = model.to(device).to(memory_format=torch.channels_last)
    x = torch.randn(a.batch, 3, a.image, a.image, device=device).to(memory_format=torch.channels_last)
    y = torch.randint(0, a.outputs, (a.batch,), device=device)
    amp_dtype = {"f32": None, "f16": torch.float16, "bf16": torch.bfloat16}[a.precision]
    autocast = lambda: torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None)
    sync = (lambda: torch.cuda.synchronize()) if device.type == "cuda" else (lambda: None)

    if a.mode == "infer":
        model.eval()

        def once():
            with torch.no_grad(), autocast():
                model(x)
            sync()
    else:
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        scaler = torch.cuda.amp.GradScaler(enabled=a.precision == "f16" and device.type == "cuda")

        def once():
            with autocast():
                loss = torch.nn.functional.cross_entropy(model(x), y)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            opt.zero_grad(set_to_none=True)
            sync()

    for _ in range(a.warmup):
        once()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    seconds = []
    for _ in range(a.iterations):
        start = time.perf_counter()
        once()
        seconds.append(time.perf_counter() - start)
    median, best = statistics.median(seconds), min(seconds)
    print(f"pytorch {torch.__version__} ({source}) efficientnet_{a.arch} {a.mode}, {a.image}x{a.image}, "
          f"batch {a.batch}, {a.precision} on {device} ({a.iterations} iterations after {a.warmup} warm-up, "
          f"{torch.get_num_threads()} threads)")
    print(f"time per batch: median {median * 1e3:.2f} ms, best {best * 1e3:.2f} ms")
    print(f"images/s: {a.batch / median:.2f} (median), {a.batch / best:.2f} (best)")
    if device.type == "cuda":
        print(f"peak memory: {torch.cuda.max_memory_allocated() / 2**20:.1f} MiB in tensors")
    else:
        print(f"peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB process RSS")


if __name__ == "__main__":
    main()
