"""Small random networks and examples for tests, drawn with NumPy; the cost and its gradient compiled.

Test data only (`model.init_params` is tested in test_model.py): an eager `jax.random` draw or a
`model.init_params` of a new shape compiles a program, 0.3-1 s each on 2 cores, more than most of
the tests that use these take. `dtype=np.float64` gives float64 arrays only under
`jax.enable_x64(True)` (outside it JAX keeps float32). The tests import this module as `problems`:
pytest puts `tests/` on `sys.path` (the folder has no `__init__.py`).
"""

import jax
import numpy as np

from mlpjax import cost

# The cost and its gradient as the tests compute them themselves, compiled once per shape and setting:
# op by op, a gradient compiles each of its ~40 primitives.
cost_C = jax.jit(cost.network_cost, static_argnames=("activation", "cost"))
grad_C = jax.jit(jax.grad(cost.network_cost), static_argnames=("activation", "cost"))

SCALES = {"normal": lambda n_in: 1.0, "lecun": lambda n_in: 1 / np.sqrt(n_in), "he": lambda n_in: np.sqrt(2 / n_in)}


def network(sizes, seed=0, init="normal", dtype=np.float32):
    """`[(W_OxI, b_O), ...]` for consecutive `sizes`: W ~ N(0, 1) times the init's scale (1, 1/√I or
    √(2/I)); b ~ N(0, 1) for "normal", else 0."""
    rng = np.random.default_rng([seed, 1])
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        W_OxI = rng.normal(size=(n_out, n_in)) * SCALES[init](n_in)
        b_O = rng.normal(size=n_out) if init == "normal" else np.zeros(n_out)
        params.append((jax.device_put(W_OxI.astype(dtype)), jax.device_put(b_O.astype(dtype))))
    return params


def examples(n, n_in, n_out, seed=0, dtype=np.float32):
    """`x_NxD` uniform in [0, 1) and one-hot `y_NxK` of uniformly random classes."""
    rng = np.random.default_rng([seed, 2])
    x_NxD = rng.uniform(size=(n, n_in)).astype(dtype)
    y_NxK = np.eye(n_out, dtype=dtype)[rng.integers(0, n_out, n)]
    return jax.device_put(x_NxD), jax.device_put(y_NxK)  # jnp.asarray would compile a program per shape
