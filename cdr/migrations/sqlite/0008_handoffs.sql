-- 0008: transfers and three-way calls to directory entries (一号对外): a JSON array of
-- {kind, entry, number, trunk, agent, at, answered, outcome, agent_left, sip_status} per
-- call, in order (cdr.Handoff); empty when the call had none. A column rather than a child
-- table: a call has one or two, they are read with the record and never queried alone.
ALTER TABLE cdr ADD COLUMN handoffs TEXT NOT NULL DEFAULT '';
