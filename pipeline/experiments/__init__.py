"""A/B experiments on the campaign feed: models (models.py), the write paths (services.py), the feeder's
routing of each fed lead to a variant (routing.py), and the figures (statistics.py: Wilson intervals and a
two-proportion z-test; selectors.py: the counts per variant)."""
