-- 0006: the call's recording (质检) or voicemail (留言): recording_file (0002)
-- is its path relative to the data dir; recording_us its audio's duration,
-- recording_sha256 the file's SHA-256 (hex), voicemail 1 when the file is a
-- message the caller left rather than a recording of the conversation.
ALTER TABLE cdr ADD COLUMN recording_us     INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cdr ADD COLUMN recording_sha256 TEXT    NOT NULL DEFAULT '';
ALTER TABLE cdr ADD COLUMN voicemail        INTEGER NOT NULL DEFAULT 0;
