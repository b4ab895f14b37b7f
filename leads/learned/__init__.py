"""The learned score: a model trained each night on what happened to the leads we fed.

- `features.py`: the lead features (age, equity, value, owner occupied, property type, verification, state, source
  partner) as SQL columns and as a numeric matrix (`Featurizer`), and the words a broker reads for each;
- `outcomes.py`: the fed leads with a known outcome, from `pipeline_events` (selectors);
- `training.py`: logistic regression and `HistGradientBoostingClassifier` fitted on the older outcomes, judged on
  the newest (time-based holdout) against the rule score (pure: arrays in, figures out);
- `scoring.py`: the active model's scores for the contactable leads, written set-based, with an explanation;
- `services.py`: train-and-maybe-promote, activate a version, go back to the rule score.

The model versions are `leads.models.ScoreModelVersion`; the nightly job is `pipeline/campaigns/learning.py`.
"""
