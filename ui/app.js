// sinch-webhooks inspector: vanilla JS, no build step, no dependencies. A module script:
// strict and deferred by itself, and its top level is not the page's global scope.
//
// Everything the server sends is shown with textContent (bodies are attacker-influenced);
// nothing here builds HTML from strings. Every call goes to the documented API with the
// bearer token the user typed, kept in sessionStorage for this tab only.

import { ApiError, api, currentToken, forgetToken, keepToken, onUnauthorized, showError, useToken } from './js/api.js';
import { $, addOption, badge, clear, el, kv, listKeys, mono, statusEl, timeEl } from './js/dom.js';
import { dash, enc, fmtBytes, fmtClock, fmtMs, fmtSkew, orDash, ordinal, parseTime, prettyJson } from './js/format.js';
import { currentView, onView, openHash, showView } from './js/router.js';
import { ActivityStream } from './js/stream.js';
import { initTheme } from './js/theme.js';

/** Rows kept in the live feed; older ones are dropped from the bottom. */
const MAX_ROWS = 500;

// ---------------------------------------------------------------------------------------
// Routing: the first segment of the hash, the view it shows and what it opens there.

const ROUTES = new Map([
  ['rejected', { view: 'rejected', title: 'Rejected attempts', open: () => rejections.load() }],
  ['message', { view: 'message', title: 'Messages', open: (id) => messages.open(id) }],
  ['callback', { view: 'message', title: 'Callback', open: (id) => messages.openCallback(id) }],
  ['lookup', { view: 'lookup', title: 'Lookup' }],
  ['batch', { view: 'lookup', title: 'SMS batch', open: (id) => id && lookup.openBatch(id) }],
  ['actions', { view: 'actions', title: 'Send & replay', open: () => actions.load() }],
]);
const FEED = { view: 'feed', title: 'Live feed' };

function route() {
  if (currentToken()) openHash(ROUTES, FEED);
  else showLogin();
}

// ---------------------------------------------------------------------------------------
// Login

function showLogin(reason) {
  $('tabs').hidden = true;
  $('logout').hidden = true;
  $('conn').hidden = true;
  showView('login');
  document.title = 'Open · sinch-webhooks inspector';
  $('login-error').textContent = reason || '';
  const input = $('token');
  input.value = '';
  input.focus();
}

function signOut(reason) {
  const wasSignedIn = currentToken() !== null;
  forgetToken();
  activity.stop();
  feed.reset();
  rejections.reset();
  actions.reset();
  if (wasSignedIn || reason) showLogin(reason);
}

async function onLogin(event) {
  event.preventDefault();
  const value = $('token').value.trim();
  const error = $('login-error');
  error.textContent = '';
  if (!value) {
    error.textContent = 'Enter the API token.';
    return;
  }
  // A header value must be Latin-1; anything else cannot be the token.
  if (/[^\x20-\x7e]/.test(value)) {
    error.textContent = 'The token has characters an HTTP header cannot carry; check what you pasted.';
    return;
  }
  const button = $('login-submit');
  button.disabled = true;
  useToken(value);
  try {
    // Any authenticated read checks the token; this one is cheap.
    await api('/api/messages?limit=1');
    keepToken(value);
    startSession();
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) {
      useToken(null);
      error.textContent = e instanceof ApiError ? e.message : String(e);
    }
    // A 401 has already put the server's reason on the form.
  } finally {
    button.disabled = false;
  }
}

function startSession() {
  $('tabs').hidden = false;
  $('logout').hidden = false;
  $('conn').hidden = false;
  route();
  activity.start();
  rejections.load();
}

// ---------------------------------------------------------------------------------------
// The connection to the activity stream, shown in the top bar.

function setConn(state, text, title) {
  const conn = $('conn');
  conn.dataset.state = state;
  $('conn-text').textContent = text;
  if (title) conn.title = title;
  else conn.removeAttribute('title');
}

const activity = new ActivityStream({
  onItem: (item) => feed.receive(item),
  onState: setConn,
  onUnauthorized: signOut,
});

// ---------------------------------------------------------------------------------------
// Live feed: one fixed-height row per callback, updated in place as its outcome changes.
// New rows are prepended only while the list is scrolled to the top and not paused;
// otherwise they wait, counted in the fixed-size "N new" pill, so nothing the user is
// reading moves.

const OUTCOME_RANK = { accepted: 1, duplicate: 1, rejected: 1, failed: 2, processed: 3, unprocessable: 3 };

const feed = {
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

  init() {
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
    if (rejected) rejections.refreshSoon();
    messages.touched(touchedMessages);
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


// ---------------------------------------------------------------------------------------
// Rejected attempts

const REASONS = [
  ['signature_mismatch', 'The MAC matches no configured secret: a wrong SINCH_WEBHOOK_SECRET, a body modified on the way (a proxy re-encoding it, a framework re-serialising JSON), or a per-message callback_url override signed with the app\'s secret_for_overridden_callback_urls.'],
  ['stale_timestamp', 'The signature is valid but its timestamp is more than SIGNATURE_TOLERANCE_SECS away: this machine\'s clock (check NTP; see the clock skew), or a replay.'],
  ['missing_header', 'A signature header is absent: no secret is set on the Sinch webhook (Sinch then does not sign), or a proxy drops x- headers.'],
  ['invalid_header', 'A signature header is not printable ASCII: a proxy mangling headers.'],
  ['unsupported_algorithm', 'x-sinch-webhook-signature-algorithm is not HmacSHA256: not a Sinch Conversation or SMS callback.'],
  ['bad_timestamp', 'The timestamp is not whole unix seconds: not a Sinch callback.'],
  ['malformed_signature', 'The signature is not the padded base64 of a 32-byte MAC: a truncated header, or not Sinch.'],
];

const rejections = {
  loading: null,
  timer: null,
  total: 0,

  init() {
    $('rejected-refresh').addEventListener('click', () => this.load());
    const help = $('reason-help');
    for (const [code, text] of REASONS) help.append(el('dt', { text: code }), el('dd', { text }));
  },

  reset() {
    this.total = 0;
    clearTimeout(this.timer);
    this.setCount(0);
    clear($('rejected-rows'));
    $('rejected-summary').textContent = '\u00a0';
  },

  refreshSoon() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.load(), 250);
  },

  setCount(total) {
    const count = $('rejected-count');
    count.textContent = total > 9999 ? '9999+' : String(total);
    count.classList.toggle('alert', total > 0);
    count.setAttribute('aria-label', `${total} rejected since start`);
  },

  async load() {
    if (this.loading) return this.loading;
    this.loading = (async () => {
      try {
        const data = await api('/api/rejections');
        this.render(data);
      } catch (error) {
        const summary = $('rejected-summary');
        summary.textContent = '';
        showError(summary, error);
      } finally {
        this.loading = null;
      }
    })();
    return this.loading;
  },

  render(data) {
    const list = Array.isArray(data?.rejections) ? data.rejections : [];
    const total = typeof data?.total === 'number' ? data.total : list.length;
    this.total = total;
    this.setCount(total);
    const summary = clear($('rejected-summary'));
    summary.append(
      el('strong', { text: String(total) }),
      total === 1 ? ' request rejected since the receiver started' : ' requests rejected since the receiver started',
    );
    if (total > 0) {
      summary.append(
        el('span', {
          class: 'muted',
          text: ` · showing the latest ${list.length}${data?.capacity ? ` (keeps up to ${data.capacity})` : ''}`,
        }),
      );
    }
    const rows = clear($('rejected-rows'));
    const help = new Map(REASONS);
    for (const r of list) {
      const source = el('td', { class: 'wrap' }, el('span', { class: 'mono', text: orDash(r.peer) }));
      if (r.forwarded_for) source.append(el('span', { class: 'sub', text: `forwarded for ${r.forwarded_for}` }));
      rows.append(
        el(
          'tr',
          { dataset: { reason: r.reason || '' } },
          el('td', null, timeEl(r.at)),
          el(
            'td',
            { class: 'wrap' },
            badge('rejected', r.reason || 'unknown', help.get(r.reason) || null),
            r.detail ? el('span', { class: 'sub', text: r.detail }) : null,
          ),
          el('td', { class: 'num', title: 'now − signature timestamp', text: fmtSkew(r.clock_skew_secs) }),
          el('td', { class: 'num', text: fmtBytes(r.body_bytes) }),
          source,
          el('td', { class: 'wrap muted', text: orDash(r.user_agent) }),
        ),
      );
    }
    $('rejected-empty').hidden = list.length > 0;
    $('rejected-table').hidden = list.length === 0;
  },
};

// ---------------------------------------------------------------------------------------
// Messages: recent list, one message's timeline, one callback.

const messages = {
  controller: null,
  currentId: null,
  refreshTimer: null,

  init() {
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
      clear(body).append(this.renderMessage(data.message, history, callbacks, open));
    } catch (error) {
      if (signal.aborted) return;
      clear(body);
      showError($('message-error'), error);
    }
  },

  renderMessage(message, history, callbacks, open) {
    const fragment = document.createDocumentFragment();
    const head = el(
      'section',
      { class: 'card', 'aria-label': 'Current state' },
      el(
        'div',
        { class: 'msg-head' },
        el('span', { class: 'mono', id: 'message-current-id', text: message.message_id }),
        message.status ? badge('current', message.status, 'current status') : badge('duplicate', message.direction),
      ),
      kv([
        ['Direction', message.direction],
        ['Status', message.status ? statusEl(message.status) : undefined],
        ['Status time', message.status_at ? timeEl(message.status_at) : dash],
        ['Channel', message.channel],
        ['Identity', message.identity ? mono(message.identity) : dash],
        ['Conversation', message.conversation_id ? mono(message.conversation_id) : undefined],
        [
          'Contact',
          message.contact_id
            ? el('a', { href: '#lookup', class: 'mono', text: message.contact_id, onclick: () => lookup.prefillContact(message.contact_id) })
            : undefined,
        ],
        ['Reason', message.reason_code ? `${message.reason_code}${message.reason_description ? `: ${message.reason_description}` : ''}` : undefined],
        ['Text', message.text ?? undefined],
        ['First seen', timeEl(message.created_at)],
        ['Updated', timeEl(message.updated_at)],
      ]),
    );
    fragment.append(head);
    if (message.content) {
      fragment.append(
        el('details', { class: 'raw card section-gap' }, el('summary', { text: 'Message content (JSON)' }), el('pre', { class: 'json', text: prettyJson(message.content) })),
      );
    }
    if (!history.length) {
      if (message.direction !== 'inbound') fragment.append(el('p', { class: 'muted section-gap', text: 'No delivery report received for this message.' }));
      return fragment;
    }

    // Arrival order: the journal's ids increase as callbacks are received.
    const arrival = [...history].sort((a, b) => a.callback_id - b.callback_id || 0);
    const arrivalIndex = new Map(arrival.map((h, i) => [h, i + 1]));
    const statusAt = parseTime(message.status_at)?.getTime();
    let current = null;
    for (const h of arrival) {
      if (h.applied && h.status === message.status && parseTime(h.status_at)?.getTime() === statusAt) current = h;
    }
    if (!current) current = [...arrival].reverse().find((h) => h.applied) || null;

    // Shown in event-time order: what happened to the message, in the order it happened.
    const timeline = [...history].sort(
      (a, b) =>
        (parseTime(a.status_at)?.getTime() ?? 0) - (parseTime(b.status_at)?.getTime() ?? 0) ||
        (parseTime(a.accepted_at)?.getTime() ?? 0) - (parseTime(b.accepted_at)?.getTime() ?? 0) ||
        a.callback_id - b.callback_id,
    );
    const list = el('ol', { class: 'timeline', 'aria-label': 'Delivery reports, by event time' });
    for (const h of timeline) {
      const n = arrivalIndex.get(h);
      let kind;
      let label;
      let note = null;
      if (h === current) {
        kind = 'current';
        label = 'current';
      } else if (h.applied) {
        kind = 'superseded';
        label = 'superseded';
        note = 'Was the current status until a newer report replaced it.';
      } else if (h.status === 'SUBMITTED') {
        kind = 'submitted';
        label = 'submitted';
        note = 'Handed to the channel (MESSAGE_SUBMIT); not a delivery status.';
      } else if (arrival.slice(0, n - 1).some((prior) => prior.applied)) {
        kind = 'late';
        label = 'late · not current';
        note = `Arrived after a newer or final report${current ? ` (${current.status})` : ''}: kept in history, never applied.`;
      } else {
        kind = 'late';
        label = 'not applied';
        note = 'Not applied: a status this receiver does not rank, kept in history only.';
      }
      const callback = callbacks.get(h.callback_id);
      const item = el(
        'li',
        { class: `tl-item ${kind}`, dataset: { status: h.status, kind, callbackId: String(h.callback_id), applied: String(Boolean(h.applied)) } },
        el(
          'div',
          { class: 'tl-card' },
          el(
            'div',
            { class: 'tl-top' },
            el('span', { class: 'tl-status' }, statusEl(h.status)),
            badge(kind === 'current' ? 'current' : kind === 'late' ? 'late' : 'duplicate', label),
            el('span', { class: 'tl-order', text: `received ${ordinal(n)} of ${arrival.length}` }),
          ),
          el(
            'dl',
            { class: 'tl-times' },
            el('dt', { text: 'Event time' }),
            el('dd', null, timeEl(h.status_at)),
            el('dt', { text: 'Received' }),
            el('dd', null, timeEl(callback?.received_at || h.recorded_at)),
            el('dt', { text: 'Channel' }),
            el('dd', { text: orDash(h.channel) }),
            h.reason_code || h.reason_description
              ? [el('dt', { text: 'Reason' }), el('dd', { text: [h.reason_code, h.reason_description].filter(Boolean).join(': ') })]
              : null,
            el('dt', { text: 'Callback' }),
            el('dd', null, el('a', { href: `#callback/${enc(h.callback_id)}`, text: `#${h.callback_id}` })),
          ),
          note ? el('p', { class: 'tl-note', text: note }) : null,
          callback ? rawBody(callback, open.has(String(h.callback_id))) : null,
        ),
      );
      list.append(item);
    }
    fragment.append(
      el('h2', { class: 'section-gap', text: `Delivery reports (${history.length})` }),
      el(
        'div',
        { class: 'legend' },
        el('span', null, badge('current', 'current'), ' set the status shown above'),
        el('span', null, badge('late', 'late · not current'), ' arrived after a newer or final report'),
        el('span', null, 'Listed by event time; "received n of m" is arrival order.'),
      ),
      list,
    );
    return fragment;
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

/** The raw callback body, pretty-printed (folded unless `open`), and a replay button. */
function rawBody(callback, open) {
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

async function replay(id, button, out) {
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

// ---------------------------------------------------------------------------------------
// Lookups: consent, SMS batch, contact

const lookup = {
  init() {
    this.form('consent-form', 'consent-error', 'consent-result', async (signal) => {
      const channel = $('consent-channel').value.trim().toUpperCase();
      const identity = $('consent-identity').value.trim();
      return this.renderConsent(await api(`/api/consents/${enc(channel)}/${enc(identity)}`, { signal }));
    });
    this.form('batch-form', 'batch-error', 'batch-result', async (signal) =>
      this.renderBatch(await api(`/api/sms/batches/${enc($('batch-id').value.trim())}`, { signal })),
    );
    this.form('contact-form', 'contact-error', 'contact-result', async (signal) =>
      this.renderContact(await api(`/api/contacts/${enc($('contact-id').value.trim())}`, { signal })),
    );
  },

  form(formId, errorId, resultId, run) {
    let controller = null;
    $(formId).addEventListener('submit', async (event) => {
      event.preventDefault();
      if (controller) controller.abort();
      controller = new AbortController();
      const signal = controller.signal;
      $(errorId).textContent = '';
      const result = clear($(resultId));
      try {
        const node = await run(signal);
        if (!signal.aborted) result.append(node);
      } catch (error) {
        if (!signal.aborted) showError($(errorId), error);
      }
    });
  },

  openBatch(id) {
    $('batch-id').value = id;
    $('batch-form').requestSubmit();
  },

  prefillContact(id) {
    $('contact-id').value = id;
  },

  renderConsent(data) {
    const may = data.may_message === true;
    const c = data.consent;
    const cap = data.capability;
    const history = Array.isArray(data.history) ? data.history : [];
    return el(
      'div',
      { dataset: { mayMessage: String(may) } },
      el(
        'p',
        { class: 'big-answer' },
        badge(may ? 'yes' : 'no', may ? 'may message' : 'may not message'),
        el('span', { class: 'mono', text: `${data.channel} ${data.identity}` }),
      ),
      el('p', {
        class: 'muted small',
        text:
          data.consented === true
            ? 'The latest successful consent change was an opt-in.'
            : data.consented === false
              ? 'The latest successful consent change was an opt-out.'
              : 'No successful opt-in or opt-out is known for this identity on this channel.',
      }),
      c
        ? kv([
            ['Last notification', `${c.last_kind} · ${c.last_status}`],
            ['Event time', timeEl(c.last_event_at)],
            ['Consent changed', c.consented_at ? timeEl(c.consented_at) : dash],
            ['Last error', c.last_error ?? undefined],
            ['Contact', c.contact_id ? mono(c.contact_id) : dash],
          ])
        : null,
      cap
        ? [
            el('h3', { text: 'Capability' }),
            kv([
              ['Status', cap.status],
              ['Checked', timeEl(cap.checked_at)],
              ['Reason', cap.reason ?? undefined],
              ['Capabilities', cap.channel_capabilities ? mono(cap.channel_capabilities) : undefined],
            ]),
          ]
        : null,
      history.length
        ? [
            el('h3', { text: `History (${history.length})` }),
            table(
              ['Event time', 'Kind', 'Status', 'Error', 'Callback'],
              history.map((h) => [
                timeEl(h.event_at),
                h.kind,
                h.status,
                orDash(h.error),
                el('a', { href: `#callback/${enc(h.callback_id)}`, text: `#${h.callback_id}` }),
              ]),
            ),
          ]
        : null,
    );
  },

  renderBatch(data) {
    const s = data.summary;
    const recipients = Array.isArray(data.recipients) ? data.recipients : [];
    const statuses = Array.isArray(s?.statuses) ? s.statuses : [];
    return el(
      'div',
      null,
      el('p', { class: 'big-answer' }, el('span', { class: 'mono', text: data.batch_id })),
      s
        ? [
            kv([
              ['Summary', s.kind],
              ['Messages', s.total_message_count ?? undefined],
              ['Client reference', s.client_reference ?? undefined],
              ['Updated', timeEl(s.updated_at)],
            ]),
            statuses.length
              ? table(
                  ['Status', 'Code', 'Count', 'Recipients'],
                  statuses.map((x) => [statusEl(x.status), orDash(x.code), orDash(x.count), Array.isArray(x.recipients) ? x.recipients.join(', ') : dash]),
                )
              : null,
          ]
        : el('p', { class: 'muted small', text: 'No batch summary report received (only per-recipient reports).' }),
      el('h3', { text: `Recipients (${recipients.length})` }),
      recipients.length
        ? table(
            ['Recipient', 'Status', 'Code', 'Status time', 'Operator', 'Updated'],
            recipients.map((r) => [mono(r.recipient), statusEl(r.status), orDash(r.code), timeEl(r.status_at), orDash(r.operator), timeEl(r.updated_at)]),
            'recipients',
          )
        : el('p', { class: 'muted small', text: 'No per-recipient report received.' }),
    );
  },

  renderContact(data) {
    const c = data.contact;
    const identities = Array.isArray(data.identities) ? data.identities : [];
    const conversations = Array.isArray(data.conversations) ? data.conversations : [];
    return el(
      'div',
      null,
      el('p', { class: 'big-answer' }, el('span', { class: 'mono', text: c.contact_id }), c.deleted_at ? badge('no', 'deleted') : null),
      kv([
        ['Name', c.display_name],
        ['Email', c.email],
        ['External id', c.external_id],
        ['Language', c.language],
        ['Merged into', c.merged_into ?? undefined],
        ['Updated', timeEl(c.updated_at)],
      ]),
      el('h3', { text: `Identities (${identities.length})` }),
      identities.length ? table(['Channel', 'Identity'], identities.map((i) => [i.channel, mono(i.identity)])) : null,
      el('h3', { text: `Conversations (${conversations.length})` }),
      conversations.length
        ? table(
            ['Conversation', 'Channel', 'Active', 'Started'],
            conversations.map((v) => [mono(v.conversation_id), orDash(v.active_channel), v.active === null ? dash : v.active ? 'yes' : 'no', timeEl(v.started_at)]),
          )
        : null,
    );
  },
};

function table(headers, rows, name) {
  return el(
    'div',
    { class: 'table-scroll section-gap' },
    el(
      'table',
      { class: 'grid', dataset: name ? { name } : null },
      el('thead', null, el('tr', null, headers.map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', null, rows.map((cells) => el('tr', null, cells.map((cell) => el('td', null, cell instanceof Node ? cell : orDash(cell)))))),
    ),
  );
}

// ---------------------------------------------------------------------------------------
// Actions: send a signed test callback, replay a stored one

const actions = {
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


// ---------------------------------------------------------------------------------------
// Start

function init() {
  initTheme();
  onUnauthorized(signOut);
  $('login-form').addEventListener('submit', onLogin);
  $('logout').addEventListener('click', () => {
    signOut('');
    location.hash = '';
  });
  feed.init();
  rejections.init();
  messages.init();
  lookup.init();
  actions.init();
  window.addEventListener('hashchange', route);
  // A tab coming back to the foreground reconnects at once instead of waiting out a backoff.
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && currentToken()) activity.reconnectNow();
  });
  if (currentToken()) startSession();
  else showLogin();
}

init();
