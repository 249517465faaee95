// The activity stream: SSE read with fetch, because EventSource cannot send the bearer
// token. Reconnects with backoff and resumes from the last event id; what the items mean
// and how the connection state is shown are the caller's.

import { currentToken, reasonOf } from './api.js';

const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30000;
/** The server sends a comment at least every 15 s: silence longer than this is a dead link. */
const STREAM_SILENCE_MS = 45000;

export class SseParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = '';
    this.data = [];
    this.event = '';
    this.lastId = null;
  }

  push(chunk) {
    this.buffer += chunk;
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (!match) break;
      // A lone CR at the end may be the first half of a CRLF: wait for the next chunk.
      if (match[0] === '\r' && match.index === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      this.line(line);
    }
  }

  line(line) {
    if (line === '') {
      if (this.data.length) {
        this.onEvent({ type: this.event || 'message', data: this.data.join('\n'), id: this.lastId });
      }
      this.data = [];
      this.event = '';
      return;
    }
    if (line.startsWith(':')) return; // a heartbeat comment
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\0')) this.lastId = value;
    // `retry:` is ignored: reconnection uses its own backoff.
  }
}

export class ActivityStream {
  /**
   * `onItem(item)` gets each activity item; `onState(state, text, why)` each change of the
   * connection; `onUnauthorized(reason)` a refused token.
   */
  constructor({ onItem, onState, onUnauthorized }) {
    this.onItem = onItem;
    this.onState = onState;
    this.onUnauthorized = onUnauthorized;
    this.controller = null;
    this.lastEventId = null;
    this.delay = RETRY_MIN_MS;
    this.retryTimer = null;
    this.silenceTimer = null;
    /** True while waiting out a backoff before the next attempt. */
    this.waiting = false;
  }

  start() {
    this.stop();
    this.lastEventId = null;
    this.delay = RETRY_MIN_MS;
    this.connect();
  }

  stop() {
    const controller = this.controller;
    this.controller = null;
    this.waiting = false;
    clearTimeout(this.retryTimer);
    clearTimeout(this.silenceTimer);
    if (controller) controller.abort();
  }

  /** Skips the rest of a backoff, e.g. when the tab comes back to the foreground. */
  reconnectNow() {
    if (!this.waiting) return;
    this.delay = RETRY_MIN_MS;
    this.connect();
  }

  watch(controller) {
    clearTimeout(this.silenceTimer);
    this.silenceTimer = setTimeout(() => controller.abort(), STREAM_SILENCE_MS);
  }

  async connect() {
    clearTimeout(this.retryTimer);
    this.waiting = false;
    const controller = new AbortController();
    this.controller = controller;
    this.onState('connecting', 'connecting…');
    try {
      const headers = { Accept: 'text/event-stream', Authorization: `Bearer ${currentToken()}` };
      if (this.lastEventId !== null) headers['Last-Event-ID'] = this.lastEventId;
      this.watch(controller);
      const response = await fetch('/api/activity', {
        headers,
        signal: controller.signal,
        cache: 'no-store',
        credentials: 'omit',
      });
      if (response.status === 401) {
        const data = await response.json().catch(() => null);
        if (this.controller === controller) this.onUnauthorized(reasonOf(data, 401));
        return;
      }
      if (!response.ok || !response.body) {
        const data = await response.json().catch(() => null);
        throw new Error(reasonOf(data, response.status));
      }
      this.onState('live', 'live');
      this.delay = RETRY_MIN_MS;
      await this.read(response, controller);
      // The receiver ended the stream itself: it is stopping, and its positions end with
      // it (a restarted receiver numbers from 1 again). Start afresh: the recent items
      // it sends first are merged into the rows already shown, not repeated.
      this.lastEventId = null;
      throw new Error('the receiver closed the stream');
    } catch (error) {
      if (this.controller !== controller) return; // stopped on purpose
      this.retry(controller.signal.aborted ? 'no heartbeat from the receiver' : error.message);
    }
  }

  async read(response, controller) {
    const parser = new SseParser((event) => this.onEvent(event));
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      this.watch(controller);
      parser.push(value);
    }
  }

  retry(why) {
    clearTimeout(this.silenceTimer);
    const delay = Math.min(RETRY_MAX_MS, this.delay);
    this.delay = Math.min(RETRY_MAX_MS, this.delay * 2);
    const wait = Math.round(delay * (0.8 + Math.random() * 0.4));
    this.onState('retry', `retry in ${Math.max(1, Math.round(wait / 1000))} s`, why);
    this.waiting = true;
    this.retryTimer = setTimeout(() => this.connect(), wait);
  }

  onEvent(event) {
    if (event.id !== null) this.lastEventId = event.id;
    if (event.type !== 'callback' && event.type !== 'message') return;
    let item;
    try {
      item = JSON.parse(event.data);
    } catch {
      return;
    }
    if (item && typeof item === 'object') this.onItem(item);
  }
}
