#!/usr/bin/python3
"""Golden numbers for tests/cpu/test_ofa_eval.cpp (ofa_eval's tensor mode).

Uses the PyTorch re-implementation of the reference in make_ofa_golden.py
(imported, not copied) and its deterministic initialisation (every parameter
and buffer from its name; the C++ test has the same formula in ofa_golden.h).
Cases, on the 10-class w1.0 supernet with dropout 0, float64 on
float32-rounded weights and inputs:
  - BN recalibration (the reference's set_running_statistics) of the seed-7
    subnet over 8 calibration images at 64x64 in batches of 3 (3 + 3 + 2):
    running-stat checksums of every BN, then evaluation logits;
  - evaluation logits of the seed-11 subnet at 37x37 (an odd resolution);
  - one training step of the seed-7 subnet at 36x36, batch 3: loss, logits,
    gradient checksums, parameter checksums after one SGD step (momentum 0.9,
    Nesterov, weight decay 3e-5 except "bn" / "bias" parameters, label
    smoothing 0.1, lr 0.05), BN buffers after the step.
Output: tests/data/ofa_eval_golden.txt.

With --convert-case DIR it instead writes, for the converter test, DIR/super.pth
(the initialised supernet's state_dict with a "module." prefix and the old
".mobile_inverted_conv." names, inside {"state_dict": ...}) and DIR/static.pth
plus DIR/static.config (the seed-7 subnet as a static MobileNetV3, bare
state_dict, old names).

Run: /usr/bin/python3 tests/data/make_ofa_eval_golden.py
"""
import collections
import copy
import json
import os
import random
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_ofa_golden as g  # noqa: E402

torch.set_num_threads(2)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ofa_eval_golden.txt")
N_CLASSES = 10


def new_net(dtype=torch.float64):
    net = g.OFAMobileNetV3(n_classes=N_CLASSES, dropout_rate=0)
    g.init_module(net)
    return net.to(dtype)


def uniform_pm1(name, shape, dtype=torch.float64):
    n = 1
    for s in shape:
        n *= s
    v = (2.0 * g.u01(name, n) - 1.0).astype("float32")
    return torch.from_numpy(v.astype("float64")).reshape(shape).to(dtype)


def seeded_subnet(net, seed):
    random.seed(seed)
    return net.sample_active_subnet()


# ----------------------------------------------------- set_running_statistics
# The reference (ofa/imagenet_classification/elastic_nn/utils.py): every
# nn.BatchNorm2d of a copy of the model normalises with its batch's mean and
# biased variance and records them (AverageMeter, weighted by batch size);
# dynamic BNs call their inner BN while SET_RUNNING_STATISTICS is on.
SET_RUNNING_STATISTICS = [False]
_dyn_bn_forward = g.DynamicBatchNorm2d.forward


def _dyn_bn_forward_patched(self, x):
    if SET_RUNNING_STATISTICS[0]:
        return self.bn(x)
    return _dyn_bn_forward(self, x)


g.DynamicBatchNorm2d.forward = _dyn_bn_forward_patched


def set_running_statistics(model, batches):
    stats = {}
    forward_model = copy.deepcopy(model)
    for name, m in forward_model.named_modules():
        if isinstance(m, nn.BatchNorm2d):
            stats[name] = [0.0, 0.0, 0]  # sum of mean * n, sum of var * n, count

            def new_forward(bn, st):
                def f(x):
                    mean = x.mean(0, keepdim=True).mean(2, keepdim=True).mean(3, keepdim=True)
                    var = ((x - mean) * (x - mean)).mean(0, keepdim=True).mean(2, keepdim=True).mean(3, keepdim=True)
                    mean, var = torch.squeeze(mean), torch.squeeze(var)
                    st[0] = st[0] + mean.data * x.size(0)
                    st[1] = st[1] + var.data * x.size(0)
                    st[2] += x.size(0)
                    c = mean.size(0)
                    return F.batch_norm(x, mean, var, bn.weight[:c], bn.bias[:c], False, 0.0, bn.eps)
                return f
            m.forward = new_forward(m, stats[name])
    with torch.no_grad():
        SET_RUNNING_STATISTICS[0] = True
        for images in batches:
            forward_model(images)
        SET_RUNNING_STATISTICS[0] = False
    for name, m in model.named_modules():
        if name in stats and stats[name][2] > 0:
            mean = stats[name][0] / stats[name][2]
            var = stats[name][1] / stats[name][2]
            c = mean.size(0)
            m.running_mean.data[:c].copy_(mean)
            m.running_var.data[:c].copy_(var)
    return {name: st[2] for name, st in stats.items()}


def fmt(v):
    return "%.9e" % v


def values(t):
    return " ".join(fmt(v) for v in t.detach().reshape(-1).tolist())


def main():
    lines = []

    # --- BN recalibration of the seed-7 subnet
    net = new_net()
    s7 = seeded_subnet(net, 7)
    # 8 images in batches of 3, 3, 2 at 64x64: float32 PyTorch itself stays
    # within 2e-5 of these logits (5 images at 40x40 left BNs over 4 values
    # and logits that float32 rounding moves by 2e-4).
    calib_m, calib_r, calib_b = 8, 64, 3
    calib = uniform_pm1("calib", [calib_m, 3, calib_r, calib_r])
    counts = set_running_statistics(net, [calib[i:i + calib_b] for i in range(0, calib_m, calib_b)])
    lines.append("calib 7 %d %d %d" % (calib_r, calib_m, calib_b))
    lines.append("setting ks %s e %s d %s" % (" ".join(map(str, s7["ks"])), " ".join(map(str, s7["e"])),
                                              " ".join(map(str, s7["d"]))))
    for k, b in net.named_buffers():
        if k.endswith("running_mean") or k.endswith("running_var"):
            bn_name = k.rsplit(".", 1)[0]
            lines.append("buf %s %d %s %s" % (k, counts.get(bn_name, 0), fmt(float(b.sum())), fmt(g.wsum(b))))
    net.eval()
    with torch.no_grad():
        y = net(g.input_tensor(2, calib_r, torch.float64))
    lines.append("logits " + values(y))
    lines.append("end")

    # --- evaluation logits of the seed-11 subnet at an odd resolution
    net = new_net()
    s11 = seeded_subnet(net, 11)
    net.eval()
    with torch.no_grad():
        y = net(g.input_tensor(2, 37, torch.float64))
    lines.append("eval 11 37 2")
    lines.append("logits " + values(y))
    lines.append("end")

    # --- one training step of the seed-7 subnet
    net = new_net()
    seeded_subnet(net, 7)
    net.train()
    before = {k: p.detach().clone() for k, p in net.named_parameters()}
    x = g.input_tensor(3, 36, torch.float64)
    labels = torch.tensor([1, 7, 3], dtype=torch.int64)
    lr, momentum, wd, ls = 0.05, 0.9, 3e-5, 0.1
    y = net(x)
    # The reference's cross_entropy_loss_with_soft_target(output, label_smooth(target, n_classes, ls)).
    soft = torch.zeros_like(y).scatter_(1, labels.view(-1, 1), 1.0) * (1 - ls) + ls / N_CLASSES
    loss = torch.mean(torch.sum(-soft * F.log_softmax(y, dim=1), 1))
    loss.backward()
    keys = ["bn", "bias"]
    decay = [p for k, p in net.named_parameters() if not any(kk in k for kk in keys)]
    no_decay = [p for k, p in net.named_parameters() if any(kk in k for kk in keys)]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0}],
                          lr=lr, momentum=momentum, nesterov=True)
    lines.append("train 7 36 3 1 7 3")
    lines.append("loss " + fmt(float(loss)))
    lines.append("logits " + values(y))
    grads = {k: (None if p.grad is None else p.grad.detach().clone()) for k, p in net.named_parameters()}
    opt.step()
    for k, p in net.named_parameters():
        gr = grads[k]
        if gr is None:
            lines.append("grad %s none" % k)
        else:
            lines.append("grad %s %s %s" % (k, fmt(float(gr.sum())), fmt(float((gr * gr).sum()))))
        d = (p.detach() - before[k])
        lines.append("param %s %s %s %s %s" % (k, fmt(float(p.sum())), fmt(float(p.abs().sum())),
                                               fmt(float(d.sum())), fmt(float((d * d).sum()))))
    for k, b in net.named_buffers():
        if k.endswith("num_batches_tracked"):
            lines.append("nbt %s %d" % (k, int(b)))
        else:
            lines.append("buf %s %s %s" % (k, fmt(float(b.sum())), fmt(g.wsum(b))))
    lines.append("end")

    with open(OUT, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


def convert_case(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    net = new_net(torch.float32)
    sd = collections.OrderedDict()
    for k, t in net.state_dict().items():
        sd["module." + k.replace(".conv.", ".mobile_inverted_conv.", 1) if k.startswith("blocks.") else "module." + k] = t
    torch.save({"state_dict": sd, "epoch": 3}, os.path.join(out_dir, "super.pth"))
    # A static MobileNetV3 (the seed-7 subnet's config) initialised by its own names.
    seeded_subnet(net, 7)
    cfg = net.get_active_net_config()
    sub = g.MobileNetV3.build_from_config(cfg)
    g.init_module(sub)
    ssd = collections.OrderedDict()
    for k, t in sub.state_dict().items():
        ssd[k.replace(".conv.", ".mobile_inverted_conv.", 1) if k.startswith("blocks.") else k] = (
            t.float() if t.is_floating_point() else t)
    torch.save(ssd, os.path.join(out_dir, "static.pth"))
    with open(os.path.join(out_dir, "static.config"), "w") as f:
        json.dump(cfg, f, indent=4)
    print("wrote", out_dir)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--convert-case":
        convert_case(sys.argv[2])
    else:
        main()
