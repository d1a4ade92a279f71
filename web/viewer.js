// The image viewer: one canvas, a strip of series, slices by swipe / wheel / keys / slider,
// window-level by drag and by presets (rendered by the server at the asked window, so every
// transfer syntax looks the same), zoom and pan (pinch on touch), reset, multi-frame images
// as slices. The first image shows at once; the rest of the series loads in the background.

import { h } from './dom.js';
import { t } from './i18n.js';

const PRESETS = { soft: [40, 400], lung: [-600, 1500], bone: [300, 1500], brain: [40, 80] };
const FALLBACK = { CT: [40, 400], MR: [600, 1200], CR: [2048, 4096], DX: [2048, 4096] };
const PRELOAD_AT_ONCE = 4;

export function openViewer(base, allSeries, seriesId) {
  const canvas = h('canvas', { class: 'view', tabindex: '0', 'aria-label': t('exam.images') });
  const counter = h('output', { class: 'counter', 'aria-live': 'polite' });
  const slider = h('input', { type: 'range', min: 1, value: 1, class: 'slider', 'aria-label': 'slice' });
  const windowLabel = h('output', { class: 'window' });
  const tools = {};
  const toolButton = (name, label) => (tools[name] = h('button', { type: 'button', 'aria-pressed': 'false', onclick: () => setTool(name) }, label));
  const overlay = h('div', { class: 'viewer', role: 'dialog', 'aria-modal': 'true' },
    h('div', { class: 'viewer-top' },
      h('div', { class: 'strip' }, allSeries.map((s) =>
        h('button', { type: 'button', class: 'strip-item', 'data-series': s.id, onclick: () => selectSeries(s.id) },
          h('img', { src: `${base}/series/${s.id}/images/1?viewport=96,96`, alt: `${s.modality || ''} ${s.number ?? ''}` }),
          h('span', {}, `${s.modality || ''} ${s.frames.reduce((a, b) => a + b, 0)}`)))),
      h('button', { type: 'button', class: 'close', onclick: close }, t('viewer.close'))),
    canvas,
    h('div', { class: 'viewer-bottom' },
      h('div', { class: 'row' }, counter, slider, windowLabel),
      h('div', { class: 'row tools' },
        toolButton('slice', '⇅'), toolButton('window', t('viewer.wl')), toolButton('pan', '✥'),
        Object.keys(PRESETS).map((p) => h('button', { type: 'button', 'data-preset': p, onclick: () => setWindow(...PRESETS[p]) }, t('preset.' + p))),
        h('button', { type: 'button', onclick: reset }, t('viewer.reset')))));
  document.body.append(overlay);
  document.body.classList.add('viewing');

  const ctx = canvas.getContext('2d');
  const cache = new Map();
  let series, slices, index, win, zoom, panX, panY, tool = 'slice', shown = null, pending = null;

  function selectSeries(id) {
    series = allSeries.find((s) => s.id === id) || allSeries[0];
    slices = series.frames.flatMap((frames, i) => Array.from({ length: frames }, (_, f) => ({ image: i + 1, frame: f + 1, multi: frames > 1 })));
    slider.max = slices.length;
    for (const b of overlay.querySelectorAll('.strip-item')) b.classList.toggle('current', b.dataset.series === series.id);
    index = 0;
    reset();
  }

  function defaultWindow() {
    if (series.window) return [series.window.center, series.window.width];
    return FALLBACK[series.modality] || [128, 256];
  }

  function reset() {
    [zoom, panX, panY] = [1, 0, 0];
    win = defaultWindow();
    cache.clear();
    show();
    preload();
  }

  const urlOf = (slice) =>
    `${base}/series/${series.id}/images/${slice.image}?window=${Math.round(win[0])},${Math.max(1, Math.round(win[1]))}` +
    (slice.multi ? `&frame=${slice.frame}` : '');

  function load(slice) {
    const url = urlOf(slice);
    if (!cache.has(url)) {
      const img = new Image();
      img.decoding = 'async';
      const ready = new Promise((resolve) => { img.onload = () => resolve(img); img.onerror = () => resolve(null); });
      img.src = url;
      cache.set(url, ready);
    }
    return cache.get(url);
  }

  async function show() {
    const slice = slices[index];
    counter.textContent = `${index + 1} / ${slices.length}`;
    slider.value = index + 1;
    windowLabel.textContent = `W ${Math.round(win[1])} L ${Math.round(win[0])}`;
    const wanted = urlOf(slice);
    pending = wanted;
    const img = await load(slice);
    if (img && pending === wanted) {
      shown = img;
      canvas.dataset.shown = wanted.slice(wanted.indexOf('/series/'));
      draw();
    }
  }

  /// Loads the series at the current window, a few images at a time, nearest first.
  async function preload() {
    const startWindow = win.join();
    const order = slices.map((_, i) => i).sort((a, b) => Math.abs(a - index) - Math.abs(b - index));
    const queue = order.slice(1);
    const worker = async () => {
      while (queue.length && win.join() === startWindow && overlay.isConnected) await load(slices[queue.shift()]);
    };
    await Promise.all(Array.from({ length: PRELOAD_AT_ONCE }, worker));
  }

  function draw() {
    const rect = canvas.getBoundingClientRect();
    const ratio = window.devicePixelRatio || 1;
    canvas.width = Math.round(rect.width * ratio);
    canvas.height = Math.round(rect.height * ratio);
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    if (!shown) return;
    const fit = Math.min(canvas.width / shown.naturalWidth, canvas.height / shown.naturalHeight) * zoom;
    const w = shown.naturalWidth * fit;
    const hgt = shown.naturalHeight * fit;
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(shown, (canvas.width - w) / 2 + panX * ratio, (canvas.height - hgt) / 2 + panY * ratio, w, hgt);
  }

  function step(by) {
    const next = Math.min(slices.length - 1, Math.max(0, index + by));
    if (next !== index) {
      index = next;
      show();
    }
  }

  let windowTimer = null;
  function setWindow(center, width) {
    win = [center, Math.max(1, width)];
    windowLabel.textContent = `W ${Math.round(win[1])} L ${Math.round(win[0])}`;
    clearTimeout(windowTimer);
    windowTimer = setTimeout(() => { show(); preload(); }, 60);
  }

  function setTool(name) {
    tool = name;
    for (const [key, button] of Object.entries(tools)) button.setAttribute('aria-pressed', String(key === name));
  }

  // Pointers: one drags with the current tool, two pinch to zoom and pan.
  const pointers = new Map();
  let last = null;
  let pinch = null;
  let sliceRest = 0;
  canvas.addEventListener('pointerdown', (e) => {
    canvas.setPointerCapture(e.pointerId);
    pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
    last = { x: e.clientX, y: e.clientY };
    pinch = null;
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!pointers.has(e.pointerId)) return;
    pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
    if (pointers.size === 2) {
      const [a, b] = [...pointers.values()];
      const distance = Math.hypot(a.x - b.x, a.y - b.y);
      const middle = { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
      if (pinch) {
        zoom = Math.min(20, Math.max(0.5, zoom * distance / pinch.distance));
        panX += middle.x - pinch.middle.x;
        panY += middle.y - pinch.middle.y;
        draw();
      }
      pinch = { distance, middle };
      return;
    }
    const dx = e.clientX - last.x;
    const dy = e.clientY - last.y;
    last = { x: e.clientX, y: e.clientY };
    if (tool === 'window') setWindow(win[0] + dy * win[1] / 200, win[1] + dx * win[1] / 100);
    else if (tool === 'pan') { panX += dx; panY += dy; draw(); }
    else {
      sliceRest += dy;
      const steps = Math.trunc(sliceRest / 12);
      if (steps) { sliceRest -= steps * 12; step(steps); }
    }
  });
  const release = (e) => { pointers.delete(e.pointerId); pinch = null; };
  canvas.addEventListener('pointerup', release);
  canvas.addEventListener('pointercancel', release);
  canvas.addEventListener('wheel', (e) => {
    e.preventDefault();
    if (e.ctrlKey) { zoom = Math.min(20, Math.max(0.5, zoom * (e.deltaY < 0 ? 1.1 : 0.9))); draw(); }
    else step(e.deltaY > 0 ? 1 : -1);
  }, { passive: false });
  slider.addEventListener('input', () => { index = Number(slider.value) - 1; show(); });

  function onKey(e) {
    const keys = {
      ArrowDown: () => step(1), ArrowRight: () => step(1), PageDown: () => step(10),
      ArrowUp: () => step(-1), ArrowLeft: () => step(-1), PageUp: () => step(-10),
      Home: () => step(-slices.length), End: () => step(slices.length),
      '+': () => { zoom = Math.min(20, zoom * 1.2); draw(); }, '-': () => { zoom = Math.max(0.5, zoom / 1.2); draw(); },
      r: reset, Escape: close,
      1: () => setWindow(...PRESETS.soft), 2: () => setWindow(...PRESETS.lung), 3: () => setWindow(...PRESETS.bone), 4: () => setWindow(...PRESETS.brain),
    };
    if (keys[e.key]) { e.preventDefault(); keys[e.key](); }
  }
  document.addEventListener('keydown', onKey);
  const resize = () => draw();
  window.addEventListener('resize', resize);

  function close() {
    document.removeEventListener('keydown', onKey);
    window.removeEventListener('resize', resize);
    overlay.remove();
    document.body.classList.remove('viewing');
  }

  setTool('slice');
  selectSeries(seriesId);
  canvas.focus();
}
