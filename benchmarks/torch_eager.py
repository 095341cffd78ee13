"""An eager PyTorch training loop: `nn.Sequential`, `loss.backward()`, `torch.optim.SGD`.

The usual hand-written loop, one Python iteration per mini-batch, without `torch.compile`.
The data sits on the device as tensors and each batch is gathered by index there (no
`DataLoader`, which would only add host work). Importing this module needs torch.
"""

from __future__ import annotations

import os

import numpy as np
import torch


def cpu_cores() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class TorchEager:
    """One sigmoid network trained by SGD on the mean of `Σ(ŷ−y)²`, on CUDA when available."""

    def __init__(self, params: list[tuple[np.ndarray, np.ndarray]], lr: float, threads: int | None = None):
        """`params`: `(W_OxI, b_O)` per layer, the layout of `nn.Linear.weight` too; `threads`: CPU threads (default all cores)."""
        torch.set_num_threads(threads or cpu_cores())
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        layers = []
        for W_OxI, b_O in params:
            linear = torch.nn.Linear(W_OxI.shape[1], W_OxI.shape[0])
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(np.array(W_OxI, np.float32)))
                linear.bias.copy_(torch.from_numpy(np.array(b_O, np.float32)))
            layers += [linear, torch.nn.Sigmoid()]
        self.model = torch.nn.Sequential(*layers).to(self.device)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=lr)
        self._data_key = None

    def _to_device(self, x_NxD: np.ndarray, y_NxK: np.ndarray):
        """Copy the training set to the device once (re-used while the same arrays are passed)."""
        key = (id(x_NxD), id(y_NxK))
        if self._data_key != key:
            self._x = torch.from_numpy(np.asarray(x_NxD, np.float32)).to(self.device)
            self._y = torch.from_numpy(np.asarray(y_NxK, np.float32)).to(self.device)
            self._data_key = key
        return self._x, self._y

    def train_epoch(self, x_NxD: np.ndarray, y_NxK: np.ndarray, order: np.ndarray, batch_size: int):
        """SGD over `x_NxD`, one-hot `y_NxK` in the given `order`, full mini-batches only."""
        x, y = self._to_device(x_NxD, y_NxK)
        S = len(order) // batch_size
        idx_SxB = torch.from_numpy(np.asarray(order[: S * batch_size], np.int64).reshape(S, batch_size)).to(self.device)
        for idx_B in idx_SxB:
            xb, yb = x[idx_B], y[idx_B]
            loss = ((self.model(xb) - yb) ** 2).sum(dim=1).mean()
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def params(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """`(W_OxI, b_O)` per layer."""
        linears = [m for m in self.model if isinstance(m, torch.nn.Linear)]
        return [(m.weight.detach().cpu().numpy(), m.bias.detach().cpu().numpy()) for m in linears]
