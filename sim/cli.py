"""The ``pdsim`` command line (docs/architecture.md section 6, a contract).

Only this module prints. Exit codes: 0 success, 2 bad input (one line on stderr,
``FILE:LINE: FIELD.PATH: message (got VALUE)``), 3 an internal error (one line, never a
traceback; set ``PDSIM_DEBUG=1`` to see it), 130 interrupted (Ctrl-C; whatever was
already written, e.g. finished ``--out`` chunks, is kept).

The simulator itself (``sim.runs.runner`` and the world behind it) is imported only by the
commands that simulate, so ``pdsim validate`` and ``pdsim schema`` start fast.
"""

from __future__ import annotations

import _thread
import collections
import errno
import gc
import json
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from sim.errors import InputError, one_line
from sim.limits import MAX_RUNS, MAX_SEED, SEED_LIMIT, SERIES_EPOCH_LIMIT, SERIES_EPOCH_S
from sim.runs.atomic import atomic_write

if TYPE_CHECKING:  # the importers load only for `pdsim import`
    from sim.importers.manifests import ImportResult
    from sim.promql import SeriesBatch
    from sim.runs.store import RunFolder

_OUTCOMES = ("promoted", "rolled_back", "unfinished")


# --- errors ------------------------------------------------------------------------------


class CliError(click.ClickException):
    """Bad command-line input that is not a file's content (e.g. an unwritable --out).

    Shown as one line ``pdsim: message``; exit code 2.
    """

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"pdsim: {one_line(self.format_message())}", err=True)


class _Interrupted(Exception):
    """A KeyboardInterrupt carried past click's own handler (which would print).

    Its message, when not empty, says what the interrupted command kept.
    """


#: ``ctx.meta`` key of the command's note on what an interrupt keeps (``_on_interrupt``).
_INTERRUPT_NOTE = "pdsim.interrupt_note"

#: Set once the command has taken a Ctrl-C (``PdsimGroup._interrupted``).
_INTERRUPT_TAKEN = threading.Event()


def _on_interrupt(note: Callable[[], str]) -> None:
    """Say what an interrupt from now on keeps: ``note()`` is called if Ctrl-C comes, and its
    text follows ``pdsim: interrupted; ``."""
    click.get_current_context().meta[_INTERRUPT_NOTE] = note


def _caused_by_interrupt(err: BaseException) -> bool:
    """Whether a KeyboardInterrupt is behind ``err``: a Ctrl-C that lands inside a compiled
    (numba) call comes out as ``SystemError: ... returned a result with an exception set``,
    with the KeyboardInterrupt as its cause."""
    seen: set[int] = set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


#: What the system says of a path that is wrong as given (too long, a loop, not there, not
#: allowed), as opposed to a failure of pdsim's own.
_PATH_ERRNOS = frozenset(
    {errno.ENAMETOOLONG, errno.ELOOP, errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EACCES, errno.EPERM}
)


def _bad_path(err: OSError) -> bool:
    return err.filename is not None and err.errno in _PATH_ERRNOS


def _interrupted_line(err: BaseException) -> str:
    note = str(err) if isinstance(err, _Interrupted) else ""
    return f"pdsim: interrupted; {note}" if note else "pdsim: interrupted"


#: The lines of the internal-error handler that must not allocate: written as they are when
#: memory has run out, or when the error's own message cannot be built.
_OUT_OF_MEMORY = (
    "pdsim: out of memory (MemoryError); lower --runs or --workers, shorten the scenario's horizon, "
    "or give pdsim more memory\n"
)
_UNPRINTABLE = "pdsim: internal error (its message could not be built; set PDSIM_DEBUG=1 to see it)\n"


def _say_preformatted(line: str) -> None:
    """Write a prebuilt line to stderr, falling back to the raw file descriptor."""
    try:
        sys.stderr.write(line)
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001 - the last word must not raise; fd 2 needs no buffer
        try:
            os.write(2, line.encode())
        except OSError:
            pass


def _internal_error(err: BaseException) -> int:
    """Report an unexpected error in one line; exit code 3. Out of memory, or when building
    the line itself fails, a preformatted line is written instead (never a traceback)."""
    if isinstance(err, MemoryError):
        _say_preformatted(_OUT_OF_MEMORY)
        return 3
    try:
        if os.environ.get("PDSIM_DEBUG"):
            import traceback

            traceback.print_exception(err)
        click.echo(one_line(f"pdsim: internal error: {type(err).__name__}: {err}"), err=True)
    except Exception:  # noqa: BLE001 - MemoryError included: the handler must not fail
        _say_preformatted(_UNPRINTABLE)
    return 3


#: ``ctx.meta`` key of the subcommand being run (``PdsimGroup.resolve_command``).
_COMMAND = "pdsim.command"


def _usage_line(err: click.UsageError) -> str:
    """A click usage error (unknown option, missing argument, bad value) as one line that
    names the command and points at its ``--help``, e.g. ``pdsim run: --runs: '1e9x' is
    not a valid integer (see pdsim run --help)``; click's own four-line block would bury the
    one line that matters in a CI log."""
    command = err.ctx.command_path if err.ctx is not None else "pdsim"
    if isinstance(err, click.NoSuchOption):
        text = f"no such option {err.option_name}"
        if err.possibilities:
            text += f" (did you mean {' or '.join(sorted(err.possibilities))}?)"
    elif isinstance(err, click.BadParameter) and not isinstance(err, click.MissingParameter) and err.param:
        param = err.param
        name = " / ".join(param.opts) if isinstance(param, click.Option) else param.human_readable_name
        # click names its range types "integer range" and "float range"; the user gave a number.
        message = err.message.replace("a valid integer range", "a valid integer")
        text = f"{name}: {message.replace('a valid float range', 'a valid number')}"
    else:
        text = err.format_message()
        text = text[:1].lower() + text[1:]  # click's sentences start capitalised; ours follow a colon
    return one_line(f"{command}: {text.removesuffix('.')} (see {command} --help)")


class PdsimGroup(click.Group):
    """A click group whose ``main`` maps every failure to one stderr line and an exit code."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        ctx.meta[_COMMAND] = command  # for usage errors raised without their context
        return name, command, rest

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as err:
            # click's parser raises some (an option missing its value) without a context:
            # give them the subcommand's, so the line names the command.
            command = ctx.meta.get(_COMMAND)
            if err.ctx is None and command is not None:
                err.ctx = click.Context(command, info_name=command.name, parent=ctx)
            raise
        except Exception as err:
            if not _caused_by_interrupt(err):
                raise
            return self._interrupted(ctx)
        except KeyboardInterrupt:
            return self._interrupted(ctx)

    @staticmethod
    def _interrupted(ctx: click.Context) -> NoReturn:
        """Raise the interrupt past click's own handler, with the command's note on what it kept."""
        _INTERRUPT_TAKEN.set()
        note = ctx.meta.get(_INTERRUPT_NOTE)
        try:
            text = note() if note is not None else ""
        except Exception:  # noqa: BLE001 - the note is a courtesy; the exit code is what counts
            text = ""
        raise _Interrupted(text) from None

    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) and not isinstance(rv, bool) else 0
        except click.exceptions.NoArgsIsHelpError as err:  # bare `pdsim`: the help, as always
            err.show()
            code = err.exit_code
        except click.UsageError as err:
            click.echo(_usage_line(err), err=True)
            code = err.exit_code
        except click.ClickException as err:
            err.show()
            code = err.exit_code
        except (click.exceptions.Abort, _Interrupted, KeyboardInterrupt) as err:
            click.echo(one_line(_interrupted_line(err)), err=True)
            code = 130
        except InputError as err:
            click.echo(str(err), err=True)
            code = 2
        except OSError as err:
            if not _bad_path(err):
                code = _internal_error(err)
            else:  # a path the user gave that the system refuses, met where nothing checked it first
                click.echo(one_line(f"pdsim: {os.fsdecode(err.filename)}: {err.strerror}"), err=True)
                code = 2
        except Exception as err:  # noqa: BLE001 - the contract: never a traceback
            code = _internal_error(err)
        if standalone_mode:
            sys.exit(code)
        return code


class _Seed(click.ParamType):
    """``--seed``: a whole number from 0 to ``MAX_SEED`` (a usage error otherwise, one line)."""

    name = "integer"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        try:
            seed = int(value)
        except (TypeError, ValueError):
            seed = -1
        if not 0 <= seed <= MAX_SEED:
            self.fail(f"must be a whole number from 0 to {SEED_LIMIT} (got {value})", param, ctx)
        return seed


# --- JSON and files ------------------------------------------------------------------------


def _json_safe(value: Any) -> Any:
    """Plain JSON data: NaN/inf become None, numpy scalars become Python numbers."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    item = getattr(value, "item", None)  # numpy scalar
    if callable(item):
        return _json_safe(item())
    tolist = getattr(value, "tolist", None)  # numpy array
    if callable(tolist):
        return _json_safe(tolist())
    return str(value)


def _dumps(value: Any, **kw: Any) -> str:
    return json.dumps(_json_safe(value), allow_nan=False, **kw)


def _echo_json_records(head: Mapping[str, Any], records: Iterable[Mapping[str, Any]]) -> None:
    """Print ``{**head, "records": [...]}`` as one JSON line, writing the records as they
    come: the text of millions of records is never held whole (``_dumps`` of the lot)."""
    opening = _dumps(dict(head))[:-1] + (', "records": [' if head else '"records": [')
    parts, first = [opening], True
    for record in records:
        parts.append(("" if first else ", ") + _dumps(record))
        first = False
        if len(parts) >= 1000:
            click.echo("".join(parts), nl=False)
            parts = []
    parts.append("]}")
    click.echo("".join(parts))


def _write_text(path: Path, text: str) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)

    atomic_write(path, write)


class ChunkWriter:
    """Streams finished chunks of records to ``DIR/records-NNNNN.parquet``, atomically."""

    def __init__(self, out_dir: Path) -> None:
        self.dir = out_dir
        self.files: list[Path] = []

    def __call__(self, records: Any) -> None:
        """Write one chunk: its records' columns (``iter_chunks`` with workers) or the run records."""
        from sim.runs.runner import RecordColumns
        from sim.runs.store import WriteFailed, records_table, run_chunk_name, write_chunk

        table = records.table() if isinstance(records, RecordColumns) else records_table(records)
        try:
            self.files.append(write_chunk(self.dir, run_chunk_name(len(self.files)), table))
        except OSError as err:  # disk full, read-only: the chunks already written stay whole
            raise WriteFailed(self.dir, err) from None


def _prepare_out_dir(out: str, force: bool = False) -> RunFolder:
    """Open ``--out DIR`` for this command: locked until the command ends, checked (a folder
    with results is refused unless ``force``; then the new ones replace them at the end)."""
    from sim.runs.store import ResultsError, RunFolder

    try:
        folder = RunFolder(out, force=force)
    except ResultsError as err:
        raise CliError(str(err)) from None
    # Released however the command ends (the kernel releases the lock if the process dies).
    click.get_current_context().call_on_close(folder.close)
    return folder


def _kept_after_interrupt(folder: RunFolder, writer: ChunkWriter) -> str:
    """What an interrupted ``run --out`` leaves: its finished chunks, or, for a ``--force``
    run over earlier results, those results untouched (its staged chunks are discarded).
    Asked after the folder is closed: ``replacing`` outlives the staging folder."""
    if folder.replacing:
        return f"{folder.out} keeps its earlier results (the new run's chunks were discarded)"
    return f"{len(writer.files)} finished chunk(s) kept in {writer.dir}"


def _same_file(a: str, b: str) -> bool:
    """Whether two paths name one file: by realpath (symlinks), or by inode (hard links)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): not the same file
        return False


def _overwritten_input(output: str, inputs: Iterable[str | os.PathLike[str]]) -> str | None:
    """The input that writing the file ``output`` would destroy, or None.

    An input directory (a policy directory, a results folder) counts with every file below it.
    """
    for given in inputs:
        src = os.fspath(given)
        if _same_file(output, src):
            return src
        if os.path.isdir(src) and os.path.isfile(output):
            inside = os.path.relpath(os.path.realpath(output), os.path.realpath(src))
            if not inside.startswith(os.pardir + os.sep) and inside != os.pardir:
                return os.path.join(src, inside)
    return None


def _refuse_overwrite(
    option: str,
    output: str,
    inputs: Iterable[str | os.PathLike[str]],
    writes: Callable[[str], bool] | None = None,
) -> None:
    """Refuse an output option that would overwrite one of the command's inputs.

    Called before anything is written (or simulated), so a refused command leaves every
    file as it was.

    Args:
        option: the option as the user wrote it (``--trace``), for the message.
        output: the output file, or with ``writes`` the output directory.
        inputs: every file or directory the command reads.
        writes: for a directory output, which file names the command writes in it.

    Raises:
        CliError: naming the option and the input it would overwrite (exit 2).
    """
    inputs = list(inputs)
    hit = _overwritten_input(output, inputs)
    if hit is None and writes is not None:
        out = os.path.realpath(output)
        for given in inputs:
            try:
                files = [os.path.join(given, n) for n in os.listdir(given)] if os.path.isdir(given) else [given]
            except OSError:  # an unreadable input directory: the command reports it when it reads it
                files = []
            for f in files:
                if writes(os.path.basename(f)) and os.path.dirname(os.path.realpath(f)) == out:
                    hit = os.fspath(f)
                    break
            if hit is not None:
                break
    if hit is not None:
        raise CliError(f"{option} {output} would overwrite the input {hit}; choose another path")


def _scenario_inputs(path: str | os.PathLike[str], policy: Any) -> list[str]:
    """A scenario file and the manifests its ``policy: {manifest: ...}`` names."""
    manifest = policy.get("manifest") if isinstance(policy, dict) else getattr(policy, "manifest", None)
    values = manifest if isinstance(manifest, list) else [manifest] if manifest is not None else []
    base = os.path.dirname(os.fspath(path))
    return [os.fspath(path), *(os.path.join(base, v) for v in values if isinstance(v, str))]


def _writes_run_results(name: str) -> bool:
    """Whether ``pdsim run --out DIR`` writes (or replaces) a file of this name in DIR."""
    from sim.runs.store import RUN_CHUNK_RE

    return name == "summary.json" or RUN_CHUNK_RE.fullmatch(name) is not None


def _writes_sweep_results(name: str) -> bool:
    """Whether ``pdsim sweep --out DIR`` writes a file of this name in DIR."""
    from sim.runs.store import CHUNK_RE, MANIFEST

    return name in (MANIFEST, "summary.json") or CHUNK_RE.fullmatch(name) is not None


def _policy_block(scenario_path: str | os.PathLike[str]) -> Any:
    """The ``policy:`` mapping of a scenario file, or None when it cannot be read (whoever
    loads the scenario later reports why)."""
    from sim.yamlio import load_yaml

    try:
        data = load_yaml(scenario_path).data
    except InputError:
        return None
    return data.get("policy") if isinstance(data, dict) else None


def _write_output(path: str, what: str, write: Callable[[Path], object]) -> None:
    try:
        write(Path(path))
    except OSError as err:
        raise CliError(f"cannot write {what} {path}: {err.strerror or err}") from None


class _RunCount(click.ParamType):
    """``--runs``: a whole number up to ``limits.MAX_RUNS``, also in scientific notation
    (``1e6``), checked before anything is simulated (``sim.models.parse_run_count``)."""

    name = "integer"

    def __init__(self, minimum: int = 1) -> None:
        self.minimum = minimum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        from sim.models import parse_run_count

        try:
            return parse_run_count(value, self.minimum)
        except ValueError as err:
            self.fail(f"{err} (got {value})", param, ctx)


_RUNS_DEFAULT = "Default: the scenario's `runs`."
_SEED_HELP = f"Root seed, 0 to {SEED_LIMIT}. Default: the scenario's `seed`."


# --- the commands ----------------------------------------------------------------------------


def _print_version(ctx: click.Context) -> None:
    from importlib.metadata import PackageNotFoundError, version

    from sim import DISTRIBUTION

    try:
        v = version(DISTRIBUTION)
    except PackageNotFoundError:  # running from a source tree that is not installed
        v = "0+unknown"
    click.echo(f"pdsim {v}")
    ctx.exit(0)


@click.group("pdsim", cls=PdsimGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=lambda ctx, _param, value: _print_version(ctx) if value else None,
    help="Show the version and exit.",
)
def cli() -> None:
    """pdsim: simulate progressive-delivery policies (Flagger, Argo) before production does."""


def _warn(warnings: Iterable[str]) -> None:
    """Fields the policy sets but pdsim does not model: one stderr line each; go on."""
    for line in warnings:
        click.echo(one_line(line), err=True)


def _load_run_inputs(scenario_path: str, policy_paths: tuple[str, ...]) -> tuple[Any, Any]:
    from sim.inputs.policy import load_scenario_and_policy
    from sim.world.metrics import metric_warnings

    scenario, policy, warnings = load_scenario_and_policy(scenario_path, policy_paths)
    _warn(warnings)
    _warn(metric_warnings(scenario, policy, scenario_path))
    return scenario, policy


def _outcome_counts(outcomes: Mapping[str, int]) -> dict[str, int]:
    counts = collections.Counter(outcomes)
    out = {k: int(counts.pop(k, 0)) for k in _OUTCOMES}
    out.update({str(k): int(v) for k, v in sorted(counts.items())})  # never expected; never hidden
    return out


def _pool_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--workers W`` and ``--dask ADDRESS``, as the commands that hand work out take them."""
    command = click.option(
        "--dask",
        "dask_address",
        metavar="ADDRESS",
        help="Simulate on a Dask cluster (e.g. tcp://scheduler:8786; needs pdsim[dask]).",
    )(command)
    return click.option(
        "--workers",
        type=click.IntRange(min=1),
        default=1,
        show_default=True,
        help="Worker processes (joblib/loky); results are identical for any count.",
    )(command)


def _dask_client(address: str) -> Any:
    """A ``distributed.Client`` of the scheduler at ``address`` (``--dask``).

    Raises:
        CliError: distributed is not installed, or the scheduler cannot be reached.
    """
    try:
        from distributed import Client
    except ImportError:
        raise CliError("--dask needs the distributed package: pip install 'pdsim[dask]'") from None
    try:
        return Client(address, timeout="10s")
    except OSError as err:
        raise CliError(f"--dask {address}: cannot reach the scheduler ({err})") from None


def _progress_bar(total: int, disable: bool = False) -> Any:
    """A tqdm bar on stderr (rollouts/s and ETA); off when stderr is not a terminal."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        unit="rollouts",
        delay=0.5,
        file=sys.stderr,
        dynamic_ncols=True,
        disable=disable or not _isatty(sys.stderr),
        leave=False,
    )


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _series_text(batch: SeriesBatch | None, epoch_s: float) -> str:
    """Run 0's raw series as OpenMetrics text (an empty exposition when no query reads series)."""
    import io

    from sim.promql.openmetrics import write_openmetrics

    out = io.StringIO()
    if batch is None:
        out.write("# EOF\n")
    else:
        write_openmetrics(batch, 0, out, epoch_s=epoch_s)
    return out.getvalue()


@cli.command()
@click.argument("scenario_path", metavar="SCENARIO.yaml", type=click.Path(dir_okay=False))
@click.option(
    "--policy",
    "policy_paths",
    multiple=True,
    type=click.Path(),
    metavar="PATH",
    help="Policy file, manifest or directory (repeatable: the files combine into one "
    "policy). Default: the scenario's own `policy:`.",
)
@click.option("--runs", type=_RunCount(), help=f"Number of rollouts (at most {MAX_RUNS:,}; 1e6 works). {_RUNS_DEFAULT}")
@click.option("--seed", type=_Seed(), help=_SEED_HELP)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes; results are identical for any count.",
)
@click.option("--exact", is_flag=True, help="Serve requests one by one (slow; validation mode).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (summary and records) on stdout.")
@click.option(
    "--trace",
    "trace_path",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Write run 0's policy ticks as JSON Lines to FILE.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="Stream records to DIR/records-NNNNN.parquet (one per finished chunk) and write DIR/summary.json. "
    "DIR must hold no results (see --force); it is locked while the run writes it.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Let --out replace the results of an earlier run in DIR, once the new run is complete "
    "(an interrupted run leaves the old results as they were).",
)
@click.option(
    "--series",
    "series_path",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Write run 0's simulated raw series (what Prometheus would hold) as OpenMetrics text with "
    "timestamps to FILE (`promtool tsdb create-blocks-from openmetrics` loads it; `pdsim query` reads it).",
)
@click.option(
    "--series-epoch",
    type=click.FloatRange(min=0, max=SERIES_EPOCH_LIMIT),
    default=SERIES_EPOCH_S,
    show_default=True,
    metavar="SECONDS",
    help="Unix time of simulated t = 0 in --series (default 2026-01-01T00:00:00Z).",
)
@click.option(
    "--chunk-size", type=click.IntRange(min=1), default=1000, hidden=True, help="Rollouts per chunk file of --out."
)
def run(
    scenario_path: str,
    policy_paths: tuple[str, ...],
    runs: int | None,
    seed: int | None,
    workers: int,
    exact: bool,
    as_json: bool,
    trace_path: str | None,
    out_dir: str | None,
    force: bool,
    series_path: str | None,
    series_epoch: float,
    chunk_size: int,
) -> None:
    """Simulate many rollouts of SCENARIO.yaml and summarise their outcomes."""
    scenario, policy = _load_run_inputs(scenario_path, policy_paths)

    from sim.runs.runner import RecordsTable, iter_chunks, run_one
    from sim.runs.store import WriteFailed
    from sim.seeds import run_seed
    from sim.stats import SUMMARY_COLUMNS, format_summary_table, summarize_records

    runs = scenario.runs if runs is None else runs
    seed = scenario.seed if seed is None else seed
    inputs = [*_scenario_inputs(scenario_path, None if policy_paths else scenario.policy), *policy_paths]
    if trace_path is not None:
        _refuse_overwrite("--trace", trace_path, inputs)
    if out_dir is not None:
        _refuse_overwrite("--out", out_dir, inputs, writes=_writes_run_results)
    folder = _prepare_out_dir(out_dir, force) if out_dir is not None else None
    out = folder.out if folder is not None else None

    if series_path is not None:
        _refuse_overwrite("--series", series_path, inputs)
    if trace_path is not None or series_path is not None:
        result = run_one(
            scenario, policy, run_seed(seed, 0, 0), run_index=0, exact=exact, trace=True, series=series_path is not None
        )
        if trace_path is not None:
            text = "".join(_dumps(tick) + "\n" for tick in (result.trace or []))
            _write_output(trace_path, "--trace", lambda p: _write_text(p, text))
        if series_path is not None:
            _write_output(series_path, "--series", lambda p: _write_text(p, _series_text(result.series, series_epoch)))

    writer = ChunkWriter(folder.write_dir) if folder is not None else None
    if folder is not None and writer is not None:
        _on_interrupt(lambda: _kept_after_interrupt(folder, writer))
    bar = _progress_bar(runs)
    # Runs are kept as compact columns, not as record objects (limits.MAX_RUNS).
    table = RecordsTable()
    try:
        for chunk in iter_chunks(
            scenario, policy, runs, seed, workers=workers, exact=exact, progress=bar.update, chunk_size=chunk_size
        ):
            if writer is not None:
                writer(chunk)
            table.add(chunk)
    except WriteFailed as err:
        assert folder is not None and writer is not None  # only --out writes
        folder.close()  # a --force run's staged chunks go; earlier results stay
        raise CliError(f"{folder.out}: cannot write: {err.reason}; {_kept_after_interrupt(folder, writer)}") from None
    finally:
        bar.close()

    summary = summarize_records(table.columns(SUMMARY_COLUMNS))
    head = {
        "scenario": scenario.name,
        "policy": policy.name,
        "runs": runs,
        "seed": seed,
        "outcomes": _outcome_counts(table.outcome_counts()),
        "summary": summary,
    }
    if folder is not None:
        summary_path = str(folder.write_dir / "summary.json")
        _write_output(summary_path, "summary", lambda p: _write_text(p, _dumps(head, indent=2) + "\n"))
        _write_output(str(folder.out), "results into", lambda _: folder.commit())
    if as_json:
        _echo_json_records(head, table.dicts())
        return
    counts = ", ".join(f"{k} {v}" for k, v in head["outcomes"].items())
    click.echo(f"scenario: {scenario.name}  policy: {policy.name}  runs: {runs}  seed: {seed}")
    click.echo("")
    click.echo(format_summary_table(summary))
    click.echo("")
    click.echo(f"outcomes: {counts}")
    if out is not None and writer is not None:
        click.echo(f"results: {len(writer.files)} chunk file(s) and summary.json in {out}")


@cli.command()
@click.argument("policy_paths", nargs=-1, required=True, type=click.Path(), metavar="POLICY_PATH...")
@click.option(
    "--observations",
    "observations_path",
    required=True,
    type=click.Path(dir_okay=False),
    metavar="FILE.csv",
    help="Recorded series: CSV with columns t,metric,value.",
)
@click.option(
    "--trace",
    "trace_path",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Write the policy's ticks as JSON Lines to FILE (as `pdsim run --trace`).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with the decision on stdout.")
@click.option("--horizon", metavar="DURATION", help="Stop after this time (e.g. 30m). Default: the last row's t.")
def replay(
    policy_paths: tuple[str, ...], observations_path: str, trace_path: str | None, as_json: bool, horizon: str | None
) -> None:
    """Run a policy against a recorded metric series and print its decision."""
    from sim.inputs.policy import load_policy
    from sim.runs.replay import load_observations
    from sim.runs.replay import replay as replay_policy
    from sim.units import parse_duration

    horizon_s = None
    if horizon is not None:
        try:
            horizon_s = parse_duration(horizon)
        except ValueError as err:
            raise CliError(f"--horizon: {err} (got {horizon})") from None
        from sim.limits import MAX_HORIZON_S

        if not abs(horizon_s) <= MAX_HORIZON_S:
            raise CliError(f"--horizon: must be at most {MAX_HORIZON_S:g} seconds (got {horizon})")
    policy = load_policy(list(policy_paths))
    if trace_path is not None:
        _refuse_overwrite("--trace", trace_path, [observations_path, *policy_paths])
    observations = load_observations(observations_path)
    unrecorded = [q.name for q in policy.queries() if q.name not in observations.metrics]
    if unrecorded:
        click.echo(
            one_line(
                f"pdsim: warning: {observations_path} has no rows for {', '.join(unrecorded)}: no data at every tick"
            ),
            err=True,
        )
    result = replay_policy(policy, observations, horizon_s=horizon_s, trace=trace_path is not None)
    if trace_path is not None:
        text = "".join(_dumps(tick) + "\n" for tick in result.trace)
        _write_output(trace_path, "--trace", lambda p: _write_text(p, text))
    if as_json:
        click.echo(
            _dumps(
                {
                    "policy": policy.name,
                    "decision": result.decision,
                    "decision_time_s": result.decision_time_s,
                    "final_phase": result.final_phase,
                    "ticks": result.ticks,
                    "rollback_reason": result.rollback_reason,
                }
            )
        )
        return
    ticks = f"{result.ticks} tick{'' if result.ticks == 1 else 's'}"
    if result.decision_time_s is None:
        end = horizon_s if horizon_s is not None else (observations.last_t or 0.0)
        click.echo(f"{result.decision} at horizon {end:.10g}s (phase {result.final_phase}, {ticks})")
    else:
        click.echo(f"{result.decision} at {result.decision_time_s:.10g}s (phase {result.final_phase}, {ticks})")
    if result.rollback_reason:
        click.echo(one_line(f"reason: {result.rollback_reason}"))


#: The Kubernetes kinds that are a rollout of their own (the others are templates they read).
_ROLLOUT_KINDS = frozenset({"Canary", "Rollout"})


def _kind_of_file(path: str) -> str:
    """What a YAML file is, by its content: ``"rollout"`` (manifests with a Canary or a
    Rollout), ``"manifest"`` (other Kubernetes objects: templates), ``"policy"``,
    ``"sweep"``, ``"gates"``, ``"tune"`` or ``"scenario"`` (anything else, a multi-document scenario
    included: the scenario loader then names what is wrong, and a file of another kind).

    Raises:
        InputError: when the file cannot be read as YAML at all.
    """
    from sim.inputs.validation import looks_like
    from sim.yamlio import load_yaml_all

    docs = load_yaml_all(path)
    kinds = [looks_like(doc.data) for doc in docs]
    if "manifest" in kinds:
        # A Canary or a Rollout, or only the templates one of them reads.
        return (
            "rollout"
            if any(isinstance(doc.data, dict) and doc.data.get("kind") in _ROLLOUT_KINDS for doc in docs)
            else "manifest"
        )
    return kinds[0] if kinds[0] in ("policy", "sweep", "gates", "tune") else "scenario"


def _classify(path: str) -> str:
    """``"scenario"``, ``"tune"`` (a TUNE file) or ``"policy"`` (a policy file, a manifest
    or a directory of them).

    Raises:
        InputError: when the file cannot be read as YAML at all.
    """
    if os.path.isdir(path):
        return "policy"
    kind = _kind_of_file(path)
    if kind == "tune":
        return "tune"
    return "policy" if kind in ("policy", "manifest", "rollout") else "scenario"


#: How many names of skipped files a line lists.
_SKIPPED_SHOWN = 5


def _directory_checks(directory: str) -> tuple[list[tuple[str, str, list[str]]], list[str]]:
    """What ``pdsim validate DIR`` checks in DIR, and what it skips.

    The YAML files of DIR (``*.yaml``, ``*.yml``, ``*.json``, not recursive, as a policy
    directory is read) are checked by kind: each scenario file on its own; each pdsim
    policy file, and each file with a Canary or a Rollout, with the directory's template
    manifests (as ``--policy DIR`` reads them when it holds one policy); the templates
    alone when there is nothing else. Other files, sweep and gates files and
    subdirectories are skipped, and said so.

    Returns:
        ``(what the ok line names, "scenario" or "policy", the paths read)`` per check, and
        one line per skipped file or group of files.

    Raises:
        InputError: when the directory cannot be listed.
    """
    from sim.inputs.policy import POLICY_SUFFIXES
    from sim.inputs.validation import KINDS

    try:
        names = sorted(os.listdir(directory))
    except OSError as err:
        raise InputError(directory, 1, None, f"cannot read the directory: {err.strerror or err}") from None
    scenarios: list[str] = []
    policies: list[str] = []
    tunes: list[str] = []
    rollouts: list[str] = []
    manifests: list[str] = []
    notes: list[str] = []
    other: list[str] = []
    for name in names:
        path = os.path.join(directory, name)
        if not name.endswith(POLICY_SUFFIXES) or not os.path.isfile(path):
            other.append(name + os.sep * os.path.isdir(path))
            continue
        try:
            kind = _kind_of_file(path)
        except InputError:
            kind = "scenario"  # not YAML: loading it as a scenario reports why
        if kind in ("sweep", "gates"):
            notes.append(f"{path}: skipped ({KINDS[kind]}; validate reads scenario, policy, manifest and TUNE files)")
        else:
            {"scenario": scenarios, "policy": policies, "rollout": rollouts, "manifest": manifests, "tune": tunes}[
                kind
            ].append(path)
    if other:
        shown = ", ".join(other[:_SKIPPED_SHOWN])
        more = f" and {len(other) - _SKIPPED_SHOWN} more" if len(other) > _SKIPPED_SHOWN else ""
        suffixes = ", ".join("*" + s for s in POLICY_SUFFIXES)
        notes.insert(0, f"{directory}: skipped {shown}{more} (validate reads the {suffixes} files of a directory)")
    checks = [(path, "scenario", [path]) for path in scenarios]
    checks += [(path, "tune", [path]) for path in tunes]
    checks += [(path, "policy", [path, *manifests]) for path in policies + rollouts]
    if manifests and not policies + rollouts:
        checks.append((directory, "policy", manifests))
    return checks, notes


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
def validate(files: tuple[str, ...]) -> int:
    """Check scenario, policy and TUNE files; exit 0 when all are valid, 2 otherwise.

    A directory: its scenario files and policy files one by one, its manifests together
    (as --policy DIR reads them); other files in it are skipped, and named.

    Each error is one line on stderr: FILE:LINE: FIELD.PATH: message (got VALUE).
    """
    from sim.inputs.policy import POLICY_SUFFIXES, load_policy_with_warnings, scenario_policy_with_warnings
    from sim.inputs.scenario import load_scenario

    bad = 0
    for given in files:
        checks: list[tuple[str, str | None, list[str]]] = [(given, None, [given])]
        if os.path.isdir(given):
            try:
                found, notes = _directory_checks(given)
            except InputError as err:
                click.echo(str(err), err=True)
                bad += 1
                continue
            for note in notes:
                click.echo(one_line(note))
            checks = list(found)
            if not checks:
                suffixes = ", ".join("*" + s for s in POLICY_SUFFIXES)
                message = f"the directory holds no scenario, policy or manifest files ({suffixes})"
                click.echo(str(InputError(given, 1, None, message)), err=True)
                bad += 1
        for label, kind, paths in checks:
            try:
                kind = kind or _classify(label)
                if kind == "policy":
                    _warn(load_policy_with_warnings(paths)[1])
                    click.echo(f"{label}: ok (policy)")
                elif kind == "tune":
                    from sim.tuning.spec import load_tune

                    tune = load_tune(label)
                    _warn(list(tune.base.warnings))
                    click.echo(
                        f"{label}: ok (TUNE file {tune.name}: {len(tune.space.params)} parameters, "
                        f"{len(tune.portfolio.entries)} releases)"
                    )
                else:
                    scenario = load_scenario(label)
                    if getattr(scenario.policy, "manifest", None) is not None:
                        _warn(scenario_policy_with_warnings(scenario, label)[1])
                    click.echo(f"{label}: ok (scenario {scenario.name})")
            except InputError as err:
                click.echo(str(err), err=True)
                bad += 1
    return 2 if bad else 0


@cli.command()
def schema() -> None:
    """Print the JSON Schema of scenario files."""
    from sim.inputs.scenario import Scenario

    click.echo(json.dumps(Scenario.model_json_schema(), indent=2))


@cli.command("import")
@click.argument("kind", metavar="flagger|argo")
@click.argument("manifests", nargs=-1, required=True, type=click.Path(), metavar="MANIFEST...")
@click.option(
    "-o",
    "--output",
    "output",
    type=click.Path(dir_okay=False),
    metavar="POLICY.yaml",
    help="Write the policy file here. Default: stdout.",
)
def import_(kind: str, manifests: tuple[str, ...], output: str | None) -> None:
    """Turn real manifests into a pdsim policy file.

    MANIFEST... are files or directories of Kubernetes objects, combined as
    `kubectl apply -f` combines them: a Flagger Canary and the MetricTemplates it
    references (flagger), or an Argo Rollout and its AnalysisTemplates and
    ClusterAnalysisTemplates (argo). Fields pdsim does not model are listed on stderr,
    one line each.
    """
    from sim.inputs.policy import read_manifests

    result: ImportResult[Any]
    if kind == "flagger":
        from sim.importers.flagger import import_flagger
        from sim.importers.flagger import policy_yaml as flagger_yaml

        result = import_flagger(read_manifests(list(manifests)))
        text = flagger_yaml(result)
    elif kind == "argo":
        from sim.importers.argo.rollout import import_argo
        from sim.importers.argo.rollout import policy_yaml as argo_yaml

        result = import_argo(read_manifests(list(manifests)))
        text = argo_yaml(result)
    else:
        raise CliError(f"unknown importer {kind!r}: use flagger or argo")
    _warn(result.warnings)
    if output is None:
        click.echo(text, nl=False)
        return
    _refuse_overwrite("-o", output, [*result.sources, *manifests])
    _write_output(output, "-o", lambda p: _write_text(p, text))


@cli.command()
@click.argument("gates_path", metavar="GATES.yaml", type=click.Path(dir_okay=False))
@click.option(
    "--junit",
    "junit_path",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Write JUnit XML (one testcase per requirement) to FILE.",
)
@click.option(
    "--markdown",
    "markdown_path",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Write a markdown summary (for a pull-request comment) to FILE.",
)
@click.option(
    "--baseline",
    "baseline_paths",
    multiple=True,
    type=click.Path(),
    metavar="POLICY",
    help="The current policy (repeatable, the files combine): fail on a significant regression "
    "of the policy under test against it, on the same seeds.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes; results are identical for any count.",
)
def check(
    gates_path: str, junit_path: str | None, markdown_path: str | None, baseline_paths: tuple[str, ...], workers: int
) -> int:
    """Decide the requirements of GATES.yaml on confidence intervals (the CI gate).

    Exit 0 when every requirement passes, 1 when one fails (or is inconclusive and the file
    treats that as a failure), the policy regresses against --baseline or a `pdsim tune`
    frontier (the file's `frontier:`) beats it by more than its margin, 2 on bad input.
    """
    import shlex

    from sim.gates.decide import load_gates, run_gates
    from sim.gates.output import junit_xml, markdown, text_lines
    from sim.gates.spec import TUNE_FILES
    from sim.inputs.policy import read_policy

    gates = load_gates(gates_path)
    if baseline_paths:
        read_policy(list(baseline_paths))  # bad input is exit 2 before any simulation
    inputs: list[str | os.PathLike[str]] = [gates_path, *gates.policy, *baseline_paths]
    inputs += [f for gs in gates.scenarios for f in _scenario_inputs(gs.path, _policy_block(gs.path))]
    if gates.frontier is not None:
        inputs += [gates.frontier.tune / name for name in TUNE_FILES]
    for option, path in (("--junit", junit_path), ("--markdown", markdown_path)):
        if path is not None:
            _refuse_overwrite(option, path, inputs)  # before the simulation, not after it
    report = run_gates(
        gates,
        baseline=baseline_paths or None,
        workers=workers,
        progress=lambda line: click.echo(one_line(line), err=True),
    )
    _warn(report.warnings)
    command = shlex.join(["pdsim", "check", gates_path, *[a for p in baseline_paths for a in ("--baseline", p)]])
    if junit_path is not None:
        text = junit_xml(report)
        _write_output(junit_path, "--junit", lambda p: _write_text(p, text))
    if markdown_path is not None:
        md = markdown(report, command=command)
        _write_output(markdown_path, "--markdown", lambda p: _write_text(p, md))
    for line in text_lines(report):
        click.echo(one_line(line))
    return 0 if report.passed else 1


@cli.command()
@click.argument("results_path", metavar="RESULTS", type=click.Path())
@click.option(
    "--html",
    "html_path",
    required=True,
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Write the self-contained HTML report here.",
)
@click.option(
    "--scenario",
    "scenario_paths",
    multiple=True,
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Scenario file(s) the results came from (repeatable): describes them and re-simulates "
    "run 0's timeline from its stored seed.",
)
@click.option(
    "--policy",
    "policy_paths",
    multiple=True,
    type=click.Path(),
    metavar="PATH",
    help="The policy the results ran under, when not the scenario's own (repeatable: files combine).",
)
@click.option("--title", default=None, help="Page title. Default: from RESULTS.")
def report(
    results_path: str, html_path: str, scenario_paths: tuple[str, ...], policy_paths: tuple[str, ...], title: str | None
) -> None:
    """Write an HTML report (summary with intervals, figures, reproducing command) of stored
    results: a directory of Parquet chunks (pdsim run --out DIR), a .parquet or a .csv file."""
    import shlex

    from sim.report.html import render_report, write_report
    from sim.report.results import incomplete_folders, overview_figures, read_results, results_sections

    _refuse_overwrite("--html", html_path, [results_path, *scenario_paths, *policy_paths])
    frame = read_results(results_path)
    incomplete = incomplete_folders(results_path)
    for line in incomplete:
        click.echo(one_line(f"pdsim: {line}"), err=True)
    sections = results_sections(frame, scenario_files=scenario_paths, policy_paths=policy_paths)
    figures = overview_figures(frame)
    argv = ["pdsim", "report", results_path, "--html", html_path]
    argv += [a for p in scenario_paths for a in ("--scenario", p)]
    argv += [a for p in policy_paths for a in ("--policy", p)]
    groups = frame.groupby(["scenario", "policy"]).ngroups
    intro = (
        f"{len(frame):,} simulated rollouts read from {results_path}: {groups} scenario/policy "
        f"group{'s' if groups != 1 else ''}."
    )
    html = render_report(
        sections,
        title=title or f"pdsim report: {Path(results_path).name}",
        command=shlex.join(argv),
        figures=figures,
        intro=intro,
        notice=" ".join(f"{line}." for line in incomplete),
    )
    _write_output(html_path, "--html", lambda p: write_report(p, html))
    click.echo(f"{html_path}: {len(sections)} section(s), {len(figures)} figure(s)")


@cli.command()
@click.argument("sweep_path", metavar="SWEEP.yaml", type=click.Path(dir_okay=False))
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="Results folder: manifest.json, one records-*.parquet per finished chunk, summary.json.",
)
@click.option(
    "--runs", type=_RunCount(), help=f"Replicates per cell (at most {MAX_RUNS:,}). Default: the sweep file's `runs`."
)
@_pool_options
@click.option("--resume", is_flag=True, help="Finish the sweep already in DIR (the same sweep file only).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object on stdout.")
@click.option(
    "--ceiling",
    type=click.FloatRange(0, 1),
    default=0.05,
    show_default=True,
    help="False-rollback ceiling of the Pareto frontier.",
)
@click.option("--chunk-size", type=click.IntRange(min=1), hidden=True, help="Replicates per chunk file.")
def sweep(
    sweep_path: str,
    out_dir: str,
    runs: int | None,
    workers: int,
    dask_address: str | None,
    resume: bool,
    quiet: bool,
    as_json: bool,
    ceiling: float,
    chunk_size: int | None,
) -> None:
    """Simulate a sweep (policies x scenario fields x releases) into DIR, resumably."""
    import shlex

    from sim.runs.store import ResultsError, WriteFailed, finished_chunks
    from sim.sweeps.costs import format_costs, summarize_sweep
    from sim.sweeps.execute import run_sweep
    from sim.sweeps.plan import expand
    from sim.sweeps.spec import load_sweep

    spec = load_sweep(sweep_path)
    plan = expand(spec, runs=runs, chunk_size=chunk_size)
    _warn(plan.warnings)
    _refuse_overwrite("--out", out_dir, [sweep_path, *plan.inputs], writes=_writes_sweep_results)
    client = None
    if dask_address is not None:
        client = _dask_client(dask_address)
    resume_argv = ["pdsim", "sweep", sweep_path, "--out", out_dir, "--resume"]
    resume_argv += [f"--runs={runs}"] * (runs is not None) + [f"--chunk-size={chunk_size}"] * (chunk_size is not None)
    resume_argv += [f"--workers={workers}"] * (workers != 1)
    _on_interrupt(
        lambda: (
            f"{len(finished_chunks(Path(out_dir)))} finished chunk(s) kept in {out_dir}; "
            f"resume with {shlex.join(resume_argv)}"
        )
    )
    bar = _progress_bar(plan.rollouts, disable=quiet)
    try:
        result = run_sweep(spec, out_dir, plan=plan, workers=workers, dask=client, resume=resume, progress=bar.update)
    except WriteFailed as err:
        kept = len(finished_chunks(Path(out_dir)))
        raise CliError(f"{err}; {kept} finished chunk(s) are intact, resume with {shlex.join(resume_argv)}") from None
    except ResultsError as err:
        raise CliError(str(err)) from None
    finally:
        bar.close()
        if client is not None:
            client.close()
    summary = summarize_sweep(out_dir, ceiling=ceiling, seed=plan.seed)
    _write_output(
        str(Path(out_dir) / "summary.json"), "summary", lambda p: _write_text(p, _dumps(summary, indent=2) + "\n")
    )
    if as_json:
        click.echo(_dumps(summary))
        return
    click.echo(f"sweep: {plan.name}  cells: {len(plan.cells)}  runs/cell: {plan.runs}  seed: {plan.seed}")
    click.echo(
        f"rollouts: {plan.rollouts:,} ({result.rollouts_run:,} simulated now, "
        f"{plan.rollouts - result.rollouts_run:,} already in {out_dir})"
    )
    click.echo("")
    click.echo(format_costs(summary))
    click.echo("")
    click.echo(
        f"results: {out_dir} (manifest.json, {plan.n_chunks} chunk files, summary.json); "
        "read them with sim.load_results(DIR)"
    )


def _estimate_text(est: Mapping[str, Any]) -> str:
    """``45.3 [34.1, 56.5]`` from an estimate's JSON (``value``, ``low``, ``high``)."""

    def num(x: Any) -> str:
        return "n/a" if x is None else f"{x:.4g}"

    return f"{num(est.get('value'))} [{num(est.get('low'))}, {num(est.get('high'))}]"


def _tune_summary(result: Any, out_dir: str, confidence: float) -> list[str]:
    """The lines ``pdsim tune`` prints at the end: frontier, recommendation, fresh seeds."""
    from sim.tuning.outputs import BEST_MANIFEST, BEST_POLICY, CANDIDATES, FRONTIER, REPORT, TUNE_JSON, VALIDATION

    state = result.state
    tune = state.tune
    level = f"{confidence:.0%}"
    lines = [
        f"tune: {tune.name}  candidates: {len(state.candidates)} (budget {state.budget})  "
        f"runs/scenario by rung: {', '.join(map(str, state.rungs))}  seed: {state.seed}",
        f"frontier: {len(result.frontier)} policy(ies) at the last rung meet every constraint at the "
        f"{level} pessimistic bound and are dominated by none",
    ]
    if state.best is None:
        lines.append("recommendation: none (no candidate met every constraint); see candidates.parquet")
    else:
        best = state.candidate(state.best)
        shown = "the base policy itself" if best.id < 0 else f"#{best.id} {best.label}"
        lines.append(f"recommendation ({tune.spec.pick}): {shown}")
        lines.append(f"  search seeds, {state.rungs[-1]} runs/scenario ({level} intervals):")
        for m, v in result.validation["search"].items():
            lines.append(f"    {m}: best {_estimate_text(v['best'])}  base {_estimate_text(v['base'])}")
        lines.append(f"  fresh seeds, {result.validation['runs']} runs/scenario, paired with the base:")
        for m, v in result.validation["fresh"].items():
            lines.append(
                f"    {m}: best {_estimate_text(v['best'])}  base {_estimate_text(v['base'])}  "
                f"best/base {_estimate_text(v['ratio'])}"
            )
        for m, ok in result.validation["constraints_ok"].items():
            bound = next(c.bound for c in tune.constraints if c.name == m)
            said = ", ".join(f"{k} {x:g}" for k, x in bound.items())
            lines.append(f"    constraint {m} ({said}) on fresh seeds: {'met' if ok else 'NOT met'}")
    written = (TUNE_JSON, CANDIDATES, FRONTIER, VALIDATION, BEST_POLICY, BEST_MANIFEST, REPORT)
    lines.append(f"outputs: {out_dir} ({', '.join(n for n in written if (Path(out_dir) / n).is_file())})")
    lines += [f"note: {n}" for n in result.notes]
    return lines


@cli.command("tune")
@click.argument("tune_path", metavar="TUNE.yaml", type=click.Path(dir_okay=False))
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="Output folder: tune.json, candidates.parquet, frontier.parquet, validation.json, "
    "best-policy.yaml, report.html, and the study and runs --resume continues from.",
)
@click.option("--budget", type=click.IntRange(min=1), help="Candidate policies to try. Default: the file's `budget`.")
@click.option(
    "--time",
    "time_limit",
    metavar="DURATION",
    help="Stop asking new candidates after this long (e.g. 10m); racing finishes with those tried.",
)
@_pool_options
@click.option("--resume", is_flag=True, help="Continue the search already in DIR (the same TUNE file and seed).")
@click.option("--seed", type=_Seed(), help=f"Root seed, 0 to {SEED_LIMIT}. Default: the file's `seed`.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def tune_(
    tune_path: str,
    out_dir: str,
    budget: int | None,
    time_limit: str | None,
    workers: int,
    dask_address: str | None,
    resume: bool,
    seed: int | None,
    quiet: bool,
) -> int:
    """Search for the best policy for a portfolio of releases under constraints.

    Candidates from TUNE.yaml's space are simulated on common random numbers and raced
    (successive halving); the frontier's recommendation is checked on fresh seeds against
    the base policy. Exit 1 when no candidate meets every constraint, or when the
    recommendation breaks one on fresh seeds.
    """
    import shlex

    from sim.tuning.api import tune
    from sim.tuning.outputs import NAMES
    from sim.tuning.search import RUNS, SearchError
    from sim.tuning.spec import MAX_BUDGET, load_tune
    from sim.units import parse_duration

    time_s = None
    if time_limit is not None:
        try:
            time_s = parse_duration(time_limit)
        except ValueError as err:
            raise CliError(f"--time: {err} (got {time_limit})") from None
    if budget is not None and budget > MAX_BUDGET:
        raise CliError(f"--budget: at most {MAX_BUDGET:,} candidates (got {budget})")
    spec = load_tune(tune_path)
    inputs = [tune_path, *spec.base.sources, *(e.path for e in spec.portfolio.entries)]
    inputs += [e.path for e in spec.validation.entries]
    _refuse_overwrite("--out", out_dir, inputs, writes=lambda name: name in NAMES)
    client = None
    if dask_address is not None:
        client = _dask_client(dask_address)
    resume_argv = ["pdsim", "tune", tune_path, "--out", out_dir, "--resume"]
    resume_argv += [f"--budget={budget}"] * (budget is not None) + [f"--seed={seed}"] * (seed is not None)
    resume_argv += [f"--workers={workers}"] * (workers != 1)

    def kept() -> str:
        runs = Path(out_dir) / RUNS
        n = sum(1 for p in runs.iterdir() if p.suffix == ".parquet") if runs.is_dir() else 0
        return f"the study and {n} simulated piece(s) kept in {out_dir}; resume with {shlex.join(resume_argv)}"

    _on_interrupt(kept)
    bar = _progress_bar(0, disable=quiet)

    def progress(p: Any) -> None:
        bar.total = p.total
        bar.update(p.done - bar.n)
        bar.set_description_str(f"{p.stage} {p.candidates}/{p.budget}", refresh=False)
        if p.best:
            bar.set_postfix_str(f"best {p.best}", refresh=False)

    try:
        result = tune(
            spec,
            out_dir,
            budget=budget,
            time_s=time_s,
            workers=workers,
            dask=client,
            resume=resume,
            seed=seed,
            progress=progress,
        )
    except SearchError as err:
        raise CliError(str(err)) from None
    finally:
        bar.close()
        if client is not None:
            client.close()
    for line in _tune_summary(result, out_dir, spec.spec.confidence):
        click.echo(line)
    # Exit 1, as a failed gate does: no recommendation, or one whose constraints do not hold
    # on releases and seeds the search never saw (CI should not adopt it unread).
    broken = [m for m, ok in result.validation.get("constraints_ok", {}).items() if not ok]
    if result.best is None or broken:
        return 1
    return 0


@cli.command()
@click.argument("scenario_path", metavar="SCENARIO.yaml", type=click.Path(dir_okay=False))
@click.argument("policy_a", metavar="POLICY_A", type=click.Path())
@click.argument("policy_b", metavar="POLICY_B", type=click.Path())
@click.option("--runs", type=_RunCount(2), help=f"Runs of each policy (2 to {MAX_RUNS:,}). {_RUNS_DEFAULT}")
@click.option("--seed", type=_Seed(), help=_SEED_HELP)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Worker processes; results are identical for any count.",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as one JSON object on stdout.")
def compare(
    scenario_path: str,
    policy_a: str,
    policy_b: str,
    runs: int | None,
    seed: int | None,
    workers: int,
    quiet: bool,
    as_json: bool,
) -> None:
    """Policy A against policy B on the same runs of SCENARIO.yaml (common random numbers).

    Run k of both policies meets the same traffic and faults, so differences are paired:
    rates with McNemar's exact test, every difference with a paired-bootstrap interval.
    """
    from sim.inputs.policy import load_policy_with_warnings
    from sim.inputs.scenario import load_scenario
    from sim.runs.runner import run_frames
    from sim.sweeps.costs import format_comparison, paired_comparison

    scenario = load_scenario(scenario_path)
    policies = []
    for path in (policy_a, policy_b):
        policy, warnings = load_policy_with_warnings([path])
        _warn(warnings)
        policies.append(policy)
    runs = scenario.runs if runs is None else runs
    seed = scenario.seed if seed is None else seed
    bar = _progress_bar(2 * runs, disable=quiet)
    try:
        frames = run_frames(scenario, policies, runs, seed, workers=workers, progress=bar.update)
    finally:
        bar.close()
    cmp = paired_comparison(frames[0], frames[1], seed=seed)
    if as_json:
        click.echo(
            _dumps(
                {
                    "scenario": scenario.name,
                    "policy_a": policies[0].name,
                    "policy_b": policies[1].name,
                    "runs": runs,
                    "seed": seed,
                    **cmp,
                }
            )
        )
        return
    click.echo(f"scenario: {scenario.name}  runs: {runs}  seed: {seed}")
    click.echo(format_comparison(cmp, policies[0].name, policies[1].name))


# --- plan-ab ---------------------------------------------------------------------------------

_OPEN_UNIT = click.FloatRange(0, 1, min_open=True, max_open=True)


class _Lift(click.ParamType):
    """``--lift``: a nonzero relative change, ``0.02`` or ``2%`` (a usage error otherwise)."""

    name = "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        text = str(value).strip()
        try:
            lift = float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
        except ValueError:
            lift = math.nan
        if not math.isfinite(lift) or lift == 0 or lift <= -1:
            self.fail(f"must be a nonzero relative change above -1, e.g. 0.02 or 2% (got {value})", param, ctx)
        return lift


def _mean_request_rate(scenario: Any) -> float:
    """The scenario's mean request rate over its horizon, from the base shape (bursts left out):
    ``constant``; ``diurnal``'s mean; ``steps`` weighted by how long each lasts in the horizon."""
    rate = scenario.traffic.rate
    if rate.constant is not None:
        return float(rate.constant)
    if rate.diurnal is not None:
        return float(rate.diurnal.mean)
    horizon = float(scenario.horizon)
    steps = [s for s in rate.steps if s.at < horizon]
    ends = [s.at for s in steps[1:]] + [horizon]
    return sum(s.rate * (end - s.at) for s, end in zip(steps, ends)) / horizon


def _pct(x: float) -> str:
    return f"{x * 100:+.3g}%"


@cli.command("plan-ab")
@click.option("--rate", type=_OPEN_UNIT, required=True, help="The control's conversion rate per session, e.g. 0.03.")
@click.option("--lift", type=_Lift(), required=True, help="Relative lift to detect: 0.02 or 2% (negative works).")
@click.option("--power", type=_OPEN_UNIT, default=0.8, show_default=True, help="Power at that lift.")
@click.option("--alpha", type=_OPEN_UNIT, default=0.05, show_default=True, help="Two-sided significance level.")
@click.option(
    "--split",
    type=click.FloatRange(0, 100, min_open=True, max_open=True),
    default=50.0,
    show_default=True,
    help="Percent of sessions on the candidate.",
)
@click.option("--sessions-per-day", type=click.FloatRange(0, min_open=True), help="Sessions a day in the experiment.")
@click.option(
    "--scenario",
    "scenario_path",
    metavar="SCENARIO.yaml",
    type=click.Path(dir_okay=False),
    help="Take the traffic from a scenario: its mean request rate and users.",
)
@click.option(
    "--requests-per-session",
    type=click.FloatRange(0, min_open=True),
    default=1.0,
    show_default=True,
    help="With --scenario: requests per session.",
)
@click.option(
    "--metric",
    type=click.Choice(["conversion", "order_value"]),
    default="conversion",
    show_default=True,
    help="conversion: a difference in rates; order_value: in revenue per session.",
)
@click.option("--median", type=click.FloatRange(0, min_open=True), help="order_value: median order value.")
@click.option("--sigma", type=click.FloatRange(0), help="order_value: log-sd of the lognormal order value.")
@click.option(
    "--method",
    type=click.Choice(["pooled", "unpooled", "arcsine"]),
    default="pooled",
    show_default=True,
    help="conversion: the variance (pooled under H0 and unpooled under H1; unpooled; Cohen's arcsine).",
)
@click.option("--days", type=click.FloatRange(0, min_open=True), help="Also: what this duration detects.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def plan_ab(
    rate: float,
    lift: float,
    power: float,
    alpha: float,
    split: float,
    sessions_per_day: float | None,
    scenario_path: str | None,
    requests_per_session: float,
    metric: str,
    median: float | None,
    sigma: float | None,
    method: str,
    days: float | None,
    as_json: bool,
) -> None:
    """How many sessions, and how many days, a fixed-horizon A/B test needs.

    Two-sided two-sample z-test (normal approximation): conversion rates with Fleiss, Levin &
    Paik (2003) eq. 4.14 (pooled variance under H0, unpooled under H1), or revenue per session
    (a lognormal order value per conversion) with a common sd. Sequential (anytime-valid)
    tests need more sessions and are not planned here.
    """
    from sim.policies.experiment import plan

    if sessions_per_day is not None and scenario_path is not None:
        raise click.UsageError("give --sessions-per-day or --scenario, not both")
    if days is not None and sessions_per_day is None and scenario_path is None:
        raise click.UsageError("--days needs the traffic: give --sessions-per-day or --scenario")
    if metric == "order_value" and (median is None or sigma is None):
        raise click.UsageError("--metric order_value needs --median and --sigma")
    users = None
    if scenario_path is not None:
        from sim.inputs.scenario import load_scenario

        scenario = load_scenario(scenario_path)
        users = scenario.traffic.users
        sessions_per_day = plan.sessions_per_day(_mean_request_rate(scenario), requests_per_session)
    ratio = plan.ratio_from_split(split)
    lifts = [lift * f for f in (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)]
    try:
        if metric == "conversion":
            sample = plan.proportion_sample_size(rate, lift, alpha=alpha, power=power, ratio=ratio, method=method)  # type: ignore[arg-type]

            def power_at(x: float, n: float) -> float:
                return plan.proportion_power(rate, x, n, alpha=alpha, ratio=ratio, method=method)  # type: ignore[arg-type]

            def mde_at(n: float) -> float:
                return plan.proportion_mde(rate, n, alpha=alpha, power=power, ratio=ratio, method=method)  # type: ignore[arg-type]

            lifts = [x for x in lifts if 0 < rate * (1 + x) < 1]
            mean = sd = None
            test = {
                "pooled": "pooled variance under H0, unpooled under H1 (Fleiss, Levin & Paik 2003, eq. 4.14)",
                "unpooled": "unpooled variance under H1 on both sides (Chow, Shao & Wang 2008, 4.2.1)",
                "arcsine": "Cohen's arcsine effect size h (Cohen 1988, 6.2)",
            }[method]
        else:
            assert median is not None and sigma is not None
            mean, sd = plan.revenue_per_session(rate, median, sigma)
            sample = plan.mean_sample_size(mean, sd, lift, alpha=alpha, power=power, ratio=ratio)

            def power_at(x: float, n: float) -> float:
                return plan.mean_power(mean, sd, x, n, alpha=alpha, ratio=ratio)

            def mde_at(n: float) -> float:
                return plan.mean_mde(mean, sd, n, alpha=alpha, power=power, ratio=ratio)

            test = "difference in means, common sd (Chow, Shao & Wang 2008, 3.2.1)"
    except ValueError as err:
        raise CliError(str(err)) from None
    control, candidate = sample.rounded()
    planned = sample.control
    need_days = None if sessions_per_day is None else plan.days_needed(sample, sessions_per_day, split)
    curve = [{"lift": x, "power": power_at(x, planned)} for x in lifts]
    at_days = None
    if days is not None and sessions_per_day is not None:
        n_days = days * sessions_per_day * (1 - split / 100)
        at_days = {
            "days": days,
            "control": n_days,
            "candidate": n_days * ratio,
            "power": power_at(lift, n_days),
            "mde": mde_at(n_days),
        }
        for row in curve:
            row["power_at_days"] = power_at(row["lift"], n_days)
    result = {
        "metric": metric,
        "rate": rate,
        "lift": lift,
        "alpha": alpha,
        "power": power,
        "split": split,
        "ratio": ratio,
        "method": method if metric == "conversion" else "z-means",
        "test": test,
        "mean_per_session": mean,
        "sd_per_session": sd,
        "sessions": {"control": control, "candidate": candidate, "total": control + candidate},
        "sessions_per_day": sessions_per_day,
        "users": users,
        "days": need_days,
        "power_curve": curve,
        "at_days": at_days,
    }
    if as_json:
        click.echo(_dumps(result))
        return
    if metric == "conversion":
        what = f"conversion {rate:.4g} per session, lift {_pct(lift)} (to {rate * (1 + lift):.4g})"
    else:
        what = f"revenue per session: mean {mean:.4g}, sd {sd:.4g}; lift {_pct(lift)}"
    click.echo(f"{what}; two-sided alpha {alpha:g}, power {power:g}, {split:g}% on the candidate")
    click.echo(f"test: two-sample z-test, {test}")
    click.echo(f"sessions: {control:,} control + {candidate:,} candidate = {control + candidate:,}")
    if need_days is not None and sessions_per_day is not None:
        source = "" if scenario_path is None else f" ({requests_per_session:g} requests per session)"
        click.echo(f"traffic: {sessions_per_day:,.0f} sessions/day{source}: {need_days:.1f} days")
        if users is not None and users < control + candidate:
            click.echo(
                f"note: the scenario has {users:,} users, {(control + candidate) / users:.1f} sessions each; "
                "sessions of one user are correlated, which this per-session test ignores"
            )
    header = "  lift      power"
    if at_days is not None:
        header += f"   at {days:g} days"
    click.echo("power by lift (at the planned sample):")
    click.echo(header)
    for row in curve:
        line = f"  {_pct(row['lift']):>7}   {row['power']:.3f}"
        if at_days is not None:
            line += f"   {row['power_at_days']:.3f}"
        click.echo(line)
    if at_days is not None:
        click.echo(
            f"at {days:g} days: {at_days['control'] + at_days['candidate']:,.0f} sessions; "
            f"power {at_days['power']:.3f} at {_pct(lift)}; detects {_pct(at_days['mde'])} with power {power:g}"
        )
    click.echo("analyse once at the planned sample: peeking at this test inflates false winners")


def _instant(text: str, epoch_s: float) -> float:
    """``--at``: a unix time (``1767225900``), an RFC 3339 time or a duration after the epoch."""
    import datetime

    from sim.units import parse_duration

    try:
        return float(text) if math.isfinite(float(text)) else math.nan
    except ValueError:
        pass
    try:
        moment = datetime.datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        moment = None
    if moment is not None and "T" in text.upper():
        if moment.tzinfo is None:
            raise CliError(f"--at: an RFC 3339 time needs its zone, e.g. Z (got {text})")
        return moment.timestamp()
    try:
        return epoch_s + parse_duration(text)
    except ValueError:
        pass
    raise CliError(f"--at: not a unix time, an RFC 3339 time or a duration after the epoch like 5m (got {text})")


@cli.command()
@click.argument("exports", nargs=-1, required=True, type=click.Path(dir_okay=False), metavar="EXPORT...")
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(dir_okay=False),
    metavar="SCENARIO.yaml",
    help="Write the calibrated scenario here.",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False),
    metavar="FILE.html",
    help="Simulate the scenario as a stable service for the recording's span and write recorded against simulated.",
)
@click.option("--seed", type=_Seed(), default=0, show_default=True, help="Seed of the simulated run of --report.")
@click.option("--name", default=None, help="The scenario's name. Default: calibrated-<first export's name>.")
def calibrate(exports: tuple[str, ...], output: str, report_path: str | None, seed: int, name: str | None) -> None:
    """Fit a scenario to a stable service's recorded Prometheus series.

    EXPORT... are Prometheus /api/v1/query_range JSON responses (resultType matrix) of the
    raw counters (istio_requests_total with response_code and pod labels, and
    istio_request_duration_milliseconds_bucket), or CSV with columns
    timestamp,metric,value; several files merge (one per query).
    """
    from sim.calibrate.recording import read_recording
    from sim.calibrate.scenario_out import calibrate_recording, scenario_of, scenario_yaml

    _refuse_overwrite("-o", output, exports)
    if report_path is not None:
        _refuse_overwrite("--report", report_path, [*exports, output])
    recording = read_recording(exports)
    if report_path is not None:
        from sim.calibrate.compare import SIMULATED_PROVIDERS

        if recording.provider not in SIMULATED_PROVIDERS:
            raise CliError(
                f"--report: simulating the {recording.provider} exporter's series is not supported yet "
                f"(only {', '.join(SIMULATED_PROVIDERS)}); calibrate without --report"
            )
    cal = calibrate_recording(recording)
    stem = Path(exports[0]).stem
    text = scenario_yaml(cal, name or f"calibrated-{stem}")
    scenario = scenario_of(text, output)  # what is written loads as it is
    _write_output(output, "-o", lambda p: _write_text(p, text))
    if report_path is None:
        return
    from sim.calibrate.compare import between_runs, compare, simulate_stable
    from sim.calibrate.report import render_calibration
    from sim.report.html import write_report

    simulated = simulate_stable(scenario, recording.provider, recording.duration_s, seed)
    html = render_calibration(
        recording,
        simulated,
        compare(recording, simulated, seed, between_runs(scenario)),
        title=f"Calibration of {scenario.name}",
        scenario_text=text,
        command=" ".join(["pdsim calibrate", *exports, "-o", output, "--report", report_path]),
    )
    _write_output(report_path, "--report", lambda p: write_report(p, html))


@cli.command()
@click.argument("series_path", metavar="FILE", type=click.Path(dir_okay=False))
@click.argument("expr", metavar="EXPR")
@click.option(
    "--at",
    "at",
    required=True,
    metavar="T",
    help="When to evaluate: a unix time (1767225900), an RFC 3339 time (2026-01-01T00:05:00Z) "
    "or a duration after --epoch (5m).",
)
@click.option(
    "--lookback",
    default="5m",
    show_default=True,
    metavar="DURATION",
    help="How far back an instant selector looks for a sample (Prometheus's --query.lookback-delta).",
)
@click.option(
    "--epoch",
    "epoch_s",
    type=float,
    default=SERIES_EPOCH_S,
    show_default=True,
    metavar="UNIX",
    help="The unix time of the series' t = 0, for --at given as a duration (2026-01-01T00:00:00Z).",
)
def query(series_path: str, expr: str, at: str, lookback: str, epoch_s: float) -> None:
    """Evaluate the PromQL EXPR over the series of FILE at one instant.

    FILE is OpenMetrics text with timestamps (what `pdsim run --series` writes) or a
    Prometheus /api/v1/query_range JSON response, told apart by content. Prints the
    result as Prometheus's /api/v1/query returns it in `data`: resultType and result.
    """
    import numpy as np

    from sim.promql import PromQLError, compile_query
    from sim.promql.openmetrics import query_data, read_series
    from sim.units import parse_duration

    if not math.isfinite(epoch_s):
        raise CliError(f"--epoch: not a unix time (got {epoch_s})")
    t_s = _instant(at, epoch_s)
    if not math.isfinite(t_s):
        raise CliError(f"--at: not a time (got {at})")
    try:
        lookback_s = parse_duration(lookback)
    except ValueError as err:
        raise CliError(f"--lookback: {err} (got {lookback})") from None
    if lookback_s <= 0:
        raise CliError(f"--lookback: must be positive (got {lookback})")
    try:
        compiled = compile_query(expr)
    except PromQLError as err:
        raise CliError(f"EXPR: {err}") from None
    batch = read_series(series_path)
    # A file holds what Prometheus ingested: no ingestion cutoff (`@` and negative offsets
    # may read samples after --at, as Prometheus can).
    result = compiled.evaluate(batch, np.array([0]), t_s, lookback_s=lookback_s, ingested_until_s=math.inf)
    if result.error is not None and bool(result.error[0]):
        raise CliError(f"EXPR: evaluation failed: {result.message}")
    click.echo(_dumps(query_data(result, 0, t_s)))


#: Python's own report of an exception that ends a thread (``_Exit.thread_failed`` defers to it).
_THREAD_HOOK = threading.excepthook
#: Python's own report of an exception it cannot raise (``_Exit.unraisable`` defers to it).
_UNRAISABLE_HOOK = sys.unraisablehook
#: How long ``_Exit.unraisable`` waits before delivering a dropped Ctrl-C again: the main
#: thread has long left the callback by then.
_REDELIVER_AFTER_S = 0.1


class _Exit:
    """How ``main`` ends the process once the command is done (see ``main``)."""

    def __init__(self) -> None:
        self.code = 130
        self.interrupted = False
        #: Ctrl-C reached the command (not only after it): see ``during_command``.
        self.interrupting = False
        #: The command has taken an interrupt (``_CliGroup._interrupted``): see ``_redeliver``.
        self.taken = _INTERRUPT_TAKEN

    def on_sigint_in_command(self, signum: int, frame: Any) -> None:
        """Ctrl-C while the command runs: remember it, then interrupt as Python does."""
        self.interrupting = True
        signal.default_int_handler(signum, frame)

    def thread_failed(self, args: threading.ExceptHookArgs) -> None:
        """An exception that ends a helper thread: dropped once Ctrl-C has interrupted the command.

        Stopping mid-task, loky's and joblib's threads (the executor manager, the queue
        feeder) may fail on the queues their workers no longer serve, and Python prints each
        such failure as a traceback on stderr, after the one-line interrupt report (seen
        under load with ``--workers 2``). Before an interrupt, failures print as usual.
        """
        if not self.interrupting:
            _THREAD_HOOK(args)

    def unraisable(self, args: Any) -> None:
        """An exception Python cannot raise where it happened (a ctypes callback, ``__del__``).

        A Ctrl-C that lands in such a place, as in the callback by which numba's LLVM binding
        hands compiled code to its cache (llvmlite ``_raw_object_cache_notify``), would be
        printed as a traceback and then dropped: the command would go on. It is not printed,
        and a moment later it is delivered again to the main thread (``_redeliver``), where it
        interrupts the command as any Ctrl-C does. Once the command is interrupted, other such
        failures (loky's and joblib's objects finalised mid-task) are dropped, as
        ``thread_failed`` drops theirs.
        """
        if not isinstance(args.exc_value, KeyboardInterrupt):
            if not self.interrupting:
                _UNRAISABLE_HOOK(args)
            return
        try:
            # Not from here: the main thread is still inside the callback or this hook, where
            # the interrupt would be lost again.
            threading.Timer(_REDELIVER_AFTER_S, self._redeliver).start()
        except KeyboardInterrupt:  # another Ctrl-C while the timer started: that one goes on
            pass

    def _redeliver(self) -> None:
        """Ctrl-C again for a dropped KeyboardInterrupt, unless the command is already
        stopping: an interrupt it takes in another way (a second Ctrl-C, a compiled call that
        reports it) must not be doubled while its clean-up runs."""
        if self.taken.is_set():
            return
        current: Any = sys._current_exceptions().get(threading.main_thread().ident or 0)
        # Python < 3.12 gives sys.exc_info()'s triple, later versions the exception
        handling = current[1] if isinstance(current, tuple) else current
        if handling is not None and _caused_by_interrupt(handling):
            return
        _thread.interrupt_main(signal.SIGINT)

    def on_sigint(self, signum: int, frame: Any) -> None:
        """Ctrl-C after the command: let the exit handlers finish, then exit 130.

        Python's exit handlers still run then (loky's joins its threads and stops its
        workers, joblib's removes its temporary folders); a KeyboardInterrupt inside them
        prints a traceback and leaks what they clean (issue 13 item 12). A second Ctrl-C
        leaves at once: the workers notice their parent is gone and end themselves
        (``sim.runs.runner.parallel_results``).
        """
        if self.interrupted:
            self.leave()
        self.interrupted = True

    def leave(self) -> None:
        """Flush, say ``pdsim: interrupted`` if Ctrl-C came after the command, and exit.

        Registered as the first exit handler, so it runs after all the others, and ends
        the process before Python restores the default SIGINT action (which would kill
        it silently).
        """
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe: nothing more to say on it
                pass
        if self.interrupted:
            os.write(2, b"pdsim: interrupted\n")
        os._exit(130 if self.interrupted else self.code)


#: The folders of the modules with compiled (numba, ``cache=True``) kernels: numba caches
#: each kernel in the ``__pycache__`` beside its module when it can write there.
_KERNEL_FOLDERS = ("promql", "runs", "world")


def _writable_folder(path: Path) -> bool:
    """Whether ``path`` exists or can be made, and a file can be written in it (the test
    numba's cache locators make)."""
    import tempfile

    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError:
        return False
    return True


def _private_folder(path: Path) -> bool:
    """Whether ``path`` is (or is now made) a folder of this user's that nobody else can write:
    numba's cache holds machine code, which a planted file would run."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.lstat()
    except OSError:
        return False
    import stat

    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o022


def _numba_cache_folder(package: Path) -> Path | None:
    """Where compiled kernels should be cached when numba could not cache them itself, or None.

    numba caches a kernel in its module's ``__pycache__``, else in the user's cache folder
    (``$XDG_CACHE_HOME/numba``, ``~/.cache/numba``); with neither writable (a read-only
    install and a read-only home, as in some containers) it refuses to load the module, and
    every simulating command would fail. Then a private folder in the temporary folder is
    used (kept across runs while the system keeps it).

    Args:
        package: the folder of the ``sim`` package.
    """
    if os.environ.get("NUMBA_CACHE_DIR") or all(_writable_folder(package / d / "__pycache__") for d in _KERNEL_FOLDERS):
        return None
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if os.path.isabs(home) and _writable_folder(Path(home) / "numba"):
        return None  # numba's own fallback (numba.misc.appdirs.user_cache_dir on Linux)
    import tempfile

    shared = Path(tempfile.gettempdir()) / f"pdsim-numba-{os.getuid()}"
    return shared if _private_folder(shared) else Path(tempfile.mkdtemp(prefix="pdsim-numba-"))


#: The cyclic collector's thresholds the ``pdsim`` command runs with (``gc.set_threshold``):
#: a young generation of 100,000 objects instead of 700 (the older generations' factors
#: kept). Nothing in a command depends on when cycles are freed; at most this many
#: container objects of cyclic garbage wait for the next pass (tens of MB at most). The world's
#: batches pause the collector anyway (``sim.world.controller``).
STARTUP_GC_THRESHOLDS = (100_000, 10, 10)


def main(argv: list[str] | None = None) -> NoReturn:
    """Console-script entry point (``pdsim``)."""
    import atexit

    # Before anything imports numba (which reads NUMBA_CACHE_DIR once); worker processes
    # inherit the environment.
    cache = _numba_cache_folder(Path(__file__).parent)
    if cache is not None:
        os.environ["NUMBA_CACHE_DIR"] = str(cache)

    # Start-up creates a few hundred thousand objects that live as long as the process
    # (modules, classes, pydantic's validators, numba's registries) and almost no garbage:
    # with the default first threshold (700) the cyclic collector ran ~300 times during a
    # `pdsim run --runs 1`, three of them full passes over everything, for nothing.
    gc.set_threshold(*STARTUP_GC_THRESHOLDS)

    # After a Ctrl-C, loky's resource tracker (a process of its own, started with this
    # environment) warns on the shared stderr about the semaphores it then cleans up: noise
    # that would break the one-line report of the interrupt.
    quiet = "ignore:resource_tracker:UserWarning"
    os.environ["PYTHONWARNINGS"] = ",".join(filter(None, (os.environ.get("PYTHONWARNINGS"), quiet)))

    end = _Exit()
    atexit.register(end.leave)
    threading.excepthook = end.thread_failed
    sys.unraisablehook = end.unraisable
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is (
        signal.default_int_handler
    ):  # not when started with Ctrl-C ignored (a background job): it stays ignored
        signal.signal(signal.SIGINT, end.on_sigint_in_command)
    try:
        end.code = cli.main(args=argv, prog_name="pdsim", standalone_mode=False)
    except KeyboardInterrupt:  # while the command's own interrupt was being reported
        click.echo("pdsim: interrupted", err=True)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, end.on_sigint)
    sys.exit(end.code)


__all__ = ["cli", "main", "CliError"]
