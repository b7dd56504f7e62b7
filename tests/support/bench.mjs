// Worker CPU per request kind under local `wrangler dev` (workerd), where it goes, the storage
// rows and subrequests each kind costs, and what that projects to per device-month at list
// prices. Loopback only, bounded request counts; run by `npm run bench` (scripts/bench.sh).
//
//   node tests/support/bench.mjs
//
// Environment: BENCH_N (measured requests per kind, default 150), BENCH_ROUNDS (the passes they
// are split into, 5), BENCH_WARMUP (30),
// BENCH_PROFILE_N (requests per kind under the profiler, 60), BENCH_PROFILE_DIR (where to keep
// each kind's raw .cpuprofile), BENCH_FLEET (fleet size for the
// second round, 10000; 0 skips it), BENCH_CONCURRENCY (8), BENCH_JSON (write the results there).
//
// CPU: workerd's own accounting of the runtime process that runs the Worker and its Durable
// Objects (the `workerd` child of wrangler that has the inspector), read from
// /proc/<pid>/task/*/schedstat (ns: the scheduler's sum_exec_runtime of every thread, the same
// accounting that utime+stime in /proc/<pid>/stat report in clock ticks) before and after N
// requests of one kind, after a warm-up, divided by N. "Above floor" subtracts the cost of the
// cheapest request (GET Discovery.svc: routing and HTTP only) measured in the same run.
//
// Breakdown: a V8 CPU profile of the Worker's isolate taken through the inspector `wrangler
// dev` exposes (Chrome DevTools Protocol, Profiler domain), self time summed by function. The
// WebSocket client is the `ws` package wrangler's own dependencies install.
//
// Storage rows, Durable Object calls and KV operations: counted by the Worker itself (see
// src/shell/metrics.rs) and returned in the `x-edgemdm-metrics` response header, which exists
// only when the var BENCH_METRICS is "true" (this script sets it). Local workerd runs the Worker
// and its objects in one isolate, so one request's counts include its objects' storage.

import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import WebSocket from 'ws';
import { startWorker } from './worker.mjs';
import {
  characteristic, characteristics, discoverRequest, faultType, getPoliciesRequest, newDeviceId, newKey, parm,
  parseXml, provisioningDoc, renewalPkcs7, request, rstRequest, userTokenSecurity, win10Context, windowsCsr,
} from './device.mjs';
import { admin, createUser } from './enroll.mjs';

const N = Number(process.env.BENCH_N ?? 150);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 30);
const PROFILE_N = Number(process.env.BENCH_PROFILE_N ?? 60);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 5));
const FLEET = Number(process.env.BENCH_FLEET ?? 10000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const EMAIL = 'bench@contoso.com';
const PASSWORD = 'bench password 1';
const METRICS_HEADER = 'x-edgemdm-metrics';

// ---- list prices ------------------------------------------------------------------------------
// Cloudflare's published list prices, Workers Paid plan, as documented on
// developers.cloudflare.com (workers/platform/pricing, durable-objects/platform/pricing,
// kv/platform/pricing; pages last updated 2026-04-21, read 2026-12-04). USD.
const PRICES = {
  date: 'Cloudflare list prices as documented 2026-04-21 (read 2026-12-04)',
  base: 5.0, // Workers Paid, per account-month
  workerRequests: { included: 10e6, perMillion: 0.3 },
  workerCpuMs: { included: 30e6, perMillion: 0.02 },
  doRequests: { included: 1e6, perMillion: 0.15 },
  doGbSeconds: { included: 400e3, perMillion: 12.5, gbPerObject: 0.128 },
  doRowsRead: { included: 25e9, perMillion: 0.001 },
  doRowsWritten: { included: 50e6, perMillion: 1.0 },
  kvReads: { included: 10e6, perMillion: 0.5 },
  kvWrites: { included: 1e6, perMillion: 5.0 }, // writes, deletes and lists are each $5/million
  // D1 (the fleet index), developers.cloudflare.com/d1/platform/pricing: rows as D1 reports them.
  d1RowsRead: { included: 25e9, perMillion: 0.001 },
  d1RowsWritten: { included: 50e6, perMillion: 1.0 },
};

// The usage model: per device and month.
const DAYS_PER_MONTH = 365.25 / 12;
const USAGE = [
  ['checkin', 3 * DAYS_PER_MONTH, '3 check-ins a day (one OMA-DM session each, nothing queued)'],
  ['floor', 1 / 12, 'one enrollment a year: GET Discovery.svc'],
  ['discover', 1 / 12, '  POST Discover'],
  ['policies', 1 / 12, '  GetPolicies'],
  ['enroll', 1 / 12, '  WSTEP enrollment'],
  ['renew', 1 / 12, 'one renewal a year (ROBO)'],
];

// ---- workerd CPU ------------------------------------------------------------------------------
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

function procStat(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** The workerd processes of a wrangler dev: { runtime, proxy } pids. */
function workerdPids(pgid) {
  const found = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const f = procStat(name);
      if (Number(f[2]) !== pgid) continue;
      const cmd = fs.readFileSync(`/proc/${name}/cmdline`, 'utf8');
      if (/workerd\0serve/.test(cmd) || cmd.includes('/workerd\0')) found.push({ pid: Number(name), cmd });
    } catch { /* gone */ }
  }
  const runtime = found.find((p) => p.cmd.includes('--inspector-addr'));
  const proxy = found.find((p) => p !== runtime);
  if (!runtime) throw new Error(`bench: no workerd runtime process with an inspector in group ${pgid}`);
  return { runtime: runtime.pid, proxy: proxy?.pid };
}

/** CPU of a process so far: ms from schedstat (ns, all threads) and from stat (ticks). */
function cpuOf(pid) {
  if (!pid) return { ms: 0, tickMs: 0 };
  let ns = 0;
  for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
    try { ns += Number(fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]); } catch { /* thread gone */ }
  }
  const f = procStat(pid);
  return { ms: ns / 1e6, tickMs: ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK };
}

/** The median of a list of numbers (the mean of the middle two for an even count). */
const median = (xs) => { const v = [...xs].sort((a, b) => a - b); return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2; };

// ---- requests ---------------------------------------------------------------------------------
const EMPTY = () => ({ rows_read: 0, rows_written: 0, do_calls: 0, do_ms: 0, kv_reads: 0, kv_writes: 0, kv_lists: 0, index_rows_read: 0, index_rows_written: 0 });
let tally = EMPTY();
let requestsSent = 0;

// The isolate's cumulative counts as of the latest response (background work included).
let lastTotal = null;

function count(res) {
  requestsSent += 1;
  const t = res.headers.get(`${METRICS_HEADER}-total`);
  if (t) lastTotal = JSON.parse(t);
  const h = res.headers.get(METRICS_HEADER);
  if (!h) return;
  const m = JSON.parse(h);
  for (const k of Object.keys(tally)) tally[k] += m[k] ?? 0;
  tally.reported = (tally.reported ?? 0) + 1;
}

async function call(url, init) {
  const res = await request(url, init);
  const text = await res.text();
  count(res);
  if (res.status !== 200) throw new Error(`bench: ${init?.method ?? 'GET'} ${url} answered ${res.status}: ${text.slice(0, 300)}`);
  return text;
}

const soap = (url, body) => call(url, { method: 'POST', body, headers: { 'content-type': 'application/soap+xml; charset=utf-8' } });

function noFault(text) {
  const f = faultType(parseXml(text));
  if (f !== null) throw new Error(`bench: fault ${f}: ${text.slice(0, 600)}`);
  return text;
}

// ---- a minimal OMA-DM client for check-ins ------------------------------------------------------
const md5b64 = (x) => crypto.createHash('md5').update(x).digest('base64');

function dmClient(deviceId, doc) {
  const app = characteristic(doc, 'APPLICATION');
  const appsrv = characteristics(app, 'APPAUTH').find((a) => parm(a, 'AAUTHLEVEL') === 'APPSRV');
  return {
    id: deviceId,
    name: parm(appsrv, 'AAUTHNAME'),
    secret: parm(appsrv, 'AAUTHSECRET'),
    nonce: Buffer.from(parm(appsrv, 'AAUTHDATA'), 'base64'),
    addr: parm(app, 'ADDR'),
    session: 0,
  };
}

function hdr(c, msgId, cred) {
  const credXml = cred
    ? `<Cred><Meta><Format xmlns="syncml:metinf">b64</Format><Type xmlns="syncml:metinf">syncml:auth-md5</Type></Meta>` +
      `<Data>${md5b64(Buffer.concat([Buffer.from(`${md5b64(`${c.name}:${c.secret}`)}:`), c.nonce]))}</Data></Cred>`
    : '';
  return `<SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto><SessionID>${c.session.toString(16).toUpperCase()}</SessionID>` +
    `<MsgID>${msgId}</MsgID><Target><LocURI>${c.addr}</LocURI></Target><Source><LocURI>${c.id}</LocURI><LocName>${c.name}</LocName></Source>` +
    `${credXml}<Meta><MaxMsgSize xmlns="syncml:metinf">65535</MaxMsgSize></Meta></SyncHdr>`;
}

async function send(c, xml) {
  const text = await call(c.addr, { method: 'POST', body: xml, headers: { 'content-type': 'application/vnd.syncml.dm+xml' } });
  const nonce = text.match(/<NextNonce[^>]*>([^<]+)</);
  if (nonce) c.nonce = Buffer.from(nonce[1], 'base64');
  return text;
}

/** One whole session: 1201 + DevInfo, then statuses for whatever the server sends, until it is done. */
async function checkIn(c) {
  c.session += 1;
  let text = await send(c, `<SyncML xmlns="SYNCML:SYNCML1.2">${hdr(c, 1, true)}<SyncBody>` +
    `<Alert><CmdID>1</CmdID><Data>1201</Data></Alert>` +
    `<Replace><CmdID>2</CmdID><Item><Source><LocURI>./DevInfo/Man</LocURI></Source><Data>Contoso</Data></Item></Replace><Final/></SyncBody></SyncML>`);
  // 200 (each message authenticated), or 212 (authenticated for the session: trees before
  // per-message authentication, compared with BENCH_AB).
  if (!['200', '212'].includes(text.match(/<Cmd>SyncHdr<\/Cmd>[\s\S]*?<Data>(\d+)<\/Data>/)?.[1])) throw new Error(`bench: check-in not authenticated: ${text}`);
  for (let msgId = 2; ; msgId++) {
    const cmds = [...text.matchAll(/<(Get|Exec|Replace|Add|Delete)><CmdID>(\d+)<\/CmdID>/g)];
    if (cmds.length === 0) return;
    const statuses = cmds.map(([, cmd, id], i) =>
      `<Status><CmdID>${i + 2}</CmdID><MsgRef>${msgId - 1}</MsgRef><CmdRef>${id}</CmdRef><Cmd>${cmd}</Cmd><Data>200</Data></Status>`).join('');
    // Every message carries its Cred, over the NextNonce of the reply before it.
    text = await send(c, `<SyncML xmlns="SYNCML:SYNCML1.2">${hdr(c, msgId, true)}<SyncBody>` +
      `<Status><CmdID>1</CmdID><MsgRef>${msgId - 1}</MsgRef><CmdRef>0</CmdRef><Cmd>SyncHdr</Cmd><Data>200</Data></Status>${statuses}<Final/></SyncBody></SyncML>`);
  }
}

// ---- the inspector: a V8 CPU profile of the Worker's isolate ----------------------------------------
async function inspector(port) {
  const list = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
  const ws = new WebSocket(list[0].webSocketDebuggerUrl);
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  let id = 0;
  const waiting = new Map();
  ws.on('message', (data) => {
    const msg = JSON.parse(data.toString());
    // workerd answers Profiler calls echoing the method, and a call without a result (enable,
    // start) with its own params: any message with our id settles the call.
    const w = msg.id !== undefined && waiting.get(msg.id);
    if (!w) return;
    waiting.delete(msg.id);
    if (msg.error) w.reject(new Error(`bench: inspector ${JSON.stringify(msg.error)}`)); else w.resolve(msg.result ?? {});
  });
  const send = (method, params = {}) => new Promise((resolve, reject) => {
    const n = ++id;
    waiting.set(n, { resolve, reject });
    ws.send(JSON.stringify({ id: n, method, params }));
  });
  return { send, close: () => ws.close() };
}

const cleanName = (frame) => {
  let name = frame.functionName || '(anonymous)';
  name = name.replace(/::h[0-9a-f]{16}$/, '').replace(/^_ZN/, '');
  if (name.length > 90) name = `${name.slice(0, 87)}...`;
  const url = frame.url ? ` ${frame.url.split('/').pop()}` : '';
  return `${name}${frame.url && !frame.url.endsWith('.wasm') ? url : ''}`;
};

/**
 * Names the profile's anonymous JavaScript functions after the wasm-bindgen import they
 * implement (`__wbg_get_…: function (…) {…}`): the glue's imports are anonymous function
 * expressions, so the profile would otherwise lump every boundary crossing into one
 * "(anonymous)". Reads each script's source through the inspector's Debugger domain.
 */
async function nameAnonymous(insp, profile) {
  const anonymous = profile.nodes.filter((n) => !n.callFrame.functionName && n.callFrame.url && n.callFrame.scriptId !== '0');
  if (anonymous.length === 0) return;
  await insp.send('Debugger.enable');
  const sources = new Map();
  for (const n of anonymous) {
    const f = n.callFrame;
    if (!sources.has(f.scriptId)) {
      const got = await insp.send('Debugger.getScriptSource', { scriptId: f.scriptId }).catch(() => ({}));
      sources.set(f.scriptId, (got.scriptSource ?? '').split('\n'));
    }
    const lines = sources.get(f.scriptId);
    const before = [...lines.slice(Math.max(0, f.lineNumber - 3), f.lineNumber), (lines[f.lineNumber] ?? '').slice(0, f.columnNumber)].join('\n');
    const names = [...before.slice(-400).matchAll(/(__wbg_[A-Za-z0-9_$]+|__wbindgen_[A-Za-z0-9_$]+)\s*[:=(]/g)];
    if (names.length) f.functionName = `(anonymous ${names[names.length - 1][1].replace(/_[0-9a-f]{16}$/, '')})`;
  }
  await insp.send('Debugger.disable');
}

/** Self time by function, ms per request, top `top`. */
function summarise(profile, requests, top = 10) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = (profile.timeDeltas[i + 1] ?? 0) / 1000; // µs → ms, the time until the next sample
    const node = byId.get(profile.samples[i]);
    const name = cleanName(node.callFrame);
    if (name === '(idle)') continue;
    total += dt;
    self.set(name, (self.get(name) ?? 0) + dt);
  }
  const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top)
    .map(([name, ms]) => ({ name, msPerReq: ms / requests, share: total ? ms / total : 0 }));
  return { totalMsPerReq: total / requests, rows };
}

// ---- the platform's floor ---------------------------------------------------------------------
/**
 * What the runtime charges for the steps edgemdm's request kinds are built from, measured the
 * same way in a Worker with no logic of its own (tests/support/platform-floor): an object call,
 * and an object call that reads and writes one storage row. Every check-in makes at least one of
 * the latter (the device's object holds its session); an enrollment at least three (the token's
 * object, the CA, the device's object). A kind cannot cost less above the floor than its steps do
 * here. Local D1 runs in the same runtime process, so its statement's cost includes the
 * database's own work, which D1 does elsewhere in production.
 */
async function platformFloor(rounds, per, warm) {
  const fw = await startWorker({ config: path.join(path.dirname(new URL(import.meta.url).pathname), 'platform-floor', 'wrangler.toml') });
  try {
    const pid = workerdPids(fw.child.pid).runtime;
    const steps = {
      floor: ['GET, answered at once (its floor)', '/'],
      call: ['1 object call', '/call?n=1'],
      rw: ['1 object call, 1 row read and written', '/rw?n=1'],
      rw3: ['3 object calls, 1 row read and written in each', '/rw?n=3'],
      d1: ['1 D1 statement (a check-in time, fleet index)', '/d1'],
    };
    await call(`${fw.url}/d1/setup`);
    const passes = [];
    for (let p = 0; p < rounds; p++) {
      const pass = {};
      for (const [name, [, route]] of Object.entries(steps)) {
        for (let i = 0; i < (p === 0 ? warm : 0); i++) await call(`${fw.url}${route}`);
        const a = cpuOf(pid);
        for (let i = 0; i < per; i++) await call(`${fw.url}${route}`);
        pass[name] = (cpuOf(pid).ms - a.ms) / per;
      }
      passes.push(pass);
    }
    const out = {};
    console.log(`\nbench: the platform's floor: a Worker with no logic (tests/support/platform-floor), same method (n=${per * rounds} in ${rounds} passes), CPU ms above its own floor`);
    for (const [name, [label]] of Object.entries(steps)) {
      const above = passes.map((p) => p[name] - p.floor);
      out[name] = { label, cpuMs: median(passes.map((p) => p[name])), aboveFloorMs: median(above), spread: [Math.min(...above), Math.max(...above)] };
      console.log(`bench:   ${label.padEnd(48)} ${out[name].cpuMs.toFixed(2).padStart(6)} ${out[name].aboveFloorMs.toFixed(2).padStart(6)}  (${out[name].spread.map((x) => x.toFixed(2)).join('–')})`);
    }
    return out;
  } finally {
    await fw.stop();
  }
}

/** Sets a worker up for the request kinds (a user, an enrollment token, 10 enrolled devices). */
async function prepare(w) {
  await createUser(w, EMAIL, PASSWORD);
  const discovery = `${w.url}/EnrollmentServer/Discovery.svc`;
  const policy = `${w.url}/EnrollmentServer/PolicyEnrollmentWebservice.svc`;
  const enrollUrl = `${w.url}/EnrollmentServer/Win10DeviceEnrollmentWebservice.svc`;
  const newToken = async (uses) => {
    const r = await admin(w, 'POST', '/api/v1/enrollment-tokens', { email: EMAIL, expires_in_seconds: 86400, uses });
    if (r.status !== 201) throw new Error(`bench: enrollment token: ${JSON.stringify(r.body)}`);
    return userTokenSecurity(r.body.token);
  };
  const security = await newToken(100000);
  const key = newKey();

  const enrollRst = () => {
    const id = newDeviceId();
    return { id, body: rstRequest(enrollUrl, security, { token: windowsCsr(id, key).toString('base64'), context: win10Context(id) }) };
  };
  const enrollOne = async (rst) => {
    const text = noFault(await soap(enrollUrl, rst.body));
    const doc = parseXml(provisioningDoc(parseXml(text)))['wap-provisioningdoc'];
    return { id: rst.id, doc };
  };
  const clientCert = (doc) => {
    const my = characteristic(characteristic(characteristic(doc, 'CertificateStore'), 'My'), 'User');
    const client = (Array.isArray(my.characteristic) ? my.characteristic : [my.characteristic]).find((c) => c['@type'] !== 'PrivateKeyContainer');
    return Buffer.from(parm(client, 'EncodedCertificate'), 'base64');
  };

  // A fleet of 10 devices that check in.
  const fleet = [];
  for (let i = 0; i < 10; i++) {
    const d = await enrollOne(enrollRst());
    fleet.push(dmClient(d.id, d.doc));
  }

  // Renewals: each needs a current certificate, so devices are enrolled for it first.
  const renewKey = newKey();
  async function renewals(count) {
    const out = [];
    for (let i = 0; i < count; i++) {
      const d = await enrollOne(enrollRst());
      const csr = windowsCsr(d.id, renewKey, { hash: 'sha256' });
      const p7 = await renewalPkcs7(clientCert(d.doc), key, csr);
      out.push(rstRequest(enrollUrl, '', { token: p7.toString('base64'), requestType: 'Renew',
        valueType: 'http://schemas.microsoft.com/windows/pki/2009/01/enrollment#PKCS7', context: win10Context(d.id) }));
    }
    return out;
  }

  const kinds = {
    floor: { label: 'GET Discovery.svc (floor)', make: () => null, run: () => call(discovery) },
    discover: { label: 'POST Discover', make: () => null, run: () => soap(discovery, discoverRequest(discovery)).then(noFault) },
    policies: { label: 'GetPolicies (enrollment token)', make: () => null, run: () => soap(policy, getPoliciesRequest(policy, security)).then(noFault) },
    enroll: { label: 'WSTEP enrollment (enrollment token)', make: enrollRst, run: (x) => enrollOne(x) },
    renew: { label: 'WSTEP renewal (ROBO)', make: null, run: (x) => soap(enrollUrl, x).then(noFault) },
    checkin: { label: 'OMA-DM session, nothing queued', make: () => null, run: (_, i) => checkIn(fleet[i % fleet.length]) },
  };
  return { kinds, renewals, enrollRst, enrollOne };
}

// ---- A/B: two builds side by side -------------------------------------------------------------
/**
 * BENCH_AB=dirA,dirB: two builds of the Worker (a copy of build/, or another checkout's build/),
 * served at once by two `wrangler dev`, and every kind measured in alternating blocks on each
 * (A B, B A, A B …) with each runtime's own CPU accounting. A burst of load on the machine, which
 * moves a single run by ±30%, then falls on both builds alike. Prints each build's CPU per request
 * above its own floor (median over the blocks, with the spread) and the difference. The same
 * build on both sides has measured renewals up to 1.4 ms apart (the first side slower): compare
 * in both orders.
 */
async function compareBuilds(dirs) {
  const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
  const BLOCKS = Number(process.env.BENCH_AB_BLOCKS ?? 8);
  const per = Math.max(1, Math.round(N / BLOCKS));
  const sides = [];
  try {
    for (const dir of dirs) {
      const abs = path.resolve(dir);
      // The build/ of another checkout is served with that checkout's own wrangler.toml (an
      // older tree binds other objects); a copied build directory with this tree's.
      const own = path.join(abs, '..', 'wrangler.toml');
      const toml = fs.readFileSync(fs.existsSync(own) ? own : path.join(ROOT, 'wrangler.toml'), 'utf8');
      const cfgDir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgemdm-ab-'));
      const config = path.join(cfgDir, 'wrangler.toml');
      fs.writeFileSync(config, toml
        .replace(/^main = .*$/m, `main = ${JSON.stringify(path.join(abs, 'worker', 'shim.mjs'))}`)
        .replace(/^\[build\]\ncommand = .*$/m, '')
        .replace(/^directory = "build\/console"$/m, `directory = ${JSON.stringify(path.join(abs, 'console'))}`)
        .replace(/^migrations_dir = "migrations"$/m, `migrations_dir = ${JSON.stringify(path.join(ROOT, 'migrations'))}`));
      const w = await startWorker({ config, migrate: true, vars: { AUTH_POLICY: 'OnPremise', INDEX_CHECKIN_GRANULARITY_SECONDS: process.env.BENCH_INDEX_GRANULARITY ?? '0' } });
      sides.push({ dir, w, pid: workerdPids(w.child.pid).runtime, ...(await prepare(w)) });
    }
    console.log(`bench: A/B: A = ${dirs[0]}, B = ${dirs[1]}; per kind ${BLOCKS} blocks of ${per} on each, alternating, after ${WARMUP} warm-up; CPU ms per request`);
    const cpu = {};
    for (const kind of Object.keys(sides[0].kinds)) {
      const inputs = [];
      for (const x of sides) {
        const k = x.kinds[kind];
        const count = WARMUP + BLOCKS * per;
        inputs.push(k.make ? Array.from({ length: count }, k.make) : await x.renewals(count));
      }
      const used = sides.map(() => 0);
      const run = async (i, n) => {
        const k = sides[i].kinds[kind];
        const a = cpuOf(sides[i].pid).ms;
        for (let j = 0; j < n; j++, used[i]++) await k.run(inputs[i][used[i]], used[i]);
        return (cpuOf(sides[i].pid).ms - a) / n;
      };
      for (let i = 0; i < sides.length; i++) await run(i, WARMUP);
      cpu[kind] = sides.map(() => []);
      for (let b = 0; b < BLOCKS; b++) {
        for (const i of b % 2 ? [1, 0] : [0, 1]) cpu[kind][i].push(await run(i, per));
      }
    }
    console.log(`bench:   ${'kind'.padEnd(38)} ${'A'.padStart(22)} ${'B'.padStart(22)}   B − A`);
    for (const kind of Object.keys(cpu)) {
      const above = cpu[kind].map((xs, i) => xs.map((x, b) => x - cpu.floor[i][b]));
      const f = (xs) => `${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`;
      const label = kind === 'floor' ? `${sides[0].kinds[kind].label}, absolute` : `${sides[0].kinds[kind].label}, above floor`;
      const [a, b] = kind === 'floor' ? cpu[kind] : above;
      console.log(`bench:   ${label.padEnd(38).slice(0, 38)} ${f(a).padStart(22)} ${f(b).padStart(22)}   ${(median(b) - median(a)).toFixed(2).padStart(6)}`);
    }
  } finally {
    for (const x of sides) await x.w.stop();
  }
}

if (process.env.BENCH_AB) {
  await compareBuilds(process.env.BENCH_AB.split(','));
  process.exit(0);
}

// ---- the run ------------------------------------------------------------------------------------
// INDEX_CHECKIN_GRANULARITY_SECONDS 0: every session here moves the device's check-in time in
// the fleet index, as each of 3 sessions a day (8 hours apart) does in the usage model, so a
// check-in's CPU and D1 rows include that write.
const w = await startWorker({ vars: { AUTH_POLICY: 'OnPremise', BENCH_METRICS: 'true', INDEX_CHECKIN_GRANULARITY_SECONDS: process.env.BENCH_INDEX_GRANULARITY ?? '0' } });
const results = { n: N, warmup: WARMUP, kinds: {}, fleet: {} };
try {
  const pids = workerdPids(w.child.pid);
  console.log(`bench: workerd runtime pid ${pids.runtime} (Worker + Durable Objects), proxy pid ${pids.proxy ?? '-'}; CLK_TCK ${CLK_TCK}`);
  const { kinds, renewals, enrollRst, enrollOne } = await prepare(w);

  async function measure(kindName, n, warm) {
    const k = kinds[kindName];
    const inputs = k.make ? Array.from({ length: warm + n }, k.make) : await renewals(warm + n);
    for (let i = 0; i < warm; i++) await k.run(inputs[i], i);
    tally = EMPTY();
    const total0 = lastTotal;
    const sent0 = requestsSent;
    const a = { rt: cpuOf(pids.runtime), px: cpuOf(pids.proxy) };
    const t0 = performance.now();
    for (let i = warm; i < warm + n; i++) await k.run(inputs[i], i);
    const wall = performance.now() - t0;
    const b = { rt: cpuOf(pids.runtime), px: cpuOf(pids.proxy) };
    const http = (requestsSent - sent0) / n;
    const per = (x) => x / n;
    const m = Object.fromEntries(Object.entries(tally).filter(([k2]) => k2 !== 'reported').map(([k2, v]) => [k2, per(v)]));
    // The fleet index is written after the response: count D1 rows from the isolate's totals,
    // once the last request's background work has settled (a probe that writes nothing).
    await new Promise((r) => setTimeout(r, 300));
    count(await request(`${w.url}/EnrollmentServer/Discovery.svc`));
    if (total0 && lastTotal) {
      m.index_rows_read = per(lastTotal.index_rows_read - total0.index_rows_read);
      m.index_rows_written = per(lastTotal.index_rows_written - total0.index_rows_written);
    }
    return {
      label: k.label, n, http,
      cpuMs: per(b.rt.ms - a.rt.ms), cpuTickMs: per(b.rt.tickMs - a.rt.tickMs), proxyCpuMs: per(b.px.ms - a.px.ms),
      wallMs: wall / n, metrics: tally.reported ? m : null,
    };
  }

  // The N requests of each kind are measured in ROUNDS passes over every kind in turn, and each
  // figure is the median over the passes (the CPU above the floor is taken within each pass, the
  // floor measured minutes apart would carry the machine's drift): a burst of other load on the
  // machine then moves one pass, not the result. The spread column is the lowest and highest
  // pass's CPU above the floor.
  async function round(label) {
    const per = Math.max(1, Math.round(N / ROUNDS));
    const passes = [];
    for (let p = 0; p < ROUNDS; p++) {
      const pass = {};
      for (const kind of Object.keys(kinds)) pass[kind] = await measure(kind, per, p === 0 ? WARMUP : 0);
      passes.push(pass);
    }
    const out = {};
    for (const kind of Object.keys(kinds)) {
      const all = passes.map((p) => p[kind]);
      const above = passes.map((p) => p[kind].cpuMs - p.floor.cpuMs);
      const avg = (f) => all.reduce((a, r) => a + (f(r) ?? 0), 0) / all.length;
      const metrics = all.every((r) => r.metrics) ? Object.fromEntries(Object.keys(all[0].metrics).map((k2) => [k2, avg((r) => r.metrics[k2])])) : null;
      out[kind] = {
        label: all[0].label, n: per * ROUNDS, http: avg((r) => r.http),
        cpuMs: median(all.map((r) => r.cpuMs)), aboveFloorMs: median(above), spread: [Math.min(...above), Math.max(...above)],
        cpuTickMs: median(all.map((r) => r.cpuTickMs)), proxyCpuMs: median(all.map((r) => r.proxyCpuMs)), wallMs: median(all.map((r) => r.wallMs)),
        metrics,
      };
    }
    console.log(`\nbench: ${label}: worker CPU per request kind (n=${per * ROUNDS} in ${ROUNDS} passes of ${per}, after ${WARMUP} warm-up; runtime process; medians over the passes; floor = GET Discovery.svc)`);
    console.log(`bench:   ${'kind'.padEnd(38)} ${'CPU ms'.padStart(7)} ${'-floor'.padStart(7)} ${'spread'.padStart(11)} ${'ticks'.padStart(6)} ${'proxy'.padStart(6)} ${'wall'.padStart(6)}  http  rows r/w   DO calls (ms)  KV r/w/list  D1 rows r/w`);
    for (const r of Object.values(out)) {
      const m = r.metrics;
      const f = (x, d = 2) => (x ?? 0).toFixed(d);
      const cols = m ? `${f(m.rows_read, 1).padStart(4)}/${f(m.rows_written, 1).padEnd(4)}  ${f(m.do_calls, 1).padStart(4)} (${f(m.do_ms, 1)})    ${f(m.kv_reads, 1)}/${f(m.kv_writes, 1)}/${f(m.kv_lists, 1)}    ${f(m.index_rows_read, 1)}/${f(m.index_rows_written, 1)}` : 'n/a (no metrics header)';
      const spread = `${f(r.spread[0])}–${f(r.spread[1])}`;
      console.log(`bench:   ${r.label.padEnd(38)} ${f(r.cpuMs).padStart(7)} ${f(r.aboveFloorMs).padStart(7)} ${spread.padStart(11)} ${f(r.cpuTickMs, 1).padStart(6)} ${f(r.proxyCpuMs).padStart(6)} ${f(r.wallMs).padStart(6)}  ${f(r.http, 0).padStart(4)}  ${cols}`);
    }
    return out;
  }

  results.kinds = await round('fleet of ~10 devices');
  results.platform = await platformFloor(ROUNDS, Math.max(1, Math.round(N / ROUNDS)), WARMUP);
  {
    const p = results.platform;
    const k = results.kinds;
    console.log(`bench:   a check-in needs at least one object call that reads and writes a row: ${p.rw.aboveFloorMs.toFixed(2)} ms here, ${k.checkin.aboveFloorMs.toFixed(2)} ms for edgemdm's`);
    console.log(`bench:   an enrollment needs at least three: ${p.rw3.aboveFloorMs.toFixed(2)} ms here, ${k.enroll.aboveFloorMs.toFixed(2)} ms for edgemdm's`);
    console.log(`bench:   edgemdm's check-in above includes a fleet index write after the reply; one D1 statement costs ${p.d1.aboveFloorMs.toFixed(2)} ms here (local D1 runs in this process)`);
  }

  // Where the CPU goes: a V8 profile per kind, taken after the CPU measurements (the profiler
  // costs CPU itself). BENCH_PROFILE_N=0 skips it.
  results.profiles = {};
  if (PROFILE_N > 0) {
    console.log(`\nbench: where it goes: V8 CPU profile of the Worker's isolate, self time, top functions (n=${PROFILE_N} per kind)`);
    const insp = await inspector(w.inspectorPort);
    await insp.send('Profiler.enable');
    await insp.send('Profiler.setSamplingInterval', { interval: 100 });
    // A first profile of a few requests, thrown away: the first one taken after enabling the
    // profiler has come back without samples.
    await insp.send('Profiler.start');
    for (let i = 0; i < 5; i++) await kinds.floor.run(null, i);
    await insp.send('Profiler.stop');
    for (const [name, k] of Object.entries(kinds)) {
      const inputs = k.make ? Array.from({ length: PROFILE_N }, k.make) : await renewals(PROFILE_N);
      await insp.send('Profiler.start');
      for (let i = 0; i < PROFILE_N; i++) await k.run(inputs[i], i);
      const { profile } = await insp.send('Profiler.stop');
      await nameAnonymous(insp, profile);
      // BENCH_PROFILE_DIR: keep each kind's raw profile (Chrome DevTools' .cpuprofile format).
      if (process.env.BENCH_PROFILE_DIR) {
        fs.mkdirSync(process.env.BENCH_PROFILE_DIR, { recursive: true });
        fs.writeFileSync(`${process.env.BENCH_PROFILE_DIR}/${name}.cpuprofile`, JSON.stringify(profile));
      }
      const s = summarise(profile, PROFILE_N);
      results.profiles[name] = s;
      // The profiler's own cost inflates sampled time; shares are scaled to the CPU measured above.
      const cpu = results.kinds[name].cpuMs;
      console.log(`bench:   ${k.label}: ${s.totalMsPerReq.toFixed(2)} ms/req sampled in the isolate (profiler running); share of samples, and that share of the ${cpu.toFixed(2)} ms measured`);
      for (const r of s.rows) console.log(`bench:     ${(r.share * 100).toFixed(1).padStart(5)}%  ${(r.share * cpu * 1000).toFixed(0).padStart(6)} µs  ${r.name}`);
    }
    await insp.send('Profiler.disable');
    insp.close();
  }

  // Concurrent enrollments: what the CA object sustains.
  {
    const inputs = Array.from({ length: N }, enrollRst);
    let next = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => { while (next < inputs.length) await enrollOne(inputs[next++]); }));
    const s = (performance.now() - t0) / 1000;
    results.concurrentEnrollPerSec = N / s;
    console.log(`\nbench: concurrent enrollments (concurrency ${CONCURRENCY}, n=${N}): ${(N / s).toFixed(0)} enrollments/s end to end on this machine`);
  }

  // The fleet grows to FLEET devices; then every kind again.
  if (FLEET > 0) {
    const have = 10 + 2 * (WARMUP + N) + PROFILE_N * 2 + N + 10;
    const todo = Math.max(0, FLEET - have);
    const t0 = performance.now();
    let done = 0;
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (done < todo) { done++; await enrollOne(enrollRst()); }
    }));
    console.log(`\nbench: enrolled ${todo} more devices in ${((performance.now() - t0) / 1000).toFixed(0)} s (fleet ~${have + todo})`);
    results.fleetSize = have + todo;
    results.fleet = await round(`fleet of ~${have + todo} devices`);
  }

  // ---- cost per device-month ------------------------------------------------------------------
  const perDevice = (set) => {
    const u = { workerRequests: 0, workerCpuMs: 0, doRequests: 0, doGbSeconds: 0, doRowsRead: 0, doRowsWritten: 0, kvReads: 0, kvWrites: 0, d1RowsRead: 0, d1RowsWritten: 0 };
    // Billed CPU: what a request costs the runtime beyond what it costs to answer one from a
    // Worker with no logic (the platform's floor, measured above). edgemdm's own floor (GET
    // Discovery.svc) runs its code, which is billed, so it is not what is taken off here.
    const floor = results.platform.floor.cpuMs;
    for (const [kind, perMonth] of USAGE) {
      const r = set[kind];
      const m = r.metrics ?? EMPTY();
      u.workerRequests += perMonth * r.http;
      u.workerCpuMs += perMonth * Math.max(0, r.cpuMs - floor);
      u.doRequests += perMonth * m.do_calls;
      u.doGbSeconds += perMonth * (m.do_ms / 1000) * PRICES.doGbSeconds.gbPerObject;
      u.doRowsRead += perMonth * m.rows_read;
      u.doRowsWritten += perMonth * m.rows_written;
      u.kvReads += perMonth * m.kv_reads;
      u.kvWrites += perMonth * (m.kv_writes + m.kv_lists);
      u.d1RowsRead += perMonth * (m.index_rows_read ?? 0);
      u.d1RowsWritten += perMonth * (m.index_rows_written ?? 0);
    }
    return u;
  };
  const bill = (u, devices) => {
    const lines = {};
    let total = PRICES.base;
    for (const [k, v] of Object.entries(u)) {
      const p = PRICES[k];
      const cost = (Math.max(0, v * devices - p.included) / 1e6) * p.perMillion;
      lines[k] = cost;
      total += cost;
    }
    return { total, lines };
  };
  const list = (u) => Object.entries(u).reduce((s, [k, v]) => s + (v / 1e6) * PRICES[k].perMillion, 0);

  console.log(`\nbench: cost model: per device and month ${USAGE.map(([, n, what]) => `${what.trim()} (${n.toFixed(n < 1 ? 3 : 1)})`).join('; ')}`);
  console.log(`bench: prices: ${PRICES.date}: Workers $${PRICES.base}/month incl. 10M requests + $0.30/M and 30M CPU-ms + $0.02/M; ` +
    'Durable Objects 1M requests + $0.15/M, 400k GB-s + $12.50/M GB-s (128 MB per object), SQLite rows read 25G + $0.001/M, rows written 50M + $1.00/M; ' +
    'KV 10M reads + $0.50/M, 1M writes/lists + $5.00/M; D1 rows read 25G + $0.001/M, rows written 50M + $1.00/M. Billed CPU taken as CPU above the platform floor (a Worker with no logic), local D1 work included; DO duration as the wall time of object calls measured here.');
  const sets = [['~10 devices', results.kinds], ...(FLEET > 0 ? [[`~${results.fleetSize} devices`, results.fleet]] : [])];
  results.cost = {};
  for (const [label, set] of sets) {
    const u = perDevice(set);
    const f = (x, d) => x.toFixed(d);
    console.log(`bench:   usage per device-month (measured at ${label}): ${f(u.workerRequests, 1)} Worker requests, ${f(u.workerCpuMs, 2)} CPU-ms, ` +
      `${f(u.doRequests, 1)} DO requests, ${f(u.doGbSeconds, 4)} GB-s, ${f(u.doRowsRead, 1)} rows read, ${f(u.doRowsWritten, 1)} rows written, ` +
      `${f(u.kvReads, 2)} KV reads, ${f(u.kvWrites, 2)} KV writes, ${f(u.d1RowsWritten, 1)} D1 rows written (fleet index)`);
    console.log(`bench:   at list price with no allowances: $${(list(u) * 1000).toFixed(4)} per 1000 device-months`);
    results.cost[label] = { usage: u, list: list(u), fleets: {} };
    for (const devices of [10, 100, 1000, 10000, 100000]) {
      const b = bill(u, devices);
      results.cost[label].fleets[devices] = b;
      const over = Object.entries(b.lines).filter(([, c]) => c > 0).map(([k, c]) => `${k} $${c.toFixed(2)}`).join(', ') || 'all within the included usage';
      console.log(`bench:     ${String(devices).padStart(6)} devices: $${b.total.toFixed(2)}/month, $${(b.total / devices).toFixed(4)} per device-month (${over})`);
    }
  }
  if (process.env.BENCH_JSON) fs.writeFileSync(process.env.BENCH_JSON, JSON.stringify(results, null, 2));
} finally {
  await w.stop();
}

// =============================================================================================
// Configuration profiles (issue 11). A section of its own, with its own worker: check-in time
// of a device with 0, 20 and 100 applicable profiles of 10 settings each (the first session,
// which delivers and verifies them, then steady check-ins), and the admin call that assigns a
// profile to every device of an enrolled fleet, with the first check-in after it.
//   BENCH_PROFILE_FLEET (default 10000) devices are enrolled for the assignment.
// =============================================================================================
// Self-contained: it imports and names what it uses, whatever the sections above define.
{
  const { SyncMLDevice } = await import('./syncml-device.mjs');
  const { startWorker: start } = await import('./worker.mjs');
  const { newDeviceId: newId, newKey: rsaKey, post: soapPost, rstRequest: rst, usernameToken: unt, win10Context: context,
    windowsCsr: csr } = await import('./device.mjs');
  const { admin: api, createUser: addUser, enrollDevice: enrollOne } = await import('./enroll.mjs');
  const PROFILE_FLEET = Number(process.env.BENCH_PROFILE_FLEET ?? 10000);
  const ROUNDS = Math.min(Number(process.env.BENCH_N ?? 100), 20);
  const PARALLEL = Number(process.env.BENCH_CONCURRENCY ?? 8);
  const USER = 'profiles-bench@contoso.com';
  const SECRET = 'profiles bench password 1';
  const line = (name, ms, extra = '') => console.log(`bench: profiles: ${name.padEnd(52)} ${ms.toFixed(1).padStart(8)} ms${extra}`);
  const pw = await start({ vars: { AUTH_POLICY: 'OnPremise' } });
  try {
    await addUser(pw, USER, SECRET);
    const key = rsaKey();
    const tenSettings = (p) => Array.from({ length: 10 }, (_, k) => (
      { uri: `./Device/Vendor/MSFT/Policy/Config/Bench${p}/Setting${k}`, format: 'int', data: String(k) }));
    const device = async () => {
      const enr = await enrollOne(pw, { email: USER, password: SECRET, key });
      return { id: enr.deviceId, dev: SyncMLDevice.fromEnrollment(enr, { tree: true }) };
    };
    const timeSession = async (dev) => {
      const t0 = performance.now();
      const s = await dev.runSession();
      return { ms: performance.now() - t0, messages: s.replies.length, commands: s.commands.length };
    };
    const steady = {};
    let serial = 0;
    for (const count of [0, 20, 100]) {
      const { id, dev } = await device();
      await dev.runSession(); // enrolled and checked in once, before any profile
      for (let i = 0; i < count; i++) {
        const r = await api(pw, 'POST', '/api/v1/profiles', { name: `bench ${serial}`, settings: tenSettings(serial++), targets: { devices: [id] } });
        if (r.status !== 201) throw new Error(`bench: profile ${r.status} ${JSON.stringify(r.body)}`);
      }
      const first = await timeSession(dev);
      line(`first check-in, ${count} profiles x 10 settings (session)`, first.ms, `  ${first.messages} messages, ${first.commands} commands`);
      const states = (await api(pw, 'GET', `/api/v1/devices/${id}/profiles`)).body.profiles;
      if (states.length !== count || states.some((p) => p.status !== 'verified')) throw new Error('bench: profiles not verified');
      let total = 0;
      for (let r = 0; r < ROUNDS; r++) total += (await timeSession(dev)).ms;
      steady[count] = total / ROUNDS;
      line(`check-in, ${count} profiles verified (session)`, steady[count], `  n=${ROUNDS}`);
    }
    console.log(`bench: profiles: steady check-in with 100 vs 0 profiles: ${(steady[100] / steady[0]).toFixed(2)}x`);

    // A fleet, then one profile for every device.
    const probe = await device();
    await probe.dev.runSession();
    const enroll = `${pw.url}/EnrollmentServer/Win10DeviceEnrollmentWebservice.svc`;
    const security = unt(USER, SECRET);
    const t0 = performance.now();
    let next = 0;
    const total = Math.max(0, PROFILE_FLEET - 4);
    await Promise.all(Array.from({ length: PARALLEL }, async () => {
      while (next < total) {
        next++;
        const id = newId();
        await soapPost(enroll, rst(enroll, security, { token: csr(id, key).toString('base64'), context: context(id) }));
      }
    }));
    console.log(`bench: profiles: enrolled ${total + 4} devices in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const before = await timeSession(probe.dev);
    const a0 = performance.now();
    const assigned = await api(pw, 'POST', '/api/v1/profiles', { name: 'everyone', settings: tenSettings('All'), targets: { all: true } });
    const assignMs = performance.now() - a0;
    if (assigned.status !== 201) throw new Error(`bench: ${assigned.status}`);
    line(`POST /api/v1/profiles, targets all (${total + 4} devices)`, assignMs);
    const after = await timeSession(probe.dev);
    line('first check-in after it, 10 settings (session)', after.ms, `  ${after.messages} messages (before it: ${before.ms.toFixed(1)} ms)`);
  } finally {
    await pw.stop();
  }
}

// =============================================================================================
// The fleet index and the console (issue 12). Its own worker: BENCH_INDEX_DEVICES (default
// 100000) rows in the D1 fleet index, then the time per device-list page (first page, pages deep
// in the cursor chain, search, filters), the dashboard counts and the audit page, each the
// median of BENCH_INDEX_N (default 20) requests over HTTP to the local worker; and the console's
// first load: bytes (raw and gzip) and the time until headless Chromium shows the sign-in form.
// =============================================================================================
{
  const { startWorker: start, d1: sql } = await import('./worker.mjs');
  const zlib = await import('node:zlib');
  const DEVICES = Number(process.env.BENCH_INDEX_DEVICES ?? 100000);
  const N = Number(process.env.BENCH_INDEX_N ?? 20);
  const OS = ['10.0.19045.5247', '10.0.22631.4602', '10.0.26100.2605'];
  const base = Date.parse('2026-11-01T00:00:00Z');
  const iso = (ms) => new Date(ms).toISOString();
  const iw = await start({});
  // The upper of the middle two for an even count (what this section has always printed).
  const upperMedian = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const get = async (path) => {
    const t0 = performance.now();
    const res = await fetch(`${iw.url}${path}`, { headers: { authorization: `Bearer ${iw.adminToken}` } });
    const body = await res.json();
    if (res.status !== 200) throw new Error(`bench: ${path}: ${res.status} ${JSON.stringify(body)}`);
    return { ms: performance.now() - t0, body };
  };
  try {
    const t0 = performance.now();
    const CHUNK = 20000;
    for (let from = 0; from < DEVICES; from += CHUNK) {
      let text = '';
      const rows = [];
      const groups = [];
      const profiles = [];
      for (let i = from; i < Math.min(DEVICES, from + CHUNK); i++) {
        const id = `BENCH${String(i).padStart(7, '0')}`;
        rows.push(`('${id}','${id.toLowerCase()}','PC-${i}','pc-${i}','user${i % 500}@bench.io','user${i % 500}@bench.io',` +
          `'${i % 20 === 0 ? 'retired' : 'enrolled'}','${OS[i % 3]}','48','Full','${iso(base - 86_400_000)}','${iso(base + i * 1000)}','${iso(base + 300 * 86_400_000)}',1)`);
        if (i % 10 === 0) groups.push(`('${id}','finance')`);
        if (i % 50 === 0) profiles.push(`('${id}','p1','failed','${iso(base)}')`);
      }
      const chunks = (list) => Array.from({ length: Math.ceil(list.length / 200) }, (_, k) => list.slice(k * 200, (k + 1) * 200));
      for (const c of chunks(rows)) text += `INSERT INTO devices (device_id,id_lc,name,name_lc,user_email,user_lc,status,os_version,os_edition,enrollment_type,enrolled_at,last_checkin,cert_not_after,version) VALUES ${c.join(',')};\n`;
      for (const c of chunks(groups)) text += `INSERT INTO device_groups (device_id, group_name) VALUES ${c.join(',')};\n`;
      for (const c of chunks(profiles)) text += `INSERT INTO device_profiles (device_id, profile_id, status, updated_at) VALUES ${c.join(',')};\n`;
      await sql(iw.persistDir, text);
    }
    console.log(`bench: index: ${DEVICES} devices loaded into the local fleet index in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const line = (name, xs, extra = '') => console.log(`bench: index: ${name.padEnd(56)} ${upperMedian(xs).toFixed(1).padStart(7)} ms median, ${Math.max(...xs).toFixed(1).padStart(7)} max${extra}`);
    const timed = async (path, n = N) => {
      const xs = [];
      let body;
      for (let k = 0; k < n + 2; k++) {
        const r = await get(path);
        if (k >= 2) xs.push(r.ms); // two warm-up requests
        body = r.body;
      }
      return { xs, body };
    };
    const first = await timed('/api/v1/devices?limit=50');
    line('GET /api/v1/devices, first page of 50 (with total)', first.xs, `  total ${first.body.total}`);
    // Deep pages: follow the cursor chain 200 pages in (10,000 devices), then time that page.
    let cursor = first.body.next_cursor;
    for (let k = 0; k < 200 && cursor; k++) cursor = (await get(`/api/v1/devices?limit=50&cursor=${cursor}`)).body.next_cursor;
    // A fleet under 10,050 devices (BENCH_INDEX_DEVICES) has no page 200.
    if (cursor) line('GET /api/v1/devices, page 200 (cursor)', (await timed(`/api/v1/devices?limit=50&cursor=${cursor}`)).xs);
    line('GET /api/v1/devices?limit=200', (await timed('/api/v1/devices?limit=200')).xs);
    for (const [name, q] of [
      ['search q=pc-4242 (name prefix)', 'q=pc-4242'],
      ['search q=user42@ (user prefix, 200 devices)', 'q=user42%40'],
      ['search q=bench00123 (id prefix)', 'q=bench00123'],
      ['status=retired', 'status=retired'],
      ['os_version + status', `os_version=${OS[1]}&status=enrolled`],
      ['group=finance', 'group=finance'],
      ['profile_status=failed', 'profile_status=failed'],
      ['sort=name', 'sort=name'],
    ]) {
      const r = await timed(`/api/v1/devices?limit=50&${q}`);
      line(`GET /api/v1/devices, ${name}`, r.xs, `  total ${r.body.total}`);
    }
    line('GET /api/v1/stats (dashboard counts)', (await timed('/api/v1/stats')).xs);
    line('GET /api/v1/audit, first page', (await timed('/api/v1/audit')).xs);

    // The console's first load.
    let raw = 0;
    let gz = 0;
    const c0 = performance.now();
    for (const p of ['/admin/', '/admin/app.js', '/admin/app.css']) {
      const buf = Buffer.from(await (await fetch(`${iw.url}${p}`)).arrayBuffer());
      raw += buf.length;
      gz += zlib.gzipSync(buf, { level: 9 }).length;
    }
    const fetchMs = performance.now() - c0;
    console.log(`bench: console: first load ${raw} bytes (${gz} gzip) in 3 requests, ${fetchMs.toFixed(1)} ms over loopback`);
    try {
      const { chromium } = await import('playwright-core');
      const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      const times = [];
      for (let k = 0; k < 5; k++) {
        const s0 = performance.now();
        await page.goto(`${iw.url}/admin/`, { waitUntil: 'load' });
        await page.locator('input[type=password]').first().waitFor();
        times.push(performance.now() - s0);
      }
      console.log(`bench: console: sign-in form shown ${upperMedian(times).toFixed(1)} ms after navigation (median of 5, headless Chromium)`);
      await browser.close();
    } catch (e) {
      console.log(`bench: console: Chromium timing skipped: ${e.message.split('\n')[0]}`);
    }
  } finally {
    await iw.stop();
  }
}
