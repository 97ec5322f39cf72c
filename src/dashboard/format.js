/** Small formatting helpers shared by the views. */

export function escapeHtml(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function statusBadge(status) {
  return `<span class="status ${escapeHtml(status)}">${escapeHtml(status)}</span>`;
}

export function progressBar(progress) {
  if (!progress || !progress.totalSteps) return '';
  const pct = Math.min(100, (100 * progress.step) / progress.totalSteps);
  return `<span class="progress" title="step ${progress.step} of ${progress.totalSteps}"><span style="width:${pct.toFixed(1)}%"></span></span> ${pct.toFixed(0)}%`;
}

export function duration(run) {
  if (!run.startedAt) return '';
  const end = run.finishedAt ? Date.parse(run.finishedAt) : Date.now();
  const s = Math.max(0, Math.round((end - Date.parse(run.startedAt)) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

export function number(x, digits = 4) {
  return typeof x === 'number' ? x.toPrecision(digits) : '';
}
