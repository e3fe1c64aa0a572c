CREATE TABLE stories (
    id BLOB PRIMARY KEY NOT NULL,
    guid TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    title TEXT NOT NULL,
    url TEXT NOT NULL,
    author TEXT,
    summary TEXT NOT NULL DEFAULT '',
    tickers TEXT NOT NULL DEFAULT '',
    published_at TEXT NOT NULL,
    hidden BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX stories_by_published ON stories (published_at);

CREATE TABLE latest_quotes (
    symbol TEXT PRIMARY KEY NOT NULL,
    price REAL NOT NULL,
    previous_close REAL NOT NULL,
    currency TEXT,
    as_of TEXT NOT NULL,
    source TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE quote_history (
    symbol TEXT NOT NULL,
    as_of TEXT NOT NULL,
    source TEXT NOT NULL,
    price REAL NOT NULL,
    previous_close REAL NOT NULL,
    PRIMARY KEY (symbol, as_of, source)
);

CREATE TABLE feed_state (
    url TEXT PRIMARY KEY NOT NULL,
    etag TEXT,
    last_modified TEXT,
    last_polled_at TEXT NOT NULL,
    last_error TEXT
);
