#!/usr/bin/env python3
"""PyTorch eager on the GPU, the workloads of tests/cuda/gpu_bench.cu: the
paper_body METRO transformer (three encoder blocks, 445 tokens, 2051 -> 3,
dropout 0.1) in train mode, forward + backward of sum(y * w), and in eval mode
under no_grad, fp32 without TF32. Prints lines in metro_gpu_bench's format:
  pytorch transformer_train_b32 <median ms> ms <images/s> images/s
Usage: python3 tools/gpu_bench_pytorch.py [--batch 32] [--reps 5]
"""
import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_pytorch import JOINTS, PAPER_BODY, VERTICES, encoder_blocks  # noqa: E402


def median_ms(step, reps):
    step()
    step()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        step()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    device = torch.device("cuda")
    blocks = encoder_blocks(PAPER_BODY, 2048).to(device)
    x = torch.randn(args.batch, JOINTS + VERTICES, 2051, device=device)
    w = torch.randn(args.batch, JOINTS + VERTICES, 3, device=device)

    def train():
        (blocks(x) * w).sum().backward()
        blocks.zero_grad(set_to_none=True)

    def infer():
        with torch.no_grad():
            blocks(x)

    blocks.train()
    train_ms = median_ms(train, args.reps)
    blocks.eval()
    infer_ms = median_ms(infer, args.reps)
    for name, ms in (("train", train_ms), ("infer", infer_ms)):
        print(f"pytorch transformer_{name}_b{args.batch} {ms:.2f} ms {args.batch * 1000 / ms:.1f} images/s")


if __name__ == "__main__":
    main()
