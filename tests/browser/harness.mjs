// Shared helpers of the browser tests: the real `cloudfilm demo` on free loopback ports, the
// demo patient's one-time codes from the SMS outbox file, a small API client for setting
// things up (login, consent, member, match, shares, download links), and Debian's headless
// Chromium at phone size with screenshots saved under artifacts/.
//
// Every wait is bounded; nothing here talks to anything but 127.0.0.1.
// Run: tests/setup once, then from the repository's root
//   CLOUDFILM_BIN=$PWD/target/debug/cloudfilm node --test --test-concurrency=1 tests/browser/*.test.mjs

import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ARTIFACTS = path.join(HERE, 'artifacts');
export const BIN = process.env.CLOUDFILM_BIN || '/work/main/target/debug/cloudfilm';

/** The demo patient (crates/dicom/src/synth.rs `demo_patient`). */
export const DEMO = Object.freeze({
  phone: '13800138000',
  name: '张三',
  dicomName: 'ZHANG^SAN',
  idNumber: '11010519491231002X',
  accession: 'CT20261101001',
});

/** Values that must never appear unmasked in a page, a URL or a header. */
export const PERSONAL_VALUES = Object.freeze([
  DEMO.name,
  DEMO.dicomName,
  'ZHANG SAN',
  DEMO.phone,
  DEMO.idNumber,
]);

/**
 * The backends every demo of the run uses (one story, every backend), as for the Python
 * suites: CLOUDFILM_TEST_STORAGE unset or `embedded` (SQLite, a local directory), `postgres`
 * (a scratch database per demo on the local server) or `postgres+garage` (and a bucket per
 * demo on a 3-node Garage cluster started for the run by tests/cluster/garage.py).
 */
const STORAGE = process.env.CLOUDFILM_TEST_STORAGE || 'embedded';
const POSTGRES_SERVER = process.env.CLOUDFILM_TEST_POSTGRES || 'postgres://127.0.0.1:5432/postgres';
let garage = null;

async function storageFor(name) {
  const env = {};
  const cleanups = [];
  if (STORAGE.startsWith('postgres')) {
    const db = `cloudfilm_browser_${Math.random().toString(16).slice(2, 14)}`;
    execFileSync('psql', ['-q', POSTGRES_SERVER, '-c', `CREATE DATABASE ${db}`], { timeout: 30_000 });
    env.CLOUDFILM_DATABASE = `${POSTGRES_SERVER.slice(0, POSTGRES_SERVER.lastIndexOf('/'))}/${db}`;
    cleanups.push(() => execFileSync('psql', ['-q', POSTGRES_SERVER, '-c', `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`], { timeout: 30_000 }));
  }
  if (STORAGE.endsWith('+garage')) {
    garage ??= await startGarage();
    const bucket = `cf-${name.toLowerCase().replace(/[^a-z0-9]/g, '')}-${Math.random().toString(16).slice(2, 10)}`;
    // A request the admin API refused or dropped at the connection is sent again (a node
    // under load has been seen to reset one); any other failure ends the setup, with its cause.
    const admin = async (p, body, method = 'POST') => {
      for (let attempt = 1; ; attempt++) {
        try {
          const r = await fetch(`${garage.GARAGE_ADMIN_ENDPOINTS.split(' ')[0]}${p}`, {
            method,
            headers: { authorization: `Bearer ${garage.GARAGE_ADMIN_TOKEN}`, 'content-type': 'application/json' },
            body: body === undefined ? undefined : JSON.stringify(body),
            signal: AbortSignal.timeout(30_000),
          });
          if (!r.ok) throw Object.assign(new Error(`Garage admin ${p}: ${r.status} ${await r.text()}`), { status: r.status });
          return r.json();
        } catch (e) {
          const code = e.cause?.code;
          if (attempt >= 3 || !['ECONNREFUSED', 'ECONNRESET', 'UND_ERR_SOCKET'].includes(code)) {
            throw e.cause ? new Error(`Garage admin ${p}: ${e.message} (${code ?? e.cause})`) : e;
          }
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
    };
    // Created once, even when a first try reached Garage before its connection broke.
    const createBucket = () => admin('/v2/CreateBucket', { globalAlias: bucket }).catch((e) => {
      if (e.status !== 409) throw e;
      return admin(`/v2/GetBucketInfo?globalAlias=${bucket}`, undefined, 'GET');
    });
    const made = await createBucket();
    await admin('/v2/AllowBucketKey', {
      bucketId: made.id,
      accessKeyId: garage.AWS_ACCESS_KEY_ID,
      permissions: { read: true, write: true, owner: true },
    });
    env.CLOUDFILM_BLOBS = `s3://${bucket}?endpoint=${garage.AWS_ENDPOINT_URL}&region=${garage.AWS_REGION}`;
    env.AWS_ACCESS_KEY_ID = garage.AWS_ACCESS_KEY_ID;
    env.AWS_SECRET_ACCESS_KEY = garage.AWS_SECRET_ACCESS_KEY;
  }
  return { env, cleanup: () => { for (const c of cleanups) c(); } };
}

/** A 3-node Garage cluster for the run, stopped (by its own pid) when this process exits. */
async function startGarage() {
  const child = spawn('python3', [path.join(HERE, '..', 'cluster', 'garage.py'), '--nodes', '3'], { stdio: ['ignore', 'pipe', 'inherit'] });
  process.once('exit', () => child.kill('SIGTERM'));
  let out = '';
  child.stdout.setEncoding('utf8');
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the Garage cluster did not start within 120 s:\n${out}`)), 120_000);
    child.stdout.on('data', (chunk) => {
      out += chunk;
      if (!out.includes('nodes up in')) return;
      clearTimeout(timer);
      // The cluster must not keep this process alive: it ends with it (the 'exit' hook).
      child.stdout.removeAllListeners('data');
      child.stdout.destroy();
      child.unref();
      const env = {};
      for (const m of out.matchAll(/^export (\w+)='?([^'\n]*)'?$/gm)) env[m[1]] = m[2];
      resolve(env);
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`the Garage cluster exited (${code}):\n${out}`)); });
  });
}

const START_TIMEOUT_MS = 180_000; // a debug build generates the demo studies before listening

/** Bounds for node:test: a `before` that starts the demo, and each test. */
export const HOOK_TIMEOUT = { timeout: START_TIMEOUT_MS + 60_000 };
export const TEST_TIMEOUT = { timeout: 120_000 };
const STOP_GRACE_MS = 10_000;
const HTTP_TIMEOUT_MS = 60_000;

/**
 * Starts `cloudfilm --data <tmp> demo` on free loopback ports and waits (bounded) for its
 * banner. Returns { base, url, outbox, dataDir, stdout, stderr, stop() }; call stop() in an
 * `after` hook (SIGTERM, then SIGKILL after 10 s).
 * `name` names the server log written to artifacts/<name>-server.log; `args` are added to the
 * demo command's (e.g. `['--ohif', dir]`).
 */
export async function startDemo({ name = 'demo', scale = 0.2, env = {}, args: extraArgs = [] } = {}) {
  await mkdir(ARTIFACTS, { recursive: true });
  const dataDir = await mkdtemp(path.join(tmpdir(), 'cloudfilm-browser-'));
  const storage = await storageFor(name);
  const args = ['--data', dataDir, 'demo', '--http', '127.0.0.1:0', '--dimse', '127.0.0.1:0', '--scale', String(scale), ...extraArgs];
  const child = spawn(BIN, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      // A step-up code may follow the login code at once.
      CLOUDFILM_PATIENTS__OTP__RESEND_SECS: '0',
      NO_COLOR: '1',
      ...storage.env,
      ...env,
    },
  });
  // Should this process end without calling stop(), the server does not outlive it.
  const reap = () => child.kill('SIGKILL');
  process.once('exit', reap);
  const log = createWriteStream(path.join(ARTIFACTS, `${name}-server.log`));
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => { stderr += chunk; log.write(chunk); });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let exitInfo = null;
  exited.then((info) => { exitInfo = info; });

  const banner = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`cloudfilm demo did not announce itself within ${START_TIMEOUT_MS / 1000} s; stdout so far:\n${stdout}`));
    }, START_TIMEOUT_MS);
    const check = () => {
      const url = stdout.match(/^URL:\s+(https?:\/\/127\.0\.0\.1:\d+)\/\s*$/m);
      const sms = stdout.match(/^Demo patient phone:\s+(\d+) \(one-time codes: file:(.+)\)\s*$/m);
      if (url && sms) {
        clearTimeout(timer);
        resolve({ base: url[1], phone: sms[1], outbox: sms[2] });
      }
    };
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => { stdout += chunk; log.write(chunk); check(); });
    child.once('error', (e) => { clearTimeout(timer); reject(e); });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`cloudfilm demo exited (code ${code}, signal ${signal}) before it was ready:\n${stdout}`));
    });
  });
  if (banner.phone !== DEMO.phone) throw new Error(`unexpected demo phone ${banner.phone}`);

  async function stop() {
    process.removeListener('exit', reap);
    if (exitInfo === null) {
      child.kill('SIGTERM');
      const killed = await Promise.race([exited.then(() => false), sleep(STOP_GRACE_MS).then(() => true)]);
      if (killed) {
        child.kill('SIGKILL');
        await Promise.race([exited, sleep(5_000)]);
      }
    }
    log.end();
    await rm(dataDir, { recursive: true, force: true });
    storage.cleanup();
    return exitInfo;
  }

  return { base: banner.base, url: `${banner.base}/`, outbox: banner.outbox, dataDir, stop, get stdout() { return stdout; }, get stderr() { return stderr; } };
}

/** The outbox's messages, oldest first: [{to, text, at}]. */
export async function outboxMessages(outbox) {
  let text;
  try {
    text = await readFile(outbox, 'utf8');
  } catch (e) {
    if (e.code === 'ENOENT') return [];
    throw e;
  }
  return text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
}

/** The last 6-digit code texted (the message text only, not its timestamp), or null. */
export async function lastCode(outbox) {
  const messages = await outboxMessages(outbox);
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i].text.match(/(?<!\d)(\d{6})(?!\d)/);
    if (m) return m[1];
  }
  return null;
}

/**
 * Waits (bounded) for a code in a message newer than the first `after` messages and returns
 * it: call `outboxMessages(outbox)` before the request that sends it and pass its length.
 */
export async function waitForCode(outbox, after, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const messages = await outboxMessages(outbox);
    for (let i = messages.length - 1; i >= after; i--) {
      const m = messages[i].text.match(/(?<!\d)(\d{6})(?!\d)/);
      if (m) return m[1];
    }
    if (Date.now() > deadline) throw new Error(`no new code in ${outbox} within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/**
 * The patient API as the portal would use it, with a cookie jar: cf_session and cf_csrf,
 * and the X-CSRF-Token header on every state-changing request.
 */
export class PatientApi {
  constructor(server) {
    this.server = server;
    this.base = server.base;
    this.cookies = new Map();
  }

  cookieHeader() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  keepCookies(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a));
      if (expired || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  /** Sends a request; answers { status, headers, body } (body parsed when JSON). */
  async request(method, urlPath, body, { expect } = {}) {
    const headers = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.cookies.size) headers.cookie = this.cookieHeader();
    if (method !== 'GET' && method !== 'HEAD' && this.cookies.has('cf_csrf')) {
      headers['x-csrf-token'] = this.cookies.get('cf_csrf');
    }
    const response = await fetch(this.base + urlPath, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      redirect: 'manual',
      signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
    });
    this.keepCookies(response);
    const text = await response.text();
    let parsed = text;
    if ((response.headers.get('content-type') || '').includes('json') && text) parsed = JSON.parse(text);
    const result = { status: response.status, headers: response.headers, body: parsed };
    if (expect !== undefined && response.status !== expect) {
      throw new Error(`${method} ${urlPath}: expected ${expect}, got ${response.status}: ${text.slice(0, 500)}`);
    }
    return result;
  }

  /** Logs the demo patient in with a fresh one-time code. */
  async login() {
    const before = (await outboxMessages(this.server.outbox)).length;
    await this.request('POST', '/api/v1/auth/otp', { phone: DEMO.phone }, { expect: 202 });
    const code = await waitForCode(this.server.outbox, before);
    await this.request('POST', '/api/v1/auth/login', { phone: DEMO.phone, code }, { expect: 200 });
    if (!this.cookies.has('cf_session') || !this.cookies.has('cf_csrf')) {
      throw new Error(`login set no session cookies: ${[...this.cookies.keys()]}`);
    }
  }

  /** Consents to the current privacy policy and to the processing of health data. */
  async consent() {
    const policy = await this.request('GET', '/api/v1/policy', undefined, { expect: 200 });
    await this.request('POST', '/api/v1/me/consents', { policy_version: policy.body.version, health_data: true }, { expect: 201 });
  }

  /** Adds the demo patient as "self" and matches the demo CT: the matched exam ids. */
  async addSelfAndMatch() {
    const member = await this.request('POST', '/api/v1/members', { name: DEMO.name, id_number: DEMO.idNumber, relation: 'self' }, { expect: 201 });
    this.memberId = member.body.id;
    const match = await this.request('POST', `/api/v1/members/${this.memberId}/match`, { accession_number: DEMO.accession }, { expect: 200 });
    return match.body.matched;
  }

  /** Login, consent, member, match: the exam ids (the CT first when listed). */
  async setUp() {
    await this.login();
    await this.consent();
    const matched = await this.addSelfAndMatch();
    const exams = await this.request('GET', `/api/v1/members/${this.memberId}/exams`, undefined, { expect: 200 });
    this.exams = exams.body.exams;
    const ct = this.exams.find((e) => e.accession_number && e.accession_number.includes('CT'));
    this.ctExamId = ct ? ct.id : matched[0];
    return matched;
  }

  /** A share of an exam: { id, url, expires_at }. */
  async createShare(examId, { validHours = 24, password = 'secret-pass-1', ...extra } = {}) {
    const r = await this.request('POST', `/api/v1/exams/${examId}/shares`, { valid_hours: validHours, password, ...extra }, { expect: 201 });
    return r.body;
  }

  async revokeShare(shareId) {
    return this.request('DELETE', `/api/v1/shares/${shareId}`, undefined, { expect: 204 });
  }

  /** A fresh step-up with a new code; the session cookies are replaced. */
  async stepUp() {
    const before = (await outboxMessages(this.server.outbox)).length;
    await this.request('POST', '/api/v1/auth/step-up/otp', {}, { expect: 202 });
    const code = await waitForCode(this.server.outbox, before);
    await this.request('POST', '/api/v1/auth/step-up', { code }, { expect: 200 });
  }

  /** A download link (steps up first unless told not to): { id, url, expires_at, code }. */
  async createDownload(examId, { stepUp = true } = {}) {
    if (stepUp) await this.stepUp();
    const before = (await outboxMessages(this.server.outbox)).length;
    const r = await this.request('POST', `/api/v1/exams/${examId}/downloads`, undefined, { expect: 201 });
    const code = await waitForCode(this.server.outbox, before);
    return { ...r.body, code };
  }
}

/** Debian's Chromium, headless; never a browser that Playwright would download. */
export async function launchBrowser({ args = [] } = {}) {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', ...args],
    headless: true,
    timeout: 60_000,
  });
}

/** A phone-sized context (390×844 CSS pixels at 2×, touch) with bounded default waits. */
export async function phoneContext(browser, options = {}) {
  const context = await browser.newContext({
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
    locale: 'zh-CN',
    acceptDownloads: true,
    ...options,
  });
  context.setDefaultTimeout(20_000);
  context.setDefaultNavigationTimeout(30_000);
  return context;
}

/** Saves a screenshot (the full page unless told) to artifacts/<name>.png; answers its path. */
export async function shot(page, name, { fullPage = true } = {}) {
  await mkdir(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage, timeout: 30_000 });
  return file;
}

/**
 * Records every URL a page (and its subresources) asks for, and every response, so a test
 * can check none holds a personal value.
 */
export function recordTraffic(page) {
  const traffic = { urls: [], responses: [] };
  page.on('request', (r) => traffic.urls.push(r.url()));
  page.on('response', (r) => traffic.responses.push(r));
  return traffic;
}

/** The personal values found in a text (raw and URL-decoded), with where they were. */
export function personalValuesIn(text) {
  let decoded = text;
  try { decoded = decodeURIComponent(text); } catch { /* not URL-encoded */ }
  const hay = `${text}\n${decoded}`.toUpperCase();
  return PERSONAL_VALUES.filter((v) => hay.includes(v.toUpperCase()));
}
