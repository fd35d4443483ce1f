"""torchvision efficientnet_b0 / efficientnet_b3 with synthetic weights: eval logits, one
training step's loss and gradients, and a 10-step SGD loss curve.

The weights are not stored: tests/golden/synthetic_weights.py (and its C++ twin
tests/support/synthetic_weights.h) generates them by name in our layout, and they reach
torchvision through the inverse of weights/convert_torch.py's mapping. Read by
tests/nn/test_efficientnet_parity.cpp. Layout of efficientnet.h5, for arch in {b0, b3}:
  <arch>/logits_224, <arch>/logits_193x257   [2, 1000] eval-mode logits of inputs
                                             "input.224x224" / "input.193x257" ([2, H, W, 3] NHWC, U(-2, 2))
  <arch>/train_loss                          [1] CE loss (mean) of "input.train" [2, 128, 128, 3],
                                             labels TRAIN_LABELS, train mode, dropout and stochastic depth 0
  <arch>/param_hash                          [P] fnv1a64(name) & 0xFFFFFF of each parameter, in our order
  <arch>/grad_norm, <arch>/grad_sum          [P] L2 norm and sum of each parameter's gradient
  <arch>/grad_index, <arch>/grad_sample      [P, 64] sampled flat indices (our layout; -1 pads) and values
  b0/sgd_losses                              [10] losses before each of 10 SGD steps on "input.train"
  b0/sgd_lr, b0/sgd_momentum, b0/sgd_weight_decay
  generator/<name>                           values of the synthetic generator, compared bit for bit
                                             with the C++ twin (conv_stem.weight, bn1.running_var, input)
"""
import pathlib
import sys

import numpy as np
import torch
import torchvision

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "weights"))
import convert_torch  # noqa: E402  -- the one definition of the torchvision <-> ours mapping
import synthetic_weights as sw  # noqa: E402

SAMPLES = 64
TRAIN_SIZE = 128
TRAIN_LABELS = [3, 997]
SGD_STEPS, SGD_LR, SGD_MOMENTUM, SGD_WEIGHT_DECAY = 10, 0.002, 0.9, 1e-4


def our_shapes(arch):
    return {ours: shape for _, ours, _, shape in convert_torch.torchvision_mapping(arch)}


def build(arch):
    """torchvision's model with the synthetic weights; stochastic depth 0 and dropout 0."""
    model = getattr(torchvision.models, f"efficientnet_{arch}")(stochastic_depth_prob=0.0)
    model.classifier[0].p = 0.0
    shapes = our_shapes(arch)
    ours = sw.synthetic_weights(shapes, shapes["classifier.weight"][1])
    state = model.state_dict()
    for name, value in convert_torch.to_torchvision_state(ours, arch).items():
        assert state[name].shape == value.shape, name
        state[name] = torch.from_numpy(value)
    model.load_state_dict(state, strict=True)
    return model


def nchw(x):
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()


def synthetic_input(name, h, w):
    return sw.synthetic_tensor(name, (2, h, w, 3), -2.0, 2.0)


def check_logits(arch, what, y):
    assert torch.isfinite(y).all(), f"{arch} {what}: non-finite logits"
    assert y.abs().max() > 0.05, f"{arch} {what}: logits all tiny ({y.abs().max():.3g})"
    assert y.std() > 0.01, f"{arch} {what}: logits nearly constant"


def parameter_entries(arch):
    """(torchvision name, our name, kind) of the parameters (not BN running stats), our order."""
    return [(tv, ours, kind) for tv, ours, kind, _ in convert_torch.torchvision_mapping(arch)
            if not ours.endswith(("running_mean", "running_var"))]


def train_step_gradients(out, arch, model, x, labels):
    model.train()
    model.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(x), labels)
    loss.backward()
    assert torch.isfinite(loss), f"{arch}: loss {loss}"
    named = dict(model.named_parameters())
    entries = parameter_entries(arch)
    assert len(entries) == len(named), f"{arch}: {len(entries)} mapped parameters, torchvision has {len(named)}"
    hashes, norms, sums = [], [], []
    index = np.full((len(entries), SAMPLES), -1.0, dtype=np.float64)
    sample = np.zeros((len(entries), SAMPLES), dtype=np.float64)
    for p, (tv, ours, kind) in enumerate(entries):
        g = named[tv].grad
        assert g is not None and torch.isfinite(g).all(), f"{arch}: gradient of {tv}"
        g = convert_torch.to_ours(kind, g.numpy()).astype(np.float64).ravel()
        assert np.abs(g).max() > 0, f"{arch}: zero gradient for {tv}"
        hashes.append(sw.fnv1a64(ours) & 0xFFFFFF)
        norms.append(np.sqrt(np.sum(g * g)))
        sums.append(np.sum(g))
        idx = sw.sample_indices(ours, g.size, SAMPLES)
        index[p, :idx.size] = idx
        sample[p, :idx.size] = g[idx]
    out.put(f"{arch}/train_loss", [loss.item()])
    out.put(f"{arch}/param_hash", hashes)
    out.put(f"{arch}/grad_norm", norms)
    out.put(f"{arch}/grad_sum", sums)
    out.put(f"{arch}/grad_index", index)
    out.put(f"{arch}/grad_sample", sample)
    return loss.item()


def sgd_losses(arch, model, x, labels):
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=SGD_LR, momentum=SGD_MOMENTUM, weight_decay=SGD_WEIGHT_DECAY)
    losses = []
    for _ in range(SGD_STEPS):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), labels)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.all(np.isfinite(losses)), f"{arch}: SGD losses {losses}"
    assert losses[-1] < losses[0] - 0.1, f"{arch}: SGD did not lower the loss: {losses}"
    return losses


def generate(out):
    b0 = sw.synthetic_weights(our_shapes("b0"), 1280)
    out.put("generator/conv_stem.weight", b0["conv_stem.weight"])
    out.put("generator/bn1.running_var", b0["bn1.running_var"])
    out.put("generator/blocks.1.0.se.conv_reduce.bias", b0["blocks.1.0.se.conv_reduce.bias"])
    out.put("generator/classifier.bias", b0["classifier.bias"][:64])
    out.put("generator/input.train", synthetic_input("input.train", TRAIN_SIZE, TRAIN_SIZE)[0, :2])
    labels = torch.tensor(TRAIN_LABELS, dtype=torch.int64)
    x_train = nchw(synthetic_input("input.train", TRAIN_SIZE, TRAIN_SIZE))
    for arch in ("b0", "b3"):
        model = build(arch).eval()
        with torch.no_grad():
            for h, w in ((224, 224), (193, 257)):
                y = model(nchw(synthetic_input(f"input.{h}x{w}", h, w)))
                check_logits(arch, f"{h}x{w}", y)
                out.put(f"{arch}/logits_{h}x{w}" if (h, w) != (224, 224) else f"{arch}/logits_224", y)
        loss = train_step_gradients(out, arch, build(arch), x_train, labels)
        print(f"  {arch}: eval logits max |y| {y.abs().max():.3g}, train loss {loss:.6f}")
    losses = sgd_losses("b0", build("b0"), x_train, labels)
    print("  b0 SGD losses:", " ".join(f"{v:.5f}" for v in losses))
    out.put("b0/sgd_losses", losses)
    out.put("b0/sgd_lr", [SGD_LR])
    out.put("b0/sgd_momentum", [SGD_MOMENTUM])
    out.put("b0/sgd_weight_decay", [SGD_WEIGHT_DECAY])
