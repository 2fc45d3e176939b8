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
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The events of each judged run's new slots, for ``fold_logs`` (the first half of
    folding them into the e-processes; the logs in between are one numpy call).

    Row r of the data is run ``rows[r]`` of the state. Tests are the errors (when
    ``errors_test``), then one per latency bucket index j of ``latency_buckets``: requests
    in buckets above j are its events. Per test, the prior's share ``p_ref`` is set (in
    place) at the first slot with an event; from there, every slot with events and both
    versions contributes. Returns, per contribution ("entry") in the order of rows then
    slots: its row, its canary share of requests pi, and each test's event count f (0: the
    test takes nothing from it) — one entry per distinct share in a slot (the latency
    tests share one; the errors' serves them too when equal) — and per row and test the
    canary's events c. Slots after ``seen`` only; ``seen`` is not advanced here.
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
    share = np.empty(most)
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
                        owner[m], share[m] = r, pi[t]
                        weight[m, :] = 0.0
                        m += 1
                    weight[entry, t] = f
    return owner[:m], share[:m], weight[:m], c


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
) -> None:
    """Add each judged run's new slots' log LRs to ``log_m`` (in place): per test and node,
    c·log(theta) minus the sum over its entries (``slot_events``) of f·log(theta·pi + 1 −
    pi), ``logs`` holding those logs per entry (summed in slot order)."""
    n_tests, size = log_m.shape[1], log_m.shape[2]
    acc = np.zeros((n_tests, size))
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
        for t in range(n_tests):
            if not math.isnan(p_ref[s, t]):
                for g in range(size):
                    log_m[s, t, g] += c[r, t] * log_theta[g] - acc[t, g]


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
sorted_diff = nb.njit(cache=True)(ranksum.sorted_diff)
brent_step = nb.njit(cache=True)(ranksum.brent_step)


@nb.njit(cache=True)
def wilcoxon_root(zq: float, x: np.ndarray, y: np.ndarray, a: float, b: float, fa: float, fb: float) -> float:
    """``mannwhitney.brent_root`` of ``mu -> sorted_diff(mu, zq, x, y)`` (the same driver
    loop around the same ``brent_step``, compiled)."""
    if fa == 0.0:
        return a
    if fb == 0.0:
        return b
    c, fc = a, fa
    for _ in range(ranksum.MAX_ITERATIONS + 1):
        done, a, b, c, fa, fb, fc = brent_step(a, b, c, fa, fb, fc, ranksum.BRENT_TOLERANCE)
        if done:
            return b
        fb = sorted_diff(b, zq, x, y)
    return b


@nb.njit(cache=True)
def mann_whitney_roots(x: np.ndarray, y: np.ndarray, z: float) -> tuple[float, float, float]:
    """(lower, upper, estimate) of ``mannwhitney.mann_whitney_ci`` for sorted samples and
    the lower quantile z (``MannWhitney.calculateConfidenceInterval``): each interval end
    is the root of the statistic at ±z on [min x − max y, max x − min y], or that end of
    the range when the statistic does not change sign there; the estimate is the root at 0.
    """
    mu_min = x[0] - y[-1]
    mu_max = x[-1] - y[0]
    ends = np.zeros(2)
    for i in range(2):
        zq = -z if i == 0 else z
        f_lo = sorted_diff(mu_min, zq, x, y)
        f_hi = sorted_diff(mu_max, zq, x, y)
        if f_lo <= 0.0:
            ends[i] = mu_min
        elif f_hi >= 0.0:
            ends[i] = mu_max
        else:
            ends[i] = wilcoxon_root(zq, x, y, mu_min, mu_max, f_lo, f_hi)
    f_lo = sorted_diff(mu_min, 0.0, x, y)
    f_hi = sorted_diff(mu_max, 0.0, x, y)
    return ends[0], ends[1], wilcoxon_root(0.0, x, y, mu_min, mu_max, f_lo, f_hi)


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
