-- No query reads callbacks by message id (a message's reports are found through
-- message_status_history.callback_id), and every journaled callback paid for this index.
DROP INDEX IF EXISTS callbacks_message_id;
