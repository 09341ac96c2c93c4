# The PyTorch side of `npm run bench:library` (bench/library-paths.ts): the two library paths timed there, as a
# PyTorch user writes them, on one thread. Prints one JSON line: the median ms of each.
#   readme:  the README's loop (nn.Linear 784-256-10 with ReLU, batch 128): zero_grad(set_to_none=True), forward,
#            cross-entropy, backward, clip_grad_norm_(1.0), Adam(1e-3) step, loss.item()
#   matmulT: relu(x @ w.t() + b).sum() and its backward, x [128, 784], w [256, 784] (a view: no copy), b [256]
# Usage: /usr/bin/python3 bench/torch_library.py <steps>
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)
torch.manual_seed(0)
steps = int(sys.argv[1]) if len(sys.argv) > 1 else 1000


def median_ms(step, n):
    for _ in range(200):
        step()
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        step()
        ts.append((time.perf_counter() - t0) * 1e3)
    ts.sort()
    return ts[len(ts) // 2]


model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
params = list(model.parameters())
opt = torch.optim.Adam(params, 1e-3)
x, y = torch.rand(128, 784), torch.randint(0, 10, (128,))


def readme():
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    return loss.item()


w = torch.randn(256, 784, requires_grad=True)
b = torch.randn(256, requires_grad=True)


def matmul_t():
    w.grad = None
    b.grad = None
    torch.relu(x @ w.t() + b).sum().backward()


print(json.dumps({'readme': median_ms(readme, steps), 'matmulT': median_ms(matmul_t, steps)}))
