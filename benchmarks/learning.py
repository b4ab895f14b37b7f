"""The learned score's nightly training at 1,000,000 fed leads with known outcomes, and its scoring of the feeder's
candidates. Writes the `learning` section of docs/benchmarks.md.

Measures (each once: the training is deterministic and long):
- reading the outcomes (`outcomes_load`: the events' window pass, the join to the leads, the rule score);
- fitting and judging both candidates on the time-based holdout (`candidates_train`, with the bootstrap guard);
- scoring the candidates with the fitted model (`leads_score_with_model`: batch predict, explanations, the
  `UPDATE … FROM unnest` chunks).

    .venv/bin/python -m benchmarks.learning                  # 1,000,000 outcomes, fresh database
    .venv/bin/python -m benchmarks.learning --rows 100000    # smaller
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from benchmarks import common

DB_NAME = "equity_connect_bench_learning"

# Fed leads, one a minute from long ago, each with its `campaign_added` event and, for some, an answer: leads from
# the partner 'Referral' reply more (a signal the rule score does not know). Plus `candidates` queued leads to score.
BUILD_SQL = """
WITH synth AS MATERIALIZED (
  SELECT g, gen_random_uuid() AS id, random() < 0.3 AS referral,
         (ARRAY['CA', 'TX', 'FL', 'NY', 'AZ', 'OH', 'WA', 'GA'])[1 + floor(random() * 8)::int] AS state,
         62 + floor(random() * 30)::int AS age, round((random() * 900000)::numeric, 2) AS equity,
         round((300000 + random() * 900000)::numeric, 2) AS value, random() < 0.7 AS owner,
         (ARRAY['Single Family', 'Condo', 'Duplex'])[1 + floor(random() * 3)::int] AS ptype,
         random() AS u, now() - interval '3 years' + g * interval '1 minute' AS fed_at
    FROM generate_series(1, %(rows)s) AS g
), leads_in AS (
  INSERT INTO leads (id, first_name, property_state, age, estimated_equity, property_value, owner_occupied,
                     property_type, email_verified, source, campaign_status, created_at)
  SELECT id, 'Bench' || g, state, age, equity, value, owner, ptype, true,
         CASE WHEN referral THEN 'Referral' ELSE 'Other' END, 'active', fed_at
    FROM synth
), fed AS (
  INSERT INTO pipeline_events (event_type, lead_id, event_data, created_at)
  SELECT 'campaign_added', id, jsonb_build_object('exploration', g %% 10 = 0), fed_at FROM synth
)
INSERT INTO pipeline_events (event_type, lead_id, created_at)
SELECT CASE WHEN u < 0.02 THEN 'unsubscribed' ELSE 'email_replied' END, id, fed_at + interval '2 days'
  FROM synth
 WHERE u < CASE WHEN referral THEN 0.25 ELSE 0.06 END
"""
CANDIDATES_SQL = """
INSERT INTO leads (first_name, property_state, age, estimated_equity, property_value, owner_occupied, property_type,
                   email_verified, source, campaign_status, consent, consented_at, consent_method,
                   assigned_broker_id)
SELECT 'Candidate' || g, 'TX', 62 + g %% 30, 1000 * (g %% 900), 400000, g %% 3 > 0, 'Single Family', true,
       CASE WHEN g %% 3 = 0 THEN 'Referral' ELSE 'Other' END, 'queued', true, now(), 'form', %(broker)s
  FROM generate_series(1, %(candidates)s) AS g
"""


class _Rollback(Exception):
    pass


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.learning")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--candidates", type=int, default=200_000)
    parser.add_argument("--keep", action="store_true", help="reuse the benchmark database if it has the rows")
    options, _ = parser.parse_known_args(argv)
    os.environ["DJANGO_DEBUG"] = "false"
    common.setup(DB_NAME, fresh=not options.keep)

    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from equity_connect.db import admin_connection, service_context
    from leads.learned.outcomes import outcomes_load
    from leads.learned.scoring import leads_score_with_model
    from leads.learned.training import candidates_train
    from leads.models import Lead
    from security.models import Broker

    with service_context():
        existing = Lead.objects.count()
        user, _ = get_user_model().objects.get_or_create(username="bench-learning@example.com")
        broker, _ = Broker.objects.get_or_create(
            email="bench-learning@example.com", defaults={"name": "Bench Broker", "user": user}
        )
    build_seconds = None
    if existing < options.rows:
        print(f"building {options.rows:,} fed leads with outcomes and {options.candidates:,} candidates…", flush=True)
        started = time.perf_counter()
        with admin_connection(), connection.cursor() as cursor:
            cursor.execute("SELECT setseed(0.5)")
            cursor.execute(BUILD_SQL, {"rows": options.rows})
            cursor.execute(CANDIDATES_SQL, {"candidates": options.candidates, "broker": str(broker.pk)})
            cursor.execute("ANALYZE leads")
            cursor.execute("ANALYZE pipeline_events")
        build_seconds = time.perf_counter() - started
        print(f"built in {build_seconds:.0f} s", flush=True)

    with service_context(budget="job"):
        started = time.perf_counter()
        outcomes = outcomes_load(now=timezone.now(), sequence_days=settings.SCORE_MODEL_SEQUENCE_DAYS)
        load_seconds = time.perf_counter() - started
        started = time.perf_counter()
        trained = candidates_train(
            outcomes.rows,
            outcomes.labels,
            outcomes.rule_scores,
            limit=settings.FEEDER_DAILY_LIMIT,
            holdout_share=settings.SCORE_MODEL_HOLDOUT_SHARE,
            min_outcomes=settings.SCORE_MODEL_MIN_OUTCOMES,
            min_auc_gain=settings.SCORE_MODEL_MIN_AUC_GAIN,
        )
        train_seconds = time.perf_counter() - started
        started = time.perf_counter()
        try:
            with transaction.atomic():
                scored = leads_score_with_model(model=trained.model, version_id=0)
                score_seconds = time.perf_counter() - started
                raise _Rollback  # the benchmark's scores are not kept
        except _Rollback:
            pass

    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    metrics = trained.metrics
    lines = [
        f"Machine: {common.machine()}. Load average when the measurements ended: {load} (other work shared the"
        " machine; figures vary with it).",
        "",
        f"Data: {len(outcomes):,} fed leads with a known outcome ({int(outcomes.labels.sum()):,} replied;"
        f" {outcomes.explored:,} from the exploration draw), {scored:,} queued candidates to score."
        + (f" Generating them with `INSERT … SELECT` took {build_seconds:.0f} s." if build_seconds else ""),
        "",
        "| what | time |",
        "|---|---:|",
        f"| read the outcomes (`outcomes_load`: events, leads, rule score) | {load_seconds:.1f} s |",
        "| fit logistic regression and `HistGradientBoostingClassifier`, judge both and the rule score on the"
        f" time-based holdout, bootstrap guard (`candidates_train`) | {train_seconds:.1f} s |",
        f"| **training in all** (read + fit + judge) | **{load_seconds + train_seconds:.1f} s** |",
        f"| score {scored:,} candidates (batch predict, explanations, `UPDATE … FROM unnest`) |"
        f" {score_seconds:.1f} s |",
        "",
        f"Winner: {trained.model.kind}, AUC {metrics['model']['auc']} vs the rule score's {metrics['rule']['auc']},"
        f" precision at {metrics['limit']} {metrics['model']['precision_at_limit']} vs"
        f" {metrics['rule']['precision_at_limit']}; promoted: {trained.decision.promoted}."
        f" Under a minute for {len(outcomes):,} outcomes:"
        f" **{'met' if load_seconds + train_seconds < 60 else 'missed'}**.",
    ]
    common.write_section("learning", "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
