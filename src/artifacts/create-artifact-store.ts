/** Picks the artifact store the configuration names (`ARTIFACT_STORE`). */
import type { Config } from '../config.js';
import type { ArtifactStore } from './artifact-store.js';
import { createFsArtifactStore } from './fs-artifact-store.js';
import { createPostgresArtifactStore } from './postgres-artifact-store.js';
import { createS3ArtifactStore } from './s3-artifact-store.js';

export type ArtifactStoreConfig = Pick<
  Config,
  | 'DATABASE_URL'
  | 'ARTIFACT_STORE'
  | 'ARTIFACT_ROOT'
  | 'S3_BUCKET'
  | 'S3_PREFIX'
  | 'S3_REGION'
  | 'S3_ENDPOINT'
  | 'S3_FORCE_PATH_STYLE'
  | 'S3_ACCESS_KEY_ID'
  | 'S3_SECRET_ACCESS_KEY'
>;

/** The configured store; `postgres` keeps files in the database of DATABASE_URL. */
export function createArtifactStore(config: ArtifactStoreConfig): ArtifactStore {
  switch (config.ARTIFACT_STORE) {
    case 'postgres':
      return createPostgresArtifactStore(config.DATABASE_URL);
    case 'fs':
      return createFsArtifactStore(config.ARTIFACT_ROOT);
    case 's3': {
      if (!config.S3_BUCKET) throw new Error('ARTIFACT_STORE=s3 needs S3_BUCKET');
      return createS3ArtifactStore({
        bucket: config.S3_BUCKET,
        prefix: config.S3_PREFIX,
        region: config.S3_REGION,
        ...(config.S3_ENDPOINT ? { endpoint: config.S3_ENDPOINT } : {}),
        forcePathStyle: config.S3_FORCE_PATH_STYLE,
        ...(config.S3_ACCESS_KEY_ID && config.S3_SECRET_ACCESS_KEY
          ? {
              credentials: {
                accessKeyId: config.S3_ACCESS_KEY_ID,
                secretAccessKey: config.S3_SECRET_ACCESS_KEY,
              },
            }
          : {}),
      });
    }
  }
}
