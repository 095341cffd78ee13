"""Per-example backpropagation in NumPy, in the style of Nielsen's `network.py`.

As in the book's code, examples are column vectors `x_Dx1`, `y_Kx1`; every example of a
mini-batch is backpropagated on its own and the nudges are summed, then each parameter
moves by `eta / len(mini_batch)` times the sum. Weights are `W_OxI` (one row per neuron of
the next layer), as in `mlpjax.model`.

Two differences from the book: the cost is the series' `Σ(a−y)²` with no ½ (so the output
error is `2(a−y)·σ'(z)`), and the data order is given (a permutation) instead of
`random.shuffle`, so every benchmarked implementation sees the same mini-batches.
"""

from __future__ import annotations

import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoid_prime(z):
    s = sigmoid(z)
    return s * (1 - s)


class Network:
    """A sigmoid MLP trained by per-example backprop; dtype float64 (the book's) unless told."""

    def __init__(self, params: list[tuple[np.ndarray, np.ndarray]], dtype=np.float64):
        """`params`: `(W_OxI, b_O)` per layer, e.g. from `mlpjax.model.init_params`."""
        self.dtype = np.dtype(dtype)
        self.weights = [np.array(W, self.dtype) for W, _ in params]
        self.biases = [np.array(b, self.dtype).reshape(-1, 1) for _, b in params]

    def feedforward(self, a):
        """Output `a_Kx1` for input `a_Dx1`."""
        for b, w in zip(self.biases, self.weights):
            a = sigmoid(np.dot(w, a) + b)
        return a

    def update_mini_batch(self, mini_batch, eta):
        """One SGD step on the mean cost of `mini_batch`, a list of `(x_Dx1, y_Kx1)` tuples."""
        nabla_b = [np.zeros(b.shape, self.dtype) for b in self.biases]
        nabla_w = [np.zeros(w.shape, self.dtype) for w in self.weights]
        for x, y in mini_batch:
            delta_nabla_b, delta_nabla_w = self.backprop(x, y)
            nabla_b = [nb + dnb for nb, dnb in zip(nabla_b, delta_nabla_b)]
            nabla_w = [nw + dnw for nw, dnw in zip(nabla_w, delta_nabla_w)]
        step = self.dtype.type(eta / len(mini_batch))
        self.weights = [w - step * nw for w, nw in zip(self.weights, nabla_w)]
        self.biases = [b - step * nb for b, nb in zip(self.biases, nabla_b)]

    def backprop(self, x, y):
        """Gradient `(∇b, ∇W)` of one example's cost `Σ(a−y)²`, layer by layer."""
        nabla_b = [None] * len(self.biases)
        nabla_w = [None] * len(self.weights)
        activation = x
        activations = [x]
        zs = []
        for b, w in zip(self.biases, self.weights):
            z = np.dot(w, activation) + b
            zs.append(z)
            activation = sigmoid(z)
            activations.append(activation)
        delta = self.cost_derivative(activations[-1], y) * sigmoid_prime(zs[-1])
        nabla_b[-1] = delta
        nabla_w[-1] = np.dot(delta, activations[-2].transpose())
        for l in range(2, len(self.weights) + 1):
            delta = np.dot(self.weights[-l + 1].transpose(), delta) * sigmoid_prime(zs[-l])
            nabla_b[-l] = delta
            nabla_w[-l] = np.dot(delta, activations[-l - 1].transpose())
        return nabla_b, nabla_w

    @staticmethod
    def cost_derivative(output_activations, y):
        """∂C/∂a of `C = Σ(a−y)²` (no ½, so the factor 2)."""
        return 2 * (output_activations - y)

    def train_epoch(self, examples, order, batch_size, eta):
        """SGD over `examples` (list of `(x_Dx1, y_Kx1)`) in the given `order`, full mini-batches only."""
        n = len(order) // batch_size * batch_size
        shuffled = [examples[i] for i in order[:n]]
        for k in range(0, n, batch_size):
            self.update_mini_batch(shuffled[k : k + batch_size], eta)

    def params(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """`(W_OxI, b_O)` per layer."""
        return [(w, b.reshape(-1)) for w, b in zip(self.weights, self.biases)]


def examples_from_arrays(x_NxD: np.ndarray, y_NxK: np.ndarray, dtype=np.float64) -> list[tuple[np.ndarray, np.ndarray]]:
    """The book's data format: a list of `(x_Dx1, y_Kx1)` column vectors."""
    x_NxD, y_NxK = np.asarray(x_NxD, dtype), np.asarray(y_NxK, dtype)
    return [(x_D[:, None], y_K[:, None]) for x_D, y_K in zip(x_NxD, y_NxK)]
