import type { Express } from 'express';

export interface RegisteredRoute {
  method: string;
  /** Express path, absolute (`/v1/runs/:id`). */
  path: string;
}

interface Layer {
  route?: { path: string | string[]; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
  rawPath?: string | string[];
  slash?: boolean;
}

/**
 * Every route registered on the app, found by walking Express' router stack (and the stacks of
 * mounted routers), so a test can hold each one to a rule without a hand-kept list.
 */
export function registeredRoutes(app: Express): RegisteredRoute[] {
  const found: RegisteredRoute[] = [];
  const walk = (stack: Layer[], prefix: string): void => {
    for (const layer of stack) {
      if (layer.route) {
        const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
        for (const path of paths)
          for (const [method, on] of Object.entries(layer.route.methods))
            if (on && method !== '_all')
              found.push({ method: method.toUpperCase(), path: prefix + path });
      } else if (layer.handle?.stack) {
        const mounts = layer.slash ? [''] : [layer.rawPath ?? ''].flat();
        for (const mount of mounts) {
          if (typeof mount !== 'string') throw new Error('a router mounted on a regexp path');
          walk(layer.handle.stack, prefix + mount);
        }
      }
    }
  };
  const router = (app as unknown as { router: { stack: Layer[] } }).router;
  walk(router.stack, '');
  return found;
}
