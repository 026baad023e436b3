-- Energy targets of the manager reports (能耗指标; reports, 410-419): kWh per community (building
-- NULL) or per building, for a period kind, from a local date on. A report uses the newest target
-- whose valid_from is on or before the period's first day, so a later change never rewrites a
-- past period's report. A day or week without its own target gets the month's pro rata by days.
CREATE TABLE IF NOT EXISTS energy_targets (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    community   text NOT NULL,
    building    text,                                   -- NULL: the whole community
    period      text NOT NULL CHECK (period IN ('day', 'week', 'month')),
    kwh         numeric(14, 3) NOT NULL CHECK (kwh > 0),
    valid_from  date NOT NULL,
    created_at  timestamptz NOT NULL,
    UNIQUE NULLS NOT DISTINCT (community, building, period, valid_from)
);
CREATE INDEX IF NOT EXISTS energy_targets_community ON energy_targets (community, period, valid_from);
