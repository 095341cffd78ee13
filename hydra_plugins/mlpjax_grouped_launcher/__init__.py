"""mlpjax's Hydra launcher `grouped`: the jobs of a sweep that compile to one program train as one group."""
