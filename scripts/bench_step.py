#!/usr/bin/python3
"""The binding benchmark's step in Python torch (Debian's python3-torch), for
the Go/Python ratio printed by `l2g bench step`: conv3x3(3->64) -> BN(eval) ->
ReLU -> conv3x3(64->64), MSE against zeros, SGD momentum 0.9, wd 5e-4.
Prints the median milliseconds per step as JSON."""
import json
import statistics
import sys
import time

import torch

threads, batch, size, iters, warmup = (int(a) for a in sys.argv[1:6])
torch.set_num_threads(threads)
torch.manual_seed(0)
conv1 = torch.nn.Conv2d(3, 64, 3, padding=1)
bn = torch.nn.BatchNorm2d(64)
conv2 = torch.nn.Conv2d(64, 64, 3, padding=1)
torch.nn.init.kaiming_normal_(conv1.weight)
torch.nn.init.kaiming_normal_(conv2.weight)
torch.nn.init.zeros_(conv1.bias)
torch.nn.init.zeros_(conv2.bias)
bn.eval()
for p in bn.parameters():
    p.requires_grad_(False)
params = [conv1.weight, conv1.bias, conv2.weight, conv2.bias]
opt = torch.optim.SGD(params, lr=1e-3, momentum=0.9, weight_decay=5e-4)
x = torch.rand(batch, 3, size, size)
times = []
for i in range(warmup + iters):
    t0 = time.perf_counter()
    y = conv2(torch.relu(bn(conv1(x))))
    loss = torch.nn.functional.mse_loss(y, torch.zeros_like(y))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    loss.item()
    if i >= warmup:
        times.append((time.perf_counter() - t0) * 1000)
print(json.dumps({"ms_per_step": statistics.median(times), "torch": torch.__version__, "threads": torch.get_num_threads()}))
