#!/usr/bin/env python3
"""Writes tests/data/small_net_golden.txt: inputs, parameters, outputs, running
statistics and every gradient of a small network built from the engine's ops,
computed by PyTorch in float64. tests/cpu/test_golden_small_net.cpp replays it.

The network exercises what OFA needs: a strided 3x3 conv, 1x1 convs on leading
slices of larger weights, BN on leading slices of larger parameters and running
statistics, a depthwise 5x5 conv on the centre crop of a 7x7 weight (channel
slice too), SE (pool, linear, relu, linear, h-sigmoid, broadcast multiply), a
residual add, and label-smoothed plus soft-target cross-entropy.

Run with Debian's python3-torch:  /usr/bin/python3 tests/data/make_small_net_golden.py
"""
import os
import torch
import torch.nn.functional as F


# The OFA reference's activations (ofa/utils/my_modules.py), not F.hardswish /
# F.hardsigmoid: their gradients differ at the kinks, and PyTorch's
# hardsigmoid backward multiplies by 1.0f/6.0f, a float32 constant, even in float64.
def hswish(x):
    return x * F.relu6(x + 3.0) / 6.0


def hsigmoid(x):
    return F.relu6(x + 3.0) / 6.0

torch.manual_seed(0)
dt = torch.float64


def r(*shape, scale=1.0):
    return (torch.randn(*shape, dtype=dt) * scale).requires_grad_(True)


P = {
    "conv1.weight": r(8, 3, 3, 3, scale=0.3),
    "bn1.weight": r(8), "bn1.bias": r(8),
    "pw_full.weight": r(20, 10, 1, 1, scale=0.3),      # used as [:16, :8]
    "bn2_full.weight": r(20), "bn2_full.bias": r(20),  # used as [:16]
    "dw_full.weight": r(20, 1, 7, 7, scale=0.3),       # used as [:16, :, 1:6, 1:6]
    "bn3_full.weight": r(20), "bn3_full.bias": r(20),
    "se_reduce.weight": r(8, 16, scale=0.3), "se_reduce.bias": r(8),
    "se_expand.weight": r(16, 8, scale=0.3), "se_expand.bias": r(16),
    "pl.weight": r(8, 16, 1, 1, scale=0.3),
    "bn4.weight": r(8), "bn4.bias": r(8),
    "res.weight": r(8, 8, 1, 1, scale=0.3),
    "fc.weight": r(10, 8, scale=0.3), "fc.bias": r(10),
}
B = {  # running statistics, updated in place by training-mode BN
    "bn1.running_mean": torch.randn(8, dtype=dt) * 0.1, "bn1.running_var": torch.rand(8, dtype=dt) + 0.5,
    "bn2_full.running_mean": torch.randn(20, dtype=dt) * 0.1, "bn2_full.running_var": torch.rand(20, dtype=dt) + 0.5,
    "bn3_full.running_mean": torch.randn(20, dtype=dt) * 0.1, "bn3_full.running_var": torch.rand(20, dtype=dt) + 0.5,
    "bn4.running_mean": torch.randn(8, dtype=dt) * 0.1, "bn4.running_var": torch.rand(8, dtype=dt) + 0.5,
}
x = torch.randn(3, 3, 13, 11, dtype=dt)
target = torch.tensor([1, 7, 3])
teacher_logits = torch.randn(3, 10, dtype=dt)

inputs = {"x": x.clone(), "teacher_logits": teacher_logits.clone()}
inputs.update({k: v.detach().clone() for k, v in P.items()})
inputs.update({k: v.clone() for k, v in B.items()})


def bn(h, name, C):
    # Leading slices of the parameters and running statistics, as OFA's dynamic BN.
    return F.batch_norm(h, B[name + ".running_mean"][:C], B[name + ".running_var"][:C],
                        P[name + ".weight"][:C], P[name + ".bias"][:C], training=True, momentum=0.1, eps=1e-5)


h = F.conv2d(x, P["conv1.weight"], None, stride=2, padding=1)           # [3, 8, 7, 6]
h = hswish(bn(h, "bn1", 8))
h = F.conv2d(h, P["pw_full.weight"][:16, :8], None)                      # [3, 16, 7, 6]
h = F.relu6(bn(h, "bn2_full", 16))
h = F.conv2d(h, P["dw_full.weight"][:16, :, 1:6, 1:6], None, stride=2, padding=2, groups=16)  # [3, 16, 4, 3]
h = F.relu(bn(h, "bn3_full", 16))
s = h.mean(3, keepdim=True).mean(2, keepdim=True).flatten(1)
s = F.relu(F.linear(s, P["se_reduce.weight"], P["se_reduce.bias"]))
s = hsigmoid(F.linear(s, P["se_expand.weight"], P["se_expand.bias"]))
h = h * s[:, :, None, None]
h = bn(F.conv2d(h, P["pl.weight"]), "bn4", 8)                           # [3, 8, 4, 3]
h = h + F.conv2d(h, P["res.weight"])
feat = F.adaptive_avg_pool2d(h, 1).flatten(1)
logits = F.linear(feat, P["fc.weight"], P["fc.bias"])
loss_ce = F.cross_entropy(logits, target, label_smoothing=0.1)
soft = F.softmax(teacher_logits, dim=1)
loss_kd = torch.mean(torch.sum(-soft * F.log_softmax(logits, dim=1), 1))
loss = loss_ce + loss_kd
loss.backward()

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "small_net_golden.txt")
with open(out, "w") as f:
    f.write("# made by make_small_net_golden.py (torch %s): name ndim dims... values...\n" % torch.__version__)

    def w(name, t):
        t = t.detach()
        dims = list(t.shape)
        f.write("%s %d%s %s\n" % (name, len(dims), "".join(" %d" % d for d in dims),
                                  " ".join(repr(float(v)) for v in t.reshape(-1).tolist())))

    for k, v in inputs.items():
        w("in." + k, v)
    w("in.target", target.to(dt))
    w("out.logits", logits)
    w("out.loss", loss)
    for k, v in B.items():
        w("after." + k, v)
    for k, v in P.items():
        w("grad." + k, v.grad)
print("wrote", out)
