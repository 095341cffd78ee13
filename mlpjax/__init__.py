"""mlpjax: 3Blue1Brown's multilayer perceptron for handwritten digits, in JAX.

Where things live (start with `model`, `cost` and `fit`, then `train`):

  the network and what it learns from
    model        init_params, forward: a' = σ(W a + b) over [(W_OxI, b_O), …]
    cost         the series' quadratic cost (and cross-entropy), plus (λ/2)‖θ‖² with model.l2
    data         MNIST through tensorflow-datasets (no TensorFlow), or four IDX files offline
  what a run is and how it trains
    config       the typed schema of conf/ and the check of every option
    plan         the networks a config resolves to, once
    fit          one compiled epoch (lax.scan), vmapped over a group of networks
    checkpoint   parameters and training state on disk (orbax)
    train        `python -m mlpjax.train`: the Hydra entry point, as named steps
    sweep        the grouped launcher's sets (hydra_plugins/ holds the launcher itself)
    rundir       a finished run read back: one network, its config, its data
  analyses of trained networks (packages)
    landscape/   the cost around them: paths, curvature, end points, the float32 polish, verified
                 critical points; `python -m mlpjax.landscape …`
    report/      a sweep as tables, paired statistics and figures; `python -m mlpjax.report DIR`
  the videos' observations
    series       noise, first-layer weights, gradient components, dreams; `python -m mlpjax.series`
    walk         SGD's drunken walk against gradient descent; `python -m mlpjax.walk`
  plumbing: cli (one-line errors), outputs (figure + JSON), provenance, quiet

Dependencies point one way: model, cost ← fit, plan ← train ← sweep; landscape and report read
what train wrote. docs/architecture.md draws the map and the data flow.
"""
