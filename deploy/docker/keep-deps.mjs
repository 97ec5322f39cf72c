// Deletes from node_modules every package that package.json's dependencies, plus the packages
// named as arguments, do not reach (run by the Dockerfile's deps stages, after
// `npm ci --omit=dev --ignore-scripts`).
//
// Why: `--omit=optional` cannot keep one tfjs native package and drop the other, and
// `--omit=dev` alone keeps the Prisma CLI and TypeScript (dev dependencies that are also
// optional peers of @prisma/client: ~250 MB with their own dependencies). Checked against
// `npm ci --omit=dev --omit=optional`: with no argument it keeps the same packages, plus
// msgpackr-extract (the native add-on, with its two helpers) and pg-cloudflare.
//
//   node keep-deps.mjs [@tensorflow/tfjs-node | @tensorflow/tfjs-node-gpu]
/* global process */
import fs from 'node:fs';
import path from 'node:path';

const read = (dir) => JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
const keep = new Set();

// The folder `name` resolves to from the package in `from`, walking up as require() does.
function resolve(from, name) {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (dir === '.') return undefined;
  }
}

// Keeps a package and what it needs: its dependencies, the optional ones that are installed
// (platform binaries), and its peers unless they are optional.
function visit(dir) {
  if (keep.has(dir)) return;
  keep.add(dir);
  const pkg = read(dir);
  const peers = Object.keys(pkg.peerDependencies ?? {});
  const names = [
    ...Object.keys(pkg.dependencies ?? {}),
    ...Object.keys(pkg.optionalDependencies ?? {}),
    ...peers.filter((name) => !pkg.peerDependenciesMeta?.[name]?.optional),
  ];
  for (const name of names) {
    const found = resolve(dir, name);
    if (found) visit(found);
  }
}

for (const name of [...Object.keys(read('.').dependencies ?? {}), ...process.argv.slice(2)]) {
  const found = resolve('.', name);
  if (!found) throw new Error(`keep-deps: ${name} is not installed`);
  visit(found);
}

function sweep(modules) {
  for (const entry of fs.readdirSync(modules)) {
    if (entry.startsWith('.')) continue;
    const dir = path.join(modules, entry);
    if (entry.startsWith('@')) sweep(dir);
    else if (!keep.has(dir)) fs.rmSync(dir, { recursive: true, force: true });
    else if (fs.existsSync(path.join(dir, 'node_modules'))) sweep(path.join(dir, 'node_modules'));
  }
}
sweep('node_modules');
