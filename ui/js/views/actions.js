// Actions: send a signed test callback through the whole path, replay a stored one.

import { api, showError } from '../api.js';
import { $, badge, clear, el, kv } from '../dom.js';
import { dash, enc, orDash, prettyJson } from '../format.js';
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
    // Grouped by product, in the order the server lists them (Conversation and SMS first).
    const groups = new Map();
    for (const s of this.samples) {
      const label = PRODUCTS[s.api] || s.api || 'Other';
      if (!groups.has(label)) groups.set(label, el('optgroup', { label }));
      groups.get(label).append(el('option', { value: s.name, text: `${s.name} (${s.trigger})` }));
    }
    select.append(...groups.values());
    // Suggestions, not a closed list: SMS reports take their own statuses (Delivered, Failed…).
    const statuses = clear($('send-statuses'));
    for (const status of Array.isArray(data?.statuses) ? data.statuses : []) statuses.append(el('option', { value: status }));
    this.describe();
  },

  /** The chosen sample's description, the sources that take it, and what its id is called. */
  describe() {
    const sample = this.samples.find((s) => s.name === $('send-sample').value);
    $('send-desc').textContent = sample?.description || '\u00a0';
    const sources = Array.isArray(sample?.sources) ? sample.sources : [];
    const select = clear($('send-source'));
    for (const name of sources) select.append(el('option', { value: name, text: name }));
    select.disabled = !sources.length;
    const note = $('send-source-note');
    note.hidden = Boolean(sources.length) || !sample;
    note.textContent = sample && !sources.length ? `No source of this receiver takes ${FAMILIES[sample.family] || sample.family} callbacks; sending says what to configure.` : '';
    const label = clear($('send-id-label'));
    const [name, hint] = ID_LABELS[sample?.family] || ID_LABELS.conversation;
    label.append(name, ' ', el('small', { text: hint }));
  },

  async send() {
    const button = $('send-submit');
    const out = clear($('send-result'));
    const request = { sample: $('send-sample').value };
    const source = $('send-source').value;
    if (source) request.source = source;
    const sample = this.samples.find((s) => s.name === request.sample);
    const messageId = $('send-message-id').value.trim();
    const status = $('send-status').value.trim();
    if (messageId) request.message_id = messageId;
    if (status) request.status = status;
    button.disabled = true;
    out.append(el('p', { class: 'muted', text: 'sending…' }));
    try {
      const data = await api('/api/send', { method: 'POST', body: request });
      clear(out).append(...result(data, request, sample));
      out.dataset.status = String(data?.http_status ?? '');
      const ack = data?.ack || {};
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

/** The product headings of the sample list, by the journal's API names. */
const PRODUCTS = { conversation: 'Conversation API', sms: 'SMS API', voice: 'Voice', verification: 'Verification', numbers: 'Numbers' };
const FAMILIES = { conversation: 'Conversation API and SMS', voice: 'Voice', verification: 'Verification', numbers: 'Numbers' };
/** What a sample's `message_id` is, by the kind of source that takes it. */
const ID_LABELS = {
  conversation: ['Message id', '(optional: reuse one to send several reports)'],
  voice: ['Call id', '(optional: reuse one to send several events of a call)'],
  verification: ['Verification id', '(optional: reuse one for a request and its result)'],
  numbers: ['Number', '(optional: the number the event is about)'],
};
/** Where what a sent callback is about is shown, by its API. */
const ID_VIEWS = { voice: 'calls', verification: 'verifications', numbers: 'numbers' };

/** What the webhook answered: an ack (or an error), or the answer to a callback Sinch waits on. */
function result(data, request, sample) {
  const ack = data?.ack || {};
  const ok = typeof data?.http_status === 'number' && data.http_status >= 200 && data.http_status < 300;
  const origin = data?.answer_origin;
  const verdict = !ok ? 'rejected' : ack.status === 'duplicate' ? 'duplicate' : 'accepted';
  const view = ID_VIEWS[sample?.api];
  const id = data?.message_id;
  const parts = [
    el(
      'p',
      { class: 'big-answer' },
      badge(verdict, origin ? 'answered' : ack.status || ack.error || `HTTP ${data?.http_status}`),
      el('span', { text: `HTTP ${orDash(data?.http_status)}` }),
    ),
    kv([
      ['Sample', data?.sample ?? request.sample],
      ['Source', data?.source ? el('span', { class: 'mono', text: data.source }) : undefined],
      [
        'Callback',
        ack.callback_id !== undefined && ack.callback_id !== null
          ? el('a', { href: `#callback/${enc(ack.callback_id)}`, text: `#${ack.callback_id}` })
          : origin ? undefined : dash,
      ],
      [ID_LABELS[sample?.family]?.[0] || 'Message', id ? el('a', { href: view ? `#${view}/${enc(id)}` : `#message/${enc(id)}`, class: 'mono', text: id }) : dash],
      ['Answered by', origin ? el('span', { dataset: { role: 'answer-origin' }, text: origin }) : undefined],
      ['Answer', !origin && (ack.message || ack.reason) ? `${ack.error || ''} ${ack.message || ack.reason}`.trim() : undefined],
    ]),
  ];
  // The answer Sinch would act on (SVAML, allow or deny), as it was given.
  if (origin) parts.push(el('pre', { class: 'json', id: 'send-answer', tabindex: '0', 'aria-label': 'The answer', text: prettyJson(data.ack) }));
  return parts;
}
