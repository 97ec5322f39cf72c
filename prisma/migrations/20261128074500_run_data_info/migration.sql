-- AlterTable
ALTER TABLE "Run" ADD COLUMN     "dataInfo" JSONB;
