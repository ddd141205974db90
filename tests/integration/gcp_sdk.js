// SPDX-License-Identifier: Apache-2.0
// The official client, @google-cloud/kms 5.7.0 over its REST fallback, on the other end of
// the module's blobs: node gcp_sdk.js decrypt|encrypt KEY IN_FILE AAD OUT_FILE
// (AAD "-" for none), and of its raw AES-GCM: node gcp_sdk.js raw-encrypt|raw-decrypt
// VERSION IN_FILE AAD OUT_FILE IV_FILE (the IV is written by raw-encrypt, read by
// raw-decrypt; the ciphertext is ciphertext||tag). Needs KMSEMU_INFO and
// NODE_EXTRA_CA_CERTS (emuctl_gcp.py sets both).
// CRC32C is sent and checked here too, so the SDK side proves the same integrity contract.
'use strict';
const path = require('path');
const fs = require('fs');
const sdkDir = path.join(__dirname, '..', 'kms-emulator', 'sdk-js');
const { KeyManagementServiceClient } = require(path.join(sdkDir, 'node_modules', '@google-cloud', 'kms'));
const { info, crc32c } = require(path.join(sdkDir, 'common.js'));

async function main() {
  const [op, key, inFile, aadArg, outFile, ivFile] = process.argv.slice(2);
  const g = info.gcp;
  const [host, port] = g.api_endpoint.split(':');
  const kms = new KeyManagementServiceClient({ fallback: true, apiEndpoint: host, port: Number(port),
    protocol: 'https', keyFilename: g.service_account_file });
  const data = fs.readFileSync(inFile);
  const aad = aadArg === '-' ? undefined : Buffer.from(aadArg);
  const extra = aad ? { additionalAuthenticatedData: aad, additionalAuthenticatedDataCrc32c: { value: crc32c(aad) } } : {};
  let out;
  if (op === 'decrypt') {
    const [r] = await kms.decrypt({ name: key, ciphertext: data, ciphertextCrc32c: { value: crc32c(data) }, ...extra });
    out = Buffer.from(r.plaintext);
    if (Number(r.plaintextCrc32c.value) !== crc32c(out)) throw new Error('plaintext CRC32C mismatch');
  } else if (op === 'encrypt') {
    const [r] = await kms.encrypt({ name: key, plaintext: data, plaintextCrc32c: { value: crc32c(data) }, ...extra });
    out = Buffer.from(r.ciphertext);
    if (!r.verifiedPlaintextCrc32c || (aad && !r.verifiedAdditionalAuthenticatedDataCrc32c) ||
        Number(r.ciphertextCrc32c.value) !== crc32c(out)) throw new Error('CRC32C not verified');
  } else if (op === 'raw-encrypt') {
    const [r] = await kms.rawEncrypt({ name: key, plaintext: data, plaintextCrc32c: { value: crc32c(data) }, ...extra });
    out = Buffer.from(r.ciphertext);
    const iv = Buffer.from(r.initializationVector);
    if (!r.verifiedPlaintextCrc32c || (aad && !r.verifiedAdditionalAuthenticatedDataCrc32c) ||
        Number(r.ciphertextCrc32c.value) !== crc32c(out) ||
        Number(r.initializationVectorCrc32c.value) !== crc32c(iv)) throw new Error('CRC32C not verified');
    if (iv.length !== 12 || (r.tagLength || 16) !== 16) throw new Error('not AES-GCM with a 96-bit IV');
    fs.writeFileSync(ivFile, iv);
  } else if (op === 'raw-decrypt') {
    const iv = fs.readFileSync(ivFile);
    const [r] = await kms.rawDecrypt({ name: key, ciphertext: data, ciphertextCrc32c: { value: crc32c(data) },
      initializationVector: iv, initializationVectorCrc32c: { value: crc32c(iv) }, tagLength: 16, ...extra });
    out = Buffer.from(r.plaintext);
    if (!r.verifiedCiphertextCrc32c || !r.verifiedInitializationVectorCrc32c ||
        (aad && !r.verifiedAdditionalAuthenticatedDataCrc32c) ||
        Number(r.plaintextCrc32c.value) !== crc32c(out)) throw new Error('CRC32C not verified');
  } else {
    throw new Error('usage: gcp_sdk.js decrypt|encrypt KEY IN_FILE AAD OUT_FILE | ' +
                    'raw-encrypt|raw-decrypt VERSION IN_FILE AAD OUT_FILE IV_FILE');
  }
  fs.writeFileSync(outFile, out);
}

main().catch((e) => { console.error(e && e.stack ? e.stack : e); process.exit(1); });
