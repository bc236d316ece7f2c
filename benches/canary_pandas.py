"""The canary comparison of `gtmos canary` in pandas + scipy, for the side-by-side benchmark
(benches/canary.rs): the same files, the same per-account tallies and per-arm statistics.

    python3 benches/canary_pandas.py DIR    # DIR holds agent_decisions / decision_outcomes.parquet

Prints the seconds taken on the first line, then a few figures to check agreement.
"""
import sys
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from scipy import stats

EXPERIMENT = "exp-bench"
AS_OF = pd.Timestamp(84 * 86_400, unit="s", tz="UTC")
ALPHA, TAU_REL, EXACT_BELOW = 0.05, 0.25, 5.0
PRIMARY = ["meeting_rate", "positive_reply_rate", "pipeline_per_decision"]
Z = stats.norm.ppf(1 - ALPHA / 2)


def read(path, columns, decimals):
    t = pq.read_table(path, columns=columns)
    for c in decimals:
        t = t.set_column(t.schema.get_field_index(c), c, pc.cast(t[c], pa.float64()))
    return t.to_pandas()


def linearise(num, den):
    r = num.sum() / den.sum()
    return r, (num - r * den) / den.mean()


def wilson(p, n):
    z2 = Z * Z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = Z / denom * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(centre - half, 0.0), min(centre + half, 1.0)


def msprt(delta, var, tau2):
    log_l = 0.5 * np.log(var / (var + tau2)) + delta * delta * tau2 / (2 * var * (var + tau2))
    half = np.sqrt(var * (var + tau2) / tau2 * (np.log((var + tau2) / var) - 2 * np.log(ALPHA)))
    return min(np.exp(-log_l), 1.0), (delta - half, delta + half)


def main(d):
    t0 = time.perf_counter()
    dec = read(f"{d}/agent_decisions.parquet",
               ["decision_id", "decided_at", "account_id", "experiment_id", "arm", "cost_usd"], ["cost_usd"])
    out = read(f"{d}/decision_outcomes.parquet",
               ["decision_id", "outcome_at", "outcome_type", "pipeline_usd"], ["pipeline_usd"])
    exp = dec[(dec.experiment_id == EXPERIMENT) & (dec.decided_at < AS_OF)]
    arms = exp.groupby("account_id").arm.agg(["first", "nunique"])
    assert (arms["nunique"] == 1).all(), "an account in both arms"
    start = exp.decided_at.min()
    pre_start = start - (AS_OF - start)
    pre = dec[dec.experiment_id.isna() & (dec.decided_at >= pre_start) & (dec.decided_at < start)
              & dec.account_id.isin(arms.index)]
    dd = pd.concat([exp.assign(period=1), pre.assign(period=0)])
    out = out[out.outcome_at < AS_OF]
    once = out.groupby(["decision_id", "outcome_type"], as_index=False).pipeline_usd.sum()
    j = once.merge(dd[["decision_id", "account_id", "period"]], on="decision_id")
    counts = j.groupby(["account_id", "period", "outcome_type"]).size().unstack(fill_value=0)
    pipe = j[j.outcome_type == "opportunity_created"].groupby(["account_id", "period"]).pipeline_usd.sum()
    acc = dd.groupby(["account_id", "period"]).agg(decisions=("decision_id", "size"), cost=("cost_usd", "sum"))
    acc = acc.join(counts).join(pipe.rename("pipeline")).fillna(0.0)
    e = acc.xs(1, level="period").join(arms["first"].rename("arm"))
    groups = {g: e[e.arm == g] for g in ["control", "variant"]}

    srm = stats.chisquare([len(groups["control"]), len(groups["variant"])])
    metrics = {
        "reply_rate": ("reply", "decisions", "proportion"),
        "positive_reply_rate": ("positive_reply", "decisions", "proportion"),
        "meeting_rate": ("meeting_booked", "decisions", "proportion"),
        "pipeline_per_decision": ("pipeline", "decisions", "continuous"),
        "trust_block_rate": ("trust_block", "decisions", "proportion"),
        "duplicate_incident_rate": ("duplicate_incident", "decisions", "rare"),
        "cooldown_violation_rate": ("cooldown_violation", "decisions", "rare"),
        "human_rejection_rate": ("human_rejected", "trust_block", "proportion"),
        "spend_per_meeting": ("cost", "meeting_booked", "ratio"),
    }
    res = {}
    for name, (num, den, kind) in metrics.items():
        arm = {}
        for g, df in groups.items():
            x, n = df[num].to_numpy(float), df[den].to_numpy(float)
            if kind == "continuous":
                v = x[n > 0] / n[n > 0]
                arm[g] = (v.mean(), v.var(ddof=1) / len(v), v, x.sum(), n.sum())
            else:
                r, lin = linearise(x, n)
                var = lin.var(ddof=1) / len(lin)
                if kind != "ratio":
                    n_eff = min(r * (1 - r) / var, n.sum()) if var > 0 else n.sum()
                    wilson(r, n_eff)
                arm[g] = (r, var, None, x.sum(), n.sum())
        (cv, cvar, cvals, cx, cn), (vv, vvar, vvals, vx, vn) = arm["control"], arm["variant"]
        delta, var = vv - cv, cvar + vvar
        if kind == "continuous":
            p = stats.ttest_ind(vvals, cvals, equal_var=False).pvalue
        elif kind in ("proportion", "rare"):
            pooled = (cx + vx) / (cn + vn)
            small = min(pooled * cn, pooled * vn, (1 - pooled) * cn, (1 - pooled) * vn) < EXACT_BELOW
            if small and kind == "rare":
                p = stats.binomtest(int(vx), int(cx + vx), vn / (cn + vn)).pvalue
            elif small:
                p = stats.fisher_exact([[cx, cn - cx], [vx, vn - vx]])[1]
            else:
                p = 2 * stats.norm.sf(abs(delta) / np.sqrt(var))
        else:
            p = 2 * stats.norm.sf(abs(delta) / np.sqrt(var))
        tau2 = (TAU_REL * abs(cv)) ** 2
        p_seq, cs = msprt(delta, var, tau2)
        res[name] = dict(control=cv, variant=vv, delta=delta, p=p, p_seq=p_seq, cs=cs)
    # Holm over the primaries' always-valid p-values.
    ps = sorted((res[m]["p_seq"], m) for m in PRIMARY)
    running = 0.0
    for k, (p, m) in enumerate(ps):
        running = max(running, min((len(ps) - k) * p, 1.0))
        res[m]["holm"] = running
    secs = time.perf_counter() - t0
    m = res["meeting_rate"]
    print(f"{secs:.3f}")
    print(f"meeting rate: control {m['control']:.6f}, variant {m['variant']:.6f}, delta {m['delta']:.6f}, "
          f"z p {m['p']:.3e}, always-valid p {m['p_seq']:.3e}; SRM p {srm.pvalue:.3f}; "
          f"{len(e)} accounts, {int(e.decisions.sum())} experiment decisions")


if __name__ == "__main__":
    main(sys.argv[1])
