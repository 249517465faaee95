// Live feed: one fixed-height row per callback, updated in place as its outcome changes.
// New rows are prepended only while the list is scrolled to the top and not paused;
// otherwise they wait, counted in the fixed-size "N new" pill, so nothing the user is
// reading moves.

import { $, addOption, badge, clear, el, listKeys, statusEl } from '../dom.js';
import { dash, enc, fmtClock, fmtMs } from '../format.js';
import { currentView, onView } from '../router.js';

/** Rows kept in the live feed; older ones are dropped from the bottom. */
const MAX_ROWS = 500;
const OUTCOME_RANK = { accepted: 1, duplicate: 1, rejected: 1, failed: 2, processed: 3, unprocessable: 3 };

export const feed = {
  entries: new Map(),
  pending: [],
  inbox: [],
  scheduled: false,
  paused: false,
  savedScroll: 0,
  tabStop: null,
  knownTriggers: new Set(),
  knownStatuses: new Set(),
  list: null,
  scroller: null,
  onRejected: null,
  onMessages: null,

  /** `onRejected()`: a rejected attempt arrived; `onMessages(ids)`: callbacks for these messages did. */
  init({ onRejected, onMessages }) {
    this.onRejected = onRejected;
    this.onMessages = onMessages;
    onView('feed', { leave: () => this.saveScroll(), enter: () => this.restoreScroll() });
    this.list = $('feed-list');
    this.scroller = $('feed-scroll');
    this.scroller.addEventListener('scroll', () => this.flushIfPossible(), { passive: true });
    $('new-pill').addEventListener('click', () => this.showNew());
    $('pause').addEventListener('click', () => this.setPaused(!this.paused));
    for (const id of ['f-trigger', 'f-status', 'f-outcome']) $(id).addEventListener('change', () => this.refilter());
    $('f-id').addEventListener('input', () => this.refilter());
    $('feed-filters').addEventListener('submit', (event) => event.preventDefault());
    this.list.addEventListener('keydown', (event) => listKeys(event, this.list, '.row'));
    // One tab stop for the whole list (the last row used); arrows move within it.
    this.list.addEventListener('focusin', (event) => {
      const li = event.target.closest('li');
      if (li) this.setTabStop(li);
    });
  },

  reset() {
    this.tabStop = null;
    this.entries.clear();
    this.pending = [];
    this.inbox = [];
    clear(this.list);
    this.updatePill();
    this.updateEmpty();
  },

  keyOf(item) {
    const separate = item.outcome === 'duplicate' || item.outcome === 'rejected';
    if (!separate && item.callback_id !== null && item.callback_id !== undefined) return `cb:${item.callback_id}`;
    // Positions restart with the receiver: with the time, an item is told apart from
    // another at the same position, and one sent again on a resume is not shown twice.
    return `seq:${item.seq}@${item.at}`;
  },

  receive(item) {
    this.inbox.push(item);
    if (this.scheduled) return;
    this.scheduled = true;
    // One DOM update per frame, however many items a burst brings.
    const run = () => {
      this.scheduled = false;
      this.drain();
    };
    if (document.hidden) setTimeout(run, 200);
    else requestAnimationFrame(run);
  },

  drain() {
    const items = this.inbox;
    this.inbox = [];
    let rejected = false;
    const touchedMessages = new Set();
    for (const item of items) {
      this.learn(item);
      if (item.outcome === 'rejected') rejected = true;
      if (item.message_id) touchedMessages.add(item.message_id);
      const key = this.keyOf(item);
      const entry = this.entries.get(key);
      if (entry) {
        this.merge(entry, item);
        if (entry.li) {
          if (this.paused) entry.dirty = true;
          else this.paint(entry);
        }
      } else {
        const fresh = { key, first: item, li: null, dirty: false };
        this.merge(fresh, item);
        this.entries.set(key, fresh);
        this.pending.push(fresh);
      }
    }
    // The position of the last item handled: lets a test (or a curious user) see how far
    // the page has read.
    if (items.length) this.list.dataset.lastSeq = String(items[items.length - 1].seq);
    this.flushIfPossible();
    this.updatePill();
    if (rejected) this.onRejected();
    this.onMessages(touchedMessages);
  },

  merge(entry, item) {
    entry.seq = item.seq;
    entry.at = entry.at || item.at;
    for (const field of ['trigger', 'message_id', 'app_id', 'status', 'callback_id', 'reason']) {
      if (item[field] !== null && item[field] !== undefined && item[field] !== '') entry[field] = item[field];
    }
    const rank = OUTCOME_RANK[item.outcome] || 0;
    if (!entry.outcome || rank >= (OUTCOME_RANK[entry.outcome] || 0)) entry.outcome = item.outcome;
    if (typeof item.latency_ms === 'number') {
      if (['accepted', 'duplicate', 'rejected'].includes(item.outcome)) entry.ackMs = item.latency_ms;
      else entry.procMs = item.latency_ms;
    }
    if (item.error) entry.error = item.error;
    if (item.outcome === 'processed') entry.error = null;
  },

  learn(item) {
    addOption($('f-trigger'), this.knownTriggers, item.trigger);
    addOption($('f-status'), this.knownStatuses, item.status);
  },

  atTop() {
    if (currentView() !== 'feed') return this.savedScroll <= 1;
    return this.scroller.scrollTop <= 1;
  },

  flushIfPossible() {
    if (this.paused || !this.atTop()) return;
    if (this.pending.length) this.flush();
    this.applyDeferredVisibility();
  },

  flush() {
    const batch = this.pending;
    this.pending = [];
    const fragment = document.createDocumentFragment();
    const animate = batch.length <= 20;
    for (let i = batch.length - 1; i >= 0; i -= 1) {
      const entry = batch[i];
      entry.li = el('li', { class: animate ? 'fresh' : null });
      entry.dirty = false;
      this.paint(entry);
      fragment.append(entry.li);
    }
    this.list.prepend(fragment);
    while (this.list.children.length > MAX_ROWS) {
      const last = this.list.lastElementChild;
      this.entries.delete(last.dataset.key);
      last.remove();
    }
    this.updatePill();
    this.updateEmpty();
  },

  /** Fills a row's fixed slots; the row's height never depends on its content. */
  paint(entry) {
    const li = entry.li;
    const rejected = entry.outcome === 'rejected';
    li.dataset.key = entry.key;
    li.dataset.outcome = entry.outcome || '';
    if (entry.callback_id !== undefined) li.dataset.callbackId = entry.callback_id;
    if (entry.message_id) li.dataset.messageId = entry.message_id;
    const href = rejected ? '#rejected' : linkOf(entry);
    const ids = el('span', { class: 'c-ids' });
    if (rejected) ids.append(el('span', { text: entry.reason || 'rejected' }));
    else if (entry.message_id) ids.append(el('span', { text: entry.message_id }));
    else if (entry.app_id) ids.append(el('span', { class: 'app', text: 'app' }), el('span', { text: entry.app_id }));
    else ids.append(el('span', { text: dash }));
    if (entry.callback_id !== undefined && entry.callback_id !== null) {
      ids.append(el('span', { class: 'cb', text: `#${entry.callback_id}` }));
    }
    const title = [entry.error, rejected ? `rejected: ${entry.reason || 'unknown reason'}` : null].filter(Boolean).join(' · ');
    const row = el(
      'a',
      { class: 'row', href, title: title || null },
      el('span', { class: 'c-time' }, entry.at ? el('time', { datetime: entry.at, text: fmtClock(entry.at) }) : dash),
      el('span', { class: 'c-trigger', title: entry.trigger || null, text: rejected ? 'signature check' : entry.trigger || dash }),
      ids,
      el('span', { class: 'c-status' }, statusEl(entry.status)),
      el('span', { class: 'c-outcome' }, badge(entry.outcome || 'unknown', entry.outcome || '?', entry.error || null)),
      el(
        'span',
        { class: 'c-latency' },
        el('span', { class: 'lat-ack', title: 'time to answer Sinch', text: entry.ackMs !== undefined ? fmtMs(entry.ackMs) : '' }),
        el('span', {
          class: 'lat-proc',
          title: 'answer → processed',
          text: entry.procMs !== undefined ? `${entry.ackMs !== undefined ? ' · ' : ''}+${fmtMs(entry.procMs)}` : '',
        }),
      ),
    );
    const hadFocus = li.contains(document.activeElement);
    row.tabIndex = li === this.tabStop ? 0 : -1;
    li.replaceChildren(row);
    if (hadFocus) row.focus({ preventScroll: true });
    const visible = this.matches(entry);
    if (li.hidden === visible) {
      // Showing or hiding a row above the reader would move what they read.
      if (this.atTop() && !this.paused) li.hidden = !visible;
      else entry.visibilityDeferred = true;
    }
  },

  setTabStop(li) {
    if (this.tabStop === li) return;
    const old = this.tabStop?.querySelector('.row');
    if (old) old.tabIndex = -1;
    this.tabStop = li;
    const row = li?.querySelector('.row');
    if (row) row.tabIndex = 0;
  },

  /** Keeps the list reachable with Tab: its tab stop is a visible row. */
  ensureTabStop() {
    const stop = this.tabStop;
    if (stop && stop.isConnected && !stop.hidden) return;
    this.setTabStop(this.list.querySelector('li:not([hidden])'));
  },

  applyDeferredVisibility() {
    for (const entry of this.entries.values()) {
      if (entry.visibilityDeferred && entry.li) {
        entry.visibilityDeferred = false;
        entry.li.hidden = !this.matches(entry);
      }
    }
    this.updateEmpty();
  },

  filters() {
    return {
      trigger: $('f-trigger').value,
      status: $('f-status').value,
      outcome: $('f-outcome').value,
      id: $('f-id').value.trim().toLowerCase(),
    };
  },

  matches(entry, f = this.filters()) {
    if (f.trigger && entry.trigger !== f.trigger) return false;
    if (f.status && entry.status !== f.status) return false;
    if (f.outcome && entry.outcome !== f.outcome) return false;
    if (f.id) {
      const haystack = [entry.message_id, entry.app_id, entry.callback_id, entry.callback_id != null ? `#${entry.callback_id}` : null]
        .filter((v) => v !== null && v !== undefined)
        .map((v) => String(v).toLowerCase());
      if (!haystack.some((v) => v.includes(f.id))) return false;
    }
    return true;
  },

  /** A filter change is the user's own action: rows may come and go. */
  refilter() {
    const f = this.filters();
    for (const entry of this.entries.values()) {
      if (entry.li) {
        entry.li.hidden = !this.matches(entry, f);
        entry.visibilityDeferred = false;
      }
    }
    this.updatePill();
    this.updateEmpty();
  },

  updatePill() {
    const f = this.filters();
    const count = this.pending.reduce((n, entry) => n + (this.matches(entry, f) ? 1 : 0), 0);
    const pill = $('new-pill');
    pill.classList.toggle('show', count > 0);
    pill.classList.toggle('paused', this.paused);
    pill.tabIndex = count > 0 ? 0 : -1;
    const shown = count > 999 ? '999+' : String(count);
    $('new-pill-text').textContent = this.paused ? `${shown} new · paused` : `${shown} new`;
    pill.setAttribute(
      'aria-label',
      this.paused ? `${count} new callbacks while paused; show them` : `${count} new callbacks; scroll to the top to show them`,
    );
    pill.dataset.count = String(count);
  },

  updateEmpty() {
    this.ensureTabStop();
    const rows = this.list.children.length;
    $('feed-empty').hidden = rows > 0 || this.pending.length > 0;
    let anyVisible = false;
    for (const li of this.list.children) {
      if (!li.hidden) {
        anyVisible = true;
        break;
      }
    }
    $('feed-filtered').hidden = rows === 0 || anyVisible;
  },

  showNew() {
    if (this.paused) this.setPaused(false);
    this.scroller.scrollTop = 0;
    this.flushIfPossible();
    const first = this.list.querySelector('li:not([hidden]) .row');
    if (first) first.focus({ preventScroll: true });
  },

  setPaused(paused) {
    this.paused = paused;
    const button = $('pause');
    button.setAttribute('aria-pressed', String(paused));
    button.textContent = paused ? 'Resume' : 'Pause';
    if (!paused) {
      for (const entry of this.entries.values()) {
        if (entry.dirty && entry.li) {
          entry.dirty = false;
          this.paint(entry);
        }
      }
      this.flushIfPossible();
    }
    this.updatePill();
  },

  saveScroll() {
    this.savedScroll = this.scroller.scrollTop;
  },

  restoreScroll() {
    this.scroller.scrollTop = this.savedScroll;
    this.flushIfPossible();
  },
};

/** Conversation message callbacks open the message; SMS delivery reports their batch. */
const MESSAGE_TRIGGERS = new Set(['MESSAGE_DELIVERY', 'MESSAGE_INBOUND', 'MESSAGE_SUBMIT']);
const BATCH_TRIGGERS = /^(recipient_)?delivery_report_(sms|mms)$/;

function linkOf(entry) {
  const hasCallback = entry.callback_id !== undefined && entry.callback_id !== null;
  if (entry.message_id && MESSAGE_TRIGGERS.has(entry.trigger)) return `#message/${enc(entry.message_id)}`;
  if (entry.message_id && BATCH_TRIGGERS.test(entry.trigger || '')) return `#batch/${enc(entry.message_id)}`;
  if (hasCallback) return `#callback/${enc(entry.callback_id)}`;
  if (entry.message_id) return `#message/${enc(entry.message_id)}`;
  return '#feed';
}
