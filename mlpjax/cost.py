"""Costs of the network: pure functions of the parameters and a batch of examples.

The series' cost of one example is `Σ_i (ŷ_i − y_i)²` over the 10 outputs, with no ½;
the cost of the network is its average over the examples. With `model.l2` = λ > 0 the cost a
run trains and analyses is `C(θ) + (λ/2)‖θ‖²` (every weight and bias): it grows without bound
as ‖θ‖ does, so it has minima at finite θ, which the unregularized sigmoid cost need not have.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mlpjax import model

# Under the quadratic cost the output layer is a sigmoid (activations in [0, 1], as in the
# series); under cross-entropy it is a log-softmax, so the outputs are log-probabilities.
OUTPUT_FOR_COST = {"quadratic": "sigmoid", "cross_entropy": "log_softmax"}
COSTS = tuple(OUTPUT_FOR_COST)


def quadratic_per_example(yhat_BxK: jax.Array, y_BxK: jax.Array) -> jax.Array:
    """`Σ_k (ŷ_k − y_k)²` of each example (no ½), shape (B,)."""
    return jnp.sum((yhat_BxK - y_BxK) ** 2, axis=-1)


def cross_entropy_per_example(logp_BxK: jax.Array, y_BxK: jax.Array) -> jax.Array:
    """`−Σ_k y_k log p_k` of each example (natural log), shape (B,)."""
    return -jnp.sum(y_BxK * logp_BxK, axis=-1)


PER_EXAMPLE = {"quadratic": quadratic_per_example, "cross_entropy": cross_entropy_per_example}


def network_cost(
    params: model.Params, x_BxD: jax.Array, y_BxK: jax.Array, activation: str = "sigmoid", cost: str = "quadratic", l2=0.0
) -> jax.Array:
    """The cost `C` of the network: the mean over the batch of the per-example cost, plus
    `(l2/2)·‖θ‖²` over every weight and bias. Scalar.

    `x_BxD` holds pixels in [0, 1]; `y_BxK` one-hot targets.
    """
    out_BxK = model.forward(params, x_BxD, activation, OUTPUT_FOR_COST[cost])
    data_cost = jnp.mean(PER_EXAMPLE[cost](out_BxK, y_BxK))
    if isinstance(l2, (int, float)) and l2 == 0:
        return data_cost  # λ = 0 adds nothing, not even 0·‖θ‖² (which is NaN where θ is not finite)
    return data_cost + 0.5 * l2 * squared_norm(params)


def squared_norm(params: model.Params) -> jax.Array:
    """`‖θ‖²`: the sum of the squares of every weight and bias. Scalar."""
    return sum(jnp.sum(W**2) + jnp.sum(b**2) for W, b in params)


def accuracy(params: model.Params, x_BxD: jax.Array, labels_B: jax.Array, activation: str = "sigmoid") -> jax.Array:
    """Fraction of examples whose most active output neuron is the label. Scalar in [0, 1]."""
    out_BxK = model.forward(params, x_BxD, activation, "sigmoid")
    return jnp.mean(jnp.argmax(out_BxK, axis=-1) == labels_B)
