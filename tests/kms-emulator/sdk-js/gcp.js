// SPDX-License-Identifier: Apache-2.0
// @google-cloud/kms 5.7.0 over its REST fallback (google-gax, numeric enums) against the emulator.
'use strict';
const assert = require('node:assert/strict');
const { KeyManagementServiceClient } = require('@google-cloud/kms');
const { UserRefreshClient } = require('google-auth-library');
const fs = require('fs');
const { info, control, crc32c, expectError, run } = require('./common');

const g = info.gcp;
const [host, port] = g.api_endpoint.split(':');
function client(extra = {}) {
  return new KeyManagementServiceClient({ fallback: true, apiEndpoint: host, port: Number(port), protocol: 'https', ...extra });
}
// A service-account key file: google-auth-library sends a self-signed JWT (no token endpoint).
const kms = client({ keyFilename: g.service_account_file });
const SYM = g.keys.symmetric;

// gax 5.0.8's REST transport fetches through google-auth-library 10.5.0, whose fetch throws a
// GaxiosError for non-2xx replies before gax decodes them; either way the google.rpc.Status
// body is what the service sent, so the checks read its `status`.
function rpcStatus(err) {
  if (typeof err.code === 'number' && err.code < 100) return err.code;
  const text = typeof err.response?.data === 'string' ? err.response.data : err.message;
  return JSON.parse(text).error.status;
}

async function encrypt(c, name, text) {
  const pt = Buffer.from(text);
  const [r] = await c.encrypt({ name, plaintext: pt, plaintextCrc32c: { value: crc32c(pt) } });
  assert.equal(r.verifiedPlaintextCrc32c, true);
  assert.equal(Number(r.ciphertextCrc32c.value), crc32c(r.ciphertext));
  return r;
}

run({
  async encryptDecryptWithCrc() {
    const aad = Buffer.from('aad-1');
    const [e] = await kms.encrypt({ name: SYM, plaintext: Buffer.from('hello world'), plaintextCrc32c: { value: 3381945770 },
      additionalAuthenticatedData: aad, additionalAuthenticatedDataCrc32c: { value: crc32c(aad) } });
    assert.equal(e.verifiedAdditionalAuthenticatedDataCrc32c, true);
    assert.equal(e.name, `${SYM}/cryptoKeyVersions/1`);
    assert.equal(e.protectionLevel, 'SOFTWARE');          // numeric enum on the wire, decoded by gax
    const [d] = await kms.decrypt({ name: SYM, ciphertext: e.ciphertext, ciphertextCrc32c: { value: crc32c(e.ciphertext) },
      additionalAuthenticatedData: aad });
    assert.equal(Buffer.from(d.plaintext).toString(), 'hello world');
    assert.equal(Number(d.plaintextCrc32c.value), 3381945770);
    await expectError(kms.decrypt({ name: SYM, ciphertext: e.ciphertext }),
      (err) => { assert.equal(rpcStatus(err), 'INVALID_ARGUMENT'); assert.match(err.message, /Decryption failed/); });
  },
  async tamperedCrcIsRejected() {
    await expectError(kms.encrypt({ name: SYM, plaintext: Buffer.from('x'), plaintextCrc32c: { value: 1 } }),
      (err) => { assert.equal(rpcStatus(err), 'INVALID_ARGUMENT'); assert.match(err.message, /checksum/); });
  },
  async corruptedResponseCrcIsDetected() {
    await control('POST', '/v1/faults', { service: 'gcp', op: 'Encrypt', kind: 'corrupt_crc32c' });
    const pt = Buffer.from('integrity');
    const [r] = await kms.encrypt({ name: SYM, plaintext: pt, plaintextCrc32c: { value: crc32c(pt) } });
    assert.notEqual(Number(r.ciphertextCrc32c.value), crc32c(r.ciphertext), 'client must see the corruption');
  },
  async keyAndVersionLifecycle() {
    const [key] = await kms.createCryptoKey({ parent: g.key_ring, cryptoKeyId: 'node-key',
      cryptoKey: { purpose: 'ENCRYPT_DECRYPT', versionTemplate: { algorithm: 'GOOGLE_SYMMETRIC_ENCRYPTION' } } });
    assert.equal(key.primary.state, 'ENABLED');
    const old = await encrypt(kms, key.name, 'v1');
    const [v2] = await kms.createCryptoKeyVersion({ parent: key.name, cryptoKeyVersion: {} });
    await kms.updateCryptoKeyPrimaryVersion({ name: key.name, cryptoKeyVersionId: v2.name.split('/').pop() });
    const [k2] = await kms.getCryptoKey({ name: key.name });
    assert.equal(k2.primary.name, v2.name);
    const fresh = await encrypt(kms, key.name, 'v2');
    assert.equal(fresh.name, v2.name);
    const [d] = await kms.decrypt({ name: key.name, ciphertext: old.ciphertext });
    assert.equal(Buffer.from(d.plaintext).toString(), 'v1');
    assert.ok(!d.usedPrimary);
    const [dis] = await kms.updateCryptoKeyVersion({ cryptoKeyVersion: { name: old.name, state: 'DISABLED' }, updateMask: { paths: ['state'] } });
    assert.equal(dis.state, 'DISABLED');
    await expectError(kms.decrypt({ name: key.name, ciphertext: old.ciphertext }), (err) => {
      assert.equal(rpcStatus(err), 'FAILED_PRECONDITION');
      assert.match(err.message, /is not enabled, current state is: DISABLED/);
    });
    const [des] = await kms.destroyCryptoKeyVersion({ name: old.name });
    assert.equal(des.state, 'DESTROY_SCHEDULED');
    const [list] = await kms.listCryptoKeyVersions({ parent: key.name });
    assert.deepEqual(list.map((v) => v.state), ['DESTROY_SCHEDULED', 'ENABLED']);
    await expectError(kms.getCryptoKey({ name: `${g.key_ring}/cryptoKeys/absent` }),
      (err) => assert.equal(rpcStatus(err), 'PERMISSION_DENIED'));
  },
  async rawAesGcm() {
    const name = `${g.keys.raw_aes_gcm}/cryptoKeyVersions/1`;
    const pt = Buffer.from('raw gcm');
    const aad = Buffer.from('hdr');
    const [e] = await kms.rawEncrypt({ name, plaintext: pt, additionalAuthenticatedData: aad,
      plaintextCrc32c: { value: crc32c(pt) }, additionalAuthenticatedDataCrc32c: { value: crc32c(aad) } });
    assert.equal(e.initializationVector.length, 12);
    assert.equal(e.tagLength, 16);
    assert.equal(e.ciphertext.length, pt.length + 16);
    const [d] = await kms.rawDecrypt({ name, ciphertext: e.ciphertext, additionalAuthenticatedData: aad,
      initializationVector: e.initializationVector, ciphertextCrc32c: { value: crc32c(e.ciphertext) } });
    assert.equal(d.verifiedCiphertextCrc32c, true);
    assert.equal(Buffer.from(d.plaintext).toString(), 'raw gcm');
  },
  async unavailableSurfaces() {
    await control('DELETE', '/v1/counters');
    await control('POST', '/v1/faults', { service: 'gcp', op: 'GetCryptoKey', kind: 'error', status: 503, retry_after: 1 });
    await expectError(kms.getCryptoKey({ name: SYM }), (err) => {
      assert.equal(rpcStatus(err), 'UNAVAILABLE');
      assert.equal(err.response.headers.get('retry-after'), '1');
    });
    const [k] = await kms.getCryptoKey({ name: SYM });
    assert.equal(k.name, SYM);
    const c = (await control('GET', '/v1/counters')).counters['gcp/GetCryptoKey'];
    assert.deepEqual(c.by_status, { 503: 1, 200: 1 });
  },
  async metadataServerCredentials() {
    // ADC with no key file: google-auth-library asks the metadata server (GCE_METADATA_HOST).
    const c = client();
    const [k] = await c.getCryptoKey({ name: SYM });
    assert.equal(k.name, SYM);
  },
  async authorizedUserRefresh() {
    const u = JSON.parse(fs.readFileSync(g.authorized_user_file, 'utf8'));
    const auth = new UserRefreshClient({ clientId: u.client_id, clientSecret: u.client_secret, refreshToken: u.refresh_token,
      endpoints: { oauth2TokenUrl: g.token_uri } });
    const [k] = await client({ authClient: auth }).getCryptoKey({ name: SYM });
    assert.equal(k.name, SYM);
  },
  async revokedAndForeignTokens() {
    const { token } = await control('POST', '/v1/credentials/issue', { cloud: 'gcp', kind: 'access-token', lifetime: -5 });
    const { OAuth2Client } = require('google-auth-library');
    const expired = new OAuth2Client();
    expired.setCredentials({ access_token: token, expiry_date: Date.now() + 3600e3 });
    await expectError(client({ authClient: expired }).getCryptoKey({ name: SYM }), (err) => assert.equal(rpcStatus(err), 'UNAUTHENTICATED'));
  },
});
