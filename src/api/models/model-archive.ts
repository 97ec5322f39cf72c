/** An exported model as the archive `GET /v1/runs/:id/model` sends: model.json and its weights. */
import { Readable } from 'node:stream';
import tar from 'tar-stream';

/**
 * The tar of model.json and the one weights file its manifest names (read from the manifest,
 * so this side of the API needs none of the TensorFlow.js code that wrote it).
 */
export function modelArchive(modelJson: Record<string, unknown>, weights: Uint8Array): Readable {
  const manifest = modelJson['weightsManifest'] as Array<{ paths: string[] }> | undefined;
  const weightsFile = manifest?.[0]?.paths[0];
  if (!weightsFile) throw new Error('the exported model.json names no weights file');
  const pack = tar.pack();
  pack.entry({ name: 'model.json' }, `${JSON.stringify(modelJson, null, 2)}\n`);
  pack.entry(
    { name: weightsFile },
    Buffer.from(weights.buffer, weights.byteOffset, weights.byteLength),
  );
  pack.finalize();
  return Readable.from(pack);
}
