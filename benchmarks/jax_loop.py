"""A Python loop of jitted JAX steps, as in JAX's own `examples/mnist_classifier.py`.

Like that example: the network is built with `jax.example_libraries.stax`, the optimizer
is `jax.example_libraries.optimizers`, one `@jit`-compiled `update(i, opt_state, batch)`
is called from Python per mini-batch, and each batch is sliced on the host from NumPy
arrays by a `data_stream` generator (so it is copied to the device at every step).
Differences from the example: the series' network (sigmoid, Σ(ŷ−y)² cost), plain SGD
instead of momentum, and a given data order so every implementation sees the same batches.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.example_libraries import optimizers, stax
from jax.example_libraries.stax import Dense, Sigmoid


class JaxLoop:
    """One network, trained one jitted step per mini-batch."""

    def __init__(self, params: list[tuple[np.ndarray, np.ndarray]], lr: float):
        """`params`: `(W_OxI, b_O)` per layer (mlpjax layout); stax's Dense keeps `W_IxO`."""
        layers = []
        for W_OxI, _ in params:
            layers += [Dense(W_OxI.shape[0]), Sigmoid]
        _, self.predict = stax.serial(*layers)
        opt_init, opt_update, self.get_params = optimizers.sgd(lr)

        def loss(params, batch):
            inputs, targets = batch
            preds = self.predict(params, inputs)
            return jnp.mean(jnp.sum((preds - targets) ** 2, axis=1))

        @jax.jit
        def update(i, opt_state, batch):
            params = self.get_params(opt_state)
            return opt_update(i, jax.grad(loss)(params, batch), opt_state)

        self.update = update
        stax_params = []
        for W_OxI, b_O in params:
            stax_params += [(jnp.asarray(np.asarray(W_OxI).T), jnp.asarray(b_O)), ()]
        self.opt_state = opt_init(stax_params)
        self.step = 0

    def train_epoch(self, train_images: np.ndarray, train_labels: np.ndarray, order: np.ndarray, batch_size: int):
        """SGD over the host arrays `train_images` (N, D), one-hot `train_labels` (N, K), full mini-batches only."""

        def data_stream():
            for i in range(len(order) // batch_size):
                batch_idx = order[i * batch_size : (i + 1) * batch_size]
                yield train_images[batch_idx], train_labels[batch_idx]

        for batch in data_stream():
            self.opt_state = self.update(self.step, self.opt_state, batch)
            self.step += 1
        jax.block_until_ready(self.opt_state)

    def params(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """`(W_OxI, b_O)` per layer."""
        return [(np.asarray(W_IxO).T, np.asarray(b_O)) for W_IxO, b_O in self.get_params(self.opt_state)[::2]]
