-- mware users: abuse limits that tripped, kept so the next active instance enforces them
-- (a failover must not reset a lockout). One row per limit and key; the key is a hash of
-- what the client sent (a login, an address, an IP), never the text itself.
CREATE TABLE limit_trips (
    kind     TEXT NOT NULL,
    key_hash BIGINT NOT NULL,
    full_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (kind, key_hash)
);
CREATE INDEX limit_trips_full_at ON limit_trips (full_at);
