"""Every file and `--json` shape, typed and commented (one module per family of kinds)."""
