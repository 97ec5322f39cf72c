-- CreateTable
CREATE TABLE "Artifact" (
    "id" UUID NOT NULL,
    "key" TEXT,
    "bytes" BIGINT NOT NULL,
    "sha256" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Artifact_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ArtifactChunk" (
    "artifactId" UUID NOT NULL,
    "index" INTEGER NOT NULL,
    "data" BYTEA NOT NULL,

    CONSTRAINT "ArtifactChunk_pkey" PRIMARY KEY ("artifactId","index")
);

-- CreateIndex
CREATE UNIQUE INDEX "Artifact_key_key" ON "Artifact"("key");

-- AddForeignKey
ALTER TABLE "ArtifactChunk" ADD CONSTRAINT "ArtifactChunk_artifactId_fkey" FOREIGN KEY ("artifactId") REFERENCES "Artifact"("id") ON DELETE CASCADE ON UPDATE CASCADE;


-- Added by hand (Prisma does not model column storage): checkpoint bytes are float32 weights
-- that do not compress, so skip TOAST's compression attempt and store the chunks out of line.
ALTER TABLE "ArtifactChunk" ALTER COLUMN "data" SET STORAGE EXTERNAL;
