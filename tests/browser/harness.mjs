// What the browser tests share: the real receiver binary in its own process and folder,
// signed callbacks posted to it over HTTP, and Debian's Chromium driven by playwright-core.

import { execFile, spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, mkdirSync, existsSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';

import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..');
/**
 * Where the screenshots of the main views go: target/screenshots, so a test run leaves the
 * tree clean. SCREENSHOTS_DIR=docs/screenshots refreshes the ones the README shows.
 */
export const SCREENSHOTS = process.env.SCREENSHOTS_DIR
  ? path.resolve(REPO, process.env.SCREENSHOTS_DIR)
  : path.join(REPO, 'target', 'screenshots');
export const BINARY = process.env.SINCH_WEBHOOKS_BIN || path.join(REPO, 'target', 'debug', 'sinch-webhooks');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

export const SECRET = `browser-tests-secret-${randomBytes(12).toString('hex')}`;
export const TOKEN = `browser-tests-token-${randomBytes(12).toString('hex')}`;
export const APP_ID = '01HAPPAAAAAAAAAAAAAAAAAAA1';
export const PROJECT_ID = '9d1f6a52-0000-4000-8000-00000000c0de';
export const PHONE = '46701234567';

/**
 * What makes the Voice, Verification and Numbers routes exist on a receiver. The key and
 * secret are made up, shaped as the Sinch dashboard shows them.
 */
export const OTHER_API_ENV = {
  SINCH_APPLICATION_KEY: '5f4e3d2c-0000-4000-8000-000000000001',
  SINCH_APPLICATION_SECRET: 'JViE5vDor0Sw3WllZka15Q==',
  SINCH_NUMBERS_SECRET: `browser-tests-numbers-${randomBytes(12).toString('hex')}`,
};

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** A fresh ULID-shaped id (Sinch's ids look like this). */
export function newId() {
  const time = Date.now().toString(32).toUpperCase().padStart(10, '0').replace(/[^0-9A-Z]/g, '0');
  let tail = '';
  for (const byte of randomBytes(16)) tail += CROCKFORD[byte % 32];
  return (time + tail).slice(0, 26);
}

/** A port nothing listens on right now. */
export async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Starts `sinch-webhooks serve` (port 0 unless given) with a database in a temporary folder
 * (also its working folder, so no developer's .env is read) and waits for its "listening"
 * log line. `dir` reuses the folder of a receiver that was stopped with `keepData`.
 */
export async function startReceiver({ env: extraEnv = {}, port = 0, dir: reuse = null } = {}) {
  if (!existsSync(BINARY)) throw new Error(`no receiver binary at ${BINARY} (cargo build, or set SINCH_WEBHOOKS_BIN)`);
  const dir = reuse || mkdtempSync(path.join(tmpdir(), 'sinch-webhooks-browser-'));
  const env = {
    PATH: process.env.PATH || '/usr/bin:/bin',
    HOME: dir,
    SINCH_WEBHOOK_SECRET: SECRET,
    HOST: '127.0.0.1',
    PORT: String(port),
    DATABASE_URL: `sqlite://${path.join(dir, 'journal.db')}`,
    API_TOKEN: TOKEN,
    LOG_FORMAT: 'json',
    RUST_LOG: 'info',
    ...extraEnv,
  };
  const child = spawn(BINARY, ['serve'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs = [];
  readline.createInterface({ input: child.stderr }).on('line', (line) => logs.push(line));
  const lines = readline.createInterface({ input: child.stdout });
  const address = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the receiver did not log "listening" within 20 s:\n${logs.join('\n')}`)), 20000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the receiver exited early (${code}):\n${logs.join('\n')}`));
    });
    lines.on('line', (line) => {
      logs.push(line);
      let event;
      try {
        event = JSON.parse(line);
      } catch {
        return;
      }
      const message = event.message ?? event.fields?.message;
      const addr = event.address ?? event.fields?.address;
      if (message === 'listening' && addr) {
        clearTimeout(timer);
        resolve(addr);
      }
    });
  });
  child.removeAllListeners('exit');
  return {
    url: `http://${address}`,
    dir,
    logs,
    /** SIGTERM and wait; the folder and its database go too unless `keepData`. */
    async stop({ keepData = false } = {}) {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        // A graceful stop takes milliseconds; past 10 s, no more grace.
        const force = setTimeout(() => child.kill('SIGKILL'), 10000);
        await exited;
        clearTimeout(force);
      }
      if (!keepData) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The four headers Sinch sends: HMAC-SHA256 over `body.nonce.timestamp`, base64. */
export function signatureHeaders(body, { secret = SECRET, nonce = newId(), timestamp = Math.floor(Date.now() / 1000) } = {}) {
  const signature = createHmac('sha256', secret).update(`${body}.${nonce}.${timestamp}`).digest('base64');
  return {
    'content-type': 'application/json',
    'x-sinch-webhook-signature': signature,
    'x-sinch-webhook-signature-nonce': nonce,
    'x-sinch-webhook-signature-timestamp': String(timestamp),
    'x-sinch-webhook-signature-algorithm': 'HmacSHA256',
  };
}

/** POSTs a body to the webhook, signed as given; returns the status and the JSON answer. */
export async function postCallback(receiver, body, signing = {}, extraHeaders = {}) {
  const headers = { ...signatureHeaders(body, signing), ...extraHeaders };
  const response = await fetch(`${receiver.url}/api/sinch/webhook`, { method: 'POST', headers, body });
  const text = await response.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: response.status, json, headers };
}

/** A Conversation MESSAGE_DELIVERY report as Sinch sends it. */
export function deliveryReport(messageId, status, eventTime = new Date()) {
  const at = eventTime.toISOString();
  return JSON.stringify({
    app_id: APP_ID,
    accepted_time: at,
    event_time: at,
    project_id: PROJECT_ID,
    message_delivery_report: {
      message_id: messageId,
      conversation_id: '',
      status,
      channel_identity: { channel: 'WHATSAPP', identity: PHONE, app_id: '' },
      contact_id: '',
      metadata: '',
      processing_mode: 'DISPATCH',
    },
  });
}

/**
 * `sinch-webhooks send <what> ...args` to `route` on the receiver: the CLI signs as Sinch
 * does for the route's family, with the secrets of `OTHER_API_ENV` (from the environment,
 * so they never show in a process list). Returns what it printed; a refused callback throws.
 */
export async function sendWithCli(receiver, route, what, args = []) {
  const env = { PATH: process.env.PATH || '/usr/bin:/bin', HOME: receiver.dir, ...OTHER_API_ENV };
  const { stdout } = await promisify(execFile)(BINARY, ['send', what, '--url', `${receiver.url}${route}`, ...args], { env, cwd: receiver.dir });
  if (!/^200 /m.test(stdout)) throw new Error(`send ${what} was not answered 200: ${stdout}`);
  return stdout;
}

/** A documented API call with the token. */
export async function api(receiver, route, { method = 'GET', body } = {}) {
  const response = await fetch(`${receiver.url}${route}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await response.json().catch(() => null);
  return { status: response.status, json };
}

/**
 * Reads the receiver's activity feed (GET /api/activity) until an item matches `wanted`,
 * and returns that item.
 */
export async function activityItem(receiver, wanted, timeoutMs = 15000) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    const response = await fetch(`${receiver.url}/api/activity`, {
      headers: { authorization: `Bearer ${TOKEN}`, accept: 'text/event-stream' },
      signal: controller.signal,
    });
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of response.body) {
      buffer += decoder.decode(chunk, { stream: true });
      let end;
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block
          .split('\n')
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).trimStart())
          .join('\n');
        if (!data) continue;
        const item = JSON.parse(data);
        if (wanted(item)) return item;
      }
    }
    throw new Error('the activity feed ended');
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}

/** Polls `check` until it returns something truthy. */
export async function until(what, check, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last})`);
    await sleep(50);
  }
}

/** Debian's Chromium, headless, in a fresh profile. */
export async function launchBrowser() {
  const profile = mkdtempSync(path.join(tmpdir(), 'sinch-webhooks-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 800 },
    colorScheme: 'light',
    reducedMotion: 'reduce',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

export function screenshotPath(name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  return path.join(SCREENSHOTS, `${name}.png`);
}
