# The PyTorch side of `npm run bench` (bench/bench.ts): a long-lived worker that times training steps in blocks on
# command, so that the two sides can be interleaved block by block in one command.
#
# Protocol: one JSON object a line on stdin, one JSON object a line on stdout.
#   {"op": "info"}                              -> torch version, threads, which OpenBLAS kernels were loaded
#   {"op": "sgemm", "m": M, "k": K, "n": N, "ms": T} -> GFLOP/s of an M x K by K x N product (best of rounds of ~T ms)
#   {"op": "setup", "row": R, "spec": S, "warm": W, "warm_ms": M, "max_ms": T} -> builds row R's model, optimizer and
#                                                  fixed batch, runs at least W warm-up steps and M ms of them (fewer
#                                                  once T ms have passed)
#   {"op": "run", "row": R, "steps": N, "max_ms": T, "lead_ms": L} -> {"times": [ms of each of N steps], "cpu": [CPU ms
#                                                     of each]}, after untimed steps for L ms
#                                                  (fewer once T ms passed; CPU time of the process, all threads)
# Each step: zero_grad(set_to_none=True), forward, cross-entropy (MSE for the recurrent rows), backward,
# clip_grad_norm_(1.0), Adam(1e-3) step, loss.item(); the models are the ones bench/rows.ts builds on our side.
#
# Usage: /usr/bin/python3 bench/torch_worker.py <threads>  (Debian's python3-torch; threadpoolctl optional)
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
torch.set_num_threads(threads)
torch.manual_seed(0)


def blas_info():
    """The BLAS library torch loaded and the kernel set OpenBLAS picked (threadpoolctl), if threadpoolctl is there."""
    try:
        import threadpoolctl
    except ImportError:
        return {'architecture': 'unknown (python3-threadpoolctl not installed)'}
    for lib in threadpoolctl.threadpool_info():
        if lib.get('user_api') == 'blas':
            return {
                'library': lib.get('internal_api'),
                'version': lib.get('version'),
                'architecture': lib.get('architecture'),
                'num_threads': lib.get('num_threads'),
            }
    return {'architecture': 'no BLAS found'}


class BasicBlock(nn.Module):
    """ResNet's post-activation basic block with a projection shortcut (1x1 conv + BN) where the shape changes."""

    def __init__(self, inp, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inp != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inp, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (self.downsample(x) if self.downsample is not None else x))


class ResNet(nn.Module):
    """CIFAR ResNet (He et al. 2015): 3x3 stem, three stages of n blocks at 16, 32, 64 channels, avg pool, fc."""

    def __init__(self, depth=20, in_ch=3, classes=10, width=16):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_ch, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        layers, inp = [], width
        for planes, stride in [(width, 1), (2 * width, 2), (4 * width, 2)]:
            blocks = []
            for i in range(n):
                blocks.append(BasicBlock(inp, planes, stride if i == 0 else 1))
                inp = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.fc = nn.Linear(4 * width, classes)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.layer3(self.layer2(self.layer1(h)))
        return self.fc(h.mean((2, 3)))


class Sequence(nn.Module):
    """An LSTM or GRU (batch first) and a linear head on the last time step."""

    def __init__(self, cell, features, hidden):
        super().__init__()
        self.rnn = cell(features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def build(row, spec):
    """The model, the fixed batch and the loss of one row (spec: the row's sizes, sent by bench.ts)."""
    b = spec['batch']
    if row == 'mlp':
        model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
        x, y, loss = torch.rand(b, 784), torch.randint(0, 10, (b,)), F.cross_entropy
    elif row == 'mlp-mnist':
        # the batch bench.ts wrote: the first b training digits, standardized as the CLI does, then their labels
        model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
        with open(spec['data'], 'rb') as f:
            data = torch.frombuffer(bytearray(f.read()), dtype=torch.float32)
        x, y, loss = data[: b * 784].reshape(b, 784).clone(), data[b * 784 : b * 785].long(), F.cross_entropy
    elif row == 'cnn':
        model = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
        )  # fmt: skip
        x, y, loss = torch.rand(b, 1, 28, 28), torch.randint(0, 10, (b,)), F.cross_entropy
    elif row == 'resnet20':
        c, s = spec['channels'], spec['size']
        model = ResNet(20, c, 10)
        x, y, loss = torch.rand(b, c, s, s), torch.randint(0, 10, (b,)), F.cross_entropy
    elif row in ('lstm', 'gru'):
        model = Sequence(nn.LSTM if row == 'lstm' else nn.GRU, spec['features'], spec['hidden'])
        x, y, loss = torch.rand(b, spec['seq'], spec['features']), torch.rand(b, 1), F.mse_loss
    else:
        raise ValueError(f'unknown row {row}')
    model.train()
    params = list(model.parameters())
    opt = torch.optim.Adam(params, 1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        out = loss(model(x), y)
        out.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return out.item()

    return step


def sgemm(m, k, n, ms):
    """GFLOP/s of x @ w.t() with x [m, k] and w [n, k] (F.linear's product), best of 5 rounds of ~ms milliseconds."""
    a, w = torch.rand(m, k), torch.rand(n, k)
    wt = w.t()
    reps = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, wt)
        if (time.perf_counter() - t0) * 1e3 >= ms / 4 or reps > 1e6:
            break
        reps *= 2
    best = float('inf')
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, wt)
        best = min(best, (time.perf_counter() - t0) * 1e3 / reps)
    return 2 * m * k * n / best / 1e6


steps = {}
for line in sys.stdin:
    msg = json.loads(line)
    op = msg['op']
    if op == 'info':
        out = {'torch': torch.__version__, 'threads': torch.get_num_threads(), 'blas': blas_info()}
    elif op == 'sgemm':
        out = {'gflops': sgemm(msg['m'], msg['k'], msg['n'], msg['ms'])}
    elif op == 'setup':
        steps[msg['row']] = build(msg['row'], msg['spec'])
        # at least `warm` steps and `warm_ms` of them, as our worker does (bench/ours-worker.ts)
        t0 = time.perf_counter()
        i = 0
        while i < msg['warm'] or (time.perf_counter() - t0) * 1e3 < msg.get('warm_ms', 0):
            steps[msg['row']]()
            i += 1
            if (time.perf_counter() - t0) * 1e3 >= msg.get('max_ms', float('inf')):
                break
        out = {'ok': True}
    elif op == 'run':
        step = steps[msg['row']]
        times, cpu = [], []
        # untimed steps for `lead_ms` first, as our worker does (bench/bench.ts, LEAD_MS)
        t0 = time.perf_counter()
        while (time.perf_counter() - t0) * 1e3 < msg.get('lead_ms', 0):
            step()
        start = time.perf_counter()
        for _ in range(msg['steps']):
            t0, c0 = time.perf_counter(), time.process_time()
            step()
            times.append((time.perf_counter() - t0) * 1e3)
            cpu.append((time.process_time() - c0) * 1e3)
            if (time.perf_counter() - start) * 1e3 >= msg.get('max_ms', float('inf')):
                break
        out = {'times': times, 'cpu': cpu}
    elif op == 'drop':
        steps.pop(msg['row'], None)
        out = {'ok': True}
    else:
        out = {'error': f'unknown op {op}'}
    sys.stdout.write(json.dumps(out) + '\n')
    sys.stdout.flush()
