/**
 * The compare view (`/compare?runs=a,b`): the series the chosen runs share, one chart per
 * metric with a line per run, each from `GET /v1/metrics` at the chart's width in buckets. Runs
 * still training grow live: the view follows each run's event stream and hands its metric
 * batches to the charts.
 */
import { followEvents } from './api.js';
import { escapeHtml } from './format.js';
import { createSeriesChart } from './series-chart.js';

export function renderCompare(main, { api }) {
  const runIds = (new URLSearchParams(location.search).get('runs') ?? '')
    .split(',')
    .filter(Boolean);
  main.innerHTML = `<div class="panel"><h1>Compare</h1><p id="which"></p></div><div class="grid" id="charts"></div>`;
  const charts = [];
  if (runIds.length === 0) {
    main.querySelector('#which').textContent =
      'Select runs in the list and press "Compare selected".';
    return () => {};
  }
  void (async () => {
    const runs = await Promise.all(runIds.map((id) => api('GET', `/v1/runs/${id}`)));
    const label = new Map(runs.map((r) => [r.id, r.name ?? r.id.slice(0, 8)]));
    main.querySelector('#which').innerHTML = runs
      .map(
        (r) => `<a href="/runs/${escapeHtml(r.id)}" data-link>${escapeHtml(label.get(r.id))}</a>`,
      )
      .join(' · ');
    const names = runs
      .map((r) => new Set(Object.keys(r.latestMetrics ?? {})))
      .reduce((a, b) => new Set([...a].filter((n) => b.has(n))));
    const container = main.querySelector('#charts');
    for (const name of [...names].sort())
      charts.push(
        createSeriesChart(container, {
          title: name,
          runIds,
          names: [name],
          label: (runId) => label.get(runId),
        }),
      );
  })().catch((error) => {
    main.querySelector('#which').textContent = error.message;
  });
  const stops = runIds.map((id) =>
    followEvents(`/v1/runs/${encodeURIComponent(id)}/events`, (type, event) => {
      if (type === 'metrics') for (const c of charts) c.onMetrics(event);
      // An event over EVENT_MAX_BYTES was not sent: read the series again over REST.
      else if (type === 'too-large') for (const c of charts) c.refreshSoon();
    }),
  );
  return () => {
    for (const stop of stops) stop();
    for (const c of charts) c.destroy();
  };
}
