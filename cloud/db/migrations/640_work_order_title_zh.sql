-- Issue 18: a work order's title in Chinese beside the English one (guanjia.core.lang). Every origin
-- stores it at creation (cloud.ops.workorders.repo.open_order); NULL only for rows written by hand,
-- which readers show in English. Existing alarm-born orders get it from their alarm's message_zh
-- label (the edge rendered it from the rule's Chinese message), with the device in front as the
-- English title has it; every other existing order's title is one text for both languages.
ALTER TABLE work_orders ADD COLUMN IF NOT EXISTS title_zh text;

UPDATE work_orders w
   SET title_zh = left(CASE WHEN w.device IS NULL OR (a.labels ->> 'message_zh') LIKE w.device || '%'
                            THEN a.labels ->> 'message_zh'
                            ELSE w.device || '：' || (a.labels ->> 'message_zh') END, 200)
  FROM alarms a
 WHERE a.id = w.alarm_id AND w.title_zh IS NULL AND coalesce(a.labels ->> 'message_zh', '') <> '';

UPDATE work_orders SET title_zh = title WHERE title_zh IS NULL;
