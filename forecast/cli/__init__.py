"""The `forecast` command line: a package of thin shells over the `forecast` library.

One module per area (`runs`: the run store and importers; `pilot`: the trainer and the
main job; `forecasting`: fit, predict, plan, backtest; `compare`), with what they share in
`common` (errors, JSON, options) and `render` (tables). Results go to stdout (rich tables,
or JSON with `--json`); progress and logs to stderr. Library modules are imported inside
each command, so `--help` and usage errors answer without loading torch.
"""

from __future__ import annotations

import typer

from forecast.cli.common import OneLineErrors
from forecast.cli.compare import compare_command
from forecast.cli.design import design_command
from forecast.cli.forecasting import backtest_command, fit_command, plan_command, predict_command
from forecast.cli.pilot import demo_command, pilot_command
from forecast.cli.runs import import_app, runs_command
from forecast.version import __version__


def _version(value: bool) -> None:
    if value:
        print(f"forecast {__version__}")
        raise typer.Exit()


app = typer.Typer(
    name="forecast",  # the program's name in messages, also when run in-process (tests)
    cls=OneLineErrors,
    help="Forecast when and whether a large model will grok each skill, from small pilot runs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


@app.callback()
def main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                      help="Print the version and exit.")) -> None:
    """Forecast when and whether a large model will grok each skill, from small pilot runs."""


app.add_typer(import_app, name="import")
app.command("runs")(runs_command)
app.command("pilot")(pilot_command)
app.command("demo")(demo_command)
app.command("fit")(fit_command)
app.command("predict")(predict_command)
app.command("plan")(plan_command)
app.command("backtest")(backtest_command)
app.command("compare")(compare_command)
app.command("design")(design_command)

__all__ = ["app"]
