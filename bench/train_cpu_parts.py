"""Where a seed_cnn training step spends its time on the CPU, part by part, and two ways tried to
shorten the non-convolution part.

    .venv/bin/python bench/train_cpu_parts.py [--threads N] [--amp off|bf16] [--compile]

Batch 50 at 1x100x100, channels_last, with glibc keeping freed memory, as glyphcore trains. For each
of the three stages it times
forward + backward of the convolution (oneDNN) and of the BatchNorm (training mode) + SiLU + 2x2
max-pool that follow it, each alone on a fixed input, best of 5 rounds; shares are of their sum. The
bare model step (the whole model, loss and fused Adam on one batch) is printed beside it.

Alternatives timed on the same inputs:
  sparse-backward  one autograd Function for BatchNorm + activation + max-pool whose backward works
                   on the pooled positions only (a 2x2 max-pool passes gradient to one input in four):
                   fewer full-size passes on paper, built from torch ops (gather / scatter_add_);
  inductor         the block through ``torch.compile`` (needs a C++ compiler; ``--compile``).
Neither is used by glyphcore: see docs/benchmarks.md for the figures that decided it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_cpu import BATCH, bare_step_runner  # noqa: E402

from glyphcore.train import keep_freed_cpu_memory  # noqa: E402

CL = torch.channels_last
# (in channels, out channels, kernel, stride, padding, input side) of seed_cnn's convolutions
STAGES = ((1, 16, 10, 2, 2, 100), (16, 32, 5, 1, 2, 24), (32, 32, 5, 1, 2, 12))
Step = Callable[[], object]  # one timed training step
Row = tuple[str, float, str]  # (part, ms, alternatives) of the printed table


def best_ms(fn, n: int = 20, rounds: int = 5) -> float:
    """Best mean time of ``n`` calls over ``rounds`` rounds, in ms."""
    for _ in range(3):
        fn()
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n * 1e3)
    return best


class SparseBackwardBlock(torch.autograd.Function):
    """BatchNorm (training) + activation + 2x2 max-pool with a backward on the pooled positions.

    Forward as eager (native BatchNorm, the activation, max-pool with indices) and keeps x at the
    max positions. Backward: the activation's gradient at those positions only, BatchNorm's two
    reductions over them, then dx = alpha * x + beta (one full-size pass) plus a scatter-add of the
    sparse part. Exact up to rounding (checked in ``main``).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, momentum, eps, act):
        y, mean, invstd = torch.native_batch_norm(x, weight, bias, running_mean, running_var, True, momentum, eps)[:3]
        pooled, idx = F.max_pool2d(act(y), 2, return_indices=True)
        x_at_max = x.flatten(2).gather(2, idx.flatten(2)).view(idx.shape)
        ctx.save_for_backward(x, x_at_max, idx, weight, bias, mean, invstd)
        ctx.act = act
        return pooled

    @staticmethod
    def backward(ctx, grad_pooled):
        x, x_at_max, idx, weight, bias, mean, invstd = ctx.saved_tensors
        c = (1, -1, 1, 1)
        xhat = (x_at_max.float() - mean.view(c)) * invstd.view(c)
        with torch.enable_grad():
            z = (xhat * weight.view(c) + bias.view(c)).requires_grad_()
            (grad_z,) = torch.autograd.grad(ctx.act(z), z, grad_pooled.float())
        m = x.numel() // x.shape[1]
        sum_g, sum_gx = grad_z.sum((0, 2, 3)), (grad_z * xhat).sum((0, 2, 3))
        scale = weight * invstd
        alpha = -scale * invstd * sum_gx / m
        beta = -scale * sum_g / m - alpha * mean
        dx = torch.addcmul(beta.view(c).to(x.dtype), x, alpha.view(c).to(x.dtype))
        dx.flatten(2).scatter_add_(2, idx.flatten(2), (grad_z * scale.view(c)).to(x.dtype).flatten(2))
        return dx, sum_gx, sum_g, None, None, None, None, None


class Block(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bn, self.act, self.pool = nn.BatchNorm2d(channels), nn.SiLU(), nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.act(self.bn(x)))

    def sparse(self, x: torch.Tensor) -> torch.Tensor:
        self.bn.num_batches_tracked.add_(1)
        bn = self.bn
        return SparseBackwardBlock.apply(
            x, bn.weight, bn.bias, bn.running_mean, bn.running_var, bn.momentum, bn.eps, self.act
        )


def bare_step_ms(amp: bool) -> float:
    """bench/train_cpu.py's bare model step, best of 5 rounds of 20 steps, in ms per step."""
    run = bare_step_runner(20, "bf16" if amp else "off")
    return BATCH / max(run() for _ in range(5)) * 1e3


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line: threads, autocast and whether to try inductor."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--amp", choices=("off", "bf16"), default="off", help="bf16 autocast (default off)")
    p.add_argument("--compile", action="store_true", help="also time the block through torch.compile")
    return p.parse_args(argv)


def conv_case(i: int, cin: int, cout: int, k: int, s: int, pad: int, side: int, amp: bool) -> tuple[Step, torch.Tensor]:
    """Stage i's convolution on a fixed input: its training step (forward + backward) and output gradient."""
    torch.manual_seed(i)
    conv = nn.Conv2d(cin, cout, k, s, pad).to(memory_format=CL)
    x = torch.rand(BATCH, cin, side, side).contiguous(memory_format=CL).requires_grad_(cin > 1)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        g_conv = torch.randn_like(conv(x))

    def conv_step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            out = conv(x)
        out.backward(g_conv)

    return conv_step, g_conv


def block_case(
    cout: int, shape: torch.Size, dtype: torch.dtype
) -> tuple[Step, Step, float, torch.Tensor, torch.Tensor]:
    """Eager and sparse-backward blocks on one input: both steps, max rel. grad diff, the input, the output grad."""
    feat = torch.randn(shape).to(dtype).contiguous(memory_format=CL).requires_grad_()
    eager, sparse = Block(cout), Block(cout)
    sparse.load_state_dict(eager.state_dict())
    g_pool = torch.randn_like(eager(feat))
    params = [feat, eager.bn.weight, eager.bn.bias]
    sparse_params = [feat, sparse.bn.weight, sparse.bn.bias]
    eager_step = lambda: torch.autograd.grad(eager(feat), params, g_pool)
    sparse_step = lambda: torch.autograd.grad(sparse.sparse(feat), sparse_params, g_pool)
    # the alternative must compute the same gradients before its time means anything
    ref = eager_step()
    got = sparse_step()
    err = max(
        float((a.float() - b.float()).abs().max() / b.float().abs().max().clamp_min(1e-12)) for a, b in zip(got, ref)
    )
    return eager_step, sparse_step, err, feat, g_pool


def inductor_ms(cout: int, feat: torch.Tensor, g_pool: torch.Tensor) -> float:
    """A fresh block through ``torch.compile``, forward + backward to its input, in ms."""
    compiled = torch.compile(Block(cout))
    return best_ms(lambda: torch.autograd.grad(compiled(feat), [feat], g_pool))


def time_stages(amp: bool, dtype: torch.dtype, compile_too: bool) -> tuple[list[Row], float, dict[str, float]]:
    """Every stage's convolution and block timed alone: table rows, sum of the parts, alternatives' sums."""
    rows: list[Row] = []
    total = 0.0
    alt = {"sparse-backward": 0.0, "inductor": 0.0}
    for i, (cin, cout, k, s, pad, side) in enumerate(STAGES, 1):
        conv_step, g_conv = conv_case(i, cin, cout, k, s, pad, side, amp)
        eager_step, sparse_step, err, feat, g_pool = block_case(cout, g_conv.shape, dtype)
        t_conv = best_ms(conv_step)
        t_block = best_ms(eager_step)
        t_sparse = best_ms(sparse_step)
        total += t_conv + t_block
        alt["sparse-backward"] += t_sparse
        rows.append((f"conv{i} {cin}->{cout} k{k} s{s} on {side}x{side}", t_conv, ""))
        rows.append(
            (
                f"bn{i}+silu+pool on {cout}x{g_conv.shape[2]}x{g_conv.shape[3]}",
                t_block,
                f"sparse-backward {t_sparse:.2f} ms (max rel. grad diff {err:.0e})",
            )
        )
        if compile_too:
            t_ind = inductor_ms(cout, feat, g_pool)
            alt["inductor"] += t_ind
            rows[-1] = rows[-1][:2] + (rows[-1][2] + f"; inductor {t_ind:.2f} ms",)
    return rows, total, alt


def print_table(rows: list[Row], total: float, alt: dict[str, float], step: float) -> None:
    """The parts with their shares, the bare model step beside them and the alternatives' totals."""
    print(f"\n{'part (timed alone)':<34} {'ms':>7} {'share':>6}  alternatives")
    for name, ms, note in rows:
        print(f"{name:<34} {ms:>7.2f} {ms / total:>6.1%}  {note}")
    print(f"{'sum of the parts':<34} {total:>7.2f} {1:>6.0%}")
    print(
        f"{'bare model step (all of it)':<34} {step:>7.2f}          = {BATCH / step * 1e3:,.0f} images/s "
        f"(with the fc layers, loss and fused Adam; parts timed alone miss the cache effects of a whole step)"
    )
    blocks = sum(ms for name, ms, _ in rows if name.startswith("bn"))
    for name, ms in alt.items():
        if ms:
            print(f"the three blocks: eager {blocks:.2f} ms, {name} {ms:.2f} ms")


def main(argv: list[str] | None = None) -> int:
    """Times the parts, then the bare model step, and prints them side by side."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    keep_freed_cpu_memory()  # as every glyphcore CPU run does
    amp = args.amp == "bf16"
    dtype = torch.bfloat16 if amp else torch.float32
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.amp}; seed_cnn batch {BATCH}, "
        f"channels_last; ms per training step, forward + backward, best of 5 rounds",
        flush=True,
    )
    rows, total, alt = time_stages(amp, dtype, args.compile)
    print_table(rows, total, alt, bare_step_ms(amp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
