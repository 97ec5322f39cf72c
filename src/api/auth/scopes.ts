/**
 * What an API key may do. `read`: every GET. `submit`: POSTs that create or change runs
 * (submit, cancel). `admin`: everything, including /admin.
 */
import { z } from 'zod';

export const SCOPES = ['read', 'submit', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];
export const scopeSchema = z.enum(SCOPES);

/** The scope a request needs, decided by method and path so a new route is covered at once. */
export function requiredScope(method: string, path: string): Scope {
  // Express matches paths case-insensitively: /ADMIN/x reaches what /admin/x reaches.
  const lower = path.toLowerCase();
  if (lower === '/admin' || lower.startsWith('/admin/')) return 'admin';
  return method === 'GET' || method === 'HEAD' ? 'read' : 'submit';
}

export function grants(scopes: readonly string[], needed: Scope): boolean {
  return scopes.includes('admin') || scopes.includes(needed);
}
