/**
 * One run: status, progress and details that follow the run's event stream; charts of loss,
 * accuracy, learning rate and throughput (and any other series an external run logs) that grow
 * live; checkpoints, config and error; an eval run's scores and confusion matrix; a cancel
 * button.
 */
import { followEvents } from './api.js';
import { duration, escapeHtml, number, progressBar, statusBadge } from './format.js';
import { evalResultHtml } from './eval-result.js';
import { createSeriesChart } from './series-chart.js';

const CHARTS = [
  { title: 'Loss', names: ['train/loss', 'train/epoch_loss', 'val/loss'] },
  { title: 'Accuracy', names: ['train/accuracy', 'train/top5', 'val/accuracy', 'val/top5'] },
  { title: 'Learning rate', names: ['train/lr'] },
  { title: 'Throughput (images/s)', names: ['train/images_per_sec'] },
  { title: 'Memory (MB)', names: ['system/rss_mb', 'system/tensor_mb', 'system/gpu_mb'] },
];

export function renderRun(main, runId, { api }) {
  main.innerHTML = `
    <div class="panel">
      <h1 id="title">Run</h1>
      <div class="meta" id="meta"></div>
      <p><button id="cancel" class="danger" type="button">Cancel run</button> <span id="live" class="live"></span></p>
      <div class="error" id="error"></div>
    </div>
    <div class="panel" id="eval" hidden></div>
    <div class="grid" id="charts"></div>
    <div class="grid">
      <div class="panel"><h2>Checkpoints</h2><table id="checkpoints"><tbody></tbody></table></div>
      <div class="panel"><h2>Config</h2><pre id="config"></pre></div>
    </div>`;
  const charts = [];
  let run;

  function renderRunDetails() {
    main.querySelector('#title').textContent = run.name ?? run.id;
    main.querySelector('#meta').innerHTML = [
      `<span>${statusBadge(run.status)}</span>`,
      `<span>${progressBar(run.progress)}</span>`,
      `<span>kind <b>${escapeHtml(run.kind)}</b></span>`,
      run.backend ? `<span>backend <b>${escapeHtml(run.backend)}</b></span>` : '',
      run.device ? `<span>device <b>${escapeHtml(run.device)}</b></span>` : '',
      `<span>duration <b>${duration(run)}</b></span>`,
      `<span>attempts <b>${run.attempts}</b></span>`,
      run.bestValAccuracy != null
        ? `<span>best val acc. <b>${number(run.bestValAccuracy, 3)}</b></span>`
        : '',
      run.result?.valAccuracy != null
        ? `<span>final val acc. <b>${number(run.result.valAccuracy, 3)}</b></span>`
        : '',
    ].join('');
    main.querySelector('#cancel').hidden = !['queued', 'running'].includes(run.status);
    main.querySelector('#error').textContent = run.error
      ? `${run.error.name}: ${run.error.message}`
      : '';
    main.querySelector('#config').textContent = JSON.stringify(run.config, null, 2);
    const evaluation = main.querySelector('#eval');
    evaluation.hidden = !(run.kind === 'eval' && run.result);
    if (!evaluation.hidden) evaluation.innerHTML = evalResultHtml(run);
  }

  async function loadRun() {
    run = await api('GET', `/v1/runs/${runId}`);
    renderRunDetails();
    return run;
  }

  let reload;
  /** Reads the run again, once for a burst of events. */
  function reloadRunSoon() {
    reload ??= setTimeout(() => {
      reload = undefined;
      void loadRun().catch(() => undefined);
    }, 500);
  }

  async function loadCheckpoints() {
    const { items } = await api('GET', `/v1/runs/${runId}/checkpoints`);
    main.querySelector('#checkpoints tbody').innerHTML =
      items
        .map(
          (
            c,
          ) => `<tr><td>step ${c.step}</td><td>epoch ${c.epoch}</td><td class="num">${(c.bytes / 1e6).toFixed(1)} MB</td>
            <td>${escapeHtml(
              Object.entries(c.metrics ?? {})
                .map(([k, v]) => `${k} ${number(v, 3)}`)
                .join(', '),
            )}</td></tr>`,
        )
        .join('') || '<tr><td>none yet</td></tr>';
  }

  async function buildCharts() {
    const { series } = await api('GET', `/v1/runs/${runId}/metrics?maxPoints=1`);
    const present = new Set(series.map((s) => s.name));
    const container = main.querySelector('#charts');
    const used = new Set();
    for (const chart of CHARTS) {
      const names = chart.names.filter((n) => present.has(n));
      names.forEach((n) => used.add(n));
      if (names.length > 0)
        charts.push(createSeriesChart(container, { title: chart.title, runIds: [runId], names }));
    }
    // Series of other names (external runs log what they like): a chart each.
    for (const name of [...present].filter((n) => !used.has(n)).sort())
      charts.push(createSeriesChart(container, { title: name, runIds: [runId], names: [name] }));
    await Promise.all(charts.map((c) => c.ready));
  }

  async function rebuildCharts() {
    for (const c of charts.splice(0)) c.destroy();
    main.querySelector('#charts').replaceChildren();
    await buildCharts();
  }

  let rebuilding;
  let connections = 0;
  const stop = followEvents(
    `/v1/runs/${runId}/events`,
    (type, event) => {
      if (type === 'status' || type === 'progress') {
        if (run) {
          Object.assign(
            run,
            type === 'status'
              ? { status: event.status }
              : {
                  progress: { step: event.step, totalSteps: event.totalSteps, epoch: event.epoch },
                },
          );
          renderRunDetails();
        }
        if (type === 'status') void loadRun();
      } else if (type === 'metrics') {
        const charted = new Set(charts.flatMap((c) => c.names));
        if (event.series.every((s) => charted.has(s.name))) {
          for (const c of charts) c.onMetrics(event);
        } else if (!rebuilding) {
          // A series the page has no chart for yet (the first points of a run): rebuild.
          rebuilding = rebuildCharts().finally(() => (rebuilding = undefined));
        }
        // New validation figures may move the best val accuracy in the header.
        if (event.series.some((s) => s.name === 'val/accuracy')) reloadRunSoon();
      } else if (type === 'checkpoint') {
        void loadCheckpoints();
      } else if (type === 'too-large') {
        // An event over EVENT_MAX_BYTES was not sent: read what it carried over REST.
        if (!rebuilding) for (const c of charts) c.refreshSoon();
        reloadRunSoon();
      }
    },
    (connected) => {
      main.querySelector('#live').textContent = connected ? '● live' : 'reconnecting…';
      // After a reconnect, read again what may have happened while the stream was down (the
      // run itself is read on the status event every connection opens with).
      if (connected && ++connections > 1) {
        void loadCheckpoints().catch(() => undefined);
        if (!rebuilding) for (const c of charts) c.refresh();
      }
    },
  );

  main.querySelector('#cancel').addEventListener('click', async () => {
    const button = main.querySelector('#cancel');
    button.disabled = true;
    try {
      run = await api('POST', `/v1/runs/${runId}/cancel`);
      renderRunDetails();
    } catch (error) {
      main.querySelector('#error').textContent = error.message;
    } finally {
      button.disabled = false;
    }
  });

  void loadRun()
    .then(() => Promise.all([loadCheckpoints(), buildCharts()]))
    .catch((error) => {
      main.querySelector('#error').textContent = error.message;
    });

  return () => {
    clearTimeout(reload);
    stop();
    for (const c of charts) c.destroy();
  };
}
