-- CreateTable
CREATE TABLE "MetricRollup" (
    "runId" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "level" SMALLINT NOT NULL,
    "bucket" INTEGER NOT NULL,
    "min" DOUBLE PRECISION NOT NULL,
    "max" DOUBLE PRECISION NOT NULL,
    "last" DOUBLE PRECISION NOT NULL,
    "lastStep" INTEGER NOT NULL,
    "count" INTEGER NOT NULL,

    CONSTRAINT "MetricRollup_pkey" PRIMARY KEY ("runId","name","level","bucket")
);

-- AddForeignKey
ALTER TABLE "MetricRollup" ADD CONSTRAINT "MetricRollup_runId_fkey" FOREIGN KEY ("runId") REFERENCES "Run"("id") ON DELETE CASCADE ON UPDATE CASCADE;


-- Rollup maintenance (written by hand; the schema engine does not diff functions or triggers).
-- Levels 4, 6, ..., 20: buckets of 16, 64, ..., 2^20 steps. Each level is built from the one
-- below it (4 buckets each), so an insert touches ~1/12 as many rollup rows as raw rows.
-- Inserted rows arrive as a transition table: with ON CONFLICT DO NOTHING it holds only the
-- rows really inserted, so a resent batch changes no count.
CREATE FUNCTION "metric_rollup_after_insert"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  WITH
    l4 AS (
      SELECT "runId", "name", "step" >> 4 AS "bucket", min("value") AS "min", max("value") AS "max",
             (array_agg("value" ORDER BY "step" DESC))[1] AS "last", max("step") AS "lastStep",
             count(*)::int AS "count"
      FROM inserted GROUP BY 1, 2, 3
    ),
    l6 AS (
      SELECT "runId", "name", "bucket" >> 2 AS "bucket", min("min") AS "min", max("max") AS "max",
             (array_agg("last" ORDER BY "lastStep" DESC))[1] AS "last", max("lastStep") AS "lastStep",
             sum("count")::int AS "count"
      FROM l4 GROUP BY 1, 2, 3
    ),
    l8 AS (
      SELECT "runId", "name", "bucket" >> 2 AS "bucket", min("min") AS "min", max("max") AS "max",
             (array_agg("last" ORDER BY "lastStep" DESC))[1] AS "last", max("lastStep") AS "lastStep",
             sum("count")::int AS "count"
      FROM l6 GROUP BY 1, 2, 3
    ),
    l10 AS (
      SELECT "runId", "name", "bucket" >> 2 AS "bucket", min("min") AS "min", max("max") AS "max",
             (array_agg("last" ORDER BY "lastStep" DESC))[1] AS "last", max("lastStep") AS "lastStep",
             sum("count")::int AS "count"
      FROM l8 GROUP BY 1, 2, 3
    ),
    l12 AS (
      SELECT "runId", "name", "bucket" >> 2 AS "bucket", min("min") AS "min", max("max") AS "max",
             (array_agg("last" ORDER BY "lastStep" DESC))[1] AS "last", max("lastStep") AS "lastStep",
             sum("count")::int AS "count"
      FROM l10 GROUP BY 1, 2, 3
    ),
    l14 AS (
      SELECT "runId", "name", "bucket" >> 2 AS "bucket", min("min") AS "min", max("max") AS "max",
             (array_agg("last" ORDER BY "lastStep" DESC))[1] AS "last", max("lastStep") AS "lastStep",
             sum("count")::int AS "count"
      FROM l12 GROUP BY 1, 2, 3
    ),
    l16 AS (
      SELECT "runId", "name", "bucket" >> 2 AS "bucket", min("min") AS "min", max("max") AS "max",
             (array_agg("last" ORDER BY "lastStep" DESC))[1] AS "last", max("lastStep") AS "lastStep",
             sum("count")::int AS "count"
      FROM l14 GROUP BY 1, 2, 3
    ),
    l18 AS (
      SELECT "runId", "name", "bucket" >> 2 AS "bucket", min("min") AS "min", max("max") AS "max",
             (array_agg("last" ORDER BY "lastStep" DESC))[1] AS "last", max("lastStep") AS "lastStep",
             sum("count")::int AS "count"
      FROM l16 GROUP BY 1, 2, 3
    ),
    l20 AS (
      SELECT "runId", "name", "bucket" >> 2 AS "bucket", min("min") AS "min", max("max") AS "max",
             (array_agg("last" ORDER BY "lastStep" DESC))[1] AS "last", max("lastStep") AS "lastStep",
             sum("count")::int AS "count"
      FROM l18 GROUP BY 1, 2, 3
    )
  INSERT INTO "MetricRollup" AS r ("runId", "name", "level", "bucket", "min", "max", "last", "lastStep", "count")
    SELECT "runId", "name", 4::smallint, "bucket", "min", "max", "last", "lastStep", "count" FROM l4
    UNION ALL SELECT "runId", "name", 6::smallint, "bucket", "min", "max", "last", "lastStep", "count" FROM l6
    UNION ALL SELECT "runId", "name", 8::smallint, "bucket", "min", "max", "last", "lastStep", "count" FROM l8
    UNION ALL SELECT "runId", "name", 10::smallint, "bucket", "min", "max", "last", "lastStep", "count" FROM l10
    UNION ALL SELECT "runId", "name", 12::smallint, "bucket", "min", "max", "last", "lastStep", "count" FROM l12
    UNION ALL SELECT "runId", "name", 14::smallint, "bucket", "min", "max", "last", "lastStep", "count" FROM l14
    UNION ALL SELECT "runId", "name", 16::smallint, "bucket", "min", "max", "last", "lastStep", "count" FROM l16
    UNION ALL SELECT "runId", "name", 18::smallint, "bucket", "min", "max", "last", "lastStep", "count" FROM l18
    UNION ALL SELECT "runId", "name", 20::smallint, "bucket", "min", "max", "last", "lastStep", "count" FROM l20
  ON CONFLICT ("runId", "name", "level", "bucket") DO UPDATE SET
    "min" = LEAST(r."min", EXCLUDED."min"),
    "max" = GREATEST(r."max", EXCLUDED."max"),
    "last" = CASE WHEN EXCLUDED."lastStep" > r."lastStep" THEN EXCLUDED."last" ELSE r."last" END,
    "lastStep" = GREATEST(r."lastStep", EXCLUDED."lastStep"),
    "count" = r."count" + EXCLUDED."count";
  RETURN NULL;
END
$$;

-- Deleted points (a resumed run drops its points from the resume step on): every bucket that
-- held one is rebuilt, level 4 from the raw points left, each higher level from the level
-- below it, so even the 2^20-step buckets cost a handful of rows to rebuild.
CREATE FUNCTION "metric_rollup_after_delete"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  lvl smallint;
BEGIN
  FOREACH lvl IN ARRAY ARRAY[4, 6, 8, 10, 12, 14, 16, 18, 20]::smallint[] LOOP
    WITH affected AS (SELECT DISTINCT "runId", "name", "step" >> lvl AS "bucket" FROM deleted)
    DELETE FROM "MetricRollup" r USING affected a
    WHERE r."runId" = a."runId" AND r."name" = a."name" AND r."level" = lvl AND r."bucket" = a."bucket";

    IF lvl = 4 THEN
      INSERT INTO "MetricRollup" ("runId", "name", "level", "bucket", "min", "max", "last", "lastStep", "count")
      SELECT a."runId", a."name", lvl, a."bucket", min(p."value"), max(p."value"),
             (array_agg(p."value" ORDER BY p."step" DESC))[1], max(p."step"), count(*)::int
      FROM (SELECT DISTINCT "runId", "name", "step" >> lvl AS "bucket" FROM deleted) a
      JOIN "MetricPoint" p ON p."runId" = a."runId" AND p."name" = a."name"
        AND p."step" >= (a."bucket"::bigint << lvl) AND p."step" < ((a."bucket"::bigint + 1) << lvl)
      GROUP BY a."runId", a."name", a."bucket";
    ELSE
      INSERT INTO "MetricRollup" ("runId", "name", "level", "bucket", "min", "max", "last", "lastStep", "count")
      SELECT a."runId", a."name", lvl, a."bucket", min(s."min"), max(s."max"),
             (array_agg(s."last" ORDER BY s."lastStep" DESC))[1], max(s."lastStep"), sum(s."count")::int
      FROM (SELECT DISTINCT "runId", "name", "step" >> lvl AS "bucket" FROM deleted) a
      JOIN "MetricRollup" s ON s."runId" = a."runId" AND s."name" = a."name" AND s."level" = lvl - 2
        AND s."bucket" >= (a."bucket"::bigint << 2) AND s."bucket" < ((a."bucket"::bigint + 1) << 2)
      GROUP BY a."runId", a."name", a."bucket";
    END IF;
  END LOOP;
  RETURN NULL;
END
$$;

CREATE TRIGGER "MetricPoint_rollup_insert" AFTER INSERT ON "MetricPoint"
  REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION "metric_rollup_after_insert"();

CREATE TRIGGER "MetricPoint_rollup_delete" AFTER DELETE ON "MetricPoint"
  REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION "metric_rollup_after_delete"();

-- Rollups of the points stored before this migration.
  WITH
    l4 AS (
      SELECT "runId", "name", "step" >> 4 AS "bucket", min("value") AS "min", max("value") AS "max",
             (array_agg("value" ORDER BY "step" DESC))[1] AS "last", max("step") AS "lastStep",
             count(*)::int AS "count"
      FROM "MetricPoint" GROUP BY 1, 2, 3
    ),
    l6 AS (
      SELECT "runId", "name", "bucket" >> 2 AS "bucket", min("min") AS "min", max("max") AS "max",
             (array_agg("last" ORDER BY "lastStep" DESC))[1] AS "last", max("lastStep") AS "lastStep",
             sum("count")::int AS "count"
      FROM l4 GROUP BY 1, 2, 3
    ),
    l8 AS (
      SELECT "runId", "name", "bucket" >> 2 AS "bucket", min("min") AS "min", max("max") AS "max",
             (array_agg("last" ORDER BY "lastStep" DESC))[1] AS "last", max("lastStep") AS "lastStep",
             sum("count")::int AS "count"
      FROM l6 GROUP BY 1, 2, 3
    ),
    l10 AS (
      SELECT "runId", "name", "bucket" >> 2 AS "bucket", min("min") AS "min", max("max") AS "max",
             (array_agg("last" ORDER BY "lastStep" DESC))[1] AS "last", max("lastStep") AS "lastStep",
             sum("count")::int AS "count"
      FROM l8 GROUP BY 1, 2, 3
    ),
    l12 AS (
      SELECT "runId", "name", "bucket" >> 2 AS "bucket", min("min") AS "min", max("max") AS "max",
             (array_agg("last" ORDER BY "lastStep" DESC))[1] AS "last", max("lastStep") AS "lastStep",
             sum("count")::int AS "count"
      FROM l10 GROUP BY 1, 2, 3
    ),
    l14 AS (
      SELECT "runId", "name", "bucket" >> 2 AS "bucket", min("min") AS "min", max("max") AS "max",
             (array_agg("last" ORDER BY "lastStep" DESC))[1] AS "last", max("lastStep") AS "lastStep",
             sum("count")::int AS "count"
      FROM l12 GROUP BY 1, 2, 3
    ),
    l16 AS (
      SELECT "runId", "name", "bucket" >> 2 AS "bucket", min("min") AS "min", max("max") AS "max",
             (array_agg("last" ORDER BY "lastStep" DESC))[1] AS "last", max("lastStep") AS "lastStep",
             sum("count")::int AS "count"
      FROM l14 GROUP BY 1, 2, 3
    ),
    l18 AS (
      SELECT "runId", "name", "bucket" >> 2 AS "bucket", min("min") AS "min", max("max") AS "max",
             (array_agg("last" ORDER BY "lastStep" DESC))[1] AS "last", max("lastStep") AS "lastStep",
             sum("count")::int AS "count"
      FROM l16 GROUP BY 1, 2, 3
    ),
    l20 AS (
      SELECT "runId", "name", "bucket" >> 2 AS "bucket", min("min") AS "min", max("max") AS "max",
             (array_agg("last" ORDER BY "lastStep" DESC))[1] AS "last", max("lastStep") AS "lastStep",
             sum("count")::int AS "count"
      FROM l18 GROUP BY 1, 2, 3
    )
  INSERT INTO "MetricRollup" AS r ("runId", "name", "level", "bucket", "min", "max", "last", "lastStep", "count")
    SELECT "runId", "name", 4::smallint, "bucket", "min", "max", "last", "lastStep", "count" FROM l4
    UNION ALL SELECT "runId", "name", 6::smallint, "bucket", "min", "max", "last", "lastStep", "count" FROM l6
    UNION ALL SELECT "runId", "name", 8::smallint, "bucket", "min", "max", "last", "lastStep", "count" FROM l8
    UNION ALL SELECT "runId", "name", 10::smallint, "bucket", "min", "max", "last", "lastStep", "count" FROM l10
    UNION ALL SELECT "runId", "name", 12::smallint, "bucket", "min", "max", "last", "lastStep", "count" FROM l12
    UNION ALL SELECT "runId", "name", 14::smallint, "bucket", "min", "max", "last", "lastStep", "count" FROM l14
    UNION ALL SELECT "runId", "name", 16::smallint, "bucket", "min", "max", "last", "lastStep", "count" FROM l16
    UNION ALL SELECT "runId", "name", 18::smallint, "bucket", "min", "max", "last", "lastStep", "count" FROM l18
    UNION ALL SELECT "runId", "name", 20::smallint, "bucket", "min", "max", "last", "lastStep", "count" FROM l20;
