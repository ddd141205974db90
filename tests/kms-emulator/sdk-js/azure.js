// SPDX-License-Identifier: Apache-2.0
// @azure/keyvault-keys + @azure/identity against the emulator (default api-version 2025-07-01).
'use strict';
const assert = require('node:assert/strict');
const { KeyClient, CryptographyClient } = require('@azure/keyvault-keys');
const { ClientSecretCredential, ClientCertificateCredential } = require('@azure/identity');
const { info, control, expectError, run } = require('./common');

const z = info.azure;
const credOpts = { authorityHost: z.authority_host, disableInstanceDiscovery: true };
const cred = new ClientSecretCredential(z.tenant_id, z.client_id, z.client_secret, credOpts);
// The vault host is 127.0.0.1, which cannot end with the challenge's vault.azure.net.
const clientOpts = { disableChallengeResourceVerification: true, retryOptions: { maxRetries: 1, retryDelayInMs: 100 } };
const vault = new KeyClient(z.vault_url, cred, clientOpts);
const hsm = new KeyClient(z.managed_hsm_url, cred, clientOpts);

run({
  async rsaKeyWrapAndDecrypt() {
    const key = await vault.createRsaKey('node-rsa', { keySize: 2048 });
    assert.match(key.id, /\/keys\/node-rsa\/[0-9a-f]{32}$/);
    const got = await vault.getKey('node-rsa');
    assert.equal(got.id, key.id);
    const cc = new CryptographyClient(key, cred, clientOpts);
    const w = await cc.wrapKey('RSA-OAEP-256', Buffer.alloc(32, 7));
    const u = await cc.unwrapKey('RSA-OAEP-256', w.result);
    assert.deepEqual(Buffer.from(u.result), Buffer.alloc(32, 7));
    const e = await cc.encrypt({ algorithm: 'RSA-OAEP', plaintext: Buffer.from('hi') });
    const d = await cc.decrypt({ algorithm: 'RSA-OAEP', ciphertext: e.result });
    assert.equal(Buffer.from(d.result).toString(), 'hi');
  },
  async disabledKeyIsForbidden() {
    const key = await vault.createRsaKey('node-dis');
    const cc = new CryptographyClient(key, cred, clientOpts);
    const w = await cc.wrapKey('RSA-OAEP', Buffer.alloc(16, 1));
    await vault.updateKeyProperties('node-dis', key.properties.version, { enabled: false });
    await expectError(cc.unwrapKey('RSA-OAEP', w.result), (err) => {
      assert.equal(err.statusCode, 403);
      assert.equal(err.code, 'Forbidden');
    });
    const versions = [];
    for await (const p of vault.listPropertiesOfKeyVersions('node-dis')) versions.push(p.version);
    assert.deepEqual(versions, [key.properties.version]);
  },
  async managedHsmAes() {
    const key = await hsm.getKey(z.keys.hsm_aes);
    assert.equal(key.keyType, 'oct-HSM');
    const cc = new CryptographyClient(key.id, cred, clientOpts);
    for (const alg of ['A256KW', 'CKM_AES_KEY_WRAP', 'CKM_AES_KEY_WRAP_PAD']) {
      const w = await cc.wrapKey(alg, Buffer.alloc(alg.endsWith('PAD') ? 20 : 32, 9));
      const u = await cc.unwrapKey(alg, w.result);
      assert.deepEqual(Buffer.from(u.result), Buffer.alloc(alg.endsWith('PAD') ? 20 : 32, 9));
    }
    const e = await cc.encrypt({ algorithm: 'A256GCM', plaintext: Buffer.from('gcm'), additionalAuthenticatedData: Buffer.from('aad') });
    assert.equal(e.iv.length, 12);
    const d = await cc.decrypt({ algorithm: 'A256GCM', ciphertext: e.result, iv: e.iv, authenticationTag: e.authenticationTag,
      additionalAuthenticatedData: Buffer.from('aad') });
    assert.equal(Buffer.from(d.result).toString(), 'gcm');
  },
  async certificateCredential() {
    const c = new ClientCertificateCredential(z.tenant_id, z.client_id, { certificatePath: z.client_certificate_path }, credOpts);
    const k = await new KeyClient(z.vault_url, c, clientOpts).getKey(z.keys.vault_rsa);
    assert.equal(k.keyType, 'RSA');
  },
  async wrongSecret() {
    const bad = new ClientSecretCredential(z.tenant_id, z.client_id, 'wrong', credOpts);
    await expectError(new KeyClient(z.vault_url, bad, clientOpts).getKey(z.keys.vault_rsa),
      (err) => assert.match(String(err.message), /AADSTS7000215/));
  },
  async throttledThenOk() {
    await vault.getKey(z.keys.vault_rsa);
    await control('POST', '/v1/faults', { service: 'azure-vault', op: 'GetKey', kind: 'throttle', status: 429, retry_after: 1 });
    const t = Date.now();
    await vault.getKey(z.keys.vault_rsa);
    assert.ok(Date.now() - t >= 900, 'Retry-After honoured');
  },
});
