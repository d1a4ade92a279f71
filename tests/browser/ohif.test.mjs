// OHIF, the open-source web viewer (npm @ohif/app's prebuilt dist/, see package.json), on
// cloudfilm's DICOMweb: `cloudfilm demo --ohif DIST` serves it under /ohif/, and Chromium at
// desktop size opens the study list and the demo's CT, MR (with its multi-frame cine) and CR.
// Every request the pages make is recorded: any answer >= 400, any network failure and any
// request to anything but this server fails the test (the browser also cannot resolve any
// other host). Screenshots go to artifacts/ohif-*.png.
//
// The browser is given the organization's credential as a browser user would type it into the
// Basic challenge: the API key's id as user name, the key as password (Playwright's
// httpCredentials). Nothing here prints a patient's value.

import { before, after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { HERE, HOOK_TIMEOUT, launchBrowser, shot, startDemo } from './harness.mjs';

const DIST = path.join(HERE, 'node_modules', '@ohif', 'app', 'dist');
/** No name resolves except the loopback address: nothing can leave this machine. */
const LOOPBACK_ONLY = '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1';
const VIEWER_TIMEOUT = { timeout: 180_000 };
const WAIT_MS = 60_000; // OHIF is a 17 MB application: its first image can take a while
/** An origin allowed to call DICOMweb from the browser (CORS), for the CORS checks. */
const CORS_ORIGIN = 'http://127.0.0.1:9';

const STUDIES = {
  ct: { accession: 'CT20261101001', description: 'CT CHEST WITH CONTRAST', date: '01-Nov-2026' },
  mr: { accession: 'MR20261015002', description: 'MR BRAIN', date: '15-Oct-2026' },
  cr: { accession: 'CR20260920003', description: 'CHEST PA', date: '20-Sep-2026' },
};

/** A path without its query string (which can hold a patient id), for messages. */
const pathOf = (url) => {
  const u = new URL(url);
  return u.origin + u.pathname;
};

/**
 * Records what a browser context asks for and gets: `problems` lists every request to another
 * origin, every answer >= 400 and every network failure (an aborted request included).
 */
function watch(context, base) {
  const seen = { requests: [], problems: [], frames: [] };
  context.on('request', (r) => {
    const u = new URL(r.url());
    if (u.protocol === 'data:' || u.protocol === 'blob:') return;
    seen.requests.push(r);
    if (u.origin !== base) seen.problems.push(`a request left this server: ${u.protocol}//${u.host}`);
    if (/\/frames\/[\d,]+$/.test(u.pathname)) seen.frames.push({ path: u.pathname, accept: r.headers().accept });
  });
  context.on('response', (r) => {
    if (r.status() >= 400) seen.problems.push(`${r.status()} for ${r.request().method()} ${pathOf(r.url())}`);
  });
  context.on('requestfailed', (r) => {
    seen.problems.push(`${r.failure()?.errorText ?? 'failed'} for ${r.method()} ${pathOf(r.url())}`);
  });
  return seen;
}

/** Records CSP refusals and uncaught errors of a page. */
function watchPage(page, seen) {
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) seen.problems.push(`CSP: ${m.text().slice(0, 300)}`);
  });
  page.on('pageerror', (e) => seen.problems.push(`page error: ${e.message.slice(0, 300)}`));
}

/**
 * The pixels of the largest visible viewport canvas: its size, how many distinct grey levels a
 * sample of it holds, and a hash of that sample (null until a canvas is drawn).
 */
async function canvasPixels(page) {
  return page.evaluate(() => {
    const canvases = [...document.querySelectorAll('canvas.cornerstone-canvas, .viewport-element canvas')]
      .filter((c) => c.width > 100 && c.height > 100 && c.getBoundingClientRect().width > 100);
    canvases.sort((a, b) => b.width * b.height - a.width * a.height);
    const canvas = canvases[0];
    if (!canvas) return null;
    const ctx = canvas.getContext('2d');
    if (!ctx) return { error: 'not a 2D canvas' };
    const { width, height } = canvas;
    const data = ctx.getImageData(0, 0, width, height).data;
    const levels = new Set();
    let hash = 2166136261;
    let lit = 0;
    let samples = 0;
    for (let y = 0; y < height; y += 3) {
      for (let x = 0; x < width; x += 3) {
        const i = (y * width + x) * 4;
        levels.add(data[i]);
        if (data[i] > 16) lit++;
        samples++;
        hash = Math.imul(hash ^ data[i], 16777619) >>> 0;
      }
    }
    return { width, height, levels: levels.size, lit: lit / samples, hash };
  });
}

/** Waits (bounded) for a viewport canvas with an image: many grey levels, a good part lit. */
async function waitForImage(page, label, { other } = {}) {
  const deadline = Date.now() + WAIT_MS;
  let last = null;
  for (;;) {
    last = await canvasPixels(page);
    if (last && !last.error && last.levels >= 16 && last.lit > 0.05 && (other === undefined || last.hash !== other)) return last;
    if (Date.now() > deadline) throw new Error(`${label}: no image in a viewport canvas within ${WAIT_MS / 1000} s (last sample: ${JSON.stringify(last)})`);
    await page.waitForTimeout(250);
  }
}

/** The viewport's slice indicator, e.g. "(1/12)": [current, total], or null. */
async function sliceIndicator(page) {
  const text = await page.locator('body').innerText();
  const m = text.match(/\((\d+)\s*\/\s*(\d+)\)/);
  return m ? [Number(m[1]), Number(m[2])] : null;
}

/** OHIF's first-visit tour covers the viewport: skipped when it shows. */
async function skipTour(page) {
  const skip = page.getByRole('button', { name: /skip all/i }).or(page.getByText(/^skip all$/i));
  try {
    await skip.first().waitFor({ state: 'visible', timeout: 5_000 });
    await skip.first().click();
  } catch {
    // no tour this time
  }
}

/** The first part of a multipart/related body. */
function firstPart(body, contentType) {
  const boundary = contentType.match(/boundary="?([^";]+)"?/)[1];
  const start = body.indexOf('\r\n\r\n', body.indexOf(`--${boundary}`)) + 4;
  return body.subarray(start, body.indexOf(`\r\n--${boundary}`, start));
}

/**
 * Stores a JPEG-LS copy of the CR as a new series of its study (DCMTK's dcmcjpls and dcmodify,
 * which tests/setup installs): a compressed image, decoded in the browser by OHIF's
 * WebAssembly codec. Answers its SOP Instance UID.
 */
async function storeJpegLsCopy(base, key, cr) {
  const dir = await mkdtemp(path.join(tmpdir(), 'cloudfilm-ohif-'));
  try {
    const original = cr.instances[0];
    const r = await fetch(`${base}/dicom-web/studies/${cr.uid}/series/${original.series}/instances/${original.sop}`, {
      headers: { authorization: `Bearer ${key}`, accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' },
      signal: AbortSignal.timeout(30_000),
    });
    assert.equal(r.status, 200);
    const body = Buffer.from(await r.arrayBuffer());
    await writeFile(path.join(dir, 'cr.dcm'), firstPart(body, r.headers.get('content-type')));
    const run = (cmd, args) => execFileSync(cmd, args, { cwd: dir, timeout: 60_000, stdio: ['ignore', 'ignore', 'pipe'] });
    run('dcmcjpls', ['cr.dcm', 'jls.dcm']);
    run('dcmodify', ['-nb', '-gse', '-gin', '-m', '(0008,103E)=PA JPEG-LS', '-m', '(0020,0011)=2', 'jls.dcm']);
    const file = await readFile(path.join(dir, 'jls.dcm'));
    const boundary = 'cloudfilm-ohif-test';
    const stow = await fetch(`${base}/dicom-web/studies`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${key}`,
        accept: 'application/dicom+json',
        'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}`,
      },
      body: Buffer.concat([
        Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`),
        file,
        Buffer.from(`\r\n--${boundary}--\r\n`),
      ]),
      signal: AbortSignal.timeout(60_000),
    });
    const answer = await stow.json();
    assert.equal(stow.status, 200, 'the JPEG-LS copy was stored');
    return answer['00081199'].Value[0]['00081155'].Value[0];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A GET without the browser: { status, headers, body } (body as text). */
async function get(base, urlPath, headers = {}) {
  const r = await fetch(base + urlPath, { headers, redirect: 'manual', signal: AbortSignal.timeout(30_000) });
  return { status: r.status, headers: r.headers, body: await r.text() };
}

/** A GET of a raw request target (not normalized, unlike fetch's): { status, body }. */
function rawGet(base, target) {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: target, method: 'GET', timeout: 30_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${target} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

describe('OHIF on /dicom-web', { skip: !existsSync(path.join(DIST, 'index.html')) && 'no @ohif/app dist (run tests/setup)' }, () => {
  let server, browser, key, keyId, studies;

  before(async () => {
    server = await startDemo({ name: 'ohif', args: ['--ohif', DIST], env: { CLOUDFILM_HTTP__CORS_ORIGINS: CORS_ORIGIN } });
    key = server.stdout.match(/^API key:\s+(\S+)\s*$/m)?.[1];
    assert.ok(key, 'the demo printed its API key');
    keyId = key.slice(0, key.indexOf('.'));
    // The demo's studies by accession number: their UIDs, series and instance numbers.
    const auth = { authorization: `Bearer ${key}`, accept: 'application/dicom+json' };
    const list = JSON.parse((await get(server.base, '/dicom-web/studies?includefield=00080050', auth)).body);
    studies = {};
    for (const [name, spec] of Object.entries(STUDIES)) {
      const study = list.find((s) => s['00080050']?.Value?.[0] === spec.accession);
      assert.ok(study, `the demo holds the ${name} study`);
      const uid = study['0020000D'].Value[0];
      const metadata = JSON.parse((await get(server.base, `/dicom-web/studies/${uid}/metadata`, auth)).body);
      const instances = metadata.map((m) => ({
        series: m['0020000E'].Value[0],
        sop: m['00080018'].Value[0],
        number: m['00200013']?.Value?.[0],
        frames: Number(m['00280008']?.Value?.[0] ?? 1),
        description: m['0008103E']?.Value?.[0],
      }));
      studies[name] = { ...spec, uid, instances };
    }
    studies.cr.jpegLs = await storeJpegLsCopy(server.base, key, studies.cr);
    browser = await launchBrowser({ args: [LOOPBACK_ONLY] });
  }, HOOK_TIMEOUT);

  after(async () => {
    await browser?.close();
    await server?.stop();
  }, HOOK_TIMEOUT);

  /** A desktop context, with the organization's credential unless told otherwise. */
  async function desktop({ credentials = true } = {}) {
    const context = await browser.newContext({
      viewport: { width: 1440, height: 900 },
      locale: 'en-US',
      ...(credentials ? { httpCredentials: { username: keyId, password: key, origin: server.base } } : {}),
    });
    context.setDefaultTimeout(WAIT_MS);
    context.setDefaultNavigationTimeout(WAIT_MS);
    const seen = watch(context, server.base);
    const page = await context.newPage();
    watchPage(page, seen);
    return { context, page, seen };
  }

  function assertClean(seen, label) {
    assert.deepEqual(seen.problems, [], `${label}: failed or foreign requests, CSP refusals or page errors`);
  }

  test('/ohif/ serves the dist with its own policy, types, app routes and no way out', VIEWER_TIMEOUT, async () => {
    const base = server.base;
    const redirect = await get(base, '/ohif');
    assert.equal(redirect.status, 308);
    assert.equal(redirect.headers.get('location'), '/ohif/');

    const index = await get(base, '/ohif/');
    assert.equal(index.status, 200);
    assert.match(index.headers.get('content-type'), /^text\/html/);
    const csp = index.headers.get('content-security-policy');
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(csp, /script-src 'self';/);
    assert.doesNotMatch(csp, /'unsafe-eval'|script-src[^;]*'unsafe-inline'|\*|https?:/);
    assert.equal(index.headers.get('x-content-type-options'), 'nosniff');
    // No inline script; every reference stays under /ohif/.
    for (const m of index.body.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)) {
      assert.match(m[1], /src="\/ohif\//, 'every script is a file under /ohif/');
      assert.equal(m[2].trim(), '', 'no inline script');
    }
    for (const m of index.body.matchAll(/(?:src|href)="([^"]*)"/g)) assert.match(m[1], /^\/ohif\//, m[1]);

    const config = await get(base, '/ohif/app-config.js');
    assert.equal(config.status, 200);
    assert.match(config.headers.get('content-type'), /^text\/javascript/);
    assert.match(config.body, /routerBasename: '\/ohif'/);
    assert.match(config.body, /window\.location\.origin \+ '\/dicom-web'/);
    assert.doesNotMatch(config.body, /https?:\/\//, 'nothing from elsewhere');
    assert.ok(!config.body.includes(key) && !config.body.includes(keyId), 'no credential in the configuration');

    // Content types of each kind of file the dist has.
    const files = readdirSync(DIST);
    const pick = (re) => files.find((f) => re.test(f));
    const kinds = [
      [pick(/^app\.bundle\.[0-9a-f]+\.js$/), /^text\/javascript/],
      [pick(/\.css$/), /^text\/css/],
      [pick(/\.wasm$/), /^application\/wasm$/],
      ['manifest.json', /^application\/json$/],
      [pick(/\.svg$/), /^image\/svg\+xml$/],
      [pick(/\.woff2$/), /^font\/woff2$/],
      ['assets/favicon-16x16.png', /^image\/png$/],
      ['assets/favicon.ico', /^image\/x-icon$/],
    ];
    for (const [file, type] of kinds) {
      assert.ok(file, `the dist has a file for ${type}`);
      const r = await fetch(`${base}/ohif/${file}`, { signal: AbortSignal.timeout(60_000) });
      assert.equal(r.status, 200, file);
      assert.match(r.headers.get('content-type'), type, file);
      assert.equal(r.headers.get('content-security-policy'), csp, `${file} carries the viewer's policy (workers take theirs from it)`);
      const body = Buffer.from(await r.arrayBuffer());
      if (r.headers.get('content-length')) assert.equal(Number(r.headers.get('content-length')), body.length, file);
      if (/app\.bundle.*\.js$/.test(file)) {
        assert.ok(body.includes('__webpack_require__.p = "/ohif/";'), 'the chunks load from /ohif/');
      }
      if (/\.css$/.test(file)) assert.ok(!/url\(\/(?!ohif\/)/.test(body.toString()), `${file}: its urls are under /ohif/`);
    }

    // A worker's script sets the worker's policy: eval for the decoders' glue, there only.
    const worker = pick(/^histogram-worker\.bundle\.[0-9a-f]+\.js$/) ?? pick(/^compute\.bundle\.[0-9a-f]+\.js$/);
    const asWorker = await fetch(`${base}/ohif/${worker}`, { headers: { 'sec-fetch-dest': 'worker' }, signal: AbortSignal.timeout(30_000) });
    const workerCsp = asWorker.headers.get('content-security-policy');
    assert.match(workerCsp, /script-src 'self' 'unsafe-eval' 'wasm-unsafe-eval';/);
    assert.match(workerCsp, /connect-src 'self'/);
    await asWorker.arrayBuffer();
    assert.doesNotMatch(csp, /unsafe-eval/, 'the page itself evaluates nothing');

    // App routes answer the application; missing files do not.
    for (const route of ['/ohif/viewer?StudyInstanceUIDs=1.2.3', '/ohif/viewer/dicomweb', '/ohif/local']) {
      const r = await get(base, route);
      assert.equal(r.status, 200, route);
      assert.match(r.body, /<div id="root">/, route);
    }
    for (const missing of ['/ohif/missing.js', '/ohif/assets/missing.png', '/ohif/app-config.json']) {
      assert.equal((await get(base, missing)).status, 404, missing);
    }

    // Nothing outside the directory, however the path is spelled.
    for (const target of [
      '/ohif/../Cargo.toml',
      '/ohif/..%2f..%2fpackage.json',
      '/ohif/%2e%2e/%2e%2e/package.json',
      '/ohif/assets/..%2f..%2f..%2fpackage.json',
      '/ohif/.%2e/package.json',
      '/ohif/..%5c..%5cpackage.json',
      '/ohif/%2fetc%2fpasswd',
      '/ohif//etc/passwd',
      '/ohif/.well-known/x.js',
    ]) {
      const r = await rawGet(base, target);
      assert.ok(r.status === 404 || r.status === 400 || (r.status === 200 && r.body.includes('<div id="root">')), `${target}: ${r.status}`);
      assert.ok(!r.body.includes('"dependencies"') && !r.body.includes('root:'), `${target} leaked a file`);
    }

    // The rest of the site keeps its strict policy.
    const portal = await get(base, '/');
    assert.doesNotMatch(portal.headers.get('content-security-policy'), /wasm-unsafe-eval|unsafe-inline/);
    const api = await get(base, '/dicom-web/studies');
    assert.equal(api.headers.get('content-security-policy'), "default-src 'none'; frame-ancestors 'none'");
  });

  test('CORS: a configured origin is answered (preflight too), any other gets no Access-Control-* header', VIEWER_TIMEOUT, async () => {
    const preflight = (origin) => fetch(`${server.base}/dicom-web/studies`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization,accept' },
      signal: AbortSignal.timeout(30_000),
    });
    const allowed = await preflight(CORS_ORIGIN);
    assert.ok(allowed.status === 200 || allowed.status === 204, `preflight status ${allowed.status}`);
    assert.equal(allowed.headers.get('access-control-allow-origin'), CORS_ORIGIN);
    assert.equal(allowed.headers.get('access-control-allow-credentials'), 'true');
    assert.match(allowed.headers.get('access-control-allow-headers') ?? '', /authorization/i);
    assert.match(allowed.headers.get('access-control-allow-methods') ?? '', /GET/);
    const actual = await fetch(`${server.base}/dicom-web/studies`, {
      headers: { origin: CORS_ORIGIN, authorization: `Bearer ${key}`, accept: 'application/dicom+json' },
      signal: AbortSignal.timeout(30_000),
    });
    assert.equal(actual.status, 200);
    assert.equal(actual.headers.get('access-control-allow-origin'), CORS_ORIGIN);
    await actual.arrayBuffer();

    for (const origin of ['http://127.0.0.1:8', 'null', 'http://evil.example']) {
      for (const r of [
        await preflight(origin),
        await fetch(`${server.base}/dicom-web/studies`, {
          headers: { origin, authorization: `Bearer ${key}`, accept: 'application/dicom+json' },
          signal: AbortSignal.timeout(30_000),
        }),
      ]) {
        const cors = [...r.headers.keys()].filter((h) => h.startsWith('access-control-'));
        assert.deepEqual(cors, [], `no CORS headers for ${origin}`);
        await r.arrayBuffer();
      }
    }
    // OHIF under /ohif/ is same-origin: its pages are not under CORS at all.
    const page = await fetch(`${server.base}/ohif/`, { headers: { origin: CORS_ORIGIN }, signal: AbortSignal.timeout(30_000) });
    assert.equal(page.headers.get('access-control-allow-origin'), null);
    await page.arrayBuffer();
  });

  test('without credentials: /ohif/ loads, /dicom-web answers 401 with the Basic challenge', VIEWER_TIMEOUT, async () => {
    const { context, page, seen } = await desktop({ credentials: false });
    try {
      const asked = page.waitForRequest((r) => new URL(r.url()).pathname === '/dicom-web/studies', { timeout: WAIT_MS });
      const response = await page.goto(`${server.base}/ohif/`);
      assert.equal(response.status(), 200);
      await asked; // the study list asks for the studies (the browser now waits for the user's credential)
      // The answer that makes the browser ask, as the page sees it when it sends no credential.
      const answer = await page.evaluate(async () => {
        const r = await fetch('/dicom-web/studies', { credentials: 'omit', headers: { accept: 'application/dicom+json' } });
        return { status: r.status, challenge: r.headers.get('www-authenticate'), body: (await r.text()).slice(0, 200) };
      });
      assert.equal(answer.status, 401);
      assert.match(answer.challenge ?? '', /Basic realm="cloudfilm"/);
      assert.doesNotMatch(answer.body, /ZHANG|2\.25\./, 'nothing of a study in the refusal');
      await shot(page, 'ohif-no-credentials', { fullPage: false });
      const others = seen.problems.filter((p) => !/^401 for GET http:\/\/127\.0\.0\.1:\d+\/dicom-web\//.test(p));
      assert.deepEqual(others, [], 'the viewer itself loaded whole');
      assert.ok(seen.requests.some((r) => /\/ohif\/app\.bundle\./.test(r.url())), 'the application loaded');
    } finally {
      await context.close();
    }
  });

  test('the study list shows the demo studies with patient name and date', VIEWER_TIMEOUT, async () => {
    const { context, page, seen } = await desktop();
    try {
      await page.goto(`${server.base}/ohif/`);
      for (const spec of Object.values(STUDIES)) {
        const row = page.locator('tr, [role="row"]').filter({ hasText: spec.description }).first();
        await row.waitFor({ state: 'visible' });
        const text = await row.innerText();
        assert.ok(/ZHANG/i.test(text), `the ${spec.accession} row shows the patient's name`);
        assert.ok(text.includes(spec.date), `the ${spec.accession} row shows the study date`);
        assert.ok(text.includes(spec.accession), `the ${spec.accession} row shows the accession number`);
      }
      await shot(page, 'ohif-study-list', { fullPage: false });
      assertClean(seen, 'study list');
    } finally {
      await context.close();
    }
  });

  test('the CT opens in the viewer with an image, and scrolling shows further slices', VIEWER_TIMEOUT, async () => {
    const { context, page, seen } = await desktop();
    const ct = studies.ct;
    try {
      await page.goto(`${server.base}/ohif/viewer?StudyInstanceUIDs=${ct.uid}`);
      await skipTour(page);
      const first = await waitForImage(page, 'CT');
      const before = await sliceIndicator(page);
      assert.ok(before, 'the viewport shows its slice indicator');
      const slices = ct.instances.filter((i) => i.description === 'AXIAL 5mm');
      assert.equal(before[1], slices.length, 'the viewport holds every CT slice');
      await shot(page, 'ohif-ct', { fullPage: false });

      // Scroll with the mouse wheel over the viewport: another slice, other pixels.
      const box = await page.locator('canvas.cornerstone-canvas').first().boundingBox();
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      for (let i = 0; i < 3; i++) {
        await page.mouse.wheel(0, 120);
        await page.waitForTimeout(150);
      }
      let after = before;
      const deadline = Date.now() + WAIT_MS;
      while (after[0] === before[0] && Date.now() < deadline) {
        await page.waitForTimeout(200);
        after = (await sliceIndicator(page)) ?? before;
      }
      assert.notEqual(after[0], before[0], 'the wheel changed the slice');
      const scrolled = await waitForImage(page, 'CT after scrolling', { other: first.hash });
      assert.notEqual(scrolled.hash, first.hash);
      await shot(page, 'ohif-ct-scrolled', { fullPage: false });

      // Each slice OHIF showed or prefetched came from WADO-RS frames, as OHIF asks for them.
      const fetched = new Set(seen.frames.map((f) => f.path.split('/instances/')[1]?.split('/')[0]));
      const shownFetched = slices.filter((s) => fetched.has(s.sop)).length;
      assert.ok(shownFetched >= 2, `frames of several CT slices were fetched (${shownFetched})`);
      assert.ok(seen.frames.every((f) => /multipart\/related/.test(f.accept)), 'frames are asked for as multipart');

      // The study's report (a structured report) opens too.
      await page.getByText('Report', { exact: true }).first().dblclick();
      await page.getByText(/No abnormality|Both lungs are clear/).first().waitFor({ state: 'visible' });
      await shot(page, 'ohif-ct-sr', { fullPage: false });
      assertClean(seen, 'CT');
    } finally {
      await context.close();
    }
  });

  test('the MR, its multi-frame cine, the CR and a JPEG-LS copy of it show images', VIEWER_TIMEOUT, async () => {
    const { context, page, seen } = await desktop();
    const { mr, cr } = studies;
    try {
      await page.goto(`${server.base}/ohif/viewer?StudyInstanceUIDs=${mr.uid}`);
      await skipTour(page);
      await waitForImage(page, 'MR');
      await shot(page, 'ohif-mr', { fullPage: false });

      // The cine: one instance of 8 frames, opened from the study browser.
      const cine = mr.instances.find((i) => i.description === 'CINE');
      assert.ok(cine && cine.frames > 1, 'the MR study has a multi-frame instance');
      const before = await canvasPixels(page);
      await page.getByText('CINE', { exact: true }).first().dblclick();
      await waitForImage(page, 'MR cine', { other: before.hash });
      const deadline = Date.now() + WAIT_MS;
      let indicator = await sliceIndicator(page);
      while (!(indicator && indicator[1] === cine.frames) && Date.now() < deadline) {
        await page.waitForTimeout(200);
        indicator = await sliceIndicator(page);
      }
      assert.deepEqual(indicator?.[1], cine.frames, 'the viewport holds the cine\'s frames');
      const shown = await canvasPixels(page);
      const box = await page.locator('canvas.cornerstone-canvas').first().boundingBox();
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      await page.mouse.wheel(0, 120);
      await waitForImage(page, 'MR cine, next frame', { other: shown.hash });
      const cineFrames = seen.frames.filter((f) => f.path.includes(`/instances/${cine.sop}/frames/`));
      assert.ok(new Set(cineFrames.map((f) => f.path)).size >= 2, 'several frames of the cine were fetched');
      await shot(page, 'ohif-mr-cine', { fullPage: false });

      await page.goto(`${server.base}/ohif/viewer?StudyInstanceUIDs=${cr.uid}`);
      await skipTour(page);
      await waitForImage(page, 'CR');
      await shot(page, 'ohif-cr', { fullPage: false });

      // The JPEG-LS copy: its frame goes out as stored and OHIF's wasm decoder draws it (its
      // thumbnail may have fetched it already).
      const crShown = await canvasPixels(page);
      await page.getByText('PA JPEG-LS', { exact: true }).first().dblclick();
      await page.locator('.viewport-element, [data-viewportid]').getByText('PA JPEG-LS').first().waitFor({ state: 'visible' }).catch(() => {});
      await waitForImage(page, 'CR as JPEG-LS').catch(async (e) => {
        await shot(page, 'ohif-cr-jpeg-ls-failed', { fullPage: false });
        throw new Error(`${e.message}; problems so far: ${JSON.stringify(seen.problems)}`);
      });
      const jls = seen.frames.filter((f) => f.path.includes(`/instances/${cr.jpegLs}/frames/`));
      assert.ok(jls.length > 0, 'the JPEG-LS frame was fetched');
      assert.ok(seen.requests.some((r) => /\/ohif\/[^/]+\.wasm$/.test(new URL(r.url()).pathname)), 'a WebAssembly decoder was loaded');
      assert.ok(crShown, 'the CR was drawn before');
      await shot(page, 'ohif-cr-jpeg-ls', { fullPage: false });
      assertClean(seen, 'MR and CR');
    } finally {
      await context.close();
    }
  });
});
