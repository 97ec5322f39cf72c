// @ts-check
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Packages that reach Redis, SQL or object storage. */
const SERVICE_PACKAGES = ['ioredis', 'bullmq', 'pg', '@prisma/*', '@aws-sdk/*'];

/**
 * One `no-restricted-imports` config per zone: `folders` are src/ folders its files must not
 * import (by relative path), `packages` npm packages they must not import, `modules` further
 * patterns (regular expressions) of import paths they must not use.
 * @param {Array<{ files: string[], ignores?: string[], folders: string[], packages?: string[], modules?: string[], allowTypeImports?: boolean, message: string }>} zones
 */
function importZones(zones) {
  return zones.map(
    ({
      files,
      ignores = [],
      folders,
      packages = [],
      modules = [],
      allowTypeImports = false,
      message,
    }) => ({
      files,
      ignores,
      rules: {
        'no-restricted-imports': [
          'error',
          {
            patterns: [
              {
                regex: `^(\\.\\./)+(${folders.join('|')})/`,
                message,
                allowTypeImports,
              },
              ...(packages.length > 0 ? [{ group: packages, message, allowTypeImports }] : []),
              ...modules.map((regex) => ({ regex, message, allowTypeImports })),
            ],
          },
        ],
      },
    }),
  );
}

/** The folders of src/ that zones name (src/files/ is a leaf every room may import). */
const ROOMS = [
  'api',
  'artifacts',
  'checkpoints',
  'client',
  'data',
  'db',
  'model',
  'queue',
  'runs',
  'spec',
  'worker',
];
/** Every room but `own`: what a room at the bottom of the house may not import. */
const roomsBut = (own) => ROOMS.filter((room) => room !== own);

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'bench/results/', '**/*.tmp.*'] },
  eslint.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      'no-console': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    // The dashboard: plain ES modules that run in the browser (no build step, no TypeScript).
    files: ['src/dashboard/**/*.js'],
    languageOptions: {
      sourceType: 'module',
      globals: Object.fromEntries(
        [
          'window',
          'document',
          'location',
          'history',
          'localStorage',
          'fetch',
          'performance',
          'setTimeout',
          'clearTimeout',
          'setInterval',
          'clearInterval',
          'URLSearchParams',
          'TextDecoder',
          'AbortController',
          'Element',
          'HTMLElement',
        ].map((name) => [name, 'readonly']),
      ),
    },
  },
  // The floors of src/ (docs/architecture.md): each folder imports only what lies below it, so an
  // import against the design fails `npm run lint`. A relative import names a folder by its
  // path, so each rule matches the folder after any number of `../`.
  ...importZones([
    {
      // The shared leaves: run specs and seeding (spec/), durable file writes (files/).
      files: ['src/spec/**', 'src/files/**'],
      folders: roomsBut('spec'),
      packages: [...SERVICE_PACKAGES, 'express', '@tensorflow/*'],
      message: 'src/spec/ and src/files/ are leaves every floor shares; they import none of it.',
    },
    {
      // Pure libraries: no Redis, SQL or HTTP, so they run (and are tested) anywhere.
      files: ['src/model/**', 'src/data/**'],
      folders: ['api', 'artifacts', 'checkpoints', 'client', 'db', 'queue', 'runs', 'worker'],
      packages: [...SERVICE_PACKAGES, 'express'],
      message: 'model/ and data/ are pure libraries: no database, queue, API or worker.',
    },
    {
      // The contract between API and worker sits below both of them.
      files: ['src/queue/**'],
      folders: ['api', 'checkpoints', 'client', 'runs', 'worker'],
      message: 'src/queue/ is the contract the API and the worker share; it imports neither.',
    },
    {
      files: ['src/db/**'],
      folders: ['api', 'artifacts', 'checkpoints', 'client', 'queue', 'runs', 'worker'],
      message: 'db/ is storage: it knows nothing of the queue, API or worker.',
    },
    {
      // A key → bytes store: what the keys mean belongs to its callers.
      files: ['src/artifacts/**'],
      folders: roomsBut('artifacts'),
      message:
        'src/artifacts/ stores bytes by key; it knows nothing of models, runs or checkpoints.',
    },
    {
      // Saving, moving and keeping checkpoints: above the model and the artifact store.
      files: ['src/checkpoints/**'],
      folders: ['api', 'client', 'data', 'db', 'queue', 'runs', 'worker'],
      message: 'src/checkpoints/ builds on model/ and artifacts/ only.',
    },
    {
      // The run lifecycle: the one writer of a run's status, shared by the API and the worker.
      files: ['src/runs/**'],
      folders: ['api', 'client', 'worker'],
      message: 'src/runs/ serves the API and the worker; it imports neither.',
    },
    {
      files: ['src/api/**'],
      folders: ['worker', 'client'],
      message: 'The API and the worker meet only through src/queue/.',
    },
    {
      files: ['src/worker/**'],
      ignores: ['src/worker/child/**'],
      folders: ['api', 'client'],
      message: 'The API and the worker meet only through src/queue/.',
    },
    {
      // The training child computes; the worker (parent) process owns every connection. The
      // child reaches its parent only through the messages of src/worker/ipc.ts.
      files: ['src/worker/child/**'],
      folders: ['api', 'artifacts', 'client', 'db', 'queue', 'runs'],
      packages: [...SERVICE_PACKAGES, 'express'],
      modules: ['^\\.\\./(?!ipc\\.js$)[^/]+$', 'checkpoints/checkpoint-(sync|download)\\.js$'],
      message:
        'src/worker/child/ runs in the training child: no database, artifact store, Redis or ' +
        'parent module; it talks to the worker through ../ipc.js only.',
    },
    {
      // The client talks HTTP to the API; it shares the API's zod schemas and, of the rest, types.
      files: ['src/client/**'],
      folders: ['artifacts', 'checkpoints', 'db', 'queue', 'runs', 'worker'],
      allowTypeImports: true,
      message:
        "The client reaches the server over HTTP; of it, it imports the API's schemas and types.",
    },
  ]),
  {
    // Benchmarks and CLIs talk to the terminal through process.stdout; tests may log freely,
    // and read JSON responses without declaring every shape.
    files: ['test/**', 'bench/**'],
    rules: { 'no-console': 'off', '@typescript-eslint/no-explicit-any': 'off' },
  },
);
