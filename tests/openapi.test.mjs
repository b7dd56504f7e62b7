// The admin API's OpenAPI document (api/openapi.json), checked without a worker: it is an
// OpenAPI 3.1 document, every $ref resolves, every schema compiles with Ajv 2020 (strict
// keywords), every operation has an operationId and its error answers, and every route the
// Rust router matches is documented (so a new route without documentation fails here). The e2e
// suites check the document against the worker's real answers (tests/support/openapi.mjs); the
// last part here starts the worker once to see that it serves this very document.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { DOCUMENT_PATH, coverage, exercisedOperations, operations, validateResponse } from './support/openapi.mjs';
import { startWorker } from './support/worker.mjs';

const ROOT = path.resolve(path.dirname(DOCUMENT_PATH), '..');
const doc = JSON.parse(fs.readFileSync(DOCUMENT_PATH, 'utf8'));
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const DOC_ID = 'https://edgemdm.invalid/api/openapi.json';
/** A public route that reads no input and needs no credentials: it has no 4xx to document. */
const NO_CLIENT_ERRORS = new Set(['getCaCertificate']);

const esc = (s) => String(s).replace(/~/g, '~0').replace(/\//g, '~1');
const unesc = (s) => s.replace(/~1/g, '/').replace(/~0/g, '~');
const at = (pointer) => pointer.split('/').slice(1).reduce((v, k) => v?.[unesc(k)], doc);

function* eachOperation() {
  for (const [template, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      if (item[method]) yield { template, method, op: item[method], pointer: `/paths/${esc(template)}/${method}` };
    }
  }
}

/** Follows local $refs; returns the target and its pointer. */
function deref(value, pointer) {
  while (value && typeof value.$ref === 'string') {
    pointer = value.$ref.slice(1);
    value = at(pointer);
  }
  return { value, pointer };
}

/** Every JSON Schema in the document, by pointer. */
function schemaPointers() {
  const out = Object.keys(doc.components?.schemas ?? {}).map((n) => `/components/schemas/${esc(n)}`);
  const mediaSchemas = (content, base) => Object.keys(content ?? {}).filter((t) => content[t].schema).map((t) => `${base}/content/${esc(t)}/schema`);
  for (const [n, r] of Object.entries(doc.components?.responses ?? {})) {
    out.push(...mediaSchemas(r.content, `/components/responses/${esc(n)}`));
    for (const h of Object.keys(r.headers ?? {})) out.push(`/components/responses/${esc(n)}/headers/${esc(h)}/schema`);
  }
  for (const n of Object.keys(doc.components?.parameters ?? {})) out.push(`/components/parameters/${esc(n)}/schema`);
  for (const { op, pointer } of eachOperation()) {
    (op.parameters ?? []).forEach((p, i) => { if (!p.$ref) out.push(`${pointer}/parameters/${i}/schema`); });
    if (op.requestBody && !op.requestBody.$ref) out.push(...mediaSchemas(op.requestBody.content, `${pointer}/requestBody`));
    for (const [status, r] of Object.entries(op.responses ?? {})) {
      if (r.$ref) continue;
      out.push(...mediaSchemas(r.content, `${pointer}/responses/${esc(status)}`));
      for (const h of Object.keys(r.headers ?? {})) out.push(`${pointer}/responses/${esc(status)}/headers/${esc(h)}/schema`);
    }
  }
  return out;
}

describe('api/openapi.json', () => {
  test('is an OpenAPI 3.1 document of the admin API', () => {
    assert.match(doc.openapi, /^3\.1\.\d+$/);
    assert.equal(typeof doc.info?.title, 'string');
    assert.equal(typeof doc.info?.version, 'string');
    assert.deepEqual(doc.servers, [{ url: '/' }]);
    assert.equal(typeof doc.paths, 'object');
    const schemes = doc.components.securitySchemes;
    assert.deepEqual([schemes.bootstrapToken.type, schemes.bootstrapToken.scheme], ['http', 'bearer']);
    assert.deepEqual([schemes.apiToken.type, schemes.apiToken.scheme], ['http', 'bearer']);
    assert.deepEqual([schemes.session.type, schemes.session.in, schemes.session.name], ['apiKey', 'cookie', 'edgemdm_session']);
    assert.match(schemes.session.description, /X-CSRF-Token/);
    for (const req of doc.security) for (const name of Object.keys(req)) assert.ok(schemes[name], name);
    const tags = new Set(doc.tags.map((t) => t.name));
    const ids = new Set();
    for (const { template, method, op } of eachOperation()) {
      const where = `${method.toUpperCase()} ${template}`;
      assert.ok(template.startsWith('/api/v1/'), where);
      assert.match(op.operationId ?? '', /^[a-z][A-Za-z0-9]+$/, `${where}: operationId`);
      assert.ok(!ids.has(op.operationId), `${where}: operationId ${op.operationId} twice`);
      ids.add(op.operationId);
      assert.ok(op.tags?.length, `${where}: tags`);
      for (const t of op.tags) assert.ok(tags.has(t), `${where}: tag ${t} is not declared`);
      for (const req of op.security ?? []) for (const name of Object.keys(req)) assert.ok(schemes[name], `${where}: ${name}`);
      // Path parameters: each {name} of the template declared, and no other.
      const params = (op.parameters ?? []).map((p) => deref(p, '').value);
      const inPath = params.filter((p) => p.in === 'path').map((p) => p.name).sort();
      const inTemplate = [...template.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
      assert.deepEqual(inPath, inTemplate, `${where}: path parameters`);
      for (const p of params) {
        assert.ok(['path', 'query', 'header', 'cookie'].includes(p.in), `${where}: ${p.name} in ${p.in}`);
        if (p.in === 'path') assert.equal(p.required, true, `${where}: ${p.name} is required`);
      }
      assert.ok(Object.keys(op.responses ?? {}).length, `${where}: responses`);
      for (const [status, r] of Object.entries(op.responses)) {
        assert.match(status, /^([1-5](\d\d|XX)|default)$/, `${where}: status ${status}`);
        assert.equal(typeof deref(r, '').value.description, 'string', `${where} ${status}: description`);
      }
    }
  });

  test('every $ref resolves', () => {
    const bad = [];
    let count = 0;
    const walk = (v, pointer) => {
      if (Array.isArray(v)) return v.forEach((x, i) => walk(x, `${pointer}/${i}`));
      if (!v || typeof v !== 'object') return;
      if (typeof v.$ref === 'string') {
        count++;
        if (!v.$ref.startsWith('#/') || at(v.$ref.slice(1)) === undefined) bad.push(`${pointer}: ${v.$ref}`);
      }
      for (const [k, x] of Object.entries(v)) walk(x, `${pointer}/${esc(k)}`);
    };
    walk(doc, '');
    assert.deepEqual(bad, []);
    assert.ok(count > 50, `${count} $refs`);
    // And every component is used.
    const text = JSON.stringify(doc);
    for (const kind of ['schemas', 'responses', 'parameters']) {
      for (const name of Object.keys(doc.components[kind] ?? {})) {
        assert.ok(text.includes(`"#/components/${kind}/${name}"`), `components/${kind}/${name} is never used`);
      }
    }
  });

  test('every schema compiles with Ajv 2020 (strict keywords)', () => {
    const ajv = new Ajv2020({ strict: true, strictTypes: false, strictTuples: false, strictRequired: false, allErrors: true });
    addFormats(ajv);
    // The document's own top-level fields are not JSON Schema keywords.
    ajv.addVocabulary(['openapi', 'info', 'servers', 'paths', 'components', 'tags', 'security', 'externalDocs', 'webhooks', 'jsonSchemaDialect']);
    ajv.addSchema(doc, DOC_ID);
    const pointers = schemaPointers();
    assert.ok(pointers.length > 80, `${pointers.length} schemas`);
    const failed = [];
    for (const p of pointers) {
      try {
        ajv.compile({ $ref: `${DOC_ID}#${p}` });
      } catch (e) {
        failed.push(`${p}: ${e.message}`);
      }
    }
    assert.deepEqual(failed, []);
  });

  test('every operation has an operationId and documents its error answers', () => {
    for (const { template, method, op } of eachOperation()) {
      const where = `${method.toUpperCase()} ${template} (${op.operationId})`;
      assert.ok(op.operationId, where);
      const statuses = Object.keys(op.responses);
      assert.ok(statuses.some((s) => /^[23]/.test(s)), `${where}: a success answer`);
      if (!NO_CLIENT_ERRORS.has(op.operationId)) {
        assert.ok(statuses.some((s) => /^4/.test(s)), `${where}: at least one 4xx answer`);
      }
      assert.ok(statuses.includes('500'), `${where}: 500 (the server's failures)`);
      const security = op.security ?? doc.security;
      if (security.length > 0) assert.ok(statuses.includes('401'), `${where}: authenticated, so 401`);
      if (op.requestBody) {
        for (const s of ['400', '413']) assert.ok(statuses.includes(s), `${where}: a body, so ${s}`);
      }
      for (const s of statuses.filter((x) => /^[45]/.test(x))) {
        const r = deref(op.responses[s], '').value;
        assert.deepEqual(r.content?.['application/json']?.schema, { $ref: '#/components/schemas/Error' }, `${where} ${s}: an Error`);
      }
    }
  });

  test('the response validator: documented answers pass, drift fails', () => {
    const user = { email: 'a@b.co', display_name: 'A', created_at: '2026-12-05T01:02:03.000Z' };
    assert.equal(validateResponse('GET', '/api/v1/users', 200, { users: [user] }).operationId, 'listUsers');
    assert.equal(validateResponse('DELETE', '/api/v1/users/a%40b.co', 204, undefined, 'text/plain').operationId, 'deleteUser');
    assert.equal(validateResponse('GET', '/api/v1/no/such/route', 404, { error: 'no such admin route' }), null);
    assert.throws(() => validateResponse('GET', '/api/v1/users', 200, { users: [{ ...user, password_hash: 'x' }] }), /additional properties/);
    assert.throws(() => validateResponse('GET', '/api/v1/users', 200, { users: [{ ...user, created_at: 'yesterday' }] }), /date-time/);
    assert.throws(() => validateResponse('GET', '/api/v1/users', 418, { error: 'teapot' }), /not documented/);
    assert.throws(() => validateResponse('POST', '/api/v1/users', 400, { message: 'x' }), /error/);
    assert.throws(() => validateResponse('PATCH', '/api/v1/users', 200, {}), /undocumented route/);
    assert.throws(() => validateResponse('DELETE', '/api/v1/users/a%40b.co', 204, { gone: true }), /no body/);
    assert.ok(operations().length >= 39);
  });
});

// ---- the Rust router against the document -----------------------------------------------------

/**
 * `METHOD /api/v1/a/{}/b` for every route the shell matches (path parameters as `{}`): the match
 * arms on `(req.method(), segments)` (literals stay, bindings and `_` become `{}`; arms with `..`
 * are prefix guards, not routes) and the `"/api/v1/…"` arms of the top-level router.
 */
function routesInCode() {
  const dir = path.join(ROOT, 'src', 'shell');
  // Every shell file: the routes live in mod.rs, admin_api.rs, admin_auth.rs, profiles_api.rs, …
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.rs'));
  const routes = new Map(); // key → file
  const methods = (alt) => [...alt.matchAll(/Method::(\w+)/g)].map((m) => m[1].toUpperCase());
  for (const f of files) {
    const src = fs.readFileSync(path.join(dir, f), 'utf8').replace(/\/\/.*$/gm, '');
    // (Method::Get | Method::Delete, ["devices", id, "commands"]), also with a third element
    // (`(Method::Get, ["session"], Some(c))`).
    for (const m of src.matchAll(/\(\s*((?:Method::\w+\s*\|\s*)*Method::\w+)\s*,\s*\[([^\]]*)\]\s*(?:,\s*(?:\w+(?:\(\s*\w+\s*\))?)\s*)?\)/g)) {
      const elems = m[2].split(',').map((s) => s.trim()).filter(Boolean);
      if (elems.some((e) => e.includes('..'))) continue; // a prefix, not a route
      const segs = elems.map((e) => (/^"[^"]*"$/.test(e) ? e.slice(1, -1) : '{}'));
      for (const method of methods(m[1])) routes.set(`${method} /api/v1/${segs.join('/')}`, f);
    }
    // (Method::Get, "/api/v1/ca")
    for (const m of src.matchAll(/\(\s*((?:Method::\w+\s*\|\s*)*Method::\w+)\s*,\s*"(\/api\/v1\/[^"]*)"\s*\)/g)) {
      for (const method of methods(m[1])) routes.set(`${method} ${m[2].replace(/\/+$/, '')}`, f);
    }
  }
  return routes;
}

describe('the router and the document', () => {
  const documented = new Set(operations().map((o) => `${o.method} ${o.path.replace(/\{[^}]+\}/g, '{}')}`));

  test('every route the shell matches is documented', (t) => {
    const routes = routesInCode();
    assert.ok(routes.size >= 25, `only ${routes.size} routes found in src/shell: is the pattern still right?`);
    for (const key of ['GET /api/v1/users', 'POST /api/v1/devices/{}/commands', 'PUT /api/v1/groups/{}/devices/{}', 'GET /api/v1/ca']) {
      assert.ok(routes.has(key), `the parser no longer finds ${key}`);
    }
    const missing = [...routes].filter(([k]) => !documented.has(k)).map(([k, f]) => `${k} (src/shell/${f})`);
    assert.deepEqual(missing, [], 'routes in the code that api/openapi.json does not document');
    const notYet = [...documented].filter((k) => !routes.has(k));
    if (notYet.length) t.diagnostic(`documented, not (yet) found in src/shell: ${notYet.join(', ')}`);
  });
});

// ---- the worker serves it ------------------------------------------------------------------------

describe('the served document', () => {
  let w;
  before(async () => { w = await startWorker(); });
  after(async () => { await w?.stop(); });

  test('GET /api/v1/openapi.json (public) is api/openapi.json', async () => {
    // The fetch is validated against the document itself (tests/support/worker.mjs installs it).
    const res = await fetch(`${w.url}/api/v1/openapi.json`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^application\/json/);
    assert.deepEqual(await res.json(), doc, 'the build serves another document: run scripts/build.sh (or node scripts/build-console.mjs)');
  });

  test('answers that are no documented operation are refusals, and are checked as such', async () => {
    const auth = { authorization: `Bearer ${w.adminToken}` };
    for (const [method, p, headers, status] of [
      ['POST', '/api/v1/ca', {}, 401],
      ['GET', '/api/v1/no-such-route', {}, 401],
      ['GET', '/api/v1/no-such-route', auth, 404],
      ['PATCH', '/api/v1/users', auth, 404],
      ['GET', '/api/v1/users/nobody%40contoso.com', auth, 404],
    ]) {
      const res = await fetch(`${w.url}${p}`, { method, headers });
      assert.equal(res.status, status, `${method} ${p}`);
      assert.equal(typeof (await res.json()).error, 'string');
    }
    const seen = exercisedOperations().map((o) => o.operationId);
    assert.ok(seen.includes('getOpenApiDocument'), JSON.stringify(seen));
    assert.ok(coverage().total === operations().length);
  });
});
