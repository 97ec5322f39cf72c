/**
 * A uPlot chart of some metric series of one or more runs. It asks the API for as many buckets
 * as the chart is wide in pixels (so a million-point series costs ~1,000 buckets), draws each
 * bucketed series as its last-value line inside a min/max band (spikes stay visible), fetches
 * again for the visible range when the user zooms (exact points once the range is narrow
 * enough), and appends live points while the whole range is shown.
 */
import uPlot from '/ui/vendor/uPlot.esm.js';
import { api } from './api.js';

const COLORS = ['#2f6fec', '#e8772e', '#1d8a4e', '#9b59b6', '#c93a3a', '#16a2b8', '#7f8c8d'];

/**
 * @param {HTMLElement} container
 * @param {{ title: string, runIds: string[], names: string[], label?: (runId: string, name: string) => string }} options
 */
export function createSeriesChart(container, options) {
  const root = document.createElement('div');
  root.className = 'chart panel';
  root.innerHTML = `<h3></h3><div class="plot"></div><div class="hint">drag to zoom, double-click to reset</div>`;
  root.querySelector('h3').textContent = options.title;
  container.append(root);
  const plotEl = root.querySelector('.plot');

  /** key `${runId} ${name}` -> points [{ step, value, min?, max? }] in step order */
  const series = new Map();
  const keys = options.runIds.flatMap((runId) => options.names.map((name) => `${runId} ${name}`));
  let plot;
  let zoomed = null; // [fromStep, toStep] while zoomed in
  let requestId = 0;

  function width() {
    return Math.max(300, Math.floor(root.clientWidth - 30));
  }

  async function load(range) {
    const mine = ++requestId;
    const query = new URLSearchParams({
      names: options.names.join(','),
      maxPoints: String(width()),
    });
    if (range) {
      query.set('fromStep', String(Math.max(0, Math.floor(range[0]))));
      query.set('toStep', String(Math.max(0, Math.ceil(range[1]))));
    }
    query.set('runIds', options.runIds.join(','));
    const { runs } = await api('GET', `/v1/metrics?${query}`);
    if (mine !== requestId) return; // a newer request (another zoom) wins
    for (const run of runs)
      for (const s of run.series) series.set(`${run.runId} ${s.name}`, s.points);
    draw(range);
  }

  function draw(range) {
    const tables = [];
    const uSeries = [{ label: 'step' }];
    const bands = [];
    keys.forEach((key, i) => {
      const points = series.get(key) ?? [];
      const [runId, name] = key.split(' ');
      const color = COLORS[i % COLORS.length];
      const bucketed = points.some((p) => p.min !== undefined);
      const xs = points.map((p) => p.step);
      tables.push([xs, points.map((p) => p.value)]);
      const label = options.label ? options.label(runId, name) : name;
      uSeries.push({
        label,
        stroke: color,
        width: 1.5,
        spanGaps: true,
        points: { show: points.length < 60 },
      });
      if (bucketed) {
        tables.push([xs, points.map((p) => p.min ?? p.value)]);
        tables.push([xs, points.map((p) => p.max ?? p.value)]);
        const at = uSeries.length;
        uSeries.push({
          label: `${label} min`,
          stroke: `${color}70`,
          width: 1,
          spanGaps: true,
          points: { show: false },
        });
        uSeries.push({
          label: `${label} max`,
          stroke: `${color}70`,
          width: 1,
          spanGaps: true,
          points: { show: false },
        });
        bands.push({ series: [at + 1, at], fill: `${color}40` });
      }
    });
    const data = tables.length > 0 ? uPlot.join(tables) : [[]];
    plot?.destroy();
    plot = new uPlot(
      {
        width: width(),
        height: 240,
        series: uSeries,
        bands,
        legend: { live: true },
        scales: { x: { time: false, ...(range ? { min: range[0], max: range[1] } : {}) } },
        axes: [{}, { size: 60 }],
        cursor: { drag: { x: true, y: false } },
        hooks: {
          setSelect: [
            (u) => {
              if (u.select.width < 5) return;
              const from = u.posToVal(u.select.left, 'x');
              const to = u.posToVal(u.select.left + u.select.width, 'x');
              zoomed = [from, to];
              void load(zoomed);
            },
          ],
        },
      },
      data,
      plotEl,
    );
    plotEl.ondblclick = () => {
      zoomed = null;
      void load(null);
    };
    // What is drawn, for tests and bench/dashboard.ts: how many points, up to which step.
    root.dataset.points = String(keys.reduce((n, k) => n + (series.get(k)?.length ?? 0), 0));
    root.dataset.lastStep = String(
      Math.max(-1, ...keys.map((k) => series.get(k)?.at(-1)?.step ?? -1)),
    );
  }

  let refetch;
  return {
    root,
    names: options.names,
    ready: load(null),
    /** A run's metrics event: append its points (or refetch when it carried only a summary). */
    onMetrics(event) {
      let changed = false;
      let summaryOnly = false;
      for (const s of event.series) {
        const key = `${event.runId} ${s.name}`;
        if (!keys.includes(key)) continue;
        if (!s.points) {
          summaryOnly = true;
          continue;
        }
        const list = series.get(key) ?? [];
        const lastStep = list.length ? list[list.length - 1].step : -1;
        for (const p of s.points) if (p.step > lastStep) list.push(p);
        series.set(key, list);
        changed = true;
      }
      if (zoomed) return;
      const tooMany = [...series.values()].some((l) => l.length > width() * 2);
      if (summaryOnly || tooMany) {
        // Coalesce refetches: one a second at most, whatever the event rate.
        refetch ??= setTimeout(() => {
          refetch = undefined;
          void load(null);
        }, 1000);
      } else if (changed) draw(null);
    },
    /**
     * Reads the whole range again within a second, coalesced like summary-only batches: for an
     * event the server did not send because it was over EVENT_MAX_BYTES.
     */
    refreshSoon() {
      if (zoomed) return;
      refetch ??= setTimeout(() => {
        refetch = undefined;
        void load(null);
      }, 1000);
    },
    /** Reads the whole range again unless the user is zoomed in (after a reconnect). */
    refresh() {
      if (!zoomed) void load(null);
    },
    destroy() {
      plot?.destroy();
      clearTimeout(refetch);
      root.remove();
    },
  };
}
