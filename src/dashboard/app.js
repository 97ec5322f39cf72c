/**
 * The dashboard page: one document that routes on the client between the runs list (`/`), a
 * run (`/runs/:id`) and the compare view (`/compare?runs=a,b`). Plain ES modules, no build step.
 */
import { adoptTokenFromFragment, api, apiKey, setApiKey, whenUnauthorized } from './api.js';
import { renderCompare } from './compare-view.js';
import { renderRun } from './run-view.js';
import { renderRuns } from './runs-view.js';

const main = document.getElementById('main');
const dialog = document.getElementById('key-dialog');
let cleanup = () => {};

function askForKey() {
  if (dialog.open) return;
  document.getElementById('key-input').value = apiKey();
  dialog.showModal();
}
dialog.addEventListener('close', () => {
  if (dialog.returnValue !== 'save') return;
  setApiKey(document.getElementById('key-input').value.trim());
  route();
});
document.getElementById('key-button').addEventListener('click', askForKey);
whenUnauthorized(askForKey);

/** Client-side navigation for links marked data-link and for links inside views. */
export function navigate(path) {
  history.pushState(null, '', path);
  route();
}
document.addEventListener('click', (e) => {
  const a = e.target instanceof Element ? e.target.closest('a[data-link]') : null;
  if (!a || e.metaKey || e.ctrlKey) return;
  e.preventDefault();
  navigate(a.getAttribute('href'));
});
window.addEventListener('popstate', () => route());

function route() {
  cleanup();
  main.replaceChildren();
  if (!apiKey()) {
    main.innerHTML = '<div class="panel">Enter an API key to see the runs.</div>';
    askForKey();
    cleanup = () => {};
    return;
  }
  const run = /^\/runs\/([0-9a-f-]{36})$/.exec(location.pathname);
  if (run) cleanup = renderRun(main, run[1], { api, navigate });
  else if (location.pathname === '/compare') cleanup = renderCompare(main, { api, navigate });
  else cleanup = renderRuns(main, { api, navigate });
}

adoptTokenFromFragment();
route();
