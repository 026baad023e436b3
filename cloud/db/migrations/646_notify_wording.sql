-- Issue 18: a community's own wording of notification messages (cloud/ops/notify/wording.py): per
-- message code, language and channel format ('*' = every channel); without a row the shipped
-- sentence of cloud/ops/notify/templates.py is sent. Placeholders are checked when written.
CREATE TABLE IF NOT EXISTS notify_wording (
    community   text NOT NULL,
    code        text NOT NULL,
    lang        text NOT NULL CHECK (lang IN ('zh', 'en')),
    channel     text NOT NULL CHECK (channel IN ('*', 'text', 'markdown', 'sms', 'email')),
    template    text NOT NULL,
    updated_at  timestamptz NOT NULL,
    updated_by  text NOT NULL,
    PRIMARY KEY (community, code, lang, channel)
);
