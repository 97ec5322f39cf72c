/**
 * The dashboard: static files from src/dashboard (plain ES modules, no build step) and uPlot
 * from its npm package, all served by the API itself, nothing from a CDN. `/`, `/runs/:id` and
 * `/compare` are the same page, which routes on the client. The files hold no secret: the page
 * asks for an API key and sends it with each request.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { Router } from 'express';

const require = createRequire(import.meta.url);
/** src/dashboard (dist/src/dashboard after a build, which copies non-TS files beside the JS). */
const DASHBOARD_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dashboard');
const UPLOT_DIR = path.dirname(require.resolve('uplot/dist/uPlot.esm.js'));

export function createDashboardRouter(): Router {
  const router = Router();
  const index = path.join(DASHBOARD_DIR, 'index.html');
  router.get(['/', '/runs/:id', '/compare'], (_req, res) => {
    res.set('Cache-Control', 'no-cache');
    res.sendFile(index);
  });
  router.use('/ui/vendor', express.static(UPLOT_DIR, { index: false }));
  router.use('/ui', express.static(DASHBOARD_DIR, { index: false }));
  return router;
}
