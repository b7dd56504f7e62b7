// e2e harness: runs the built Worker under `wrangler dev` (local workerd) on a
// free loopback port with its own persisted state, and reads that state's KV.
//
// The Worker must already be built (scripts/build.sh, which `npm test` runs
// once); wrangler is started with EDGEMDM_SKIP_BUILD=1 so its [build] command
// is a no-op.
//
//   const w = await startWorker({ vars: { AUTH_POLICY: 'Federated' } });
//   const res = await fetch(`${w.url}/admin/...`, { headers: { authorization: `Bearer ${w.adminToken}` } });
//   await w.restart();          // same port, same storage
//   await w.stop();
//   const keys = await kvList(w.persistDir, 'device/');
//
// Debugging: EDGEMDM_WORKER_LOGS=1 copies wrangler's output to stderr;
// EDGEMDM_WRANGLER_LOG_LEVEL=log (default warn) also shows the Worker's console
// output and one line per request. w.logs() returns the last 64 KiB of each.

import { spawn, execFile, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { installOpenApiValidation } from './openapi.mjs';

// Every /api/v1/ response the suites receive is checked against api/openapi.json.
installOpenApiValidation();

const execFileP = promisify(execFile);

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const WRANGLER = path.join(ROOT, 'node_modules', 'wrangler', 'bin', 'wrangler.js');
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;

// Environment for every wrangler we run: no build, no telemetry, no colours.
function wranglerEnv() {
  return {
    ...process.env,
    EDGEMDM_SKIP_BUILD: '1',
    WRANGLER_SEND_METRICS: 'false',
    NO_COLOR: '1',
    FORCE_COLOR: '0',
  };
}

/** A loopback TCP port that was free a moment ago (bind :0, read it, close). */
export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function portFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

// Wait (up to 10 s) until nothing listens on 127.0.0.1:port, so that the
// readiness probe cannot be answered by some other server.
async function waitPortFree(port) {
  const deadline = Date.now() + 10_000;
  while (!(await portFree(port))) {
    if (Date.now() > deadline) throw new Error(`port 127.0.0.1:${port} is in use by another process`);
    await sleep(100);
  }
}

// Every worker started by this process, so none outlives it.
const running = new Set();
// Temp dirs made here, removed when the test process exits.
const tempDirs = new Set();
process.on('exit', () => {
  for (const w of running) w._killSync();
  for (const d of tempDirs) {
    try { fs.rmSync(d, { recursive: true, force: true }); } catch { /* best effort */ }
  }
});
// The workers run in their own process groups, so a Ctrl-C or a test-runner
// timeout does not reach them: take them down on those signals too.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => process.exit(128 + os.constants.signals[sig]));
}

// Is any process of process group `pgid` still running? Zombies (exited,
// waiting to be reaped by init) do not count: they hold no ports or files.
function groupAlive(pgid) {
  let entries;
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    try { process.kill(-pgid, 0); return true; } catch (e) { return e.code === 'EPERM'; }
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    let stat;
    try { stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8'); } catch { continue; }
    // pid (comm) state ppid pgrp ...; comm may contain spaces and parentheses
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z' && fields[0] !== 'X') return true;
  }
  return false;
}

function killGroup(pid, signal) {
  try { process.kill(-pid, signal); } catch { /* already gone */ }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Keeps the last `max` characters written to it.
function tailBuffer(max = 64 * 1024) {
  let text = '';
  return {
    push(chunk) {
      text += chunk.toString();
      if (text.length > max) text = text.slice(text.length - max);
    },
    get text() { return text; },
  };
}

/**
 * Start the Worker under `wrangler dev`.
 * @param {object} [opts]
 * @param {Record<string,string>} [opts.vars]  extra/overriding [vars] (ADMIN_TOKEN here sets the token)
 * @param {string} [opts.persistDir]           storage dir (default: a fresh temp dir)
 * @param {number} [opts.port]                 default: a free loopback port
 * @param {string} [opts.config]               another wrangler.toml (the bench's platform floor, or
 *                                             edgemdm from another build); default: edgemdm's own
 * @param {boolean} [opts.migrate]             apply the fleet index migrations (default: without
 *                                             `config`)
 * @returns {Promise<{url: string, port: number, adminToken: string, persistDir: string,
 *   stop(): Promise<void>, restart(): Promise<void>, logs(): {stdout: string, stderr: string}}>}
 */
export async function startWorker({ vars = {}, persistDir, port, config, migrate = !config } = {}) {
  const { ADMIN_TOKEN, ...plainVars } = vars;
  const adminToken = ADMIN_TOKEN ?? crypto.randomBytes(16).toString('hex');
  if (!persistDir) {
    persistDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'edgemdm-state-'));
    tempDirs.add(persistDir);
  }
  const portChosenHere = port === undefined;
  port ??= await freePort();

  // The secret goes in an env file, as .dev.vars would hold it in `npm start`.
  // Passing --env-file also keeps wrangler from reading the repo's own .dev.vars.
  const envDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'edgemdm-env-'));
  tempDirs.add(envDir);
  const envFile = path.join(envDir, 'dev.env');
  await fsp.writeFile(envFile, `ADMIN_TOKEN=${adminToken}\n`, { mode: 0o600 });

  if (migrate) await applyMigrations(persistDir);

  const handle = {
    url: `http://127.0.0.1:${port}`,
    port,
    adminToken,
    persistDir,
    config,
    child: null,
    stdout: tailBuffer(),
    stderr: tailBuffer(),
    logs() { return { stdout: this.stdout.text, stderr: this.stderr.text }; },
    async stop() { await stopChild(handle); },
    async restart() {
      await stopChild(handle);
      await launch(handle, { plainVars, envFile });
    },
    _killSync() {
      if (handle.child) killGroup(handle.child.pid, 'SIGKILL');
    },
  };
  for (let attempt = 1; ; attempt++) {
    try {
      await launch(handle, { plainVars, envFile });
      return handle;
    } catch (e) {
      // A port that was free a moment ago can be taken by another process (another worker's
      // runtime binds ports of its own) before wrangler binds it: start again on a fresh one.
      // A port the caller asked for is theirs to keep.
      if (!portChosenHere || attempt >= 3 || !/Address already in use/.test(e.message)) throw e;
      handle.port = await freePort();
      handle.url = `http://127.0.0.1:${handle.port}`;
    }
  }
}

async function launch(handle, { plainVars, envFile }) {
  await waitPortFree(handle.port);
  const inspectorPort = await freePort();
  handle.inspectorPort = inspectorPort;
  const args = [
    WRANGLER, 'dev',
    '--ip', '127.0.0.1',
    '--port', String(handle.port),
    '--inspector-port', String(inspectorPort),
    '--persist-to', handle.persistDir,
    '--log-level', process.env.EDGEMDM_WRANGLER_LOG_LEVEL || 'warn',
    '--show-interactive-dev-session=false',
    '--env-file', envFile,
  ];
  if (handle.config) args.push('--config', handle.config);
  for (const [k, v] of Object.entries(plainVars)) args.push('--var', `${k}:${v}`);

  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: wranglerEnv(),
    detached: true, // own process group: stop() kills wrangler and workerd together
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  handle.child = child;
  handle.exited = false;
  handle.exitPromise = new Promise((resolve) => child.on('exit', (code, signal) => {
    handle.exited = true;
    resolve({ code, signal });
  }));
  const echo = process.env.EDGEMDM_WORKER_LOGS === '1';
  child.stdout.on('data', (d) => { handle.stdout.push(d); if (echo) process.stderr.write(d); });
  child.stderr.on('data', (d) => { handle.stderr.push(d); if (echo) process.stderr.write(d); });
  // A test that never calls stop() must not hang its process: let it exit,
  // and the 'exit' handler above kills the worker.
  child.unref();
  child.stdout.unref();
  child.stderr.unref();
  running.add(handle);

  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (handle.exited) {
      const { code, signal } = await handle.exitPromise;
      await stopChild(handle);
      throw new Error(`wrangler dev exited during startup (code ${code}, signal ${signal})\n` +
        `--- stderr ---\n${handle.stderr.text}\n--- stdout ---\n${handle.stdout.text}`);
    }
    if (await answers(handle.url)) return; // any HTTP status means it is serving
    if (Date.now() > deadline) {
      await stopChild(handle);
      throw new Error(`wrangler dev did not answer on ${handle.url} within ${START_TIMEOUT_MS / 1000} s\n` +
        `--- stderr ---\n${handle.stderr.text}\n--- stdout ---\n${handle.stdout.text}`);
    }
    await sleep(200);
  }
}

// GET url/ on a fresh connection that is closed afterwards (a pooled
// keep-alive connection would hold workerd's graceful shutdown open).
function answers(url) {
  return new Promise((resolve) => {
    const req = http.get(`${url}/`, { agent: false, timeout: 5_000, headers: { connection: 'close' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(true));
      res.on('error', () => resolve(true));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(false));
  });
}

async function stopChild(handle) {
  const child = handle.child;
  if (!child) return;
  const pid = child.pid;
  killGroup(pid, 'SIGTERM');
  let timer;
  const exited = await Promise.race([
    handle.exitPromise.then(() => true),
    new Promise((resolve) => { timer = setTimeout(resolve, STOP_TIMEOUT_MS, false); }),
  ]);
  clearTimeout(timer);
  if (!exited) killGroup(pid, 'SIGKILL');
  // wrangler may exit before workerd does: wait until the whole group is gone.
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (groupAlive(pid)) {
    if (Date.now() > deadline) killGroup(pid, 'SIGKILL');
    if (Date.now() > deadline + 5_000) {
      throw new Error(`processes of group ${pid} (wrangler/workerd) survive SIGKILL`);
    }
    await sleep(20);
  }
  child.stdout.destroy();
  child.stderr.destroy();
  running.delete(handle);
  handle.child = null;
}

/**
 * Applies migrations/ to the local fleet index (D1 binding INDEX) of `persistDir`, as
 * `npm start` does; already applied ones are skipped.
 */
export async function applyMigrations(persistDir) {
  try {
    await execFileP(process.execPath, [
      WRANGLER, 'd1', 'migrations', 'apply', 'INDEX', '--local', '--persist-to', persistDir,
    ], { cwd: ROOT, env: { ...wranglerEnv(), CI: 'true' }, maxBuffer: 16 * 1024 * 1024 });
  } catch (e) {
    throw new Error(`wrangler d1 migrations apply failed: ${e.stderr || e.message}`);
  }
}

/**
 * The storage keys of every local instance of a Durable Object class, as workerd keeps them
 * (one SQLite file per instance, keys in `_cf_KV`): [[file name, [keys]]], sorted.
 */
export function objectKeys(persistDir, className) {
  const dir = path.join(persistDir, 'v3', 'do', `edgemdm-${className}`);
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir)
    .filter((f) => f.endsWith('.sqlite') && f !== 'metadata.sqlite')
    .sort()
    .map((f) => [f, execFileSync('sqlite3', [path.join(dir, f), 'SELECT key FROM _cf_KV ORDER BY key'])
      .toString().split('\n').filter(Boolean)]);
}

/** Runs SQL (a file's text) against the local fleet index of `persistDir`; returns the rows. */
export async function d1(persistDir, sql) {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'edgemdm-sql-'));
  tempDirs.add(dir);
  const file = path.join(dir, 'q.sql');
  await fsp.writeFile(file, sql);
  try {
    const { stdout } = await execFileP(process.execPath, [
      WRANGLER, 'd1', 'execute', 'INDEX', '--local', '--persist-to', persistDir, '--file', file, '--json',
    ], { cwd: ROOT, env: { ...wranglerEnv(), CI: 'true' }, maxBuffer: 256 * 1024 * 1024 });
    const out = JSON.parse(stdout);
    return out.flatMap((r) => r.results ?? []);
  } catch (e) {
    throw new Error(`wrangler d1 execute failed: ${e.stderr || ""} ${e.stdout?.slice(0, 2000) || ""} ${e.message}`);
  }
}

async function wranglerKv(persistDir, args) {
  try {
    const { stdout } = await execFileP(process.execPath, [
      WRANGLER, 'kv', 'key', ...args,
      '--binding', 'KV', '--local', '--persist-to', persistDir,
    ], { cwd: ROOT, env: wranglerEnv(), encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (e) {
    const err = new Error(`wrangler kv key ${args.join(' ')} failed: ${e.stderr?.toString() || e.message}`);
    err.cause = e;
    throw err;
  }
}

/**
 * The value of `key` in the local KV namespace (binding KV) of `persistDir`,
 * as a UTF-8 string, or null when the key does not exist.
 */
export async function kvGet(persistDir, key) {
  // Without --text wrangler writes the value's exact bytes; for a missing key
  // it prints this line and exits 0.
  const out = await wranglerKv(persistDir, ['get', key]);
  const text = out.toString('utf8');
  if (text === 'Value not found\n') return null;
  return text;
}

/**
 * Keys of the local KV namespace (binding KV) of `persistDir` starting with
 * `prefix`: [{ name, expiration?, metadata? }, ...]. One page: at most 1000 keys.
 */
export async function kvList(persistDir, prefix = '') {
  const out = await wranglerKv(persistDir, ['list', ...(prefix ? ['--prefix', prefix] : [])]);
  const text = out.toString('utf8');
  return JSON.parse(text.slice(text.indexOf('[')));
}

// --- JSON Schema (draft 2020-12) ---

const ajvBySchemaDir = new Map();

function ajvFor(dir) {
  let ajv = ajvBySchemaDir.get(dir);
  if (ajv) return ajv;
  ajv = new Ajv2020({ allErrors: true, strict: false });
  addFormats(ajv);
  // Load every schema beside it, so that $ref between files resolves
  // (by $id, or by file name for schemas without one).
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.json')).sort()) {
    const schema = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
    ajv.addSchema(schema, schema.$id ? undefined : f);
  }
  ajvBySchemaDir.set(dir, ajv);
  return ajv;
}

/**
 * Validate `value` (an object, or a JSON string such as a raw KV value)
 * against the JSON Schema in `schemaPath` (relative to the repo root, or absolute).
 * @returns {{valid: boolean, errors: object[], message: string}}
 */
export function validateAgainstSchema(schemaPath, value) {
  const abs = path.resolve(ROOT, schemaPath);
  const ajv = ajvFor(path.dirname(abs));
  const schema = JSON.parse(fs.readFileSync(abs, 'utf8'));
  const validate = ajv.getSchema(schema.$id ?? path.basename(abs));
  const data = typeof value === 'string' ? JSON.parse(value) : value;
  const valid = validate(data);
  const errors = valid ? [] : validate.errors;
  const message = valid ? '' : ajv.errorsText(errors, { separator: '\n', dataVar: 'value' });
  return { valid, errors, message };
}

/** validateAgainstSchema that throws (with every error) when invalid. */
export function assertMatchesSchema(schemaPath, value) {
  const r = validateAgainstSchema(schemaPath, value);
  if (!r.valid) {
    throw new Error(`value does not match ${schemaPath}:\n${r.message}\nvalue: ${typeof value === 'string' ? value : JSON.stringify(value)}`);
  }
}
