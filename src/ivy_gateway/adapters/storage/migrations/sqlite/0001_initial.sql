-- Initial schema (SQLite). Times are INTEGER milliseconds since the Unix epoch (UTC).

CREATE TABLE meters (
    id          TEXT PRIMARY KEY,            -- 12-digit meter address
    protocol    TEXT NOT NULL,
    model       TEXT,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    last_ip     TEXT,
    online      INTEGER NOT NULL DEFAULT 0,
    status_at   INTEGER                       -- ts of the status event online/last_ip came from
);

-- Clustered on the idempotency key: one (meter, quantity) history is contiguous on disk,
-- so history queries and per-pair pruning are range scans.
CREATE TABLE readings (
    meter_id    TEXT NOT NULL,
    quantity    TEXT NOT NULL,
    ts          INTEGER NOT NULL,
    source      TEXT NOT NULL,
    value       REAL NOT NULL,
    unit        TEXT NOT NULL,
    PRIMARY KEY (meter_id, quantity, ts, source)
) WITHOUT ROWID;

-- Newest reading per (meter, quantity): the meters list and restart recovery read this.
CREATE TABLE last_values (
    meter_id    TEXT NOT NULL,
    quantity    TEXT NOT NULL,
    ts          INTEGER NOT NULL,
    source      TEXT NOT NULL,
    value       REAL NOT NULL,
    unit        TEXT NOT NULL,
    address     TEXT NOT NULL,
    exact       TEXT NOT NULL,               -- the Decimal as text, so recovery is exact
    PRIMARY KEY (meter_id, quantity)
) WITHOUT ROWID;

CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    meter_id    TEXT,
    ts          INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    severity    TEXT NOT NULL,
    data        TEXT NOT NULL,               -- JSON object
    fingerprint TEXT NOT NULL UNIQUE         -- hash of (meter, ts, kind, data): retries add nothing
);
CREATE INDEX events_ts ON events (ts);
CREATE INDEX events_meter_ts ON events (meter_id, ts);

CREATE TABLE commands (
    id           TEXT PRIMARY KEY,
    meter_id     TEXT NOT NULL,
    method       TEXT NOT NULL,
    params       TEXT NOT NULL,              -- JSON object
    requested_by TEXT NOT NULL,
    requested_at INTEGER NOT NULL,
    finished_at  INTEGER,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    result       TEXT,                       -- JSON object
    error        TEXT,
    error_code   TEXT
);
CREATE INDEX commands_requested_at ON commands (requested_at);
