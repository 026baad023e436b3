-- A community's own calendar days (issue 15; 650-654): closures and local festivals it adds to
-- China's statutory holidays, or statutory days it takes back. The statutory days themselves come
-- from the `holidays` library (cloud/analytics/daycalendar.py), never from this table: the State
-- Council's notice changes every year and the library follows it. The analytics jobs read this
-- table with the community's time zone (communities.timezone) to decide each hour's day type;
-- cloud/analytics/calendar_store.py reads and writes it, always with an admin_audit row.
CREATE TABLE IF NOT EXISTS community_calendar_days (
    community   text NOT NULL,
    day         date NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('holiday', 'workday')),
    note        text NOT NULL DEFAULT '',
    updated_at  timestamptz NOT NULL,
    updated_by  text NOT NULL,
    PRIMARY KEY (community, day)
);
