"""Equipment health records and anomaly detection (issue 8).

Layout (one job per module):

- :mod:`.frames`      hourly aggregates of one device as numpy columns (what ``telemetry_1h`` holds)
- :mod:`.features`    causal numpy feature pipelines: EWMA, CUSUM, robust z, seasonal baselines
- :mod:`.detectors`   one detector per device kind (scikit-learn / numpy baselines, calibrated limits)
- :mod:`.modelstore`  versioned models in PostgreSQL as JSON (never pickle)
- :mod:`.health`      the equipment health record and its 0–100 score
- :mod:`.pipeline`    fit baselines, calibrate limits, score — shared by jobs and evaluation
- :mod:`.jobs`        train / score against the database; detections → fleet alarms → work orders
- :mod:`.service`     the scheduled component of ``guanjia cloud serve``
- :mod:`.evaluation`  event-level precision / recall / false alarms / lead time against ground truth
- :mod:`.simfleet`    the labelled evaluation fleet, driven through the simulators' physics

See ``docs/analytics.md`` for the formulas and the evaluation table.
"""
