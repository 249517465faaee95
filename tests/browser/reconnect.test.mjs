// The live feed survives the receiver restarting: the page reconnects by itself (with
// backoff) and shows what arrives after the restart, without repeating what it had.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';

import { TOKEN, deliveryReport, freePort, launchBrowser, newId, postCallback, startReceiver } from './harness.mjs';

let receiver;
let browser;

after(async () => {
  await browser?.close();
  await receiver?.stop();
});

test('the live feed reconnects after the receiver restarts and shows new callbacks', async () => {
  const port = await freePort();
  receiver = await startReceiver({ port });
  browser = await launchBrowser();
  const page = await browser.context.newPage();
  page.setDefaultTimeout(15000);
  await page.goto(`${receiver.url}/ui`);
  await page.locator('#token').fill(TOKEN);
  await page.locator('#login-submit').click();
  await page.locator('#conn[data-state="live"]').waitFor();

  // A few callbacks before the restart, so the feed's position is well past 1.
  const before = Array.from({ length: 4 }, () => newId());
  for (const id of before) assert.equal((await postCallback(receiver, deliveryReport(id, 'DELIVERED'))).status, 200);
  for (const id of before) await page.locator(`#feed-list li[data-message-id="${id}"][data-outcome="processed"]`).waitFor();
  const rowsBefore = await page.locator('#feed-list > li').count();

  // Restart on the same port and database.
  const dir = receiver.dir;
  await receiver.stop({ keepData: true });
  receiver = null;
  await page.locator('#conn:not([data-state="live"])').waitFor();
  receiver = await startReceiver({ port, dir });
  await page.locator('#conn[data-state="live"]').waitFor();

  const afterRestart = newId();
  assert.equal((await postCallback(receiver, deliveryReport(afterRestart, 'READ'))).status, 200);
  await page.locator(`#feed-list li[data-message-id="${afterRestart}"][data-outcome="processed"]`).waitFor();
  assert.equal(await page.locator('#feed-list > li').count(), rowsBefore + 1, 'nothing from before the restart is repeated');
});
