"""Author the golden datasets and the sample prediction files under golden/.

The examples follow the labelling guide in golden/README.md: every input is drawn from a seeded
generator, its label is the guide's rule applied to it, and the one-line rationale names the
facts and the rule, so a reviewer can check each line by eye. Critical examples are the ones
where a miss costs more than a wrong number (a disqualified account worked, a hand-raiser
missed, a policy broken); about 10 % of each task.

    python3 golden/generate.py        # rewrites golden/datasets, golden/predictions, manifest

Deterministic: the same script writes the same bytes. After editing, bump VERSION.
"""
import hashlib
import json
import os
import random

VERSION = "1.0.0"
ROOT = os.path.dirname(os.path.abspath(__file__))
PER_TASK = 72

# ---------------------------------------------------------------------------------------------
# ICP tier (ordinal: T1 best)
CORE_V, ADJ_V, OUT_V = ["SaaS", "FinTech", "Cybersecurity"], ["HealthTech", "HR Tech", "Logistics"], ["RetailTech", "EdTech"]


def icp_example(r, i, force=None):
    kind = force or r.choice(["t1", "t2", "t3", "t3", "t2", "mixed"])
    b2c = False
    if kind == "t1":
        v, n, g = r.choice(CORE_V), r.randint(200, 1000), "NA"
    elif kind == "b2c":
        v, n, g, b2c = r.choice(CORE_V + ADJ_V), r.randint(200, 1000), "NA", True
    else:
        v = r.choice(CORE_V + ADJ_V + OUT_V)
        n = r.choice([r.randint(10, 49), r.randint(50, 199), r.randint(200, 1000), r.randint(1001, 5000), r.randint(5001, 40000)])
        g = r.choice(["NA", "EMEA", "APAC", "LATAM"])
    def dim(x, core, adj):
        return 2 if x in core else 1 if x in adj else 0
    sv = dim(v, CORE_V, ADJ_V)
    ss = 2 if 200 <= n <= 1000 else 1 if 50 <= n <= 5000 else 0
    sg = 2 if g == "NA" else 1 if g in ("EMEA", "APAC") else 0
    rev = n * r.choice([90_000, 120_000, 150_000, 200_000])
    facts = f"{v} ({['out', 'adjacent', 'core'][sv]}), {n:,} employees ({['out', 'adjacent', 'core'][ss]}), {g} ({['out', 'adjacent', 'core'][sg]})"
    if b2c:
        label, why = "T3", f"B2C business model disqualifies (rule ICP-0) whatever the fit: {facts}"
    elif (sv, ss, sg) == (2, 2, 2):
        label, why = "T1", f"core on all three dimensions (rule ICP-1): {facts}"
    elif min(sv, ss, sg) >= 1 and sv + ss + sg >= 4:
        label, why = "T2", f"no dimension out and fit points {sv + ss + sg} >= 4 (rule ICP-2): {facts}"
    else:
        reason = "a dimension is out" if min(sv, ss, sg) == 0 else f"fit points {sv + ss + sg} < 4"
        label, why = "T3", f"{reason} (rule ICP-3): {facts}"
    model = "B2C" if b2c else "B2B"
    inp = {"company_type": f"{model} {v}", "business_model": model, "vertical": v, "employee_count": n,
           "annual_revenue_usd": rev, "geo": g}
    critical = kind in ("b2c",) or (kind == "t1" and force == "t1")
    return inp, label, why, critical


# ---------------------------------------------------------------------------------------------
# Buyer persona (SPEC contacts.persona)
PERSONA_TITLES = {
    "economic_buyer": [("Chief Revenue Officer", "Executive"), ("VP of Sales", "Sales"), ("Chief Financial Officer", "Finance"),
                       ("VP of Revenue Operations", "Revenue Operations"), ("Chief Executive Officer", "Executive"), ("SVP Go-To-Market", "Executive")],
    "champion": [("Director of Revenue Operations", "Revenue Operations"), ("Sales Operations Manager", "Sales Operations"),
                 ("Director of Marketing Operations", "Marketing"), ("Head of Sales Enablement", "Sales Enablement"), ("RevOps Manager", "Revenue Operations")],
    "technical_evaluator": [("Solutions Architect", "Engineering"), ("Staff Software Engineer", "Engineering"), ("Security Architect", "Security"),
                            ("Data Platform Lead", "Data"), ("IT Systems Administrator", "IT"), ("Principal Engineer", "Engineering")],
    "end_user": [("Account Executive", "Sales"), ("Sales Development Representative", "Sales"), ("Customer Success Manager", "Customer Success"),
                 ("Marketing Specialist", "Marketing"), ("Account Manager", "Sales")],
    "procurement": [("Procurement Manager", "Procurement"), ("Vendor Management Lead", "Procurement"), ("Strategic Sourcing Specialist", "Procurement"),
                    ("Chief Procurement Officer", "Procurement")],
    "other": [("HR Generalist", "People"), ("Office Manager", "Operations"), ("Recruiter", "People"), ("Marketing Intern", "Marketing"),
              ("Legal Counsel", "Legal")],
}
PERSONA_RULE = {
    "economic_buyer": "owns the GTM budget: C-level or VP of a revenue/finance function (rule P-1)",
    "champion": "runs the revenue process day to day at director/manager level (rule P-2)",
    "technical_evaluator": "evaluates integration, security or data fit (rule P-3)",
    "end_user": "individual contributor who works in the product (rule P-4)",
    "procurement": "runs purchasing and vendor contracts, whatever the seniority (rule P-5)",
    "other": "no role in buying or using the product (rule P-6)",
}


def persona_example(r, i, force=None):
    label = force or r.choice(list(PERSONA_TITLES))
    title, dept = r.choice(PERSONA_TITLES[label])
    seniority = ("C-level" if title.startswith("Chief") else "VP" if title.startswith(("VP", "SVP")) else
                 "Director" if title.startswith(("Director", "Head")) else "Manager" if "Manager" in title or "Lead" in title else "IC")
    segment = r.choice(["SMB", "MM", "ENT"])
    inp = {"title": title, "department": dept, "seniority": seniority, "company_segment": segment}
    critical = force is not None
    return inp, label, f"'{title}' ({dept}, {seniority}): {PERSONA_RULE[label]}", critical


# ---------------------------------------------------------------------------------------------
# Intent signal (real vs noise)
def intent_example(r, i, force=None):
    kind = force or r.choice(["compare", "pricing_docs", "blog", "careers", "bot", "employee", "multi", "newsletter", "demo"])
    visitor = {"bot": "bot", "employee": "own_employee", "competitor": "competitor_domain"}.get(kind, r.choice(["known_contact", "anonymous_icp_account"]))
    events = {
        "compare": ["pricing", "competitor_comparison"],
        "pricing_docs": ["pricing", "docs_integrations"],
        "demo": ["demo_request"],
        "blog": ["blog_post"],
        "careers": ["careers", "careers_job_posting"],
        "bot": ["pricing", "competitor_comparison", "docs_api"],
        "employee": ["pricing", "docs_api"],
        "competitor": ["pricing", "competitor_comparison"],
        "multi": ["product_overview", "product_features", "case_study", "pricing"],
        "newsletter": ["newsletter_signup"],
    }[kind]
    minutes = r.randint(1, 25)
    inp = {"visitor_type": visitor, "events": events, "same_session": True, "session_minutes": minutes,
           "account_icp_tier": r.choice(["T1", "T2"]) if visitor != "bot" else None}
    if visitor in ("bot", "own_employee", "competitor_domain"):
        return inp, "noise", f"{visitor} traffic is never buyer intent, whatever the pages (rule I-0)", kind == "competitor"
    if "demo_request" in events:
        return inp, "real", "explicit demo request by a buyer-side visitor (rule I-1)", force == "demo"
    if "pricing" in events and ({"competitor_comparison", "docs_integrations"} & set(events)):
        return inp, "real", f"pricing plus {events[1]} in one session (rule I-2)", False
    if "pricing" in events and len(events) >= 4:
        return inp, "real", f"{len(events)} product pages ending on pricing in one session (rule I-3)", False
    return inp, "noise", f"{', '.join(events)} alone shows no buying intent (rule I-4)", False


# ---------------------------------------------------------------------------------------------
# Next action (policy-safe first action)
def action_example(r, i, force=None):
    ctx = {
        "intent": r.choice(["real", "real", "noise"]),
        "persona": r.choice(["economic_buyer", "champion", "technical_evaluator", "end_user"]),
        "icp_tier": r.choice(["T1", "T2", "T3"]),
        "geo": r.choice(["NA", "NA", "EMEA", "APAC"]),
        "email_consent": r.choice(["granted", "granted", "unknown"]),
        "unsubscribed": False,
        "touches_last_7d": r.choice([0, 0, 1, 1, 2, 3]),
        "hours_since_last_touch": r.choice([None, 12, 30, 72, 200, 500]),
        "open_opportunity_owner": r.choice([None, None, None, "rep_0042"]),
        "trust_score": round(r.uniform(0.4, 0.99), 2),
    }
    if ctx["touches_last_7d"] == 0:
        ctx["hours_since_last_touch"] = r.choice([None, 200, 500])
    if force == "unsubscribed":
        ctx.update(unsubscribed=True, intent="real", trust_score=0.9)
    if force == "cap":
        ctx.update(touches_last_7d=3, hours_since_last_touch=72, intent="real", trust_score=0.9)
    if ctx["unsubscribed"] or ctx["email_consent"] == "withdrawn":
        return ctx, "hold", "contact unsubscribed: no outreach of any kind (rule A-1)", True
    if ctx["touches_last_7d"] >= 3:
        return ctx, "hold", f"{ctx['touches_last_7d']} touches in 7 days reaches the cap of 3 (rule A-2)", force == "cap"
    h = ctx["hours_since_last_touch"]
    if h is not None and h < 48:
        return ctx, "hold", f"last touch {h} h ago is inside the 48 h cooldown (rule A-3)", False
    if ctx["open_opportunity_owner"]:
        return ctx, "route_to_owner", f"open opportunity owned by {ctx['open_opportunity_owner']}: the owner decides (rule A-4)", False
    if ctx["trust_score"] < 0.6:
        return ctx, "hold", f"trust score {ctx['trust_score']} below the 0.6 gate (rule A-5)", False
    if ctx["intent"] == "noise":
        if ctx["icp_tier"] == "T3":
            return ctx, "hold", "no intent and a T3 account: nothing worth spending on (rule A-6)", False
        return ctx, "paid_audience_push", f"no intent yet on a {ctx['icp_tier']} account: warm it with paid audiences (rule A-7)", False
    if ctx["geo"] == "EMEA" and ctx["email_consent"] != "granted":
        return ctx, "linkedin_audience_push", "EMEA contact without email consent: no direct email, audience touch only (rule A-8)", False
    if ctx["persona"] in ("economic_buyer", "champion"):
        return ctx, "email_generation", f"real intent from the {ctx['persona']}: personalised email (rule A-9)", False
    return ctx, "linkedin_audience_push", f"real intent from the {ctx['persona']}: audience touch, not a cold email (rule A-10)", False


TASKS = {
    "icp_tier": (icp_example, ["T1", "T2", "T3"], True, ["t1"] * 4 + ["b2c"] * 3),
    "buyer_persona": (persona_example, list(PERSONA_TITLES), False, ["procurement"] * 4 + ["economic_buyer"] * 3),
    "intent_signal": (intent_example, ["real", "noise"], False, ["demo"] * 4 + ["competitor"] * 3),
    "next_action": (action_example, ["email_generation", "linkedin_audience_push", "paid_audience_push", "route_to_owner", "hold"], False,
                    ["unsubscribed"] * 4 + ["cap"] * 3),
}


def examples(task):
    make, labels, _, forced = TASKS[task]
    r = random.Random(f"golden/{task}/{VERSION}")
    # Labels about evenly represented: random draws are kept only while their label's share
    # of the dataset is not full.
    quota = {l: PER_TASK // len(labels) + (k < PER_TASK % len(labels)) for k, l in enumerate(labels)}
    out = []
    while len(out) < PER_TASK:
        i = len(out)
        force = forced[i] if i < len(forced) else None
        inp, label, why, critical = make(r, i, force)
        assert label in labels, (task, label)
        if force is None and quota[label] <= 0:
            continue
        quota[label] -= 1
        critical = critical and force is not None
        out.append({"id": f"{task}-{i + 1:03d}", "task": task, "input": inp, "label": label,
                    "critical": critical, "version": VERSION, "rationale": why})
    r.shuffle(out)
    return out


def predictions(sets, model, seed, skill, critical_misses, never_predict=None):
    """A model's predictions: right with probability `confidence`, drawn around `skill`;
    critical examples right except the ids in `critical_misses`."""
    r = random.Random(seed)
    rows = []
    for task, exs in sets.items():
        labels, ordinal = TASKS[task][1], TASKS[task][2]
        for e in sorted(exs, key=lambda e: e["id"]):
            conf = min(0.99, max(0.35, r.gauss(skill, 0.08)))
            right = r.random() < conf
            if e["critical"]:
                right = e["id"] not in critical_misses
            if right:
                pred = e["label"]
            else:
                others = [l for l in labels if l != e["label"] and l != never_predict]
                if ordinal:
                    k = labels.index(e["label"])
                    others = [labels[j] for j in (k - 1, k + 1) if 0 <= j < len(labels)]
                pred = r.choice(others)
            if pred == never_predict:
                pred = r.choice([l for l in labels if l != never_predict])
                right = pred == e["label"]
            # A confidence in what was predicted: lower when wrong, rounded like model output.
            c = conf if right else min(conf, r.uniform(0.3, 0.8))
            rows.append({"id": e["id"], "prediction": pred, "confidence": round(c, 3), "model_id": model})
    return rows


def write_jsonl(path, rows):
    with open(path, "w") as f:
        for row in rows:
            f.write(json.dumps(row, sort_keys=True) + "\n")


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def main():
    sets = {t: examples(t) for t in TASKS}
    manifest = {"name": "gtmos-golden", "version": VERSION, "tasks": {}}
    for task, exs in sets.items():
        rel = f"datasets/{task}.jsonl"
        write_jsonl(os.path.join(ROOT, rel), exs)
        manifest["tasks"][task] = {
            "file": rel, "sha256": sha256(os.path.join(ROOT, rel)), "examples": len(exs),
            "critical": sum(e["critical"] for e in exs), "labels": TASKS[task][1], "ordinal": TASKS[task][2],
        }
    with open(os.path.join(ROOT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write("\n")
    crit = sorted(e["id"] for exs in sets.values() for e in exs if e["critical"])
    write_jsonl(os.path.join(ROOT, "predictions/baseline.jsonl"), predictions(sets, "gtm-labeler-v4.1", 1, 0.86, set()))
    write_jsonl(os.path.join(ROOT, "predictions/candidate_good.jsonl"), predictions(sets, "gtm-labeler-v4.2", 2, 0.93, set()))
    # The canary variant of the default corpus (`gtmos synth`): its golden eval must pass
    # before `gtmos canary --experiment exp-agent-canary-1` compares it on live traffic.
    write_jsonl(os.path.join(ROOT, "predictions/canary_variant.jsonl"), predictions(sets, "gtm-agent-3.3-rc1", 5, 0.95, set()))
    misses = {c for c in crit if c.startswith(("buyer_persona", "next_action"))}
    misses = set(sorted(misses)[:2] + [c for c in crit if c.startswith("next_action")][:1])
    write_jsonl(os.path.join(ROOT, "predictions/candidate_regressed.jsonl"),
                predictions(sets, "gtm-labeler-v4.3-rc1", 3, 0.80, misses, never_predict="procurement"))


if __name__ == "__main__":
    main()
