// The admin API's OpenAPI document (api/openapi.json) checked against what the worker really
// answers: every response to a request under /api/v1/ that the e2e suites receive must have a
// documented status, and a JSON body that matches the documented schema for that status.
//
//   import { installOpenApiValidation } from './openapi.mjs';
//   installOpenApiValidation();   // wraps globalThis.fetch once (idempotent;
//                                 // EDGEMDM_OPENAPI_VALIDATION=0 turns it off)
//
// After the wrap, `await fetch(url)` for a path under /api/v1/ (any host) rejects with an Error
// that names the operation, the status and what does not match, so the calling test fails.
// Requests that get no response (network errors) reject as before.
//
// A request that matches no documented operation (an unknown path, or a method the path does
// not have) may only be refused: 401, 403 (role or CSRF, checked before routing), 404 or 405,
// with an `Error` body. Anything else means a route exists that the document does not describe.
//
// Also: validateResponse(method, path, status, body[, contentType]) for direct use (throws on a
// mismatch), operations() (method + path template of each documented operation) and
// exercisedOperations() / coverage() (what the responses validated so far covered; with
// EDGEMDM_OPENAPI_COVERAGE=<file> each test process appends its exercisedOperations() there).

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

export const DOCUMENT_PATH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'api', 'openapi.json');
const DOC_ID = 'https://edgemdm.invalid/api/openapi.json';
const PREFIX = '/api/v1/';
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
/** Statuses any path under /api/v1/ may answer without being a documented operation. */
const UNROUTED_STATUSES = new Set([401, 403, 404, 405]);
const WRAPPED = Symbol.for('edgemdm.openapi.fetch');

let loaded = null;
/** `${METHOD} ${template}` → { statuses: Map<status, count> } */
const exercised = new Map();

/** JSON Pointer escaping (RFC 6901). */
const esc = (s) => String(s).replace(/~/g, '~0').replace(/\//g, '~1');

function load() {
  if (loaded) return loaded;
  const doc = JSON.parse(fs.readFileSync(DOCUMENT_PATH, 'utf8'));
  const ajv = new Ajv2020({ allErrors: true, strict: false, validateFormats: true });
  addFormats(ajv);
  // The whole document is added as one schema resource: `#/components/schemas/…` references
  // resolve inside it, and each response schema is compiled by its JSON Pointer.
  ajv.addSchema(doc, DOC_ID);
  const ops = [];
  for (const [template, item] of Object.entries(doc.paths ?? {})) {
    for (const method of METHODS) {
      const operation = item[method];
      if (!operation) continue;
      ops.push({
        method: method.toUpperCase(),
        path: template,
        operationId: operation.operationId,
        segments: template.split('/').filter(Boolean),
        pointer: `/paths/${esc(template)}/${method}`,
        operation,
      });
    }
  }
  loaded = { doc, ajv, ops, validators: new Map() };
  return loaded;
}

/** Follows a local `$ref` (`#/…`) to its target and pointer. */
function deref(doc, value, pointer) {
  let seen = 0;
  while (value && typeof value.$ref === 'string') {
    if (!value.$ref.startsWith('#/') || ++seen > 16) throw new Error(`unresolvable $ref ${value.$ref} at ${pointer}`);
    pointer = value.$ref.slice(1);
    value = pointer.split('/').slice(1).reduce((v, k) => v?.[k.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
    if (value === undefined) throw new Error(`$ref ${pointer} resolves to nothing`);
  }
  return { value, pointer };
}

/** The documented operation for a method and a concrete path (literal segments win over parameters). */
function findOperation(method, pathname) {
  const { ops } = load();
  const segs = pathname.replace(/\/+$/, '').split('/').filter(Boolean);
  let best = null;
  let bestScore = -1;
  for (const op of ops) {
    if (op.method !== method || op.segments.length !== segs.length) continue;
    let score = 0;
    let ok = true;
    for (let i = 0; i < segs.length && ok; i++) {
      const t = op.segments[i];
      if (t.startsWith('{') && t.endsWith('}')) continue;
      if (t === segs[i]) score++;
      else ok = false;
    }
    if (ok && score > bestScore) {
      best = op;
      bestScore = score;
    }
  }
  return best;
}

/** Whether any documented operation (whatever its method) has this path. */
function pathDocumented(pathname) {
  return METHODS.some((m) => findOperation(m.toUpperCase(), pathname));
}

function validatorAt(pointer) {
  const state = load();
  let v = state.validators.get(pointer);
  if (!v) {
    v = state.ajv.compile({ $ref: `${DOC_ID}#${pointer}` });
    state.validators.set(pointer, v);
  }
  return v;
}

const mediaType = (ct) => (ct ?? '').split(';')[0].trim().toLowerCase();
const isJson = (ct) => { const m = mediaType(ct); return m === 'application/json' || m.endsWith('+json'); };
const snippet = (body) => {
  const s = typeof body === 'string' ? body : JSON.stringify(body);
  return s === undefined ? '(none)' : s.length > 1500 ? `${s.slice(0, 1500)}…` : s;
};

function mismatch(method, pathname, status, what, body) {
  const err = new Error(`OpenAPI (api/openapi.json): ${method} ${pathname} → HTTP ${status}: ${what}\nbody: ${snippet(body)}`);
  err.name = 'OpenApiMismatch';
  return err;
}

function note(key, status) {
  let e = exercised.get(key);
  if (!e) exercised.set(key, (e = new Map()));
  e.set(status, (e.get(status) ?? 0) + 1);
}

/**
 * Checks one response against the document; throws an Error saying what does not match.
 * `body`: the parsed JSON (or the text, parsed here when it is JSON), or undefined when there
 * is none. `contentType`: the response's Content-Type, when known (default: JSON when the body
 * is not a string). Returns the operation ({method, path, operationId}), or null for a refusal
 * of a path or method that is no operation.
 */
export function validateResponse(method, pathname, status, body, contentType) {
  method = String(method ?? 'GET').toUpperCase();
  status = Number(status);
  if (contentType === undefined) contentType = typeof body === 'string' || body === undefined ? undefined : 'application/json';
  if (typeof body === 'string' && (isJson(contentType) || contentType === undefined) && body !== '') {
    try {
      body = JSON.parse(body);
      contentType ??= 'application/json';
    } catch (e) {
      if (isJson(contentType)) throw mismatch(method, pathname, status, `Content-Type ${contentType} but the body is not JSON (${e.message})`, body);
    }
  }
  const { doc } = load();
  const op = findOperation(method, pathname);
  if (!op) {
    const what = pathDocumented(pathname) ? `${method} is not documented for this path` : 'no documented path matches';
    if (!UNROUTED_STATUSES.has(status)) {
      throw mismatch(method, pathname, status, `${what}, yet the answer is not a refusal (401/403/404/405): an undocumented route?`, body);
    }
    if (isJson(contentType)) {
      const v = validatorAt('/components/schemas/Error');
      if (!v(body)) throw mismatch(method, pathname, status, `${what}; the refusal is not an Error: ${errorsText(v.errors)}`, body);
    }
    note(`(unrouted) ${method}`, status);
    return null;
  }
  note(`${op.method} ${op.path}`, status);
  const responses = op.operation.responses ?? {};
  const key = [String(status), `${String(status)[0]}XX`, 'default'].find((k) => k in responses);
  if (!key) {
    throw mismatch(method, pathname, status, `status ${status} is not documented for ${op.operationId} (${op.method} ${op.path}; documented: ${Object.keys(responses).join(', ')})`, body);
  }
  const { value: response, pointer } = deref(doc, responses[key], `${op.pointer}/responses/${esc(key)}`);
  const content = response.content ?? {};
  const types = Object.keys(content);
  const bodyless = body === undefined || body === '' || body === null;
  if (types.length === 0) {
    if (!bodyless) throw mismatch(method, pathname, status, `${op.operationId} documents no body for ${key}, yet one came`, body);
    return { method: op.method, path: op.path, operationId: op.operationId };
  }
  if (bodyless) throw mismatch(method, pathname, status, `${op.operationId} documents a body for ${key} (${types.join(', ')}), yet none came`, body);
  const mt = mediaType(contentType);
  if (mt) {
    const type = types.find((t) => t.toLowerCase() === mt) ?? types.find((t) => t === '*/*');
    if (!type) throw mismatch(method, pathname, status, `Content-Type ${contentType} is not documented for ${op.operationId} ${key} (documented: ${types.join(', ')})`, body);
    if (!content[type].schema) return { method: op.method, path: op.path, operationId: op.operationId };
    if (!isJson(type) && typeof body !== 'string') return { method: op.method, path: op.path, operationId: op.operationId };
    const v = validatorAt(`${pointer}/content/${esc(type)}/schema`);
    if (!v(body)) {
      throw mismatch(method, pathname, status, `the body does not match the schema of ${op.operationId} ${key} (${type}):\n  ${errorsText(v.errors)}`, body);
    }
  } else {
    throw mismatch(method, pathname, status, 'a body without a Content-Type', body);
  }
  return { method: op.method, path: op.path, operationId: op.operationId };
}

function errorsText(errors) {
  return (errors ?? []).slice(0, 20).map((e) => {
    const extra = e.keyword === 'additionalProperties' ? ` (${e.params.additionalProperty})`
      : e.keyword === 'enum' ? ` (${JSON.stringify(e.params.allowedValues)})`
        : e.keyword === 'const' ? ` (${JSON.stringify(e.params.allowedValue)})` : '';
    return `${e.instancePath || '(body)'} ${e.message}${extra} [${e.schemaPath}]`;
  }).join('\n  ');
}

/** Method and path template of every documented operation. */
export function operations() {
  return load().ops.map(({ method, path: p, operationId }) => ({ method, path: p, operationId }));
}

/**
 * The documented operations that responses seen so far (in this process) exercised, with the
 * statuses seen: [{method, path, operationId, statuses: {"200": 3, "404": 1}}].
 */
export function exercisedOperations() {
  return load().ops
    .filter((op) => exercised.has(`${op.method} ${op.path}`))
    .map((op) => ({
      method: op.method,
      path: op.path,
      operationId: op.operationId,
      statuses: Object.fromEntries([...exercised.get(`${op.method} ${op.path}`)].sort(([a], [b]) => a - b)),
    }));
}

/** {exercised, total, missing: [`METHOD /path`]}: for a suite to report its coverage. */
export function coverage() {
  const ops = operations();
  const done = new Set(exercisedOperations().map((o) => `${o.method} ${o.path}`));
  return { exercised: done.size, total: ops.length, missing: ops.map((o) => `${o.method} ${o.path}`).filter((k) => !done.has(k)) };
}

function requestOf(input, init) {
  let url;
  let method = init?.method;
  if (typeof input === 'string') url = input;
  else if (input instanceof URL) url = input.href;
  else if (input && typeof input === 'object' && 'url' in input) {
    url = input.url;
    method ??= input.method;
  } else url = String(input);
  let pathname;
  try {
    pathname = new URL(url, 'http://localhost').pathname;
  } catch {
    return null;
  }
  return { method: String(method ?? 'GET').toUpperCase(), pathname };
}

async function check(req, res) {
  const contentType = res.headers.get('content-type') ?? undefined;
  // Answers that are not the worker's: a proxy or the runtime answering for it (wrangler's
  // "Your worker restarted mid-request" 503) is no part of the API.
  if (res.status >= 502 && !isJson(contentType)) return;
  let text;
  try {
    text = await res.clone().text();
  } catch {
    return; // the body was cut off (connection closed): nothing complete to check
  }
  const declared = res.headers.get('content-length');
  if (declared !== null && Buffer.byteLength(text) < Number(declared)) return; // cut short
  const body = text === '' ? undefined : isJson(contentType) ? parseOrText(text) : text;
  if (typeof body === 'string' && isJson(contentType)) {
    throw mismatch(req.method, req.pathname, res.status, `Content-Type ${contentType} but the body is not JSON`, text);
  }
  validateResponse(req.method, req.pathname, res.status, body, contentType);
}

function parseOrText(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Wraps globalThis.fetch (once) so every /api/v1/ response is checked against the document. */
export function installOpenApiValidation() {
  if (process.env.EDGEMDM_OPENAPI_VALIDATION === '0') return; // e.g. for a benchmark's timings
  const current = globalThis.fetch;
  if (current[WRAPPED]) return;
  load(); // a broken document fails here, at once, not at the first request
  const original = current;
  const wrapped = async function fetch(input, init) {
    const res = await original(input, init);
    const req = requestOf(input, init);
    if (req && req.pathname.startsWith(PREFIX)) await check(req, res);
    return res;
  };
  wrapped[WRAPPED] = original;
  globalThis.fetch = wrapped;
  // EDGEMDM_OPENAPI_COVERAGE=<file>: each test process appends one JSON line of what it exercised.
  const file = process.env.EDGEMDM_OPENAPI_COVERAGE;
  if (file) {
    process.on('exit', () => {
      fs.appendFileSync(file, `${JSON.stringify({ argv: process.argv.slice(1), exercised: exercisedOperations() })}\n`);
    });
  }
}
