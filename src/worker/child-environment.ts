/**
 * What a training child may see of the worker's environment. The child trains on files and
 * talks to its parent over IPC only: it never needs the database, Redis or the artifact store,
 * so it gets none of their credentials. A job that runs hostile code paths (a crafted data set
 * that finds a bug in a decoder, say) then holds no key to the queue or to other teams' runs.
 */
import { SECRET_VARIABLES } from '../config.js';

/** Names of credentials a deployment may set beside ours (compose's .env, cloud SDKs). */
const CREDENTIAL_NAME = /PASSWORD|SECRET|TOKEN|CREDENTIAL|API_KEY|ACCESS_KEY/i;

/** Our secret variables and their `_FILE` forms. */
const SECRET_NAMES = new Set<string>(SECRET_VARIABLES.flatMap((name) => [name, `${name}_FILE`]));

/** `env` without our secret variables, their `_FILE` forms, and anything named like a credential. */
export function childEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const kept: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(env)) {
    if (SECRET_NAMES.has(name) || CREDENTIAL_NAME.test(name)) continue;
    kept[name] = value;
  }
  return kept;
}
