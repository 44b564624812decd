-- 0006: the call's recording (质检) or voicemail (留言). Same meaning as
-- migrations/sqlite/0006_recording.sql.
ALTER TABLE cdr ADD COLUMN recording_us     BIGINT  NOT NULL DEFAULT 0;
ALTER TABLE cdr ADD COLUMN recording_sha256 TEXT    NOT NULL DEFAULT '';
ALTER TABLE cdr ADD COLUMN voicemail        BOOLEAN NOT NULL DEFAULT false;
