// Lookups: consent (may this identity be messaged on this channel?), an SMS batch, a
// contact.

import { api, showError } from '../api.js';
import { $, badge, clear, el, kv, mono, statusEl, table, timeEl } from '../dom.js';
import { dash, enc, orDash } from '../format.js';

export const lookup = {
  init() {
    this.form('consent-form', 'consent-error', 'consent-result', async (signal) => {
      const channel = $('consent-channel').value.trim().toUpperCase();
      const identity = $('consent-identity').value.trim();
      return this.renderConsent(await api(`/api/consents/${enc(channel)}/${enc(identity)}`, { signal }));
    });
    this.form('batch-form', 'batch-error', 'batch-result', async (signal) =>
      this.renderBatch(await api(`/api/sms/batches/${enc($('batch-id').value.trim())}`, { signal })),
    );
    this.form('channel-form', 'channel-error', 'channel-result', async (signal) => {
      const channel = $('channel-name').value.trim().toUpperCase();
      return this.renderChannel(await api(`/api/channels/${enc(channel)}`, { signal }));
    });
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

  /** The channel's newest event of each type (its state), then its latest events. */
  renderChannel(data) {
    const latest = Array.isArray(data.latest) ? data.latest : [];
    const history = Array.isArray(data.history) ? data.history : [];
    const row = (e) => [orDash(e.app_id), e.event_type, mono(e.additional_data ?? ''), timeEl(e.event_at)];
    return el(
      'div',
      null,
      table(['App', 'Event', 'Data', 'At'], latest.map(row), 'channel-latest'),
      el('h3', { text: `Latest events (${history.length})` }),
      table(['App', 'Event', 'Data', 'At'], history.map(row), 'channel-history'),
    );
  },

  renderContact(data) {
    const c = data.contact;
    const identities = Array.isArray(data.identities) ? data.identities : [];
    const conversations = Array.isArray(data.conversations) ? data.conversations : [];
    const consents = Array.isArray(data.consents) ? data.consents : [];
    const capabilities = Array.isArray(data.capabilities) ? data.capabilities : [];
    return el(
      'div',
      null,
      // A contact may be known only from notifications that named it and no identity.
      c
        ? el('p', { class: 'big-answer' }, el('span', { class: 'mono', text: c.contact_id }), c.deleted_at ? badge('no', 'deleted') : null)
        : el('p', { class: 'muted small', text: 'Known only from consent or capability notifications that named this contact and no identity.' }),
      c
        ? kv([
            ['Name', c.display_name],
            ['Email', c.email],
            ['External id', c.external_id],
            ['Language', c.language],
            ['Merged into', c.merged_into ?? undefined],
            ['Updated', timeEl(c.updated_at)],
          ])
        : null,
      el('h3', { text: `Identities (${identities.length})` }),
      identities.length ? table(['Channel', 'Identity'], identities.map((i) => [i.channel, mono(i.identity)])) : null,
      el('h3', { text: `Conversations (${conversations.length})` }),
      conversations.length
        ? table(
            ['Conversation', 'Channel', 'Active', 'Started'],
            conversations.map((v) => [mono(v.conversation_id), orDash(v.active_channel), v.active === null ? dash : v.active ? 'yes' : 'no', timeEl(v.started_at)]),
          )
        : null,
      consents.length ? el('h3', { text: `Consents kept by contact (${consents.length})` }) : null,
      consents.length
        ? table(
            ['Channel', 'Consented', 'Last', 'Status', 'At'],
            consents.map((x) => [x.channel, x.consented === null ? dash : x.consented ? 'yes' : 'no', x.last_kind, x.last_status, timeEl(x.last_event_at)]),
            'contact-consents',
          )
        : null,
      capabilities.length ? el('h3', { text: `Capabilities kept by contact (${capabilities.length})` }) : null,
      capabilities.length
        ? table(
            ['Channel', 'Status', 'Checked'],
            capabilities.map((x) => [x.channel, x.status, timeEl(x.checked_at)]),
            'contact-capabilities',
          )
        : null,
    );
  },
};
