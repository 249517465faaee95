// Rejected attempts: requests that failed signature verification, with why, so a wrong
// secret or a mangling proxy can be told from an attack.

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
