"""The golden-gate report of `gtmos eval golden`, computed with pandas + scikit-learn, for the
side-by-side benchmark (benches/eval.rs).

Usage: python3 benches/eval_sklearn.py DIR RESAMPLES
Prints the seconds of the point report (reading, joining, every metric per task), then the
seconds per bootstrap resample (accuracy, macro / weighted F1, kappa, quadratic kappa for
ordinal tasks, Brier and ECE per task, recomputed on each resample of examples), then the
accuracy per task for a sanity check.
"""
import json
import os
import sys
import time

import numpy as np
import pandas as pd
from sklearn.metrics import (accuracy_score, brier_score_loss, cohen_kappa_score, confusion_matrix, f1_score,
                             precision_recall_fscore_support)

d, resamples = sys.argv[1], int(sys.argv[2])


def ece(conf, right, bins=10):
    b = np.minimum(np.floor(conf * bins).astype(int), bins - 1)
    n = np.bincount(b, minlength=bins)
    c = np.bincount(b, weights=conf, minlength=bins)
    r = np.bincount(b, weights=right, minlength=bins)
    m = n > 0
    return float((np.abs(r[m] / n[m] - c[m] / n[m]) * n[m]).sum() / len(conf))


def metrics(y, p, conf, labels, ordinal):
    right = (y == p).astype(float)
    out = {
        "accuracy": accuracy_score(y, p),
        "macro_f1": f1_score(y, p, labels=labels, average="macro", zero_division=np.nan),
        "weighted_f1": f1_score(y, p, labels=labels, average="weighted", zero_division=np.nan),
        "cohen_kappa": cohen_kappa_score(y, p, labels=labels),
        "brier": brier_score_loss(right, conf),
        "ece": ece(conf, right),
    }
    if ordinal:
        out["qwk"] = cohen_kappa_score(y, p, labels=labels, weights="quadratic")
    return out


start = time.perf_counter()
manifest = json.load(open(os.path.join(d, "manifest.json")))
golden = pd.concat([pd.read_json(os.path.join(d, t["file"]), lines=True)[["id", "task", "label", "critical"]]
                    for t in manifest["tasks"].values()])
preds = pd.read_parquet(os.path.join(d, "predictions.parquet"))
assert not preds["id"].duplicated().any()
df = golden.merge(preds, on="id", how="inner", validate="one_to_one")
assert len(df) == len(golden) == len(preds)
tasks = {}
for task, tm in manifest["tasks"].items():
    t = df[df["task"] == task]
    y, p, conf = t["label"].to_numpy(), t["prediction"].to_numpy(), t["confidence"].to_numpy()
    labels = tm["labels"]
    point = metrics(y, p, conf, labels, tm["ordinal"])
    precision_recall_fscore_support(y, p, labels=labels, zero_division=np.nan)
    f1_score(y, p, labels=labels, average="micro")
    confusion_matrix(y, p, labels=labels)
    critical_misses = int(((y != p) & t["critical"].to_numpy()).sum())
    tasks[task] = (y, p, conf, labels, tm["ordinal"], point["accuracy"])
fixed = time.perf_counter() - start

rng = np.random.default_rng(1)
start = time.perf_counter()
for task, (y, p, conf, labels, ordinal, _) in tasks.items():
    for _ in range(resamples):
        i = rng.integers(0, len(y), len(y))
        metrics(y[i], p[i], conf[i], labels, ordinal)
per = (time.perf_counter() - start) / max(resamples, 1)
print(f"{fixed:.3f}")
print(f"{per:.4f}")
print("accuracy " + ", ".join(f"{k} {v[5]:.4f}" for k, v in tasks.items()))
