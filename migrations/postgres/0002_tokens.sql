-- API tokens: only the SHA-256 of each token is kept (as in SQLite).
CREATE TABLE tokens (
    id           text PRIMARY KEY,
    name         text NOT NULL UNIQUE,
    role         text NOT NULL CHECK (role IN ('upload', 'read', 'admin')),
    hash         bytea NOT NULL,
    created_at   text NOT NULL,
    last_used_at text
);
