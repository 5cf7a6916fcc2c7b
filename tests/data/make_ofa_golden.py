#!/usr/bin/python3
"""Golden numbers for the OFA-MobileNetV3 tests (tests/cpu/test_ofa_mbv3.cpp).

A compact PyTorch (1.13) re-implementation of the semantics of the reference
(mit-han-lab/once-for-all: ofa_mbv3.py, dynamic_layers.py, dynamic_op.py,
layers.py), with the reference's module names so that state_dict keys come out
as PyTorch writes them. No weights are stored: both sides set every parameter
and buffer from a cheap formula of its name and flat index (init_value below,
mirrored by the C++ test), rounded to float32.

Forward and gradient cases run in float64 (on float32-rounded weights and
inputs), so the golden values carry no float32 rounding of their own.

Output: tests/data/ofa_golden.txt (text, one record per line); the "hires"
records at the end hold the cases at the issue's resolutions (128, 160, 131).
Run: /usr/bin/python3 tests/data/make_ofa_golden.py
"""
import json
import os
import random
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(2)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ofa_golden.txt")

# ----------------------------------------------------------------- init formula
M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def u01(name, n):
    """splitmix64 of (crc32(name) << 32) + i, top 53 bits -> [0, 1)."""
    s = np.uint64(zlib.crc32(name.encode()))
    with np.errstate(over="ignore"):
        z = (s << np.uint64(32)) + np.arange(n, dtype=np.uint64)
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def init_value(name, shape):
    """float32-rounded values of parameter/buffer `name` (same rule in C++)."""
    n = int(np.prod(shape)) if len(shape) else 1
    u = u01(name, n)
    if name.endswith("num_batches_tracked"):
        return None
    if name.endswith("running_mean"):
        v = 0.2 * (u - 0.5)
    elif name.endswith("running_var"):
        v = 0.5 + u
    elif name.endswith("_matrix"):
        k = shape[0]
        v = np.eye(k).reshape(-1) + 0.2 * (u - 0.5)
    elif len(shape) == 1:
        if "bn." in name and name.endswith("weight"):
            v = 1.0 + 0.4 * (u - 0.5)
        else:  # BN bias, conv / linear bias
            v = 0.2 * (u - 0.5)
    else:
        fan_in = int(np.prod(shape[1:]))
        v = (2.0 * u - 1.0) * np.sqrt(3.0 / fan_in)
    return v.astype(np.float32).reshape(shape)


def init_module(m):
    with torch.no_grad():
        for k, t in m.state_dict().items():
            v = init_value(k, list(t.shape))
            if v is None:
                t.zero_()
            else:
                t.copy_(torch.from_numpy(v.astype(np.float64)).to(t.dtype))


def input_tensor(batch, res, dtype):
    v = (2.0 * u01("input", batch * 3 * res * res) - 1.0).astype(np.float32)
    return torch.from_numpy(v.astype(np.float64)).reshape(batch, 3, res, res).to(dtype)


def logit_weights(batch, n_classes, dtype):
    v = (2.0 * u01("logit_weights", batch * n_classes) - 1.0).astype(np.float32)
    return torch.from_numpy(v.astype(np.float64)).reshape(batch, n_classes).to(dtype)


# ----------------------------------------------------------------- helpers
def make_divisible(v, divisor=8, min_val=None):
    if min_val is None:
        min_val = divisor
    new_v = max(min_val, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def ofa_round(x):  # dynamic_layers.round: float32 torch.round
    return torch.round(torch.tensor(x, dtype=torch.float))


def act(name, x):
    if name == "relu":
        return F.relu(x)
    if name == "relu6":
        return F.relu6(x)
    if name == "h_swish":
        return x * F.relu6(x + 3.0) / 6.0
    if name == "h_sigmoid":
        return F.relu6(x + 3.0) / 6.0
    assert name is None
    return x


def hsig(x):
    return F.relu6(x + 3.0) / 6.0


def gap(x):
    return x.mean(3, keepdim=True).mean(2, keepdim=True)


class Box(nn.Module):
    """Attribute container standing in for the reference's nn.Sequential."""


# ----------------------------------------------------------------- static layers
class ConvLayer(nn.Module):
    def __init__(self, cin, cout, kernel_size=3, stride=1, bias=False, use_bn=True, act_func="relu"):
        super().__init__()
        self.cin, self.cout, self.k, self.s, self.bias_, self.use_bn, self.act_func = (
            cin, cout, kernel_size, stride, bias, use_bn, act_func)
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride, kernel_size // 2, bias=bias)
        if use_bn:
            self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        x = self.conv(x)
        if self.use_bn:
            x = self.bn(x)
        return act(self.act_func, x)

    @property
    def config(self):
        return {"name": "ConvLayer", "kernel_size": self.k, "stride": self.s, "dilation": 1, "groups": 1,
                "bias": self.bias_, "has_shuffle": False, "use_se": False, "in_channels": self.cin,
                "out_channels": self.cout, "use_bn": self.use_bn, "act_func": self.act_func,
                "dropout_rate": 0, "ops_order": "weight_bn_act"}

    @property
    def module_str(self):
        s = "%dx%d_Conv_O%d_%s" % (self.k, self.k, self.cout, self.act_func.upper())
        return s + ("_BN" if self.use_bn else "")


class SEModule(nn.Module):
    def __init__(self, c):
        super().__init__()
        mid = make_divisible(c // 4, 8)
        self.fc = Box()
        self.fc.reduce = nn.Conv2d(c, mid, 1, 1, 0, bias=True)
        self.fc.expand = nn.Conv2d(mid, c, 1, 1, 0, bias=True)

    def forward(self, x):
        y = F.relu(self.fc.reduce(gap(x)))
        return x * hsig(self.fc.expand(y))


class MBConvLayer(nn.Module):
    def __init__(self, cin, cout, kernel_size=3, stride=1, expand_ratio=6, mid_channels=None, act_func="relu6",
                 use_se=False):
        super().__init__()
        self.cin, self.cout, self.k, self.s, self.e, self.mid, self.act_func, self.use_se = (
            cin, cout, kernel_size, stride, expand_ratio, mid_channels, act_func, use_se)
        f = round(cin * expand_ratio) if mid_channels is None else mid_channels
        self.inverted_bottleneck = None
        if expand_ratio != 1:
            self.inverted_bottleneck = Box()
            self.inverted_bottleneck.conv = nn.Conv2d(cin, f, 1, 1, 0, bias=False)
            self.inverted_bottleneck.bn = nn.BatchNorm2d(f)
        self.depth_conv = Box()
        self.depth_conv.conv = nn.Conv2d(f, f, kernel_size, stride, kernel_size // 2, groups=f, bias=False)
        self.depth_conv.bn = nn.BatchNorm2d(f)
        if use_se:
            self.depth_conv.se = SEModule(f)
        self.point_linear = Box()
        self.point_linear.conv = nn.Conv2d(f, cout, 1, 1, 0, bias=False)
        self.point_linear.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        if self.inverted_bottleneck is not None:
            x = act(self.act_func, self.inverted_bottleneck.bn(self.inverted_bottleneck.conv(x)))
        x = act(self.act_func, self.depth_conv.bn(self.depth_conv.conv(x)))
        if self.use_se:
            x = self.depth_conv.se(x)
        return self.point_linear.bn(self.point_linear.conv(x))

    @property
    def config(self):
        return {"name": "MBConvLayer", "in_channels": self.cin, "out_channels": self.cout, "kernel_size": self.k,
                "stride": self.s, "expand_ratio": self.e, "mid_channels": self.mid, "act_func": self.act_func,
                "use_se": self.use_se, "groups": None}

    @property
    def module_str(self):
        e = self.e if self.mid is None else self.mid // self.cin
        s = "%dx%d_MBConv%d_%s" % (self.k, self.k, e, self.act_func.upper())
        if self.use_se:
            s = "SE_" + s
        return s + "_O%d_BN" % self.cout


def identity_config(c):
    return {"name": "IdentityLayer", "in_channels": c, "out_channels": c, "use_bn": False, "act_func": None,
            "dropout_rate": 0, "ops_order": "weight_bn_act"}


class ResidualBlock(nn.Module):
    def __init__(self, conv, shortcut_c):
        super().__init__()
        self.conv = conv
        self.shortcut_c = shortcut_c  # None: no shortcut

    def forward(self, x):
        y = self.conv(x)
        return y + x if self.shortcut_c is not None else y

    @property
    def config(self):
        return {"name": "ResidualBlock", "conv": self.conv.config,
                "shortcut": identity_config(self.shortcut_c) if self.shortcut_c is not None else None}

    @property
    def module_str(self):
        return "(%s, %s)" % (self.conv.module_str, "Identity" if self.shortcut_c is not None else "None")


class LinearLayer(nn.Module):
    def __init__(self, fin, fout, bias=True, dropout_rate=0):
        super().__init__()
        self.fin, self.fout, self.bias_, self.p = fin, fout, bias, dropout_rate
        self.linear = nn.Linear(fin, fout, bias)

    def forward(self, x):
        if self.p > 0:
            x = F.dropout(x, self.p, self.training)
        return self.linear(x)

    @property
    def config(self):
        return {"name": "LinearLayer", "in_features": self.fin, "out_features": self.fout, "bias": self.bias_,
                "use_bn": False, "act_func": None, "dropout_rate": self.p, "ops_order": "weight_bn_act"}


class MobileNetV3(nn.Module):
    def __init__(self, first_conv, blocks, final_expand_layer, feature_mix_layer, classifier):
        super().__init__()
        self.first_conv = first_conv
        self.blocks = nn.ModuleList(blocks)
        self.final_expand_layer = final_expand_layer
        self.feature_mix_layer = feature_mix_layer
        self.classifier = classifier

    def forward(self, x):
        x = self.first_conv(x)
        for b in self.blocks:
            x = b(x)
        x = self.final_expand_layer(x)
        x = gap(x)
        x = self.feature_mix_layer(x)
        return self.classifier(x.view(x.size(0), -1))

    @staticmethod
    def build_from_config(c):
        def conv_layer(d):
            return ConvLayer(d["in_channels"], d["out_channels"], d["kernel_size"], d["stride"], d["bias"],
                             d["use_bn"], d["act_func"])
        blocks = []
        for b in c["blocks"]:
            d = b["conv"]
            conv = MBConvLayer(d["in_channels"], d["out_channels"], d["kernel_size"], d["stride"], d["expand_ratio"],
                               d["mid_channels"], d["act_func"], d["use_se"])
            blocks.append(ResidualBlock(conv, b["shortcut"]["in_channels"] if b["shortcut"] else None))
        cl = c["classifier"]
        return MobileNetV3(conv_layer(c["first_conv"]), blocks, conv_layer(c["final_expand_layer"]),
                           conv_layer(c["feature_mix_layer"]),
                           LinearLayer(cl["in_features"], cl["out_features"], cl["bias"], cl["dropout_rate"]))


# ----------------------------------------------------------------- dynamic layers
class DynamicConv2d(nn.Module):
    def __init__(self, max_in, max_out, k=1, stride=1):
        super().__init__()
        self.k, self.stride = k, stride
        self.conv = nn.Conv2d(max_in, max_out, k, stride=stride, bias=False)

    def forward(self, x, out):
        w = self.conv.weight[:out, :x.size(1), :, :].contiguous()
        return F.conv2d(x, w, None, self.stride, self.k // 2, 1, 1)


class DynamicSeparableConv2d(nn.Module):
    def __init__(self, max_in, ks_list, stride=1):
        super().__init__()
        self.ks_list, self.stride = ks_list, stride
        self.conv = nn.Conv2d(max_in, max_in, max(ks_list), stride, groups=max_in, bias=False)
        self._ks_set = sorted(set(ks_list))
        for i in range(len(self._ks_set) - 1):
            small, large = self._ks_set[i], self._ks_set[i + 1]
            self.register_parameter("%dto%d_matrix" % (large, small), nn.Parameter(torch.eye(small ** 2)))

    def get_active_filter(self, c, k):
        kmax = max(self.ks_list)
        if k == kmax:
            return self.conv.weight[:c, :c, :, :]
        f = self.conv.weight[:c, :c, :, :]
        for i in range(len(self._ks_set) - 1, 0, -1):
            src = self._ks_set[i]
            if src <= k:
                break
            tgt = self._ks_set[i - 1]
            s = src // 2 - tgt // 2
            x = f[:, :, s:s + tgt, s:s + tgt].contiguous()
            x = x.view(x.size(0), x.size(1), -1)
            x = x.view(-1, x.size(2))
            x = F.linear(x, getattr(self, "%dto%d_matrix" % (src, tgt)))
            f = x.view(c, 1, tgt, tgt)
        return f

    def forward(self, x, k):
        c = x.size(1)
        w = self.get_active_filter(c, k).contiguous()
        return F.conv2d(x, w, None, self.stride, k // 2, 1, c)


class DynamicBatchNorm2d(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.bn = nn.BatchNorm2d(m)

    def forward(self, x):
        bn, c = self.bn, x.size(1)
        if bn.num_features == c:
            return bn(x)
        if bn.training:
            bn.num_batches_tracked += 1
        return F.batch_norm(x, bn.running_mean[:c], bn.running_var[:c], bn.weight[:c], bn.bias[:c], bn.training,
                            bn.momentum, bn.eps)


class DynamicSE(nn.Module):
    def __init__(self, c):
        super().__init__()
        mid = make_divisible(c // 4, 8)
        self.fc = Box()
        self.fc.reduce = nn.Conv2d(c, mid, 1, 1, 0, bias=True)
        self.fc.expand = nn.Conv2d(mid, c, 1, 1, 0, bias=True)

    def forward(self, x):
        c = x.size(1)
        mid = make_divisible(c // 4, 8)
        y = gap(x)
        y = F.conv2d(y, self.fc.reduce.weight[:mid, :c].contiguous(), self.fc.reduce.bias[:mid])
        y = F.relu(y)
        y = F.conv2d(y, self.fc.expand.weight[:c, :mid].contiguous(), self.fc.expand.bias[:c])
        return x * hsig(y)


class DynamicMBConvLayer(nn.Module):
    def __init__(self, cin, cout, ks_list, e_list, stride, act_func, use_se):
        super().__init__()
        self.cin, self.cout, self.ks_list, self.e_list, self.stride, self.act_func, self.use_se = (
            cin, cout, ks_list, e_list, stride, act_func, use_se)
        max_mid = make_divisible(ofa_round(cin * max(e_list)), 8)
        self.inverted_bottleneck = Box()
        self.inverted_bottleneck.conv = DynamicConv2d(cin, max_mid)
        self.inverted_bottleneck.bn = DynamicBatchNorm2d(max_mid)
        self.depth_conv = Box()
        self.depth_conv.conv = DynamicSeparableConv2d(max_mid, ks_list, stride)
        self.depth_conv.bn = DynamicBatchNorm2d(max_mid)
        if use_se:
            self.depth_conv.se = DynamicSE(max_mid)
        self.point_linear = Box()
        self.point_linear.conv = DynamicConv2d(max_mid, cout)
        self.point_linear.bn = DynamicBatchNorm2d(cout)
        self.active_kernel_size = max(ks_list)
        self.active_expand_ratio = max(e_list)
        self.active_out_channel = cout

    def mid(self, c):
        return make_divisible(ofa_round(c * self.active_expand_ratio), 8)

    def forward(self, x):
        x = act(self.act_func, self.inverted_bottleneck.bn(self.inverted_bottleneck.conv(x, self.mid(x.size(1)))))
        x = act(self.act_func, self.depth_conv.bn(self.depth_conv.conv(x, self.active_kernel_size)))
        if self.use_se:
            x = self.depth_conv.se(x)
        return self.point_linear.bn(self.point_linear.conv(x, self.active_out_channel))

    def active_config(self, cin):
        return {"name": "MBConvLayer", "in_channels": cin, "out_channels": self.active_out_channel,
                "kernel_size": self.active_kernel_size, "stride": self.stride,
                "expand_ratio": self.active_expand_ratio, "mid_channels": self.mid(cin),
                "act_func": self.act_func, "use_se": self.use_se}

    @property
    def module_str(self):
        return "%s(O%d, E%.1f, K%d)" % ("SE" if self.use_se else "", self.active_out_channel,
                                        self.active_expand_ratio, self.active_kernel_size)

    def re_organize_middle_weights(self, stage, stable):
        # The reference sums in float32, in an order torch leaves unspecified; in
        # stage > 0 the +-1e5 offsets put values on a 1/64 grid where that order
        # can decide ties. Both sides here sum in float64 and round once.
        importance = torch.sum(torch.abs(self.point_linear.conv.conv.weight.data.double()), dim=(0, 2, 3)).float()
        if stage > 0:
            sorted_e = sorted(self.e_list, reverse=True)
            widths = [make_divisible(ofa_round(self.cin * e), 8) for e in sorted_e]
            right = len(importance)
            base = -len(widths) * 1e5
            for i in range(stage + 1):
                left = widths[i]
                importance[left:right] += base
                base += 1e5
                right = left
        _, idx = torch.sort(importance, dim=0, descending=True, stable=stable)

        def sel(t, dim, i):
            t.data = torch.index_select(t.data, dim, i)
        sel(self.point_linear.conv.conv.weight, 1, idx)
        for t in (self.depth_conv.bn.bn.weight, self.depth_conv.bn.bn.bias):
            sel(t, 0, idx)
        for nm in ("running_mean", "running_var"):
            setattr(self.depth_conv.bn.bn, nm, torch.index_select(getattr(self.depth_conv.bn.bn, nm), 0, idx))
        sel(self.depth_conv.conv.conv.weight, 0, idx)
        if self.use_se:
            fc = self.depth_conv.se.fc
            sel(fc.expand.weight, 0, idx)
            sel(fc.expand.bias, 0, idx)
            sel(fc.reduce.weight, 1, idx)
            se_imp = torch.sum(torch.abs(fc.expand.weight.data.double()), dim=(0, 2, 3)).float()
            _, se_idx = torch.sort(se_imp, dim=0, descending=True, stable=stable)
            sel(fc.expand.weight, 1, se_idx)
            sel(fc.reduce.weight, 0, se_idx)
            sel(fc.reduce.bias, 0, se_idx)
        bn = self.inverted_bottleneck.bn.bn
        sel(bn.weight, 0, idx)
        sel(bn.bias, 0, idx)
        bn.running_mean = torch.index_select(bn.running_mean, 0, idx)
        bn.running_var = torch.index_select(bn.running_var, 0, idx)
        sel(self.inverted_bottleneck.conv.conv.weight, 0, idx)
        return idx


class OFAMobileNetV3(nn.Module):
    def __init__(self, n_classes=1000, dropout_rate=0.1, width_mult=1.0, ks_list=(3, 5, 7),
                 expand_ratio_list=(3, 4, 6), depth_list=(2, 3, 4)):
        super().__init__()
        self.ks_list = sorted(ks_list)
        self.expand_ratio_list = sorted(expand_ratio_list)
        self.depth_list = sorted(depth_list)
        base = [16, 16, 24, 40, 80, 112, 160, 960, 1280]
        final_expand_width = make_divisible(base[-2] * width_mult, 8)
        last_channel = make_divisible(base[-1] * width_mult, 8)
        strides = [1, 2, 2, 2, 1, 2]
        acts = ["relu", "relu", "relu", "h_swish", "h_swish", "h_swish"]
        ses = [False, False, True, False, True, True]
        n_blocks = [1] + [max(self.depth_list)] * 5
        widths = [make_divisible(b * width_mult, 8) for b in base[:-2]]
        cin, first_dim = widths[0], widths[1]
        self.first_conv = ConvLayer(3, cin, 3, 2, act_func="h_swish")
        fb = MBConvLayer(cin, first_dim, 3, strides[0], 1, None, acts[0], ses[0])
        blocks = [ResidualBlock(fb, first_dim if cin == first_dim else None)]
        self.block_group_info = []
        idx = 1
        feat = first_dim
        for w, n, s, a, se in zip(widths[2:], n_blocks[1:], strides[1:], acts[1:], ses[1:]):
            self.block_group_info.append([idx + i for i in range(n)])
            idx += n
            for i in range(n):
                stride = s if i == 0 else 1
                conv = DynamicMBConvLayer(feat, w, self.ks_list, self.expand_ratio_list, stride, a, se)
                blocks.append(ResidualBlock(conv, feat if stride == 1 and feat == w else None))
                feat = w
        self.blocks = nn.ModuleList(blocks)
        self.final_expand_layer = ConvLayer(feat, final_expand_width, 1, act_func="h_swish")
        self.feature_mix_layer = ConvLayer(final_expand_width, last_channel, 1, bias=False, use_bn=False,
                                           act_func="h_swish")
        self.classifier = LinearLayer(last_channel, n_classes, dropout_rate=dropout_rate)
        self.runtime_depth = [len(b) for b in self.block_group_info]
        self._ks_inc = self._e_inc = self._d_inc = None

    def forward(self, x):
        x = self.first_conv(x)
        x = self.blocks[0](x)
        for sid, bidx in enumerate(self.block_group_info):
            for i in bidx[:self.runtime_depth[sid]]:
                x = self.blocks[i](x)
        x = self.final_expand_layer(x)
        x = gap(x)
        x = self.feature_mix_layer(x)
        return self.classifier(x.view(x.size(0), -1))

    def set_active_subnet(self, ks, e, d):
        for b, k, ee in zip(self.blocks[1:], ks, e):
            b.conv.active_kernel_size = k
            b.conv.active_expand_ratio = ee
        for i, dd in enumerate(d):
            self.runtime_depth[i] = min(len(self.block_group_info[i]), dd)

    def sample_active_subnet(self):
        ksc = self.ks_list if self._ks_inc is None else self._ks_inc
        ec = self.expand_ratio_list if self._e_inc is None else self._e_inc
        dc = self.depth_list if self._d_inc is None else self._d_inc
        nb = len(self.blocks) - 1
        if not isinstance(ksc[0], list):
            ksc = [ksc for _ in range(nb)]
        ks = [random.choice(s) for s in ksc]
        if not isinstance(ec[0], list):
            ec = [ec for _ in range(nb)]
        e = [random.choice(s) for s in ec]
        if not isinstance(dc[0], list):
            dc = [dc for _ in range(len(self.block_group_info))]
        d = [random.choice(s) for s in dc]
        self.set_active_subnet(ks, e, d)
        return {"ks": ks, "e": e, "d": d}

    def get_active_net_config(self):
        blocks = [self.blocks[0].config]
        cin = blocks[0]["conv"]["out_channels"]
        for sid, bidx in enumerate(self.block_group_info):
            for i in bidx[:self.runtime_depth[sid]]:
                b = self.blocks[i]
                blocks.append({"name": "ResidualBlock", "conv": b.conv.active_config(cin),
                               "shortcut": identity_config(b.shortcut_c) if b.shortcut_c is not None else None})
                cin = b.conv.active_out_channel
        return {"name": "MobileNetV3", "bn": {"momentum": 0.1, "eps": 1e-05, "ws_eps": None},
                "first_conv": self.first_conv.config, "blocks": blocks,
                "final_expand_layer": self.final_expand_layer.config,
                "feature_mix_layer": self.feature_mix_layer.config, "classifier": self.classifier.config}

    @property
    def module_str(self):
        s = self.first_conv.module_str + "\n" + self.blocks[0].module_str + "\n"
        for sid, bidx in enumerate(self.block_group_info):
            for i in bidx[:self.runtime_depth[sid]]:
                s += "(%s, %s)\n" % (self.blocks[i].conv.module_str,
                                     "Identity" if self.blocks[i].shortcut_c is not None else "None")
        s += self.final_expand_layer.module_str + "\n" + self.feature_mix_layer.module_str + "\n"
        return s + "%dx%d_Linear\n" % (self.classifier.fin, self.classifier.fout)


# ----------------------------------------------------------------- net info
def net_info(cfg, res):
    net = MobileNetV3.build_from_config(cfg).eval()
    params = sum(p.numel() for p in net.parameters())
    total = [0]

    def conv_hook(m, _, y):
        total[0] += m.in_channels * y.nelement() * m.weight.size(2) * m.weight.size(3) // m.groups

    def lin_hook(m, _, __):
        total[0] += m.in_features * m.out_features
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(conv_hook)
        elif isinstance(m, nn.Linear):
            m.register_forward_hook(lin_hook)
    with torch.no_grad():
        net(torch.zeros(1, 3, res, res))
    return params, total[0]


# ----------------------------------------------------------------- cases
def fmt(v):
    return "%.9e" % v


def wsum(t):
    """Position-weighted checksum: sensitive to the order of the values."""
    v = t.detach().double().reshape(-1)
    w = (torch.arange(v.numel(), dtype=torch.float64) % 97 + 1) / 97.0
    return float((v * w).sum())


def main():
    lines = []
    N_CLASSES = 10

    def new_net(dtype=torch.float64):
        net = OFAMobileNetV3(n_classes=N_CLASSES, dropout_rate=0)
        init_module(net)
        return net.to(dtype)

    net = new_net()
    keys = list(net.state_dict().keys())
    lines.append("keys_supernet %d" % len(keys))
    lines += keys

    def setting_line(s):
        return "setting ks %s e %s d %s" % (" ".join(map(str, s["ks"])), " ".join(map(str, s["e"])),
                                            " ".join(map(str, s["d"])))

    # --- sampling: random.seed(S) then sample_active_subnet()
    for seed in [0, 1, 7, 11, 42, 2020, 123456789, 1234001000]:
        random.seed(seed)
        s = net.sample_active_subnet()
        s2 = net.sample_active_subnet()  # the next draw from the same stream
        lines.append("sample %d" % seed)
        lines.append(setting_line(s))
        lines.append(setting_line(s2))
    # with constraints (as the depth / expand tasks set them)
    net._d_inc = [3, 4]
    net._e_inc = [4, 6]
    for seed in [3, 99]:
        random.seed(seed)
        s = net.sample_active_subnet()
        lines.append("sample_constrained %d" % seed)
        lines.append(setting_line(s))
    net._d_inc = net._e_inc = None

    random.seed(7)
    mixed7 = net.sample_active_subnet()
    random.seed(11)
    mixed11 = net.sample_active_subnet()
    settings = {
        "max": {"ks": [7] * 20, "e": [6] * 20, "d": [4] * 5},
        "min": {"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5},
        "mid": {"ks": [5] * 20, "e": [4] * 20, "d": [3] * 5},
        "mixed7": mixed7,
        "mixed11": mixed11,
    }

    # --- forward / backward cases (training mode: batch statistics)
    # Training cases keep >= 2x2 pixels in the last stage (resolution >= 33):
    # BN over only batch x 1 x 1 = 2 values is too ill-conditioned to compare.
    cases = [("max", 36, "train"), ("min", 40, "train"), ("mixed7", 36, "train"), ("mixed11", 40, "train"),
             ("mixed7", 36, "eval"), ("max", 32, "eval")]
    B = 2
    for tag, res, mode in cases:
        net = new_net()
        s = settings[tag]
        net.set_active_subnet(s["ks"], s["e"], s["d"])
        net.train(mode == "train")
        x = input_tensor(B, res, torch.float64)
        y = net(x)
        lines.append("case %s %d %s %d" % (tag, res, mode, B))
        lines.append(setting_line(s))
        lines.append("logits " + " ".join(fmt(v) for v in y.detach().reshape(-1).tolist()))
        if mode == "train":
            loss = (y * logit_weights(B, N_CLASSES, torch.float64)).sum()
            loss.backward()
            for k, p in net.named_parameters():
                if p.grad is None:
                    lines.append("grad %s none" % k)
                else:
                    g = p.grad.double()
                    lines.append("grad %s %s %s" % (k, fmt(float(g.sum())), fmt(float((g * g).sum()))))
            for k, b in net.named_buffers():
                if (k.endswith("running_mean") or k.endswith("running_var")) and tag == "mixed7":
                    lines.append("buf %s %s" % (k, fmt(float(b.sum()))))
                elif k.endswith("num_batches_tracked") and tag == "mixed7":
                    lines.append("nbt %s %d" % (k, int(b)))
        lines.append("end")

    # --- config, module_str, static key list of the mixed7 subnet
    net = new_net()
    net.set_active_subnet(mixed7["ks"], mixed7["e"], mixed7["d"])
    cfg = net.get_active_net_config()
    lines.append("active_config " + json.dumps(cfg))
    lines.append("module_str " + json.dumps(net.module_str))
    sub = MobileNetV3.build_from_config(cfg)
    skeys = list(sub.state_dict().keys())
    lines.append("keys_subnet %d" % len(skeys))
    lines += skeys

    # --- the static MobileNetV3 of that config, initialised by its own (static) names
    for mode in ["train", "eval"]:
        sub = MobileNetV3.build_from_config(cfg)
        init_module(sub)
        sub = sub.double().train(mode == "train")
        y = sub(input_tensor(B, 36, torch.float64))
        lines.append("static_case %s 36 %d" % (mode, B))
        lines.append("logits " + " ".join(fmt(v) for v in y.detach().reshape(-1).tolist()))
        if mode == "train":
            (y * logit_weights(B, N_CLASSES, torch.float64)).sum().backward()
            for k, p in sub.named_parameters():
                g = p.grad.double()
                lines.append("grad %s %s %s" % (k, fmt(float(g.sum())), fmt(float((g * g).sum()))))
        lines.append("end")

    # --- net info of the 1000-class w1.0 supernet's subnets
    big = OFAMobileNetV3(n_classes=1000)
    for tag in ["max", "min", "mid", "mixed7"]:
        s = settings[tag]
        big.set_active_subnet(s["ks"], s["e"], s["d"])
        c = big.get_active_net_config()
        p, m224 = net_info(c, 224)
        _, m128 = net_info(c, 128)
        _, m160 = net_info(c, 160)
        lines.append("netinfo %s %d %d %d %d" % (tag, p, m224, m128, m160))
        print("netinfo", tag, p / 1e6, m224 / 1e6, m128 / 1e6)

    # --- re_organize_middle_weights in float32 (as the reference), checked in float64
    for stage in [0, 1]:
        net = new_net(torch.float32)
        blocks = [b.conv for b in net.blocks[1:]]
        orders = [b.re_organize_middle_weights(stage, stable=True) for b in blocks]
        net2 = new_net(torch.float32)
        orders2 = [b.conv.re_organize_middle_weights(stage, stable=False) for b in net2.blocks[1:]]
        same = all(torch.equal(a, b) for a, b in zip(orders, orders2))
        print("re_organize stage %d: default sort equals stable sort: %s" % (stage, same))
        lines.append("reorg %d" % stage)
        for i, o in enumerate(orders):
            lines.append("order %d %s" % (i + 1, " ".join(map(str, o[:16].tolist()))))
        for k, t in net.named_parameters():
            if k.startswith("blocks.") and not k.endswith("_matrix"):
                lines.append("wsum %s %s" % (k, fmt(wsum(t))))
        net = net.double()
        net.set_active_subnet(*[settings["max"][k] for k in ("ks", "e", "d")])
        net.eval()
        y = net(input_tensor(B, 32, torch.float64))
        lines.append("logits " + " ".join(fmt(v) for v in y.detach().reshape(-1).tolist()))
        lines.append("end")

    # --- the resolutions: 128, 160 and an odd one (131: 66, 33, 17, 9, 5
    # pixels after the strided stages). Eval logits for max, min and mixed7 (all
    # three kernel sizes among its active blocks) at each; training-mode logits
    # and gradient checksums for three of them. To keep the file small the
    # checksums carry no names: one "g" line per parameter in named_parameters()
    # order, which "gradsums" pins with its count and the crc32 of the names.
    hires = [(tag, res, "eval") for res in (128, 160, 131) for tag in ("max", "min", "mixed7")]
    hires += [("max", 128, "train"), ("min", 160, "train"), ("mixed7", 131, "train")]
    for tag, res, mode in hires:
        net = new_net()
        s = settings[tag]
        net.set_active_subnet(s["ks"], s["e"], s["d"])
        net.train(mode == "train")
        y = net(input_tensor(B, res, torch.float64))
        lines.append("hires %s %d %s %d" % (tag, res, mode, B))
        lines.append(setting_line(s))
        lines.append("logits " + " ".join(fmt(v) for v in y.detach().reshape(-1).tolist()))
        if mode == "train":
            (y * logit_weights(B, N_CLASSES, torch.float64)).sum().backward()
            named = list(net.named_parameters())
            names = "\n".join(k for k, _ in named)
            lines.append("gradsums %d %d" % (len(named), zlib.crc32(names.encode())))
            for _, p in named:
                if p.grad is None:
                    lines.append("g none")
                else:
                    g = p.grad.double()
                    lines.append("g %s %s" % (fmt(float(g.sum())), fmt(float((g * g).sum()))))
        lines.append("end")
        print("hires", tag, res, mode)

    with open(OUT, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
