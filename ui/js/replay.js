// A stored callback's raw body and its replay button, shared by the message view and the
// actions view. Replaying is always safe: every handler is idempotent.

import { api, showError } from './api.js';
import { badge, clear, el } from './dom.js';
import { enc, fmtBytes, prettyJson } from './format.js';

/** The raw callback body, pretty-printed (folded unless `open`), and a replay button. */
export function rawBody(callback, open) {
  const out = el('span', { class: 'out', role: 'status' });
  const button = el('button', {
    type: 'button',
    class: 'btn small',
    text: 'Replay',
    title: `Run callback #${callback.id} through the handlers again`,
    onclick: () => replay(callback.id, button, out),
  });
  return [
    el(
      'details',
      { class: 'raw', open: open || null, dataset: { callbackId: String(callback.id) } },
      el('summary', { text: `Raw callback #${callback.id} (${callback.trigger}, ${fmtBytes(new Blob([callback.body || '']).size)})` }),
      el('pre', { class: 'json', tabindex: '0', 'aria-label': `Body of callback ${callback.id}`, text: prettyJson(callback.body ?? '') }),
    ),
    el('div', { class: 'actions-row' }, button, out),
  ];
}

export async function replay(id, button, out) {
  button.disabled = true;
  out.textContent = 'replaying…';
  out.className = 'out muted';
  try {
    const data = await api(`/api/callbacks/${enc(id)}/replay`, { method: 'POST' });
    clear(out).append(
      badge(data?.result === 'applied' ? 'applied' : 'unprocessable', data?.result || '?'),
      ` callback #${data?.callback_id ?? id}`,
      data?.detail ? ` · ${data.detail}` : '',
    );
    out.className = 'out';
    out.dataset.result = data?.result || '';
  } catch (error) {
    out.textContent = '';
    out.className = 'out error';
    showError(out, error);
  } finally {
    button.disabled = false;
  }
}
