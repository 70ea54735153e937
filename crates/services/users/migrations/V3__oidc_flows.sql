-- mware users: logins through identity providers waiting for their callback, kept in the
-- group's database so a login started on one instance finishes on the next after a
-- failover. Found by the hash of the state; taken once (deleted when used).
CREATE TABLE oidc_flows (
    state_hash BYTEA PRIMARY KEY,
    domain     TEXT NOT NULL,
    provider   TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    verifier   TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX oidc_flows_expires ON oidc_flows (expires_at);
