#!/usr/bin/python3
"""PyTorch reference fixtures for the METRO layer parity tests.

Writes tests/data/fixtures/<case>.safetensors, one file per case. The layout
of every file (key names, dtypes, the scalar loss whose gradients are stored)
is specified in tools/fixtures.md.

Usage:  /usr/bin/python3 tools/make_fixtures.py [--out DIR] [--check] [CASE ...]
Needs Debian's python3-torch (tools/install_torch.sh); no pip packages.

Recipe shared by all module cases: parameters and inputs are drawn in float32
from a seed fixed per case and stored as F32; the forward and backward are run
in float64 on exactly those values (module.double()); outputs and gradients
are stored as F64. Gradients are those of L = sum_k sum(output_k * W_k) with
one fixed random F32 tensor W_k (key loss_weight.<k>) per output in the loss.
"""

import argparse
import copy
import json
import math
import os
import struct
import sys
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO_ROOT, "tests", "data", "fixtures")

# ---------------------------------------------------------------------------
# safetensors writer and reader (the Python package is not available here)
# ---------------------------------------------------------------------------

DTYPES = {torch.float32: ("F32", "<f4"), torch.float64: ("F64", "<f8"), torch.int64: ("I64", "<i8")}
NUMPY_OF = {"F32": "<f4", "F64": "<f8", "I64": "<i8"}


def write_safetensors(path, tensors, metadata):
    """u64 LE header size, JSON header padded with spaces to 8 bytes, raw LE data.

    Tensors are laid out in name order; metadata values must be strings.
    """
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        tensor = tensors[name].detach().contiguous().cpu()
        dtype, numpy_dtype = DTYPES[tensor.dtype]
        blob = tensor.numpy().astype(numpy_dtype, copy=False).tobytes()
        header[name] = {"dtype": dtype, "shape": list(tensor.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as file:
        file.write(struct.pack("<Q", len(text)))
        file.write(text)
        for blob in blobs:
            file.write(blob)


def read_safetensors(path):
    """Returns ({name: float64/int64 numpy array}, metadata); used by --check."""
    with open(path, "rb") as file:
        raw = file.read()
    (header_size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + header_size])
    metadata = header.pop("__metadata__", {})
    data = raw[8 + header_size:]
    arrays = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        array = np.frombuffer(data[begin:end], dtype=NUMPY_OF[info["dtype"]])
        arrays[name] = array.reshape(info["shape"])
    return arrays, metadata


# ---------------------------------------------------------------------------
# Helpers for drawing values
# ---------------------------------------------------------------------------


def seed_for(case):
    """A seed fixed per case, independent of the order the cases run in."""
    torch.manual_seed(zlib.crc32(case.encode("utf-8")))


def uniform(shape, low, high):
    return torch.rand(shape, dtype=torch.float32) * (high - low) + low


def randomize_norm_layers(module):
    """Non-trivial affine parameters and running statistics for every norm layer.

    Default init (weight 1, bias 0, mean 0, var 1) would hide bugs that swap
    or drop them.
    """
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, (nn.BatchNorm2d, nn.LayerNorm)):
                layer.weight.copy_(uniform(layer.weight.shape, 0.5, 1.5))
                layer.bias.copy_(uniform(layer.bias.shape, -0.5, 0.5))
            if isinstance(layer, nn.BatchNorm2d):
                layer.running_mean.copy_(uniform(layer.running_mean.shape, -0.5, 0.5))
                layer.running_var.copy_(uniform(layer.running_var.shape, 0.5, 2.0))


def float32_state(module):
    """state_dict as F32 copies, without BatchNorm's num_batches_tracked."""
    return {name: value.detach().clone() for name, value in module.state_dict().items()
            if not name.endswith("num_batches_tracked")}


def zero_if_none(gradient, tensor):
    """A tensor that L does not depend on gets an explicit zero gradient."""
    return torch.zeros_like(tensor) if gradient is None else gradient


def metadata_for(config):
    return {"config": json.dumps(config, sort_keys=True), "torch_version": torch.__version__,
            "generator": "tools/make_fixtures.py"}


# ---------------------------------------------------------------------------
# Generic module case: forward/backward in float64 from F32 values
# ---------------------------------------------------------------------------


def module_case(module, inputs, config, forward=None, train=False, loss_keys=("y",), constant_inputs=()):
    """Builds the tensors of one module case.

    module: float32 module with its final parameters; inputs: {k: F32 tensor};
    forward(module, inputs) -> {k: output} (default: {"y": module(x)});
    loss_keys: outputs that enter L (others are stored for reference only);
    constant_inputs: inputs that get no gradient (masks).
    """
    forward = forward or (lambda m, xs: {"y": m(xs["x"])})
    tensors = {f"param.{k}": v for k, v in float32_state(module).items()}
    tensors.update({f"input.{k}": v for k, v in inputs.items()})

    module64 = copy.deepcopy(module).double().train(train)
    inputs64 = {k: v.double().requires_grad_(k not in constant_inputs) for k, v in inputs.items()}
    outputs = forward(module64, inputs64)

    loss = torch.zeros((), dtype=torch.float64)
    for key in loss_keys:
        weight = torch.randn(outputs[key].shape, dtype=torch.float32)
        tensors[f"loss_weight.{key}"] = weight
        loss = loss + (outputs[key] * weight.double()).sum()
    loss.backward()

    tensors.update({f"output.{k}": v.detach() for k, v in outputs.items()})
    tensors.update({f"grad.input.{k}": zero_if_none(v.grad, v) for k, v in inputs64.items() if v.requires_grad})
    tensors.update({f"grad.param.{k}": zero_if_none(v.grad, v) for k, v in module64.named_parameters()})
    if train:
        tensors.update({f"buffer_after.{k}": v.detach() for k, v in module64.named_buffers()
                        if not k.endswith("num_batches_tracked")})
    return tensors, metadata_for(config)


# ---------------------------------------------------------------------------
# Basic layers
# ---------------------------------------------------------------------------


def case_linear(case):
    config = {"in_features": 7, "out_features": 5, "bias": True, "input_shape": [3, 4, 7]}
    module = nn.Linear(7, 5)
    return module_case(module, {"x": torch.randn(3, 4, 7)}, config)


CONV_CASES = {
    # name: (Conv2d arguments, input shape)
    "conv2d_basic": (dict(in_channels=3, out_channels=4, kernel_size=3, stride=1, padding=1,
                          dilation=1, groups=1, bias=True), [2, 3, 9, 9]),
    "conv2d_strided": (dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1,
                            dilation=1, groups=1, bias=False), [2, 4, 11, 10]),
    "conv2d_dilated_groups": (dict(in_channels=4, out_channels=6, kernel_size=3, stride=1, padding=2,
                                   dilation=2, groups=2, bias=True), [1, 4, 8, 8]),
    "conv2d_1x1": (dict(in_channels=8, out_channels=5, kernel_size=1, stride=2, padding=0,
                        dilation=1, groups=1, bias=False), [2, 8, 7, 7]),
    "conv2d_7x7": (dict(in_channels=3, out_channels=4, kernel_size=7, stride=2, padding=3,
                        dilation=1, groups=1, bias=False), [1, 3, 17, 17]),
}


def case_conv2d(case):
    arguments, input_shape = CONV_CASES[case]
    module = nn.Conv2d(**arguments)
    config = dict(arguments, input_shape=input_shape)
    return module_case(module, {"x": torch.randn(input_shape)}, config)


def case_batchnorm2d(case):
    train = case.endswith("_train")
    config = {"num_features": 5, "eps": 1e-5, "momentum": 0.1, "affine": True,
              "track_running_stats": True, "mode": "train" if train else "eval", "input_shape": [3, 5, 4, 6]}
    module = nn.BatchNorm2d(5, eps=1e-5, momentum=0.1)
    randomize_norm_layers(module)
    x = torch.randn(3, 5, 4, 6) * 1.5 + 0.7
    return module_case(module, {"x": x}, config, train=train)


def case_layernorm(case):
    config = {"normalized_shape": [11], "eps": 1e-12, "elementwise_affine": True, "input_shape": [2, 3, 11]}
    module = nn.LayerNorm(11, eps=1e-12)
    randomize_norm_layers(module)
    return module_case(module, {"x": torch.randn(2, 3, 11) * 2 + 0.5}, config)


def case_gelu(case):
    config = {"approximate": "none", "input_shape": [4, 9], "input_range": [-4, 4]}
    return module_case(nn.GELU(), {"x": uniform((4, 9), -4.0, 4.0)}, config)


def case_softmax(case):
    config = {"dim": -1, "input_shape": [3, 5, 7], "input": "3 * randn"}
    return module_case(nn.Softmax(dim=-1), {"x": torch.randn(3, 5, 7) * 3}, config)


def case_maxpool2d(case):
    config = {"kernel_size": 3, "stride": 2, "padding": 1, "dilation": 1, "ceil_mode": False,
              "input_shape": [2, 3, 9, 9]}
    # A permutation of distinct values: no ties, so the argmax (and gradient) is unique.
    x = (torch.randperm(2 * 3 * 9 * 9).float() / 100.0 - 2.0).reshape(2, 3, 9, 9)
    module = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    return module_case(module, {"x": x}, config)


def case_adaptive_avgpool2d(case):
    config = {"output_size": [1, 1], "input_shape": [2, 6, 5, 5]}
    return module_case(nn.AdaptiveAvgPool2d(1), {"x": torch.randn(2, 6, 5, 5)}, config)


# ---------------------------------------------------------------------------
# BERT / METRO transformer, mirroring HuggingFace BERT (post-LN) math
# ---------------------------------------------------------------------------


class BertSelfAttention(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)

    def split_heads(self, x):  # (B, N, H) -> (B, heads, N, H / heads)
        batch, tokens, hidden = x.shape
        return x.view(batch, tokens, self.heads, hidden // self.heads).permute(0, 2, 1, 3)

    def forward(self, x):  # x: (B, N, H) -> context (B, N, H), probs (B, heads, N, N)
        query, key, value = self.split_heads(self.query(x)), self.split_heads(self.key(x)), self.split_heads(self.value(x))
        scores = query @ key.transpose(-1, -2) / math.sqrt(query.shape[-1])
        probs = scores.softmax(dim=-1)  # no mask (METRO uses none); dropout off
        context = (probs @ value).permute(0, 2, 1, 3).reshape(x.shape)
        return context, probs


class BertSelfOutput(nn.Module):
    """dense -> dropout (off) -> LayerNorm(. + residual); also BertOutput's math."""

    def __init__(self, in_features, hidden, eps):
        super().__init__()
        self.dense = nn.Linear(in_features, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x, residual):
        return self.LayerNorm(self.dense(x) + residual)


class BertAttention(nn.Module):
    def __init__(self, hidden, heads, eps):
        super().__init__()
        self.add_module("self", BertSelfAttention(hidden, heads))
        self.output = BertSelfOutput(hidden, hidden, eps)

    def forward(self, x):  # (B, N, H) -> (B, N, H), probs
        context, probs = getattr(self, "self")(x)
        return self.output(context, x), probs


class BertIntermediate(nn.Module):
    def __init__(self, hidden, intermediate):
        super().__init__()
        self.dense = nn.Linear(hidden, intermediate)

    def forward(self, x):
        return F.gelu(self.dense(x))  # erf GELU


class BertLayer(nn.Module):
    def __init__(self, hidden, heads, intermediate, eps):
        super().__init__()
        self.attention = BertAttention(hidden, heads, eps)
        self.intermediate = BertIntermediate(hidden, intermediate)
        self.output = BertSelfOutput(intermediate, hidden, eps)

    def forward(self, x):  # (B, N, H) -> (B, N, H), attention sub-layer output
        attended, _ = self.attention(x)
        return self.output(self.intermediate(attended), attended), attended


class BertEncoder(nn.Module):
    def __init__(self, layers, hidden, heads, intermediate, eps):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(hidden, heads, intermediate, eps) for _ in range(layers)])

    def forward(self, x):
        for layer in self.layer:
            x, _ = layer(x)
        return x


class MetroEncoderBlock(nn.Module):
    """One METRO encoder block (official METRO_Encoder with use_img_layernorm off)."""

    def __init__(self, in_features, hidden, out_features, layers, heads, intermediate, eps, positions):
        super().__init__()
        self.img_embedding = nn.Linear(in_features, hidden)
        self.position_embeddings = nn.Embedding(positions, hidden)
        self.encoder = BertEncoder(layers, hidden, heads, intermediate, eps)
        self.cls_head = nn.Linear(hidden, out_features)
        self.residual = nn.Linear(in_features, out_features)

    def forward(self, x):  # (B, N, in) -> (B, N, out)
        tokens = x.shape[1]
        embeddings = self.img_embedding(x) + self.position_embeddings.weight[:tokens]  # (B, N, hidden)
        hidden = self.encoder(embeddings)  # dropout off
        return {"y": self.cls_head(hidden) + self.residual(x), "embeddings": embeddings, "hidden": hidden}


def case_attention(case):
    config = {"hidden_size": 16, "num_attention_heads": 4, "layer_norm_eps": 1e-12, "input_shape": [2, 10, 16], "input": "2 * randn"}
    module = BertAttention(16, 4, 1e-12)
    randomize_norm_layers(module)

    def forward(m, xs):
        y, probs = m(xs["x"])
        return {"y": y, "probs": probs}

    return module_case(module, {"x": torch.randn(2, 10, 16) * 2}, config, forward=forward)


def case_bert_layer(case):
    config = {"hidden_size": 16, "num_attention_heads": 4, "intermediate_size": 24, "hidden_act": "gelu (erf)",
              "layer_norm_eps": 1e-12, "input_shape": [2, 10, 16], "input": "2 * randn"}
    module = BertLayer(16, 4, 24, 1e-12)
    randomize_norm_layers(module)

    def forward(m, xs):
        y, attended = m(xs["x"])
        return {"y": y, "attention": attended}

    return module_case(module, {"x": torch.randn(2, 10, 16) * 2}, config, forward=forward)


def case_encoder_block(case):
    config = {"input_feat_dim": 19, "hidden_size": 16, "output_feat_dim": 7, "num_hidden_layers": 2,
              "num_attention_heads": 4, "intermediate_size": 24, "hidden_act": "gelu (erf)",
              "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "use_img_layernorm": False,
              "input_shape": [2, 10, 19]}
    module = MetroEncoderBlock(19, 16, 7, 2, 4, 24, 1e-12, 512)
    randomize_norm_layers(module)
    with torch.no_grad():  # BERT-like scale for the table; nn.Embedding's N(0, 1) would swamp the features
        module.position_embeddings.weight.mul_(0.5)
    return module_case(module, {"x": torch.randn(2, 10, 19)}, config, forward=lambda m, xs: m(xs["x"]))


# ---------------------------------------------------------------------------
# ResNet blocks, mirroring torchvision (v1.5: stride on the 3x3 conv)
# ---------------------------------------------------------------------------


def conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


def downsample(in_planes, out_planes, stride):
    return nn.Sequential(conv1x1(in_planes, out_planes, stride), nn.BatchNorm2d(out_planes))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride):
        super().__init__()
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        # As torchvision: a projection shortcut only where the shape changes, else identity.
        self.downsample = downsample(in_planes, planes, stride) if stride != 1 or in_planes != planes else None

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(out + shortcut)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_planes, planes, stride):
        super().__init__()
        self.conv1 = conv1x1(in_planes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.downsample = downsample(in_planes, planes * self.expansion, stride)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.downsample(x))


def case_resnet_block(case):
    train = case.endswith("_train")
    if case.startswith("basic_block"):
        block, planes = BasicBlock, 16
    else:
        block, planes = Bottleneck, 4
    config = {"block": block.__name__, "inplanes": 8, "planes": planes, "expansion": block.expansion,
              "out_channels": planes * block.expansion, "stride": 2, "downsample": "conv1x1 + BatchNorm2d",
              "bn_eps": 1e-5, "bn_momentum": 0.1, "mode": "train" if train else "eval", "input_shape": [2, 8, 9, 9]}
    torch.manual_seed(zlib.crc32(block.__name__.encode("utf-8")))  # same weights and input for _train and _eval
    module = block(8, planes, 2)
    randomize_norm_layers(module)
    return module_case(module, {"x": torch.randn(2, 8, 9, 9)}, config, train=train)


# ---------------------------------------------------------------------------
# The full METRO network, mirroring include/metro/model/metro_network.hpp
# ---------------------------------------------------------------------------


class ResNetTrunk(nn.Module):
    """torchvision's ResNet without avgpool/fc: conv1 7x7/2, bn1, relu, maxpool 3x3/2, layer1..layerK."""

    def __init__(self, block, layers, base_width, in_channels=3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, base_width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base_width)
        in_planes = base_width
        for stage, count in enumerate(layers):
            planes, stride = base_width << stage, 1 if stage == 0 else 2
            blocks = []
            for index in range(count):
                blocks.append(block(in_planes, planes, stride if index == 0 else 1))
                in_planes = planes * block.expansion
            self.add_module(f"layer{stage + 1}", nn.Sequential(*blocks))
        self.stages = len(layers)

    def forward(self, x):  # (B, 3, H, W) -> (B, C, H / 2^(K+1), W / 2^(K+1))
        out = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), kernel_size=3, stride=2, padding=1)
        for stage in range(self.stages):
            out = getattr(self, f"layer{stage + 1}")(out)
        return out


class MetroNetwork(nn.Module):
    """METRO in eval mode (no masking, dropout off), grid token mode, camera from the vertex tokens.

    Names as in the C++ MetroNetwork: backbone.*, conv_learn_tokens.*, the buffers
    template_joints / template_vertices, trans_encoder.<i>.*, cam_param_fc{,2,3}.*,
    upsampling.*, upsampling2.*.
    """

    def __init__(self, c):
        super().__init__()
        self.num_joints, self.num_vertices = c["num_joints"], c["num_coarse_vertices"]
        self.backbone = ResNetTrunk(BasicBlock, c["backbone_layers"], c["base_width"])
        tokens = self.num_joints + self.num_vertices
        self.conv_learn_tokens = nn.Conv1d(c["grid_size"] ** 2, tokens, kernel_size=1)
        self.register_buffer("template_joints", torch.zeros(self.num_joints, 3))
        self.register_buffer("template_vertices", torch.zeros(self.num_vertices, 3))
        self.trans_encoder = nn.ModuleList(
            [MetroEncoderBlock(b["in"], b["hidden"], b["out"], b["layers"], b["heads"], b["intermediate"],
                               1e-12, c["position_embeddings"]) for b in c["blocks"]])
        self.cam_param_fc = nn.Linear(3, 1)
        self.cam_param_fc2 = nn.Linear(self.num_vertices, c["camera_hidden"])
        self.cam_param_fc3 = nn.Linear(c["camera_hidden"], 3)
        mid, full = c["upsample_sizes"]
        self.upsampling = nn.Linear(self.num_vertices, mid)
        self.upsampling2 = nn.Linear(mid, full)

    def forward(self, images):  # (B, 3, S, S)
        batch = images.shape[0]
        grid = self.backbone(images)                                          # (B, C, h, w)
        cells = grid.reshape(batch, grid.shape[1], -1).transpose(1, 2)        # (B, h*w, C)
        image_tokens = self.conv_learn_tokens(cells)                          # (B, N, C)
        xyz = torch.cat([self.template_joints, self.template_vertices], dim=0)  # (N, 3)
        tokens = torch.cat([xyz.expand(batch, -1, -1), image_tokens], dim=2)  # (B, N, 3 + C)
        for block in self.trans_encoder:
            tokens = block(tokens)["y"]                                       # ... -> (B, N, 3)
        joints = tokens[:, :self.num_joints]                                  # (B, J, 3)
        coarse = tokens[:, self.num_joints:]                                  # (B, V, 3)
        camera = self.cam_param_fc3(self.cam_param_fc2(self.cam_param_fc(coarse).squeeze(2)))  # (B, 3)
        mid = self.upsampling(coarse.transpose(1, 2))                         # (B, 3, mid)
        full = self.upsampling2(mid)                                          # (B, 3, full)
        return {"camera": camera, "joints": joints, "coarse_vertices": coarse,
                "mid_vertices": mid.transpose(1, 2), "full_vertices": full.transpose(1, 2)}


METRO_OUTPUTS = ("camera", "joints", "coarse_vertices", "mid_vertices", "full_vertices")


def case_metro_network(case):
    # tiny_config() of tests/test_model.cpp, except 16 position rows instead of 512: the
    # three 512-row tables (F32 + F64 gradient) alone would be 123 KB; rows 8..15 stay unused.
    config = {"image_size": 32, "backbone_block": "basic", "backbone_layers": [1, 1], "base_width": 4,
              "grid_size": 4, "feature_channels": 8, "token_mode": "grid", "num_joints": 3,
              "num_coarse_vertices": 5, "upsample_sizes": [9, 17], "position_embeddings": 16,
              "blocks": [{"in": 11, "hidden": 8, "out": 6, "layers": 1, "heads": 2, "intermediate": 12},
                         {"in": 6, "hidden": 8, "out": 4, "layers": 1, "heads": 2, "intermediate": 12},
                         {"in": 4, "hidden": 4, "out": 3, "layers": 1, "heads": 2, "intermediate": 8}],
              "camera_hidden": 4, "camera_from_all_tokens": False, "hidden_act": "gelu (erf)",
              "layer_norm_eps": 1e-12, "bn_eps": 1e-5, "mode": "eval", "dropout": 0, "mvm": "off",
              "input_shape": [2, 3, 32, 32]}
    module = MetroNetwork(config)
    randomize_norm_layers(module)
    with torch.no_grad():
        for block in module.trans_encoder:  # BERT-like scale, as in encoder_block
            block.position_embeddings.weight.mul_(0.5)
        module.template_joints.copy_(torch.randn(3, 3))
        module.template_vertices.copy_(torch.randn(5, 3))
    return module_case(module, {"x": torch.randn(2, 3, 32, 32)}, config, forward=lambda m, xs: m(xs["x"]),
                       loss_keys=METRO_OUTPUTS)


# ---------------------------------------------------------------------------
# Optimizers: 10 steps of torch.optim in float32
# ---------------------------------------------------------------------------

OPTIMIZER_CASES = {
    "adam": (torch.optim.Adam, dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)),
    "adamw": (torch.optim.AdamW, dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)),
    "sgd_momentum": (torch.optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=1e-4, nesterov=False)),
}
OPTIMIZER_STEPS = 10


def case_optimizer(case):
    optimizer_class, options = OPTIMIZER_CASES[case]
    parameter = torch.nn.Parameter(torch.randn(5, 3))
    tensors = {"param.initial": parameter.detach().clone()}
    optimizer = optimizer_class([parameter], foreach=False, **options)
    for step in range(1, OPTIMIZER_STEPS + 1):
        gradient = torch.randn(5, 3)
        tensors[f"grads.{step}"] = gradient
        parameter.grad = gradient.clone()
        optimizer.step()
        tensors[f"param.step{step}"] = parameter.detach().clone()
    for name, value in optimizer.state[parameter].items():
        if torch.is_tensor(value) and value.dim() > 0:
            tensors[f"state_after.{name}"] = value.detach().clone()
    config = dict(options, optimizer=optimizer_class.__name__, steps=OPTIMIZER_STEPS, dtype="float32",
                  param_shape=[5, 3])
    return tensors, metadata_for(config)


# ---------------------------------------------------------------------------
# Losses and the weak-perspective camera (official METRO training code)
# ---------------------------------------------------------------------------


def orthographic_projection(points, camera):
    """points (B, K, 3), camera (B, 3) = [s, tx, ty] -> (B, K, 2) = s * (xy + t)."""
    return camera[:, None, :1] * (points[:, :, :2] + camera[:, None, 1:])


def gated_loss(criterion, pred, target, gate):
    """criterion (mean reduction) over the samples with gate == 1; 0 when there are none."""
    selected = gate == 1
    if not bool(selected.any()):
        return torch.zeros((), dtype=pred.dtype)
    return criterion(pred[selected], target[selected])


def case_losses(case):
    gate = {"losses": torch.tensor([1.0, 0.0, 1.0, 1.0]), "losses_no_gate": torch.zeros(4)}[case]
    inputs = {"pred": torch.randn(4, 6, 3), "target": torch.randn(4, 6, 3), "gate": gate,
              "cam": torch.stack([uniform(4, 0.5, 1.5), uniform(4, -0.3, 0.3), uniform(4, -0.3, 0.3)], dim=1)}
    config = {"pred_shape": [4, 6, 3], "target_shape": [4, 6, 3], "gate_shape": [4], "cam_shape": [4, 3],
              "l1_gated": "L1Loss(mean)(pred[gate==1], target[gate==1]), 0 if none",
              "mse_gated": "MSELoss(mean)(pred[gate==1], target[gate==1]), 0 if none",
              "proj": "cam[:,0] * (pred[:,:,:2] + cam[:,1:])"}

    def forward(_, xs):
        return {"proj": orthographic_projection(xs["pred"], xs["cam"]),
                "l1_gated": gated_loss(nn.L1Loss(), xs["pred"], xs["target"], xs["gate"]),
                "mse_gated": gated_loss(nn.MSELoss(), xs["pred"], xs["target"], xs["gate"])}

    return module_case(nn.Module(), inputs, config, forward=forward,
                       loss_keys=("proj", "l1_gated", "mse_gated"), constant_inputs=("gate",))


# ---------------------------------------------------------------------------

CASES = {
    "linear": case_linear,
    **{name: case_conv2d for name in CONV_CASES},
    "batchnorm2d_train": case_batchnorm2d,
    "batchnorm2d_eval": case_batchnorm2d,
    "layernorm": case_layernorm,
    "gelu": case_gelu,
    "softmax": case_softmax,
    "maxpool2d": case_maxpool2d,
    "adaptive_avgpool2d": case_adaptive_avgpool2d,
    "attention": case_attention,
    "bert_layer": case_bert_layer,
    "encoder_block": case_encoder_block,
    "basic_block_train": case_resnet_block,
    "basic_block_eval": case_resnet_block,
    "bottleneck_train": case_resnet_block,
    "bottleneck_eval": case_resnet_block,
    "metro_network": case_metro_network,
    **{name: case_optimizer for name in OPTIMIZER_CASES},
    "losses": case_losses,
    "losses_no_gate": case_losses,
}


def check_file(path, tensors, metadata):
    """Reads the file back and compares every tensor and the metadata bit for bit."""
    arrays, stored_metadata = read_safetensors(path)
    assert stored_metadata == metadata, path
    assert sorted(arrays) == sorted(tensors), path
    for name, tensor in tensors.items():
        assert np.array_equal(arrays[name], tensor.detach().numpy()), (path, name)
        assert np.isfinite(arrays[name]).all(), (path, name)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", help="cases to write (default: all)")
    parser.add_argument("--out", default=DEFAULT_OUT, help="output folder")
    parser.add_argument("--check", action="store_true", help="read every file back and compare")
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    total = 0
    for case in args.cases or CASES:
        if case not in CASES:
            sys.exit(f"unknown case {case!r}; known: {', '.join(CASES)}")
        seed_for(case)
        tensors, metadata = CASES[case](case)
        path = os.path.join(args.out, f"{case}.safetensors")
        write_safetensors(path, tensors, metadata)
        if args.check:
            check_file(path, tensors, metadata)
        size = os.path.getsize(path)
        total += size
        print(f"{case:24s} {len(tensors):4d} tensors {size:8d} bytes")
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
