"""``python -m tinyexit demo``: the most complete run the library can do today, in a few minutes on a CPU.

It trains a small two-exit convolutional network by SGD with tinyexit's own autograd on a
synthetic CIFAR-shaped dataset (no download needed), and prints the loss falling and the
accuracy of each exit on held-out images.
"""
from __future__ import annotations

import time

import numpy as np

from . import nn
from .autograd.creation import manual_seed, tensor
from .autograd.grad_mode import no_grad
from .data import BatchIterator, synthetic_dataset
from .nn import functional as F
from .optim import SGD, CosineAnnealingLR


class TwoExitNet(nn.Module):
    """conv-bn-relu (16x16) -> exit 1; conv-bn-relu (8x8) -> exit 2. Returns the list of exit logits."""

    def __init__(self, num_classes: int = 10, width: int = 16):
        super().__init__()
        self.stage1 = nn.Sequential(nn.Conv2d(3, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width),
                                    nn.ReLU())
        self.stage2 = nn.Sequential(nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False),
                                    nn.BatchNorm2d(2 * width), nn.ReLU())
        self.head1 = nn.Linear(width, num_classes)
        self.head2 = nn.Linear(2 * width, num_classes)

    def forward(self, x):
        h1 = self.stage1(x)
        h2 = self.stage2(h1)
        return [self.head1(h1.mean(dim=(2, 3))), self.head2(h2.mean(dim=(2, 3)))]


def run(epochs: int = 3, n_train: int = 4000, n_test: int = 1000, batch_size: int = 64, seed: int = 0) -> dict:
    """Train and evaluate; return the per-epoch losses and the final per-exit test accuracies."""
    manual_seed(seed)
    train_x, train_y = synthetic_dataset(n_train, seed=seed)
    test_x, test_y = synthetic_dataset(n_test, seed=seed + 1)
    model = TwoExitNet()
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    loader = BatchIterator(train_x, train_y, batch_size, shuffle=True, seed=seed)
    sched = CosineAnnealingLR(opt, T_max=epochs * len(loader))
    print(f"tinyexit demo: a two-exit CNN on {n_train} synthetic 32x32 images, {epochs} epochs of SGD")
    losses = []
    for epoch in range(epochs):
        model.train()
        start, total, count = time.perf_counter(), 0.0, 0
        for xb, yb in loader:
            logits = model(tensor(xb))
            loss = sum(F.cross_entropy(z, yb) for z in logits)  # Eq. 3: sum over exits of the mean losses
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total, count = total + loss.item() * len(yb), count + len(yb)
        losses.append(total / count)
        print(f"  epoch {epoch + 1}: training loss {losses[-1]:.3f}  ({count / (time.perf_counter() - start):.0f} img/s)")
    accuracies = evaluate(model, test_x, test_y)
    print("  test accuracy per exit: " + ", ".join(f"exit {k + 1} {a:.1f}%" for k, a in enumerate(accuracies)))
    return {"losses": losses, "accuracy": accuracies}


def evaluate(model: nn.Module, images: np.ndarray, labels: np.ndarray, batch_size: int = 500) -> list[float]:
    """Top-1 accuracy (percent) of every exit."""
    model.eval()
    correct = None
    with no_grad():
        for i in range(0, len(images), batch_size):
            xb = tensor(images[i:i + batch_size].astype(np.float32) / 255)
            hits = [(z.argmax(1).numpy() == labels[i:i + batch_size]).sum() for z in model(xb)]
            correct = hits if correct is None else [a + b for a, b in zip(correct, hits)]
    return [100.0 * c / len(images) for c in correct]
