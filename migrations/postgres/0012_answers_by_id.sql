-- The call or verification id an answer was given for (the journal's `message_id`), so a
-- call's or a verification's view lists the answers given to it. NULL for answers stored
-- before this column: they are still given to retries, only not listed.
ALTER TABLE answers ADD COLUMN message_id TEXT;
CREATE INDEX answers_message_id ON answers (message_id, answered_at) WHERE message_id IS NOT NULL;
