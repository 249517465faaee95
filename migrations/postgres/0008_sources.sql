-- Issue 19: callbacks come in on named sources, each with its own authentication. Every
-- callback journaled before this came in on the environment's webhook, `default`; which
-- secret verified it was not kept. A constant default adds the column without a rewrite.
ALTER TABLE callbacks ADD COLUMN source TEXT NOT NULL DEFAULT 'default';
ALTER TABLE callbacks ADD COLUMN secret_label TEXT;
