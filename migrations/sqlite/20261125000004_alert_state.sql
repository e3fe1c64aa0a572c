-- The highest tier of a move each reader has been alerted to, per symbol,
-- trading day and direction: one move alerts once, a bigger one again.
CREATE TABLE alert_state (
    subscriber_id BLOB NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    symbol TEXT NOT NULL,
    trading_day TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('up', 'down')),
    tier INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (subscriber_id, symbol, trading_day, direction)
);
CREATE INDEX alert_state_by_day ON alert_state (trading_day);
