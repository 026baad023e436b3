-- Issue 18: what the star level counts besides ratings and SLA results (cloud/ops/workorders/
-- performance.py, weights in the policy's `stars`): residents' likes (one per resident and order),
-- years of service (from hired_on) and certifications (电梯安全管理员证, 电工证, …).
ALTER TABLE butlers ADD COLUMN IF NOT EXISTS hired_on date;
ALTER TABLE butlers ADD COLUMN IF NOT EXISTS certifications text[] NOT NULL DEFAULT '{}';
CREATE TABLE IF NOT EXISTS butler_likes (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    butler_id      bigint NOT NULL REFERENCES butlers (id),
    user_id        bigint NOT NULL,
    work_order_id  bigint NOT NULL REFERENCES work_orders (id),
    created_at     timestamptz NOT NULL,
    UNIQUE (work_order_id, user_id)
);
CREATE INDEX IF NOT EXISTS butler_likes_of ON butler_likes (butler_id, created_at);
