// One message as the message view shows it: its current state, then every delivery report
// in event-time order, each marked with why it is or is not the current status. Reports
// arrive out of order; the receiver applies only what moves a status forward, and this is
// where a user sees which report won.

import { badge, el, kv, mono, statusEl, timeEl } from '../dom.js';
import { dash, enc, orDash, ordinal, parseTime, prettyJson } from '../format.js';
import { rawBody } from '../replay.js';

/**
 * `open`: the callback ids whose raw body was unfolded, kept unfolded on a refresh;
 * `onContact(id)`: the contact link was followed (to the lookup view).
 */
export function renderMessage(message, { history, analyses = [], callbacks, open, onContact }) {
  const fragment = document.createDocumentFragment();
  fragment.append(stateCard(message, onContact));
  if (message.redacted_at) {
    fragment.append(
      el('p', { class: 'muted section-gap', dataset: { redacted: 'true' } }, 'Redacted by Smart Conversations ', timeEl(message.redacted_at), ': the text shown is the redacted one.'),
    );
  }
  if (analyses.length) {
    fragment.append(
      el(
        'details',
        { class: 'raw card section-gap', dataset: { name: 'analyses' } },
        el('summary', { text: `Smart Conversations analyses (${analyses.length})` }),
        analyses.map((a) => el('pre', { class: 'json', text: prettyJson(a.results ?? 'null') })),
      ),
    );
  }
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
  const current = currentReport(message, arrival);

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
    const verdict = classify(h, arrival.slice(0, n - 1), current);
    const callback = callbacks.get(h.callback_id);
    list.append(reportItem(h, `received ${ordinal(n)} of ${arrival.length}`, verdict, callback, open.has(String(h.callback_id))));
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
}

function stateCard(message, onContact) {
  return el(
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
          ? el('a', { href: '#lookup', class: 'mono', text: message.contact_id, onclick: () => onContact(message.contact_id) })
          : undefined,
      ],
      ['Reason', message.reason_code ? `${message.reason_code}${message.reason_description ? `: ${message.reason_description}` : ''}` : undefined],
      ['Text', message.text ?? undefined],
      ['First seen', timeEl(message.created_at)],
      ['Updated', timeEl(message.updated_at)],
    ]),
  );
}

/**
 * The report that set the message's status: the applied one with the stored status and
 * status time, else the last one applied in arrival order.
 */
function currentReport(message, arrival) {
  const statusAt = parseTime(message.status_at)?.getTime();
  let current = null;
  for (const h of arrival) {
    if (h.applied && h.status === message.status && parseTime(h.status_at)?.getTime() === statusAt) current = h;
  }
  return current || [...arrival].reverse().find((h) => h.applied) || null;
}

/** `earlier`: the reports that arrived before this one. */
function classify(h, earlier, current) {
  if (h === current) return { kind: 'current', label: 'current', note: null };
  if (h.applied) {
    return { kind: 'superseded', label: 'superseded', note: 'Was the current status until a newer report replaced it.' };
  }
  if (h.status === 'SUBMITTED') {
    return { kind: 'submitted', label: 'submitted', note: 'Handed to the channel (MESSAGE_SUBMIT); not a delivery status.' };
  }
  if (earlier.some((prior) => prior.applied)) {
    return {
      kind: 'late',
      label: 'late · not current',
      note: `Arrived after a newer or final report${current ? ` (${current.status})` : ''}: kept in history, never applied.`,
    };
  }
  return { kind: 'late', label: 'not applied', note: 'Not applied: a status this receiver does not rank, kept in history only.' };
}

function reportItem(h, order, { kind, label, note }, callback, open) {
  return el(
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
        el('span', { class: 'tl-order', text: order }),
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
        callback?.source
          ? [
              el('dt', { text: 'Source' }),
              el('dd', { class: 'mono', dataset: { role: 'origin' }, text: callback.secret_label ? `${callback.source} · ${callback.secret_label}` : callback.source }),
            ]
          : null,
      ),
      note ? el('p', { class: 'tl-note', text: note }) : null,
      callback ? rawBody(callback, open) : null,
    ),
  );
}
