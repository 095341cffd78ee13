"""mlpjax: 3Blue1Brown's multilayer perceptron for handwritten digits, in JAX."""
