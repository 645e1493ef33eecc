-- Jobs and the unexplained templates of their reports: the tables of the
-- embedded SQLite store, on PostgreSQL. Times are RFC 3339 UTC text with
-- milliseconds, as in SQLite: they sort as text, and copy unchanged.
CREATE TABLE jobs (
    seq           bigserial PRIMARY KEY,
    id            text NOT NULL UNIQUE,
    name          text NOT NULL,
    size          bigint NOT NULL,
    status        text NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    submitted_at  text NOT NULL,
    started_at    text,
    finished_at   text,
    attempts      integer NOT NULL DEFAULT 0,
    rules_version text,
    error         text,
    diagnoses     text,
    -- A report stored before reports were compressed (copied from SQLite).
    result        text,
    -- The report, compact JSON through zlib.
    report        bytea,
    -- The id of the token that uploaded it.
    owner         text,
    -- When a front published it to the queue (NULL: not yet).
    published_at  text
);
-- Compressed already: stored out of line, not compressed again, so
-- substring() reads a chunk without reading the whole value.
ALTER TABLE jobs ALTER COLUMN report SET STORAGE EXTERNAL;
CREATE INDEX jobs_by_status ON jobs (status, seq);
CREATE INDEX jobs_by_owner ON jobs (owner, seq);
CREATE INDEX jobs_by_finished ON jobs (finished_at);

CREATE TABLE unexplained (
    id           bigserial PRIMARY KEY,
    job_id       text NOT NULL,
    source       text NOT NULL,
    level        text NOT NULL,
    template     text NOT NULL,
    count        bigint NOT NULL,
    finished_at  text NOT NULL,
    example_file text NOT NULL,
    example_line bigint NOT NULL,
    example_text text NOT NULL
);
CREATE INDEX unexplained_by_template ON unexplained (source, level, template);
CREATE INDEX unexplained_by_job ON unexplained (job_id);
