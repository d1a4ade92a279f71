// Security headers and no personal data on every page in security.mjs's PAGES: each is
// visited in a fresh phone-sized Chromium context against the real binary.

import { before, after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HOOK_TIMEOUT, TEST_TIMEOUT, PatientApi, launchBrowser, phoneContext, startDemo } from './harness.mjs';
import { PAGES, assertNoPersonalData, checkPage, headerProblems, makeLinks } from './security.mjs';

describe('security headers and personal data of the pages', () => {
  let server, api, browser, links;

  before(async () => {
    server = await startDemo({ name: 'headers' });
    api = new PatientApi(server);
    await api.setUp();
    links = await makeLinks(api);
    browser = await launchBrowser();
  }, HOOK_TIMEOUT);

  after(async () => {
    await browser?.close();
    await server?.stop();
  }, HOOK_TIMEOUT);

  test('the header check itself refuses what it should', TEST_TIMEOUT, () => {
    const good = {
      'content-security-policy': "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'",
      'referrer-policy': 'no-referrer',
      'x-content-type-options': 'nosniff',
      'cache-control': 'no-store',
    };
    assert.deepEqual(headerProblems(good), []);
    assert.equal(headerProblems({ ...good, 'content-security-policy': undefined }).length, 1);
    assert.equal(headerProblems({ ...good, 'content-security-policy': "default-src 'self'; script-src 'self' 'unsafe-inline'; frame-ancestors 'none'" }).length, 1);
    assert.equal(headerProblems({ ...good, 'content-security-policy': "default-src 'unsafe-inline'; frame-ancestors 'none'" }).length, 1);
    assert.equal(headerProblems({ ...good, 'content-security-policy': "default-src 'none'" }).length, 1);
    assert.equal(headerProblems({ ...good, 'cache-control': 'private, max-age=60' }).length, 1);
    assert.equal(headerProblems({ ...good, 'referrer-policy': 'same-origin' }).length, 1);
  });

  for (const entry of PAGES) {
    test(entry.name, TEST_TIMEOUT, async () => {
      const seen = await checkPage(browser, phoneContext, entry, { server, api, links });
      assert.ok(seen.urls.length > 0);
    });
  }

  test('the server log of all this holds no personal value and no link token', TEST_TIMEOUT, () => {
    assert.ok(server.stderr.includes('request'), 'the server logged its requests');
    assertNoPersonalData(server.stderr, 'the server log');
    for (const url of [links.share.url, links.download.url]) {
      const token = new URL(url).pathname.split('/').pop();
      assert.ok(!server.stderr.includes(token), `the server log holds the token of ${new URL(url).pathname.slice(0, 3)}…`);
    }
  });
});
