-- One row per worker process, rewritten by its heartbeat: what /metrics
-- shows per role.
CREATE TABLE workers (
    id            text PRIMARY KEY,
    host          text NOT NULL,
    pid           bigint NOT NULL,
    started_at    text NOT NULL,
    rules_version text NOT NULL,
    threads       bigint NOT NULL,
    running       bigint NOT NULL,
    done          bigint NOT NULL,
    failed        bigint NOT NULL,
    busy_seconds  double precision NOT NULL,
    seen_at       text NOT NULL
);
CREATE INDEX workers_by_seen ON workers (seen_at);
