-- Items have a life of their own within their activity: a state (an offline item sells
-- nothing while its activity stays published) and an optional window inside the
-- activity's (NULL: the activity's).
ALTER TABLE items ADD COLUMN state VARCHAR(16) NOT NULL DEFAULT 'online';
ALTER TABLE items ADD COLUMN start_at DATETIME(3) NULL;
ALTER TABLE items ADD COLUMN end_at DATETIME(3) NULL;
