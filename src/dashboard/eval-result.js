/**
 * An eval run's result on its page: top-1, top-5, loss and the images counted; precision and
 * recall per class; and the confusion matrix (rows: true class, columns: predicted), each cell
 * shaded by its share of the row, green on the diagonal and red off it, so the classes the model
 * mixes up stand out. Matrices above MAX_MATRIX_CLASSES classes are left to the API's JSON.
 */
import { escapeHtml, number } from './format.js';

const MAX_MATRIX_CLASSES = 40;

const percent = (x) => (typeof x === 'number' ? `${(100 * x).toFixed(1)}%` : '–');

export function evalResultHtml(run) {
  const r = run.result;
  const source = run.config?.checkpoint;
  // The eval's config names the checkpoint it resolved at submission (run and step).
  const of = source?.runId
    ? `of <a href="/runs/${escapeHtml(source.runId)}" data-link>run ${escapeHtml(String(source.runId).slice(0, 8))}</a> at step <b>${escapeHtml(source.step)}</b>`
    : '';
  const perClass = r.perClass
    .map(
      (c) =>
        `<tr><td>${escapeHtml(c.label)}</td><td class="num">${c.count}</td><td class="num">${percent(c.precision)}</td><td class="num">${percent(c.recall)}</td></tr>`,
    )
    .join('');
  return `
    <h2>Evaluation ${of}</h2>
    <div class="meta" id="eval-summary">
      <span>top-1 <b>${percent(r.top1)}</b></span>
      <span>top-5 <b>${percent(r.top5)}</b></span>
      <span>loss <b>${number(r.loss, 4)}</b></span>
      <span>images <b>${r.count}</b></span>
      <span>backend <b>${escapeHtml(r.backend)}</b></span>
    </div>
    <div class="grid">
      <div><h3>Per class</h3><table id="eval-per-class">
        <thead><tr><th>class</th><th>images</th><th>precision</th><th>recall</th></tr></thead>
        <tbody>${perClass}</tbody></table></div>
      <div><h3>Confusion matrix</h3>${confusionMatrixHtml(r)}</div>
    </div>`;
}

function confusionMatrixHtml(r) {
  const n = r.confusionMatrix.length;
  if (n > MAX_MATRIX_CLASSES)
    return `<p>${n}×${n}: too large to draw; it is in the run's <code>result.confusionMatrix</code>.</p>`;
  const labels = r.perClass.map((c) => c.label);
  const head = labels.map((l) => `<th title="predicted ${escapeHtml(l)}">${escapeHtml(l)}</th>`);
  const rows = r.confusionMatrix.map((row, i) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    const cells = row.map((count, j) => {
      const share = count / total;
      const colour = i === j ? '29, 138, 78' : '201, 58, 58';
      const style =
        count > 0
          ? ` style="background: rgba(${colour}, ${(0.15 + 0.85 * share).toFixed(2)})"`
          : '';
      return `<td class="num"${style} title="true ${escapeHtml(labels[i])}, predicted ${escapeHtml(labels[j])}">${count}</td>`;
    });
    return `<tr><th>${escapeHtml(labels[i])}</th>${cells.join('')}</tr>`;
  });
  return `<table class="confusion" id="eval-confusion"><thead><tr><th>true \\ predicted</th>${head.join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}
