// What every page of cloudfilm must satisfy, and the list of pages it is checked on.
//
// A page is { name, visit }: `visit(ctx)` drives ctx.page (a fresh phone-sized page whose
// traffic is recorded) to the page and returns the main document's playwright Response.
// ctx = { page, server, api, links } where `links` holds what `makeLinks` created.
// Add pages to PAGES (headers.test.mjs checks each), or call checkPage(browser, phoneContext,
// entry, ctx) from another test with an entry of your own.

import assert from 'node:assert/strict';
import { personalValuesIn, recordTraffic } from './harness.mjs';

export const SHARE_PASSWORD = 'headers-test-pw';

/** Clicks a form's submit button and answers the response of the document it leads to. */
export async function submit(page, button) {
  const navigated = page.waitForResponse(
    (r) => r.request().isNavigationRequest() && r.request().frame() === page.mainFrame() && (r.status() < 300 || r.status() >= 400),
    { timeout: 30_000 },
  );
  await button.click();
  const response = await navigated;
  await page.waitForLoadState('load', { timeout: 30_000 });
  return response;
}

/** The share and download links the pages below need (one share, one download link). */
export async function makeLinks(api) {
  const share = await api.createShare(api.ctExamId, { validHours: 2, password: SHARE_PASSWORD });
  const download = await api.createDownload(api.ctExamId);
  return { share, download };
}

export const PAGES = [
  {
    name: 'share password form (/s/{token})',
    visit: ({ page, links }) => page.goto(links.share.url),
  },
  {
    name: 'share password form after a wrong password',
    visit: async ({ page, links }) => {
      await page.goto(links.share.url);
      await page.locator('#password').fill('not-the-password');
      return submit(page, page.locator('button[type=submit]'));
    },
  },
  {
    name: 'shared exam (/shared/view, with the share cookie)',
    visit: async ({ page, links }) => {
      await page.goto(links.share.url);
      await page.locator('#password').fill(SHARE_PASSWORD);
      const response = await submit(page, page.locator('button[type=submit]'));
      assert.equal(new URL(response.url()).pathname, '/shared/view');
      return response;
    },
  },
  {
    name: 'share page of a revoked share',
    visit: async ({ page, api }) => {
      const share = await api.createShare(api.ctExamId, { validHours: 1, password: SHARE_PASSWORD });
      await page.goto(share.url);
      await api.revokeShare(share.id);
      await page.locator('#password').fill(SHARE_PASSWORD);
      const response = await submit(page, page.locator('button[type=submit]'));
      assert.equal(response.status(), 410);
      return response;
    },
  },
  {
    name: 'download code form (/d/{token})',
    visit: ({ page, links }) => page.goto(links.download.url),
  },
  {
    name: 'download code form after a wrong code',
    visit: async ({ page, links }) => {
      await page.goto(links.download.url);
      const wrong = links.download.code === '000000' ? '111111' : '000000';
      await page.locator('#code').fill(wrong);
      return submit(page, page.locator('button[type=submit]'));
    },
  },
];

/** The problems of a page's response headers (empty when it is fine). */
export function headerProblems(headers) {
  const problems = [];
  const csp = headers['content-security-policy'];
  if (!csp) {
    problems.push('no Content-Security-Policy');
  } else {
    const directives = new Map(
      csp.split(';').map((d) => d.trim()).filter(Boolean).map((d) => {
        const [name, ...values] = d.split(/\s+/);
        return [name.toLowerCase(), values];
      }),
    );
    const ancestors = directives.get('frame-ancestors');
    if (!ancestors || ancestors.join(' ') !== "'none'") problems.push(`frame-ancestors is not 'none': ${csp}`);
    // Scripts fall back to default-src when script-src is absent.
    const scripts = directives.get('script-src') ?? directives.get('default-src') ?? [];
    if (scripts.includes("'unsafe-inline'") || scripts.includes("'unsafe-eval'")) problems.push(`scripts may run inline: ${csp}`);
    if (!directives.has('script-src') && !directives.has('default-src')) problems.push(`no script-src nor default-src: ${csp}`);
  }
  if (headers['referrer-policy'] !== 'no-referrer') problems.push(`Referrer-Policy is ${headers['referrer-policy']}`);
  if (headers['x-content-type-options'] !== 'nosniff') problems.push(`X-Content-Type-Options is ${headers['x-content-type-options']}`);
  if (!/\bno-store\b/.test(headers['cache-control'] || '')) problems.push(`Cache-Control is ${headers['cache-control']}`);
  return problems;
}

export function assertSecurityHeaders(headers, label) {
  assert.deepEqual(headerProblems(headers), [], `${label}: security headers`);
}

export function assertNoPersonalData(text, label) {
  assert.deepEqual(personalValuesIn(text), [], `${label} holds an unmasked personal value`);
}

/**
 * Visits each page in a fresh phone-sized context and checks its headers, its source, every
 * URL it asked for and every HTML document on the way (error pages and redirects included).
 */
export async function checkPage(browser, newContext, entry, ctx) {
  const context = await newContext(browser);
  try {
    const page = await context.newPage();
    const traffic = recordTraffic(page);
    const response = await entry.visit({ ...ctx, page });
    assert.ok(response, `${entry.name}: no response`);
    const headers = await response.allHeaders();
    assert.match(headers['content-type'] || '', /^text\/html/, `${entry.name}: not an HTML page`);
    assertSecurityHeaders(headers, entry.name);
    // Every HTML document on the way (the form's error page, the page after a redirect).
    for (const r of traffic.responses) {
      if (r.request().resourceType() !== 'document') continue;
      const h = await r.allHeaders();
      if ((h['content-type'] || '').startsWith('text/html')) assertSecurityHeaders(h, `${entry.name}: ${r.url()}`);
      assertNoPersonalData(JSON.stringify(h), `${entry.name}: headers of ${r.url()}`);
    }
    assertNoPersonalData(await page.content(), `${entry.name}: page source`);
    assertNoPersonalData(await page.title(), `${entry.name}: title`);
    for (const url of [...traffic.urls, page.url()]) assertNoPersonalData(url, `${entry.name}: URL ${url}`);
    return { status: response.status(), url: page.url(), headers, urls: traffic.urls };
  } finally {
    await context.close();
  }
}
