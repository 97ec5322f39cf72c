/**
 * The runs list, the queue panel (depths, active jobs, workers) and the form that submits a
 * training run and shows the API's validation messages field by field.
 *
 * The list is live over `/v1/events`: a progress event redraws its row's progress in place; a
 * status or checkpoint event (a run submitted, started, finished; a new best val accuracy) reads
 * the list and the queue again, at most a few times a second however busy the queue is. Workers
 * announce no events, so the queue panel is also read every 10 s to keep their liveness current.
 */
import { followEvents } from './api.js';
import { duration, escapeHtml, number, progressBar, statusBadge } from './format.js';

/** A burst of status events costs one read of the list. */
const COALESCE_MS = 300;
const QUEUE_REFRESH_MS = 10_000;

const EXAMPLE_RUN = {
  kind: 'train',
  name: 'from-the-dashboard',
  model: { arch: 'googlenet', numClasses: 10, inputSize: 32, width: 0.25 },
  dataset: { format: 'synthetic', numClasses: 10, size: 512, seed: 7 },
  train: { epochs: 3, batchSize: 32, optimizer: { type: 'adam', learningRate: 0.002 } },
  checkpoint: { everySteps: 20, keepLatest: 2 },
};

export function renderRuns(main, { api, navigate }) {
  main.innerHTML = `
    <div class="panel">
      <h1>Runs</h1>
      <div class="filters">
        <label>Status <select id="f-status"><option value="">any</option>
          ${['queued', 'running', 'succeeded', 'failed', 'cancelled'].map((s) => `<option>${s}</option>`).join('')}
        </select></label>
        <label>Kind <select id="f-kind"><option value="">any</option><option>train</option><option>eval</option><option>external</option></select></label>
        <button id="compare" type="button" disabled>Compare selected</button>
        <span class="live" id="live"></span> <span class="live" id="updated"></span>
      </div>
      <table id="runs"><thead><tr>
        <th></th><th>Name</th><th>Status</th><th>Kind</th><th>Progress</th><th>Backend</th>
        <th>Duration</th><th>Best val acc.</th><th>Created</th>
      </tr></thead><tbody></tbody></table>
    </div>
    <div class="grid">
      <div class="panel" id="queue"><h2>Queue</h2><div class="body">…</div></div>
      <div class="panel">
        <h2>Submit a training run</h2>
        <form id="submit">
          <textarea id="spec" spellcheck="false"></textarea>
          <p><button type="submit">Submit</button> <span id="submit-result"></span></p>
          <ul class="problems" id="problems"></ul>
        </form>
      </div>
    </div>`;
  const tbody = main.querySelector('#runs tbody');
  const status = main.querySelector('#f-status');
  const kind = main.querySelector('#f-kind');
  const compare = main.querySelector('#compare');
  const selected = new Set();
  main.querySelector('#spec').value = JSON.stringify(EXAMPLE_RUN, null, 2);

  /** The rows shown, by run id, so progress events can redraw them. */
  let shown = new Map();

  /** Reads answered out of order must not draw an older list over a newer one. */
  let runsRead = 0;
  let queueRead = 0;

  async function refreshRuns() {
    const query = new URLSearchParams({ limit: '50' });
    if (status.value) query.set('status', status.value);
    if (kind.value) query.set('kind', kind.value);
    const mine = ++runsRead;
    const { items } = await api('GET', `/v1/runs?${query}`);
    if (mine !== runsRead) return;
    shown = new Map(items.map((r) => [r.id, r]));
    tbody.innerHTML = items
      .map(
        (r) => `<tr data-run="${escapeHtml(r.id)}">
          <td><input type="checkbox" data-select="${escapeHtml(r.id)}" ${selected.has(r.id) ? 'checked' : ''}></td>
          <td><a href="/runs/${escapeHtml(r.id)}" data-link>${escapeHtml(r.name ?? r.id.slice(0, 8))}</a></td>
          <td>${statusBadge(r.status)}</td>
          <td>${escapeHtml(r.kind)}</td>
          <td class="progress-cell">${progressBar(r.progress)}</td>
          <td>${escapeHtml(r.backend ?? '')}</td>
          <td class="num">${duration(r)}</td>
          <td class="num best">${number(r.bestValAccuracy ?? undefined, 3)}</td>
          <td class="num">${new Date(r.createdAt).toLocaleString()}</td>
        </tr>`,
      )
      .join('');
  }

  async function refreshQueue() {
    const mine = ++queueRead;
    const queues = await api('GET', '/v1/queues');
    if (mine === queueRead) renderQueue(queues);
  }

  async function refresh() {
    try {
      await Promise.all([refreshRuns(), refreshQueue()]);
      main.querySelector('#updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (error) {
      main.querySelector('#updated').textContent = `could not refresh: ${error.message}`;
    }
  }

  let pending;
  function refreshSoon() {
    pending ??= setTimeout(() => {
      pending = undefined;
      void refresh();
    }, COALESCE_MS);
  }

  /** A progress event: the run's bar in the list and in the active jobs, redrawn in place. */
  function showProgress(event) {
    const progress = { step: event.step, totalSteps: event.totalSteps, epoch: event.epoch };
    const run = shown.get(event.runId);
    if (run) run.progress = progress;
    for (const cell of main.querySelectorAll(`tr[data-run="${event.runId}"] td.progress-cell`))
      cell.innerHTML = progressBar(progress);
  }

  function renderQueue({ queues, workers, active }) {
    const q = queues[0];
    main.querySelector('#queue .body').innerHTML = `
      <table><tbody>${Object.entries(q?.counts ?? {})
        .map(([state, n]) => `<tr><td>${escapeHtml(state)}</td><td class="num">${n}</td></tr>`)
        .join('')}</tbody></table>
      <h2>Active jobs (${active.length})</h2>
      <table id="active-jobs"><tbody>${
        active
          .map(
            (a) => `<tr data-run="${escapeHtml(a.runId)}">
              <td><a href="/runs/${escapeHtml(a.runId)}" data-link>${escapeHtml(a.runName ?? a.runId.slice(0, 8))}</a></td>
              <td>${escapeHtml(a.job)}${a.attempt > 1 ? ` (attempt ${a.attempt})` : ''}</td>
              <td>${escapeHtml(a.workerId ?? '')} ${escapeHtml(a.device ?? '')}</td>
              <td class="progress-cell">${progressBar(a.progress)}</td>
            </tr>`,
          )
          .join('') || '<tr><td>none</td></tr>'
      }</tbody></table>
      <h2>Workers (${workers.length})</h2>
      <table><tbody>${
        workers
          .map(
            (w) =>
              `<tr><td>${escapeHtml(w.id)}</td><td>${escapeHtml(w.backend ?? '')}</td><td>seen ${new Date(w.lastSeenAt).toLocaleTimeString()}</td></tr>`,
          )
          .join('') || '<tr><td>none alive</td></tr>'
      }</tbody></table>`;
  }

  tbody.addEventListener('change', (e) => {
    const id = e.target.dataset?.select;
    if (!id) return;
    if (e.target.checked) selected.add(id);
    else selected.delete(id);
    compare.disabled = selected.size < 1;
  });
  compare.addEventListener('click', () => navigate(`/compare?runs=${[...selected].join(',')}`));
  status.addEventListener('change', refresh);
  kind.addEventListener('change', refresh);

  main.querySelector('#submit').addEventListener('submit', async (e) => {
    e.preventDefault();
    const problems = main.querySelector('#problems');
    const result = main.querySelector('#submit-result');
    problems.replaceChildren();
    result.textContent = '';
    let body;
    try {
      body = JSON.parse(main.querySelector('#spec').value);
    } catch (error) {
      problems.innerHTML = `<li>not JSON: ${escapeHtml(error.message)}</li>`;
      return;
    }
    try {
      const run = await api('POST', '/v1/runs', body);
      result.innerHTML = `submitted <a href="/runs/${escapeHtml(run.id)}" data-link>${escapeHtml(run.name ?? run.id)}</a>`;
      void refresh();
    } catch (error) {
      const p = error.problem;
      problems.innerHTML = [
        `<li>${escapeHtml(p?.title ?? 'Error')}: ${escapeHtml(p?.detail ?? error.message)}</li>`,
        ...(p?.errors ?? []).map(
          (f) => `<li><code>${escapeHtml(f.path)}</code>: ${escapeHtml(f.message)}</li>`,
        ),
      ].join('');
    }
  });

  const stop = followEvents(
    '/v1/events',
    (type, event) => {
      if (type === 'progress') showProgress(event);
      // A checkpoint comes with validation metrics: the best val accuracy may have moved.
      else if (type === 'status' || type === 'checkpoint') refreshSoon();
    },
    (connected) => {
      main.querySelector('#live').textContent = connected ? '● live' : 'reconnecting…';
      // Every connection: read the list, which may have changed while there was none.
      if (connected) void refresh();
    },
  );
  const queueTimer = setInterval(
    () => void refreshQueue().catch(() => undefined),
    QUEUE_REFRESH_MS,
  );
  return () => {
    stop();
    clearInterval(queueTimer);
    clearTimeout(pending);
  };
}
