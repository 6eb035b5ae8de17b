-- TimescaleDB (applied only when pg_available_extensions lists timescaledb).
-- UNTESTED in this project's CI, which has no TimescaleDB: see docs/storage.md.
CREATE EXTENSION IF NOT EXISTS timescaledb;

-- Weekly chunks of the bigint-ms time column; existing rows move into chunks.
SELECT create_hypertable('readings', 'ts', chunk_time_interval => 604800000,
                         migrate_data => true, create_default_indexes => false,
                         if_not_exists => true);

-- Integer time needs a "now" for policies: ms since the epoch.
CREATE OR REPLACE FUNCTION ivy_now_ms() RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT (extract(epoch FROM now()) * 1000)::bigint $$;
SELECT set_integer_now_func('readings', 'ivy_now_ms', replace_if_exists => true);

ALTER TABLE readings SET (timescaledb.compress,
                          timescaledb.compress_segmentby = 'meter_id, quantity',
                          timescaledb.compress_orderby = 'ts');
SELECT add_compression_policy('readings', compress_after => 604800000::bigint,
                              if_not_exists => true);

-- 15-minute buckets for dashboards and external tools (Grafana); the API reads raw rows.
CREATE MATERIALIZED VIEW readings_15m WITH (timescaledb.continuous) AS
    SELECT meter_id, quantity, time_bucket(900000::bigint, ts) AS bucket,
           avg(value) AS avg, min(value) AS min, max(value) AS max,
           first(value, ts) AS first, last(value, ts) AS last, count(*) AS n
    FROM readings GROUP BY meter_id, quantity, bucket
    WITH NO DATA;
SELECT add_continuous_aggregate_policy('readings_15m', start_offset => 86400000::bigint,
                                       end_offset => 900000::bigint,
                                       schedule_interval => INTERVAL '15 minutes',
                                       if_not_exists => true);
