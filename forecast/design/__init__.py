"""Designing pilot ladders: candidate ladders, priors, simulated refits, next runs, output."""
