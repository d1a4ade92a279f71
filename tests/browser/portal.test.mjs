// The patient's whole journey in the portal, in a phone-sized headless Chromium against the
// real binary: sign in, consent, add and link a member, exams, exam detail, the viewer (with
// canvas pixels checked after a slice, a preset, a window drag and a pinch; a multi-frame cine), a share with its QR code
// and its revocation, a download after a step-up, the access log, privacy (a request with its due
// date, the export after a step-up) and the language
// switch. Every page is checked for its security headers and for unmasked personal values in
// its source and in every URL. Screenshots: artifacts/portal-*.png.

import { before, after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEMO, HOOK_TIMEOUT, TEST_TIMEOUT, launchBrowser, outboxMessages, phoneContext, recordTraffic, shot, startDemo,
  waitForCode,
} from './harness.mjs';
import { assertNoPersonalData, assertSecurityHeaders } from './security.mjs';

describe('the patient portal', () => {
  let server, browser, context, page, traffic;

  before(async () => {
    server = await startDemo({ name: 'portal' });
    browser = await launchBrowser();
    context = await phoneContext(browser);
    page = await context.newPage();
    traffic = recordTraffic(page);
  }, HOOK_TIMEOUT);

  after(async () => {
    await context?.close();
    await browser?.close();
    await server?.stop();
  }, HOOK_TIMEOUT);

  /** A screenshot, after checking the page source holds no unmasked personal value. */
  async function step(name) {
    assertNoPersonalData(await page.content(), `${name}: page source`);
    await page.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
    await shot(page, `portal-${name}`, { fullPage: false });
  }

  async function code(action) {
    const before = (await outboxMessages(server.outbox)).length;
    await action();
    return waitForCode(server.outbox, before);
  }

  /** Brightness statistics of the viewer's canvas (mean and standard deviation of red). */
  const canvasStats = () =>
    page.evaluate(() => {
      const c = document.querySelector('canvas.view');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0, sum = 0, sq = 0;
      for (let i = 0; i < d.length; i += 4 * 7) { n++; sum += d[i]; sq += d[i] * d[i]; }
      const mean = sum / n;
      return { mean, sd: Math.sqrt(sq / n - mean * mean), shown: c.dataset.shown };
    });

  const shownIncludes = (text) =>
    page.waitForFunction((t) => (document.querySelector('canvas.view')?.dataset.shown || '').includes(t), text);

  test('signs in with a text-message code and consents', async () => {
    const response = await page.goto(server.base + '/');
    assertSecurityHeaders(await response.allHeaders(), 'portal page');
    await page.waitForSelector('input[name=phone]');
    await step('01-login');
    await page.fill('input[name=phone]', DEMO.phone);
    const sent = await code(() => page.click('button:has-text("获取验证码")'));
    await page.fill('input[name=code]', sent);
    await page.click('button[type=submit]:has-text("登录")');
    await page.waitForSelector('input[name=health]');
    await step('02-consent');
    await page.check('input[name=health]');
    await page.click('button:has-text("同意并继续")');
    await page.waitForSelector('h1:has-text("家庭成员")');
  }, TEST_TIMEOUT);

  test('adds the account holder and links a first exam', async () => {
    await page.fill('input[name=name]', DEMO.name);
    await page.fill('input[name=id_number]', DEMO.idNumber);
    await page.click('form button:has-text("添加成员")');
    await page.waitForSelector('input[name=accession_number]');
    assert.match(await page.textContent('.member'), /张\*/, 'the name is masked');
    await step('03-members');
    await page.fill('input[name=accession_number]', 'WRONG-1');
    await page.click('button:has-text("关联")');
    await page.waitForSelector('.match .error');
    await page.fill('input[name=accession_number]', DEMO.accession);
    await page.click('button:has-text("关联")');
    await page.waitForSelector('a.exam');
    assert.equal(await page.locator('a.exam').count(), 3, 'the CT, MR and CR of the demo');
    await step('04-exams');
  }, TEST_TIMEOUT);

  test('shows an exam with its report and series', async () => {
    await page.click('a.exam:has-text("CT")');
    await page.waitForSelector('pre.report');
    assert.match(await page.textContent('pre.report'), /Impression/);
    await page.waitForFunction(() => [...document.querySelectorAll('.thumb img')].every((i) => i.complete && i.naturalWidth > 0));
    await step('05-exam');
  }, TEST_TIMEOUT);

  test('the viewer goes through slices, windows by preset and by drag', async () => {
    await page.click('button:has-text("查看影像")');
    await shownIncludes('/images/1?');
    const first = await canvasStats();
    assert.ok(first.sd > 10, 'an image is drawn');
    await step('06-viewer');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowDown');
    await shownIncludes('/images/3?');
    const third = await canvasStats();
    assert.notEqual(third.mean.toFixed(3), first.mean.toFixed(3), 'another slice, other pixels');
    assert.match(await page.textContent('.counter'), /^3 \//);
    await page.click('.viewer button:has-text("肺窗")');
    await shownIncludes('window=-600,1500');
    const lung = await canvasStats();
    assert.ok(lung.mean > third.mean + 5, `the lung window shows soft tissue brighter (${lung.mean} vs ${third.mean})`);
    await step('07-viewer-lung');
    await page.click('.viewer button:has-text("窗宽窗位")');
    const box = await page.locator('canvas.view').boundingBox();
    await page.mouse.move(box.x + 80, box.y + 100);
    await page.mouse.down();
    await page.mouse.move(box.x + 200, box.y + 100, { steps: 6 });
    await page.mouse.up();
    await page.waitForFunction(() => !document.querySelector('canvas.view').dataset.shown.includes('window=-600,1500'));
    await page.waitForFunction(() => document.querySelector('canvas.view').dataset.shown.includes('window=-600,'));
    const wider = await canvasStats();
    assert.ok(wider.sd < lung.sd, `a wider window lowers the contrast (${wider.sd} vs ${lung.sd})`);
    await page.click('.viewer button:has-text("复位")');
    await shownIncludes('window=40,400');
    // Two fingers spread apart zoom in: more of the canvas is covered by the image.
    const covered = () => page.evaluate(() => {
      const c = document.querySelector('canvas.view');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let lit = 0;
      for (let i = 0; i < d.length; i += 4 * 11) if (d[i] > 20) lit++;
      return lit / (d.length / (4 * 11));
    });
    const before = await covered();
    const cdp = await context.newCDPSession(page);
    const cx = box.x + box.width / 2, cy = box.y + box.height / 2;
    const touch = (type, spread) => cdp.send('Input.dispatchTouchEvent', {
      type,
      touchPoints: type === 'touchEnd' ? [] : [{ x: cx - spread, y: cy, id: 1 }, { x: cx + spread, y: cy, id: 2 }],
    });
    await touch('touchStart', 30);
    for (const spread of [50, 70, 90, 110]) await touch('touchMove', spread);
    await touch('touchEnd', 0);
    const after = await covered();
    assert.ok(after > before * 1.5, `pinching zooms in (${before.toFixed(3)} → ${after.toFixed(3)} of the canvas lit)`);
    await step('07b-viewer-zoomed');
    await page.click('.viewer .close');
  }, TEST_TIMEOUT);

  test('a multi-frame image pages through its frames', async () => {
    const ctExam = page.url();
    await page.click('a.back');
    await page.click('a.exam:has-text("MR")');
    await page.waitForSelector('.thumb >> nth=2');
    await page.click('.thumb >> nth=2');
    await shownIncludes('/images/1?');
    assert.match(await page.textContent('.counter'), /^1 \/ 8$/, 'the cine has 8 frames');
    await page.keyboard.press('ArrowDown');
    await shownIncludes('&frame=2');
    await step('07c-viewer-cine');
    await page.click('.viewer .close');
    await page.goto(ctExam);
    await page.waitForSelector('pre.report');
  }, TEST_TIMEOUT);

  test('shares the exam with a QR code, then revokes the share', async () => {
    await page.click('a.button:has-text("分享")');
    await page.fill('input[name=password]', 'portal-pw-1');
    await page.click('button:has-text("生成分享链接")');
    await page.waitForFunction(() => document.querySelector('img.qr')?.naturalWidth > 0);
    const url = await page.inputValue('input.url');
    assert.match(url, /\/s\/[A-Za-z0-9_-]{43}$/);
    await page.waitForSelector('.share .state-active');
    await step('08-share');
    // The recipient opens it, which the access log shows.
    const recipient = await phoneContext(browser);
    const other = await recipient.newPage();
    await other.goto(url);
    await other.fill('#password', 'portal-pw-1');
    await other.click('button');
    await other.waitForURL('**/shared/view');
    await recipient.close();
    await page.click('.share button.danger');
    await page.waitForSelector('.share .state-revoked');
    await step('09-share-revoked');
  }, TEST_TIMEOUT);

  test('downloads the original images after a step-up', async () => {
    await page.click('a.back');
    await page.click('a.button:has-text("下载原始影像")');
    await page.waitForSelector('button:has-text("发送验证码")');
    await step('10-download-step-up');
    const stepUp = await code(() => page.click('button:has-text("发送验证码")'));
    await page.fill('input[name=code]', stepUp);
    const security = await code(() => page.click('button:has-text("确认")'));
    await page.waitForSelector('a:has-text("打开下载页面")');
    await step('11-download-link');
    await page.click('a:has-text("打开下载页面")');
    await page.fill('#code', security);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('button')]);
    assert.match(download.suggestedFilename(), /^exam-[0-9a-f]{32}\.zip$/);
    assert.ok(await download.path(), 'the whole zip arrived');
    await page.goBack();
  }, TEST_TIMEOUT);

  test('shows who accessed the data, and the privacy page, in both languages', async () => {
    await page.goto(server.base + '/#/access');
    await page.waitForSelector('h1:has-text("谁访问了我的数据")');
    const log = await page.textContent('main');
    assert.match(log, /share recipient/);
    assert.match(log, /downloaded the original DICOM/);
    await step('12-access-log');
    await page.goto(server.base + '/#/privacy');
    await page.waitForSelector('pre.policy');
    await page.selectOption('#kind', 'deletion');
    await page.fill('#detail', 'please delete the MR');
    await page.click('button:has-text("提交")');
    await page.waitForSelector('.requests li');
    assert.match(await page.textContent('.requests'), /删除 · 处理中 · 截止 \d{4}-\d{2}-\d{2}/);
    await page.click('button:has-text("导出我的数据")');
    const stepUp = await code(() => page.click('button:has-text("发送验证码")'));
    await page.fill('input[name=code]', stepUp);
    await page.click('button:has-text("确认")');
    const [exported] = await Promise.all([page.waitForEvent('download'), page.click('a:has-text("下载导出文件")')]);
    assert.ok(await exported.path(), 'the export arrived');
    await step('13-privacy');
    await page.click('#lang');
    await page.waitForSelector('h1:has-text("Privacy")');
    await step('14-privacy-en');
  }, TEST_TIMEOUT);

  test('no URL the portal asked for holds a personal value', () => {
    assert.ok(traffic.urls.length > 20);
    for (const url of traffic.urls) assertNoPersonalData(url, `URL ${url}`);
  });
});
