#!/usr/bin/python3
"""The workloads of benchmarks/bench_models.cpp in PyTorch (fp32, random weights;
the *_bf16 ones under torch.autocast("cpu", dtype=torch.bfloat16), PyTorch's own
bf16 inference, against ours with MatmulPrecision::bf16).

The METRO model is written out here as the official MeshTransformer code builds
it (no torchvision or HF transformers needed): post-LN BERT layers, three encoder
blocks with img_embedding / position table / cls_head / residual, Conv1d(49 -> 445)
image tokens, masked vertex modeling, camera head and learned upsampling; the
backbone is the torchvision v1.5 ResNet trunk.

One workload per process (peak memory is the process's ru_maxrss):
  /usr/bin/python3 tools/bench_pytorch.py WORKLOAD [--reps N] [--warmup N] [--threads 2]
prints one JSON line: {"workload", "times_s": [...], "median_s", "images_per_s", "peak_rss_MB"}.
Use --check to print the output checksum instead (to confirm OPENBLAS_CORETYPE
does not change the results).
"""
import argparse
import json
import math
import resource
import statistics
import time

import torch
from torch import nn
import torch.nn.functional as F

# ---- ResNet trunk (torchvision v1.5: stride on the 3x3 conv of a bottleneck) ----


class Block(nn.Module):
    def __init__(self, bottleneck, inplanes, planes, stride):
        super().__init__()
        expansion = 4 if bottleneck else 1
        out = planes * expansion
        if bottleneck:
            shapes = [(inplanes, planes, 1, 1), (planes, planes, 3, stride), (planes, out, 1, 1)]
        else:
            shapes = [(inplanes, planes, 3, stride), (planes, planes, 3, 1)]
        self.convs = nn.ModuleList(nn.Conv2d(i, o, k, s, k // 2, bias=False) for i, o, k, s in shapes)
        self.bns = nn.ModuleList(nn.BatchNorm2d(o) for _, o, _, _ in shapes)
        self.downsample = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride, bias=False), nn.BatchNorm2d(out))

    def forward(self, x):
        y = x
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            y = bn(conv(y))
            if i + 1 < len(self.convs):
                y = F.relu(y)
        return F.relu(y + (self.downsample(x) if self.downsample is not None else x))


class ResNet(nn.Module):
    def __init__(self, bottleneck, layers, width):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        blocks, inplanes = [], width
        for stage, count in enumerate(layers):
            planes = width << stage
            for b in range(count):
                blocks.append(Block(bottleneck, inplanes, planes, (1 if stage == 0 else 2) if b == 0 else 1))
                inplanes = planes * (4 if bottleneck else 1)
        self.blocks = nn.Sequential(*blocks)
        self.out_channels = inplanes

    def forward(self, x):
        return self.blocks(F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1))


# ---- METRO transformer (post-LN BERT layers, as the official METRO_Encoder) ----


class BertLayer(nn.Module):
    def __init__(self, hidden, heads, intermediate, dropout):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = (nn.Linear(hidden, hidden) for _ in range(3))
        self.attn_out, self.attn_norm = nn.Linear(hidden, hidden), nn.LayerNorm(hidden, eps=1e-12)
        self.inter, self.out = nn.Linear(hidden, intermediate), nn.Linear(intermediate, hidden)
        self.out_norm = nn.LayerNorm(hidden, eps=1e-12)
        self.dropout = nn.Dropout(dropout)

    def split(self, t):
        b, n, h = t.shape
        return t.view(b, n, self.heads, h // self.heads).permute(0, 2, 1, 3)

    def forward(self, x):
        b, n, h = x.shape
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(h // self.heads)
        context = torch.matmul(self.dropout(F.softmax(scores, dim=-1)), v)
        context = context.permute(0, 2, 1, 3).reshape(b, n, h)
        a = self.attn_norm(self.dropout(self.attn_out(context)) + x)
        return self.out_norm(self.dropout(self.out(F.gelu(self.inter(a)))) + a)


class EncoderBlock(nn.Module):
    def __init__(self, d_in, hidden, d_out, layers, heads, intermediate, dropout=0.1, positions=512):
        super().__init__()
        self.img_embedding = nn.Linear(d_in, hidden)
        self.position_embeddings = nn.Embedding(positions, hidden)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.Sequential(*(BertLayer(hidden, heads, intermediate, dropout) for _ in range(layers)))
        self.cls_head, self.residual = nn.Linear(hidden, d_out), nn.Linear(d_in, d_out)

    def forward(self, x):
        n = x.shape[1]
        embedded = self.img_embedding(x) + self.position_embeddings.weight[:n]
        return self.cls_head(self.layers(self.dropout(embedded))) + self.residual(x)


# ---- presets (include/metro/model/config.hpp) ----

PAPER_BODY = dict(bottleneck=True, layers=[3, 4, 6, 3], width=64, image=224, hidden=[1024, 256, 128],
                  out=[512, 128, 3], bert_layers=4, intermediate=[3072, 3072, 3072], camera_hidden=250,
                  vertices=431, upsample=[1723, 6890])
SMALL = dict(bottleneck=False, layers=[1, 1, 1], width=32, image=128, hidden=[128, 64, 32],
             out=[64, 32, 3], bert_layers=1, intermediate=[256, 128, 64], camera_hidden=64,
             vertices=108, upsample=[431, 6890])
JOINTS, VERTICES = 14, 431  # the paper's tokens (the transformer-only workloads)


def encoder_blocks(p, channels):
    blocks, d_in = [], 3 + channels
    for hidden, out, inter in zip(p["hidden"], p["out"], p["intermediate"]):
        blocks.append(EncoderBlock(d_in, hidden, out, p["bert_layers"], 4, inter))
        d_in = out
    return nn.Sequential(*blocks)


class Metro(nn.Module):
    def __init__(self, p):
        super().__init__()
        self.backbone = ResNet(p["bottleneck"], p["layers"], p["width"])
        grid = p["image"] // (4 * 2 ** (len(p["layers"]) - 1))
        self.vertices, upsample = p["vertices"], p["upsample"]
        tokens = JOINTS + self.vertices
        self.conv_learn_tokens = nn.Conv1d(grid * grid, tokens, 1)
        self.register_buffer("template", torch.randn(tokens, 3) * 0.3)
        self.trans_encoder = encoder_blocks(p, self.backbone.out_channels)
        self.cam_param_fc, self.cam_param_fc2 = nn.Linear(3, 1), nn.Linear(self.vertices, p["camera_hidden"])
        self.cam_param_fc3 = nn.Linear(p["camera_hidden"], 3)
        self.upsampling, self.upsampling2 = nn.Linear(self.vertices, upsample[0]), nn.Linear(upsample[0], upsample[1])

    def forward(self, images):
        b = images.shape[0]
        grid = self.backbone(images)
        cells = grid.flatten(2).transpose(1, 2)                                # (B, h*w, C)
        features = self.conv_learn_tokens(cells)                              # (B, N, C)
        tokens = torch.cat([self.template.expand(b, -1, -1), features], 2)   # (B, N, 3 + C)
        if self.training:  # masked vertex modeling, 30%
            keep = torch.ones(b, tokens.shape[1], 1)
            for i in range(b):
                for first, count in ((0, JOINTS), (JOINTS, self.vertices)):
                    masked = int(torch.rand(1).item() * 0.3 * count)
                    keep[i, first + torch.randperm(count)[:masked]] = 0
            tokens = tokens * keep + (1 - keep) * 0.01
        xyz = self.trans_encoder(tokens)
        coarse = xyz[:, JOINTS:]
        camera = self.cam_param_fc3(self.cam_param_fc2(self.cam_param_fc(coarse).squeeze(2)))
        mid = self.upsampling(coarse.transpose(1, 2))
        full = self.upsampling2(mid)
        return camera, xyz[:, :JOINTS], coarse, mid.transpose(1, 2), full.transpose(1, 2)


# ---- workloads ----


def transformer(batch, train):
    blocks = encoder_blocks(PAPER_BODY, 2048).train(train)
    x = torch.randn(batch, JOINTS + VERTICES, 2051)
    w = torch.randn(batch, JOINTS + VERTICES, 3)
    if not train:
        def step():
            with torch.no_grad():
                return blocks(x)
        return step

    def step():
        y = blocks(x)
        (y * w).sum().backward()
        blocks.zero_grad(set_to_none=True)
        return y
    return step


def resnet50_forward(batch):
    net = ResNet(True, [3, 4, 6, 3], 64).eval()
    x = torch.randn(batch, 3, 224, 224)

    def step():
        with torch.no_grad():
            return net(x)
    return step


def train_step(p, batch):
    net = Metro(p).train()
    adam = torch.optim.Adam(net.parameters(), lr=1e-4)
    images = torch.randn(batch, 3, p["image"], p["image"])
    targets = [torch.randn(batch, n, 3) * 0.3 for n in [p["vertices"]] + p["upsample"]]

    def step():
        _, _, coarse, mid, full = net(images)
        loss = 0.33 * sum(F.l1_loss(pred, t) for pred, t in zip((coarse, mid, full), targets))
        adam.zero_grad(set_to_none=True)
        loss.backward()
        adam.step()
        return loss
    return step


def in_bf16(step):
    def bf16_step():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return step()
    return bf16_step


WORKLOADS = {
    "transformer_fwd_b1": (1, lambda: transformer(1, False)),
    "transformer_train_b8": (8, lambda: transformer(8, True)),
    "resnet50_fwd_b1": (1, lambda: resnet50_forward(1)),
    "transformer_fwd_b1_bf16": (1, lambda: in_bf16(transformer(1, False))),
    "resnet50_fwd_b1_bf16": (1, lambda: in_bf16(resnet50_forward(1))),
    "metro_r50_train_b8": (8, lambda: train_step(PAPER_BODY, 8)),
    "small_train_b16": (16, lambda: train_step(SMALL, 16)),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--check", action="store_true", help="print a checksum of one forward instead of timing")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    batch, make = WORKLOADS[args.workload]
    step = make()
    if args.check:
        out = step()
        out = out if torch.is_tensor(out) else out[0]
        print(json.dumps({"workload": args.workload, "checksum": float(out.double().abs().sum())}))
        return
    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.reps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux
    print(json.dumps({"workload": args.workload, "times_s": times, "median_s": median,
                      "images_per_s": batch / median, "peak_rss_MB": peak}))


if __name__ == "__main__":
    main()
