-- AlterTable
ALTER TABLE "Run" ADD COLUMN     "idempotencyHash" TEXT;
