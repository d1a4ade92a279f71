// The patient portal: a small hash router over the patient API (API.md). Screens: sign in,
// consent, family members (add, first link), exams, exam detail with report, viewer, shares
// (QR code, list, revoke), downloads (after a step-up), the access log, privacy.
// No personal value ever goes into a URL; names and numbers come masked from the server.

import { ApiError, del, get, post } from './api.js';
import { field, h, show } from './dom.js';
import { currentLang, setLang, t } from './i18n.js';
import { openViewer } from './viewer.js';

const main = document.getElementById('main');

function errorBox(error) {
  return h('p', { class: 'error', role: 'alert' }, error instanceof ApiError ? error.message : t('error'));
}

/// Runs a form's action, showing its error in the form.
function submitting(form, action) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    form.querySelector('.error')?.remove();
    const button = form.querySelector('button[type=submit]');
    if (button) button.disabled = true;
    try {
      await action(new FormData(form));
    } catch (error) {
      if (!handleAuth(error)) form.append(errorBox(error));
    } finally {
      if (button) button.disabled = false;
    }
  });
  return form;
}

/// Sends a signed-out or not-consenting visitor to the right screen.
function handleAuth(error) {
  if (!(error instanceof ApiError)) return false;
  const to = error.status === 401 ? '#/login' : error.code === 'consent_required' ? '#/consent' : null;
  if (to) go(to);
  return to !== null;
}

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

// --- screens ---

function loginScreen() {
  document.getElementById('nav').hidden = true;
  const codeForm = submitting(
    h('form', { class: 'card', hidden: true },
      field(t('login.code'), { name: 'code', inputmode: 'numeric', autocomplete: 'one-time-code', required: true, maxlength: 6 }),
      h('button', { type: 'submit', class: 'primary' }, t('login.submit'))),
    async (data) => {
      await post('/auth/login', { phone: phoneForm.phone.value, code: data.get('code') });
      go('#/');
    });
  const phoneForm = submitting(
    h('form', { class: 'card' },
      field(t('login.phone'), { name: 'phone', type: 'tel', autocomplete: 'tel', required: true }),
      h('button', { type: 'submit' }, t('login.send'))),
    async (data) => {
      await post('/auth/otp', { phone: data.get('phone') });
      codeForm.hidden = false;
      codeForm.prepend(h('p', { class: 'note' }, t('login.sent')));
      codeForm.code.focus();
    });
  show(main, h('h1', {}, t('login.title')), h('p', { class: 'lead' }, t('login.lead')), phoneForm, codeForm);
}

async function consentScreen() {
  const policy = await get('/policy');
  const form = submitting(
    h('form', { class: 'card' },
      h('pre', { class: 'policy' }, policy.text),
      h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'health', required: true }), t('consent.health')),
      h('button', { type: 'submit', class: 'primary' }, t('consent.submit'))),
    async () => {
      await post('/me/consents', { policy_version: policy.version, health_data: true });
      go('#/');
    });
  // Rights outlast a withdrawn consent: the access log and the privacy page stay open.
  const rights = h('p', { class: 'muted' }, t('consent.rights'), ' ',
    h('a', { href: '#/access' }, t('nav.access')), ' · ', h('a', { href: '#/privacy' }, t('nav.privacy')));
  show(main, h('h1', {}, t('consent.title')), form, rights);
}

async function membersScreen() {
  const [{ members }, { holders }] = await Promise.all([get('/members'), get('/me/holders')]);
  const open = (m) => m.consent === 'not_needed' || m.consent === 'given';
  const list = members.map((m) =>
    h('li', { class: 'card member' },
      h('div', {}, h('strong', {}, m.name), ' ', h('span', { class: 'tag' }, t('rel.' + m.relation))),
      h('div', { class: 'muted' }, m.id_number),
      !m.matched ? matchForm(m)
        : open(m) ? h('a', { class: 'button primary', href: `#/members/${m.id}/exams` }, t('members.exams'))
          : memberConsentForm(m)));
  const relation = h('select', { name: 'relation', id: 'relation' },
    ['self', 'child', 'parent', 'spouse', 'other'].map((r) => h('option', { value: r }, t('rel.' + r))));
  const add = submitting(
    h('form', { class: 'card' },
      h('h2', {}, t('members.add')),
      field(t('members.name'), { name: 'name', required: true, autocomplete: 'name' }),
      field(t('members.id'), { name: 'id_number', required: true, minlength: 18, maxlength: 18, autocomplete: 'off' }),
      h('label', { class: 'field', for: 'relation' }, h('span', {}, t('members.relation')), relation),
      h('button', { type: 'submit' }, t('members.add'))),
    async (data) => {
      await post('/members', { name: data.get('name'), id_number: data.get('id_number'), relation: data.get('relation') });
      route();
    });
  show(main,
    h('h1', {}, t('members.title')),
    members.length ? h('ul', { class: 'list' }, list) : h('p', { class: 'lead' }, t('members.empty')),
    ...(holders.length ? [holdersSection(holders)] : []),
    add,
    h('button', { type: 'button', class: 'link', onclick: async () => { await post('/auth/logout'); go('#/login'); } }, t('logout')));
}

function matchForm(member) {
  return submitting(
    h('form', { class: 'match' },
      h('p', { class: 'muted' }, t('members.unmatched'), ' · ', t('match.lead')),
      field(t('match.accession'), { name: 'accession_number', autocomplete: 'off' }),
      field(t('match.date'), { name: 'exam_date', type: 'date' }),
      field(t('match.org'), { name: 'organization', autocomplete: 'off' }),
      h('button', { type: 'submit' }, t('match.submit'))),
    async (data) => {
      const claim = {};
      for (const key of ['accession_number', 'exam_date', 'organization']) if (data.get(key)) claim[key] = data.get(key);
      const matched = await post(`/members/${member.id}/match`, claim);
      if (matched.consent_required) route();
      else go(`#/members/${member.id}/exams`);
    });
}

/// An adult held by this account: their exams open only with their own yes, by the code
/// sent to the phone on the hospital's record (or by their approval in their own account).
function memberConsentForm(member) {
  const form = submitting(
    h('form', { class: 'consent-member' },
      h('p', { class: 'muted' }, t('holding.needed')),
      h('button', { type: 'button', onclick: async () => {
        form.querySelector('.error')?.remove();
        try {
          await post(`/members/${member.id}/consent-request`);
          form.querySelector('.sent').textContent = t('holding.sent');
          form.code.focus();
        } catch (error) {
          if (!handleAuth(error)) form.append(errorBox(error));
        }
      } }, t('holding.send')),
      h('p', { class: 'note sent', role: 'status' }),
      field(t('holding.code'), { name: 'code', inputmode: 'numeric', autocomplete: 'off', required: true, maxlength: 6 }),
      h('button', { type: 'submit', class: 'primary' }, t('holding.confirm'))),
    async (data) => {
      await post(`/members/${member.id}/consent`, { code: data.get('code') });
      route();
    });
  return form;
}

/// Who holds the account holder in their own accounts: approve or end each at once.
function holdersSection(holders) {
  return h('section', { class: 'card holders' },
    h('h2', {}, t('holding.title')),
    h('ul', { class: 'list' }, holders.map((x) =>
      h('li', { class: 'holder' },
        h('span', {}, `${x.holder_phone} · ${t('rel.' + x.relation)} · `, h('span', { class: 'state' }, t('holding.' + x.consent))),
        x.consent === 'given'
          ? h('button', { type: 'button', class: 'danger', onclick: async () => { await del(`/me/holders/${x.id}`); route(); } }, t('holding.end'))
          : h('button', { type: 'button', onclick: async () => { await post(`/me/holders/${x.id}/approve`); route(); } }, t('holding.approve'))))));
}

async function examsScreen(memberId) {
  const { exams } = await get(`/members/${memberId}/exams`);
  const items = exams.map((e) =>
    h('li', {},
      h('a', { class: 'card exam', href: `#/exams/${e.id}` },
        h('span', { class: 'modality' }, e.modality || '—'),
        h('span', {}, h('strong', {}, e.description || e.modality), h('br'), h('span', { class: 'muted' }, `${e.date || ''} · ${e.organization}`)))));
  show(main,
    h('a', { class: 'back', href: '#/' }, '‹ ', t('back')),
    h('h1', {}, t('exams.title')),
    exams.length ? h('ul', { class: 'list' }, items) : h('p', {}, t('exams.empty')));
}

async function examScreen(examId) {
  const exam = await get(`/exams/${examId}`);
  const report = exam.report.available
    ? [exam.report.text && h('pre', { class: 'report' }, exam.report.text),
       exam.report.pdf && h('a', { href: exam.report.pdf, target: '_blank', rel: 'noopener' }, t('exam.pdf'))]
    : h('p', { class: 'muted' }, t('exam.noReport'));
  const thumbs = exam.series.map((s) =>
    h('button', { type: 'button', class: 'thumb', onclick: () => openViewer(examBase(examId), exam.series, s.id) },
      h('img', { src: `${examBase(examId)}/series/${s.id}/images/1?viewport=192,192`, alt: `${s.modality || ''} ${s.description || ''}`, loading: 'lazy' }),
      h('span', {}, `${s.modality || ''} · ${s.frames.reduce((a, b) => a + b, 0)}`)));
  show(main,
    h('a', { class: 'back', href: `#/members/${exam.member_id}/exams` }, '‹ ', t('back')),
    h('h1', {}, exam.description || exam.modality),
    h('p', { class: 'muted' }, `${exam.organization} · ${exam.date || ''} · ${exam.accession_number || ''}`),
    h('section', { class: 'card' }, h('h2', {}, t('exam.report')), report),
    h('section', { class: 'card' }, h('h2', {}, t('exam.images')), h('div', { class: 'thumbs' }, thumbs),
      exam.series.length ? h('button', { type: 'button', class: 'primary', onclick: () => openViewer(examBase(examId), exam.series, exam.series[0].id) }, t('exam.view')) : null),
    h('section', { class: 'card actions' },
      h('a', { class: 'button', href: `#/exams/${examId}/share` }, t('exam.share')),
      exam.download_allowed
        ? h('a', { class: 'button', href: `#/exams/${examId}/download` }, t('exam.download'))
        : h('p', { class: 'muted' }, t('exam.downloadOff'))));
}

const examBase = (examId) => `/api/v1/exams/${examId}`;

async function shareScreen(examId) {
  const result = h('div', { class: 'share-result' });
  const hours = h('select', { name: 'valid_hours', id: 'valid_hours' },
    [1, 24, 72, 168, 720].map((n) => h('option', { value: n, selected: n === 24 }, t('h' + n))));
  const form = submitting(
    h('form', { class: 'card' },
      h('label', { class: 'field', for: 'valid_hours' }, h('span', {}, t('share.hours')), hours),
      field(t('share.password'), { name: 'password', type: 'password', minlength: 6, required: true, autocomplete: 'new-password' }),
      h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'deidentified' }), t('share.deid')),
      h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'notify', checked: true }), t('share.notify')),
      h('button', { type: 'submit', class: 'primary' }, t('share.create'))),
    async (data) => {
      const share = await post(`/exams/${examId}/shares`, {
        valid_hours: Number(data.get('valid_hours')),
        password: data.get('password'),
        deidentified: data.get('deidentified') === 'on',
        notify: data.get('notify') === 'on',
      });
      form.reset();
      const copy = h('button', { type: 'button', onclick: async () => { await navigator.clipboard?.writeText(share.url); copy.textContent = t('share.copied'); } }, t('share.copy'));
      result.replaceChildren(
        h('h2', {}, t('share.link')),
        share.qr_svg ? h('img', { class: 'qr', alt: 'QR', src: 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(share.qr_svg) }) : null,
        h('input', { class: 'url', readonly: true, value: share.url, 'aria-label': t('share.link') }),
        copy);
      await renderShares();
    });
  const list = h('ul', { class: 'list shares' });
  async function renderShares() {
    const { shares } = await get(`/exams/${examId}/shares`);
    list.replaceChildren(...shares.map((s) =>
      h('li', { class: 'card share' },
        h('span', { class: 'state state-' + s.state }, t('state.' + s.state)),
        h('span', {}, `${t('share.until')} ${new Date(s.expires_at).toLocaleString(currentLang() === 'zh' ? 'zh-CN' : 'en')} · ${s.views} ${t('share.views')}`),
        s.state === 'revoked' || s.state === 'expired' ? null
          : h('button', { type: 'button', class: 'danger', onclick: async () => { await del(`/shares/${s.id}`); await renderShares(); } }, t('share.revoke')))));
  }
  show(main, h('a', { class: 'back', href: `#/exams/${examId}` }, '‹ ', t('back')), h('h1', {}, t('share.title')), form, result, h('h2', {}, t('share.list')), list);
  await renderShares();
}

async function downloadScreen(examId) {
  const box = h('div', { class: 'card' });
  async function create() {
    try {
      const link = await post(`/exams/${examId}/downloads`);
      box.replaceChildren(h('p', {}, `${t('download.ready')} ${link.code_sent_to}.`), h('a', { class: 'button primary', href: link.url }, t('download.open')));
    } catch (error) {
      if (error.code !== 'step_up_required') throw error;
      box.replaceChildren(stepUpForm(create));
    }
  }
  show(main, h('a', { class: 'back', href: `#/exams/${examId}` }, '‹ ', t('back')), h('h1', {}, t('download.title')), box);
  await create();
}

function stepUpForm(then) {
  const form = submitting(
    h('form', {},
      h('p', {}, t('download.stepup')),
      h('button', { type: 'button', onclick: async () => { await post('/auth/step-up/otp'); form.code.focus(); } }, t('download.sendCode')),
      field(t('login.code'), { name: 'code', inputmode: 'numeric', autocomplete: 'one-time-code', required: true, maxlength: 6 }),
      h('button', { type: 'submit', class: 'primary' }, t('download.confirm'))),
    async (data) => {
      await post('/auth/step-up', { code: data.get('code') });
      await then();
    });
  return form;
}

async function accessScreen() {
  const [{ entries }, { transfers }] = await Promise.all([get('/me/access-log'), get('/me/transfers')]);
  const when = (at) => new Date(at).toLocaleString(currentLang() === 'zh' ? 'zh-CN' : 'en');
  show(main,
    h('h1', {}, t('access.title')),
    entries.length
      ? h('ul', { class: 'list log' }, entries.map((e) => h('li', { class: 'card' }, h('strong', {}, e.who), h('br'), `${e.what} · ${e.object}`, h('br'), h('span', { class: 'muted' }, `${when(e.at)} · ${e.client_ip || ''}`))))
      : h('p', {}, t('access.empty')),
    h('h2', {}, t('access.transfers')),
    h('ul', { class: 'list log' }, transfers.map((x) => h('li', { class: 'card' }, `${x.sender} → ${x.receiver}`, h('br'), `${x.category}: ${x.result}`, h('br'), h('span', { class: 'muted' }, when(x.at))))));
}

async function privacyScreen() {
  const [policy, { requests }] = await Promise.all([get('/policy'), get('/me/requests')]);
  const status = h('p', { role: 'status' });
  const exportBox = h('div', {},
    h('button', { type: 'button', class: 'primary', onclick: () => exportBox.replaceChildren(stepUpForm(async () => {
      exportBox.replaceChildren(h('a', { class: 'button primary', href: '/api/v1/me/export', download: 'cloudfilm-export.zip' }, t('privacy.download')));
    })) }, t('privacy.export')));
  const kind = h('select', { name: 'kind', id: 'kind' },
    ['access', 'copy', 'correction', 'deletion', 'withdraw_consent', 'access_log'].map((k) => h('option', { value: k }, t('kind.' + k))));
  const form = submitting(
    h('form', {},
      h('label', { class: 'field', for: 'kind' }, h('span', {}, t('privacy.kind')), kind),
      h('label', { class: 'field', for: 'detail' }, h('span', {}, t('privacy.detail')), h('textarea', { name: 'detail', id: 'detail', maxlength: 2000, rows: 3 })),
      h('button', { type: 'submit' }, t('privacy.submit'))),
    async (data) => {
      await post('/me/requests', { kind: data.get('kind'), detail: data.get('detail') || '' });
      route();
    });
  show(main,
    h('h1', {}, t('privacy.title')),
    h('section', { class: 'card' }, h('h2', {}, t('privacy.export')), h('p', { class: 'muted' }, t('privacy.exportLead')), exportBox),
    h('section', { class: 'card' }, h('h2', {}, t('privacy.newRequest')), form),
    h('h2', {}, t('privacy.requests')),
    h('ul', { class: 'list requests' }, requests.map((r) => h('li', { class: 'card' },
      h('strong', {}, t('kind.' + r.kind)), ' · ', t('status.' + r.status) || r.status, ' · ', `${t('privacy.due')} ${r.due_date}`))),
    h('pre', { class: 'policy card' }, policy.text),
    h('button', { type: 'button', class: 'danger', onclick: async () => { await del('/me/consents/health_data'); status.textContent = t('privacy.withdrawn'); } }, t('privacy.withdraw')),
    status);
}

// --- routing ---

const ROUTES = [
  [/^#\/login$/, loginScreen, false],
  [/^#\/consent$/, consentScreen, false],
  [/^#\/members\/([0-9a-f]+)\/exams$/, examsScreen, true],
  [/^#\/exams\/([0-9a-f]{32})$/, examScreen, true],
  [/^#\/exams\/([0-9a-f]{32})\/share$/, shareScreen, true],
  [/^#\/exams\/([0-9a-f]{32})\/download$/, downloadScreen, true],
  [/^#\/access$/, accessScreen, true],
  [/^#\/privacy$/, privacyScreen, true],
  [/^#?\/?$/, membersScreen, true],
];

async function route() {
  const hash = location.hash || '#/';
  const [pattern, screen, signedIn] = ROUTES.find(([p]) => p.test(hash)) || ROUTES[ROUTES.length - 1];
  document.getElementById('nav').hidden = !signedIn;
  main.replaceChildren(h('p', { class: 'muted' }, t('loading')));
  try {
    await screen(...hash.match(pattern).slice(1));
  } catch (error) {
    if (!handleAuth(error)) show(main, h('h1', {}, t('error')), errorBox(error));
  }
}

const langButton = document.getElementById('lang');
langButton.addEventListener('click', () => {
  setLang(currentLang() === 'zh' ? 'en' : 'zh');
  langButton.textContent = currentLang() === 'zh' ? 'EN' : '中文';
  route();
});
setLang(currentLang());
langButton.textContent = currentLang() === 'zh' ? 'EN' : '中文';
window.addEventListener('hashchange', route);
route();
