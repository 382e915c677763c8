"""Backtests: hold out the largest pilots, forecast them, score the forecasts."""
