"""Forecasts from fits: the sample distribution, predict, plan, aggregates, compare, losses."""
