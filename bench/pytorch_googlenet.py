"""Same-machine PyTorch baseline for `npm run bench:train`.

GoogLeNet exactly as our TensorFlow.js graph (src/model/googlenet.ts): the paper's Table 1
widths, ReLU after every conv, no batch norm, aux heads after 4a and 4d (adaptive 4x4 pool,
1x1 conv 128, fc 1024, dropout 0.7), dropout 0.4 before the classifier; loss = CE(main) +
0.3 * (CE(aux1) + CE(aux2)); SGD with momentum 0.9. Written for this benchmark (not
torchvision's, which always uses batch norm).

Prints one JSON line: {"imagesPerSec", "threads", "torch", "params"}.
"""
import argparse
import json
import os
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

TABLE = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


def conv(cin, cout, k, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, padding=k // 2), nn.ReLU(inplace=True))


class Inception(nn.Module):
    def __init__(self, cin, w):
        super().__init__()
        b1, r3, b3, r5, b5, pp = w
        self.b1 = conv(cin, b1, 1)
        self.b2 = nn.Sequential(conv(cin, r3, 1), conv(r3, b3, 3))
        self.b3 = nn.Sequential(conv(cin, r5, 1), conv(r5, b5, 5))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), conv(cin, pp, 1))
        self.out = b1 + b3 + b5 + pp

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


class Aux(nn.Module):
    def __init__(self, cin, classes):
        super().__init__()
        self.conv = conv(cin, 128, 1)
        self.fc = nn.Linear(2048, 1024)
        self.cls = nn.Linear(1024, classes)

    def forward(self, x):
        x = self.conv(F.adaptive_avg_pool2d(x, 4))
        x = F.dropout(F.relu(self.fc(torch.flatten(x, 1))), 0.7, self.training)
        return self.cls(x)


class GoogLeNet(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.stem = nn.Sequential(
            conv(3, 64, 7, 2), nn.MaxPool2d(3, 2, ceil_mode=True),
            conv(64, 64, 1), conv(64, 192, 3), nn.MaxPool2d(3, 2, ceil_mode=True))
        blocks, cin = {}, 192
        for name, w in TABLE.items():
            blocks[name] = Inception(cin, w)
            cin = blocks[name].out
        self.blocks = nn.ModuleDict(blocks)
        self.aux1 = Aux(512, classes)
        self.aux2 = Aux(528, classes)
        self.fc = nn.Linear(1024, classes)

    def forward(self, x):
        x = self.stem(x)
        x = self.blocks["3b"](self.blocks["3a"](x))
        x = F.max_pool2d(x, 3, 2, ceil_mode=True)
        x = self.blocks["4a"](x)
        a1 = self.aux1(x) if self.training else None
        x = self.blocks["4d"](self.blocks["4c"](self.blocks["4b"](x)))
        a2 = self.aux2(x) if self.training else None
        x = F.max_pool2d(self.blocks["4e"](x), 3, 2, ceil_mode=True)
        x = self.blocks["5b"](self.blocks["5a"](x))
        x = F.dropout(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1), 0.4, self.training)
        return self.fc(x), a1, a2


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--input", type=int, default=32)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    a = p.parse_args()
    # Debian's build starts with one thread here; use every core, as our wasm backend does.
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = GoogLeNet(a.classes).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(a.batch, 3, a.input, a.input)
    y = torch.randint(0, a.classes, (a.batch,))
    times = []
    for i in range(a.warmup + a.steps):
        t = time.perf_counter()
        main_out, a1, a2 = model(x)
        loss = F.cross_entropy(main_out, y) + 0.3 * (F.cross_entropy(a1, y) + F.cross_entropy(a2, y))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= a.warmup:
            times.append(time.perf_counter() - t)
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps({
        "imagesPerSec": a.batch / statistics.median(times),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "params": params,
    }))


if __name__ == "__main__":
    main()
