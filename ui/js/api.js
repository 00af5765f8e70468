// api.js - the REST API, as every client uses it (docs/api.md). The UI
// adds nothing: its session cookie stands for its user, and every change
// carries the session's CSRF token (docs/ui.md).

export const session = { user: 'anonymous', anonymous: true, admin: false, csrf: '', anonymousAccess: false };

// An API error in words: the server's message, or what went wrong on the way.
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const REASONS = {
  400: 'the request was refused as malformed', 401: 'sign in first', 403: 'you do not have permission',
  404: 'not found', 409: 'it conflicts with what is there', 413: 'too large', 429: 'too many attempts',
  500: 'the server failed', 502: 'the load balancer reached no node', 503: 'the service is unavailable',
  504: 'the server did not answer in time',
};

async function errorOf(resp) {
  let msg = '';
  try {
    const text = await resp.text();
    const doc = JSON.parse(text);
    const e = doc && Array.isArray(doc.errors) && doc.errors[0];
    if (e && typeof e.message === 'string') msg = e.message;
    else if (Array.isArray(doc.messages) && doc.messages[0]) msg = String(doc.messages[0].message);
  } catch {
    /* not our JSON: a proxy's page */
  }
  const reason = REASONS[resp.status] || `status ${resp.status}`;
  return new ApiError(resp.status, msg ? `${msg} (${resp.status})` : `The server answered ${resp.status}: ${reason}.`);
}

export function headers(extra = {}, change = false) {
  const hd = { 'X-Granary-UI': '1', ...extra };
  if (change && session.csrf) hd['X-CSRF-Token'] = session.csrf;
  return hd;
}

// A path made of segments, each percent-encoded ('/' inside a name stays a separator).
export function enc(path) {
  return String(path).split('/').map(encodeURIComponent).join('/');
}

// call(method, url, {json, body, form, headers, as: 'json'|'text'|'response'}) -> parsed answer.
export async function call(method, url, opt = {}) {
  const change = !['GET', 'HEAD'].includes(method);
  const hd = headers(opt.headers, change);
  let body = opt.body;
  if (opt.json !== undefined) {
    body = JSON.stringify(opt.json);
    hd['Content-Type'] = 'application/json';
  } else if (opt.form) {
    body = new URLSearchParams(opt.form).toString();
    hd['Content-Type'] = 'application/x-www-form-urlencoded';
  }
  let resp;
  try {
    resp = await fetch(url, { method, headers: hd, body, credentials: 'same-origin', cache: 'no-store' });
  } catch {
    throw new ApiError(0, 'The server did not answer (network error). Check that granary is running.');
  }
  if (!resp.ok) {
    const err = await errorOf(resp);
    if (resp.status === 401 && !session.anonymous && opt.signin !== false) {
      window.dispatchEvent(new CustomEvent('granary:session-ended'));
    }
    throw err;
  }
  if (opt.as === 'response') return resp;
  const text = await resp.text();
  if (opt.as === 'text') return text;
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export const get = (url, opt) => call('GET', url, opt);

// Who we are: the session (if any), its CSRF token, whether anonymous access is on.
export async function whoami() {
  const s = await call('GET', '/api/ui/session', { signin: false });
  session.user = s.user;
  session.anonymous = !!s.anonymous;
  session.admin = !!s.admin;
  session.csrf = s.csrfToken || '';
  session.anonymousAccess = !!s.anonymousAccess;
  session.ended = !!s.sessionEnded;
  session.expires = s.expires || '';
  return session;
}

export async function signIn(creds) {
  const s = await call('POST', '/api/ui/session', { json: creds, signin: false });
  session.user = s.user;
  session.anonymous = false;
  session.admin = !!s.admin;
  session.csrf = s.csrfToken || '';
  session.expires = s.expires || '';
  session.ended = false;
  return session;
}

export async function signOut() {
  await call('DELETE', '/api/ui/session', { signin: false });
  session.user = 'anonymous';
  session.anonymous = true;
  session.admin = false;
  session.csrf = '';
}

// PUT a file with progress: onProgress(loaded, total). Resolves to the deploy JSON.
export function upload(url, file, onProgress) {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open('PUT', url);
    for (const [k, v] of Object.entries(headers({}, true))) x.setRequestHeader(k, v);
    x.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded, e.total); };
    x.onload = async () => {
      if (x.status >= 200 && x.status < 300) {
        onProgress(file.size, file.size);
        try {
          resolve(JSON.parse(x.responseText));
        } catch {
          resolve({});
        }
        return;
      }
      reject(await errorOf(new Response(x.responseText, { status: x.status })));
    };
    x.onerror = () => reject(new ApiError(0, 'The upload was cut off (network error).'));
    x.onabort = () => reject(new ApiError(0, 'The upload was cancelled.'));
    x.send(file);
  });
}
