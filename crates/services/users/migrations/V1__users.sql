-- mware users: accounts, one-time tokens, sessions and the mail outbox of a group's domains.
CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    domain        TEXT NOT NULL,
    login         TEXT NOT NULL,
    email         TEXT,
    password_hash TEXT,
    role          TEXT NOT NULL DEFAULT 'user',
    state         TEXT NOT NULL DEFAULT 'active',
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (domain, login)
);

CREATE TABLE tokens (
    id          BIGSERIAL PRIMARY KEY,
    token_hash  BYTEA NOT NULL UNIQUE,
    kind        TEXT NOT NULL,
    domain      TEXT NOT NULL,
    user_id     BIGINT REFERENCES users(id) ON DELETE CASCADE,
    email       TEXT,
    role        TEXT,
    secret_hash TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ,
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX tokens_user ON tokens (kind, user_id) WHERE used_at IS NULL AND revoked_at IS NULL;
CREATE INDEX tokens_domain ON tokens (kind, domain, created_at);

CREATE TABLE sessions (
    token_hash BYTEA PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE outbox (
    id         BIGSERIAL PRIMARY KEY,
    domain     TEXT NOT NULL,
    recipient  TEXT NOT NULL,
    subject    TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    next_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts   INT NOT NULL DEFAULT 0,
    sent_at    TIMESTAMPTZ,
    failed_at  TIMESTAMPTZ,
    last_error TEXT
);
CREATE INDEX outbox_due ON outbox (next_at) WHERE sent_at IS NULL AND failed_at IS NULL;
