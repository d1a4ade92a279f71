// Holding an adult in the portal (issue 13 item 14), in phone-sized headless Chromium against
// the real binary: another account adds the demo patient as a parent and links an exam, sees
// nothing until the code sent to the phone on the hospital's record is entered, then sees the
// exams; the demo patient sees the holding in their own account and ends it, and the holder's
// exams close at once. Screenshots: artifacts/holding-*.png.

import { before, after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEMO, HOOK_TIMEOUT, TEST_TIMEOUT, PatientApi, launchBrowser, outboxMessages, phoneContext, shot, startDemo,
  waitForCode,
} from './harness.mjs';
import { assertNoPersonalData } from './security.mjs';

const HOLDER_PHONE = '13900139000';

describe('holding an adult needs their own yes', () => {
  let server, browser, holderContext, holder, adult;

  before(async () => {
    server = await startDemo({ name: 'holding' });
    browser = await launchBrowser();
    holderContext = await phoneContext(browser);
    holder = await holderContext.newPage();
    adult = new PatientApi(server);
    await adult.setUp();
  }, HOOK_TIMEOUT);

  after(async () => {
    await holderContext?.close();
    await browser?.close();
    await server?.stop();
  }, HOOK_TIMEOUT);

  async function step(page, name) {
    assertNoPersonalData(await page.content(), `${name}: page source`);
    await shot(page, `holding-${name}`, { fullPage: false });
  }

  async function code(action) {
    const before = (await outboxMessages(server.outbox)).length;
    await action();
    return waitForCode(server.outbox, before);
  }

  test('the holder links the adult, sends the code to the record\'s phone and then sees the exams', async () => {
    await holder.goto(server.base + '/');
    await holder.fill('input[name=phone]', HOLDER_PHONE);
    const login = await code(() => holder.click('button:has-text("获取验证码")'));
    await holder.fill('input[name=code]', login);
    await holder.click('button[type=submit]:has-text("登录")');
    await holder.check('input[name=health]');
    await holder.click('button:has-text("同意并继续")');
    await holder.waitForSelector('h1:has-text("家庭成员")');
    await holder.fill('input[name=name]', DEMO.name);
    await holder.fill('input[name=id_number]', DEMO.idNumber);
    await holder.selectOption('#relation', 'parent');
    await holder.click('form button:has-text("添加成员")');
    await holder.fill('input[name=accession_number]', DEMO.accession);
    await holder.click('button:has-text("关联")');
    await holder.waitForSelector('.consent-member');
    assert.equal(await holder.locator('a:has-text("查看检查")').count(), 0, 'no exams before the adult says yes');
    await step(holder, '01-consent-needed');
    const before = (await outboxMessages(server.outbox)).length;
    await holder.click('button:has-text("发送授权码")');
    const consent = await waitForCode(server.outbox, before);
    const sent = (await outboxMessages(server.outbox)).slice(before);
    assert.deepEqual(sent.map((m) => m.to), [DEMO.phone], 'the code goes to the phone on the hospital record');
    await holder.waitForSelector('.consent-member .sent:not(:empty)');
    await holder.fill('.consent-member input[name=code]', consent);
    await holder.click('button:has-text("确认授权")');
    await holder.click('a:has-text("查看检查")');
    await holder.waitForSelector('a.exam');
    assert.equal(await holder.locator('a.exam').count(), 3, 'the CT, MR and CR of the demo patient');
    await step(holder, '02-exams-after-consent');
  }, TEST_TIMEOUT);

  test('the adult sees who holds them and ends it at once', async () => {
    const held = await adult.request('GET', '/api/v1/me/holders', undefined, { expect: 200 });
    assert.equal(held.body.holders.length, 1);
    assert.equal(held.body.holders[0].consent, 'given');
    const adultContext = await phoneContext(browser);
    await adultContext.addCookies([...adult.cookies].map(([name, value]) => ({ name, value, url: server.base })));
    const page = await adultContext.newPage();
    await page.goto(server.base + '/');
    await page.waitForSelector('.holders');
    assert.match(await page.textContent('.holders'), /139\*\*\*\*9000 · 父母 · 已同意/);
    await step(page, '03-holders');
    await page.click('.holders button:has-text("结束")');
    await page.waitForSelector('.holders :text("已结束")');
    await step(page, '04-holding-ended');
    await adultContext.close();

    await holder.reload();
    await holder.waitForSelector('.error');
    assert.match(await holder.textContent('.error'), /not agreed/);
    const log = await adult.request('GET', '/api/v1/me/access-log', undefined, { expect: 200 });
    const lines = log.body.entries.map((e) => `${e.who} ${e.what}`).join('\n');
    assert.match(lines, /ended by you/);
    assert.match(lines, /now sees your exams/);
  }, TEST_TIMEOUT);
});
