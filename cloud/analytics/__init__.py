"""Equipment health records and anomaly detection (issue 8).

Layout (one job per module):

- :mod:`.frames`      hourly aggregates of one device as numpy columns (what ``telemetry_1h`` holds)
- :mod:`.features`    causal numpy feature pipelines: EWMA, CUSUM, robust z, seasonal baselines
- :mod:`.detectors`   one detector per device kind (scikit-learn / numpy baselines, calibrated limits)
- :mod:`.modelstore`  versioned models in PostgreSQL as JSON (never pickle)
- :mod:`.health`      the equipment health record and its 0–100 score
- :mod:`.jobs`        train / score against the database; detections → fleet alarms → work orders
- :mod:`.service`     the scheduled component of ``guanjia cloud serve``
- :mod:`.detection`   what a detector emits (raised by the detectors, turned into alarms by the jobs)

Beside the product (issue 16): the labelled evaluation fleet is ``simulators/labelled_fleet.py``
(the simulators' physics), the event-level scoring and the limit calibration are
``bench/analytics_scoring.py`` / ``bench/analytics_eval.py`` (``python -m bench analytics-eval``),
and the demo's bearing-wear replay is ``guanjia/app/demo_replay.py``.

See ``docs/analytics.md`` for the formulas and the evaluation table.
"""
