// The pages a share or download link opens (server-rendered HTML, no script), driven in a
// phone-sized headless Chromium against the real binary, with screenshots in artifacts/.

import { before, after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { open, stat } from 'node:fs/promises';
import { HOOK_TIMEOUT, TEST_TIMEOUT, PatientApi, launchBrowser, phoneContext, shot, startDemo } from './harness.mjs';
import { submit } from './security.mjs';

const PASSWORD = 'links-test-pw1';

describe('share and download links in the browser', () => {
  let server, api, browser;

  before(async () => {
    server = await startDemo({ name: 'links' });
    api = new PatientApi(server);
    await api.setUp();
    assert.ok(api.ctExamId, 'the demo CT was matched');
    browser = await launchBrowser();
  }, HOOK_TIMEOUT);

  after(async () => {
    await browser?.close();
    await server?.stop();
  }, HOOK_TIMEOUT);

  /** Runs `body` with a fresh phone-sized page, closing its context afterwards. */
  async function withPage(body) {
    const context = await phoneContext(browser);
    try {
      return await body(await context.newPage(), context);
    } finally {
      await context.close();
    }
  }

  describe('a share', () => {
    let share;
    before(async () => {
      share = await api.createShare(api.ctExamId, { validHours: 24, password: PASSWORD });
      assert.match(share.url, /^http:\/\/127\.0\.0\.1:\d+\/s\/[A-Za-z0-9_-]{20,}$/);
    }, HOOK_TIMEOUT);

    test('the link opens a password form', TEST_TIMEOUT, () =>
      withPage(async (page) => {
        const response = await page.goto(share.url);
        assert.equal(response.status(), 200);
        await page.locator('#password').waitFor({ state: 'visible' });
        assert.equal(await page.locator('#password').getAttribute('type'), 'password');
        await assert.doesNotReject(page.getByRole('button', { name: 'Open' }).waitFor());
        // Nothing about the exam before the password.
        assert.doesNotMatch(await page.content(), /CT CHEST|Cloudfilm Demo Hospital/);
        await shot(page, 'share-form');
      }));

    test('a wrong password shows the form again with an error', TEST_TIMEOUT, () =>
      withPage(async (page) => {
        await page.goto(share.url);
        await page.locator('#password').fill('wrong-password');
        const response = await submit(page, page.getByRole('button', { name: 'Open' }));
        assert.equal(response.status(), 401);
        const alert = page.getByRole('alert');
        await alert.waitFor();
        assert.match(await alert.innerText(), /password is wrong/i);
        await page.locator('#password').waitFor({ state: 'visible' });
        assert.equal(await page.locator('#password').inputValue(), '', 'the wrong password is not echoed back');
        await shot(page, 'share-wrong-password');
      }));

    test('the right password shows the exam and its images', TEST_TIMEOUT, () =>
      withPage(async (page) => {
        await page.goto(share.url);
        await page.locator('#password').fill(PASSWORD);
        const response = await submit(page, page.getByRole('button', { name: 'Open' }));
        assert.equal(response.status(), 200);
        assert.equal(new URL(page.url()).pathname, '/shared/view');
        const body = await page.locator('body').innerText();
        assert.match(body, /Cloudfilm Demo Hospital/);
        assert.match(body, /CT CHEST WITH CONTRAST/);
        assert.match(body, /Report/);
        const images = page.locator('img');
        assert.ok((await images.count()) > 0, 'the view lists images');
        const first = images.first();
        await first.scrollIntoViewIfNeeded();
        await page.waitForFunction((img) => img.complete && img.naturalWidth > 0, await first.elementHandle(), { timeout: 20_000 });
        const size = await first.evaluate((img) => [img.naturalWidth, img.naturalHeight]);
        assert.ok(size[0] > 0 && size[1] > 0, `the first image decoded: ${size}`);
        await page.evaluate(() => window.scrollTo(0, 0));
        await shot(page, 'share-view', { fullPage: false });
        // The whole page once every lazy image has loaded.
        const count = await images.count();
        for (let i = 0; i < count; i++) await images.nth(i).scrollIntoViewIfNeeded();
        await page.waitForFunction(() => [...document.images].every((img) => img.complete), null, { timeout: 30_000 });
        const broken = await page.evaluate(() => [...document.images].filter((img) => img.naturalWidth === 0).map((img) => img.src));
        assert.deepEqual(broken, [], 'every image of the shared exam loads');
        await shot(page, 'share-view-full');
        // The recipient browses the images in the portal's viewer.
        await page.evaluate(() => window.scrollTo(0, 0));
        await page.locator('#open-viewer').click();
        await page.waitForFunction(() => (document.querySelector('canvas.view')?.dataset.shown || '').includes('/images/1?'));
        await page.keyboard.press('ArrowDown');
        await page.waitForFunction(() => document.querySelector('canvas.view').dataset.shown.includes('/images/2?'));
        await shot(page, 'share-viewer', { fullPage: false });
      }));
  });

  describe('a download link', () => {
    let download;
    before(async () => {
      download = await api.createDownload(api.ctExamId);
      assert.match(download.url, /^http:\/\/127\.0\.0\.1:\d+\/d\/[A-Za-z0-9_-]{20,}$/);
      assert.match(download.code, /^\d{6}$/);
    }, HOOK_TIMEOUT);

    test('the link opens a security-code form', TEST_TIMEOUT, () =>
      withPage(async (page) => {
        const response = await page.goto(download.url);
        assert.equal(response.status(), 200);
        await page.locator('#code').waitFor({ state: 'visible' });
        await shot(page, 'download-form');
      }));

    test('a wrong code shows an error', TEST_TIMEOUT, () =>
      withPage(async (page) => {
        await page.goto(download.url);
        await page.locator('#code').fill(download.code === '000000' ? '111111' : '000000');
        const response = await submit(page, page.getByRole('button', { name: 'Download' }));
        assert.equal(response.status(), 401);
        const alert = page.getByRole('alert');
        await alert.waitFor();
        assert.match(await alert.innerText(), /security code is wrong/i);
        await page.locator('#code').waitFor({ state: 'visible' });
        await shot(page, 'download-wrong-code');
      }));

    test('the right code downloads the zip of the original images', TEST_TIMEOUT, () =>
      withPage(async (page) => {
        await page.goto(download.url);
        await page.locator('#code').fill(download.code);
        const [file] = await Promise.all([
          page.waitForEvent('download', { timeout: 30_000 }),
          page.getByRole('button', { name: 'Download' }).click(),
        ]);
        assert.match(file.suggestedFilename(), /^exam-.+\.zip$/);
        const where = await file.path(); // waits for the download to finish
        assert.equal(await file.failure(), null);
        const { size } = await stat(where);
        assert.ok(size > 1024 * 1024, `the zip is larger than 1 MB (${size} bytes)`);
        const handle = await open(where);
        try {
          const head = Buffer.alloc(4);
          await handle.read(head, 0, 4, 0);
          assert.equal(head.subarray(0, 2).toString('latin1'), 'PK');
        } finally {
          await handle.close();
        }
        // The page stays on the form (a download is not a navigation).
        await shot(page, 'download-started');
      }));
  });

  describe('a revoked share', () => {
    test('says it was revoked, and ends a session opened before', TEST_TIMEOUT, async () => {
      const share = await api.createShare(api.ctExamId, { validHours: 1, password: PASSWORD });
      const viewer = await phoneContext(browser);
      try {
        // Someone opened it before the owner revoked it.
        const before = await viewer.newPage();
        await before.goto(share.url);
        await before.locator('#password').fill(PASSWORD);
        assert.equal((await submit(before, before.getByRole('button', { name: 'Open' }))).status(), 200);

        await withPage(async (page) => {
          await page.goto(share.url);
          await page.locator('#password').fill(PASSWORD);
          const list = await api.request('GET', `/api/v1/exams/${api.ctExamId}/shares`, undefined, { expect: 200 });
          assert.ok(JSON.stringify(list.body).includes(share.id));
          await api.revokeShare(share.id);
          const response = await submit(page, page.getByRole('button', { name: 'Open' }));
          assert.equal(response.status(), 410);
          assert.match(await page.locator('body').innerText(), /revoked/i);
          assert.equal(await page.locator('#password').count(), 0, 'no form for a link that is gone');
          await shot(page, 'share-revoked');

          // The page opened earlier no longer shows the exam.
          const again = await before.reload();
          assert.equal(again.status(), 410);
          const text = await before.locator('body').innerText();
          assert.match(text, /revoked/i);
          assert.doesNotMatch(text, /CT CHEST/);
          await shot(before, 'share-revoked-open-view');
        });
      } finally {
        await viewer.close();
      }
    });
  });
});
