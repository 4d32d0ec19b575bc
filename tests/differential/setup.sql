-- Differential corpus data, created on Trino (memory catalog).
-- One statement per block; blocks are separated by a line holding only ----.
-- Re-running the whole file recreates every table from scratch.
--
-- readings: 9 nodes x 2184 hours (2024-01-01 .. 2024-03-31) = 19 656 regular
-- rows, plus hand-written edge rows (node_id >= 20 or NULL).  The pair
-- (ts, node_id) is unique (a NULL counting as a value), so ORDER BY ts,
-- node_id is a total order.  Regular prices and volumes are multiples of
-- 0.25, so their sums are exact whatever the summation order.
CREATE SCHEMA IF NOT EXISTS memory.diff
----
DROP TABLE IF EXISTS memory.diff.readings
----
CREATE TABLE memory.diff.readings AS
WITH base AS (
    SELECT
        CAST(t.hour_ts AS timestamp(3)) AS hour_ts,
        CAST(n.node_id AS integer) AS node_id,
        CAST(date_diff('hour', TIMESTAMP '2024-01-01 00:00:00', t.hour_ts) AS bigint) AS h
    FROM UNNEST(sequence(TIMESTAMP '2024-01-01 00:00:00', TIMESTAMP '2024-03-31 23:00:00', INTERVAL '1' HOUR)) AS t(hour_ts)
    CROSS JOIN UNNEST(sequence(1, 9)) AS n(node_id)
),
shaped AS (
    SELECT
        hour_ts
            + node_id % 4 * INTERVAL '15' MINUTE
            + (CASE WHEN node_id = 7 THEN INTERVAL '0.500' SECOND ELSE INTERVAL '0' SECOND END) AS ts,
        node_id,
        h
    FROM base
)
SELECT
    CAST(ts AS timestamp(3)) AS ts,
    node_id,
    CAST(element_at(ARRAY['ERCOT', 'PJM', 'CAISO'], node_id % 3 + 1) AS varchar) AS market,
    CAST(element_at(ARRAY['gas', 'wind', 'solar', 'coal', 'nuclear', 'hydro', 'battery'],
                    CAST((node_id + h / 168) % 7 + 1 AS integer)) AS varchar) AS fuel,
    CASE
        WHEN (h * 13 + node_id) % 53 = 0 THEN CAST(NULL AS double)
        ELSE CAST((h * 37 + node_id * 101) % 400 - 60 AS double) / 4
             + CASE WHEN hour(ts) BETWEEN 17 AND 20 THEN 150.0E0 ELSE 0.0E0 END
    END AS price,
    CAST((h * 17 + node_id * 29) % 1000 AS double) * 0.5E0 + 10 AS volume,
    CASE
        WHEN (h + node_id) % 41 = 0 THEN CAST(NULL AS bigint)
        ELSE CAST((h * 31 + node_id * 7) % 5000 - 700 AS bigint)
    END AS qty,
    CASE
        WHEN (h + 2 * node_id) % 17 = 0 THEN CAST(NULL AS boolean)
        ELSE (h + node_id) % 3 = 0
    END AS flag,
    CAST(ts AS date) AS day,
    CAST(element_at(
        ARRAY['alpha', 'Alpha', 'ALPHA', 'beta', 'Beta Test', ' padded', 'padded ', '  both  ',
              '', NULL, 'é', 'café', 'CAFÉ', 'ß', 'Straße', '東京', '東京タワー', '🚀',
              'rocket 🚀 launch', 'a_b', 'a%b', 'back\slash', 'x', 'Zeta', 'mixed Case Label',
              NULL, 'alpha', 'gamma-ray', '100%', 'O''Brien'],
        CAST((h * 7 + node_id * 3) % 30 + 1 AS integer)) AS varchar) AS label
FROM shaped
----
INSERT INTO memory.diff.readings (ts, node_id, market, fuel, price, volume, qty, flag, day, label)
SELECT CAST(ts AS timestamp(3)), CAST(node_id AS integer), CAST(market AS varchar), CAST(fuel AS varchar),
       CAST(price AS double), CAST(volume AS double), CAST(qty AS bigint), CAST(flag AS boolean),
       CAST(day AS date), CAST(label AS varchar)
FROM (VALUES
    (CAST(NULL AS timestamp(3)), 20, 'EDGE', 'gas', nan(), 1.0E0, BIGINT '5', true, CAST(NULL AS date), 'edge nan'),
    (NULL, 21, 'EDGE', 'wind', infinity(), 2.0E0, NULL, false, NULL, 'edge +inf'),
    (NULL, 22, 'EDGE', 'solar', -infinity(), 3.0E0, BIGINT '-5', NULL, NULL, 'edge -inf'),
    (NULL, 23, 'EDGE', NULL, 1.0E300, 1.0E15, BIGINT '9000000000000000', true, NULL, 'edge huge'),
    (NULL, 24, 'EDGE', 'coal', -1.0E200, -4.0E0, BIGINT '-9000000000000000', false, NULL, 'edge -huge'),
    (NULL, 25, NULL, 'hydro', 1.0E-300, 1.0E-300, BIGINT '0', NULL, NULL, 'edge tiny'),
    (NULL, 26, 'EDGE', 'gas', -1.0E-300, 0.0E0, BIGINT '1', true, NULL, 'Edge -Tiny'),
    (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    (TIMESTAMP '1900-01-01 00:00:00.000', 27, 'PJM', 'coal', 42.5E0, 7.25E0, BIGINT '12', true, DATE '1900-01-01', 'old'),
    (TIMESTAMP '2200-12-31 23:59:59.999', 28, 'CAISO', 'solar', -17.25E0, 8.5E0, BIGINT '-12', false, DATE '2200-12-31', 'future'),
    (NULL, 29, 'EDGE', 'nuclear', 5.5E0, 1.5E0, BIGINT '3', false, DATE '0001-01-01', 'first day'),
    (NULL, 30, 'EDGE', 'nuclear', 6.5E0, 2.5E0, BIGINT '4', true, DATE '9999-12-31', 'last day'),
    (TIMESTAMP '2024-02-03 12:30:00.000', 31, 'PJM', 'gas', nan(), 11.0E0, BIGINT '31', true, DATE '2024-02-03', 'nan in range'),
    (TIMESTAMP '2024-03-10 02:00:00.000', 32, 'ERCOT', 'wind', infinity(), 12.0E0, BIGINT '32', NULL, DATE '2024-03-10', 'inf in range'),
    (TIMESTAMP '2024-02-29 23:59:59.999', 33, 'CAISO', 'solar', 0.0E0, 13.0E0, BIGINT '33', false, DATE '2024-02-29', 'leap day end'),
    (TIMESTAMP '2024-03-01 00:00:00.000', 34, 'CAISO', 'solar', -0.0E0, 14.0E0, BIGINT '-34', true, DATE '2024-03-01', 'negative zero'),
    (TIMESTAMP '2024-01-31 23:59:59.999', 35, 'ERCOT', 'battery', -250.75E0, 15.0E0, BIGINT '-35', false, DATE '2024-01-31', '  Ünïcödé  '),
    (TIMESTAMP '2024-12-31 12:00:00.000', 36, 'PJM', 'hydro', 99.75E0, 16.0E0, BIGINT '36', true, DATE '2024-12-31', 'year end'),
    (TIMESTAMP '1970-01-01 00:00:00.000', 37, 'ERCOT', 'gas', 1.0E0, 17.0E0, BIGINT '0', false, DATE '1970-01-01', 'epoch'),
    (TIMESTAMP '1969-12-31 23:59:59.999', 38, 'ERCOT', 'gas', -1.0E0, 18.0E0, BIGINT '-1', true, DATE '1969-12-31', 'before epoch')
) AS v(ts, node_id, market, fuel, price, volume, qty, flag, day, label)
----
DROP TABLE IF EXISTS memory.diff.nodes
----
CREATE TABLE memory.diff.nodes (
    node_id integer,
    name varchar,
    region varchar,
    capacity decimal(12, 2)
)
----
INSERT INTO memory.diff.nodes (node_id, name, region, capacity) VALUES
    (1, 'Alpha Plant', 'north', DECIMAL '1250.50'),
    (2, 'Beta Farm', 'south', DECIMAL '300.25'),
    (3, 'Gamma Solar', 'west', DECIMAL '99.99'),
    (4, 'Delta', 'north', DECIMAL '0.00'),
    (5, 'Epsilon', NULL, DECIMAL '500.50'),
    (6, 'Zeta Hydro', 'east', NULL),
    (7, 'Eta', 'south', DECIMAL '2.45'),
    (8, 'Théta Ωmega', 'west', DECIMAL '-5.55'),
    (10, 'Kappa (unused)', 'east', DECIMAL '9999999999.99'),
    (11, NULL, 'north', DECIMAL '0.05'),
    (31, 'Edge NaN', 'edge', DECIMAL '1.15')
----
DROP TABLE IF EXISTS memory.diff.empty
----
CREATE TABLE memory.diff.empty AS SELECT * FROM memory.diff.readings WITH NO DATA
----
DROP TABLE IF EXISTS memory.diff.wide
----
CREATE TABLE memory.diff.wide (
    id integer,
    d decimal(38, 18)
)
----
INSERT INTO memory.diff.wide (id, d) VALUES
    (1, DECIMAL '99999999999999999999.999999999999999999'),
    (2, DECIMAL '99999999999999999999.999999999999999999'),
    (3, DECIMAL '-1.500000000000000000'),
    (4, NULL),
    (5, DECIMAL '0.000000000000000001')
