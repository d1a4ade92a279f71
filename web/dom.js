// Building the page from data without HTML strings: every value lands as text, never markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else el.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/// A labelled input.
export function field(label, attrs) {
  const id = attrs.id || 'f-' + Math.random().toString(36).slice(2);
  return h('label', { class: 'field', for: id }, h('span', {}, label), h('input', { ...attrs, id }));
}

export function show(main, ...children) {
  main.replaceChildren(...children);
  main.focus({ preventScroll: true });
  window.scrollTo(0, 0);
}
