// End to end: Windows 8.1 ([MS-MDE]) clients at DeviceEnrollmentWebservice.svc get the [MS-MDE]
// §3.6 provisioning document, renew as [MS-MDE] §3.5 describes, and get the 8.1 fault action;
// Windows 10 clients of the same worker keep their own shape. The check-in schedule and the
// 8.1-only settings are configured once, through the worker's vars.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { startWorker, ROOT } from './support/worker.mjs';
import {
  characteristic, characteristics, derToPem, faultType, newKey, openssl, parm, parseXml, post, provisioningDoc,
  renewalPkcs7, rstRequest, sha1Hex, tempDir, usernameToken, windowsCsr, xmlEscape,
} from './support/device.mjs';
import { admin, createUser, enrollDevice } from './support/enroll.mjs';
import { SyncMLDevice } from './support/syncml-device.mjs';

const TESTDATA = path.join(ROOT, 'src/proto/testdata');
// The Windows Phone 8 RST's own account; its password is shorter than the admin API accepts,
// so the user gets a longer one and the request carries it (the only change to the request).
const PHONE_EMAIL = 'm@dynamit.com.au';
const PASSWORD = 'correct horse battery';
const SSP_HYPERLINK = 'https://apps.contoso.com/company-portal?src=enrollment&v=1';
const SERVER_ROOT = '5BE128213D05DC6CB87A059469130FC6686992EF';
// Not the default, so that the documents can only carry it because of the configuration.
const POLL_SCHEDULE = '2x4,20x6,1440x0';
const FAULT_ACTION_81 = 'http://schemas.microsoft.com/windows/pki/2009/01/enrollment/IWindowsDeviceEnrollmentService/RequestSecurityTokenWindowsDeviceEnrollmentServiceErrorFault';
const RSTRC_ACTION = 'http://schemas.microsoft.com/windows/pki/2009/01/enrollment/RSTRC/wstep';
const PKCS7_81 = 'http://schemas.microsoft.com/windows/pki/2009/01/enrollment#PKCS7';
const REG = {
  machineEnrollment: 'HKLM\\Security\\MachineEnrollment',
  omaDmRetry: 'HKLM\\Security\\MachineEnrollment\\OmaDmRetry',
  mdm: 'HKLM\\Software\\Windows\\CurrentVersion\\MDM\\MachineEnrollment',
  accounts: 'HKLM\\Security\\Provisioning\\OMADM\\Accounts\\',
};

let w;
let dir;
const url81 = () => `${w.url}/EnrollmentServer/DeviceEnrollmentWebservice.svc`;
const url10 = () => `${w.url}/EnrollmentServer/Win10DeviceEnrollmentWebservice.svc`;

before(async () => {
  w = await startWorker({ vars: { AUTH_POLICY: 'OnPremise', SSP_HYPERLINK, SERVER_ROOT_CERT_HASH: SERVER_ROOT, POLL_SCHEDULE } });
  dir = await tempDir();
  await createUser(w, PHONE_EMAIL, PASSWORD, 'Phone User');
});
after(async () => {
  await w?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

const doc = (xml) => parseXml(provisioningDoc(xml))['wap-provisioningdoc'];
const asList = (x) => (x === undefined ? [] : Array.isArray(x) ? x : [x]);

/** The issued certificate of a document: the `My/<store>` child named by a thumbprint. */
function issuedCert(d, store = 'User') {
  const my = characteristic(characteristic(characteristic(d, 'CertificateStore'), 'My'), store);
  const certs = asList(my.characteristic).filter((c) => c['@type'] !== 'PrivateKeyContainer');
  assert.equal(certs.length, 1);
  return { node: certs[0], thumbprint: certs[0]['@type'], der: Buffer.from(parm(certs[0], 'EncodedCertificate'), 'base64') };
}

async function verify(caDer, certDer) {
  const ca = path.join(dir, `ca-${crypto.randomUUID()}.pem`);
  const cert = path.join(dir, `cert-${crypto.randomUUID()}.pem`);
  await fs.writeFile(ca, derToPem(caDer));
  await fs.writeFile(cert, derToPem(certDer));
  return (await openssl(['verify', '-purpose', 'sslclient', '-CAfile', ca, cert])).stdout;
}

const spki = (pem) => crypto.createPublicKey(pem).export({ type: 'spki', format: 'der' });

/** The public key of the CSR inside a request fixture, as DER SPKI. */
async function csrSpki(requestXml) {
  const b64 = requestXml.match(/#base64binary">([^<]+)</)[1];
  const file = path.join(dir, `csr-${crypto.randomUUID()}.der`);
  await fs.writeFile(file, Buffer.from(b64, 'base64'));
  const { stdout } = await openssl(['req', '-inform', 'DER', '-in', file, '-pubkey', '-noout']);
  return spki(stdout);
}

function deviceSecurity() {
  return usernameToken(PHONE_EMAIL, PASSWORD);
}

describe('Windows 8.1 discovery', () => {
  test('the [MS-MDE] §4.1.1 Discover sample is sent to DeviceEnrollmentWebservice.svc without a version', async () => {
    const body = await fs.readFile(path.join(TESTDATA, 'win81_discover_request.msmde.xml'), 'utf8');
    const { xml, text } = await post(`${w.url}/EnrollmentServer/Discovery.svc`, body);
    assert.equal(faultType(xml), null, text);
    const r = xml.Envelope.Body.DiscoverResponse.DiscoverResult;
    assert.equal(r.EnrollmentVersion, undefined);
    assert.equal(r.EnrollmentServiceUrl, url81());
  });
});

describe('Windows Phone 8 RST at the 8.1 service', () => {
  let request;
  let enr;
  let d;
  let cert;

  before(async () => {
    const fixture = await fs.readFile(path.join(TESTDATA, 'wstep_request_onprem_wp80_10517.xml'), 'utf8');
    assert.equal(fixture.match(/<wsse:Username>([^<]*)</)[1], PHONE_EMAIL);
    request = fixture.replace(/(<wsse:Password[^>]*>)[^<]*(<\/wsse:Password>)/, `$1${xmlEscape(PASSWORD)}$2`);
    enr = await post(url81(), request);
    assert.equal(faultType(enr.xml), null, enr.text);
    d = doc(enr.xml);
    cert = issuedCert(d);
  });

  test('is issued a certificate for its own key, named by its thumbprint, under the CA', async () => {
    assert.equal(enr.xml.Envelope.Header.Action['#text'], RSTRC_ACTION);
    assert.equal(cert.thumbprint, sha1Hex(cert.der));
    const root = characteristic(characteristic(characteristic(d, 'CertificateStore'), 'Root'), 'System').characteristic;
    const caDer = Buffer.from(parm(root, 'EncodedCertificate'), 'base64');
    assert.equal(root['@type'], sha1Hex(caDer));
    assert.match(await verify(caDer, cert.der), /: OK/);
    assert.deepEqual(spki(derToPem(cert.der)), await csrSpki(request));
  });

  test('gets the [MS-MDE] §3.6 shape: key container, 8.1 parms, registry, no Windows 10 nodes', async () => {
    assert.equal(characteristic(d, 'DMClient'), undefined);
    const my = characteristic(characteristic(d, 'CertificateStore'), 'My');
    assert.equal(characteristic(my, 'WSTEP'), undefined);
    const pkc = characteristic(cert.node, 'PrivateKeyContainer');
    assert.deepEqual([parm(pkc, 'KeySpec'), parm(pkc, 'ContainerName'), parm(pkc, 'ProviderType')], ['2', 'ConfigMgrEnrollment', '1']);

    const app = characteristic(d, 'APPLICATION');
    assert.equal(parm(app, 'APPID'), 'w7');
    assert.equal(parm(app, 'SSPHyperlink'), SSP_HYPERLINK);
    assert.equal(parm(app, 'ADDR'), `${w.url}/ManagementServer/MDM.svc`);
    assert.equal(parm(app, 'ServerList'), parm(app, 'ADDR'));
    assert.equal(parm(app, 'CRLCheck'), '0');
    assert.equal(parm(app, 'ROLE'), '4294967295');
    assert.equal(characteristics(app, 'APPAUTH').length, 2);

    // The device id the server gave the phone (it sends no DeviceID) is in the certificate.
    const certFile = path.join(dir, 'phone-cert.der');
    await fs.writeFile(certFile, cert.der);
    const { stdout: subject } = await openssl(['x509', '-inform', 'DER', '-in', certFile, '-noout', '-subject']);
    const deviceId = subject.match(/CN ?= ?([0-9A-F]{32})/)[1];
    assert.equal(parm(app, 'SSLCLIENTCERTSEARCHCRITERIA'), `Subject=CN%3D${deviceId}&Stores=My%5CUser`);

    const registries = characteristics(d, 'Registry');
    assert.equal(registries.length, 3);
    const reg = (type) => registries.map((r) => characteristic(r, type)).filter(Boolean);
    const [renewal] = reg(REG.machineEnrollment);
    assert.equal(parm(renewal, 'RenewalPeriod'), '60');
    const [retry] = reg(REG.omaDmRetry);
    assert.deepEqual(
      ['AuxRetryInterval', 'AuxNumRetries', 'RetryInterval', 'NumRetries', 'Aux2RetryInterval', 'Aux2NumRetries'].map((n) => parm(retry, n)),
      ['2', '4', '20', '6', '1440', '0'],
    );
    const [name, location] = reg(REG.mdm);
    assert.equal(parm(name, 'DeviceName'), '');
    assert.equal(parm(location, 'SslServerRootCertHash'), SERVER_ROOT);
    assert.equal(parm(location, 'SslClientCertStore'), 'MY%5CUser');
    assert.equal(parm(location, 'SslClientCertSubjectName'), `CN%3D${deviceId}`);
    assert.equal(parm(location, 'SslClientCertHash'), cert.thumbprint);
    const [account] = reg(`${REG.accounts}${deviceId}`);
    assert.equal(parm(account, 'SslClientCertReference'), `My;User;${cert.thumbprint}`);

    const rec = await admin(w, 'GET', `/api/v1/devices/${deviceId}`);
    assert.equal(rec.status, 200);
    assert.equal(rec.body.certificate.thumbprint, cert.thumbprint);
    assert.equal(rec.body.device_type, 'WindowsPhone');
    assert.equal(rec.body.user, PHONE_EMAIL);
  });
});

describe('a Windows 8.1 device that reports its own DeviceID', () => {
  test('is managed under the DeviceID it was enrolled with; its LocURI names no other device', async () => {
    const key = newKey();
    const rst = (await fs.readFile(path.join(TESTDATA, 'wstep_request_onprem_wp80_10517.xml'), 'utf8'))
      .replace(/(<wsse:Password[^>]*>)[^<]*(<\/wsse:Password>)/, `$1${xmlEscape(PASSWORD)}$2`)
      .replace(/(<wsse:BinarySecurityToken[^>]*>)[^<]*(<\/wsse:BinarySecurityToken>)/, `$1${windowsCsr('B1C43CD0-1624-5FBB-8E54-34CF17DFD3A1', key).toString('base64')}$2`);
    const enr = await post(url81(), rst);
    assert.equal(faultType(enr.xml), null, enr.text);
    const app = characteristic(doc(enr.xml), 'APPLICATION');
    const appsrv = characteristics(app, 'APPAUTH').find((a) => parm(a, 'AAUTHLEVEL') === 'APPSRV');
    const enrolledAs = parm(appsrv, 'AAUTHNAME');
    // The phone's own id, which the enrollment never told the server.
    const own = crypto.randomBytes(16).toString('hex').toUpperCase();
    assert.notEqual(own, enrolledAs);
    const phone = new SyncMLDevice({
      deviceId: own, name: enrolledAs, secret: parm(appsrv, 'AAUTHSECRET'), nonce: parm(appsrv, 'AAUTHDATA'), addr: parm(app, 'ADDR'),
    });
    const queued = await admin(w, 'POST', `/api/v1/devices/${enrolledAs}/commands`, { type: 'get', uri: './DevDetail/SwV' });
    assert.equal(queued.status, 201, JSON.stringify(queued.body));
    const s = await phone.runSession();
    assert.equal(s.replies[0].hdrCode, '200');
    assert.match(s.replies[0].msg.hdr.respUri, new RegExp(`[?&]dev=${enrolledAs}$`));
    assert.ok(s.replies.length >= 2, 'the session went on past its first message, at the RespURI');
    const cmd = await admin(w, 'GET', `/api/v1/devices/${enrolledAs}/commands`);
    assert.equal(cmd.body.commands.find((c) => c.id === queued.body.id).status, 'acknowledged', JSON.stringify(cmd.body));
    // No device record was made for the id the phone reports.
    assert.equal((await admin(w, 'GET', `/api/v1/devices/${own}`)).status, 404);

    // A later message that names the device nowhere but in the RespURI still reaches its object;
    // sent to the plain management URL, it reaches the object its LocURI names, which refuses it.
    const again = await admin(w, 'POST', `/api/v1/devices/${enrolledAs}/commands`, { type: 'get', uri: './DevDetail/FwV' });
    assert.equal(again.status, 201);
    phone.startSession();
    const r1 = await phone.send(phone.message(phone.package1()));
    assert.equal(r1.hdrCode, '200');
    assert.ok(r1.commands.some((c) => c.name === 'Get'), r1.text);
    const answer = phone.message(phone.respond(r1), { locName: '' });
    const misrouted = await phone.send(answer, { query: '', absorb: false, strict: false, base: phone.addr });
    assert.notEqual(misrouted.hdrCode, '200', misrouted.text);
    const r2 = await phone.send(answer);
    assert.equal(r2.hdrCode, '200', r2.text);
    const done = await admin(w, 'GET', `/api/v1/devices/${enrolledAs}/commands`);
    assert.equal(done.body.commands.find((c) => c.id === again.body.id).status, 'acknowledged');
  });
});

describe('a Windows 8.1 client renews as [MS-MDE] §3.5 describes', () => {
  test('enrolls with only DeviceType, then renews with the 8.1 PKCS#7 and gets only its new certificate', async () => {
    const key = newKey();
    const enr = await post(url81(), rstRequest(url81(), deviceSecurity(), {
      token: windowsCsr('PC81', key).toString('base64'),
      context: [['DeviceType', 'CIMClient_Windows']],
    }));
    assert.equal(faultType(enr.xml), null, enr.text);
    const first = doc(enr.xml);
    assert.ok(characteristics(first, 'Registry').length > 0);
    const old = issuedCert(first);
    const caDer = Buffer.from(parm(characteristic(characteristic(characteristic(first, 'CertificateStore'), 'Root'), 'System').characteristic, 'EncodedCertificate'), 'base64');

    const newKeyPair = newKey();
    const p7 = await renewalPkcs7(old.der, key, windowsCsr('PC81', newKeyPair, { hash: 'sha256' }));
    const ren = await post(url81(), rstRequest(url81(), '', {
      token: p7.toString('base64'), valueType: PKCS7_81, requestType: 'Renew', context: [['DeviceType', 'CIMClient_Windows']],
    }));
    assert.equal(faultType(ren.xml), null, ren.text);
    const renewed = doc(ren.xml);
    // [MS-MDE] §3.5.4.1.1.2: only CertificateStore/My/User/<thumbprint>/EncodedCertificate.
    assert.deepEqual(Object.keys(renewed).filter((k) => !k.startsWith('@')), ['characteristic']);
    const store = characteristic(renewed, 'CertificateStore');
    assert.equal(asList(store.characteristic).length, 1);
    const fresh = issuedCert(renewed);
    assert.deepEqual(Object.keys(fresh.node).filter((k) => k !== '@type'), ['parm']);
    assert.equal(asList(fresh.node.parm).length, 1);
    assert.equal(fresh.thumbprint, sha1Hex(fresh.der));
    assert.notEqual(fresh.thumbprint, old.thumbprint);
    assert.match(await verify(caDer, fresh.der), /: OK/);
    assert.deepEqual(spki(derToPem(fresh.der)), newKeyPair.publicKey.export({ type: 'spki', format: 'der' }));
  });
});

describe('faults', () => {
  test('at the 8.1 service carry the 8.1 fault action, at the Windows 10 service the RSTRC action', async () => {
    const body = (url) => rstRequest(url, usernameToken(PHONE_EMAIL, 'wrong password'), {
      token: windowsCsr('PC81', newKey()).toString('base64'), context: [['DeviceType', 'CIMClient_Windows']],
    });
    const f81 = await post(url81(), body(url81()));
    assert.equal(faultType(f81.xml), 'Authentication');
    assert.equal(f81.xml.Envelope.Header.Action['#text'], FAULT_ACTION_81);
    const garbage = await post(url81(), 'this is not xml');
    assert.equal(faultType(garbage.xml), 'MessageFormat');
    assert.equal(garbage.xml.Envelope.Header.Action['#text'], FAULT_ACTION_81);
    const f10 = await post(url10(), body(url10()));
    assert.equal(faultType(f10.xml), 'Authentication');
    assert.equal(f10.xml.Envelope.Header.Action['#text'], RSTRC_ACTION);
  });
});

describe('Windows 10 at the same worker', () => {
  test('gets no Registry characteristic and no 8.1 parm, and the same configured schedule as DMClient Poll', async () => {
    const dev = await enrollDevice(w, { email: PHONE_EMAIL, password: PASSWORD });
    assert.equal(dev.result.EnrollmentServiceUrl, url10());
    assert.deepEqual(characteristics(dev.doc, 'Registry'), []);
    assert.doesNotMatch(dev.docText, /Registry|OmaDmRetry|SSPHyperlink|ServerList|CRLCheck/);
    const app = characteristic(dev.doc, 'APPLICATION');
    assert.equal(parm(app, 'SSPHyperlink'), undefined);
    const poll = characteristic(characteristic(characteristic(characteristic(dev.doc, 'DMClient'), 'Provider'), 'edgemdm'), 'Poll');
    assert.deepEqual(
      ['IntervalForFirstSetOfRetries', 'NumberOfFirstRetries', 'IntervalForSecondSetOfRetries', 'NumberOfSecondRetries',
        'IntervalForRemainingScheduledRetries', 'NumberOfRemainingScheduledRetries'].map((n) => parm(poll, n)),
      ['2', '4', '20', '6', '1440', '0'],
    );
  });
});
