// Simplified Chinese by default, English by the switch in the header; the choice is kept in
// this browser only.

const STRINGS = {
  zh: {
    'nav.home': '家庭成员', 'nav.access': '访问记录', 'nav.privacy': '隐私',
    'login.title': '登录云胶片', 'login.lead': '用手机号登录，查看您和家人的检查报告与影像。',
    'login.phone': '手机号', 'login.send': '获取验证码', 'login.code': '短信验证码', 'login.submit': '登录',
    'login.sent': '验证码已发送，5 分钟内有效。',
    'consent.title': '隐私政策与授权', 'consent.health': '我同意云胶片为向我展示检查报告和影像而处理我的健康数据。',
    'consent.submit': '同意并继续',
    'consent.rights': '不同意也可以查看谁访问过您的数据、导出数据、提出删除等请求：',
    'members.title': '家庭成员', 'members.empty': '请先添加本人：姓名和身份证号需与医院记录一致。',
    'members.add': '添加成员', 'members.name': '姓名', 'members.id': '身份证号', 'members.relation': '关系',
    'rel.self': '本人', 'rel.child': '子女', 'rel.parent': '父母', 'rel.spouse': '配偶', 'rel.other': '其他',
    'members.matched': '已关联', 'members.unmatched': '待首次关联', 'members.exams': '查看检查',
    'match.title': '首次关联检查', 'match.lead': '请填写其中一次检查的检查号、检查日期或医院名称，须与医院记录一致。',
    'match.accession': '检查号', 'match.date': '检查日期', 'match.org': '医院名称', 'match.submit': '关联',
    'exams.title': '检查记录', 'exams.empty': '暂无检查。',
    'exam.report': '检查报告', 'exam.noReport': '报告尚未出具。', 'exam.pdf': '查看 PDF 报告',
    'exam.images': '影像', 'exam.view': '查看影像', 'exam.share': '分享', 'exam.download': '下载原始影像',
    'exam.downloadOff': '该医院未开放原始影像下载。',
    'share.title': '分享检查', 'share.hours': '有效期', 'share.password': '访问密码（至少 6 位）',
    'share.deid': '分享去标识化副本（不含姓名、编号、日期等）', 'share.notify': '首次被打开时短信通知我',
    'share.create': '生成分享链接', 'share.link': '分享链接', 'share.copy': '复制链接', 'share.copied': '已复制',
    'share.list': '我的分享', 'share.revoke': '撤销', 'share.views': '次查看', 'share.until': '有效至',
    'state.active': '有效', 'state.locked': '已锁定', 'state.expired': '已过期', 'state.revoked': '已撤销',
    'h1': '1 小时', 'h24': '1 天', 'h72': '3 天', 'h168': '7 天', 'h720': '30 天',
    'download.title': '下载原始影像', 'download.stepup': '为保护您的数据，请先用短信验证码确认身份。',
    'download.sendCode': '发送验证码', 'download.confirm': '确认', 'download.ready': '下载链接已生成，30 分钟内有效。安全码已发送至',
    'download.open': '打开下载页面',
    'access.title': '谁访问了我的数据', 'access.empty': '暂无访问记录。', 'access.transfers': '数据传输记录',
    'privacy.title': '隐私', 'privacy.withdraw': '撤回健康数据处理授权', 'privacy.withdrawn': '授权已撤回。',
    'privacy.export': '导出我的数据', 'privacy.exportLead': '一个压缩包：账户、成员、检查清单、访问与传输记录（JSON）及全部原始影像，附医院签名清单。',
    'privacy.download': '下载导出文件', 'privacy.requests': '我的申请', 'privacy.newRequest': '提交申请',
    'privacy.kind': '申请类型', 'privacy.detail': '说明（可选）', 'privacy.due': '截止', 'privacy.submit': '提交',
    'kind.access': '查阅', 'kind.copy': '复制/转移', 'kind.correction': '更正', 'kind.deletion': '删除',
    'kind.withdraw_consent': '撤回同意', 'kind.access_log': '访问记录', 'status.open': '处理中',
    'viewer.close': '关闭', 'viewer.reset': '复位', 'viewer.wl': '窗宽窗位', 'viewer.zoom': '缩放',
    'preset.soft': '软组织', 'preset.lung': '肺窗', 'preset.bone': '骨窗', 'preset.brain': '脑窗',
    'logout': '退出', 'back': '返回', 'error': '出错了', 'loading': '加载中…',
  },
  en: {
    'nav.home': 'Family', 'nav.access': 'Access log', 'nav.privacy': 'Privacy',
    'login.title': 'Sign in to cloudfilm', 'login.lead': "Sign in with your phone number to see your and your family's exams.",
    'login.phone': 'Phone number', 'login.send': 'Send code', 'login.code': 'Code from the text message', 'login.submit': 'Sign in',
    'login.sent': 'Code sent; it is valid for 5 minutes.',
    'consent.title': 'Privacy policy and consent', 'consent.health': 'I agree that cloudfilm processes my health data to show me my reports and images.',
    'consent.submit': 'Agree and continue',
    'consent.rights': 'Without this consent you can still see who accessed your data, export it and make requests such as deletion:',
    'members.title': 'Family members', 'members.empty': "Add yourself first: name and ID number as the hospital recorded them.",
    'members.add': 'Add member', 'members.name': 'Name', 'members.id': 'ID number', 'members.relation': 'Relation',
    'rel.self': 'Myself', 'rel.child': 'Child', 'rel.parent': 'Parent', 'rel.spouse': 'Spouse', 'rel.other': 'Other',
    'members.matched': 'Linked', 'members.unmatched': 'Not linked yet', 'members.exams': 'Exams',
    'match.title': 'Link a first exam', 'match.lead': "Give one exam's accession number, date or hospital name as the hospital recorded it.",
    'match.accession': 'Accession number', 'match.date': 'Exam date', 'match.org': 'Hospital name', 'match.submit': 'Link',
    'exams.title': 'Exams', 'exams.empty': 'No exams yet.',
    'exam.report': 'Report', 'exam.noReport': 'No report yet.', 'exam.pdf': 'Open the PDF report',
    'exam.images': 'Images', 'exam.view': 'View images', 'exam.share': 'Share', 'exam.download': 'Download original images',
    'exam.downloadOff': 'This hospital does not offer downloads of the original images.',
    'share.title': 'Share this exam', 'share.hours': 'Valid for', 'share.password': 'Password (6 characters or more)',
    'share.deid': 'Share a de-identified copy (no names, IDs or dates)', 'share.notify': 'Text me when it is first opened',
    'share.create': 'Create link', 'share.link': 'Share link', 'share.copy': 'Copy link', 'share.copied': 'Copied',
    'share.list': 'My shares', 'share.revoke': 'Revoke', 'share.views': 'views', 'share.until': 'until',
    'state.active': 'active', 'state.locked': 'locked', 'state.expired': 'expired', 'state.revoked': 'revoked',
    'h1': '1 hour', 'h24': '1 day', 'h72': '3 days', 'h168': '7 days', 'h720': '30 days',
    'download.title': 'Download original images', 'download.stepup': 'To protect your data, confirm with a new text-message code.',
    'download.sendCode': 'Send code', 'download.confirm': 'Confirm', 'download.ready': 'The download link is ready for 30 minutes. The security code went to',
    'download.open': 'Open the download page',
    'access.title': 'Who accessed my data', 'access.empty': 'No accesses yet.', 'access.transfers': 'Transfers of my data',
    'privacy.title': 'Privacy', 'privacy.withdraw': 'Withdraw consent to process health data', 'privacy.withdrawn': 'Consent withdrawn.',
    'privacy.export': 'Export my data', 'privacy.exportLead': 'One zip: account, members, exam list, access and transfer logs (JSON) and every original image, with a manifest signed by the archive.',
    'privacy.download': 'Download the export', 'privacy.requests': 'My requests', 'privacy.newRequest': 'File a request',
    'privacy.kind': 'Kind', 'privacy.detail': 'Details (optional)', 'privacy.due': 'due', 'privacy.submit': 'Submit',
    'kind.access': 'Access', 'kind.copy': 'Copy / portability', 'kind.correction': 'Correction', 'kind.deletion': 'Deletion',
    'kind.withdraw_consent': 'Withdraw consent', 'kind.access_log': 'Access log', 'status.open': 'open',
    'viewer.close': 'Close', 'viewer.reset': 'Reset', 'viewer.wl': 'Window', 'viewer.zoom': 'Zoom',
    'preset.soft': 'Soft tissue', 'preset.lung': 'Lung', 'preset.bone': 'Bone', 'preset.brain': 'Brain',
    'logout': 'Sign out', 'back': 'Back', 'error': 'Something went wrong', 'loading': 'Loading…',
  },
};

let lang = localStorage.getItem('cf_lang') === 'en' ? 'en' : 'zh';

export const t = (key) => STRINGS[lang][key] ?? key;
export const currentLang = () => lang;

export function setLang(next) {
  lang = next;
  localStorage.setItem('cf_lang', next);
  document.documentElement.lang = next === 'zh' ? 'zh-CN' : 'en';
  for (const el of document.querySelectorAll('[data-t]')) el.textContent = t(el.dataset.t);
}
