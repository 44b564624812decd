-- 0008: transfers and three-way calls to directory entries. Same meaning as
-- migrations/sqlite/0008_handoffs.sql (a JSON array as text).
ALTER TABLE cdr ADD COLUMN handoffs TEXT NOT NULL DEFAULT '';
