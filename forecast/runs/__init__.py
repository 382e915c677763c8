"""Runs: the model of a run, its files, its checks, the benchmark table, synthetic ladders."""
