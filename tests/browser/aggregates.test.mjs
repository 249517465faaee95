// The Calls, Verifications and Numbers views end to end: a receiver with the Voice,
// Verification and Numbers routes, callbacks signed and posted by `sinch-webhooks send` as
// Sinch would, and each view read in Chromium; and the same callbacks sent from the inspector. A receiver of its own, so the sources the
// other suites count stay theirs.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { OTHER_API_ENV, TOKEN, api, launchBrowser, newId, screenshotPath, sendWithCli, startReceiver, until } from './harness.mjs';

const WAIT = 15000;
const VOICE = '/api/sinch/voice';
const VERIFICATION = '/api/sinch/verification';
const NUMBERS = '/api/sinch/numbers';

let receiver;
let browser;
let page;
const problems = [];
const BODIES = mkdtempSync(path.join(tmpdir(), 'sinch-webhooks-bodies-'));

const callId = `call-${newId().toLowerCase()}`;
const verificationId = `ver-${newId().toLowerCase()}`;
// A `+` in the id: the view must encode it (%2B) on its way to the API and back.
const number = `+4670${String(Date.now()).slice(-7)}`;

before(async () => {
  receiver = await startReceiver({ env: OTHER_API_ENV });
  browser = await launchBrowser();
  page = await browser.context.newPage();
  page.setDefaultTimeout(WAIT);
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    // Chromium notes the 404 the unknown-id test causes on purpose; anything else counts.
    if (message.type() !== 'error') return;
    if (/^Failed to load resource: the server responded with a status of 404/.test(message.text())) return;
    problems.push(`console error: ${message.text()}`);
  });
  await page.goto(`${receiver.url}/ui`);
  await page.locator('#token').fill(TOKEN);
  await page.locator('#login-submit').click();
  await page.locator('#view-feed').waitFor();
});

after(async () => {
  await browser?.close();
  await receiver?.stop();
  rmSync(BODIES, { recursive: true, force: true });
});

/** Whole seconds, as Voice writes them, `offset` seconds after a minute ago. */
function voiceTime(offset) {
  const at = new Date(Date.now() - 60000 + offset * 1000);
  return at.toISOString().replace(/\.\d+Z$/, 'Z');
}

/** A Voice event of the call, `offset` seconds into it, posted through a file as-is. */
async function sendVoice(event, offset, details) {
  const body = { event, callid: callId, version: 1, timestamp: voiceTime(offset), applicationKey: OTHER_API_ENV.SINCH_APPLICATION_KEY, ...details };
  const file = path.join(BODIES, `${event}.json`);
  writeFileSync(file, JSON.stringify(body));
  await sendWithCli(receiver, VOICE, file, ['--scheme', 'application']);
}

/** Opens a family's list from its tab and returns the row naming `id`. */
async function listRow(view, list, id) {
  await page.locator(`.tab[data-view="${view}"]`).click();
  await page.locator(`#view-${view}`).waitFor();
  const row = page.locator(`table[data-name="${list}"] tbody tr`, { hasText: id });
  await row.waitFor();
  await page.screenshot({ path: screenshotPath(`inspector-${list}`) });
  return row;
}

/** The text of column `index` of each row of a named table, top to bottom. */
async function column(name, index) {
  return page.locator(`table[data-name="${name}"] tbody tr`).evaluateAll(
    (rows, i) => rows.map((row) => row.cells[i].innerText.trim()),
    index,
  );
}

/** The tabs not wholly inside the tab bar's visible box. */
async function tabsOutOfSight() {
  return page.locator('#tabs').evaluate((nav) => {
    const box = nav.getBoundingClientRect();
    return [...nav.querySelectorAll('.tab')]
      .filter((tab) => {
        const at = tab.getBoundingClientRect();
        return at.left < box.left - 0.5 || at.right > box.right + 0.5;
      })
      .map((tab) => tab.dataset.view);
  });
}

/**
 * Screenshots of what is shown: light, dark, and opened on a phone (where it must not scroll
 * sideways, and the tabs must show which view this is). `ready`: what the view shows when loaded.
 */
async function shots(name, ready) {
  await page.mouse.move(1, 1);
  await page.screenshot({ path: screenshotPath(`inspector-${name}-light`), fullPage: true });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: screenshotPath(`inspector-${name}-dark`), fullPage: true });
  await page.emulateMedia({ colorScheme: 'light' });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.reload();
  await page.locator(ready).waitFor();
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), `${name} fits a phone`);
  const current = await page.locator('.tab[aria-current="page"]').getAttribute('data-view');
  assert.ok(!(await tabsOutOfSight()).includes(current), `the current tab (${current}) is in sight on a phone`);
  await page.screenshot({ path: screenshotPath(`inspector-phone-${name}`), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 800 });
}

describe('calls, verifications and Numbers views', () => {
  test('a call whose events arrive out of order is listed once and its timeline reads ICE, ACE, DiCE', async () => {
    const to = { type: 'did', endpoint: '+46201000188' };
    // Arrival: the end first, then the start, then the answer; Sinch promises no order.
    await sendVoice('dice', 20, { reason: 'CALLERHANGUP', result: 'ANSWERED', duration: 12, debit: { currencyId: 'EUR', amount: 0.0176 }, to, from: '46701234567' });
    await sendVoice('ice', 0, { cli: '46701234567', to, domain: 'pstn', originationType: 'pstn' });
    await sendVoice('ace', 8, { amd: { status: 'human', reason: 'longgreeting', duration: 3 } });
    await until('the call with three events', async () => (await api(receiver, `/api/calls/${callId}`)).json?.timeline?.length === 3);

    const row = await listRow('calls', 'calls-list', callId);
    const cells = await row.locator('td').allInnerTexts();
    assert.deepEqual(cells.slice(0, 6), [callId, 'inbound', '46701234567', '+46201000188', 'ended', 'ANSWERED']);

    await row.locator(`a[href="#calls/${callId}"]`).click();
    await page.locator('#calls-title', { hasText: /^Call$/ }).waitFor();
    await page.locator('table[data-name="call-timeline"]').waitFor();
    assert.deepEqual(await column('call-timeline', 1), ['ice', 'ace', 'dice']);
    const summary = await page.locator('#calls-body dl.kv').innerText();
    assert.match(summary, /CALLERHANGUP/);
    assert.match(summary, /12 s/);
    assert.match(summary, /0\.0176 EUR/);
    // What Sinch was told to do, by whom: the ICE and the ACE waited for an answer.
    const answered = (await column('call-answers', 1)).map((cell) => cell.split(' ')[0]);
    assert.deepEqual(answered, ['VOICE_ICE', 'VOICE_ACE']);
    assert.deepEqual(await column('call-answers', 2), ['policy', 'policy']);
    const bodies = await column('call-answers', 4);
    assert.match(bodies[0], /"name": "hangup"/);
    assert.match(bodies[1], /"name": "continue"/);
    await shots('call', 'table[data-name="call-timeline"]');
  });

  test('a verification shows its request, then its result, and its final status in the list', async () => {
    await sendWithCli(receiver, VERIFICATION, 'verification_request', ['--message-id', verificationId]);
    await sendWithCli(receiver, VERIFICATION, 'verification_result', ['--message-id', verificationId, '--status', 'SUCCESSFUL']);
    await until('the verification with its result', async () => (await api(receiver, `/api/verifications/${verificationId}`)).json?.timeline?.length === 2);

    const row = await listRow('verifications', 'verifications-list', verificationId);
    assert.match(await row.innerText(), /SUCCESSFUL/);

    await row.locator(`a[href="#verifications/${verificationId}"]`).click();
    await page.locator('#verifications-title', { hasText: /^Verification$/ }).waitFor();
    await page.locator('table[data-name="verification-timeline"]').waitFor();
    assert.deepEqual(await column('verification-timeline', 1), ['VerificationRequestEvent', 'VerificationResultEvent']);
    assert.deepEqual(await column('verification-timeline', 2), ['—', 'SUCCESSFUL']);
    assert.deepEqual(await column('verification-answers', 2), ['policy']);
    assert.match((await column('verification-answers', 4))[0], /"action": "deny"/);
    await shots('verification', 'table[data-name="verification-timeline"]');
  });

  test('a number with two Numbers events shows the latest in the list and both in its history', async () => {
    await sendWithCli(receiver, NUMBERS, 'numbers_event', ['--message-id', number, '--status', 'SUCCEEDED']);
    await sendWithCli(receiver, NUMBERS, 'numbers_event', ['--message-id', number, '--status', 'FAILED']);
    await until('the number with its history', async () => (await api(receiver, `/api/numbers/${encodeURIComponent(number)}`)).json?.history?.length === 2);

    const row = await listRow('numbers', 'numbers-list', number);
    assert.match(await row.innerText(), /FAILED/);

    await row.locator('a', { hasText: number }).click();
    await page.locator('#numbers-title', { hasText: /^Numbers resource$/ }).waitFor();
    assert.equal(new URL(page.url()).hash, `#numbers/${encodeURIComponent(number)}`);
    await page.locator('table[data-name="number-history"]').waitFor();
    assert.deepEqual(await column('number-history', 2), ['SUCCEEDED', 'FAILED']);
    await shots('number', 'table[data-name="number-history"]');
  });

  test('an id typed in a view opens it, and an unknown one shows the server reason', async () => {
    await page.locator('.tab[data-view="numbers"]').click();
    await page.locator('#numbers-id').fill(number);
    await page.locator('#numbers-id').press('Enter');
    await page.locator('table[data-name="number-history"]').waitFor();
    assert.equal(await page.locator('#numbers-id').inputValue(), number);

    await page.locator('.tab[data-view="calls"]').click();
    await page.locator('#calls-id').fill('no-such-call');
    await page.locator('#calls-id').press('Enter');
    await page.locator('#calls-error', { hasText: /no-such-call|not found/i }).waitFor();
    assert.equal(await page.locator('table[data-name="call-timeline"]').count(), 0, 'no stale timeline under the error');
  });

  test('every tab is in sight on a laptop-sized screen, whichever view is open', async () => {
    for (const width of [1280, 1024, 800]) {
      await page.setViewportSize({ width, height: 800 });
      for (const view of ['feed', 'numbers']) {
        await page.goto(`${receiver.url}/ui#${view}`);
        await page.locator(`#view-${view}`).waitFor();
        assert.deepEqual(await tabsOutOfSight(), [], `at ${width} px on #${view}`);
      }
    }
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  test('the actions view sends a Voice ICE to an application source and shows its SVAML answer and where it came from', async () => {
    await page.goto(`${receiver.url}/ui#actions`);
    await page.locator('#view-actions').waitFor();
    const sample = page.locator('#send-sample');
    // Grouped by product.
    await sample.locator('optgroup[label="Voice"] option[value="voice_ice"]').waitFor({ state: 'attached' });
    assert.equal(await sample.locator('optgroup[label="Conversation API"] option[value="message_delivery"]').count(), 1);
    assert.equal(await sample.locator('optgroup[label="Verification"] option[value="verification_request"]').count(), 1);
    assert.equal(await sample.locator('optgroup[label="Numbers"] option[value="numbers_event"]').count(), 1);
    // Only the sources that take the chosen sample, the one whose route fits first.
    const offered = async (name) => {
      await sample.selectOption(name);
      return page.locator('#send-source option').evaluateAll((options) => options.map((o) => o.value));
    };
    assert.deepEqual(await offered('message_delivery'), ['default']);
    assert.deepEqual(await offered('numbers_event'), ['numbers']);
    assert.deepEqual(await offered('verification_request'), ['verification', 'voice']);
    assert.deepEqual(await offered('voice_ice'), ['voice', 'verification']);
    assert.match(await page.locator('#send-id-label').innerText(), /^Call id/);

    const call = `call-${newId().toLowerCase()}`;
    await page.locator('#send-message-id').fill(call);
    await page.locator('#send-submit').click();
    await page.locator('#send-result[data-status="200"]').waitFor();
    assert.deepEqual(JSON.parse(await page.locator('#send-answer').innerText()), { action: { name: 'hangup' } });
    assert.equal(await page.locator('#send-result [data-role="answer-origin"]').innerText(), 'policy');
    assert.match(await page.locator('#send-result').innerText(), /answered/);

    await until('the sent call processed', async () => (await api(receiver, `/api/calls/${call}`)).json?.timeline?.length === 1);
    await page.locator(`#send-result a[href="#calls/${call}"]`).click();
    await page.locator('table[data-name="call-timeline"]').waitFor();
    assert.deepEqual(await column('call-timeline', 1), ['ice']);
  });

  test('nothing on the page reported an error', () => {
    assert.deepEqual(problems, []);
  });
});
