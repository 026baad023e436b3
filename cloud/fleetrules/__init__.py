"""Fleet rules: the shared rule language (:mod:`rules`) evaluated in the cloud on rollups, with
results going through the same alarm lifecycle as edge alarms (``source = 'fleet'``)."""
