"""The ``pdsim`` command, run in-process."""

from __future__ import annotations

from click.testing import CliRunner, Result

from sim.cli import cli


def cli_runner() -> CliRunner:
    """A runner that keeps stderr apart from stdout, whatever click's version."""
    try:  # click < 8.2 mixes stderr into output unless told not to
        return CliRunner(mix_stderr=False)  # type: ignore[call-arg]  # the keyword is gone in click 8.2
    except TypeError:
        return CliRunner()


def invoke(*args: object) -> Result:
    """``pdsim ARGS...`` (each argument passed through ``str``); exceptions propagate."""
    return cli_runner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
