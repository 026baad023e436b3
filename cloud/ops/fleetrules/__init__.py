"""Fleet rules: the shared rule language (:mod:`rules`) evaluated in the cloud — on hourly rollups
(:mod:`.runner`, component ``fleet-rules``) and on the live ingested stream (:mod:`.stream`,
component ``fleet-stream``) — with results going through the same alarm lifecycle as edge alarms
(``source = 'fleet'``)."""
