"""The page of `pdsim tune` (sim/tuning/report.py) and its sensitivity table (sim/tuning/sensitivity.py).

The output folder is built here by hand, file by file, exactly as the contract of issue 18
describes it (tune.json, candidates.parquet, frontier.parquet, validation.json), so the page
is tested without running a search.
"""

from __future__ import annotations

import json
import math
import warnings
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.errors import InputError
from sim.stats import pareto_front
from sim.tuning.report import write_report
from sim.tuning.sensitivity import SENSITIVITY_COLUMNS, UNORDERED_NOTE, choice_order, sensitivity
from tests.helpers.browser import chromium, needs_chromium

INTERVAL = "policy.flagger.analysis.interval"
STEP = "policy.flagger.analysis.stepWeight"
MIN_SR = "policy.flagger.analysis.metrics[0].thresholdRange.min"
JUDGE = "policy.flagger.judge"
SEQUENTIAL = {"kind": "sequential", "alpha": 0.01}
SPACE = {
    INTERVAL: {"choices": ["15s", "30s", "1m", "2m"]},
    STEP: {"low": 2, "high": 50},
    MIN_SR: {"low": 95.0, "high": 99.9},
    JUDGE: {"choices": [None, SEQUENTIAL]},
}
EE, DT = "excess_errors.mean", "detection_time_s.median"
FRR, PROMOTE = "false_rollback_rate", "decision_time_s.mean.good"
OBJECTIVES = [EE, DT]
CONSTRAINTS = {FRR: {"max": 0.01}, PROMOTE: {"max": 1800}}
RUNGS = [40, 120, 360]
SECONDS = {"15s": 15, "30s": 30, "1m": 60, "2m": 120}


def meta(**over) -> dict:
    m = {
        "name": "flagger-default",
        # Paths relative to the output folder, as pdsim tune writes them; shown relative to
        # the TUNE file's folder.
        "tune_file": "../tune/flagger.yaml",
        "sha256": "ab" * 32,
        "seed": 1,
        "budget": 60,
        "objectives": OBJECTIVES,
        "constraints": CONSTRAINTS,
        "confidence": 0.95,
        "space": SPACE,
        "rungs": RUNGS,
        "portfolio": [
            {"name": "good", "scenario": "../tune/good.yaml", "weight": 0.9},
            {"name": "spike", "scenario": "../tune/error-spike.yaml", "weight": 0.1},
        ],
        "validation_portfolio": [{"name": "spike-500", "scenario": "../tune/spike-500.yaml", "weight": 1.0}],
        "base": {"paths": ["../tune/canary.yaml"], "name": "podinfo", "kind": "flagger", "manifest": True},
        "pick": {"rule": "balanced", "description": "smallest geometric mean of objective / base objective"},
        "best": None,
        "status": "done",
        "elapsed_s": 187.4,
        "rollouts": 123456,
    }
    m.update(over)
    return m


def _choice(c) -> str:
    return c if isinstance(c, str) else json.dumps(c, sort_keys=True)


def candidates_frame(n: int = 60, seed: int = 3) -> pd.DataFrame:
    """Candidates whose excess errors fall with stepWeight and detection time rises with the
    interval (the judge does nothing), plus the base policy as candidate -1."""
    rng = np.random.default_rng(seed)
    interval = rng.choice(list(SECONDS), n)
    step = rng.integers(2, 51, n)
    min_sr = rng.uniform(95, 99.9, n)
    judge = rng.choice([_choice(None), _choice(SEQUENTIAL)], n)
    secs = np.array([SECONDS[i] for i in interval], dtype=float)
    rows = {
        "candidate": np.arange(n),
        "label": [f"#{i}" for i in range(n)],
        "base": False,
        INTERVAL: interval,
        STEP: step,
        MIN_SR: min_sr,
        JUDGE: judge,
        "rung": rng.choice([0, 1, 2], n, p=[0.6, 0.25, 0.15]),
        EE: 2000.0 / step + rng.normal(0, 3, n) + 5,
        DT: secs * 4 + rng.normal(0, 5, n) + 30,
        FRR: rng.uniform(0, 0.012, n),
        PROMOTE: rng.uniform(600, 2000, n),
    }
    frame = pd.DataFrame(rows)
    base = {
        "candidate": -1,
        "label": "base",
        "base": True,
        INTERVAL: "1m",
        STEP: 10,
        MIN_SR: 99.0,
        JUDGE: "null",
        "rung": 2,
        EE: 295.0,
        DT: 480.0,
        FRR: 0.002,
        PROMOTE: 1200.0,
    }
    frame = pd.concat([pd.DataFrame([base]), frame], ignore_index=True)
    # as sim.tuning.outputs writes them: an int parameter is a nullable Int64 column, a choice a
    # string; the base may have no value for a parameter (here the success-rate bound)
    frame[STEP] = pd.array(frame[STEP].tolist(), dtype="Int64")
    frame.loc[0, MIN_SR] = math.nan
    frame["runs"] = [RUNGS[r] for r in frame["rung"]]
    frame["rollouts"] = frame["runs"] * 2
    half = 30.0 / np.sqrt(frame["runs"].to_numpy())
    for m in [*OBJECTIVES, *CONSTRAINTS]:
        v = frame[m].to_numpy(dtype=float)
        frame[f"{m}_low"] = v * (1 - half / 10)
        frame[f"{m}_high"] = v * (1 + half / 10)
    # one candidate whose detection time has no upper bound (too few detections)
    frame.loc[5, f"{DT}_high"] = math.inf
    for m, bound in CONSTRAINTS.items():
        frame[f"{m}_ok"] = frame[f"{m}_high"] <= bound["max"]
    frame["feasible"] = frame[[f"{m}_ok" for m in CONSTRAINTS]].all(axis=1)
    pool = frame[frame["feasible"] & ~frame["base"] & (frame["rung"] == len(RUNGS) - 1)]
    front = pool.index[pareto_front(pool[EE].to_numpy(), pool[DT].to_numpy())]
    frame["frontier"] = frame.index.isin(front)
    ratios = np.exp(np.log(frame.loc[front, EE] / 295.0) / 2 + np.log(frame.loc[front, DT] / 480.0) / 2)
    frame["best"] = frame.index == ratios.idxmin()
    return frame


def _b(v: float, rel: float = 0.1) -> dict:
    a, b = v * (1 - rel), v * (1 + rel)
    return {"value": v, "low": min(a, b), "high": max(a, b)}


def validation(best: pd.Series, base: pd.Series, *, frr_fresh: float = 0.004) -> dict:
    fresh, search = {}, {}
    for m in [*OBJECTIVES, *CONSTRAINTS]:
        b, w = float(base[m]), float(best[m]) * (1.1 if m in OBJECTIVES else 1.0)
        if m == FRR:
            w = frr_fresh
        fresh[m] = {"base": _b(b), "best": _b(w), "diff": _b(w - b, 0.05), "ratio": _b(w / b, 0.07)}
        search[m] = {"base": _b(float(base[m])), "best": _b(float(best[m]))}
    ok = {m: fresh[m]["best"]["high"] <= CONSTRAINTS[m]["max"] for m in CONSTRAINTS}
    return {"runs": 720, "fresh": fresh, "search": search, "constraints_ok": ok}


def tune_folder(tmp_path: Path, *, with_validation: bool = True, frr_fresh: float = 0.004, **over) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    frame = candidates_frame()
    best = frame[frame["best"]].iloc[0]
    base = frame[frame["base"]].iloc[0]
    (out / "tune.json").write_text(json.dumps(meta(best=int(best["candidate"]), **over)), encoding="utf-8")
    frame.to_parquet(out / "candidates.parquet")
    frame[frame["frontier"]].sort_values(EE).to_parquet(out / "frontier.parquet")
    if with_validation:
        (out / "validation.json").write_text(json.dumps(validation(best, base, frr_fresh=frr_fresh)), encoding="utf-8")
    return out


class Page(HTMLParser):
    """Sections, tables (rows of cell texts, with the row's attributes), images, text."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.tables: dict[str, list[tuple[dict, list[str]]]] = {}
        self.imgs: list[dict] = []
        self.ids: dict[str, dict] = {}
        self.text: list[str] = []
        self._table: str | None = None
        self._row: tuple[dict, list[str]] | None = None
        self._cell: list[str] | None = None
        self._in_body = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids[a["id"]] = a
        if tag == "section":
            self.sections.append(a.get("id", ""))
        elif tag == "table":
            self._table = a.get("id", "")
            self.tables[self._table] = []
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body and self._table is not None:
            self._row = (a, [])
            self.tables[self._table].append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "img":
            self.imgs.append(a)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row[1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr":
            self._row = None
        elif tag == "tbody":
            self._in_body = False
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    @property
    def all_text(self) -> str:
        return " ".join(" ".join(self.text).split())


def parse(html: str) -> Page:
    p = Page()
    p.feed(html)
    p.close()
    return p


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tune_folder(tmp_path_factory.mktemp("tune"))


@pytest.fixture(scope="module")
def report(folder) -> Path:
    return write_report(folder)


# --- the page ------------------------------------------------------------------------------


def test_page_has_the_four_sections_and_nothing_external(report, folder):
    assert report == folder / "report.html"
    html = report.read_text(encoding="utf-8")
    page = parse(html)
    assert page.sections == ["searched", "frontier", "recommendation", "sensitivity"]
    # self-contained: figures are data URIs; no scripts, no links to fetch
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert page.imgs and all(i["src"].startswith("data:image/png;base64,iVBORw0KGgo") for i in page.imgs)
    # the frontier scatter, and one sensitivity figure per objective
    alts = [i["alt"] for i in page.imgs]
    assert alts[0].startswith(f"Scatter of every candidate: {EE} against {DT}")
    assert sum(a.startswith("Small scatter plots of") for a in alts) == len(OBJECTIVES)


def test_what_was_searched(report):
    page = parse(report.read_text(encoding="utf-8"))
    space = page.tables["space"]
    assert [r[1][0] for r in space] == list(SPACE)
    assert space[0][1][1] == "one of 15s, 30s, 1m, 2m"
    assert space[1][1][1] == "2 to 50"
    assert space[3][1][1] == 'one of null, {"alpha": 0.01, "kind": "sequential"}'
    assert [r[1] for r in page.tables["portfolio"]] == [
        ["good", "good.yaml", "0.9", "search"],
        ["spike", "error-spike.yaml", "0.1", "search"],
        ["spike-500", "spike-500.yaml", "1", "validation (fresh seeds)"],
    ]
    frame = candidates_frame()
    stopped = frame[~frame["base"]]["runs"].value_counts()
    expected = [[str(i), str(r), str(stopped.get(r, 0))] for i, r in enumerate(RUNGS)]
    assert [r[1] for r in page.tables["rungs"]] == expected
    text = page.all_text
    facts = ("60 candidates; 60 evaluated", "123,456", "3m7s", "balanced", EE, DT, f"{FRR} ≤ 0.01", f"{PROMOTE} ≤ 1800")
    for needle in facts:
        assert needle in text, needle


def test_frontier_table_rows_values_and_intervals(report, folder):
    page = parse(report.read_text(encoding="utf-8"))
    frontier = pd.read_parquet(folder / "frontier.parquet")
    rows = page.tables["frontier-table"]
    # the base first, then every frontier candidate in the file's order
    assert [r[0].get("data-candidate") for r in rows] == ["-1", *map(str, frontier["candidate"])]
    assert rows[0][0]["class"] == "base" and rows[0][1][0] == "base"
    best = frontier[frontier["best"]].iloc[0]
    (best_row,) = [r for r in rows if r[0].get("class") == "best"]
    assert best_row[1][0] == f"#{best['candidate']} (recommended)"
    cells = best_row[1]
    assert cells[1] == best[INTERVAL] and cells[2] == str(best[STEP]) and cells[3] == f"{best[MIN_SR]:.4g}"
    # each objective and constraint: value then its interval
    from sim.report.html import format_quantity

    for i, m in enumerate([*OBJECTIVES, *CONSTRAINTS]):
        expected = format_quantity({"value": best[m], "low": best[f"{m}_low"], "high": best[f"{m}_high"]})
        assert cells[5 + i].startswith(expected), (m, cells[5 + i], expected)
        assert "[" in cells[5 + i]
    assert cells[5 + len(OBJECTIVES)].endswith("holds")


def test_unbounded_interval_shows_as_ellipsis(tmp_path):
    out = tune_folder(tmp_path)
    frame = pd.read_parquet(out / "candidates.parquet")
    frame.loc[frame["best"], f"{DT}_high"] = math.inf
    frame.to_parquet(out / "candidates.parquet")
    frame[frame["frontier"]].sort_values(EE).to_parquet(out / "frontier.parquet")
    page = parse(write_report(out).read_text(encoding="utf-8"))
    (best_row,) = [r for r in page.tables["frontier-table"] if r[0].get("class") == "best"]
    assert best_row[1][6].endswith(", …]")


def test_recommendation_against_base_on_fresh_and_search_seeds(report, folder):
    from sim.report.html import format_quantity

    page = parse(report.read_text(encoding="utf-8"))
    data = json.loads((folder / "validation.json").read_text())
    frame = pd.read_parquet(folder / "candidates.parquet")
    best = frame[frame["best"]].iloc[0]
    assert page.ids["recommended"] is not None
    assert f"#{best['candidate']}" in page.all_text
    settings = {r[1][0]: r[1][1:] for r in page.tables["settings"]}
    assert settings[STEP] == ["10", str(best[STEP])]
    assert settings[JUDGE][0] == "null"
    assert settings[MIN_SR] == ["—", f"{best[MIN_SR]:.4g}"]
    rows = {r[0]["data-metric"]: r for r in page.tables["validation"]}
    assert list(rows) == [*OBJECTIVES, *CONSTRAINTS]
    for m, (_attrs, cells) in rows.items():
        s, f = data["search"][m], data["fresh"][m]
        expected = [format_quantity(b) for b in (s["base"], s["best"], f["base"], f["best"], f["diff"], f["ratio"])]
        assert cells[1:] == expected, m
    # the headline: the fresh-seed ratio read as "N× lower", with the inverted interval
    r = data["fresh"][EE]["ratio"]
    interval = f"[{1 / r['high']:.3g}, {1 / r['low']:.3g}]"
    expected = f"{EE}: {1 / r['value']:.3g}× lower than the base {interval} on fresh seeds"
    assert expected in page.all_text
    # the constraint's fresh-seed cell says whether it holds
    html = report.read_text(encoding="utf-8")
    assert 'class="pass"' in html
    assert page.ids["winners-curse"]["class"] == "ok-box"
    sentence = page.all_text
    assert "still holds" in sentence and "winner's curse" in sentence


def test_constraint_broken_on_fresh_seeds_is_said(tmp_path):
    out = tune_folder(tmp_path, frr_fresh=0.02)  # upper bound 0.022 > 0.01
    html = write_report(out).read_text(encoding="utf-8")
    page = parse(html)
    assert page.ids["winners-curse"]["class"] == "error-box"
    text = page.all_text
    assert f"{FRR} no longer holds" in text and "winner's curse" in text
    assert "upper bound 0.022, limit ≤ 0.01" in text
    (frr_row,) = [r for r in page.tables["validation"] if r[0]["data-metric"] == FRR]
    assert 'data-metric="false_rollback_rate"' in html and frr_row[1][4].startswith("0.02")


def test_missing_validation_still_renders_with_a_note(tmp_path):
    out = tune_folder(tmp_path, with_validation=False, status="running")
    page = parse(write_report(out).read_text(encoding="utf-8"))
    assert page.sections == ["searched", "frontier", "recommendation", "sensitivity"]
    text = page.all_text
    assert "validation.json is missing" in text and "status running" in text
    assert "Not checked on fresh seeds" in text
    frame = candidates_frame()
    base, best = frame[frame["base"]].iloc[0], frame[frame["best"]].iloc[0]
    from sim.report.html import format_quantity

    rows = {r[0]["data-metric"]: r[1] for r in page.tables["validation"]}
    for m in [*OBJECTIVES, *CONSTRAINTS]:
        assert rows[m][1:] == [
            format_quantity({"value": r[m], "low": r[f"{m}_low"], "high": r[f"{m}_high"]}) for r in (base, best)
        ]


def test_no_feasible_candidate_and_no_frontier_file(tmp_path):
    out = tune_folder(tmp_path, with_validation=False)
    (out / "validation.json").write_text("{}", encoding="utf-8")  # what the search writes without a best
    frame = pd.read_parquet(out / "candidates.parquet")
    frame[["feasible", "frontier", "best"]] = False
    frame.to_parquet(out / "candidates.parquet")
    (out / "frontier.parquet").unlink()
    page = parse(write_report(out).read_text(encoding="utf-8"))
    assert "No recommendation" in page.all_text and "validation.json is missing" not in page.all_text
    assert "No recommendation to check." in page.all_text
    assert [r[0].get("data-candidate") for r in page.tables["frontier-table"]] == ["-1"]


def test_only_tune_json_renders(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "tune.json").write_text(json.dumps(meta(status="running")), encoding="utf-8")
    page = parse(write_report(out).read_text(encoding="utf-8"))
    assert "candidates.parquet is missing" in page.all_text
    assert page.imgs == []


def test_user_text_is_escaped(tmp_path):
    out = tune_folder(tmp_path, name="<b>x</b>")
    html = write_report(out).read_text(encoding="utf-8")
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


@pytest.mark.parametrize("damage", ["missing", "not json", "a list"])
def test_bad_tune_json_is_one_input_error(tmp_path, damage):
    out = tune_folder(tmp_path)
    if damage == "missing":
        (out / "tune.json").unlink()
    else:
        (out / "tune.json").write_text("{oops" if damage == "not json" else "[1]", encoding="utf-8")
    with pytest.raises(InputError) as err:
        write_report(out)
    assert str(err.value).startswith(str(out / "tune.json") + ":") and "\n" not in str(err.value)


def test_damaged_parquet_is_one_input_error(tmp_path):
    out = tune_folder(tmp_path)
    (out / "candidates.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError, match="candidates.parquet:1: not a readable Parquet file"):
        write_report(out)


# --- sensitivity ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return sensitivity(candidates_frame(), meta())


def _row(table: pd.DataFrame, objective: str, param: str) -> pd.Series:
    (i,) = table.index[(table["objective"] == objective) & (table["param"] == param)]
    return table.loc[i]


def test_sensitivity_has_one_row_per_objective_and_param(table):
    assert list(table.columns) == list(SENSITIVITY_COLUMNS)
    assert list(zip(table["objective"], table["param"])) == [(o, p) for o in OBJECTIVES for p in SPACE]
    assert (table["n"] == 60).all()  # the base policy is left out
    for _, sub in table.groupby("objective"):
        assert sub["importance"].sum() == pytest.approx(1.0)


def test_sensitivity_finds_the_parameters_that_matter(table):
    step = _row(table, EE, STEP)
    assert step["rho"] < -0.9 and step["rho_low"] <= step["rho"] <= step["rho_high"] < 0
    assert step["importance"] == table[table["objective"] == EE]["importance"].max()
    interval = _row(table, DT, INTERVAL)  # ordered choices: ranked by duration
    assert interval["kind"] == "ordered choices" and interval["rho"] > 0.9 and interval["rho_low"] > 0
    noise = _row(table, EE, MIN_SR)  # no effect: the interval covers 0
    assert noise["rho_low"] < 0 < noise["rho_high"]


def test_unordered_choices_have_no_rank_correlation_but_an_importance(table):
    for objective in OBJECTIVES:
        judge = _row(table, objective, JUDGE)
        assert judge["kind"] == "choices" and judge["note"] == UNORDERED_NOTE
        assert math.isnan(judge["rho"]) and math.isnan(judge["rho_low"]) and math.isnan(judge["rho_high"])
        assert 0 <= judge["importance"] <= 1


def test_choice_order():
    assert choice_order(["15s", "30s", "1m", "2m"]) == [15.0, 30.0, 60.0, 120.0]
    assert choice_order([1, 5, 10]) == [1.0, 5.0, 10.0]
    assert choice_order([None, SEQUENTIAL]) is None
    assert choice_order([True, False]) is None
    assert choice_order(["result[0] >= 0.9", "15s"]) is None


def test_sensitivity_is_seeded(table):
    again = sensitivity(candidates_frame(), meta())
    pd.testing.assert_frame_equal(table, again)
    other = sensitivity(candidates_frame(), meta(), seed=99)
    assert not np.allclose(other["rho_low"].dropna(), table["rho_low"].dropna())
    pd.testing.assert_series_equal(other["rho"], table["rho"])


def test_sensitivity_skips_missing_values():
    frame = candidates_frame()
    frame.loc[1:10, STEP] = pd.NA
    out = sensitivity(frame, meta())
    assert (out[out["param"] == STEP]["n"] == 50).all() and (out[out["param"] != STEP]["n"] == 60).all()
    assert _row(out, EE, STEP)["rho"] < -0.9


def test_sensitivity_with_too_few_candidates():
    frame = candidates_frame().iloc[:2]  # the base and one candidate
    out = sensitivity(frame, meta())
    assert out["importance"].isna().all() and out["rho"].isna().all()
    assert (out["note"] != "").all()


def test_importance_is_optunas_ped_anova_on_the_same_trials():
    """The study rebuilt from candidates gives what optuna's own study gives:
    optuna/importance/_ped_anova/evaluator.py, PedAnovaImportanceEvaluator.evaluate, through
    optuna/importance/__init__.py, get_param_importances (normalised to 1)."""
    import optuna
    from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial):
        i = trial.suggest_categorical(INTERVAL, ["15s", "30s", "1m", "2m"])
        s = trial.suggest_int(STEP, 2, 50)
        m = trial.suggest_float(MIN_SR, 95.0, 99.9)
        j = trial.suggest_categorical(JUDGE, ["null", _choice(SEQUENTIAL)])
        return 2000.0 / s + SECONDS[i] + 0.1 * m + (5 if j == "null" else 0)

    study.optimize(objective, n_trials=50)
    frame = pd.DataFrame([{**t.params, EE: t.value, "base": False} for t in study.trials])
    ours = sensitivity(frame, meta(objectives=[EE]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna's small-sample warnings
        theirs = get_param_importances(study, evaluator=PedAnovaImportanceEvaluator())
    for p, v in theirs.items():
        assert _row(ours, EE, p)["importance"] == pytest.approx(v)


# --- in a real browser ---------------------------------------------------------------------


@needs_chromium
def test_chromium_renders_without_console_errors_and_decodes_every_figure(tmp_path, report):
    """Headless chromium opens a copy of the page with a probe script that writes each image's
    decoded size into the DOM once loaded (the page has no scripts of its own); --dump-dom reads
    it back, and chromium's console log (--enable-logging=stderr) must hold no error."""
    probe = tmp_path / "probe.html"
    script = (
        "<script>window.addEventListener('load', () => { for (const img of document.images) {"
        " img.setAttribute('data-natural', img.naturalWidth + 'x' + img.naturalHeight); }"
        " document.body.setAttribute('data-loaded', 'yes'); });</script>"
    )
    probe.write_text(report.read_text(encoding="utf-8").replace("</body>", script + "</body>"), encoding="utf-8")
    proc = chromium(
        tmp_path,
        "--enable-logging=stderr",
        "--v=0",
        "--dump-dom",
        "--virtual-time-budget=5000",
        url=probe.as_uri(),
        timeout_s=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == [], console
    assert 'data-loaded="yes"' in proc.stdout
    page = parse(proc.stdout)
    sizes = [img.get("data-natural") for img in page.imgs]
    assert len(sizes) == 1 + len(OBJECTIVES) and None not in sizes, sizes
    for size in sizes:
        width, height = map(int, size.split("x"))
        assert width >= 500 and height >= 250
