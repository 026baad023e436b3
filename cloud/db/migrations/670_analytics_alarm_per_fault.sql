-- Analytics alarms are per fault, not per detector channel (cloud.analytics.jobs.alarm_rule):
-- rename the rules of existing alarms so the next clear finds them. Where two channels of one
-- fault both hold a current alarm on a device, the most recent active one stays current and the
-- other is archived (its history and work order are kept; nothing is deleted).
CREATE TEMP TABLE analytics_rule_map (old text PRIMARY KEY, new text NOT NULL);
INSERT INTO analytics_rule_map VALUES
    ('analytics.pump.current_excess', 'analytics.pump.bearing_wear'),
    ('analytics.pump.current_excess_slow', 'analytics.pump.bearing_wear'),
    ('analytics.pump.current_deficit', 'analytics.pump.dry_run'),
    ('analytics.pump.suction_loss', 'analytics.pump.dry_run'),
    ('analytics.pump.flow_excess', 'analytics.pump.pressure_loss'),
    ('analytics.pump.duty_excess', 'analytics.pump.pressure_loss'),
    ('analytics.pump.pressure_deficit', 'analytics.pump.pressure_loss'),
    ('analytics.meter.energy_excess_1d', 'analytics.meter.energy_drift'),
    ('analytics.meter.energy_excess_3d', 'analytics.meter.energy_drift'),
    ('analytics.meter.energy_excess_cusum', 'analytics.meter.energy_drift'),
    ('analytics.meter.energy_deficit_1d', 'analytics.meter.energy_drop'),
    ('analytics.elevator.doors_per_trip', 'analytics.elevator.door_wear'),
    ('analytics.elevator.trips_missing', 'analytics.elevator.out_of_service'),
    ('analytics.gate.passages_missing', 'analytics.gate.gate_blocked');

WITH ranked AS (
    SELECT a.id, row_number() OVER (PARTITION BY a.community, a.device, m.new
                                    ORDER BY a.active DESC, a.last_raised_at DESC, a.id DESC) AS n
    FROM alarms a JOIN analytics_rule_map m ON a.rule = m.old WHERE a.current)
UPDATE alarms SET current = false WHERE id IN (SELECT id FROM ranked WHERE n > 1);

UPDATE alarms a SET rule = m.new FROM analytics_rule_map m WHERE a.rule = m.old;

DROP TABLE analytics_rule_map;
