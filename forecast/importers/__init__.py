"""Importers: evaluation results from other tools as runs (`list[Run]`, validated).

One module per input kind; `forecast.write_runs` writes what they return.

- `import_lm_eval`: lm-evaluation-harness results JSON (0.4 and the older per-checkpoint files).
- `import_wide_csv`: wide per-run CSVs (W&B exports), columns mapped to skills by regex.
- `import_table`: a leaderboard, one single-checkpoint run per model.
- `import_long`: a tidy table, one row per model × checkpoint × task × metric.

Parts of the input left out on purpose are reported as `SkippedWarning`s.
"""

from forecast.importers.common import (
    SkippedWarning, check_params_kind, import_and_write, parse_assignments, parse_chance_overrides, sanitize_run_name,
)
from forecast.importers.lm_eval import import_lm_eval
from forecast.importers.long import LongColumns, import_long
from forecast.importers.table import import_table
from forecast.importers.wide_csv import import_wide_csv

__all__ = [
    "LongColumns", "SkippedWarning", "check_params_kind", "import_and_write", "parse_assignments", "import_lm_eval", "import_long", "import_table", "import_wide_csv",
    "parse_chance_overrides", "sanitize_run_name",
]
