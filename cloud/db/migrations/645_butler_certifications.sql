-- Issue 18: a butler's certifications as records an admin (or the community's engineer) edits —
-- name, certificate number, issuer, valid until — instead of the bare names of migration 512.
-- Only a certificate valid on the community's today counts toward the star level
-- (cloud/ops/workorders/qualifications.py); one without a date (长期有效) always counts.
CREATE TABLE IF NOT EXISTS butler_certifications (
    butler_id    bigint NOT NULL REFERENCES butlers (id) ON DELETE CASCADE,
    position     smallint NOT NULL,           -- the order the admin wrote them in
    name         text NOT NULL,               -- 电梯安全管理员, 特种设备作业人员证, …
    number       text NOT NULL DEFAULT '',
    issuer       text NOT NULL DEFAULT '',
    valid_until  date,
    PRIMARY KEY (butler_id, position)
);
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM information_schema.columns
               WHERE table_name = 'butlers' AND column_name = 'certifications') THEN
        INSERT INTO butler_certifications (butler_id, position, name)
        SELECT b.id, c.ord - 1, c.name FROM butlers b, unnest(b.certifications) WITH ORDINALITY AS c (name, ord)
        ON CONFLICT DO NOTHING;
        ALTER TABLE butlers DROP COLUMN certifications;
    END IF;
END $$;
