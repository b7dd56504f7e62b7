// A simulated Windows 10/11 OMA-DM client (DM/1.2 over SyncML XML) for the management endpoint:
// the device side of shared/protocol/management.md §3–§6, §9.
//
//   const enr = await enrollDevice(w, { email, password });
//   const dev = SyncMLDevice.fromEnrollment(enr, { maxMsgSize: 4096 });
//   const s = await dev.runSession();            // package 1 … until the server closes
//   s.replies[0].hdrCode                         // '200'
//   s.commands                                   // every server command received, in order
//
// The device keeps what a real one keeps between messages and sessions: the SessionID, its
// MsgID counter, whether the session is authenticated, and the nonce (AAUTHDATA, then the LAST
// NextNonce of any Chal it received). As Windows does, it sends its Cred again in the next
// message after a SyncHdr 200, and stops only after a 212 ("OMA DM protocol support"). Every server reply is checked against the protocol rules
// that hold for every message (HTTP 200, content type and length, SyncHdr echo, SyncHdr Status
// first and MsgRef'd to our message, Statuses before commands, unique CmdIDs, Statuses that refer
// to commands we sent, none for our Status/Results); a violation throws, with the exchange.

import crypto from 'node:crypto';
import http from 'node:http';
import { XMLParser } from 'fast-xml-parser';
import { characteristic, characteristics, parm, xmlEscape } from './device.mjs';

export const SYNCML_CONTENT_TYPE = 'application/vnd.syncml.dm+xml';
export const UNENROLL_ALERT_TYPE = 'com.microsoft:mdm.unenrollment.userrequest';
export const LOGIN_STATUS_TYPE = 'com.microsoft/MDM/LoginStatus';
export const WINDOWS_QUERY = '?mode=Maintenance&Platform=WoA';
const METINF = 'syncml:metinf';

// ---- an order-preserving XML tree -------------------------------------------------------------
// fast-xml-parser groups repeated children by name unless preserveOrder is set; with it each node
// is `{ Name: [children], ':@': {attrs} }` and text is `{ '#text': '...' }`. We turn that into
// `{ name, attrs, children: [node], text }` so that command order inside SyncBody is kept.

const orderedParser = new XMLParser({
  preserveOrder: true,
  removeNSPrefix: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
});

function toNode(entry) {
  if ('#text' in entry) return { name: '#text', attrs: {}, children: [], text: String(entry['#text']) };
  const name = Object.keys(entry).find((k) => k !== ':@');
  const children = (entry[name] ?? []).map(toNode);
  return {
    name,
    attrs: entry[':@'] ?? {},
    children,
    text: children.filter((c) => c.name === '#text').map((c) => c.text).join(''),
  };
}

/** Parses a document into an order-preserving tree; returns its root element. */
export function parseOrdered(text) {
  const top = orderedParser.parse(text).map(toNode).filter((n) => n.name !== '#text' && !n.name.startsWith('?'));
  if (top.length !== 1) throw new Error(`expected one root element, got ${top.length}`);
  return top[0];
}

const elements = (n) => (n ? n.children.filter((c) => c.name !== '#text') : []);
export const child = (n, name) => elements(n).find((c) => c.name === name);
export const childrenNamed = (n, name) => elements(n).filter((c) => c.name === name);
export const childText = (n, name) => {
  const c = child(n, name);
  return c === undefined ? undefined : c.text.trim();
};

/** The content of an element whose children are elements (inline XML in Data), re-serialised. */
function innerXml(n) {
  return n.children.map((c) => {
    if (c.name === '#text') return xmlEscape(c.text);
    const attrs = Object.entries(c.attrs).map(([k, v]) => ` ${k}="${xmlEscape(v)}"`).join('');
    return c.children.length ? `<${c.name}${attrs}>${innerXml(c)}</${c.name}>` : `<${c.name}${attrs}/>`;
  }).join('');
}

// ---- reading SyncML -------------------------------------------------------------------------

function parseMeta(n) {
  if (!n) return {};
  const m = {};
  for (const [key, el] of [['format', 'Format'], ['type', 'Type'], ['mark', 'Mark'], ['size', 'Size'],
    ['nextNonce', 'NextNonce'], ['maxMsgSize', 'MaxMsgSize'], ['maxObjSize', 'MaxObjSize']]) {
    const v = childText(n, el);
    if (v !== undefined) m[key] = v;
  }
  return m;
}

function parseItem(n) {
  // Type/Format directly in Item (some Windows alerts) count as Meta.
  const meta = { ...parseMeta(n), ...parseMeta(child(n, 'Meta')) };
  const dataEl = child(n, 'Data');
  let data;
  if (dataEl) data = elements(dataEl).length ? innerXml(dataEl) : dataEl.text;
  return {
    target: childText(child(n, 'Target'), 'LocURI'),
    source: childText(child(n, 'Source'), 'LocURI'),
    format: meta.format,
    type: meta.type,
    mark: meta.mark,
    data,
    moreData: child(n, 'MoreData') !== undefined,
  };
}

const CONTAINERS = new Set(['Atomic', 'Sequence']);
const NOT_COMMANDS = new Set(['CmdID', 'NoResp', 'Meta', 'Cred', 'Final']);

function parseCommand(n) {
  const c = { name: n.name, cmdId: childText(n, 'CmdID') };
  if (n.name === 'Status') {
    const chal = child(n, 'Chal');
    Object.assign(c, {
      msgRef: childText(n, 'MsgRef'),
      cmdRef: childText(n, 'CmdRef'),
      cmd: childText(n, 'Cmd'),
      data: childText(n, 'Data'),
      chal: chal ? parseMeta(child(chal, 'Meta')) : null,
      targetRefs: childrenNamed(n, 'TargetRef').map((r) => r.text.trim()),
      sourceRefs: childrenNamed(n, 'SourceRef').map((r) => r.text.trim()),
      items: childrenNamed(n, 'Item').map(parseItem),
    });
  } else if (n.name === 'Results') {
    Object.assign(c, {
      msgRef: childText(n, 'MsgRef'),
      cmdRef: childText(n, 'CmdRef'),
      cmd: childText(n, 'Cmd'),
      meta: parseMeta(child(n, 'Meta')),
      items: childrenNamed(n, 'Item').map(parseItem),
    });
  } else if (n.name === 'Alert') {
    Object.assign(c, { data: childText(n, 'Data'), items: childrenNamed(n, 'Item').map(parseItem) });
  } else if (CONTAINERS.has(n.name)) {
    Object.assign(c, {
      meta: parseMeta(child(n, 'Meta')),
      children: elements(n).filter((k) => !NOT_COMMANDS.has(k.name)).map(parseCommand),
    });
  } else {
    Object.assign(c, {
      noResp: child(n, 'NoResp') !== undefined,
      meta: parseMeta(child(n, 'Meta')),
      items: childrenNamed(n, 'Item').map(parseItem),
    });
  }
  return c;
}

/** Parses a SyncML message (either direction) into `{ hdr, commands, final }`. */
export function parseSyncML(text) {
  const root = parseOrdered(text);
  if (root.name !== 'SyncML') throw new Error(`root element is ${root.name}, not SyncML`);
  const hdr = child(root, 'SyncHdr');
  const body = child(root, 'SyncBody');
  if (!hdr || !body) throw new Error('SyncHdr or SyncBody missing');
  const cred = child(hdr, 'Cred');
  return {
    hdr: {
      verDTD: childText(hdr, 'VerDTD'),
      verProto: childText(hdr, 'VerProto'),
      sessionId: childText(hdr, 'SessionID'),
      msgId: childText(hdr, 'MsgID'),
      target: childText(child(hdr, 'Target'), 'LocURI'),
      source: childText(child(hdr, 'Source'), 'LocURI'),
      sourceName: childText(child(hdr, 'Source'), 'LocName'),
      respUri: childText(hdr, 'RespURI'),
      cred: cred ? { ...parseMeta(child(cred, 'Meta')), data: childText(cred, 'Data') } : null,
      meta: parseMeta(child(hdr, 'Meta')),
    },
    commands: elements(body).filter((n) => n.name !== 'Final').map(parseCommand),
    final: child(body, 'Final') !== undefined,
  };
}

/** Every command of a parsed message, Atomic/Sequence children included, in document order. */
export function flatten(commands) {
  return commands.flatMap((c) => [c, ...flatten(c.children ?? [])]);
}

// ---- writing SyncML -------------------------------------------------------------------------

const leaf = (name, v) => `<${name}>${xmlEscape(v)}</${name}>`;
const metinf = (name, v) => `<${name} xmlns="${METINF}">${xmlEscape(v)}</${name}>`;

function metaXml({ format, type, mark } = {}) {
  const parts = [type !== undefined ? metinf('Type', type) : '', format !== undefined ? metinf('Format', format) : '',
    mark !== undefined ? metinf('Mark', mark) : ''].join('');
  return parts ? `<Meta>${parts}</Meta>` : '';
}

function itemXml({ source, target, format, type, mark, data } = {}) {
  return '<Item>' +
    (target !== undefined ? `<Target>${leaf('LocURI', target)}</Target>` : '') +
    (source !== undefined ? `<Source>${leaf('LocURI', source)}</Source>` : '') +
    metaXml({ format, type, mark }) +
    (data !== undefined ? leaf('Data', data) : '') +
    '</Item>';
}

// Device commands as builders: (cmdId) => XML. A message numbers them 1, 2, 3 … in order.
export const cmd = {
  alert: (code, items = []) => (id) => `<Alert>${leaf('CmdID', id)}${leaf('Data', code)}${items.map(itemXml).join('')}</Alert>`,
  replace: (items) => (id) => `<Replace>${leaf('CmdID', id)}${items.map(itemXml).join('')}</Replace>`,
  status: (msgRef, cmdRef, name, code, { targetRefs = [], sourceRefs = [] } = {}) => (id) =>
    `<Status>${leaf('CmdID', id)}${leaf('MsgRef', msgRef)}${leaf('CmdRef', cmdRef)}${leaf('Cmd', name)}` +
    targetRefs.map((r) => leaf('TargetRef', r)).join('') + sourceRefs.map((r) => leaf('SourceRef', r)).join('') +
    `${leaf('Data', code)}</Status>`,
  results: (msgRef, cmdRef, items) => (id) =>
    `<Results>${leaf('CmdID', id)}${leaf('MsgRef', msgRef)}${leaf('CmdRef', cmdRef)}${leaf('Cmd', 'Get')}` +
    `${items.map(itemXml).join('')}</Results>`,
  raw: (xmlWithCmdId) => (id) => xmlWithCmdId.replace('{CmdID}', id),
};

/** The generic alert a user's "Disconnect" sends (1226, userrequest, int 1). */
export const unenrollAlert = () => cmd.alert('1226', [{ type: UNENROLL_ALERT_TYPE, format: 'int', data: '1' }]);

// ---- credentials ----------------------------------------------------------------------------

const md5 = (...parts) => crypto.createHash('md5').update(Buffer.concat(parts.map((p) => Buffer.from(p)))).digest();

/** syncml:auth-md5: B64(MD5(B64(MD5(name ":" secret)) ":" nonce_bytes)), nonce given in base64. */
export function md5Credential(name, secret, nonceB64) {
  const inner = md5(`${name}:${secret}`).toString('base64');
  return md5(inner, ':', Buffer.from(nonceB64, 'base64')).toString('base64');
}

// ---- HTTP -----------------------------------------------------------------------------------

/**
 * POST on a fresh connection that is closed afterwards (no keep-alive pool that would hold a
 * restarting workerd open). Returns `{ status, headers, body: Buffer, text }`.
 */
export function httpPost(url, body, headers = {}) {
  const payload = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: 'POST',
      agent: false,
      headers: { 'content-length': payload.length, connection: 'close', ...headers },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const buf = Buffer.concat(chunks);
        resolve({ status: res.statusCode, headers: res.headers, body: buf, text: buf.toString('utf8') });
      });
      res.on('error', reject);
    });
    req.on('error', (e) => reject(new Error(`POST ${url}: ${e.message}`)));
    req.end(payload);
  });
}

const WINDOWS_HEADERS = {
  'content-type': SYNCML_CONTENT_TYPE,
  accept: 'application/vnd.syncml.dm+xml, application/vnd.syncml.dm+wbxml, application/octet-stream',
  'accept-charset': 'UTF-8',
  'user-agent': 'MSFT OMA DM Client/1.2.0.1',
  'client-request-id': '0',
};

// ---- the device -----------------------------------------------------------------------------

/** The Policy CSP node holding the effective value of a Config policy ("Policy CSP"), or null. */
export function policyResultUri(uri) {
  const m = /^(.*\/Vendor\/MSFT\/Policy\/)Config(\/[^/]+\/[^/]+)$/.exec(uri);
  return m ? `${m[1]}Result${m[2]}` : null;
}

const ok = (code) => /^2\d\d$/.test(code);

const DEFAULT_DEVDETAIL = {
  './DevDetail/SwV': '10.0.19045.4291',
  './DevDetail/HwV': 'Hyper-V UEFI Release v4.1',
  './DevDetail/FwV': 'Hyper-V UEFI Release v4.1',
  './DevDetail/OEM': 'Microsoft Corporation',
  './DevDetail/DevTyp': 'Virtual Machine',
  './DevDetail/LrgObj': { format: 'bool', data: 'true' },
  './DevDetail/Ext/Microsoft/OSPlatform': 'Windows 10 Enterprise',
  './DevDetail/Ext/Microsoft/DeviceName': 'DESKTOP-TEST',
  './DevDetail/Ext/Microsoft/ProcessorArchitecture': { format: 'int', data: '9' },
  './DevDetail/Ext/Microsoft/TotalRAM': { format: 'int', data: '8192' },
  './DevDetail/Ext/Microsoft/SMBIOSSerialNumber': '0000-0001-2345-6789',
};

export class SyncMLDevice {
  /**
   * @param {object} o
   * @param {string} o.deviceId     SyncHdr/Source/LocURI (./DevInfo/DevId)
   * @param {string} o.name         APPSRV AAUTHNAME (Source/LocName)
   * @param {string} o.secret       APPSRV AAUTHSECRET
   * @param {string} o.nonce        APPSRV AAUTHDATA (base64)
   * @param {string} o.addr         w7 ADDR (management URL, SyncHdr/Target/LocURI)
   * @param {string} [o.query]      appended to ADDR when posting (e.g. WINDOWS_QUERY)
   * @param {number} [o.maxMsgSize] sent in SyncHdr/Meta of every message
   * @param {object} [o.devInfo]    overrides for Man, Mod, DmV, Lang (DevId is the deviceId)
   * @param {object} [o.values]     URI → value (string = chr, or {format, data}) for Get Results
   * @param {boolean} [o.hexSessionIds] SessionIDs as upper-case hex (1.. → '1' .. 'A' ..)
   * @param {function} [o.statusFor] (command) => status code for a server command, or undefined
   * @param {boolean} [o.strict]    throw on protocol violations in replies (default true)
   * @param {boolean|object} [o.tree] opt in to a DM tree that answers as Windows does (see
   *   treeCode): true, or initial nodes { uri: value | {format, data} }
   * @param {object} [o.reject]    tree mode: { uri: code } writes of these nodes are refused
   * @param {string[]} [o.writeOnly] tree mode: nodes a Get cannot read (405)
   */
  constructor({ deviceId, name, secret, nonce, addr, query = '', maxMsgSize = null, devInfo = {}, values = {},
    hexSessionIds = false, statusFor = null, strict = true, firstSession = 1, tree = false, reject = {}, writeOnly = [] }) {
    Object.assign(this, { deviceId, name, secret, nonce, addr, query, maxMsgSize, hexSessionIds, statusFor, strict });
    this.tree = tree ? new Map(Object.entries(tree === true ? {} : tree)
      .map(([k, v]) => [k, typeof v === 'string' ? { format: 'chr', data: v } : v])) : null;
    this.reject = reject;
    this.writeOnly = new Set(writeOnly);
    this.devInfo = { DevId: deviceId, Man: 'Microsoft Corporation', Mod: 'Virtual Machine', DmV: '1.3', Lang: 'en-US', ...devInfo };
    this.values = { ...DEFAULT_DEVDETAIL, ...values };
    this.sessionCounter = firstSession - 1;
    this.sessionId = null;
    this.msgId = 0;
    this.authenticated = false;
    this.lastServerMsgId = 0;
    this.exchanges = []; // every { request, reply } of this device, in order
  }

  /** The device an enrollment produced (enrollDevice's result), from its provisioning document. */
  static fromEnrollment(enrolled, opts = {}) {
    const app = characteristic(enrolled.doc, 'APPLICATION');
    const appsrv = characteristics(app, 'APPAUTH').find((a) => parm(a, 'AAUTHLEVEL') === 'APPSRV');
    if (!appsrv) throw new Error('provisioning document has no APPSRV APPAUTH');
    return new SyncMLDevice({
      deviceId: enrolled.deviceId,
      name: parm(appsrv, 'AAUTHNAME'),
      secret: parm(appsrv, 'AAUTHSECRET'),
      nonce: parm(appsrv, 'AAUTHDATA'),
      addr: parm(app, 'ADDR'),
      ...opts,
    });
  }

  /** A value the device reports for `uri` ({format, data}), or undefined (→ 404). */
  valueOf(uri) {
    if (this.tree?.has(uri)) return this.tree.get(uri);
    const devInfo = uri.match(/^\.\/DevInfo\/([^/]+)$/);
    let v = devInfo && this.devInfo[devInfo[1]] !== undefined ? this.devInfo[devInfo[1]] : this.values[uri];
    if (v === undefined && /^\.\/(DevInfo|DevDetail)\//.test(uri)) v = `sim:${uri}`; // any other DevInfo/DevDetail leaf
    if (v === undefined || v === null) return undefined;
    return typeof v === 'string' ? { format: 'chr', data: v } : v;
  }

  /** Begins a new session: next SessionID (or `sessionId`), MsgID restarts at 1, no auth yet. */
  startSession({ sessionId } = {}) {
    this.sessionCounter += 1;
    this.sessionId = sessionId ?? (this.hexSessionIds ? this.sessionCounter.toString(16).toUpperCase() : String(this.sessionCounter));
    this.msgId = 0;
    this.authenticated = false;
    this.exempt = false;
    this.lastServerMsgId = 0;
    this.respUri = null;
    return this.sessionId;
  }

  /** Package-1 commands: Alert 1201, LoginStatus 1224 (optional), extra alerts, DevInfo Replace. */
  package1({ alerts = [], loginStatus = true, devInfo = true } = {}) {
    const out = [cmd.alert('1201')];
    if (loginStatus) out.push(cmd.alert('1224', [{ type: LOGIN_STATUS_TYPE, data: 'user' }]));
    out.push(...alerts);
    if (devInfo) {
      out.push(cmd.replace(Object.entries(this.devInfo).map(([k, v]) => ({ source: `./DevInfo/${k}`, data: v }))));
    }
    return out;
  }

  /**
   * One device message as text (MsgID incremented).
   * cred: 'auto' (md5, unless the server answered 212 earlier in this session), 'md5', 'none',
   * 'wrong' (a wrong secret), or { data, type, format } verbatim.
   */
  message(commands, { cred = 'auto', final = true, locName = this.name, maxMsgSize = this.maxMsgSize } = {}) {
    if (this.sessionId === null) this.startSession();
    this.msgId += 1;
    let credXml = '';
    const mode = cred === 'auto' ? (this.exempt ? 'none' : 'md5') : cred;
    if (mode === 'md5' || mode === 'wrong') {
      const data = md5Credential(this.name, mode === 'wrong' ? `${this.secret}-wrong` : this.secret, this.nonce);
      credXml = `<Cred><Meta>${metinf('Format', 'b64')}${metinf('Type', 'syncml:auth-md5')}</Meta>${leaf('Data', data)}</Cred>`;
    } else if (mode && typeof mode === 'object') {
      credXml = `<Cred><Meta>${metinf('Format', mode.format ?? 'b64')}${metinf('Type', mode.type ?? 'syncml:auth-md5')}</Meta>${leaf('Data', mode.data)}</Cred>`;
    }
    const hdr = `<SyncHdr>${leaf('VerDTD', '1.2')}${leaf('VerProto', 'DM/1.2')}${leaf('SessionID', this.sessionId)}` +
      `${leaf('MsgID', this.msgId)}<Target>${leaf('LocURI', this.addr)}</Target>` +
      `<Source>${leaf('LocURI', this.deviceId)}${locName ? leaf('LocName', locName) : ''}</Source>${credXml}` +
      (maxMsgSize ? `<Meta>${metinf('MaxMsgSize', maxMsgSize)}</Meta>` : '') + '</SyncHdr>';
    const body = commands.map((build, i) => build(String(i + 1))).join('') + (final ? '<Final/>' : '');
    return `<?xml version="1.0" encoding="UTF-8"?><SyncML xmlns="SYNCML:SYNCML1.2">${hdr}<SyncBody>${body}</SyncBody></SyncML>`;
  }

  /**
   * POSTs a message to ADDR (+query). Unless `absorb` is false, the device learns from the reply:
   * the Chal's NextNonce replaces its nonce; 212/200 authenticates the session, 401/407 does not;
   * only 212 exempts the rest of the session from sending a Cred.
   * Returns the reply: { status, headers, text, msg, hdrStatus, hdrCode, statuses, commands, final, request }.
   */
  async send(text, { query = this.query, headers = {}, absorb = true, strict = this.strict, base = this.respUri ?? this.addr } = {}) {
    // As OMA-DM clients do, the rest of a session goes where the server's RespURI says (`base`).
    const target = query && base.includes('?') ? `${base}&${query.replace(/^\?/, '')}` : `${base}${query}`;
    const res = await httpPost(target, text, { ...WINDOWS_HEADERS, ...headers });
    const reply = { status: res.status, headers: res.headers, text: res.text, request: text, msg: null };
    let request;
    try {
      request = parseSyncML(text);
    } catch {
      request = null; // deliberately broken input
    }
    const isSyncML = (res.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase() === SYNCML_CONTENT_TYPE;
    if (res.status === 200 && isSyncML) {
      try {
        reply.msg = parseSyncML(res.text);
      } catch (e) {
        throw new Error(`unparseable SyncML reply (${e.message}):\n${res.text}`);
      }
      reply.statuses = reply.msg.commands.filter((c) => c.name === 'Status');
      reply.commands = reply.msg.commands.filter((c) => c.name !== 'Status');
      reply.hdrStatus = reply.statuses.find((s) => s.cmdRef === '0' && s.cmd === 'SyncHdr') ?? null;
      reply.hdrCode = reply.hdrStatus?.data ?? null;
      reply.final = reply.msg.final;
    }
    if (strict && request) {
      const problems = checkReply(reply, request, this);
      if (problems.length) {
        throw new Error(`protocol violation in the server's reply:\n- ${problems.join('\n- ')}\n--- request ---\n${text}\n--- reply (HTTP ${res.status}) ---\n${res.text}`);
      }
    }
    if (absorb && reply.msg) {
      const nn = reply.hdrStatus?.chal?.nextNonce;
      if (nn) this.nonce = nn;
      if (['200', '212'].includes(reply.hdrCode)) this.authenticated = true;
      if (reply.msg.hdr.respUri) this.respUri = reply.msg.hdr.respUri;
      if (['401', '407', '403'].includes(reply.hdrCode)) this.authenticated = false;
      this.exempt = reply.hdrCode === '212' || (this.exempt && reply.hdrCode === '200');
      // A refused message does not advance the server's side of the session.
      const sid = Number(reply.msg.hdr.msgId);
      if (Number.isFinite(sid) && ['200', '212'].includes(reply.hdrCode)) this.lastServerMsgId = sid;
      this.exchanges.push({ request: text, reply });
    }
    return reply;
  }

  /** Sends raw bytes (a captured message) without learning anything from the reply. */
  replay(raw, opts = {}) {
    return this.send(raw, { ...opts, absorb: false });
  }

  /** The status code this device answers a server command with. */
  codeFor(c, override) {
    const code = override?.(c) ?? this.statusFor?.(c);
    if (code !== undefined && code !== null) return String(code);
    if (this.tree) return this.treeCode(c);
    if (c.name === 'Get') return c.items.every((i) => this.valueOf(i.target) !== undefined) ? '200' : '404';
    return '200';
  }

  /**
   * Tree mode: runs a command on the DM tree as Windows does and returns its code. Replace sets
   * an existing node, or any Policy CSP Config policy (mirrored to its Result node, where Get
   * reads the effective value); Replace of another missing node is 404, Add of an existing node
   * 418, Delete of a missing node 404 (a Policy Config Delete also clears its Result); a Get of a
   * write-only node 405, of a missing one 404; `reject` refuses writes with its code.
   */
  treeCode(c) {
    const items = c.items ?? [];
    const one = (item) => {
      const uri = item.target;
      const result = policyResultUri(uri);
      const exists = this.tree.has(uri);
      switch (c.name) {
        case 'Get':
          if (this.writeOnly.has(uri)) return '405';
          return this.valueOf(uri) !== undefined ? '200' : '404';
        case 'Replace':
        case 'Add': {
          if (this.reject[uri]) return String(this.reject[uri]);
          if (c.name === 'Add' && exists) return '418';
          if (c.name === 'Replace' && !exists && !result) return '404';
          const v = { format: item.format ?? 'chr', data: item.data ?? '' };
          this.tree.set(uri, v);
          if (result) this.tree.set(result, v);
          return '200';
        }
        case 'Delete':
          if (this.reject[uri]) return String(this.reject[uri]);
          if (!exists) return '404';
          this.tree.delete(uri);
          if (result) this.tree.delete(result);
          return '200';
        default:
          return '200';
      }
    };
    for (const item of items) {
      const code = one(item);
      if (!ok(code)) return code;
    }
    return '200';
  }

  /**
   * Tree mode: an Atomic runs its commands on the tree; if any fails, everything is rolled back
   * and the Atomic answers 507, the failing commands their own code and the others 216 ("Atomic
   * roll back OK"). Returns [[command, code], ...] for the Atomic and then each child.
   */
  treeAtomic(a, override) {
    const saved = new Map(this.tree);
    const codes = a.children.map((k) => this.codeFor(k, override));
    if (codes.every(ok)) return [[a, '200'], ...a.children.map((k, i) => [k, codes[i]])];
    this.tree = saved;
    return [[a, '507'], ...a.children.map((k, i) => [k, ok(codes[i]) ? '216' : codes[i]])];
  }

  /**
   * The device's answer to a server message (package 3): Status for its SyncHdr, one Status per
   * command (and per Atomic/Sequence child), Results after each successful Get.
   * opts.drop(c) → true: no Status/Results for c (lost). opts.statusFor(c) → code override.
   * opts.reverse: list the command Statuses in reverse order (matching must go by CmdRef).
   */
  respond(reply, { drop, statusFor, reverse = false } = {}) {
    const msgRef = reply.msg.hdr.msgId;
    const out = [cmd.status(msgRef, '0', 'SyncHdr', '200')];
    const answers = [];
    const answer = (c) => {
      if (c.name === 'Status' || c.name === 'Results') return;
      if (c.name === 'Alert' && c.data === '1223') return; // the server aborted: no answer
      if (drop?.(c)) return;
      if (this.tree && c.name === 'Atomic' && (statusFor?.(c) ?? this.statusFor?.(c)) == null) {
        for (const [k, code] of this.treeAtomic(c, statusFor)) answers.push([cmd.status(msgRef, k.cmdId, k.name, code)]);
        return;
      }
      const code = c.name === 'Alert' ? '200' : this.codeFor(c, statusFor);
      const group = [cmd.status(msgRef, c.cmdId, c.name, code)];
      if (c.name === 'Get' && code === '200') {
        const items = c.items
          .map((i) => ({ uri: i.target, v: this.valueOf(i.target) }))
          .filter((x) => x.v !== undefined)
          .map((x) => ({ source: x.uri, format: x.v.format, type: x.v.type, data: x.v.data }));
        group.push(cmd.results(msgRef, c.cmdId, items));
      }
      answers.push(group);
      for (const k of c.children ?? []) answer(k);
    };
    for (const c of reply.commands) answer(c);
    if (reverse) answers.reverse();
    return out.concat(answers.flat());
  }

  /**
   * A whole session: package 1, then answer every server message until one carries no commands
   * (the closing message). After a 401/407 with a Chal the device repeats package 1 in the same
   * session with a digest over the new nonce (once).
   *
   * opts: alerts (extra package-1 commands), loginStatus, devInfo, cred ('auto'|'none'|'wrong'…
   * for the first message), retryCred (for the retry; default 'md5'), retryAuth (default true),
   * drop / statusFor / reverse (see respond), stopAfter (stop after this many replies without
   * answering the last one: a cut connection), sessionId, query, maxMessages.
   * Returns { sessionId, replies, requests, commands: [{...command, msgId}], ended, stopped }.
   */
  async runSession(opts = {}) {
    this.startSession({ sessionId: opts.sessionId });
    const first = this.package1(opts);
    const text = this.message(first, { cred: opts.cred ?? 'auto' });
    return this.#loop(text, opts, first);
  }

  /** Goes on with the current session from `reply` (e.g. after a worker restart). */
  async continueSession(reply, opts = {}) {
    const text = this.message(this.respond(reply, opts));
    return this.#loop(text, opts, this.package1(opts));
  }

  async #loop(text, opts, package1Cmds) {
    const result = { sessionId: this.sessionId, replies: [], requests: [], commands: [], ended: false, stopped: false };
    const max = opts.maxMessages ?? 300;
    let retried = false;
    for (;;) {
      if (result.replies.length >= max) throw new Error(`session ${this.sessionId} did not end within ${max} messages`);
      result.requests.push(text);
      const reply = await this.send(text, { query: opts.query ?? this.query });
      result.replies.push(reply);
      if (!reply.msg) break;
      if (['401', '407'].includes(reply.hdrCode) && reply.hdrStatus?.chal && opts.retryAuth !== false && !retried) {
        retried = true;
        // OMA-DM §9: repeat package 1 in the same session, next MsgID, with the new nonce.
        const again = [cmd.status(reply.msg.hdr.msgId, '0', 'SyncHdr', reply.hdrCode), ...package1Cmds];
        text = this.message(again, { cred: opts.retryCred ?? 'md5' });
        continue;
      }
      for (const c of reply.commands) result.commands.push({ ...c, msgId: reply.msg.hdr.msgId });
      if (reply.commands.length === 0) {
        result.ended = reply.final;
        break;
      }
      if (opts.stopAfter !== undefined && result.replies.length >= opts.stopAfter) {
        result.stopped = true;
        break;
      }
      text = this.message(this.respond(reply, opts));
    }
    return result;
  }
}

/**
 * Rules every SyncML reply must follow, checked against the request it answers. Returns a list
 * of problems (empty when fine).
 */
export function checkReply(reply, request, device) {
  const p = [];
  if (reply.status !== 200) {
    p.push(`HTTP ${reply.status}, expected 200`);
    return p;
  }
  const ct = reply.headers['content-type'] ?? '';
  if (ct.split(';')[0].trim().toLowerCase() !== SYNCML_CONTENT_TYPE) p.push(`content-type ${JSON.stringify(ct)}`);
  const cl = reply.headers['content-length'];
  if (cl === undefined) p.push('no content-length');
  else if (Number(cl) !== Buffer.byteLength(reply.text)) p.push(`content-length ${cl} but ${Buffer.byteLength(reply.text)} bytes`);
  const m = reply.msg;
  if (!m) return p;
  if (m.hdr.verDTD !== '1.2') p.push(`VerDTD ${m.hdr.verDTD}`);
  if (m.hdr.verProto !== 'DM/1.2') p.push(`VerProto ${m.hdr.verProto}`);
  if (m.hdr.sessionId !== request.hdr.sessionId) p.push(`SessionID ${m.hdr.sessionId}, request had ${request.hdr.sessionId}`);
  if (m.hdr.target !== request.hdr.source) p.push(`SyncHdr/Target ${m.hdr.target}, expected the DeviceID ${request.hdr.source}`);
  if (!/^[1-9]\d*$/.test(m.hdr.msgId ?? '')) p.push(`server MsgID ${m.hdr.msgId}`);
  else if (device && device.lastServerMsgId > 0 && m.hdr.sessionId === device.sessionId && request.hdr.msgId !== '1' &&
    m.commands[0]?.data === '200' && Number(m.hdr.msgId) <= device.lastServerMsgId) {
    // Within an authenticated session the server's MsgIDs go up.
    p.push(`server MsgID ${m.hdr.msgId} does not increase (last ${device.lastServerMsgId})`);
  }
  const first = m.commands[0];
  if (!first || first.name !== 'Status' || first.cmdRef !== '0' || first.cmd !== 'SyncHdr') {
    p.push('the first command is not the Status for our SyncHdr');
  } else if (first.msgRef !== request.hdr.msgId) {
    p.push(`SyncHdr Status MsgRef ${first.msgRef}, our MsgID was ${request.hdr.msgId}`);
  }
  const firstOther = m.commands.findIndex((c) => c.name !== 'Status');
  if (firstOther >= 0 && m.commands.slice(firstOther).some((c) => c.name === 'Status')) p.push('a Status after a command');
  const ids = flatten(m.commands).map((c) => c.cmdId);
  if (ids.some((id) => !id || id === '0')) p.push(`missing or zero CmdID: ${JSON.stringify(ids)}`);
  if (new Set(ids).size !== ids.length) p.push(`duplicate CmdIDs: ${JSON.stringify(ids)}`);
  const ours = new Map(flatten(request.commands).map((c) => [c.cmdId, c]));
  const seen = new Set();
  for (const s of m.commands.filter((c) => c.name === 'Status' && c.cmdRef !== '0')) {
    if (s.msgRef !== request.hdr.msgId) p.push(`Status for CmdRef ${s.cmdRef} has MsgRef ${s.msgRef}, our MsgID was ${request.hdr.msgId}`);
    const c = ours.get(s.cmdRef);
    if (!c) p.push(`Status for CmdRef ${s.cmdRef}, which we did not send`);
    else {
      if (c.name !== s.cmd) p.push(`Status for CmdRef ${s.cmdRef} says Cmd ${s.cmd}, it was ${c.name}`);
      if (c.name === 'Status' || (c.name === 'Results' && s.data === '200')) p.push(`a Status ${s.data} for our ${c.name} (CmdRef ${s.cmdRef})`);
    }
    if (seen.has(s.cmdRef)) p.push(`two Statuses for CmdRef ${s.cmdRef}`);
    seen.add(s.cmdRef);
  }
  // Every device command that needs one got a Status (SyncHdr always, Alert/Replace/…; not Status/Results).
  // (Under 403 — retired, unenrolled — or a 401 that ends the session without a challenge, e.g.
  // an unknown device, the server may answer the SyncHdr alone.)
  if (['200', '212', '407'].includes(first?.data) || (first?.data === '401' && first.chal)) {
    const needing = request.commands.filter((c) => c.name !== 'Status' && c.name !== 'Results');
    for (const c of needing) if (!seen.has(c.cmdId)) p.push(`no Status for our ${c.name} (CmdID ${c.cmdId})`);
  }
  if (request.final && !m.final) p.push('no Final although our message had one');
  return p;
}
