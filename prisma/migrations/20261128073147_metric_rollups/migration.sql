/*
  Warnings:

  - The primary key for the `MetricPoint` table will be changed. If it partially fails, the table could be left without primary key constraint.
  - You are about to drop the column `id` on the `MetricPoint` table. All the data in the column will be lost.

*/
-- DropForeignKey
ALTER TABLE "MetricPoint" DROP CONSTRAINT "MetricPoint_runId_fkey";

-- DropIndex
DROP INDEX "MetricPoint_runId_name_step_key";

-- AlterTable
ALTER TABLE "MetricPoint" DROP CONSTRAINT "MetricPoint_pkey",
DROP COLUMN "id",
ADD CONSTRAINT "MetricPoint_pkey" PRIMARY KEY ("runId", "name", "step");

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

-- Deleted points (a resumed run drops its points from the resume step on): per series, every
-- bucket between the lowest and the highest deleted step is rebuilt, level 4 from the raw points
-- left, each higher level from the level below it, so even the 2^20-step buckets cost a handful
-- of rows. Plain range scans on the primary keys, not joins: right after a bulk load the planner
-- has no statistics, and a join planned on none can scan the table once per bucket.
CREATE FUNCTION "metric_rollup_after_delete"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  s record;
  lvl smallint;
BEGIN
  FOR s IN SELECT "runId", "name", min("step") AS lo, max("step") AS hi FROM deleted GROUP BY 1, 2 LOOP
    FOREACH lvl IN ARRAY ARRAY[4, 6, 8, 10, 12, 14, 16, 18, 20]::smallint[] LOOP
      DELETE FROM "MetricRollup"
      WHERE "runId" = s."runId" AND "name" = s."name" AND "level" = lvl
        AND "bucket" BETWEEN (s.lo >> lvl) AND (s.hi >> lvl);

      IF lvl = 4 THEN
        INSERT INTO "MetricRollup" ("runId", "name", "level", "bucket", "min", "max", "last", "lastStep", "count")
        SELECT s."runId", s."name", lvl, p."step" >> lvl, min(p."value"), max(p."value"),
               (array_agg(p."value" ORDER BY p."step" DESC))[1], max(p."step"), count(*)::int
        FROM "MetricPoint" p
        WHERE p."runId" = s."runId" AND p."name" = s."name"
          AND p."step" >= ((s.lo >> lvl)::bigint << lvl) AND p."step" < (((s.hi >> lvl)::bigint + 1) << lvl)
        GROUP BY p."step" >> lvl;
      ELSE
        INSERT INTO "MetricRollup" ("runId", "name", "level", "bucket", "min", "max", "last", "lastStep", "count")
        SELECT s."runId", s."name", lvl, r."bucket" >> 2, min(r."min"), max(r."max"),
               (array_agg(r."last" ORDER BY r."lastStep" DESC))[1], max(r."lastStep"), sum(r."count")::int
        FROM "MetricRollup" r
        WHERE r."runId" = s."runId" AND r."name" = s."name" AND r."level" = lvl - 2
          AND r."bucket" BETWEEN ((s.lo >> lvl) << 2) AND (((s.hi >> lvl) << 2) + 3)
        GROUP BY r."bucket" >> 2;
      END IF;
    END LOOP;
  END LOOP;
  RETURN NULL;
END
$$;

CREATE TRIGGER "MetricPoint_rollup_insert" AFTER INSERT ON "MetricPoint"
  REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION "metric_rollup_after_insert"();

CREATE TRIGGER "MetricPoint_rollup_delete" AFTER DELETE ON "MetricPoint"
  REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION "metric_rollup_after_delete"();

-- An updated value (an upsert) rebuilds its buckets the same way, from the raw points now
-- stored. Moving a point to another step or series is not supported: nothing here does that.
CREATE TRIGGER "MetricPoint_rollup_update" AFTER UPDATE ON "MetricPoint"
  REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION "metric_rollup_after_delete"();

-- A deleted run takes its points along (what the foreign key's ON DELETE CASCADE did).
CREATE FUNCTION "run_delete_metric_points"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM "MetricPoint" p USING gone_runs g WHERE p."runId" = g."id";
  RETURN NULL;
END
$$;

CREATE TRIGGER "Run_delete_metric_points" AFTER DELETE ON "Run"
  REFERENCING OLD TABLE AS gone_runs FOR EACH STATEMENT EXECUTE FUNCTION "run_delete_metric_points"();

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
