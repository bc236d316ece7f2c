"""Write the sample brain outputs and reviewer scores under golden/brain_eval/samples/.

The samples answer the questions of catalog.yml the way the brains log them (BrainAnalysisLog
JSONL: one line per question per run) and the way an independent reviewer scores them:

    candidate_outputs.jsonl / candidate_scores.jsonl   two runs per question, reviewer u_okafor:
                                                        the rubric passes; Q20 is flaky (its two
                                                        runs propose different actions)
    regressed_outputs.jsonl / regressed_scores.jsonl   one run: an invented action, a citation
                                                        that resolves to nothing, a stale fixture
                                                        not disclosed, a wrong lever, more
                                                        hallucinations; the rubric fails

    python3 golden/brain_eval/generate.py

Deterministic: the same script writes the same bytes (random.Random with fixed seeds).
"""
import hashlib
import json
import os
import random

import yaml

ROOT = os.path.dirname(os.path.abspath(__file__))
CATALOG = yaml.safe_load(open(os.path.join(ROOT, "catalog.yml")))
RUBRIC = yaml.safe_load(open(os.path.join(ROOT, "rubric.yml")))
LEVERS = RUBRIC["levers"]
AS_OF = "2026-11-20T06:00:00Z"
FRESH = "2026-11-20T02:00:00Z"
STALE = {"forecast": "2026-11-08T02:00:00Z", "account_priority": "2026-11-16T02:00:00Z",
         "composite": "2026-11-17T02:00:00Z", "usage": "2026-11-18T02:00:00Z",
         "conversations": "2026-11-15T02:00:00Z"}
# The brain_view_contracts_hash of pipelines/views/ the sample answers were given on: what
# `gtmos views list` prints after a build. `gtmos eval brain` refuses outputs answered on other
# contracts than the warehouse publishes, so update it (and rerun this) when the contract
# changes; a test fails until then.
VIEWS_HASH = "cf0af307e544119b72d65265247484a371d55a3514ca64153d869d47d7d980be"
PROMPT = {w: "sha256:" + hashlib.sha256(f"{w} system prompt v7".encode()).hexdigest()[:32]
          for w in ("AGT-901", "AGT-902")}
MODEL = "brain-sonnet-2026-10"

# The account brain reads the composite and the components a question type needs.
COMPONENTS = {
    "churn_diagnosis": ["health", "churn_risk", "usage", "conversations"],
    "expansion_qualification": ["expansion", "usage", "churn_risk"],
    "handoff_briefing": ["account_profile", "account_opportunities", "conversations", "onboarding"],
    "qbr_narrative": ["qbr", "usage", "technical_milestones"],
}
# The action each AGT-902 question type proposes when the answer is right.
ACTION = {
    "churn_diagnosis": "escalate_to_slm",
    "expansion_qualification": "open_expansion_play",
    "handoff_briefing": "brief_new_ae_or_csm",
    "qbr_narrative": "pull_qbr_forward",
    "plan_diagnosis": "recommend_query_for_human",
    "coverage_gap": "flag_coverage_gap",
    "play_retrospective": "draft_play",
    "forecast_bias": "recommend_query_for_human",
}
TOOL_SAYS = {
    "TOOL-004": "TOOL-004 fits a {g} % monthly growth with the overage {d} days out",
    "TOOL-008": "TOOL-008 finds a Gini of 0.{g} across teams, siloed_by_team",
    "TOOL-010": "TOOL-010 classifies the champion as stopped_engaging, {d} days without a meeting",
}


def sources_for(q):
    """sources_read: the views the brain read, then the tools it cited."""
    if q["writer"] == "AGT-901":
        names = list(q.get("must_cite_sources", []))
        for extra in ("metrics", "opportunities"):
            if extra not in names and len(names) < 3:
                names.append(extra)
    else:
        names = ["composite"] + COMPONENTS[q["type"]]
    stale = q.get("stale_source")
    if stale and stale not in names:
        names.append(stale)
    out = [{"source_index": i + 1, "source": n, "kind": "view",
            "last_refresh_timestamp": STALE[n] if n == stale else FRESH, "is_stale": n == stale}
           for i, n in enumerate(names)]
    for t in q.get("must_cite_tools", []):
        out.append({"source_index": len(out) + 1, "source": t, "kind": "tool",
                    "last_refresh_timestamp": AS_OF, "is_stale": False})
    return out


def answer(q, run, r, flaws=()):
    """One BrainAnalysisLog line for question q, run `run`; `flaws` names injected faults."""
    src = sources_for(q)
    idx = {s["source"]: s["source_index"] for s in src}
    views = [s for s in src if s["kind"] == "view"]
    stale = q.get("stale_source")
    if stale:
        first = f"On the fresh sources {q['subject']} shows no change that settles the question"
    else:
        first = q["ground_truth"].rstrip(".")
    sentences = [f"{first} [src:{views[0]['source_index']}]."]
    for s in views[1:]:
        v = r.randint(12, 96)
        sentences.append(f"The {s['source']} view puts the key measure at {v} against {v + r.randint(-9, 9)} a quarter ago [src:{s['source_index']}].")
    for t in q.get("must_cite_tools", []):
        sentences.append(TOOL_SAYS[t].format(g=r.randint(3, 9), d=r.randint(20, 60)) + f" [src:{idx[t]}].")
    acknowledged = bool(stale) and "hide_stale" not in flaws
    if acknowledged:
        sentences.append(f"The {stale} data is stale: last refreshed {STALE[stale][:10]}, past its staleness threshold, so this answer holds until it is refreshed [src:{idx[stale]}].")
    if "uncited" in flaws:
        sentences.append(f"Renewal is {r.randint(30, 120)} days out.")
    if "dangling" in flaws:
        sentences.append(f"Support escalations doubled to {r.randint(4, 9)} this quarter [src:{len(src) + 5}].")
    sentences.append("The move follows from these sources.")
    action = "offer_discount" if "invented_action" in flaws else ACTION[q["type"]]
    if stale and q["writer"] == "AGT-902" and not flaws:
        action = "recommend_human_query"
    if "flip" in flaws:
        action = "none"
    if q["writer"] == "AGT-902":
        lever = LEVERS.get(action, "AGT-999")
        if "wrong_lever" in flaws:
            lever = "AGT-503"
    else:
        lever = None
    conf = round(r.uniform(0.55, 0.75) if stale else r.uniform(0.72, 0.92), 2)
    if "overconfident" in flaws:
        conf = 0.97
    actions = [{"action_type": action, "lever": lever, "confidence": conf}]
    tools = [{"tool": t, "status": "ok"} for t in q.get("must_cite_tools", [])]
    if "skip_tool" in flaws:
        tools = tools[:-1]
    flags = ["multi_source"] + (["inference"] if stale else ["high_confidence"])
    return {
        "analysis_id": f"BA-{q['writer'][4:]}-{q['id']}-r{run}",
        "question_id": q["id"],
        "run": run,
        "writer_agent_id": q["writer"],
        "model_id": MODEL,
        "system_prompt_hash": PROMPT[q["writer"]],
        "brain_view_contracts_hash": VIEWS_HASH,
        "subject": q["subject"],
        "created_at": AS_OF,
        "narrative_output": " ".join(sentences),
        "sources_read": src,
        "proposed_actions": actions,
        "tool_calls_made": tools,
        "data_staleness_acknowledged": acknowledged,
        "confidence_flags": flags,
        "cost_usd_estimate": round(r.uniform(0.05, 0.14) * (1.8 if q["writer"] == "AGT-901" else 1.0), 4),
    }


def score(q, run, r, reviewer, hallucinations=0, diagnosis=None, coherence=None, lever_violations=0,
          recognised=None, comment=""):
    claims = r.randint(9, 15)
    stale = bool(q.get("stale_source"))
    return {
        "question_id": q["id"],
        "run": run,
        "reviewer_user_id": reviewer,
        "hallucinations_detected": hallucinations,
        "total_claims": claims,
        "diagnosis_accuracy_score": diagnosis if diagnosis is not None else round(r.choice([0.7, 0.8, 0.8, 0.9, 0.9, 1.0]), 2),
        "narrative_coherence_rating": coherence if coherence is not None else r.choice([4, 4, 5, 5, 4, 3, 5]),
        "lever_mapping_violations": lever_violations if q["writer"] == "AGT-902" else None,
        "staleness_correctly_recognized": (recognised if recognised is not None else True) if stale else None,
        "comments": comment,
    }


def write(name, rows):
    os.makedirs(os.path.join(ROOT, "samples"), exist_ok=True)
    with open(os.path.join(ROOT, "samples", name), "w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def main():
    qs = CATALOG["questions"]
    # The candidate: two runs of every question; Q20's second run changes its answer.
    r = random.Random(20261122)
    outs, scores = [], []
    for run in (1, 2):
        for q in qs:
            flaws = ("flip",) if (q["id"], run) == ("Q20", 2) else ()
            if (q["id"], run) == ("Q17", 2):
                flaws = ("uncited",)
            outs.append(answer(q, run, r, flaws))
            h = 1 if (q["id"], run) in (("Q04", 1), ("Q15", 2), ("Q27", 1)) else 0
            comment = "one unsupported claim about deal timing" if h else ""
            diag = 0.4 if (q["id"], run) == ("Q20", 2) else None
            if diag is not None:
                comment = "second run talks itself out of a sound expansion; the spike reading is wrong"
            scores.append(score(q, run, r, "u_okafor", hallucinations=h, diagnosis=diag, comment=comment))
    write("candidate_outputs.jsonl", outs)
    write("candidate_scores.jsonl", scores)

    # The regressed prompt: one run, faults where the validators and the rubric must find them.
    r = random.Random(7)
    faults = {"Q19": ("invented_action",), "Q14": ("dangling",), "Q12": ("hide_stale",),
              "Q25": ("wrong_lever",), "Q21": ("skip_tool",), "Q29": ("overconfident",)}
    outs, scores = [], []
    for q in qs:
        f = faults.get(q["id"], ())
        outs.append(answer(q, 1, r, f))
        scores.append(score(q, 1, r, "u_lindqvist",
                            hallucinations=2 if q["id"] in ("Q11", "Q13", "Q16", "Q22", "Q26") else 0,
                            diagnosis=0.3 if f else None,
                            coherence=3 if f else None,
                            lever_violations=1 if q["id"] == "Q25" else 0,
                            recognised=False if q["id"] == "Q12" else None,
                            comment="; ".join(f)))
    write("regressed_outputs.jsonl", outs)
    write("regressed_scores.jsonl", scores)


if __name__ == "__main__":
    main()
