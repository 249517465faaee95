// Rejected attempts: requests that failed authentication on a source, with why, so a wrong
// secret or a mangling proxy can be told from an attack; and the sources themselves, with
// their fail-safe windows.

import { api, showError } from '../api.js';
import { $, badge, clear, el, timeEl } from '../dom.js';
import { fmtBytes, fmtSkew, orDash } from '../format.js';

const REASONS = [
  ['signature_mismatch', 'The MAC matches no configured secret: a wrong SINCH_WEBHOOK_SECRET, a body modified on the way (a proxy re-encoding it, a framework re-serialising JSON), or a per-message callback_url override signed with the app\'s secret_for_overridden_callback_urls.'],
  ['stale_timestamp', 'The signature is valid but its timestamp is more than SIGNATURE_TOLERANCE_SECS away: this machine\'s clock (check NTP; see the clock skew), or a replay.'],
  ['missing_header', 'A signature header is absent: no secret is set on the Sinch webhook (Sinch then does not sign), or a proxy drops x- headers.'],
  ['invalid_header', 'A signature header is not printable ASCII: a proxy mangling headers.'],
  ['unsupported_algorithm', 'x-sinch-webhook-signature-algorithm is not HmacSHA256: not a Sinch Conversation or SMS callback.'],
  ['bad_timestamp', 'The timestamp is not whole unix seconds: not a Sinch callback.'],
  ['malformed_signature', 'The signature is not the padded base64 of a 32-byte MAC: a truncated header, or not Sinch.'],
  ['missing_authorization', 'A Basic or OAuth2 source got no Authorization header: the credentials are not set on the Sinch callback, or a proxy drops Authorization.'],
  ['malformed_authorization', 'The Authorization header is not of the scheme the source expects (Basic or Bearer).'],
  ['wrong_credentials', 'The Basic user and password, or the custom header\'s value, match nothing configured for the source.'],
  ['invalid_token', 'The bearer token was not issued by POST /oauth2/token for this source, or the client secret changed since.'],
  ['expired_token', 'The bearer token is past its expires_in: check this machine\'s clock.'],
  ['address_not_allowed', 'The client address is not in the source\'s allow list; behind a proxy, list the proxy in trusted_proxies.'],
  ['malformed_forwarded_for', 'X-Forwarded-For from a trusted proxy names no address.'],
  ['missing_numbers_signature', 'A Numbers callback without X-Sinch-Signature: no hmacSecret in the project\'s Numbers callback configuration, or a proxy drops the header.'],
  ['malformed_numbers_signature', 'X-Sinch-Signature is not 40 lower-case hex digits (an HMAC-SHA1).'],
  ['numbers_signature_mismatch', 'X-Sinch-Signature matches no configured secret: compare SINCH_NUMBERS_SECRET with the project\'s hmacSecret; the body must arrive unchanged.'],
];

export const rejections = {
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
        const [data, sources] = await Promise.all([api('/api/rejections'), api('/api/sources')]);
        this.renderSources(sources);
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

  /** Each source, how it authenticates, its labels, and whether its fail-safe window is open. */
  renderSources(data) {
    const rows = clear($('sources-rows'));
    for (const s of Array.isArray(data?.sources) ? data.sources : []) {
      const window = s.fail_safe
        ? s.fail_safe.open
          ? badge('rejected', `open: ${s.fail_safe.remaining_secs} s left`, 'Authentication failures are answered 503 so Sinch retries; fix the credentials before it closes.')
          : el('span', { class: 'muted', text: `closed (${s.fail_safe.window_secs} s)` })
        : el('span', { class: 'muted', text: 'off' });
      rows.append(
        el(
          'tr',
          { dataset: { source: s.name || '' } },
          el('td', { class: 'mono', text: orDash(s.name) }),
          el('td', { class: 'mono', text: orDash(s.path) }),
          el('td', { text: orDash(s.auth) }),
          el('td', { class: 'mono wrap', text: (s.labels || []).join(', ') || '—' }),
          el('td', null, window),
        ),
      );
    }
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
      const from = el('td', { class: 'wrap' }, el('span', { class: 'mono', text: orDash(r.peer) }));
      if (r.forwarded_for) from.append(el('span', { class: 'sub', text: `forwarded for ${r.forwarded_for}` }));
      const source = el('td', { class: 'wrap' }, el('span', { class: 'mono', text: orDash(r.source) }));
      if (r.fail_safe) source.append(el('span', { class: 'sub', text: 'fail-safe: answered 503' }));
      rows.append(
        el(
          'tr',
          { dataset: { reason: r.reason || '', failSafe: String(Boolean(r.fail_safe)) } },
          el('td', null, timeEl(r.at)),
          source,
          el(
            'td',
            { class: 'wrap' },
            badge('rejected', r.reason || 'unknown', help.get(r.reason) || null),
            r.detail ? el('span', { class: 'sub', text: r.detail }) : null,
          ),
          el('td', { class: 'num', title: 'now − signature timestamp', text: fmtSkew(r.clock_skew_secs) }),
          el('td', { class: 'num', text: fmtBytes(r.body_bytes) }),
          from,
          el('td', { class: 'wrap muted', text: orDash(r.user_agent) }),
        ),
      );
    }
    $('rejected-empty').hidden = list.length > 0;
    $('rejected-table').hidden = list.length === 0;
  },
};
