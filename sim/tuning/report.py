"""The page of a search (``DIR/report.html``): what was searched, the frontier, the
recommendation against the base policy on fresh seeds, and how sensitive each objective is
to each parameter.

Built from the files of the output folder only (``tune.json``, ``candidates.parquet``,
``frontier.parquet``, ``validation.json``; docs/architecture.md and issue 18 give their
contract), so a page can be rebuilt from a copied folder, and a search stopped early (no
``validation.json`` yet, status ``running``) still gets a page that says so. The page is the
report machinery's: one self-contained file (inline CSS, figures as base64 PNG, no scripts),
rendered by ``sim.report.html.template_env`` with autoescaping (names and paths are user
input), written atomically.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.errors import InputError
from sim.report import html as page
from sim.report.palette import OKABE_ITO
from sim.tuning.sensitivity import choice_order, choice_text, sensitivity
from sim.units import format_duration

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

__all__ = ["write_report", "render_tune_report", "TuneFolder", "read_folder"]

#: Colours of the candidate groups in every figure of the page.
INFEASIBLE, FEASIBLE, FRONTIER = "#9a9a9a", OKABE_ITO["blue"], OKABE_ITO["orange"]
BASE, BEST = OKABE_ITO["black"], OKABE_ITO["vermillion"]


@dataclass
class TuneFolder:
    """The files of a search's output folder, read.

    Attributes:
        path: the folder.
        meta: ``tune.json``.
        candidates: ``candidates.parquet`` (None: not written yet).
        frontier: ``frontier.parquet`` (None: not written yet).
        validation: ``validation.json`` (None: the search stopped before the fresh-seed check).
    """

    path: Path
    meta: dict[str, Any]
    candidates: pd.DataFrame | None = None
    frontier: pd.DataFrame | None = None
    validation: dict[str, Any] | None = None


def _json(path: Path, *, required: bool) -> dict[str, Any] | None:
    if not path.exists():
        if required:
            raise InputError(str(path), None, None, "no such file: not the output folder of `pdsim tune`")
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(str(path), getattr(exc, "lineno", None), None, f"not readable JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(str(path), 1, None, "expected a JSON object", got=type(data).__name__)
    return data


def _parquet(path: Path) -> pd.DataFrame | None:
    import pandas as pd

    if not path.exists():
        return None
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise InputError(str(path), None, None, f"not a readable Parquet file: {exc}") from None


def read_folder(out: str | Path) -> TuneFolder:
    """Read a search's output folder (``InputError`` when ``tune.json`` is missing or damaged)."""
    folder = Path(out)
    meta = _json(folder / "tune.json", required=True)
    assert meta is not None
    candidates = _parquet(folder / "candidates.parquet")
    frontier = _parquet(folder / "frontier.parquet")
    if frontier is None and candidates is not None and "frontier" in candidates.columns:
        frontier = candidates[candidates["frontier"].astype(bool)]
    validation = _json(folder / "validation.json", required=False)
    if validation is not None and not validation.get("fresh"):
        validation = None  # written as {} when there was no recommendation to validate
    return TuneFolder(folder, meta, candidates, frontier, validation)


# --- numbers -------------------------------------------------------------------------------


def _missing(v: Any) -> bool:
    """None, NaN or pandas' NA (a nullable integer column's missing value)."""
    import pandas as pd

    return v is None or (not isinstance(v, (str, Mapping, list)) and bool(pd.isna(v)))


def _number(v: Any) -> float | None:
    """A value as a float; None when missing, NaN or not a number (infinities kept)."""
    if _missing(v):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _finite(v: Any) -> float | None:
    f = _number(v)
    return f if f is not None and math.isfinite(f) else None


def _block(value: Any, low: Any, high: Any) -> dict[str, Any]:
    """A ``{"value","low","high"}`` block for ``quantity_parts``: NaN is "no value"; an
    infinite bound stays (it shows as ``…``, unbounded on that side)."""
    return {"value": _finite(value), "low": _number(low), "high": _number(high)}


def _row_block(row: Mapping[Any, Any], metric: str) -> dict[str, Any]:
    return _block(row.get(metric), row.get(f"{metric}_low"), row.get(f"{metric}_high"))


def _json_block(b: Mapping[str, Any] | None) -> dict[str, Any]:
    b = b or {}
    return _block(b.get("value"), b.get("low"), b.get("high"))


def _bound_text(bound: Mapping[str, Any]) -> str:
    return " and ".join(f"{'≤' if k == 'max' else '≥'} {v:g}" for k, v in bound.items() if k in ("max", "min"))


def _param_text(v: Any) -> str:
    if _missing(v):
        return "—"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v)).lower()
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.4g}"
    return str(v)


def _distribution_text(spec: Mapping[str, Any]) -> str:
    if "choices" in spec:
        return "one of " + ", ".join(choice_text(c) for c in spec["choices"])
    text = f"{spec.get('low')} to {spec.get('high')}"
    extras = [f"{k} {spec[k]}" for k in ("step",) if spec.get(k)]
    if spec.get("log"):
        extras.append("log scale")
    if spec.get("format"):
        extras.append(f"written as {spec['format']}")
    return text + (f" ({', '.join(extras)})" if extras else "")


def _portfolio_rows(items: Any, shown: Callable[[Any], str]) -> list[tuple[str, str, str]]:
    """(name, scenario, weight) per portfolio entry of tune.json."""
    return [
        (str(e.get("name", "")), shown(e.get("scenario", "")), _param_text(e.get("weight")))
        for e in (items or [])
        if isinstance(e, Mapping)
    ]


def _paths(folder: Path, meta: Mapping[str, Any]) -> tuple[str, Callable[[Any], str]]:
    """The TUNE file as seen from the folder's parent, and a function showing a path of
    tune.json (relative to the folder) as the TUNE file names it (relative to its own
    folder): ``releases/good-10.yaml``, not ``../../tune/releases/good-10.yaml``."""
    tune_file = os.path.normpath(folder / str(meta.get("tune_file", "TUNE.yaml")))
    home = os.path.dirname(tune_file)

    def shown(path: Any) -> str:
        return os.path.relpath(os.path.normpath(folder / str(path)), home) if path else ""

    return tune_file, shown


def _short(path: str) -> str:
    """``policy.flagger.analysis.metrics[0].thresholdRange.min`` -> ``metrics[0].thresholdRange.min``:
    the tail that tells parameters apart in a small plot's title."""
    parts = path.split(".")
    return ".".join(parts[-3:]) if len(parts) > 3 else path


# --- figures -------------------------------------------------------------------------------


def _floats(frame: pd.DataFrame, col: str) -> np.ndarray:
    """A column as floats, NaN where missing (pandas' NA of a nullable integer column included)."""
    import pandas as pd

    if col not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _err(frame: pd.DataFrame, metric: str) -> np.ndarray:
    """Error-bar lengths (2 x n) from ``M_low``/``M_high``; 0 where a bound is missing or unbounded."""
    v = _floats(frame, metric)
    out = []
    for col, sign in ((f"{metric}_low", -1.0), (f"{metric}_high", 1.0)):
        b = _floats(frame, col)
        with np.errstate(invalid="ignore"):  # inf - inf: an unbounded value has no bar
            d = sign * (b - v)
        out.append(np.where(np.isfinite(d) & (d >= 0), d, 0.0))
    return np.vstack(out)


def _maybe_log(ax: Axes, values: np.ndarray, axis: str) -> None:
    v = values[np.isfinite(values)]
    if v.size and (v > 0).all() and v.max() / v.min() > 50:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")


def _flags(frame: pd.DataFrame, col: str) -> np.ndarray:
    return frame[col].fillna(False).to_numpy(dtype=bool) if col in frame.columns else np.zeros(len(frame), bool)


def _frontier_figure(candidates: pd.DataFrame, x_metric: str, y_metric: str | None, confidence: float) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 5.6), layout="constrained")
    ax = fig.subplots()
    ax.grid(True, alpha=0.3)
    frame = candidates.copy()
    if y_metric is None:  # one objective and no constraint: candidates in order of their objective
        frame = frame.sort_values(x_metric)
        frame["_rank"] = np.arange(len(frame), dtype=float)
        y_col = "_rank"
    else:
        y_col = y_metric
    x = _floats(frame, x_metric)
    y = _floats(frame, y_col)
    ok = np.isfinite(x) & np.isfinite(y)
    xerr = _err(frame, x_metric)
    yerr = _err(frame, y_col) if y_metric is not None else np.zeros((2, len(frame)))
    base, best, front = _flags(frame, "base"), _flags(frame, "best"), _flags(frame, "frontier")
    feasible = _flags(frame, "feasible")
    groups: list[tuple[np.ndarray, dict[str, Any], str]] = [
        (ok & ~base & ~feasible, dict(fmt="x", color=INFEASIBLE, ms=5, lw=0.6, alpha=0.6), "infeasible"),
        (ok & ~base & feasible & ~front, dict(fmt="o", mfc="none", color=FEASIBLE, ms=6, lw=0.7), "feasible"),
        (ok & front, dict(fmt="o", color=FRONTIER, ms=7, lw=1.1, capsize=2), "frontier"),
        (ok & base, dict(fmt="*", color=BASE, ms=15, lw=1.2, capsize=3), "base policy"),
        (ok & best, dict(fmt="D", mfc="none", mew=2, color=BEST, ms=13, lw=1.4, capsize=3), "recommendation"),
    ]
    for mask, style, label in groups:
        if mask.any():
            ax.errorbar(x[mask], y[mask], xerr=xerr[:, mask], yerr=yerr[:, mask], label=label, **style)
    if (ok & front).any():
        order = np.argsort(x[ok & front])
        ax.step(x[ok & front][order], y[ok & front][order], where="post", color=FRONTIER, lw=1, ls="--")
    _maybe_log(ax, x[ok], "x")
    if y_metric is not None:
        _maybe_log(ax, y[ok], "y")
        ax.set_ylabel(y_metric)
    else:
        ax.set_ylabel("candidates, in order of the objective")
    ax.set_xlabel(x_metric)
    ax.legend(loc="best", fontsize="small", title=f"bars: {100 * confidence:g}% intervals", title_fontsize="small")
    return fig, int((~ok).sum())


def _sensitivity_figure(
    candidates: pd.DataFrame, objective: str, space: Mapping[str, Mapping[str, Any]], table: pd.DataFrame
) -> Any:
    from matplotlib.figure import Figure

    params = [p for p in space if p in candidates.columns]
    ncols = min(4, max(1, len(params)))
    nrows = max(1, math.ceil(len(params) / ncols))
    fig = Figure(figsize=(3.2 * ncols, 2.8 * nrows + 0.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    fig.suptitle(f"{objective} against each parameter", fontsize="large")
    frame = candidates[~_flags(candidates, "base")]
    y = _floats(frame, objective)
    feasible, best = _flags(frame, "feasible"), _flags(frame, "best")
    rng = np.random.default_rng(0)  # jitter of the choice columns only; fixed, so the PNG is reproducible
    for ax, p in zip(axes, params, strict=False):
        spec = space[p]
        ax.grid(True, alpha=0.3)
        if "choices" in spec:
            texts = [choice_text(c) for c in spec["choices"]]
            values = frame[p].astype(str).to_numpy()
            pos = {t: i for i, t in enumerate(texts)}
            x = np.array([pos.get(v, np.nan) for v in values], dtype=float)
            x = x + rng.uniform(-0.15, 0.15, size=x.size)
            ax.set_xticks(range(len(texts)), [t if len(t) <= 12 else t[:11] + "…" for t in texts], fontsize="small")
            if choice_order(spec["choices"]) is None:
                ax.tick_params(axis="x", labelrotation=20)
        else:
            x = _floats(frame, p)
            if spec.get("log"):
                ax.set_xscale("log")
        ok = np.isfinite(x) & np.isfinite(y)
        ax.scatter(x[ok & ~feasible], y[ok & ~feasible], marker="x", s=14, color=INFEASIBLE, lw=0.8)
        ax.scatter(x[ok & feasible], y[ok & feasible], marker="o", s=16, facecolors="none", edgecolors=FEASIBLE)
        ax.scatter(x[ok & best], y[ok & best], marker="D", s=60, facecolors="none", edgecolors=BEST, lw=2)
        _maybe_log(ax, y[ok], "y")
        row = table[(table["objective"] == objective) & (table["param"] == p)]
        subtitle = _short(p)
        if len(row):
            r = row.iloc[0]
            rho = "ρ n/a" if math.isnan(r["rho"]) else f"ρ {r['rho']:.2f} [{r['rho_low']:.2f}, {r['rho_high']:.2f}]"
            share = "" if math.isnan(r["importance"]) else f", imp. {100 * r['importance']:.0f}%"
            subtitle += f"\n{rho}{share}"
        ax.set_title(subtitle, fontsize="small")
    for ax in axes[len(params) :]:
        ax.set_visible(False)
    axes[0].set_ylabel(objective, fontsize="small")
    return fig


# --- the page ------------------------------------------------------------------------------


@dataclass
class _MetricRow:
    metric: str
    role: str  # "objective" or "constraint"
    bound: str = ""
    cells: list[dict[str, Any]] = field(default_factory=list)
    ok: bool | None = None


def _candidate_row(row: Mapping[Any, Any], params: Sequence[str], metrics: Sequence[str], constraints: Mapping) -> dict:
    return {
        "label": str(row.get("label", row.get("candidate", ""))),
        "candidate": row.get("candidate"),
        "cls": "best" if row.get("best") else ("base" if row.get("base") else ""),
        "params": [_param_text(row.get(p)) for p in params],
        "objectives": [_row_block(row, m) for m in metrics],
        "constraints": [(_row_block(row, m), bool(row.get(f"{m}_ok", False))) for m in constraints],
        "runs": _param_text(row.get("runs")),
        "rung": _param_text(row.get("rung")),
    }


def _constraint_sentence(meta: Mapping[str, Any], validation: Mapping[str, Any] | None) -> tuple[str, bool | None]:
    """The winner's-curse sentence, and whether every constraint held on fresh seeds (None: unknown)."""
    constraints: Mapping[str, Mapping[str, Any]] = meta.get("constraints") or {}
    level = f"{100 * float(meta.get('confidence', 0.95)):g}%"
    if not constraints:
        return "The search had no constraint.", None
    if validation is None:
        return (
            "Not checked on fresh seeds: the search stopped before the validation. The constraints held on the "
            "search seeds, where the recommendation was selected; with many candidates compared the one picked is "
            "often the one whose estimate was luckily good there (the winner's curse), so run the search to the "
            "end before adopting it.",
            None,
        )
    fresh = validation.get("fresh") or {}
    oks = validation.get("constraints_ok") or {}
    parts, failed = [], []
    for m, bound in constraints.items():
        b = _json_block((fresh.get(m) or {}).get("best"))
        side = "upper" if "max" in bound else "lower"
        edge = b["high"] if "max" in bound else b["low"]
        edge_text = "n/a" if edge is None else page.format_quantity({"value": edge})
        parts.append(f"{m}: {side} bound {edge_text}, limit {_bound_text(bound)}")
        if not oks.get(m, False):
            failed.append(m)
    if not failed:
        return (
            f"On fresh seeds every constraint still holds for the recommendation at the pessimistic end of its "
            f"{level} interval ({'; '.join(parts)}): its feasibility is not an artefact of the seeds it was "
            "selected on (the winner's curse).",
            True,
        )
    return (
        f"On fresh seeds {', '.join(failed)} no longer holds for the recommendation ({'; '.join(parts)}), "
        "although it held on the search seeds. This is the winner's curse: among many candidates, the one "
        "picked tends to be one whose search-seed estimate was luckily good. Do not adopt it as is: validate "
        "with more runs, tighten the constraint, or pick another frontier point.",
        False,
    )


def _headline(metric: str, ratio: Mapping[str, Any]) -> str | None:
    """``excess_errors.mean: 10.4× lower than the base [9.1, 12] on fresh seeds`` from the
    paired ratio (recommended / base) and its interval; None without a ratio."""
    r, low, high = ratio.get("value"), ratio.get("low"), ratio.get("high")
    if r is None or r <= 0:
        return None
    if r <= 1:
        # The interval of base/recommended is the inverted interval of recommended/base.
        lo = "…" if high is None or high <= 0 or not math.isfinite(high) else f"{1 / high:.3g}"
        hi = "…" if low is None or low <= 0 else f"{1 / low:.3g}"
        return f"{metric}: {1 / r:.3g}× lower than the base [{lo}, {hi}] on fresh seeds"
    lo = "…" if low is None else f"{low:.3g}"
    hi = "…" if high is None or not math.isfinite(high) else f"{high:.3g}"
    return f"{metric}: {r:.3g}× higher than the base [{lo}, {hi}] on fresh seeds"


def render_tune_report(folder: TuneFolder) -> str:
    """The page of a search's output folder, as HTML text (see the module docstring)."""
    meta, candidates, frontier, validation = folder.meta, folder.candidates, folder.frontier, folder.validation
    space: dict[str, Any] = dict(meta.get("space") or {})
    objectives: list[str] = list(meta.get("objectives") or [])
    constraints: dict[str, Any] = dict(meta.get("constraints") or {})
    confidence = float(meta.get("confidence", 0.95))
    level = f"{100 * confidence:g}%"
    notices: list[str] = []
    if meta.get("status") != "done":
        notices.append(
            "The search had not finished when this page was written (status "
            f"{meta.get('status', 'unknown')!s}): the figures are from the candidates evaluated so far."
        )
    if candidates is None:
        notices.append("No candidates yet: candidates.parquet is missing.")
    params = [p for p in space if candidates is None or p in candidates.columns]
    searched_rows = candidates[~_flags(candidates, "base")] if candidates is not None else None
    evaluated = 0 if searched_rows is None else len(searched_rows)
    base_row = (
        candidates[_flags(candidates, "base")].iloc[0].to_dict()
        if candidates is not None and _flags(candidates, "base").any()
        else None
    )
    best_row = (
        candidates[_flags(candidates, "best")].iloc[0].to_dict()
        if candidates is not None and _flags(candidates, "best").any()
        else None
    )
    if candidates is not None and best_row is None:
        notices.append("No recommendation: no candidate met every constraint at the last rung.")
    elif validation is None:
        notices.append(
            "validation.json is missing: the search stopped before the recommendation was re-run on fresh seeds. "
            "Only search-seed figures are shown."
        )

    # (1) what was searched
    rungs = list(meta.get("rungs") or [])
    stopped = (
        searched_rows["runs"].value_counts().to_dict()
        if searched_rows is not None and "runs" in searched_rows.columns
        else {}
    )
    base = meta.get("base") or {}
    pick = meta.get("pick") or {}
    tune_file, shown = _paths(folder.path, meta)
    elapsed = _finite(meta.get("elapsed_s"))
    searched = {
        "facts": [
            (
                "Base policy",
                f"{base.get('name', '')} ({base.get('kind', '?')}"
                f"{', a manifest' if base.get('manifest') else ''}): {', '.join(map(shown, base.get('paths', [])))}",
            ),
            ("TUNE file", f"{tune_file} (sha256 {str(meta.get('sha256', ''))[:12]})"),
            ("Budget", f"{meta.get('budget', '?')} candidates; {evaluated} evaluated"),
            ("Rollouts simulated", f"{int(meta.get('rollouts') or 0):,}"),
            ("Time", "n/a" if elapsed is None else format_duration(round(elapsed))),
            ("Seed", str(meta.get("seed", ""))),
            ("Pick rule", f"{pick.get('rule', '')}: {pick.get('description', '')}"),
            ("Confidence", f"{level}; a constraint holds when the pessimistic end of its interval is within the limit"),
        ],
        "space": [(p, _distribution_text(s)) for p, s in space.items()],
        "portfolio": _portfolio_rows(meta.get("portfolio"), shown),
        "validation_portfolio": _portfolio_rows(meta.get("validation_portfolio"), shown),
        "rungs": [(i, r, stopped.get(r, 0)) for i, r in enumerate(rungs)],
    }

    # (2) the frontier
    frontier_fig, frontier_rows, unplotted = None, [], 0
    if candidates is not None and objectives and objectives[0] in candidates.columns:
        y_metric = next((m for m in [*objectives[1:], *constraints] if m in candidates.columns), None)
        fig, unplotted = _frontier_figure(candidates, objectives[0], y_metric, confidence)
        frontier_fig = page.figure_block(
            fig,
            title=f"{objectives[0]} against {y_metric or 'rank'}",
            alt=f"Scatter of every candidate: {objectives[0]} against {y_metric or 'rank'}, infeasible, feasible "
            "and frontier candidates, the base policy and the recommendation marked, with interval bars",
            caption=f"Each candidate at the highest rung it reached, with its {level} intervals (all objectives are "
            "minimised: lower left is better). Grey crosses break a constraint; orange points are the frontier "
            "(feasible, not dominated at the last rung). The star is the base policy, the diamond the "
            "recommendation."
            + (f" {unplotted} candidate(s) without a value on an axis are not drawn." if unplotted else ""),
        )
    if frontier is not None:
        frontier_rows = [_candidate_row(r, params, objectives, constraints) for r in frontier.to_dict("records")]
    base_line = _candidate_row(base_row, params, objectives, constraints) if base_row else None

    # (3) the recommendation against the base
    metrics = [*objectives, *[m for m in constraints if m not in objectives]]
    rows: list[_MetricRow] = []
    for m in metrics:
        row = _MetricRow(m, "objective" if m in objectives else "constraint", _bound_text(constraints.get(m, {})))
        if validation is not None:
            s = (validation.get("search") or {}).get(m) or {}
            f = (validation.get("fresh") or {}).get(m) or {}
            row.cells = [_json_block(s.get(k)) for k in ("base", "best")] + [
                _json_block(f.get(k)) for k in ("base", "best", "diff", "ratio")
            ]
            if m in constraints:
                row.ok = bool((validation.get("constraints_ok") or {}).get(m, False))
        else:
            row.cells = [_row_block(r, m) if r else _block(None, None, None) for r in (base_row, best_row)]
        rows.append(row)
    sentence, all_ok = (
        _constraint_sentence(meta, validation) if best_row is not None else ("No recommendation to check.", None)
    )
    recommendation = {
        "label": str(best_row.get("label", best_row.get("candidate"))) if best_row else None,
        "params": [
            (p, _param_text(base_row.get(p)) if base_row else "—", _param_text(best_row.get(p)) if best_row else "—")
            for p in params
        ],
        "rows": rows,
        "sentence": sentence,
        "all_ok": all_ok,
        "runs": None if validation is None else validation.get("runs"),
        "pick": str(pick.get("rule", "")),
        "headline": [
            h
            for m in objectives
            if validation is not None
            and (h := _headline(m, _json_block(((validation.get("fresh") or {}).get(m) or {}).get("ratio"))))
        ],
    }

    # (4) sensitivity
    sens_rows: list[dict[str, Any]] = []
    sens_figs = []
    if searched_rows is not None and len(searched_rows) and params and objectives:
        assert candidates is not None  # searched_rows is a part of it
        table = sensitivity(candidates, meta)
        for rec in table.to_dict("records"):
            r = {str(k): v for k, v in rec.items()}
            sens_rows.append(
                {
                    **r,
                    "importance_text": "n/a" if math.isnan(r["importance"]) else f"{100 * r['importance']:.0f}%",
                    "rho_block": _block(r["rho"], r["rho_low"], r["rho_high"]),
                }
            )
        for m in objectives:
            if m in candidates.columns:
                fig = _sensitivity_figure(candidates, m, {p: space[p] for p in params}, table)
                sens_figs.append(
                    page.figure_block(
                        fig,
                        title=f"{m} by parameter",
                        alt=f"Small scatter plots of {m} against each tuned parameter, one per parameter",
                        caption="Each candidate's point value (the base policy left out); crosses break a "
                        "constraint, the diamond is the recommendation. Choices are spread sideways a little so "
                        "that points do not hide each other.",
                    )
                )

    command = f"pdsim tune {tune_file} --out {folder.path}"
    env = page.template_env()
    env.filters["short"] = _short
    return env.get_template("tune.html.j2").render(
        title=f"pdsim tune: {meta.get('name', folder.path.name)}",
        meta=meta,
        level=level,
        notices=notices,
        searched=searched,
        objectives=objectives,
        constraints=[(m, _bound_text(b)) for m, b in constraints.items()],
        params=params,
        frontier_fig=frontier_fig,
        frontier_rows=frontier_rows,
        base_line=base_line,
        recommendation=recommendation,
        validated=validation is not None,
        sens_rows=sens_rows,
        sens_figs=sens_figs,
        command=command,
    )


def write_report(out: str | Path) -> Path:
    """Write ``DIR/report.html`` from the files of the output folder ``out``.

    Args:
        out: the folder ``pdsim tune --out`` wrote (``tune.json`` at least).

    Returns:
        The page's path.

    Raises:
        InputError: ``tune.json`` is missing or damaged, or a Parquet file cannot be read.
    """
    folder = read_folder(out)
    return page.write_report(folder.path / "report.html", render_tune_report(folder))
