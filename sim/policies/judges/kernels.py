"""Compiled (numba) loops of the count e-processes (``sequential``), one run per row.

The scalar ``SequentialJudge.judge`` and its batch pass both run these loops (the scalar
as a batch of one), so a run's numbers do not depend on its batch: every loop works row
by row, in the same order for every row, and never sums across rows. Each formula is
written once here; ``sequential`` states them.

Division by zero gives Inf or NaN (numba's "numpy" error model), never raises.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from sim.policies.judges import ranksum


@nb.njit(cache=True, inline="always", error_model="numpy")
def _fill_logs(logs: np.ndarray, share: float, theta: np.ndarray) -> None:
    """logs[g] = log(theta_g·pi + 1 − pi): minus a slot's log LR per event, pi its share."""
    for g in range(len(theta)):
        logs[g] = math.log(theta[g] * share + (1.0 - share))


@nb.njit(cache=True, inline="always", error_model="numpy")
def _add(acc: np.ndarray, f: float, logs: np.ndarray) -> None:
    for g in range(len(acc)):
        acc[g] += f * logs[g]


@nb.njit(cache=True, error_model="numpy")
def llr_rows(
    e_canary: np.ndarray, e_primary: np.ndarray, share: np.ndarray, log_theta: np.ndarray, theta: np.ndarray
) -> np.ndarray:
    """Log LR(theta) against theta = 1 summed over slots, for T tests: (T, K) counts and
    shares, (T, G) nodes and their exponentials; (T, G) out. Slots without events or
    without one of the versions contribute nothing."""
    n_tests, n_slots = e_canary.shape
    out = np.zeros(log_theta.shape)
    logs = np.empty(log_theta.shape[1])
    acc = np.empty(log_theta.shape[1])
    for t in range(n_tests):
        acc[:] = 0.0
        c = 0.0
        for k in range(n_slots):
            f = e_canary[t, k] + e_primary[t, k]
            pi = share[t, k]
            if f > 0 and pi > 0 and pi < 1:
                c += e_canary[t, k]
                _fill_logs(logs, pi, theta[t])
                _add(acc, f, logs)
        for g in range(log_theta.shape[1]):
            out[t, g] = c * log_theta[t, g] - acc[g]
    return out


@nb.njit(cache=True, inline="always", error_model="numpy")
def _share(canary: float, primary: float) -> float:
    n = canary + primary
    return canary / n if n > 0 else 0.0


@nb.njit(cache=True, error_model="numpy")
def slot_events(
    rows: np.ndarray,
    seen: np.ndarray,
    p_ref: np.ndarray,
    canary_requests: np.ndarray,
    canary_errors: np.ndarray,
    primary_requests: np.ndarray,
    primary_errors: np.ndarray,
    canary_hist: np.ndarray,
    primary_hist: np.ndarray,
    has_hist: bool,
    errors_test: bool,
    latency_buckets: np.ndarray,
    theta: np.ndarray,
    scratch: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The events of each judged run's new slots, for ``fold_logs`` (the first half of
    folding them into the e-processes; the logs in between are one numpy call).

    Row r of the data is run ``rows[r]`` of the state. Tests are the errors (when
    ``errors_test``), then one per latency bucket index j of ``latency_buckets``: requests
    in buckets above j are its events. Per test, the prior's share ``p_ref`` is set (in
    place) at the first slot with an event; from there, every slot with events and both
    versions contributes. Returns, per contribution ("entry") in the order of rows then
    slots: its row, theta_g·pi + (1 − pi) at every node g (``theta``) with pi its canary
    share of requests (the caller takes their logs in place: numpy's SIMD log), and each
    test's event count f (0: the test takes nothing from it) — one entry per distinct share
    in a slot (the latency tests share one; the errors' serves them too when equal) — and
    per row and test the canary's events c. Slots after ``seen`` only; ``seen`` is not
    advanced here. The arguments are written into ``scratch`` (n, len(theta)), or into a
    larger array when it may be too small; the last value returned is that array, for the
    caller to pass again (memory written before is in cache and costs no page faults).
    """
    n_slots = canary_requests.shape[1]
    n_lat = len(latency_buckets)
    n_tests = n_lat + (1 if errors_test else 0)
    first_lat = 1 if errors_test else 0
    n_buckets = canary_hist.shape[2]
    most = 0
    for r in range(len(rows)):
        most += 2 * max(n_slots - seen[rows[r]], 0)
    owner = np.empty(most, dtype=np.int64)
    args = scratch if scratch.shape[0] >= most else np.empty((max(most, 2 * scratch.shape[0]), len(theta)))
    weight = np.zeros((most, n_tests))
    c = np.zeros((len(rows), n_tests))
    ec = np.zeros(n_tests)
    ep = np.zeros(n_tests)
    pi = np.zeros(n_tests)
    tail_c = np.zeros(n_buckets)
    tail_p = np.zeros(n_buckets)
    m = 0
    for r in range(len(rows)):
        s = rows[r]
        if n_tests == 0:
            continue
        for k in range(seen[s], n_slots):
            if errors_test:
                ec[0] = canary_errors[r, k]
                ep[0] = primary_errors[r, k]
                pi[0] = _share(canary_requests[r, k], primary_requests[r, k])
            if n_lat:
                if has_hist:
                    # Requests slower than bound j: the buckets above it (a reversed cumulative sum).
                    run_c, run_p = 0.0, 0.0
                    for b in range(n_buckets - 1, -1, -1):
                        run_c += canary_hist[r, k, b]
                        run_p += primary_hist[r, k, b]
                        tail_c[b], tail_p[b] = run_c, run_p
                    lat_share = _share(tail_c[0], tail_p[0])
                    for t in range(n_lat):
                        ec[first_lat + t] = tail_c[latency_buckets[t] + 1]
                        ep[first_lat + t] = tail_p[latency_buckets[t] + 1]
                        pi[first_lat + t] = lat_share
                else:
                    # No histograms (a replayed CSV of counters): the latency tests see no events.
                    for t in range(first_lat, n_tests):
                        ec[t], ep[t], pi[t] = 0.0, 0.0, 0.0
            err_entry, lat_entry = -1, -1
            for t in range(n_tests):
                f = ec[t] + ep[t]
                if math.isnan(p_ref[s, t]):
                    # the prior's share: the first slot with an event, as counts of shares
                    # (pi, 1 - pi) give it
                    q = _share(pi[t], 1.0 - pi[t])
                    if f > 0 and q > 0 and q < 1:
                        p_ref[s, t] = q
                    else:
                        continue
                if f > 0 and pi[t] > 0 and pi[t] < 1:
                    c[r, t] += ec[t]
                    if t < first_lat:
                        entry = err_entry = m
                    elif lat_entry >= 0:
                        entry = lat_entry
                    elif err_entry >= 0 and pi[t] == pi[0]:
                        entry = lat_entry = err_entry
                    else:
                        entry = lat_entry = m
                    if entry == m:
                        owner[m] = r
                        # the product, then the sum, rounded as numpy's outer product
                        # and addition round them (no fused multiply-add without fastmath)
                        here, rest = pi[t], 1.0 - pi[t]
                        for g in range(len(theta)):
                            args[m, g] = here * theta[g] + rest
                        weight[m, :] = 0.0
                        m += 1
                    weight[entry, t] = f
    return owner[:m], args[:m], weight[:m], c, args


@nb.njit(cache=True, error_model="numpy")
def fold_logs(
    rows: np.ndarray,
    p_ref: np.ndarray,
    log_m: np.ndarray,
    owner: np.ndarray,
    weight: np.ndarray,
    logs: np.ndarray,
    c: np.ndarray,
    log_theta: np.ndarray,
    threshold: float,
) -> np.ndarray:
    """Add each judged run's new slots' log LRs to ``log_m`` (in place): per test and node,
    c·log(theta) minus the sum over its entries (``slot_events``) of f·log(theta·pi + 1 −
    pi), ``logs`` holding those logs per entry (summed in slot order).

    Returns whether each row's ``log_e_ceiling`` is at least ``threshold``, from the
    values as they are written (the same answer without reading ``log_m`` again): some
    node of some test at or above it, or a test without a share (e-value 1) when 0 is.
    ``log_m`` holds no NaN (each term is finite), where the two could differ."""
    n_tests, size = log_m.shape[1], log_m.shape[2]
    acc = np.zeros((n_tests, size))
    near = np.zeros(len(rows), dtype=np.bool_)
    e = 0
    for r in range(len(rows)):
        s = rows[r]
        acc[:, :] = 0.0
        while e < len(owner) and owner[e] == r:
            for t in range(n_tests):
                f = weight[e, t]
                if f != 0.0:
                    for g in range(size):
                        acc[t, g] += f * logs[e, g]
            e += 1
        hit = n_tests == 0 and 0.0 >= threshold
        for t in range(n_tests):
            if math.isnan(p_ref[s, t]):
                hit |= 0.0 >= threshold
                continue
            events = c[r, t]
            for g in range(size):
                v = log_m[s, t, g] + (events * log_theta[g] - acc[t, g])
                log_m[s, t, g] = v
                hit |= v >= threshold
        near[r] = hit
    return near


@nb.njit(cache=True, error_model="numpy")
def log_sum_exp(x: np.ndarray) -> float:
    """log(sum(exp(x))), shifted by the maximum. Terms more than 746 below it are skipped:
    their exp is exactly 0.0, so skipping them changes no bit."""
    top = -np.inf
    for v in x:
        top = max(top, v)
    total = 0.0
    for v in x:
        if v - top > -746.0:
            total += math.exp(v - top)
    return top + math.log(total)


@nb.njit(cache=True, error_model="numpy")
def e_values(rows: np.ndarray, p_ref: np.ndarray, log_m: np.ndarray, log_w: np.ndarray) -> np.ndarray:
    """Each run's e-value per test, (len(rows), T): the mixture sum_g w_g·exp(log_m_g)
    (``log_sum_exp``, capped at exp(700)); 1 for a test without a prior share yet."""
    n_tests, size = log_m.shape[1], log_m.shape[2]
    out = np.ones((len(rows), n_tests))
    x = np.empty(size)
    for r in range(len(rows)):
        s = rows[r]
        for t in range(n_tests):
            if not math.isnan(p_ref[s, t]):
                for g in range(size):
                    x[g] = log_w[s, t, g] + log_m[s, t, g]
                out[r, t] = math.exp(min(log_sum_exp(x), 700.0))
    return out


@nb.njit(cache=True, error_model="numpy")
def log_e_ceiling(rows: np.ndarray, p_ref: np.ndarray, log_m: np.ndarray) -> np.ndarray:
    """An upper bound on the log of every e-value of each run, (len(rows),): the largest
    log LR at any node of any test (0 for a test without a share: its e-value is 1). A
    mixture of LRs with weights summing to 1 is at most their maximum."""
    n_tests, size = log_m.shape[1], log_m.shape[2]
    out = np.zeros(len(rows))
    for r in range(len(rows)):
        s = rows[r]
        top = 0.0 if n_tests == 0 else -np.inf
        for t in range(n_tests):
            if math.isnan(p_ref[s, t]):
                top = max(top, 0.0)
                continue
            for g in range(size):
                top = max(top, log_m[s, t, g])
        out[r] = top
    return out


@nb.njit(cache=True, error_model="numpy")
def log_masses(cdf: np.ndarray) -> np.ndarray:
    """Log of each cell's share of the mass, per row of a CDF at cell edges (m, G + 1):
    log(mass_g / sum(mass)), each cell's mass at least 1e-300."""
    m, size = cdf.shape[0], cdf.shape[1] - 1
    out = np.empty((m, size))
    for i in range(m):
        total = 0.0
        for g in range(size):
            out[i, g] = max(cdf[i, g + 1] - cdf[i, g], 1e-300)
            total += out[i, g]
        for g in range(size):
            out[i, g] = math.log(out[i, g] / total)
    return out


#: Kayenta's Mann–Whitney statistic and Brent's iteration, compiled from ``ranksum``'s
#: sources (``mannwhitney`` runs them as Python).
tied_or_diff = nb.njit(cache=True)(ranksum.tied_or_diff)
brent_step = nb.njit(cache=True)(ranksum.brent_step)


@nb.njit(cache=True)
def wilcoxon_root(
    zq: float, x: np.ndarray, y: np.ndarray, a: float, b: float, fa: float, fb: float
) -> tuple[float, bool]:
    """``mannwhitney.brent_root`` of ``mu -> sorted_diff(mu, zq, x, y)`` (the same driver
    loop around the same ``brent_step``, compiled), and whether an iterate found every
    value tied (where ``sorted_diff`` raises: the root is then meaningless)."""
    if fa == 0.0:
        return a, False
    if fb == 0.0:
        return b, False
    c, fc = a, fa
    for _ in range(ranksum.MAX_ITERATIONS + 1):
        done, a, b, c, fa, fb, fc = brent_step(a, b, c, fa, fb, fc, ranksum.BRENT_TOLERANCE)
        if done:
            return b, False
        fb, tied = tied_or_diff(b, zq, x, y)
        if tied:
            return b, True
    return b, False


@nb.njit(cache=True)
def tied_or_roots(x: np.ndarray, y: np.ndarray, z: float) -> tuple[float, float, float, bool]:
    """``mann_whitney_roots`` and whether it would raise ``AllTiedError`` (then the roots
    are NaN): the statistic evaluated at the same points in the same order, stopping at
    the first that finds every value tied."""
    mu_min = x[0] - y[-1]
    mu_max = x[-1] - y[0]
    ends = np.zeros(2)
    for i in range(3):
        zq = -z if i == 0 else z if i == 1 else 0.0
        f_lo, tied_lo = tied_or_diff(mu_min, zq, x, y)
        if tied_lo:
            return math.nan, math.nan, math.nan, True
        f_hi, tied_hi = tied_or_diff(mu_max, zq, x, y)
        if tied_hi:
            return math.nan, math.nan, math.nan, True
        if i == 2:
            estimate, tied = wilcoxon_root(0.0, x, y, mu_min, mu_max, f_lo, f_hi)
            return (math.nan, math.nan, math.nan, True) if tied else (ends[0], ends[1], estimate, False)
        if f_lo <= 0.0:
            ends[i] = mu_min
        elif f_hi >= 0.0:
            ends[i] = mu_max
        else:
            ends[i], tied = wilcoxon_root(zq, x, y, mu_min, mu_max, f_lo, f_hi)
            if tied:
                return math.nan, math.nan, math.nan, True
    return math.nan, math.nan, math.nan, True  # not reached: the third pass returns


@nb.njit(cache=True)
def mann_whitney_roots(x: np.ndarray, y: np.ndarray, z: float) -> tuple[float, float, float]:
    """(lower, upper, estimate) of ``mannwhitney.mann_whitney_ci`` for sorted samples and
    the lower quantile z (``MannWhitney.calculateConfidenceInterval``): each interval end
    is the root of the statistic at ±z on [min x − max y, max x − min y], or that end of
    the range when the statistic does not change sign there; the estimate is the root at 0.

    Raises:
        AllTiedError: when the statistic finds every value tied at a point it is evaluated.
    """
    lower, upper, estimate, tied = tied_or_roots(x, y, z)
    if tied:
        raise ranksum.AllTiedError("cannot compute confidence interval when all observations are tied")
    return lower, upper, estimate


@nb.njit(cache=True, error_model="numpy")
def msprt_scores(
    rows: np.ndarray,
    seen: np.ndarray,
    canary_requests: np.ndarray,
    canary_errors: np.ndarray,
    primary_requests: np.ndarray,
    primary_errors: np.ndarray,
    canary_hist: np.ndarray,
    primary_hist: np.ndarray,
    latency: bool,
    log_ms: np.ndarray,
    score: np.ndarray,
) -> None:
    """Add each judged run's new slots to its stratified mSPRT scores, in place.

    ``score[s]`` holds run s's (errors S, errors I, latency S, latency I) (``msprt``): per
    slot with both versions, weight w = n_c·n_p/(n_c + n_p) added to I and w·(difference
    of the versions' means) to S, the errors' means being failure shares and the
    latency's the mean log milliseconds (``log_ms`` per histogram bucket). Slots after
    ``seen[s]`` only; the latency scores only when ``latency``.
    """
    n_slots = canary_requests.shape[1]
    n_buckets = len(log_ms)
    for r in range(len(rows)):
        s = rows[r]
        es, ei, ls, li = 0.0, 0.0, 0.0, 0.0
        for k in range(seen[s], n_slots):
            nc, np_ = canary_requests[r, k], primary_requests[r, k]
            if nc > 0 and np_ > 0:
                n = nc + np_
                es += (np_ * canary_errors[r, k] - nc * primary_errors[r, k]) / n
                ei += nc * np_ / n
            if latency:
                hc, hp, mc, mp = 0.0, 0.0, 0.0, 0.0
                for b in range(n_buckets):
                    hc += canary_hist[r, k, b]
                    hp += primary_hist[r, k, b]
                    mc += canary_hist[r, k, b] * log_ms[b]
                    mp += primary_hist[r, k, b] * log_ms[b]
                if hc > 0 and hp > 0:
                    w = hc * hp / (hc + hp)
                    ls += w * (mc / hc - mp / hp)
                    li += w
        score[s, 0] += es
        score[s, 1] += ei
        if latency:
            score[s, 2] += ls
            score[s, 3] += li


@nb.njit(cache=True, error_model="numpy")
def pooled_log_variance(canary_hist: np.ndarray, primary_hist: np.ndarray, log_ms: np.ndarray) -> np.ndarray:
    """Each run's sample variance of log milliseconds over both versions' requests so far,
    each request at its bucket's ``log_ms`` (0 with fewer than two requests). (n,)."""
    n_runs, n_slots, n_buckets = canary_hist.shape
    out = np.zeros(n_runs)
    h = np.zeros(n_buckets)
    for r in range(n_runs):
        h[:] = 0.0
        for k in range(n_slots):
            for b in range(n_buckets):
                h[b] += canary_hist[r, k, b] + primary_hist[r, k, b]
        total, first = 0.0, 0.0
        for b in range(n_buckets):
            total += h[b]
            first += h[b] * log_ms[b]
        if total < 2:
            continue
        mean = first / total
        second = 0.0
        for b in range(n_buckets):
            second += h[b] * (log_ms[b] - mean) ** 2
        out[r] = second / (total - 1)
    return out


# --- Kayenta's classification of every run of a batch ------------------------------------
#
# The speed device of the Kayenta judge's batch pass (``KayentaJudge.judge_batch``): the
# scalar ``kayenta_rules.classify`` costs tens of microseconds of numpy calls on series of a
# few points, once per metric, run and judgement, and was most of a Kayenta rollout's time.
# ``kayenta_classify_rows`` runs the same rule on every run of a batch in one compiled loop.
# It gives the labels, critical flags and numbers of ``classify`` bit for bit (the means by
# numpy's own pairwise summation, the interval by the same ``mann_whitney_roots``), except
# for two constant series, whose noise comes from a seeded numpy Generator: those rows are
# marked ``NEEDS_NOISE`` and the caller classifies them with ``classify``.

#: Label codes of ``kayenta_classify_rows`` (indexes into ``KAYENTA_LABELS``); NEEDS_NOISE:
#: two constant series, left to the scalar ``classify``.
KAYENTA_LABELS = ("Pass", "High", "Low", "Nodata", "NodataFailMetric", "Error")
LABEL_PASS, LABEL_HIGH, LABEL_LOW, LABEL_NODATA, LABEL_NODATA_FAIL, LABEL_ERROR = range(6)
NEEDS_NOISE = -1


@nb.njit(cache=True)
def _pairwise_block(a: np.ndarray, lo: int, n: int) -> float:
    # numpy's pairwise_sum of at most 128 values: plain below 8, else eight partial sums
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r = a[lo : lo + 8].copy()
    i = 8
    while i < n - (n % 8):
        for j in range(8):
            r[j] += a[lo + i + j]
        i += 8
    res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@nb.njit(cache=True)
def pairwise_sum(a: np.ndarray, lo: int, n: int) -> float:
    """Sum of a[lo : lo + n] as numpy's ``add.reduce`` of a contiguous float64 array adds it
    (``pairwise_sum`` of numpy's loops: blocks of at most 128 values, halves above, the
    halves' sizes multiples of 8), so ``0.0 + pairwise_sum(a, 0, n)`` is ``np.sum(a)`` bit
    for bit. numpy recurses; this walks the same tree with a stack (a cached numba function
    cannot call itself)."""
    if n <= 128:
        return _pairwise_block(a, lo, n)
    starts = np.empty(64, dtype=np.int64)
    sizes = np.empty(64, dtype=np.int64)
    left = np.empty(64)
    right_pending = np.zeros(64, dtype=np.bool_)  # the node's left half is summed, into left
    top = 0
    starts[0], sizes[0] = lo, n
    while True:
        m = sizes[top]
        if m > 128:  # descend into the left half
            half = m // 2 - (m // 2) % 8
            right_pending[top] = False
            starts[top + 1], sizes[top + 1] = starts[top], half
            top += 1
            continue
        value = _pairwise_block(a, starts[top], m)
        top -= 1
        while top >= 0 and right_pending[top]:  # both halves summed: left + right
            value = left[top] + value
            top -= 1
        if top < 0:
            return value
        left[top], right_pending[top] = value, True  # now the right half
        m = sizes[top]
        half = m // 2 - (m // 2) % 8
        starts[top + 1], sizes[top + 1] = starts[top] + half, m - half
        top += 1


@nb.njit(cache=True, inline="always")
def _numpy_mean(a: np.ndarray) -> float:
    # np.mean: the sum from the identity 0.0, divided by the count
    return (0.0 + pairwise_sum(a, 0, len(a))) / len(a)


@nb.njit(cache=True, inline="always")
def _transformed(values: np.ndarray, n: int, replace: bool) -> np.ndarray:
    # ``kayenta_rules.transform`` without outlier removal: NaN dropped, or replaced by 0
    out = np.empty(n)
    m = 0
    for k in range(n):
        v = values[k]
        if math.isnan(v):
            if not replace:
                continue
            v = 0.0
        out[m] = v
        m += 1
    return out[:m].copy()


@nb.njit(cache=True, inline="always")
def _cles(control: np.ndarray, experiment: np.ndarray) -> float:
    # ``mannwhitney.cles``: the experiment's rank sum among both samples, average ranks for
    # ties, by counting (ranks are halves: every order of summing them is exact)
    m, n = len(experiment), len(control)
    r1 = 0.0
    for v in experiment:
        less, equal = 0, 0
        for w in experiment:
            less += w < v
            equal += w == v
        for w in control:
            less += w < v
            equal += w == v
        r1 += (2.0 * less + equal + 1.0) / 2.0
    return (2.0 * r1 - m * (m + 1)) / (2.0 * n * m)


@nb.njit(cache=True)
def kayenta_classify_rows(
    control: np.ndarray,
    control_len: np.ndarray,
    experiment: np.ndarray,
    experiment_len: np.ndarray,
    z: float,
    increase: bool,
    decrease: bool,
    replace_nan: bool,
    critical: bool,
    must_have_data: bool,
    tolerance: float,
    effect_thresholds: tuple[float, float],
    critical_thresholds: tuple[float, float],
    cles_measure: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``kayenta_rules.classify`` of each row: the first ``*_len[i]`` values of row i of
    ``control`` and ``experiment`` (n, S), before the NaN strategy (``replace_nan``: NaN
    becomes 0, else it is dropped; outliers already removed by the caller if configured).

    Returns per row the label code (``KAYENTA_LABELS``, or ``NEEDS_NOISE``), whether the
    outcome fails the canary (``MetricClassification.critical``) and (deviation,
    effect_size, lower, upper, estimate), (n, 5). ``z`` is the interval's lower normal
    quantile; ``increase``/``decrease`` the directions that can fail.
    """
    n_rows = control.shape[0]
    label = np.full(n_rows, LABEL_PASS, dtype=np.int8)
    fails = np.zeros(n_rows, dtype=np.bool_)
    numbers = np.full((n_rows, 5), np.nan)
    numbers[:, 0] = 1.0  # MetricClassification's default deviation
    for i in range(n_rows):
        ctrl = _transformed(control[i], control_len[i], replace_nan)
        expt = _transformed(experiment[i], experiment_len[i], replace_nan)
        if len(expt) == 0 or len(ctrl) == 0:
            if replace_nan:
                label[i] = LABEL_PASS
            elif must_have_data and not critical:
                label[i] = LABEL_NODATA_FAIL
            else:
                label[i] = LABEL_NODATA
                fails[i] = critical
            continue
        xs, ys = np.sort(expt), np.sort(ctrl)
        if len(xs) == len(ys) and np.all(xs == ys):
            continue  # identical: Pass
        if min(xs[0], ys[0]) == max(xs[-1], ys[-1]):
            continue  # one distinct value: Pass
        if xs[0] == xs[-1] and ys[0] == ys[-1]:
            label[i] = NEEDS_NOISE
            continue
        lower, upper, estimate, tied = tied_or_roots(xs, ys, z)
        if tied:  # classify's AllTiedError: an Error result
            label[i] = LABEL_ERROR
            continue
        c, e = _numpy_mean(ctrl), _numpy_mean(expt)
        deviation = math.nan if c == 0.0 or e == 0.0 else e / c
        effect = _cles(ctrl, expt) if cles_measure else deviation
        bound = tolerance * abs(estimate)
        is_high = increase and lower > bound and (math.isnan(effect) or effect >= effect_thresholds[1])
        is_low = decrease and upper < -bound and (math.isnan(effect) or effect <= effect_thresholds[0])
        code = LABEL_HIGH if is_high else LABEL_LOW if is_low else LABEL_PASS
        crit_high = critical and code == LABEL_HIGH and (math.isnan(effect) or effect >= critical_thresholds[1])
        crit_low = critical and code == LABEL_LOW and (math.isnan(effect) or effect <= critical_thresholds[0])
        label[i] = code
        fails[i] = crit_high or crit_low
        numbers[i, 0], numbers[i, 1], numbers[i, 2], numbers[i, 3], numbers[i, 4] = (
            deviation,
            effect,
            lower,
            upper,
            estimate,
        )
    return label, fails, numbers
