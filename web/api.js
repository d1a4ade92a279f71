// Calls to the patient API: JSON in and out, the CSRF header on every change (API.md),
// errors as exceptions carrying the API's code, status and message.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function cookie(name) {
  const pair = document.cookie.split('; ').find((c) => c.startsWith(name + '='));
  return pair ? pair.slice(name.length + 1) : '';
}

export async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  // Over HTTPS the archive names its cookies with the __Host- prefix.
  if (method !== 'GET') headers['X-CSRF-Token'] = cookie('__Host-cf_csrf') || cookie('cf_csrf');
  const response = await fetch('/api/v1' + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(response.status, error.code || 'http_' + response.status, error.message || response.statusText);
  }
  return data;
}

export const get = (path) => api('GET', path);
export const post = (path, body = {}) => api('POST', path, body);
export const del = (path) => api('DELETE', path);
