// Actions: send a signed test callback through the whole path, replay a stored one.

import { api, showError } from '../api.js';
import { $, badge, clear, el, kv } from '../dom.js';
import { dash, enc, orDash } from '../format.js';
import { replay } from '../replay.js';

export const actions = {
  loaded: null,
  samples: [],

  init() {
    $('send-sample').addEventListener('change', () => this.describe());
    $('send-form').addEventListener('submit', (event) => {
      event.preventDefault();
      this.send();
    });
    $('replay-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const id = $('replay-id').value.trim();
      if (!/^\d+$/.test(id)) {
        $('replay-result').textContent = 'A callback id is a number.';
        return;
      }
      replay(id, $('replay-submit'), $('replay-result'));
    });
  },

  reset() {
    this.loaded = null;
  },

  load() {
    if (!this.loaded) {
      this.loaded = api('/api/samples')
        .then((data) => this.fill(data))
        .catch((error) => {
          this.loaded = null;
          showError($('send-result'), error);
        });
    }
    return this.loaded;
  },

  fill(data) {
    this.samples = Array.isArray(data?.samples) ? data.samples : [];
    const select = clear($('send-sample'));
    for (const s of this.samples) select.append(el('option', { value: s.name, text: `${s.name} (${s.trigger})` }));
    // Suggestions, not a closed list: SMS reports take their own statuses (Delivered, Failed…).
    const statuses = clear($('send-statuses'));
    for (const status of Array.isArray(data?.statuses) ? data.statuses : []) statuses.append(el('option', { value: status }));
    this.describe();
  },

  describe() {
    const sample = this.samples.find((s) => s.name === $('send-sample').value);
    $('send-desc').textContent = sample?.description || '\u00a0';
  },

  async send() {
    const button = $('send-submit');
    const out = clear($('send-result'));
    const request = { sample: $('send-sample').value };
    const messageId = $('send-message-id').value.trim();
    const status = $('send-status').value.trim();
    if (messageId) request.message_id = messageId;
    if (status) request.status = status;
    button.disabled = true;
    out.append(el('p', { class: 'muted', text: 'sending…' }));
    try {
      const data = await api('/api/send', { method: 'POST', body: request });
      const ack = data?.ack || {};
      const ok = typeof data?.http_status === 'number' && data.http_status >= 200 && data.http_status < 300;
      clear(out).append(
        el(
          'p',
          { class: 'big-answer' },
          badge(ok ? (ack.status === 'duplicate' ? 'duplicate' : 'accepted') : 'rejected', ack.status || ack.error || `HTTP ${data?.http_status}`),
          el('span', { text: `HTTP ${orDash(data?.http_status)}` }),
        ),
        kv([
          ['Sample', data?.sample ?? request.sample],
          [
            'Callback',
            ack.callback_id !== undefined && ack.callback_id !== null
              ? el('a', { href: `#callback/${enc(ack.callback_id)}`, text: `#${ack.callback_id}` })
              : dash,
          ],
          ['Message', data?.message_id ? el('a', { href: `#message/${enc(data.message_id)}`, class: 'mono', text: data.message_id }) : dash],
          ['Answer', ack.message || ack.reason ? `${ack.error || ''} ${ack.message || ack.reason}`.trim() : undefined],
        ]),
      );
      out.dataset.status = String(data?.http_status ?? '');
      if (ack.callback_id !== undefined && ack.callback_id !== null) $('replay-id').value = String(ack.callback_id);
    } catch (error) {
      clear(out);
      const p = el('p', { class: 'error' });
      out.append(p);
      showError(p, error);
    } finally {
      button.disabled = false;
    }
  },
};
