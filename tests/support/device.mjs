// A simulated Windows device: builds the SOAP requests a Windows 10/11 enrollment client sends
// (prefixes, constant MessageIDs and context items as captured from real devices) and CSRs with
// the Windows quirks (PrintableString CN with `!` and a trailing NUL, legacy OIW sha1WithRSA).

import crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { XMLParser } from 'fast-xml-parser';

const execFileP = promisify(execFile);

export const NS = {
  s: 'http://www.w3.org/2003/05/soap-envelope',
  a: 'http://www.w3.org/2005/08/addressing',
  u: 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd',
  wsse: 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd',
  wst: 'http://docs.oasis-open.org/ws-sx/ws-trust/200512',
  ac: 'http://schemas.xmlsoap.org/ws/2006/12/authorization',
};
export const ACTIONS = {
  discover: 'http://schemas.microsoft.com/windows/management/2012/01/enrollment/IDiscoveryService/Discover',
  getPolicies: 'http://schemas.microsoft.com/windows/pki/2009/01/enrollmentpolicy/IPolicy/GetPolicies',
  rst: 'http://schemas.microsoft.com/windows/pki/2009/01/enrollment/RST/wstep',
};
// Real devices send these constants on every enrollment.
const MESSAGE_IDS = {
  discover: 'urn:uuid:748132ec-a575-4329-b01b-6171a9cf8478',
  getPolicies: 'urn:uuid:72048B64-0F19-448F-8C2E-B4C661860AA0',
  rst: 'urn:uuid:0d5a1441-5891-453b-becf-a2e5f6ea3749',
};

export const xmlEscape = (s) =>
  String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

// ---- minimal DER, enough for a CSR --------------------------------------------------------
function len(n) {
  if (n < 0x80) return Buffer.from([n]);
  const bytes = [];
  while (n > 0) { bytes.unshift(n & 0xff); n >>= 8; }
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const tlv = (tag, ...parts) => { const body = Buffer.concat(parts); return Buffer.concat([Buffer.from([tag]), len(body.length), body]); };
const seq = (...p) => tlv(0x30, ...p);
const set = (...p) => tlv(0x31, ...p);
function oid(dotted) {
  const arcs = dotted.split('.').map(Number);
  const out = [40 * arcs[0] + arcs[1]];
  for (const arc of arcs.slice(2)) {
    const chunk = [arc & 0x7f];
    let v = arc >> 7;
    while (v > 0) { chunk.unshift(0x80 | (v & 0x7f)); v >>= 7; }
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

/** RSA key pair for a device. */
export function newKey(bits = 2048) {
  return crypto.generateKeyPairSync('rsa', { modulusLength: bits });
}

/**
 * A CSR shaped like Windows 10's: CN `<30 chars of a GUID>!<DeviceID>` plus NUL as a
 * PrintableString, the raw `1.3.6.1.4.1.311.66.1.0` extension, signed sha1WithRSA under the
 * OIW OID 1.3.14.3.2.29. `hash: 'sha256'` gives the newer form (UTF8String, sha256WithRSA).
 * `sigOid` names the signature algorithm instead (e.g. sha1WithRSA's PKCS#1 OID
 * 1.2.840.113549.1.1.5).
 */
export function windowsCsr(deviceId, key, { hash = 'sha1', sigOid } = {}) {
  const guid = crypto.randomUUID().toUpperCase().slice(0, 30);
  const cn = Buffer.from(`${guid}!${deviceId}\0`, 'latin1');
  const cnValue = hash === 'sha1' ? tlv(0x13, cn) : tlv(0x0c, cn);
  const name = seq(set(seq(oid('2.5.4.3'), cnValue)));
  const spki = key.publicKey.export({ type: 'spki', format: 'der' });
  const ext = seq(oid('1.3.6.1.4.1.311.66.1.0'), tlv(0x04, Buffer.from(`${deviceId}\0`, 'latin1')));
  const attrs = tlv(0xa0, seq(oid('1.2.840.113549.1.9.14'), set(seq(ext))));
  const info = seq(tlv(0x02, Buffer.from([0])), name, spki, attrs);
  const sigAlg = seq(oid(sigOid ?? (hash === 'sha1' ? '1.3.14.3.2.29' : '1.2.840.113549.1.1.11')), tlv(0x05));
  const sig = crypto.sign(hash, info, key.privateKey);
  return seq(info, sigAlg, tlv(0x03, Buffer.from([0]), sig));
}

// ---- SOAP requests ------------------------------------------------------------------------
function envelope(action, messageId, to, security, body) {
  return `<s:Envelope xmlns:s="${NS.s}" xmlns:a="${NS.a}" xmlns:u="${NS.u}">` +
    `<s:Header><a:Action s:mustUnderstand="1">${action}</a:Action><a:MessageID>${messageId}</a:MessageID>` +
    `<a:ReplyTo><a:Address>http://www.w3.org/2005/08/addressing/anonymous</a:Address></a:ReplyTo>` +
    `<a:To s:mustUnderstand="1">${xmlEscape(to)}</a:To>${security}</s:Header><s:Body>${body}</s:Body></s:Envelope>`;
}

export function usernameToken(username, password) {
  return `<wsse:Security xmlns:wsse="${NS.wsse}" s:mustUnderstand="1">` +
    `<wsse:UsernameToken u:Id="uuid-cc1ccc1f-2fba-4bcf-b063-ffc0cac77917-4"><wsse:Username>${xmlEscape(username)}</wsse:Username>` +
    `<wsse:Password wsse:Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText">${xmlEscape(password)}</wsse:Password>` +
    `</wsse:UsernameToken></wsse:Security>`;
}

export function userTokenSecurity(token) {
  const b64 = Buffer.from(token, 'utf8').toString('base64');
  return `<wsse:Security xmlns:wsse="${NS.wsse}" s:mustUnderstand="1"><wsse:BinarySecurityToken ` +
    `ValueType="http://schemas.microsoft.com/5.0.0.0/ConfigurationManager/Enrollment/DeviceEnrollmentUserToken" ` +
    `EncodingType="${NS.wsse}#base64binary">${b64}</wsse:BinarySecurityToken></wsse:Security>`;
}

export function discoverRequest(url, { email = 'user@contoso.com', version = '4.0', policies = ['OnPremise', 'Federated'] } = {}) {
  const pol = policies.map((p) => `<AuthPolicy>${p}</AuthPolicy>`).join('');
  const body = `<Discover xmlns="http://schemas.microsoft.com/windows/management/2012/01/enrollment"><request xmlns:i="http://www.w3.org/2001/XMLSchema-instance">` +
    `<EmailAddress>${xmlEscape(email)}</EmailAddress><RequestVersion>${version}</RequestVersion><DeviceType>CIMClient_Windows</DeviceType>` +
    `<ApplicationVersion>10.0.19043.2364</ApplicationVersion><OSEdition>72</OSEdition>` +
    (policies.length ? `<AuthPolicies>${pol}</AuthPolicies>` : '') + `</request></Discover>`;
  return envelope(ACTIONS.discover, MESSAGE_IDS.discover, url, '', body);
}

export function win81DiscoverRequest(url, email = 'user@contoso.com') {
  const body = `<Discover xmlns="http://schemas.microsoft.com/windows/management/2012/01/enrollment"><request xmlns:i="http://www.w3.org/2001/XMLSchema-instance">` +
    `<EmailAddress>${xmlEscape(email)}</EmailAddress><RequestVersion></RequestVersion></request></Discover>`;
  return envelope(ACTIONS.discover, MESSAGE_IDS.discover, url, '', body);
}

export function getPoliciesRequest(url, security) {
  const body = `<GetPolicies xmlns="http://schemas.microsoft.com/windows/pki/2009/01/enrollmentpolicy">` +
    `<client><lastUpdate xsi:nil="true" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/>` +
    `<preferredLanguage xsi:nil="true" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/></client>` +
    `<requestFilter xsi:nil="true" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/></GetPolicies>`;
  return envelope(ACTIONS.getPolicies, MESSAGE_IDS.getPolicies, url, security, body);
}

/** Context items as Windows 10 21H1 sends them. */
export function win10Context(deviceId, { enrollmentType = 'Full', deviceName = 'DESKTOP-TEST' } = {}) {
  return [
    ['UXInitiated', 'true'], ['HWDevID', crypto.createHash('sha256').update(deviceId).digest('hex').toUpperCase()],
    ['Locale', 'en-US'], ['TargetedUserLoggedIn', 'true'], ['OSEdition', '72'], ['DeviceName', deviceName],
    ['MAC', '00-0C-29-51-60-9D'], ['MAC', '00-0C-29-51-60-9D'], ['DeviceID', deviceId],
    ['EnrollmentType', enrollmentType], ['DeviceType', 'CIMClient_Windows'], ['OSVersion', '10.0.19043.2364'],
    ['ApplicationVersion', '10.0.19043.2364'], ['NotInOobe', 'false'],
  ];
}

export function rstRequest(url, security, { token, valueType = 'http://schemas.microsoft.com/windows/pki/2009/01/enrollment#PKCS10', requestType = 'Issue', context = [] }) {
  const items = context.map(([n, v]) => `<ac:ContextItem Name="${xmlEscape(n)}"><ac:Value>${xmlEscape(v)}</ac:Value></ac:ContextItem>`).join('');
  const bst = token === null ? '' :
    `<wsse:BinarySecurityToken ValueType="${valueType}" EncodingType="${NS.wsse}#base64binary">${token}</wsse:BinarySecurityToken>`;
  const body = `<wst:RequestSecurityToken xmlns:wst="${NS.wst}" xmlns:wsse="${NS.wsse}" xmlns:ac="${NS.ac}">` +
    `<wst:TokenType>http://schemas.microsoft.com/5.0.0.0/ConfigurationManager/Enrollment/DeviceEnrollmentToken</wst:TokenType>` +
    `<wst:RequestType>http://docs.oasis-open.org/ws-sx/ws-trust/200512/${requestType}</wst:RequestType>${bst}` +
    `<ac:AdditionalContext xmlns="${NS.ac}">${items}</ac:AdditionalContext></wst:RequestSecurityToken>`;
  return envelope(ACTIONS.rst, MESSAGE_IDS.rst, url, security, body);
}

// ---- talking and reading ------------------------------------------------------------------
const parser = new XMLParser({ removeNSPrefix: true, ignoreAttributes: false, attributeNamePrefix: '@', parseTagValue: false, trimValues: true });

/**
 * fetch, once more when a kept-alive connection turns out to have been closed by the local
 * server before the request was sent (undici reports `other side closed`; the request never
 * reached the worker). Any other failure is thrown.
 */
export async function request(url, init) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fetch(url, init);
    } catch (e) {
      const stale = e.cause?.code === 'UND_ERR_SOCKET' && /other side closed/.test(e.cause?.message ?? '');
      if (!stale || attempt === 2) {
        throw new Error(`${init?.method ?? 'GET'} ${url}: ${e.message}: ${e.cause?.code ?? ''} ${e.cause?.message ?? ''}`);
      }
    }
  }
}

export async function post(url, body, { headers = {} } = {}) {
  const res = await request(url, { method: 'POST', body, headers: { 'content-type': 'application/soap+xml; charset=utf-8', 'user-agent': 'ENROLLClient', ...headers } });
  const text = await res.text();
  return { res, text, xml: text ? parser.parse(text) : null };
}

export const parseXml = (text) => parser.parse(text);

/** The fault's ErrorType, or null when the answer is not a fault. */
export function faultType(xml) {
  const fault = xml?.Envelope?.Body?.Fault;
  return fault ? fault.Detail.DeviceEnrollmentServiceError.ErrorType : null;
}

/** The provisioning document of an RSTRC, as text. */
export function provisioningDoc(xml) {
  const bst = xml.Envelope.Body.RequestSecurityTokenResponseCollection.RequestSecurityTokenResponse.RequestedSecurityToken.BinarySecurityToken;
  return Buffer.from(bst['#text'], 'base64').toString('utf8');
}

/** characteristic lookups in a wap-provisioningdoc parsed with fast-xml-parser. */
const asList = (x) => (x === undefined ? [] : Array.isArray(x) ? x : [x]);
export function characteristic(node, type) {
  return asList(node.characteristic).find((c) => c['@type'] === type);
}
export function parm(node, name) {
  return asList(node.parm).find((p) => p['@name'] === name)?.['@value'];
}
export function characteristics(node, type) {
  return asList(node.characteristic).filter((c) => c['@type'] === type);
}

export const derToPem = (der, label = 'CERTIFICATE') =>
  `-----BEGIN ${label}-----\n${der.toString('base64').match(/.{1,64}/g).join('\n')}\n-----END ${label}-----\n`;

export async function tempDir(prefix = 'edgemdm-test-') {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}

export async function openssl(args, opts = {}) {
  return execFileP('openssl', args, { maxBuffer: 1 << 24, ...opts });
}

/**
 * ROBO renewal token: a CMS SignedData made with the device's current key and certificate,
 * whose content is a CSR for a fresh key.
 */
export async function renewalPkcs7(currentCertDer, currentKey, newCsrDer) {
  const dir = await tempDir('edgemdm-renew-');
  await fs.writeFile(path.join(dir, 'cert.pem'), derToPem(currentCertDer));
  await fs.writeFile(path.join(dir, 'key.pem'), currentKey.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  await fs.writeFile(path.join(dir, 'csr.der'), newCsrDer);
  await openssl(['cms', '-sign', '-binary', '-nodetach', '-outform', 'DER', '-md', 'sha256',
    '-in', path.join(dir, 'csr.der'), '-signer', path.join(dir, 'cert.pem'), '-inkey', path.join(dir, 'key.pem'),
    '-out', path.join(dir, 'p7.der')]);
  const p7 = await fs.readFile(path.join(dir, 'p7.der'));
  await fs.rm(dir, { recursive: true, force: true });
  return p7;
}

export const sha1Hex = (der) => crypto.createHash('sha1').update(der).digest('hex').toUpperCase();

/** A random DeviceID in the 32-hex form Windows 10 uses. */
export const newDeviceId = () => crypto.randomBytes(16).toString('hex').toUpperCase();
