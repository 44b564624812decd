-- 0006 is the recording work's (issue 12); this placeholder keeps the numbers without a
-- gap on the hooks branch and is replaced by that migration when the branches merge.
SELECT 1;
