// Hash routes: `#/devices/ID?x=1` → { parts: ['devices', 'ID'], query: URLSearchParams }.
// Only hashes starting with `#/` are routes; anything else is left alone.

export function current() {
  const hash = location.hash.startsWith('#/') ? location.hash.slice(1) : '/';
  const q = hash.indexOf('?');
  const pathPart = q >= 0 ? hash.slice(0, q) : hash;
  const query = new URLSearchParams(q >= 0 ? hash.slice(q + 1) : '');
  const parts = pathPart.split('/').filter(Boolean).map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  return { path: pathPart, parts, query };
}

/** `#/a/b?k=v` for parts ['a', 'b'] and a query object (empty values left out). */
export function href(parts, query = {}) {
  const path = `#/${parts.map((p) => encodeURIComponent(p)).join('/')}`;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== undefined && v !== null && v !== '') params.set(k, String(v));
  }
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

export function go(parts, query) {
  const target = href(parts, query);
  if (location.hash === target) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else location.hash = target;
}
