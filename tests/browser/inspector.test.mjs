// The inspector page (/ui) end to end: the real receiver binary, Debian's Chromium, real
// signed callbacks over HTTP. The tests run in order and share one receiver and one page,
// as a user's session would.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import {
  PHONE,
  activityItem,
  TOKEN,
  SECRET,
  api,
  deliveryReport,
  launchBrowser,
  newId,
  postCallback,
  screenshotPath,
  startReceiver,
  until,
} from './harness.mjs';

const WAIT = 15000;

let receiver;
let browser;
let page;
const problems = [];
/** A message with a late report, for the screenshots. */
let lateMessage = null;

/** Opens a new tab on the page and records anything it reports as broken. */
async function openPage(path = '/ui') {
  const tab = await browser.context.newPage();
  tab.setDefaultTimeout(WAIT);
  tab.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  tab.on('console', (message) => {
    // Every console error counts (CSP violations are reported as console errors), except
    // Chromium's note on the 401s and 404s the tests cause on purpose.
    if (message.type() !== 'error') return;
    if (/^Failed to load resource: the server responded with a status of 40[14]/.test(message.text())) return;
    problems.push(`console error: ${message.text()}`);
  });
  await tab.goto(`${receiver.url}${path}`);
  return tab;
}

async function logIn(tab, token = TOKEN) {
  await tab.locator('#token').fill(token);
  await tab.locator('#login-submit').click();
}

/** The feed row of a message (one row per callback; a message may have several). */
function rowOf(tab, messageId) {
  return tab.locator(`#feed-list li[data-message-id="${messageId}"]`);
}

async function waitForOutcome(tab, messageId, outcome) {
  await tab.locator(`#feed-list li[data-message-id="${messageId}"][data-outcome="${outcome}"]`).first().waitFor();
}

async function goTo(tab, view) {
  await tab.locator(`.tab[data-view="${view}"]`).click();
  await tab.locator(`#view-${view}`).waitFor();
}

async function backgroundColor(tab) {
  return tab.evaluate(() => getComputedStyle(document.body).backgroundColor);
}

/** A screenshot for docs/screenshots, with no hover effect from the last click. */
async function shot(tab, name) {
  await tab.mouse.move(1, 1);
  await tab.screenshot({ path: screenshotPath(name) });
}

function luminance(rgb) {
  const [r, g, b] = rgb.match(/\d+/g).map(Number);
  return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
}

/** A sources file next to the environment's source: a Basic source inside its fail-safe window. */
const SOURCES_DIR = mkdtempSync(path.join(tmpdir(), 'sinch-webhooks-sources-'));
const SMS_PASSWORD = `sms-password-${newId()}`;

before(async () => {
  const config = path.join(SOURCES_DIR, 'sources.toml');
  writeFileSync(
    config,
    `[[source]]\nname = "sms"\npath = "/api/sinch/sms"\nauth = "basic"\nusername = "sinch"\npassword = "${SMS_PASSWORD}"\nfail_safe_secs = 3600\n`,
  );
  receiver = await startReceiver({ env: { CONFIG_FILE: config } });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await receiver?.stop();
  rmSync(SOURCES_DIR, { recursive: true, force: true });
});

describe('inspector page', () => {
  test('is served at /ui with a strict content security policy, assets from the binary', async () => {
    for (const path of ['/ui', '/ui/']) {
      const response = await fetch(`${receiver.url}${path}`);
      assert.equal(response.status, 200, path);
      assert.match(response.headers.get('content-type'), /^text\/html/);
      const csp = response.headers.get('content-security-policy') || '';
      assert.match(csp, /script-src 'self'/);
      assert.match(csp, /default-src 'none'/);
      const html = await response.text();
      assert.match(html, /src="\/ui\/app\.js"/);
      assert.doesNotMatch(html, /<script>|style=/, 'no inline script or style');
    }
    for (const [path, type] of [['/ui/app.js', /javascript/], ['/ui/app.css', /text\/css/]]) {
      const response = await fetch(`${receiver.url}${path}`);
      assert.equal(response.status, 200, path);
      assert.match(response.headers.get('content-type'), type);
    }
  });

  test('asks for the token once, shows the server reason for a wrong one, keeps it for the tab', async () => {
    page = await openPage('/ui');
    await page.locator('#view-login').waitFor();
    assert.equal(await page.locator('#tabs').isVisible(), false, 'nothing but the login form before the token');

    await logIn(page, 'not-the-token');
    await page.locator('#login-error', { hasText: 'the API token is wrong' }).waitFor();
    assert.equal(await page.locator('#view-login').isVisible(), true);

    await logIn(page);
    await page.locator('#view-feed').waitFor();
    await page.locator('#conn[data-state="live"]').waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('sinch-webhooks.api-token')), TOKEN);
    assert.equal(await page.evaluate(() => localStorage.length === 0 || !Object.values(localStorage).includes(sessionStorage.getItem('sinch-webhooks.api-token'))), true, 'the token is never in localStorage');

    // A reload keeps the session: no second prompt.
    await page.reload();
    await page.locator('#view-feed').waitFor();
    await page.locator('#conn[data-state="live"]').waitFor();
    assert.equal(await page.locator('#view-login').isVisible(), false);
  });

  test('a posted callback appears in the live feed and is updated in place when processed', async () => {
    const messageId = newId();
    const answer = await postCallback(receiver, deliveryReport(messageId, 'DELIVERED'));
    assert.equal(answer.status, 200);
    assert.equal(answer.json.status, 'accepted');
    const callbackId = answer.json.callback_id;

    await waitForOutcome(page, messageId, 'processed');
    const row = rowOf(page, messageId);
    assert.equal(await row.count(), 1, 'one row per callback: accepted, then processed, in place');
    assert.equal(await row.getAttribute('data-callback-id'), String(callbackId));
    const text = await row.innerText();
    assert.match(text, /MESSAGE_DELIVERY/);
    assert.match(text, new RegExp(messageId));
    assert.match(text, /DELIVERED/);
    assert.match(text, /processed/);
    assert.match(text, /\d ms/, 'latency is shown');

    // Fixed row heights: every row the same, whatever it holds.
    const heights = await page.locator('#feed-list > li:not([hidden])').evaluateAll((lis) => lis.map((li) => li.getBoundingClientRect().height));
    assert.ok(heights.length >= 1);
    assert.equal(new Set(heights).size, 1, `rows of one height (${heights})`);

    // A retry of the same callback is a duplicate, with its own row.
    const again = await postCallback(receiver, deliveryReport(messageId, 'DELIVERED', new Date(Date.now() - 1)));
    assert.equal(again.status, 200);
  });

  test('filters by id, trigger and status; pause holds new rows back and resume shows them', async () => {
    const first = newId();
    const second = newId();
    await postCallback(receiver, deliveryReport(first, 'QUEUED_ON_CHANNEL'));
    await waitForOutcome(page, first, 'processed');

    await page.locator('#f-id').fill(first.slice(-10).toLowerCase());
    await until('the id filter', async () => (await page.locator('#feed-list > li:not([hidden])').count()) === 1);
    assert.equal(await rowOf(page, first).isVisible(), true);
    await page.locator('#f-id').fill('');

    await page.locator('#f-status').selectOption('QUEUED_ON_CHANNEL');
    const shown = await page.locator('#feed-list > li:not([hidden])').evaluateAll((lis) => lis.map((li) => li.innerText));
    assert.ok(shown.length >= 1 && shown.every((t) => t.includes('QUEUED_ON_CHANNEL')), `only QUEUED_ON_CHANNEL rows: ${shown}`);
    await page.locator('#f-status').selectOption('');
    await page.locator('#f-trigger').selectOption('MESSAGE_DELIVERY');
    assert.ok((await page.locator('#feed-list > li:not([hidden])').count()) >= 2);
    await page.locator('#f-trigger').selectOption('');

    await page.locator('#pause').click();
    assert.equal(await page.locator('#pause').getAttribute('aria-pressed'), 'true');
    await postCallback(receiver, deliveryReport(second, 'DELIVERED'));
    await page.locator('#new-pill.show', { hasText: 'paused' }).waitFor();
    // The item arrived (the pill counts it) but no row was added while paused.
    assert.equal(await rowOf(page, second).count(), 0);
    await until('the pill to count the callback', async () => Number(await page.locator('#new-pill').getAttribute('data-count')) >= 1);

    await page.locator('#pause').click();
    await rowOf(page, second).first().waitFor();
    await waitForOutcome(page, second, 'processed');
    assert.equal(await page.locator('#new-pill').evaluate((pill) => pill.classList.contains('show')), false);
  });

  test('rows arriving while the user reads further down do not move anything: they are counted in the pill', async () => {
    // Enough rows to scroll.
    const ids = Array.from({ length: 30 }, () => newId());
    const answers = await Promise.all(ids.map((id, i) => postCallback(receiver, deliveryReport(id, i % 3 === 0 ? 'READ' : 'DELIVERED'))));
    assert.ok(answers.every((a) => a.status === 200));
    for (const id of ids) await waitForOutcome(page, id, 'processed');

    const scroller = page.locator('#feed-scroll');
    await scroller.evaluate((el) => {
      el.scrollTop = 200;
    });
    // Layout shifts from here on (none expected), and the row at the top of the view.
    await page.evaluate(() => {
      window.__shift = 0;
      new PerformanceObserver((list) => {
        for (const entry of list.getEntries()) window.__shift += entry.value;
      }).observe({ type: 'layout-shift' });
    });
    const anchor = await page.evaluate(() => {
      const box = document.getElementById('feed-scroll').getBoundingClientRect();
      const li = [...document.querySelectorAll('#feed-list > li')].find((x) => x.getBoundingClientRect().top >= box.top);
      return { key: li.dataset.key, top: li.getBoundingClientRect().top };
    });

    const late = newId();
    await postCallback(receiver, deliveryReport(late, 'DELIVERED'));
    await page.locator('#new-pill.show', { hasText: '1 new' }).waitFor();
    // Once the page has read the "processed" item too and drawn two more frames, nothing
    // may have moved.
    const processed = await activityItem(receiver, (item) => item.message_id === late && item.outcome === 'processed');
    await page.waitForFunction((seq) => Number(document.getElementById('feed-list').dataset.lastSeq) >= seq, processed.seq);
    await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
    const now = await page.evaluate((key) => {
      const li = document.querySelector(`#feed-list > li[data-key="${key}"]`);
      return { top: li.getBoundingClientRect().top, scrollTop: document.getElementById('feed-scroll').scrollTop, shift: window.__shift };
    }, anchor.key);
    assert.equal(now.top, anchor.top, 'the row being read did not move');
    assert.equal(now.scrollTop, 200);
    assert.equal(now.shift, 0, 'no layout shift');
    assert.equal(await rowOf(page, late).count(), 0, 'the new row waits for the user');

    // The pill brings the user to the top and shows it.
    await page.locator('#new-pill').click();
    await rowOf(page, late).first().waitFor();
    assert.equal(await scroller.evaluate((el) => el.scrollTop), 0);
    assert.equal(await page.locator('#feed-list > li').first().getAttribute('data-message-id'), late);
  });

  test('a wrong-secret request appears under rejected attempts with its reason, never its signature or body', async () => {
    const before = (await api(receiver, '/api/rejections')).json.total;
    const marker = `BODY-MARKER-${newId()}`;
    const body = JSON.stringify({ app_id: marker, message_delivery_report: { message_id: marker, status: 'READ' } });
    const wrong = await postCallback(receiver, body, { secret: `${SECRET}-but-wrong` }, { 'user-agent': 'browser-test-agent/1.0' });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.json.error, 'signature_mismatch');
    const signature = wrong.headers['x-sinch-webhook-signature'];

    const stale = await postCallback(receiver, deliveryReport(newId(), 'READ'), { timestamp: Math.floor(Date.now() / 1000) - 3600 });
    assert.equal(stale.status, 401);
    assert.equal(stale.json.error, 'stale_timestamp');

    // Live: the feed shows the rejection and the tab counts it.
    await page.locator('#feed-list li[data-outcome="rejected"]', { hasText: 'signature_mismatch' }).first().waitFor();
    await page.locator('#rejected-count', { hasText: String(before + 2) }).waitFor();

    await goTo(page, 'rejected');
    const mismatch = page.locator('#rejected-rows tr[data-reason="signature_mismatch"]').first();
    await mismatch.waitFor();
    const text = await mismatch.innerText();
    assert.match(text, /signature_mismatch/);
    assert.match(text, /\bdefault\b/, 'the source that refused it');
    assert.match(text, new RegExp(`${Buffer.byteLength(body)} B`), 'body length');
    assert.match(text, /127\.0\.0\.1:\d+/, 'source address');
    assert.match(text, /browser-test-agent\/1\.0/);
    const staleRow = await page.locator('#rejected-rows tr[data-reason="stale_timestamp"]').first().innerText();
    assert.match(staleRow, /\+60 min/, 'clock skew of the stale one');
    assert.match(await page.locator('#rejected-summary').innerText(), new RegExp(`^${before + 2} requests rejected`));

    const html = await page.content();
    assert.ok(!html.includes(marker), 'the body is never shown');
    assert.ok(!html.includes(signature), 'the signature is never shown');
  });

  test('a refusal inside a fail-safe window is shown as a 503 next to the sources and their windows', async () => {
    const body = deliveryReport(newId(), 'DELIVERED');
    const response = await fetch(`${receiver.url}/api/sinch/sms`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from('sinch:wrong').toString('base64')}` },
      body,
    });
    assert.equal(response.status, 503);
    assert.equal((await response.json()).error, 'wrong_credentials');

    await goTo(page, 'rejected');
    await page.locator('#rejected-refresh').click();
    const row = page.locator('#rejected-rows tr[data-reason="wrong_credentials"][data-fail-safe="true"]').first();
    await row.waitFor();
    const text = await row.innerText();
    assert.match(text, /\bsms\b/);
    assert.match(text, /fail-safe: answered 503/);
    const sms = await page.locator('#sources-rows tr[data-source="sms"]').innerText();
    assert.match(sms, /\/api\/sinch\/sms/);
    assert.match(sms, /basic/);
    assert.match(sms, /open: \d+ s left/);
    const fallback = await page.locator('#sources-rows tr[data-source="default"]').innerText();
    assert.match(fallback, /hmac/);
    assert.match(fallback, /current/);
    assert.match(fallback, /off/);
    assert.ok(!(await page.content()).includes(SMS_PASSWORD), 'no secret is shown');
  });

  test('an unprocessable callback shows as such in the feed, with its error', async () => {
    // Signed, a JSON object, but a delivery report without a message id.
    const body = JSON.stringify({ app_id: `01HUNPROC${newId().slice(9)}`, accepted_time: new Date().toISOString(), message_delivery_report: { status: 'DELIVERED' } });
    const answer = await postCallback(receiver, body);
    assert.equal(answer.status, 200);
    await goTo(page, 'feed');
    const row = page.locator(`#feed-list li[data-callback-id="${answer.json.callback_id}"]`);
    await row.and(page.locator('[data-outcome="unprocessable"]')).waitFor();
    assert.ok(((await row.locator('.row').getAttribute('title')) || '').length > 0, 'the error is in the row title');
  });

  test('the message timeline shows the current report and a late one as not current, with raw bodies', async () => {
    const messageId = newId();
    const readAt = new Date(Date.now() - 5000);
    const read = await postCallback(receiver, deliveryReport(messageId, 'READ', readAt));
    const delivered = await postCallback(receiver, deliveryReport(messageId, 'DELIVERED', new Date(readAt.getTime() - 10000)));
    assert.equal(read.status, 200);
    assert.equal(delivered.status, 200);
    await until('both reports processed', async () => {
      const { json } = await api(receiver, `/api/messages/${messageId}`);
      return json?.history?.length === 2;
    });

    // Keyboard: focus the feed's row and open it with Enter.
    await goTo(page, 'feed');
    await waitForOutcome(page, messageId, 'processed');
    await page.locator(`#feed-list li[data-callback-id="${delivered.json.callback_id}"] .row`).focus();
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowUp');
    await page.keyboard.press('Enter');
    await page.locator('#message-current-id', { hasText: messageId }).waitFor();
    assert.equal(new URL(page.url()).hash, `#message/${messageId}`);

    const items = page.locator('.timeline > li');
    await until('two reports on the timeline', async () => (await items.count()) === 2);
    // By event time: DELIVERED (older event) first, READ second.
    assert.deepEqual(await items.evaluateAll((lis) => lis.map((li) => li.dataset.status)), ['DELIVERED', 'READ']);
    const readItem = page.locator('.timeline > li[data-status="READ"]');
    const deliveredItem = page.locator('.timeline > li[data-status="DELIVERED"]');
    assert.equal(await readItem.getAttribute('data-kind'), 'current');
    assert.equal(await deliveredItem.getAttribute('data-kind'), 'late');
    assert.equal(await deliveredItem.getAttribute('data-applied'), 'false');
    assert.match(await deliveredItem.innerText(), /late · not current/);
    assert.match(await deliveredItem.innerText(), /received 2nd of 2/);
    assert.match(await readItem.innerText(), /current/);
    assert.equal(await readItem.locator('[data-role="origin"]').innerText(), 'default · current', 'the source and the secret that verified it');

    // The raw body, pretty-printed.
    await readItem.locator('details.raw summary').click();
    const raw = await readItem.locator('pre.json').innerText();
    assert.match(raw, /\n {2}"message_delivery_report": \{\n/);
    assert.ok(raw.includes(`"message_id": "${messageId}"`));
    lateMessage = messageId;

    // The open timeline follows new reports as they are processed.
    const queued = await postCallback(receiver, deliveryReport(messageId, 'QUEUED_ON_CHANNEL', new Date(readAt.getTime() - 20000)));
    assert.equal(queued.status, 200);
    await until('the third report on the open timeline', async () => (await items.count()) === 3);
    assert.deepEqual(await items.evaluateAll((lis) => lis.map((li) => li.dataset.status)), ['QUEUED_ON_CHANNEL', 'DELIVERED', 'READ']);
    assert.equal(await readItem.getAttribute('data-kind'), 'current');
  });

  test('a redacted inbound message says so and shows its Smart Conversations analyses', async () => {
    const messageId = newId();
    const message = (key, text) =>
      JSON.stringify({
        app_id: '01HAPPAAAAAAAAAAAAAAAAAAA1',
        [key]: { id: messageId, direction: 'TO_APP', contact_message: { text_message: { text } }, channel_identity: { channel: 'WHATSAPP', identity: PHONE } },
      });
    const analysis = JSON.stringify({
      app_id: '01HAPPAAAAAAAAAAAAAAAAAAA1',
      smart_conversation_notification: { message_id: messageId, analysis_results: { ml_sentiment_result: [{ sentiment: 'positive', score: 0.9 }] } },
    });
    for (const body of [message('message', 'my card is 4111'), message('message_redaction', 'my card is {CARD}'), analysis]) {
      assert.equal((await postCallback(receiver, body)).status, 200);
    }
    await until('all three processed', async () => {
      const { json } = await api(receiver, `/api/messages/${messageId}`);
      return json?.message?.redacted_at && json?.analyses?.length === 1;
    });

    await goTo(page, 'message');
    await page.locator('#message-id').fill(messageId);
    await page.locator('#message-form button[type="submit"]').click();
    await page.locator('#message-current-id', { hasText: messageId }).waitFor();
    await page.locator('#message-body [data-redacted="true"]').waitFor();
    assert.match(await page.locator('#message-body').innerText(), /\{CARD\}/);
    const analyses = page.locator('#message-body details[data-name="analyses"]');
    assert.match(await analyses.locator('summary').innerText(), /analyses \(1\)/);
  });

  test('replay runs a stored callback through the handlers again', async () => {
    await page.goto(`${receiver.url}/ui#message/${lateMessage}`);
    const readItem = page.locator('.timeline > li[data-status="READ"]');
    await readItem.locator('button', { hasText: 'Replay' }).click();
    const out = readItem.locator('.out[data-result]');
    await out.waitFor();
    assert.equal(await out.getAttribute('data-result'), 'applied');
    assert.match(await out.innerText(), /applied/);

    // From the actions view too, and an unknown id says so.
    await goTo(page, 'actions');
    await page.locator('#replay-id').fill('987654321');
    await page.locator('#replay-submit').click();
    await page.locator('#replay-result', { hasText: /no callback/i }).waitFor();
  });

  test('send posts a signed test callback of the chosen trigger to this receiver', async () => {
    const messageId = newId();
    await goTo(page, 'actions');
    await page.locator('#send-sample option[value="message_delivery"]').waitFor({ state: 'attached' });
    await page.locator('#send-sample').selectOption('message_delivery');
    assert.match(await page.locator('#send-desc').innerText(), /MESSAGE_DELIVERY/);
    await page.locator('#send-message-id').fill(messageId);
    await page.locator('#send-status').fill('READ');
    await page.locator('#send-submit').click();
    await page.locator('#send-result[data-status="200"]').waitFor();
    const result = await page.locator('#send-result').innerText();
    assert.match(result, /accepted/);
    assert.match(result, /HTTP 200/);
    assert.ok(result.includes(messageId));

    await goTo(page, 'feed');
    await waitForOutcome(page, messageId, 'processed');
    assert.match(await rowOf(page, messageId).first().innerText(), /READ/);
  });

  test('works on a phone-sized screen; screenshots of the main views', async () => {
    assert.ok(lateMessage, 'the timeline test ran');
    await page.setViewportSize({ width: 1280, height: 800 });
    for (const scheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme: scheme });
      await goTo(page, 'feed');
      await page.locator('#feed-scroll').evaluate((el) => {
        el.scrollTop = 0;
      });
      await page.locator('#feed-list > li').first().waitFor();
      await shot(page, `inspector-feed-${scheme}`);
      await goTo(page, 'rejected');
      await page.locator('#rejected-rows tr').first().waitFor();
      await shot(page, `inspector-rejected-${scheme}`);
      await page.goto(`${receiver.url}/ui#message/${lateMessage}`);
      await page.locator('.timeline > li[data-kind="late"]').first().waitFor();
      await page.locator('.timeline > li[data-kind="current"] details.raw').evaluate((details) => {
        details.open = true;
      });
      await page.locator('#view-message').evaluate((view) => {
        view.scrollTop = 0;
      });
      await shot(page, `inspector-message-${scheme}`);
    }

    await page.setViewportSize({ width: 390, height: 844 });
    for (const scheme of ['dark', 'light']) {
      await page.emulateMedia({ colorScheme: scheme });
      await page.goto(`${receiver.url}/ui#feed`);
      await page.locator('#feed-list > li').first().waitFor();
      assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'no sideways scrolling on a phone');
      const heights = await page.locator('#feed-list > li:not([hidden])').evaluateAll((lis) => [...new Set(lis.map((li) => li.getBoundingClientRect().height))]);
      assert.equal(heights.length, 1, `phone rows of one height (${heights})`);
      await shot(page, `inspector-phone-feed-${scheme}`);
      await page.goto(`${receiver.url}/ui#message/${lateMessage}`);
      await page.locator('.timeline > li[data-kind="late"]').first().waitFor();
      assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'the timeline fits a phone');
      await shot(page, `inspector-phone-message-${scheme}`);
    }
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.emulateMedia({ colorScheme: 'light' });
  });

  test('ids and bodies from callbacks are shown as text, never as markup', async () => {
    const hostile = `<img src=x data-pwned=1>${newId()}`;
    const answer = await postCallback(receiver, deliveryReport(hostile, 'DELIVERED'));
    assert.equal(answer.status, 200);
    await goTo(page, 'feed');
    const row = page.locator(`#feed-list li[data-callback-id="${answer.json.callback_id}"][data-outcome="processed"]`);
    await row.waitFor();
    assert.ok((await row.innerText()).includes(hostile), 'the id is shown as it is');
    await row.locator('.row').click();
    await page.locator('#message-current-id', { hasText: hostile }).waitFor();
    await page.locator('.timeline details.raw summary').click();
    assert.ok((await page.locator('.timeline pre.json').innerText()).includes(hostile));
    assert.equal(await page.locator('[data-pwned], img').count(), 0, 'no element was made from the data');
  });

  test('consent lookup and the SMS batch view', async () => {
    const optOut = await api(receiver, '/api/send', { method: 'POST', body: { sample: 'opt_out' } });
    assert.equal(optOut.json?.http_status, 200, JSON.stringify(optOut));
    const batchId = newId();
    const sms = await api(receiver, '/api/send', { method: 'POST', body: { sample: 'sms_delivery_report', message_id: batchId, status: 'Delivered' } });
    assert.equal(sms.json?.http_status, 200, JSON.stringify(sms));
    await until('both processed', async () => {
      const { json } = await api(receiver, '/api/callbacks?processed=false');
      return json.callbacks.length === 0;
    });

    await goTo(page, 'lookup');
    await page.locator('#consent-channel').fill('WHATSAPP');
    await page.locator('#consent-identity').fill(PHONE);
    await page.locator('#consent-form button[type="submit"]').click();
    const consent = page.locator('#consent-result > div[data-may-message]');
    await consent.waitFor();
    assert.equal(await consent.getAttribute('data-may-message'), 'false');
    assert.match(await consent.innerText(), /may not message/);
    assert.match(await consent.innerText(), /OPT_OUT/);

    // The feed row of an SMS delivery report opens its batch.
    await goTo(page, 'feed');
    await waitForOutcome(page, batchId, 'processed');
    await rowOf(page, batchId).first().locator('.row').click();
    await page.locator('#view-lookup').waitFor();
    assert.equal(await page.locator('#batch-id').inputValue(), batchId);
    const recipients = page.locator('#batch-result table[data-name="recipients"] tbody tr');
    await recipients.first().waitFor();
    assert.equal(await recipients.count(), 1);
    const row = await recipients.first().innerText();
    assert.ok(row.includes(PHONE));
    assert.match(row, /Delivered/);

    await page.locator('#batch-id').fill('no-such-batch');
    await page.locator('#batch-form button[type="submit"]').click();
    await page.locator('#batch-error', { hasText: /no SMS batch/ }).waitFor();

    // A contact known only from an opt-out that named it and no identity.
    const contactId = newId();
    const contactOnly = JSON.stringify({
      app_id: '01HAPPAAAAAAAAAAAAAAAAAAA1',
      event_time: new Date().toISOString(),
      opt_out_notification: { request_id: newId(), contact_id: contactId, channel: 'WHATSAPP', status: 'OPT_OUT_SUCCEEDED' },
    });
    assert.equal((await postCallback(receiver, contactOnly)).status, 200);
    await until('the opt-out processed', async () => {
      const { json } = await api(receiver, '/api/callbacks?processed=false');
      return json.callbacks.length === 0;
    });
    await page.locator('#contact-id').fill(contactId);
    await page.locator('#contact-form button[type="submit"]').click();
    const kept = page.locator('#contact-result table[data-name="contact-consents"] tbody tr');
    await kept.first().waitFor();
    assert.match(await kept.first().innerText(), /WHATSAPP/);
    assert.match(await kept.first().innerText(), /OPT_OUT/);

    // A channel's state: its newest event of each type.
    const channelEvent = JSON.stringify({
      app_id: '01HAPPAAAAAAAAAAAAAAAAAAA1',
      event_time: new Date().toISOString(),
      channel_event_notification: { channel_event: { channel: 'WHATSAPP', event_type: 'WHATS_APP_QUALITY_RATING_CHANGED', additional_data: { quality_rating: 'YELLOW' } } },
    });
    assert.equal((await postCallback(receiver, channelEvent)).status, 200);
    await until('the channel event processed', async () => {
      const { json } = await api(receiver, '/api/callbacks?processed=false');
      return json.callbacks.length === 0;
    });
    await page.locator('#channel-name').fill('whatsapp');
    await page.locator('#channel-form button[type="submit"]').click();
    const state = page.locator('#channel-result table[data-name="channel-latest"] tbody tr');
    await state.first().waitFor();
    assert.match(await state.first().innerText(), /WHATS_APP_QUALITY_RATING_CHANGED/);
    assert.match(await state.first().innerText(), /YELLOW/);
  });

  test('follows the system theme, and the toggle overrides it', async () => {
    await goTo(page, 'feed');
    await page.emulateMedia({ colorScheme: 'dark' });
    assert.ok(luminance(await backgroundColor(page)) < 0.2, 'dark with a dark system');
    await page.emulateMedia({ colorScheme: 'light' });
    assert.ok(luminance(await backgroundColor(page)) > 0.8, 'light with a light system');

    await page.locator('#theme-toggle').click();
    assert.equal(await page.locator('html').getAttribute('data-theme'), 'dark');
    assert.ok(luminance(await backgroundColor(page)) < 0.2, 'the toggle overrides the system');
    await page.reload();
    await page.locator('#view-feed').waitFor();
    assert.equal(await page.locator('html').getAttribute('data-theme'), 'dark', 'the choice is remembered');
    await page.locator('#theme-toggle').click();
    assert.equal(await page.locator('html').getAttribute('data-theme'), null, 'back to the system theme');
    assert.ok(luminance(await backgroundColor(page)) > 0.8);
  });

  test('keyboard: a skip link, the views, one tab stop for the feed and arrows within it', async () => {
    // From the top of a freshly loaded page (the session survives the reload).
    await page.reload();
    await page.locator('#conn[data-state="live"]').waitFor();
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.className), 'skip');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.dataset.view), 'feed');

    await page.locator('#f-id').focus();
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'pause');
    await page.keyboard.press('Tab');
    const first = await page.evaluate(() => document.activeElement.closest('li')?.dataset.key);
    assert.ok(first, 'the next tab stop is a feed row');
    await page.keyboard.press('ArrowDown');
    const second = await page.evaluate(() => document.activeElement.closest('li')?.dataset.key);
    assert.ok(second && second !== first, 'ArrowDown moves to the next row');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.closest('#feed-list')), null, 'one Tab leaves the list');

    await page.locator('.tab[data-view="rejected"]').focus();
    await page.keyboard.press('Enter');
    await page.locator('#view-rejected').waitFor();
    assert.equal(await page.locator('.tab[data-view="rejected"]').getAttribute('aria-current'), 'page');
  });

  test('a 401 sends the user back to the login form with the server reason', async () => {
    const other = await openPage('/ui#feed');
    await logIn(other);
    await other.locator('#view-feed').waitFor();
    await other.evaluate(() => sessionStorage.setItem('sinch-webhooks.api-token', 'revoked-token'));
    await other.reload();
    await other.locator('#view-login').waitFor();
    await other.locator('#login-error', { hasText: 'the API token is wrong' }).waitFor();
    assert.equal(await other.evaluate(() => sessionStorage.getItem('sinch-webhooks.api-token')), null);
    await other.close();
  });

  test('nothing on the page reported an error', () => {
    assert.deepEqual(problems, []);
  });
});
