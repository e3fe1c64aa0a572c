-- Test sends made with an Idempotency-Key: a repeat gets the first answer.
CREATE TABLE test_sends (
    idempotency_key TEXT PRIMARY KEY NOT NULL,
    status INTEGER,
    response TEXT,
    created_at TEXT NOT NULL
);
