// Messages: the recent list, one message's timeline (kept current while the feed reports
// callbacks for it), one callback.

import { api, showError } from '../api.js';
import { $, badge, clear, el, kv, mono, statusEl, timeEl } from '../dom.js';
import { dash, enc, orDash } from '../format.js';
import { rawBody } from '../replay.js';
import { currentView } from '../router.js';
import { renderMessage } from './timeline.js';

export const messages = {
  controller: null,
  currentId: null,
  refreshTimer: null,
  onContact: null,

  /** `onContact(id)`: a message's contact link was followed. */
  init({ onContact }) {
    this.onContact = onContact;
    $('message-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const id = $('message-id').value.trim();
      if (id) location.hash = `#message/${enc(id)}`;
    });
  },

  begin() {
    if (this.controller) this.controller.abort();
    this.controller = new AbortController();
    $('message-error').textContent = '';
    return this.controller.signal;
  },

  async open(id) {
    const signal = this.begin();
    this.currentId = id || null;
    const body = $('message-body');
    $('message-id').value = id || '';
    if (!id) {
      $('message-title').textContent = 'Messages';
      await this.recent(signal, body);
      return;
    }
    $('message-title').textContent = 'Message';
    await this.load(id, signal, true);
  },

  /** Called with the message ids the feed just saw: the open timeline follows them. */
  touched(ids) {
    if (!this.currentId || currentView() !== 'message' || !ids.has(this.currentId)) return;
    clearTimeout(this.refreshTimer);
    const id = this.currentId;
    this.refreshTimer = setTimeout(() => {
      if (this.currentId === id && currentView() === 'message') this.load(id, this.begin(), false);
    }, 300);
  },

  async recent(signal, body) {
    try {
      const data = await api('/api/messages?limit=25', { signal });
      const list = data?.messages || [];
      const table = el(
        'table',
        { class: 'grid list-msgs' },
        el(
          'thead',
          null,
          el('tr', null, ['Message id', 'Direction', 'Status', 'Channel', 'Updated'].map((h) => el('th', { scope: 'col', text: h }))),
        ),
        el(
          'tbody',
          null,
          list.map((m) =>
            el(
              'tr',
              null,
              el('td', null, el('a', { href: `#message/${enc(m.message_id)}`, text: m.message_id })),
              el('td', { text: orDash(m.direction) }),
              el('td', null, statusEl(m.status)),
              el('td', { text: orDash(m.channel) }),
              el('td', null, timeEl(m.updated_at)),
            ),
          ),
        ),
      );
      clear(body).append(
        el('h2', { class: 'section-gap', text: 'Recent messages' }),
        list.length ? el('div', { class: 'table-scroll' }, table) : el('p', { class: 'muted', text: 'No message stored yet.' }),
      );
    } catch (error) {
      showError($('message-error'), error);
    }
  },

  async load(id, signal, fresh) {
    const body = $('message-body');
    const open = new Set([...body.querySelectorAll('details[open]')].map((d) => d.dataset.callbackId));
    if (fresh) clear(body).append(el('p', { class: 'muted', text: 'Loading…' }));
    try {
      const data = await api(`/api/messages/${enc(id)}`, { signal });
      const history = Array.isArray(data?.history) ? data.history : [];
      const ids = [...new Set(history.map((h) => h.callback_id).filter((v) => v !== null && v !== undefined))];
      const callbacks = new Map();
      const answers = await Promise.allSettled(ids.map((cid) => api(`/api/callbacks/${enc(cid)}`, { signal })));
      answers.forEach((answer, i) => {
        if (answer.status === 'fulfilled' && answer.value?.callback) callbacks.set(ids[i], answer.value.callback);
      });
      if (signal.aborted) return;
      const analyses = Array.isArray(data?.analyses) ? data.analyses : [];
      clear(body).append(renderMessage(data.message, { history, analyses, callbacks, open, onContact: this.onContact }));
    } catch (error) {
      if (signal.aborted) return;
      clear(body);
      showError($('message-error'), error);
    }
  },

  async openCallback(id) {
    const signal = this.begin();
    this.currentId = null;
    $('message-title').textContent = 'Callback';
    $('message-id').value = '';
    const body = clear($('message-body'));
    if (!/^\d+$/.test(id)) {
      $('message-error').textContent = 'A callback id is a number.';
      return;
    }
    try {
      const data = await api(`/api/callbacks/${enc(id)}`, { signal });
      const c = data.callback;
      body.append(
        el(
          'section',
          { class: 'card' },
          el('div', { class: 'msg-head' }, el('span', { class: 'mono', text: `callback #${c.id}` }), badge('accepted', c.trigger, 'trigger'),
            c.processed_at ? badge('processed', 'processed') : badge('failed', 'pending')),
          kv([
            ['Trigger', c.trigger],
            ['API', c.api],
            ['Received', timeEl(c.received_at)],
            ['Processed', c.processed_at ? timeEl(c.processed_at) : 'not yet'],
            ['Attempts', String(c.attempts ?? 0)],
            ['Last error', c.last_error ?? undefined],
            ['Message', c.message_id ? el('a', { href: `#message/${enc(c.message_id)}`, class: 'mono', text: c.message_id }) : dash],
            ['App', c.app_id ? mono(c.app_id) : dash],
            ['Project', c.project_id ? mono(c.project_id) : dash],
            ['Dedupe key', mono(c.dedupe_key)],
          ]),
          rawBody(c, true),
        ),
      );
    } catch (error) {
      if (!signal.aborted) showError($('message-error'), error);
    }
  },
};
