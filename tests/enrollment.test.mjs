// End to end against the real worker in workerd: discovery, XCEP policy, WSTEP enrollment and
// renewal, the CA, the admin API, and every kind of bad input.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { startWorker, kvGet, kvList, assertMatchesSchema, ROOT } from './support/worker.mjs';
import {
  characteristic, characteristics, derToPem, discoverRequest, faultType, getPoliciesRequest, newDeviceId, newKey,
  openssl, parm, parseXml, post, provisioningDoc, renewalPkcs7, rstRequest, sha1Hex, tempDir, usernameToken,
  win10Context, win81DiscoverRequest, windowsCsr, userTokenSecurity,
} from './support/device.mjs';
import { admin, createUser, enrollDevice } from './support/enroll.mjs';

const EMAIL = 'alice@contoso.com';
const PASSWORD = 'correct horse battery';
const PKCS7 = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd#PKCS7';

let w;
let dir;
const enrollUrl = () => `${w.url}/EnrollmentServer/Win10DeviceEnrollmentWebservice.svc`;
const policyUrl = () => `${w.url}/EnrollmentServer/PolicyEnrollmentWebservice.svc`;

before(async () => {
  // 20 concurrent password enrollments of one user below: each GetPolicies and RST counts as an
  // attempt until it succeeds, so the limit is raised (bulk enrollment would use a token).
  w = await startWorker({ vars: { AUTH_POLICY: 'OnPremise', LOGIN_MAX_FAILURES: '50' } });
  dir = await tempDir();
  await createUser(w, EMAIL, PASSWORD, 'Alice');
});
after(async () => {
  await w?.stop();
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

async function verifyWithOpenssl(caDer, certDer) {
  const ca = path.join(dir, `ca-${Math.random()}.pem`);
  const cert = path.join(dir, `cert-${Math.random()}.pem`);
  await fs.writeFile(ca, derToPem(caDer));
  await fs.writeFile(cert, derToPem(certDer));
  const { stdout } = await openssl(['verify', '-purpose', 'sslclient', '-CAfile', ca, cert]);
  const text = (await openssl(['x509', '-in', cert, '-noout', '-text', '-serial', '-subject'])).stdout;
  return { stdout, text };
}

async function deviceCount() {
  return (await admin(w, 'GET', '/api/v1/devices')).body.devices.length;
}

describe('discovery', () => {
  test('GET answers 200 with an empty body', async () => {
    // (Local workerd frames an empty body as a zero-length chunked stream, whatever the worker
    // sets; the SOAP answers below, which Windows parses, carry a Content-Length.)
    const res = await fetch(`${w.url}/EnrollmentServer/Discovery.svc`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), '');
  });

  test('POST from Windows 10 names OnPremise, version 4.0 and the Windows 10 endpoints', async () => {
    const url = `${w.url}/EnrollmentServer/Discovery.svc`;
    const { res, text, xml } = await post(url, discoverRequest(url, { version: '4.0' }));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/soap+xml; charset=utf-8');
    assert.equal(Number(res.headers.get('content-length')), Buffer.byteLength(text));
    assert.equal(res.headers.get('transfer-encoding'), null);
    const hdr = xml.Envelope.Header;
    assert.equal(hdr.RelatesTo, 'urn:uuid:748132ec-a575-4329-b01b-6171a9cf8478');
    assert.equal(hdr.Action['#text'], 'http://schemas.microsoft.com/windows/management/2012/01/enrollment/IDiscoveryService/DiscoverResponse');
    const r = xml.Envelope.Body.DiscoverResponse.DiscoverResult;
    assert.equal(r.AuthPolicy, 'OnPremise');
    assert.equal(r.EnrollmentVersion, '4.0');
    assert.equal(r.EnrollmentPolicyServiceUrl, `${w.url}/EnrollmentServer/PolicyEnrollmentWebservice.svc`);
    assert.equal(r.EnrollmentServiceUrl, `${w.url}/EnrollmentServer/Win10DeviceEnrollmentWebservice.svc`);
    assert.equal(r.AuthenticationServiceUrl, undefined);
  });

  test('higher request versions get the highest we implement, never a refusal', async () => {
    const url = `${w.url}/enrollmentserver/DISCOVERY.svc`;
    for (const [asked, answered] of [['9.0', '4.0'], ['6.0', '4.0'], ['3.0', '3.0']]) {
      const { xml } = await post(url, discoverRequest(url, { version: asked }));
      assert.equal(xml.Envelope.Body.DiscoverResponse.DiscoverResult.EnrollmentVersion, answered, asked);
    }
  });

  test('Windows 8.1 gets its own enrollment endpoint and no version', async () => {
    const url = `${w.url}/EnrollmentServer/Discovery.svc`;
    const { xml } = await post(url, win81DiscoverRequest(url));
    const r = xml.Envelope.Body.DiscoverResponse.DiscoverResult;
    assert.equal(r.EnrollmentVersion, undefined);
    assert.equal(r.EnrollmentServiceUrl, `${w.url}/EnrollmentServer/DeviceEnrollmentWebservice.svc`);
  });

  test('a client that cannot do our policy gets NotSupported', async () => {
    const url = `${w.url}/EnrollmentServer/Discovery.svc`;
    const { xml } = await post(url, discoverRequest(url, { policies: ['Certificate'] }));
    assert.equal(faultType(xml), 'NotSupported');
  });
});

describe('policy', () => {
  test('GetPolicies with the user credential answers RSA-2048 and SHA-256', async () => {
    const { xml } = await post(policyUrl(), getPoliciesRequest(policyUrl(), usernameToken(EMAIL, PASSWORD)));
    const resp = xml.Envelope.Body.GetPoliciesResponse;
    const attrs = resp.response.policies.policy.attributes;
    assert.equal(attrs.policySchema, '3');
    assert.equal(attrs.privateKeyAttributes.minimalKeyLength, '2048');
    assert.equal(attrs.certificateValidity.validityPeriodSeconds, String(365 * 86400));
    const oids = [resp.oIDs.oID].flat();
    assert.ok(oids.some((o) => o.value === '2.16.840.1.101.3.4.2.1' && o.oIDReferenceID === attrs.hashAlgorithmOIDReference));
    assert.equal(xml.Envelope.Header.RelatesTo, 'urn:uuid:72048B64-0F19-448F-8C2E-B4C661860AA0');
  });

  test('a wrong password, an unknown user or no credential gets the Authentication fault', async () => {
    for (const security of [usernameToken(EMAIL, 'wrong password'), usernameToken('nobody@contoso.com', PASSWORD), '', userTokenSecurity('forged')]) {
      const { res, xml } = await post(policyUrl(), getPoliciesRequest(policyUrl(), security));
      assert.equal(res.status, 200);
      assert.equal(faultType(xml), 'Authentication');
    }
  });
});

describe('enrollment', () => {
  let device;

  test('a Windows 10 device enrolls and gets a provisioning document it can use', async () => {
    const before = await deviceCount();
    device = await enrollDevice(w, { email: EMAIL, password: PASSWORD });
    const { enrollResponse: enr, doc, deviceId } = device;
    assert.equal(enr.res.headers.get('content-type'), 'application/soap+xml; charset=utf-8');
    assert.equal(Number(enr.res.headers.get('content-length')), Buffer.byteLength(enr.text));
    assert.equal(enr.xml.Envelope.Header.RelatesTo, 'urn:uuid:0d5a1441-5891-453b-becf-a2e5f6ea3749');

    // Thumbprints name the certificates they carry.
    assert.equal(device.caThumbprint, sha1Hex(device.caDer));
    assert.equal(device.certThumbprint, sha1Hex(device.certDer));

    // The issued certificate verifies against the CA the server publishes.
    const pem = await (await fetch(`${w.url}/api/v1/ca`)).text();
    assert.match(pem, /^-----BEGIN CERTIFICATE-----/);
    const publishedCa = Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
    assert.deepEqual(publishedCa, device.caDer);
    const { stdout, text } = await verifyWithOpenssl(publishedCa, device.certDer);
    assert.match(stdout, /: OK/);
    assert.match(text, new RegExp(`CN ?= ?${deviceId}`));
    assert.match(text, /TLS Web Client Authentication/);
    assert.match(text, /CA:FALSE/);
    assert.match(text, /Digital Signature, Key Encipherment/);
    assert.match(text, /ecdsa-with-SHA256/);
    // Not back-dated: valid from (about) now.
    const notBefore = new Date(text.match(/Not Before: (.*)/)[1]);
    assert.ok(Math.abs(Date.now() - notBefore.getTime()) < 5 * 60_000, `${notBefore}`);
    // The public key is the device's own.
    const devSpki = device.key.publicKey.export({ type: 'spki', format: 'der' });
    const certKey = (await import('node:crypto')).createPublicKey({ key: derToPem(device.certDer), format: 'pem' })
      .export({ type: 'spki', format: 'der' });
    assert.deepEqual(certKey, devSpki);

    // The DM account.
    const app = characteristic(doc, 'APPLICATION');
    assert.equal(parm(app, 'APPID'), 'w7');
    assert.equal(parm(app, 'ADDR'), `${w.url}/ManagementServer/MDM.svc`);
    assert.equal(parm(app, 'DEFAULTENCODING'), 'application/vnd.syncml.dm+xml');
    assert.equal(parm(app, 'PROVIDER-ID'), 'edgemdm');
    assert.equal(parm(app, 'SSLCLIENTCERTSEARCHCRITERIA'), `Subject=CN%3D${deviceId}&Stores=My%5CUser`);
    const auths = characteristics(app, 'APPAUTH');
    assert.equal(auths.length, 2);
    const appsrv = auths.find((a) => parm(a, 'AAUTHLEVEL') === 'APPSRV');
    const client = auths.find((a) => parm(a, 'AAUTHLEVEL') === 'CLIENT');
    assert.equal(parm(appsrv, 'AAUTHNAME'), deviceId);
    assert.ok(parm(appsrv, 'AAUTHSECRET').length >= 32);
    assert.ok(parm(client, 'AAUTHSECRET').length >= 32);
    assert.notEqual(parm(appsrv, 'AAUTHSECRET'), parm(client, 'AAUTHSECRET'));
    assert.equal(Buffer.from(parm(appsrv, 'AAUTHDATA'), 'base64').length, 16);

    // Renewal is advertised, and served (below).
    const renew = characteristic(characteristic(characteristic(characteristic(doc, 'CertificateStore'), 'My'), 'WSTEP'), 'Renew');
    assert.equal(parm(renew, 'ROBOSupport'), 'true');
    assert.equal(parm(renew, 'RenewPeriod'), '60');
    assert.equal(parm(renew, 'ServerURL'), enrollUrl());

    // DMClient provider with the device id and a poll schedule.
    const provider = characteristic(characteristic(characteristic(doc, 'DMClient'), 'Provider'), 'edgemdm');
    assert.equal(parm(provider, 'EntDMID'), deviceId);
    assert.equal(parm(provider, 'UPN'), EMAIL);
    assert.ok(characteristic(provider, 'Poll'));

    // The device's record and listing.
    assert.equal(await deviceCount(), before + 1);
    const rec = await admin(w, 'GET', `/api/v1/devices/${deviceId}`);
    assert.equal(rec.status, 200);
    assert.equal(rec.body.device_id, deviceId);
    assert.equal(rec.body.device_name, 'DESKTOP-TEST');
    assert.equal(rec.body.os_version, '10.0.19043.2364');
    assert.equal(rec.body.os_edition, '72');
    assert.equal(rec.body.enrollment_type, 'Full');
    assert.equal(rec.body.user, EMAIL);
    assert.equal(rec.body.status, 'enrolled');
    assert.equal(rec.body.certificate.thumbprint, device.certThumbprint);
    assert.match(rec.body.hw_dev_id, /^[0-9A-F]{64}$/);
    assert.ok(rec.body.certificate.serial && rec.body.certificate.not_after && rec.body.enrolled_at);
    assert.equal(JSON.stringify(rec.body).includes(parm(appsrv, 'AAUTHSECRET')), false, 'secrets stay inside');
  });

  test('what the worker wrote to KV matches kv-schema', async () => {
    const user = await kvGet(w.persistDir, `user:${EMAIL}`);
    assertMatchesSchema(path.join(ROOT, 'kv-schema/user.schema.json'), JSON.parse(user));
    assert.equal(user.includes(PASSWORD), false, 'no plaintext password');
    // The hash is standard PBKDF2-HMAC-SHA256: node derives the same bytes from the same salt.
    const [, iterations, salt, hash] = JSON.parse(user).password_hash.split('$');
    const b64 = (s) => Buffer.from(s, 'base64');
    const derived = (await import('node:crypto')).pbkdf2Sync(PASSWORD, b64(salt), Number(iterations), 32, 'sha256');
    assert.deepEqual(derived, b64(hash));
    const keys = (await kvList(w.persistDir, "device:")).map((k) => k.name ?? k);
    assert.ok(keys.includes(`device:${device.deviceId}`), JSON.stringify(keys));
    const entry = JSON.parse(await kvGet(w.persistDir, `device:${device.deviceId}`));
    assertMatchesSchema(path.join(ROOT, 'kv-schema/device.schema.json'), entry);
    for (const schema of ['user', 'device']) {
      const s = JSON.parse(await fs.readFile(path.join(ROOT, `kv-schema/${schema}.schema.json`), 'utf8'));
      for (const ex of s.examples) assertMatchesSchema(path.join(ROOT, `kv-schema/${schema}.schema.json`), ex);
    }
  });

  test('a device-wide enrollment installs into My/System', async () => {
    const d = await enrollDevice(w, { email: EMAIL, password: PASSWORD, enrollmentType: 'Device', hash: 'sha256' });
    const app = characteristic(d.doc, 'APPLICATION');
    assert.equal(parm(app, 'SSLCLIENTCERTSEARCHCRITERIA'), `Subject=CN%3D${d.deviceId}&Stores=My%5CSystem`);
    const rec = await admin(w, 'GET', `/api/v1/devices/${d.deviceId}`);
    assert.equal(rec.body.enrollment_type, 'Device');
  });

  test('renewal (ROBO) gives the same device a new certificate; a lost answer can be retried until the new one is used', async () => {
    const newKeyPair = newKey();
    const csr = windowsCsr(device.deviceId, newKeyPair, { hash: 'sha256' });
    const p7 = await renewalPkcs7(device.certDer, device.key, csr);
    const body = rstRequest(enrollUrl(), '', { token: p7.toString('base64'), valueType: PKCS7, requestType: 'Renew', context: win10Context(device.deviceId) });
    const { xml, text } = await post(enrollUrl(), body);
    assert.equal(faultType(xml), null, text);
    const doc = parseXml(provisioningDoc(xml))['wap-provisioningdoc'];
    const user = characteristic(characteristic(characteristic(doc, 'CertificateStore'), 'My'), 'User');
    const certDer = Buffer.from(parm(user.characteristic, 'EncodedCertificate'), 'base64');
    assert.equal(user.characteristic['@type'], sha1Hex(certDer));
    assert.ok(characteristic(user.characteristic, 'PrivateKeyContainer'));
    const { stdout, text: certText } = await verifyWithOpenssl(device.caDer, certDer);
    assert.match(stdout, /: OK/);
    assert.match(certText, new RegExp(`CN ?= ?${device.deviceId}`));
    const certKey = (await import('node:crypto')).createPublicKey({ key: derToPem(certDer), format: 'pem' }).export({ type: 'spki', format: 'der' });
    assert.deepEqual(certKey, newKeyPair.publicKey.export({ type: 'spki', format: 'der' }));
    const rec = await admin(w, 'GET', `/api/v1/devices/${device.deviceId}`);
    assert.equal(rec.body.certificate.thumbprint, sha1Hex(certDer));
    assert.ok(rec.body.renewed_at);

    // The answer may never have reached the device: the same request again is a retry, answered
    // with another certificate for the new key (the unused one is revoked) ...
    const again = await post(enrollUrl(), body);
    assert.equal(faultType(again.xml), null, again.text);
    const retryDoc = parseXml(provisioningDoc(again.xml))['wap-provisioningdoc'];
    const retryUser = characteristic(characteristic(characteristic(retryDoc, 'CertificateStore'), 'My'), 'User');
    const retryDer = Buffer.from(parm(retryUser.characteristic, 'EncodedCertificate'), 'base64');
    assert.notEqual(sha1Hex(retryDer), sha1Hex(certDer));
    // ... but once the device renewed with what it got, the old certificate is refused.
    const newerCsr = windowsCsr(device.deviceId, newKey(), { hash: 'sha256' });
    const p7b = await renewalPkcs7(retryDer, newKeyPair, newerCsr);
    const bodyB = rstRequest(enrollUrl(), '', { token: p7b.toString('base64'), valueType: PKCS7, requestType: 'Renew', context: win10Context(device.deviceId) });
    assert.equal(faultType((await post(enrollUrl(), bodyB)).xml), null);
    const late = await post(enrollUrl(), body);
    assert.equal(faultType(late.xml), 'NotEligibleToRenew');
  });

  test('renewal signed by a certificate we did not issue is refused', async () => {
    const k = newKey();
    const d = path.join(dir, 'foreign');
    await fs.mkdir(d);
    await fs.writeFile(path.join(d, 'k.pem'), k.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    await openssl(['req', '-new', '-x509', '-key', path.join(d, 'k.pem'), '-subj', `/CN=${device.deviceId}`, '-days', '30', '-outform', 'DER', '-out', path.join(d, 'c.der')]);
    const foreign = await fs.readFile(path.join(d, 'c.der'));
    const p7 = await renewalPkcs7(foreign, k, windowsCsr(device.deviceId, newKey(), { hash: 'sha256' }));
    const { xml } = await post(enrollUrl(), rstRequest(enrollUrl(), '', { token: p7.toString('base64'), valueType: PKCS7, requestType: 'Renew', context: [['DeviceType', 'CIMClient_Windows']] }));
    assert.equal(faultType(xml), 'NotEligibleToRenew');
  });

  test('20 concurrent enrollments all succeed with distinct serials', async () => {
    // allSettled: a failure must not leave enrollments running into the next test.
    const settled = await Promise.allSettled(Array.from({ length: 20 }, () => enrollDevice(w, { email: EMAIL, password: PASSWORD })));
    const failures = settled.filter((s) => s.status === 'rejected').map((s) => s.reason?.message);
    assert.deepEqual(failures, []);
    const devices = settled.map((s) => s.value);
    const serials = new Set();
    const { X509Certificate } = await import('node:crypto');
    for (const d of devices) serials.add(new X509Certificate(d.certDer).serialNumber);
    assert.equal(serials.size, 20);
    const ids = new Set((await admin(w, 'GET', '/api/v1/devices')).body.devices.map((x) => x.device_id));
    for (const d of devices) assert.ok(ids.has(d.deviceId));
  });
});

describe('bad input gets the fault, writes nothing', () => {
  const security = () => usernameToken(EMAIL, PASSWORD);
  const goodContext = (id) => win10Context(id);

  async function expectFault(body, errorType, url = enrollUrl()) {
    const before = await deviceCount();
    const { res, xml, text } = await post(url, body);
    assert.equal(res.status, 200, text);
    assert.equal(faultType(xml), errorType, text);
    assert.equal(Number(res.headers.get('content-length')), Buffer.byteLength(text));
    assert.equal(await deviceCount(), before, 'nothing written');
    return xml;
  }

  test('not XML, not an envelope, a DOCTYPE, an entity declaration', async () => {
    await expectFault('this is not xml', 'MessageFormat');
    await expectFault('<Envelope/>', 'MessageFormat');
    const id = newDeviceId();
    const good = rstRequest(enrollUrl(), security(), { token: windowsCsr(id, newKey()).toString('base64'), context: goodContext(id) });
    await expectFault(`<!DOCTYPE s:Envelope [<!ENTITY x "y">]>${good}`, 'MessageFormat');
    await expectFault(good.replace('DESKTOP-TEST', '&x;'), 'MessageFormat');
  });

  test('a wrong Action', async () => {
    const id = newDeviceId();
    const body = rstRequest(enrollUrl(), security(), { token: windowsCsr(id, newKey()).toString('base64'), context: goodContext(id) })
      .replace('RST/wstep', 'RST/other');
    await expectFault(body, 'MessageFormat');
  });

  test('a missing, non-base64 or garbage CSR', async () => {
    const id = newDeviceId();
    await expectFault(rstRequest(enrollUrl(), security(), { token: null, context: goodContext(id) }), 'MessageFormat');
    await expectFault(rstRequest(enrollUrl(), security(), { token: '***', context: goodContext(id) }), 'MessageFormat');
    await expectFault(rstRequest(enrollUrl(), security(), { token: Buffer.from('not a csr').toString('base64'), context: goodContext(id) }), 'CertificateRequest');
  });

  test('a CSR whose signature does not verify', async () => {
    const id = newDeviceId();
    const csr = windowsCsr(id, newKey());
    csr[csr.length - 5] ^= 0x01;
    await expectFault(rstRequest(enrollUrl(), security(), { token: csr.toString('base64'), context: goodContext(id) }), 'CertificateRequest');
  });

  test('CSR signatures under each accepted algorithm: verified, the certificate chains to the CA, a tampered one is refused', async () => {
    // sha1WithRSA under its PKCS#1 OID and the legacy OIW OID Windows 10 uses, sha256WithRSA
    // (RFC 8017 §A.2.4): the Worker checks them with WebCrypto and signs with its P-256 key.
    const pem = await (await fetch(`${w.url}/api/v1/ca`)).text();
    const caDer = Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
    const key = newKey();
    for (const [hash, sigOid] of [['sha1', '1.2.840.113549.1.1.5'], ['sha1', '1.3.14.3.2.29'], ['sha256', '1.2.840.113549.1.1.11']]) {
      const id = newDeviceId();
      const csr = windowsCsr(id, key, { hash, sigOid });
      const bad = Buffer.from(csr);
      bad[bad.length - 7] ^= 0x10;
      await expectFault(rstRequest(enrollUrl(), security(), { token: bad.toString('base64'), context: goodContext(id) }), 'CertificateRequest');
      const { xml, text } = await post(enrollUrl(), rstRequest(enrollUrl(), security(), { token: csr.toString('base64'), context: goodContext(id) }));
      assert.equal(faultType(xml), null, `${sigOid}: ${text}`);
      const doc = parseXml(provisioningDoc(xml))['wap-provisioningdoc'];
      const my = characteristic(characteristic(characteristic(doc, 'CertificateStore'), 'My'), 'User');
      const client = (Array.isArray(my.characteristic) ? my.characteristic : [my.characteristic]).find((c) => c['@type'] !== 'PrivateKeyContainer');
      const { stdout, text: certText } = await verifyWithOpenssl(caDer, Buffer.from(parm(client, 'EncodedCertificate'), 'base64'));
      assert.match(stdout, /: OK/, sigOid);
      assert.match(certText, /ecdsa-with-SHA256/);
    }
  });

  test('an RSA key under 2048 bits', async () => {
    const id = newDeviceId();
    const csr = windowsCsr(id, newKey(1024));
    await expectFault(rstRequest(enrollUrl(), security(), { token: csr.toString('base64'), context: goodContext(id) }), 'CertificateRequest');
  });

  test('no credential or a wrong password on enrollment', async () => {
    const id = newDeviceId();
    const token = windowsCsr(id, newKey()).toString('base64');
    await expectFault(rstRequest(enrollUrl(), '', { token, context: goodContext(id) }), 'Authentication');
    await expectFault(rstRequest(enrollUrl(), usernameToken(EMAIL, 'nope'), { token, context: goodContext(id) }), 'Authentication');
  });

  test('context that names no device type or an unusable device id', async () => {
    const id = newDeviceId();
    const token = windowsCsr(id, newKey()).toString('base64');
    await expectFault(rstRequest(enrollUrl(), security(), { token, context: [['DeviceID', id]] }), 'InvalidEnrollmentData');
    await expectFault(rstRequest(enrollUrl(), security(), { token, context: [['DeviceID', '../etc'], ['DeviceType', 'CIMClient_Windows']] }), 'InvalidEnrollmentData');
  });

  test('a body over the size limit', async () => {
    const id = newDeviceId();
    const big = rstRequest(enrollUrl(), security(), { token: windowsCsr(id, newKey()).toString('base64'), context: [...goodContext(id), ['Padding', 'x'.repeat(70_000)]] });
    await expectFault(big, 'MessageFormat');
  });

  test('faults relate to the request and use correctly cased SOAP 1.2', async () => {
    const { text } = await post(policyUrl(), getPoliciesRequest(policyUrl(), usernameToken(EMAIL, 'bad')));
    assert.match(text, /<s:Fault>/);
    assert.match(text, /<DeviceEnrollmentServiceError xmlns="http:\/\/schemas.microsoft.com\/windows\/pki\/2009\/01\/enrollment">/);
    assert.match(text, /<a:RelatesTo>urn:uuid:72048B64-0F19-448F-8C2E-B4C661860AA0<\/a:RelatesTo>/);
    assert.match(text, /<TraceId>[0-9a-f]{16}<\/TraceId>/);
  });
});

describe('admin API', () => {
  test('every admin route refuses a missing or wrong token with 401', async () => {
    const routes = [['GET', '/api/v1/users'], ['POST', '/api/v1/users'], ['DELETE', '/api/v1/users/a%40b.c'], ['GET', '/api/v1/devices'], ['GET', '/api/v1/devices/ABC']];
    for (const [method, p] of routes) {
      for (const auth of [undefined, 'Bearer wrong', w.adminToken]) {
        const res = await fetch(`${w.url}${p}`, { method, headers: auth ? { authorization: auth } : {} });
        assert.equal(res.status, 401, `${method} ${p} ${auth}`);
        assert.equal(res.headers.get('content-type'), 'application/json; charset=utf-8');
      }
    }
  });

  test('users: create, validate, conflict, list without hashes, delete', async () => {
    const bad = [{ email: 'not-an-email', password: 'long enough pw' }, { email: 'b@contoso.com', password: 'short' }, { email: 'c@contoso.com' }, 'not json'];
    for (const body of bad) {
      const res = await fetch(`${w.url}/api/v1/users`, { method: 'POST', headers: { authorization: `Bearer ${w.adminToken}` }, body: typeof body === 'string' ? body : JSON.stringify(body) });
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.ok((await res.json()).error);
    }
    assert.equal((await admin(w, 'POST', '/api/v1/users', { email: 'Bob@Contoso.com', password: 'bob password', display_name: 'Bob' })).status, 201);
    assert.equal((await admin(w, 'POST', '/api/v1/users', { email: 'bob@contoso.com', password: 'bob password 2' })).status, 409);
    const list = await admin(w, 'GET', '/api/v1/users');
    const bob = list.body.users.find((u) => u.email === 'bob@contoso.com');
    assert.deepEqual(Object.keys(bob).sort(), ['created_at', 'display_name', 'email']);
    assert.equal((await admin(w, 'DELETE', '/api/v1/users/bob%40contoso.com')).status, 204);
    assert.equal((await admin(w, 'DELETE', '/api/v1/users/bob%40contoso.com')).status, 404);
    // A deleted user can no longer enroll.
    const { xml } = await post(policyUrl(), getPoliciesRequest(policyUrl(), usernameToken('bob@contoso.com', 'bob password')));
    assert.equal(faultType(xml), 'Authentication');
  });

  test('unknown devices are 404, malformed ids 400', async () => {
    assert.equal((await admin(w, 'GET', '/api/v1/devices/0123456789ABCDEF0123456789ABCDEF')).status, 404);
    assert.equal((await admin(w, 'GET', '/api/v1/devices/bad%20id')).status, 400);
  });
});
