"""Fitting: laws, the batched optimiser, candidates, estimation, selection at distance, pooling, results."""
