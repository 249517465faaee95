// Calls, verifications and Numbers resources: the newest of a family (#calls, #verifications,
// #numbers) and one with its timeline (#calls/<id>, ...). One controller per family, made
// from the family's description below; what each shows is the API's, as text.

import { api, showError } from '../api.js';
import { $, clear, el, kv, mono, statusEl, table, timeEl } from '../dom.js';
import { enc, fmtMoney, orDash } from '../format.js';

const json = (value) => (value === null || value === undefined ? '' : JSON.stringify(value));
const link = (route, id) => el('a', { href: `#${route}/${enc(id)}`, text: id });

/** The answers Sinch was given for a call's or verification's callbacks: what, by whom, why. */
const answersTable = (answers, name) =>
  answers.length
    ? table(
        ['Answered', 'Callback', 'Origin', 'Why', 'Answer', 'Took'],
        answers.map((a) => [
          timeEl(a.answered_at),
          a.callback_id === null ? a.trigger : el('span', null, `${a.trigger} `, el('a', { href: `#callback/${a.callback_id}`, text: `#${a.callback_id}` })),
          statusEl(a.origin),
          a.detail,
          el('pre', { class: 'mono answer-body', text: prettyJson(a.body) }),
          `${a.latency_ms} ms`,
        ]),
        name,
      )
    : el('p', { class: 'muted', text: 'No answer stored.' });

function prettyJson(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

const FAMILIES = {
  calls: {
    title: 'Calls',
    one: 'Call',
    items: (page) => page.calls,
    key: (row) => row.call_id,
    columns: [
      ['Call', (r) => link('calls', r.call_id)],
      ['Direction', (r) => orDash(r.direction)],
      ['From', (r) => mono(r.from)],
      ['To', (r) => mono(r.to)],
      ['Progress', (r) => statusEl(r.progress)],
      ['Result', (r) => statusEl(r.result)],
      ['First event', (r) => timeEl(r.first_event_at)],
    ],
    summary: (data) => {
      const c = data.call;
      return kv([
        ['Direction', c.direction],
        ['From', mono(c.from)],
        ['To', mono(c.to)],
        ['Progress', statusEl(c.progress)],
        ['Result', c.result ? statusEl(c.result) : undefined],
        ['Reason', c.reason ?? undefined],
        ['Duration', c.duration === null ? undefined : `${c.duration} s`],
        ['Cost', data.cost ? fmtMoney(data.cost) : undefined],
        ['Updated', timeEl(c.updated_at)],
      ]);
    },
    timeline: (data) =>
      table(
        ['At', 'Event', 'Sinch time', 'Detail'],
        data.timeline.map((e) => [timeEl(e.at), e.event, timeEl(e.sent_at), mono(json(e.detail))]),
        'call-timeline',
      ),
    answers: (data) => answersTable(data.answers, 'call-answers'),
  },
  verifications: {
    title: 'Verifications',
    one: 'Verification',
    items: (page) => page.verifications,
    key: (row) => row.id,
    columns: [
      ['Verification', (r) => link('verifications', r.id)],
      ['Method', (r) => orDash(r.method)],
      ['Identity', (r) => mono(r.identity)],
      ['Status', (r) => statusEl(r.status)],
      ['Updated', (r) => timeEl(r.updated_at)],
    ],
    summary: (data) => {
      const v = data.verification;
      return kv([
        ['Method', v.method],
        ['Identity', mono(v.identity)],
        ['Reference', v.reference ?? undefined],
        ['Status', statusEl(v.status)],
        ['Result reason', v.result_reason ?? undefined],
        ['Result source', v.result_source ?? undefined],
        ['SMS result', v.sms_result ?? undefined],
        ['Updated', timeEl(v.updated_at)],
      ]);
    },
    timeline: (data) =>
      table(
        ['Received', 'Event', 'Status', 'Reason', 'Source', 'SMS result'],
        data.timeline.map((e) => [timeEl(e.at), e.event, statusEl(e.status), orDash(e.reason), orDash(e.source), orDash(e.sms_result)]),
        'verification-timeline',
      ),
    answers: (data) => answersTable(data.answers, 'verification-answers'),
  },
  numbers: {
    title: 'Numbers',
    one: 'Numbers resource',
    items: (page) => page.numbers,
    key: (row) => row.resource_id,
    columns: [
      ['Resource', (r) => link('numbers', r.resource_id)],
      ['Type', (r) => orDash(r.resource_type)],
      ['Latest event', (r) => orDash(r.event_type)],
      ['Status', (r) => statusEl(r.status)],
      ['At', (r) => timeEl(r.event_at)],
    ],
    summary: (data) => {
      const n = data.number;
      return kv([
        ['Type', n.resource_type],
        ['Project', mono(n.project_id)],
        ['Latest event', n.event_type],
        ['Status', statusEl(n.status)],
        ['Failure', n.failure_code ?? undefined],
        ['Event time', timeEl(n.event_at)],
      ]);
    },
    // The latest is the newest by Sinch's time: an older event arriving late is history only.
    timeline: (data) =>
      table(
        ['Event time', 'Event', 'Status', 'Failure', 'Event id'],
        data.history.map((e) => [timeEl(e.at), orDash(e.event_type), statusEl(e.status), orDash(e.failure_code), mono(e.event_id)]),
        'number-history',
      ),
  },
};

/** The controller of one family's view (`name`: `calls`, `verifications`, `numbers`). */
function aggregateView(name) {
  const family = FAMILIES[name];
  let controller = null;
  return {
    init() {
      $(`${name}-form`).addEventListener('submit', (event) => {
        event.preventDefault();
        const id = $(`${name}-id`).value.trim();
        if (id) location.hash = `#${name}/${enc(id)}`;
      });
    },

    async open(id) {
      if (controller) controller.abort();
      controller = new AbortController();
      const signal = controller.signal;
      $(`${name}-error`).textContent = '';
      $(`${name}-id`).value = id || '';
      $(`${name}-title`).textContent = id ? family.one : family.title;
      const body = $(`${name}-body`);
      try {
        const node = id ? await this.one(id, signal) : await this.list(signal);
        if (!signal.aborted) clear(body).append(node);
      } catch (error) {
        if (!signal.aborted) {
          clear(body);
          showError($(`${name}-error`), error);
        }
      }
    },

    async list(signal) {
      const rows = family.items(await api(`/api/${name}?limit=50`, { signal })) || [];
      if (!rows.length) return el('p', { class: 'muted', text: `No ${family.title.toLowerCase()} yet.` });
      const cells = rows.map((row) => family.columns.map(([, cell]) => cell(row)));
      return table(family.columns.map(([header]) => header), cells, `${name}-list`);
    },

    async one(id, signal) {
      const data = await api(`/api/${name}/${enc(id)}`, { signal });
      return el(
        'div',
        { dataset: { id } },
        el('p', { class: 'big-answer' }, el('span', { class: 'mono', text: id })),
        family.summary(data),
        el('h3', { text: name === 'numbers' ? 'History' : 'Timeline' }),
        family.timeline(data),
        family.answers ? [el('h3', { text: 'Answers given' }), family.answers(data)] : null,
      );
    },
  };
}

export const calls = aggregateView('calls');
export const verifications = aggregateView('verifications');
export const numbers = aggregateView('numbers');
