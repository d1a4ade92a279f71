// The portal over HTTPS (`demo --tls`, its self-signed certificate accepted by the test's
// browser context): sign in, consent and add the account holder, every change carrying the
// CSRF token the page reads from the `__Host-` cookie; the session cookies are Secure and
// host-only, every answer carries HSTS. Screenshot: artifacts/tls-members.png.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DEMO, HOOK_TIMEOUT, TEST_TIMEOUT, launchBrowser, outboxMessages, phoneContext, shot, startDemo, waitForCode }
  from './harness.mjs';

describe('the portal over HTTPS', () => {
  let server, browser, context, page;

  before(async () => {
    server = await startDemo({ name: 'tls', scale: 0.05, args: ['--tls'] });
    browser = await launchBrowser();
    context = await phoneContext(browser, { ignoreHTTPSErrors: true });
    page = await context.newPage();
  }, HOOK_TIMEOUT);

  after(async () => {
    await context?.close();
    await browser?.close();
    await server?.stop();
  }, HOOK_TIMEOUT);

  test('signs in and adds a member with __Host- Secure cookies', async () => {
    assert.match(server.base, /^https:\/\//);
    const response = await page.goto(server.base + '/');
    assert.match((await response.allHeaders())['strict-transport-security'] || '', /max-age=\d+/);
    await page.fill('input[name=phone]', DEMO.phone);
    const before = (await outboxMessages(server.outbox)).length;
    await page.click('button:has-text("获取验证码")');
    await page.fill('input[name=code]', await waitForCode(server.outbox, before));
    await page.click('button[type=submit]:has-text("登录")');
    await page.waitForSelector('input[name=health]');
    await page.check('input[name=health]');
    await page.click('button:has-text("同意并继续")');
    await page.waitForSelector('h1:has-text("家庭成员")');
    await page.fill('input[name=name]', DEMO.name);
    await page.fill('input[name=id_number]', DEMO.idNumber);
    await page.click('form button:has-text("添加成员")');
    await page.waitForSelector('input[name=accession_number]');
    const cookies = await context.cookies();
    const names = cookies.map((c) => c.name).sort();
    assert.deepEqual(names, ['__Host-cf_csrf', '__Host-cf_session'], names.join(', '));
    for (const c of cookies) {
      assert.ok(c.secure, `${c.name} is Secure`);
      assert.equal(c.path, '/');
      assert.equal(c.sameSite, 'Strict');
    }
    await shot(page, 'tls-members', { fullPage: false });
  }, TEST_TIMEOUT);
});
