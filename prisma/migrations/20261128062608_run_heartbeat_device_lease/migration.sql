-- AlterTable
ALTER TABLE "Run" ADD COLUMN     "device" TEXT,
ADD COLUMN     "heartbeatAt" TIMESTAMP(3),
ADD COLUMN     "lease" TEXT;
