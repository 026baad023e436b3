"""Equipment health records and anomaly detection (issue 8).

Layout (one job per module):

- :mod:`.frames`     hourly aggregates of one device as numpy columns (what ``telemetry_1h`` holds)
- :mod:`.features`   causal numpy feature pipelines: EWMA, CUSUM, robust z, seasonal baselines
- :mod:`.detectors`  one detector per device kind (scikit-learn models + causal alarm logic)
- :mod:`.modelstore` versioned models in PostgreSQL as JSON (never pickle)
- :mod:`.health`     the equipment health record and its 0–100 score
- :mod:`.evaluation` event-level precision/recall/false alarms/lead time against ground truth
- :mod:`.fleet`      the labelled evaluation fleet, driven through the simulators' physics
- :mod:`.jobs`       train / score jobs (CLI and the scheduled cloud-service component)

See ``docs/analytics.md`` for the formulas and the evaluation table.
"""
