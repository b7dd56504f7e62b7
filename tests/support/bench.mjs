// Request timings of every endpoint against the built Worker under local wrangler dev
// (workerd). Loopback only, bounded request counts; run by `npm run bench`.
//
//   node tests/support/bench.mjs            (BENCH_N, BENCH_CONCURRENCY, BENCH_FLEET override)

import crypto from 'node:crypto';
import { startWorker } from './worker.mjs';
import {
  characteristic, characteristics, discoverRequest, getPoliciesRequest, newDeviceId, newKey, parm, post,
  rstRequest, usernameToken, win10Context, windowsCsr,
} from './device.mjs';
import { admin, createUser, enrollDevice } from './enroll.mjs';

const N = Number(process.env.BENCH_N ?? 100);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);
const FLEET = Number(process.env.BENCH_FLEET ?? 10000);
const EMAIL = 'bench@contoso.com';
const PASSWORD = 'bench password 1';

function report(name, ms, n, extra = '') {
  console.log(`bench: ${name.padEnd(44)} ${(ms / n).toFixed(2).padStart(7)} ms/req  n=${n}${extra}`);
}

async function timeSeq(name, n, fn) {
  await fn(0); // warm-up
  const t0 = performance.now();
  for (let i = 1; i <= n; i++) await fn(i);
  const ms = performance.now() - t0;
  report(name, ms, n);
  return ms / n;
}

async function timeConc(name, n, conc, fn) {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: conc }, async (_, worker) => {
    while (next < n) await fn(next++, worker);
  }));
  const ms = performance.now() - t0;
  report(`${name} (concurrency ${conc})`, ms, n, `  ${Math.round((n * 1000) / ms)} req/s`);
}

// ---- a minimal OMA-DM client for check-ins -----------------------------------------------
const md5b64 = (x) => crypto.createHash('md5').update(x).digest('base64');

function dmClient(device) {
  const app = characteristic(device.doc, 'APPLICATION');
  const appsrv = characteristics(app, 'APPAUTH').find((a) => parm(a, 'AAUTHLEVEL') === 'APPSRV');
  return {
    id: device.deviceId,
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
  const res = await fetch(c.addr, { method: 'POST', body: xml, headers: { 'content-type': 'application/vnd.syncml.dm+xml' } });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`check-in ${res.status}: ${text}`);
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
  if (text.match(/<Cmd>SyncHdr<\/Cmd>[\s\S]*?<Data>(\d+)<\/Data>/)?.[1] !== '200') throw new Error(`not authenticated: ${text}`);
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

const w = await startWorker({ vars: { AUTH_POLICY: 'OnPremise' } });
try {
  await createUser(w, EMAIL, PASSWORD);
  const discovery = `${w.url}/EnrollmentServer/Discovery.svc`;
  const policy = `${w.url}/EnrollmentServer/PolicyEnrollmentWebservice.svc`;
  const enroll = `${w.url}/EnrollmentServer/Win10DeviceEnrollmentWebservice.svc`;
  const security = usernameToken(EMAIL, PASSWORD);

  await timeSeq('GET /EnrollmentServer/Discovery.svc', N, () => fetch(discovery).then((r) => r.arrayBuffer()));
  await timeSeq('POST Discover', N, () => post(discovery, discoverRequest(discovery)));
  await timeSeq('POST GetPolicies (PBKDF2 100k)', N, () => post(policy, getPoliciesRequest(policy, security)));

  // Enrollment: CSRs made beforehand (one RSA key; the server checks each CSR's signature).
  const key = newKey();
  const rsts = Array.from({ length: N + 1 }, () => {
    const id = newDeviceId();
    return rstRequest(enroll, security, { token: windowsCsr(id, key).toString('base64'), context: win10Context(id) });
  });
  await timeSeq('POST RST wstep (full enrollment)', N, (i) => post(enroll, rsts[i]));
  const more = Array.from({ length: N }, () => {
    const id = newDeviceId();
    return rstRequest(enroll, security, { token: windowsCsr(id, key).toString('base64'), context: win10Context(id) });
  });
  await timeConc('POST RST wstep (full enrollment)', N, CONCURRENCY, (i) => post(enroll, more[i]));

  // Check-ins.
  const fleet = [];
  for (let i = 0; i < 10; i++) fleet.push(dmClient(await enrollDevice(w, { email: EMAIL, password: PASSWORD, key })));
  const idle10 = await timeSeq('check-in, nothing queued (10 devices)', N, (i) => checkIn(fleet[i % 10]));
  // One session at a time per device, as on a real device: each worker has its own devices.
  await timeConc('check-in, nothing queued (10 devices)', N, Math.min(CONCURRENCY, 10), (_, worker) => checkIn(fleet[worker]));
  const busy = fleet[0];
  {
    const rounds = Math.min(N, 30);
    let total = 0;
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < 10; k++) await admin(w, 'POST', `/api/v1/devices/${busy.id}/commands`, { type: 'get', uri: `./DevDetail/Ext/Item${k}` });
      const t0 = performance.now();
      await checkIn(busy); // two messages: the commands, then their statuses
      total += performance.now() - t0;
    }
    report('check-in with 10 commands queued (session)', total, rounds);
    const cmds = (await admin(w, 'GET', `/api/v1/devices/${busy.id}/commands`)).body.commands;
    if (cmds.some((c) => c.status !== 'acknowledged')) throw new Error('bench: a command was not acknowledged');
  }

  // The fleet grows; a check-in touches only its own device's object.
  const t0 = performance.now();
  let enrolled = 10 + 2 * N + 1;
  const csrs = [];
  while (enrolled + csrs.length < FLEET) {
    const id = newDeviceId();
    csrs.push(rstRequest(enroll, security, { token: windowsCsr(id, key).toString('base64'), context: win10Context(id) }));
  }
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => { while (next < csrs.length) await post(enroll, csrs[next++]); }));
  enrolled += csrs.length;
  console.log(`bench: enrolled ${csrs.length} more devices (fleet ${enrolled}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const idleBig = await timeSeq(`check-in, nothing queued (fleet ${enrolled})`, N, (i) => checkIn(fleet[i % 10]));
  console.log(`bench: check-in time, fleet ${enrolled} vs 10: ${(idleBig / idle10).toFixed(2)}x`);
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
