-- When a report subscription last reached its recipients (issue 17, the report settings page):
-- the newest sent_at of the subscription's manager_report notifications. The outbox holds every
-- notification of the platform, so the page's read goes through this partial index (only the
-- report rows, keyed by the subscription id the scheduler writes into the payload) instead of
-- scanning it. Text, not a cast to bigint: an index expression that can fail would fail inserts.
CREATE INDEX IF NOT EXISTS notifications_report_sent ON notifications ((payload ->> 'subscription'), sent_at)
    WHERE event = 'manager_report';
