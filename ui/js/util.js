// util.js - formatting and the address bar (#/screen/...).

export function bytes(n) {
  if (n === null || n === undefined || n < 0 || Number.isNaN(Number(n))) return '';
  n = Number(n);
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${n.toFixed(n < 10 ? 2 : 1)} ${u[i]}`;
}

export function date(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

export function age(ms) {
  if (ms === null || ms === undefined) return '';
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 120000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 7200000) return `${Math.round(ms / 60000)} min`;
  return `${Math.round(ms / 3600000)} h`;
}

export function num(n) {
  return Number(n || 0).toLocaleString('en');
}

// The hash route: #/browse/libs/a/b -> {screen:'browse', parts:['libs','a','b'], query}
export function route() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, qs] = raw.split('?');
  const parts = path.split('/').filter((p) => p !== '').map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  return { screen: parts[0] || '', parts: parts.slice(1), query: new URLSearchParams(qs || '') };
}

// '#/browse/' + each part encoded
export function link(screen, ...parts) {
  return `#/${[screen, ...parts.filter((p) => p !== '' && p !== undefined)].map((p) => encodeURIComponent(p)).join('/')}`;
}

export function browseLink(repo, path) {
  return link('browse', repo, ...String(path || '').split('/'));
}

// The name of the last segment of a path.
export function basename(p) {
  const s = String(p).replace(/\/+$/, '');
  return s.slice(s.lastIndexOf('/') + 1);
}
