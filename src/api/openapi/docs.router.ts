/**
 * `/openapi.json` and `/docs`, a Swagger UI page served from the swagger-ui-dist package (the
 * machines this runs on may be offline, so nothing comes from a CDN). Both are public: they
 * describe the API and hold no data; every /v1 route they list still needs a key.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import express, { Router } from 'express';

// The package's folder, found without importing its entry (which loads the whole browser bundle).
const SWAGGER_UI_DIR = path.dirname(
  createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'),
);

const DOCS_HTML = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>googlenet-queue API</title>
    <link rel="stylesheet" href="/docs/assets/swagger-ui.css" />
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="/docs/assets/swagger-ui-bundle.js"></script>
    <script src="/docs/init.js"></script>
  </body>
</html>
`;

// A file rather than an inline script, so the page runs under helmet's default CSP.
const INIT_JS = `window.ui = SwaggerUIBundle({
  url: '/openapi.json',
  dom_id: '#swagger-ui',
  persistAuthorization: false,
  tryItOutEnabled: false,
});
`;

export function createDocsRouter(document: unknown): Router {
  const router = Router();
  const json = JSON.stringify(document);
  router.get('/openapi.json', (_req, res) => {
    res.type('application/json').send(json);
  });
  router.get('/docs', (_req, res) => {
    res.type('html').send(DOCS_HTML);
  });
  router.get('/docs/init.js', (_req, res) => {
    res.type('text/javascript').send(INIT_JS);
  });
  router.use('/docs/assets', express.static(SWAGGER_UI_DIR, { index: false }));
  return router;
}
