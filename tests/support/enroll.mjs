// The whole OnPremise enrollment of a simulated Windows 10 device, step by step as Windows does
// it, returning what the device ends up holding.

import assert from 'node:assert/strict';
import {
  characteristic, discoverRequest, faultType, getPoliciesRequest, newDeviceId, newKey, parm, parseXml, post,
  provisioningDoc, request, rstRequest, usernameToken, win10Context, windowsCsr,
} from './device.mjs';

export async function createUser(w, email, password, display_name = 'Test User') {
  const res = await request(`${w.url}/api/v1/users`, {
    method: 'POST',
    headers: { authorization: `Bearer ${w.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ email, password, display_name }),
  });
  const text = await res.text();
  assert.equal(res.status, 201, text);
  return JSON.parse(text);
}

export async function admin(w, method, path, body) {
  const res = await request(`${w.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${w.adminToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

/** Discovery, policy and WSTEP with a UsernameToken; returns the device's state. */
export async function enrollDevice(w, { email, password, deviceId = newDeviceId(), enrollmentType = 'Full', hash = 'sha1', key = newKey() } = {}) {
  const disc = await post(`${w.url}/EnrollmentServer/Discovery.svc`, discoverRequest(`${w.url}/EnrollmentServer/Discovery.svc`, { email }));
  assert.equal(faultType(disc.xml), null, disc.text);
  const result = disc.xml.Envelope.Body.DiscoverResponse.DiscoverResult;
  const security = usernameToken(email, password);
  const pol = await post(result.EnrollmentPolicyServiceUrl, getPoliciesRequest(result.EnrollmentPolicyServiceUrl, security));
  assert.equal(faultType(pol.xml), null, pol.text);
  const csr = windowsCsr(deviceId, key, { hash });
  const enr = await post(result.EnrollmentServiceUrl, rstRequest(result.EnrollmentServiceUrl, security, {
    token: csr.toString('base64'),
    context: win10Context(deviceId, { enrollmentType }),
  }));
  assert.equal(faultType(enr.xml), null, enr.text);
  const docText = provisioningDoc(enr.xml);
  const doc = parseXml(docText)['wap-provisioningdoc'];
  const store = characteristic(doc, 'CertificateStore');
  const rootSys = characteristic(characteristic(store, 'Root'), 'System');
  const root = rootSys.characteristic;
  const my = characteristic(characteristic(store, 'My'), enrollmentType === 'Device' ? 'System' : 'User');
  const client = (Array.isArray(my.characteristic) ? my.characteristic : [my.characteristic]).find((c) => c['@type'] !== 'PrivateKeyContainer');
  return {
    deviceId,
    key,
    result,
    enrollResponse: enr,
    docText,
    doc,
    caThumbprint: root['@type'],
    caDer: Buffer.from(parm(root, 'EncodedCertificate'), 'base64'),
    certThumbprint: client['@type'],
    certDer: Buffer.from(parm(client, 'EncodedCertificate'), 'base64'),
  };
}
