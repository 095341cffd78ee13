"""The multilayer perceptron of the series: each layer is `a' = σ(W a + b)`.

Parameters are a list of `(W_OxI, b_O)` tuples, one per layer. `W_OxI` has one row per
neuron of the next layer (O) holding the weights into it from the I neurons of this
layer, as in the notes. Activations are batched as rows: `a_BxI` holds B examples,
so one layer computes `σ(a_BxI @ W_OxI.T + b_O)`.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

Params = list[tuple[jax.Array, jax.Array]]

ACTIVATIONS = {"sigmoid": jax.nn.sigmoid, "relu": jax.nn.relu}
OUTPUTS = {"sigmoid": jax.nn.sigmoid, "log_softmax": jax.nn.log_softmax}
INITS = ("normal", "lecun", "glorot", "he")


def init_params(key: jax.Array, sizes: list[int], init: str = "lecun") -> Params:
    """Random `(W_OxI, b_O)` for consecutive `sizes`, e.g. `[784, 16, 16, 10]`.

    - `normal`: every weight and bias ~ N(0, 1), the classic choice (Nielsen's `network.py`).
    - `lecun`:  W ~ N(0, 1/I), b = 0.
    - `glorot`: W ~ N(0, 2/(I+O)), b = 0.
    - `he`:     W ~ N(0, 2/I), b = 0.
    """
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; allowed: {', '.join(INITS)}")
    return _init_params(key, tuple(int(n) for n in sizes), init)


# One compiled program per (sizes, init), whatever calls it: op by op, the draws of a few layers
# cost seconds of dispatch on a CPU; a group draws each of its networks with it (fit.init_group).
@functools.partial(jax.jit, static_argnames=("sizes", "init"))
def _init_params(key: jax.Array, sizes: tuple[int, ...], init: str) -> Params:
    params = []
    for key_l, (n_in, n_out) in zip(jax.random.split(key, len(sizes) - 1), zip(sizes[:-1], sizes[1:])):
        key_W, key_b = jax.random.split(key_l)
        W_OxI = jax.random.normal(key_W, (n_out, n_in), jnp.float32)
        if init == "normal":
            b_O = jax.random.normal(key_b, (n_out,), jnp.float32)
        else:
            var = {"lecun": 1 / n_in, "glorot": 2 / (n_in + n_out), "he": 2 / n_in}[init]
            W_OxI = W_OxI * math.sqrt(var)
            b_O = jnp.zeros((n_out,), jnp.float32)
        params.append((W_OxI, b_O))
    return params


def param_count(params: Params) -> int:
    """Number of weights and biases: 13,002 for `[784, 16, 16, 10]`."""
    return sum(int(W.size) + int(b.size) for W, b in params)


def count_for_sizes(sizes: list[int]) -> int:
    """`param_count` without building the arrays."""
    return sum(n_out * n_in + n_out for n_in, n_out in zip(sizes[:-1], sizes[1:]))


def forward(params: Params, a_BxI: jax.Array, activation: str = "sigmoid", output: str = "sigmoid") -> jax.Array:
    """Output layer `a_BxK` for input rows `a_BxI` (pixels in [0, 1]).

    Hidden layers use `activation` (sigmoid or relu); the last layer uses `output`:
    `sigmoid` (activations in [0, 1], as in the series) or `log_softmax` (log-probabilities).
    """
    sigma = ACTIVATIONS[activation]
    for W_OxI, b_O in params[:-1]:
        a_BxI = sigma(a_BxI @ W_OxI.T + b_O)
    W_KxI, b_K = params[-1]
    return OUTPUTS[output](a_BxI @ W_KxI.T + b_K)


def hidden_activations(params: Params, a_BxI: jax.Array, activation: str = "sigmoid") -> list[jax.Array]:
    """The activations `a_BxH` of every hidden layer, first to last."""
    sigma = ACTIVATIONS[activation]
    hidden = []
    for W_OxI, b_O in params[:-1]:
        a_BxI = sigma(a_BxI @ W_OxI.T + b_O)
        hidden.append(a_BxI)
    return hidden
