-- Scheduled delivery of the manager reports (reports, 410-419). A subscription names a community
-- (or NULL: the company report of every community), a period kind and its channels; the delivery
-- component enqueues one notification per channel after each period closes (local time) and
-- moves last_period on in the same transaction, and each notification's dedup_key carries
-- (subscription, period start, channel): a period is never enqueued twice, also across restarts
-- and with two services running.
CREATE TABLE IF NOT EXISTS report_subscriptions (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    community    text,                                  -- NULL: company-wide
    period       text NOT NULL CHECK (period IN ('day', 'week', 'month')),
    emails       text[] NOT NULL DEFAULT '{}',
    messengers   text[] NOT NULL DEFAULT '{}',          -- robot / apprise URLs (cloud.ops.notify.channels)
    language     text NOT NULL DEFAULT 'zh' CHECK (language IN ('zh', 'en')),
    active       boolean NOT NULL DEFAULT true,
    last_period  date,                                  -- first day of the last period enqueued
    created_at   timestamptz NOT NULL,
    CHECK (cardinality(emails) + cardinality(messengers) > 0)
);

-- Files sent with an email notification (the report's PDF); read by the notification sender.
CREATE TABLE IF NOT EXISTS notification_attachments (
    notification_id  bigint NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    filename         text NOT NULL,
    content_type     text NOT NULL,
    data             bytea NOT NULL,
    PRIMARY KEY (notification_id, filename)
);
