#!/usr/bin/env python3
"""A PyTorch implementation of the paper's toy MoE, written for ToyMoE's benchmark comparison.

The formulation is the authors' (docs/PAPER.md#model, docs/PAPER.md#loss-normalization), written from the paper's description, not copied:
  * parameters W (E, n, m), b_final (E, n), gate (E, n), Xavier-normal;
  * router: z = x Gᵀ, π = softmax(z), top-k on π, gates renormalized over the selected experts (0 elsewhere);
  * every expert is evaluated densely with einsum, y_e = ReLU(W_e W_eᵀ x + b_e), x̂ = Σ_e g_e y_e;
  * loss: importance-weighted squared error, mean over batch and features (the vectorized trainer's);
  * load balancing: α·E·Σ_e f_e P_e, f_e the fraction of the batch routed to e (no gradient), P_e = mean π_e;
  * AdamW(lr 1e-3, weight decay 0.01), fresh data every step: x_i = u if r ≤ p else 0.

Two step functions: `PerModel` (one model, torch.optim.AdamW) and `ManyModels` (M models at once through
torch.func.vmap over a per-model loss and grad, with AdamW on the stacked parameters, which is elementwise and so
identical to M independent optimizers).

Usage (prints a table; --json writes the measurements):
  python toy_moe_torch.py [--configs P1,P2,P3] [--repeats 5] [--min-time 0.2] [--threads 1] [--models 64] [--json out.json]
"""

import argparse
import json
import math
import platform
import statistics
import sys
import time

import torch
from torch.func import functional_call, grad, vmap  # noqa: F401  (functional_call kept for readers)

# The same shapes as `toymoe bench` (labels match its JSON so the runner can pair them).
CONFIGS = {
    "P1": [
        dict(label="n2 m1 E2 k1 B512 LB", n=2, m=1, E=2, k=1, batch=512, lb=True),
        dict(label="n3 m1 E3 k1 B512 LB", n=3, m=1, E=3, k=1, batch=512, lb=True),
        dict(label="n3 m2 E3 k2 B512 LB", n=3, m=2, E=3, k=2, batch=512, lb=True),
    ],
    "P2": [dict(label="n100 m10 E10 k1 B1024", n=100, m=10, E=10, k=1, batch=1024, lb=False)],
    "P3": [dict(label="dense n400 m30 B1024", n=400, m=30, E=1, k=1, batch=1024, lb=False)],
}
PROBABILITY = 0.1
ALPHA = 0.01


def xavier(shape, generator):
    """Xavier-normal with PyTorch's fans for a tensor of shape (a, b, c...)."""
    receptive = math.prod(shape[2:]) if len(shape) > 2 else 1
    fan_in, fan_out = shape[1] * receptive, shape[0] * receptive
    std = math.sqrt(2.0 / (fan_in + fan_out))
    return torch.randn(shape, generator=generator) * std


def init_params(n, m, E, generator):
    return {
        "W": xavier((E, n, m), generator),
        "b_final": xavier((E, n), generator),
        "gate": xavier((E, n), generator),
    }


def loss_fn(params, x, importance, k, lb):
    """Reconstruction (mean over batch and features) plus, if `lb`, α·E·Σ f_e P_e. x: (B, n)."""
    W, b, G = params["W"], params["b_final"], params["gate"]
    E = W.shape[0]
    probs = torch.softmax(x @ G.T, dim=-1)  # (B, E)
    top = torch.topk(probs, k, dim=-1).indices  # (B, k)
    # (B, E), 1 on selected experts (scatter, not one_hot: one_hot is not vmap-able)
    mask = torch.zeros_like(probs).scatter(-1, top, torch.ones(top.shape, dtype=probs.dtype))
    selected = probs * mask
    gates = selected / selected.sum(dim=-1, keepdim=True)  # renormalized, 0 elsewhere
    h = torch.einsum("bi,eim->bem", x, W)  # every expert, densely (the authors' formulation)
    y = torch.relu(torch.einsum("bem,eim->bei", h, W) + b)  # (B, E, n)
    xhat = torch.einsum("be,bei->bi", gates, y)
    loss = (importance * (x - xhat) ** 2).mean()
    if lb:
        f = mask.detach().mean(dim=0)  # fraction routed, no gradient
        P = probs.mean(dim=0)
        loss = loss + ALPHA * E * (f * P).sum()
    return loss


def sample(batch, n, p, generator, models=None):
    shape = (batch, n) if models is None else (models, batch, n)
    u = torch.rand(shape, generator=generator)
    r = torch.rand(shape, generator=generator)
    return torch.where(r <= p, u, torch.zeros(()))


class PerModel:
    """One model, torch.optim.AdamW, one step = sample + forward + loss + backward + update."""

    def __init__(self, cfg, seed=0):
        self.cfg = cfg
        self.g = torch.Generator().manual_seed(seed)
        self.params = {k: v.requires_grad_() for k, v in init_params(cfg["n"], cfg["m"], cfg["E"], self.g).items()}
        self.opt = torch.optim.AdamW(self.params.values(), lr=1e-3, weight_decay=0.01)
        self.importance = torch.ones(cfg["n"])

    def step(self):
        c = self.cfg
        x = sample(c["batch"], c["n"], PROBABILITY, self.g)
        self.opt.zero_grad(set_to_none=True)
        loss = loss_fn(self.params, x, self.importance, c["k"], c["lb"])
        loss.backward()
        self.opt.step()
        return loss.item()


class ManyModels:
    """M independent models at once: vmap over the per-model loss's gradient (torch.func), AdamW on the stack."""

    def __init__(self, cfg, models, seed=0):
        self.cfg, self.models = cfg, models
        self.g = torch.Generator().manual_seed(seed)
        per = [init_params(cfg["n"], cfg["m"], cfg["E"], self.g) for _ in range(models)]
        self.params = {k: torch.stack([p[k] for p in per]).requires_grad_() for k in per[0]}
        self.opt = torch.optim.AdamW(self.params.values(), lr=1e-3, weight_decay=0.01)
        self.importance = torch.ones(cfg["n"])
        k, lb = cfg["k"], cfg["lb"]
        self.grad_fn = vmap(grad(lambda p, x: loss_fn(p, x, self.importance, k, lb)), in_dims=(0, 0))

    def step(self):
        c = self.cfg
        x = sample(c["batch"], c["n"], PROBABILITY, self.g, models=self.models)
        detached = {k: v.detach() for k, v in self.params.items()}
        grads = self.grad_fn(detached, x)
        for k, v in self.params.items():
            v.grad = grads[k]
        self.opt.step()
        return 0.0


def flops(cfg):
    """ToyMoE's dense-equivalent count (k routed experts; BENCHMARKS.md), forward + backward per step."""
    n, m, E, k, B = cfg["n"], cfg["m"], cfg["E"], cfg["k"], cfg["batch"]
    fwd = B * (k * (4 * n * m + 3 * n) + (2 * E * n if E > 1 else 0))
    router = E > 1 and (k > 1 or cfg["lb"])
    bwd = B * (3 * n + k * (6 * n * m + 4 * n) + (2 * E * n if router else 0))
    return fwd + bwd


def time_unit(step, repeats, min_time):
    """Warm-up + calibration, then `repeats` rounds of ≥ min_time; returns per-step seconds per round."""
    t0 = time.perf_counter()
    step()
    per = time.perf_counter() - t0
    count = max(1, math.ceil(min_time / max(per, 1e-9)))
    t0 = time.perf_counter()
    for _ in range(count):
        step()
    per = (time.perf_counter() - t0) / count
    count = max(1, math.ceil(min_time / max(per, 1e-9)))
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(count):
            step()
        samples.append((time.perf_counter() - t0) / count)
    return samples, count


def quantile(xs, q):
    s = sorted(xs)
    pos = q * (len(s) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="P1,P2,P3")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.2)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1 to compare with one ToyMoE thread)")
    ap.add_argument("--models", type=int, default=64, help="models per vmap step (0: skip the vmap variant)")
    ap.add_argument("--json")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = []
    for name in [c.strip().upper() for c in args.configs.split(",") if c.strip()]:
        for cfg in CONFIGS.get(name, []):
            variants = [("torch", PerModel(cfg), 1)]
            if args.models > 0:
                variants.append((f"torch-vmap{args.models}", ManyModels(cfg, args.models), args.models))
            for vname, impl, models in variants:
                samples, count = time_unit(impl.step, args.repeats, args.min_time)
                med = statistics.median(samples)
                row = dict(config=name, label=cfg["label"], variant=vname, models=models, iterations_per_round=count,
                           seconds_per_step=dict(median=med, p10=quantile(samples, 0.1), p90=quantile(samples, 0.9),
                                                 samples=samples),
                           model_steps_per_second=models / med, gflops=models * flops(cfg) / med / 1e9)
                results.append(row)
                if not args.quiet:
                    print(f"{name}  {cfg['label']:<22} {vname:<13} {med * 1e3:9.3f} ms/step  "
                          f"{models / med:10.1f} model-steps/s  {row['gflops']:7.2f} GFLOP/s", flush=True)
    doc = dict(tool="bench/pytorch/toy_moe_torch.py", torch_version=torch.__version__, threads=args.threads,
               python=sys.version.split()[0], machine=platform.processor() or platform.machine(),
               date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), results=results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
