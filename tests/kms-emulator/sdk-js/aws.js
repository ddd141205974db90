// SPDX-License-Identifier: Apache-2.0
// @aws-sdk/client-kms (SigV4 from @smithy/signature-v4, which signs more headers than botocore)
// against the emulator. CA from NODE_EXTRA_CA_CERTS.
'use strict';
const assert = require('node:assert/strict');
const kmsSdk = require('@aws-sdk/client-kms');
const { info, control, expectError, run } = require('./common');

const a = info.aws;
function client(creds = {}, maxAttempts = 1) {
  return new kmsSdk.KMSClient({
    region: a.region, endpoint: a.endpoint_url, maxAttempts,
    credentials: { accessKeyId: a.access_key_id, secretAccessKey: a.secret_access_key, ...creds },
  });
}
const kms = client();

run({
  async encryptDecryptWithContext() {
    const e = await kms.send(new kmsSdk.EncryptCommand({
      KeyId: a.alias, Plaintext: Buffer.from('hello'), EncryptionContext: { purpose: 'demo' } }));
    assert.equal(e.KeyId, a.key_arn);
    const d = await kms.send(new kmsSdk.DecryptCommand({
      CiphertextBlob: e.CiphertextBlob, EncryptionContext: { purpose: 'demo' } }));
    assert.equal(Buffer.from(d.Plaintext).toString(), 'hello');
    await expectError(kms.send(new kmsSdk.DecryptCommand({ CiphertextBlob: e.CiphertextBlob })),
      (err) => assert.equal(err.name, 'InvalidCiphertextException'));
  },
  async dataKeysAndReEncrypt() {
    const g = await kms.send(new kmsSdk.GenerateDataKeyCommand({ KeyId: a.key_id, KeySpec: 'AES_256' }));
    assert.equal(g.Plaintext.length, 32);
    const w = await kms.send(new kmsSdk.GenerateDataKeyWithoutPlaintextCommand({ KeyId: a.key_arn, NumberOfBytes: 16 }));
    assert.equal(w.Plaintext, undefined);
    const k = await kms.send(new kmsSdk.CreateKeyCommand({ Description: 'node' }));
    const r = await kms.send(new kmsSdk.ReEncryptCommand({ CiphertextBlob: g.CiphertextBlob, DestinationKeyId: k.KeyMetadata.KeyId }));
    assert.equal(r.KeyId, k.KeyMetadata.Arn);
    const d = await kms.send(new kmsSdk.DecryptCommand({ CiphertextBlob: r.CiphertextBlob }));
    assert.deepEqual(Buffer.from(d.Plaintext), Buffer.from(g.Plaintext));
  },
  async keyLifecycleAndRotation() {
    const k = (await kms.send(new kmsSdk.CreateKeyCommand({}))).KeyMetadata;
    assert.ok(k.CreationDate instanceof Date);
    await kms.send(new kmsSdk.CreateAliasCommand({ AliasName: 'alias/node-made', TargetKeyId: k.KeyId }));
    const old = (await kms.send(new kmsSdk.EncryptCommand({ KeyId: 'alias/node-made', Plaintext: Buffer.from('v1') }))).CiphertextBlob;
    await kms.send(new kmsSdk.EnableKeyRotationCommand({ KeyId: k.KeyId, RotationPeriodInDays: 90 }));
    const st = await kms.send(new kmsSdk.GetKeyRotationStatusCommand({ KeyId: k.KeyId }));
    assert.equal(st.KeyRotationEnabled, true);
    assert.equal(st.RotationPeriodInDays, 90);
    await kms.send(new kmsSdk.RotateKeyOnDemandCommand({ KeyId: k.KeyId }));
    const d = await kms.send(new kmsSdk.DecryptCommand({ CiphertextBlob: old }));
    assert.equal(Buffer.from(d.Plaintext).toString(), 'v1');
    await kms.send(new kmsSdk.DisableKeyCommand({ KeyId: k.KeyId }));
    await expectError(kms.send(new kmsSdk.DecryptCommand({ CiphertextBlob: old })),
      (err) => { assert.equal(err.name, 'DisabledException'); assert.equal(err.$metadata.httpStatusCode, 400); });
    await kms.send(new kmsSdk.EnableKeyCommand({ KeyId: k.KeyId }));
    await kms.send(new kmsSdk.ScheduleKeyDeletionCommand({ KeyId: k.KeyId, PendingWindowInDays: 7 }));
    await expectError(kms.send(new kmsSdk.EncryptCommand({ KeyId: k.KeyId, Plaintext: Buffer.from('x') })),
      (err) => assert.equal(err.name, 'KMSInvalidStateException'));
    await kms.send(new kmsSdk.CancelKeyDeletionCommand({ KeyId: k.KeyId }));
    const md = (await kms.send(new kmsSdk.DescribeKeyCommand({ KeyId: 'alias/node-made' }))).KeyMetadata;
    assert.equal(md.KeyState, 'Disabled');
    const keys = await kms.send(new kmsSdk.ListKeysCommand({}));
    assert.ok(keys.Keys.some((x) => x.KeyId === k.KeyId));
    const al = await kms.send(new kmsSdk.ListAliasesCommand({ KeyId: k.KeyId }));
    assert.deepEqual(al.Aliases.map((x) => x.AliasName), ['alias/node-made']);
  },
  async wrongSignatureAndSessionToken() {
    await expectError(client({ secretAccessKey: 'wrong' }).send(new kmsSdk.ListKeysCommand({})),
      (err) => assert.equal(err.name, 'InvalidSignatureException'));
    const s = await control('POST', '/v1/credentials/issue', { cloud: 'aws', kind: 'session' });
    const ok = client({ accessKeyId: s.access_key_id, secretAccessKey: s.secret_access_key, sessionToken: s.session_token });
    await ok.send(new kmsSdk.ListKeysCommand({}));
    await expectError(client({ accessKeyId: s.access_key_id, secretAccessKey: s.secret_access_key, sessionToken: 'bad' })
      .send(new kmsSdk.ListKeysCommand({})), (err) => assert.equal(err.name, 'UnrecognizedClientException'));
  },
  async throttlingIsRetried() {
    await control('POST', '/v1/faults', { service: 'aws', op: 'DescribeKey', kind: 'throttle', count: 1 });
    const r = await client({}, 3).send(new kmsSdk.DescribeKeyCommand({ KeyId: a.alias }));
    assert.equal(r.$metadata.attempts, 2);
    await control('POST', '/v1/faults', { service: 'aws', op: 'DescribeKey', kind: 'error', status: 503 });
    await expectError(kms.send(new kmsSdk.DescribeKeyCommand({ KeyId: a.alias })),
      (err) => assert.equal(err.$metadata.httpStatusCode, 503));
  },
});
