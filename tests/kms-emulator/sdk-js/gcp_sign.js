// SPDX-License-Identifier: Apache-2.0
// @google-cloud/kms 5.7.0 (REST fallback, numeric enums) for asymmetric keys, one call per run;
// the caller (test_signing_node.py, tests/integration/emuctl_sign.py) checks the results with
// python3-cryptography. KMSEMU_INFO names the emulator's emulator.json. Prints one JSON line.
//
//   node gcp_sign.js create KEY_ID PURPOSE ALGORITHM   createCryptoKey in the emulator's key ring
//   node gcp_sign.js add-version KEY                    createCryptoKeyVersion
//   node gcp_sign.js resolve KEY_OR_VERSION             a version name: as given, or KEY's newest
//                                                       ENABLED version (listCryptoKeyVersions)
//   node gcp_sign.js pubkey VERSION                     getPublicKey (pemCrc32c checked here)
//   node gcp_sign.js sign VERSION HASH DIGEST_HEX       asymmetricSign with digest + digestCrc32c
//   node gcp_sign.js state VERSION ENABLED|DISABLED     updateCryptoKeyVersion (mask: state)
//   node gcp_sign.js decrypt VERSION CIPHERTEXT_HEX     asymmetricDecrypt with ciphertextCrc32c
// An error prints {"error": <google.rpc status name>, "message": ...} and exits 3.
'use strict';
const { KeyManagementServiceClient } = require('@google-cloud/kms');
const { info, crc32c } = require('./common');

const g = info.gcp;
const [host, port] = g.api_endpoint.split(':');
const kms = new KeyManagementServiceClient({ fallback: true, apiEndpoint: host, port: Number(port), protocol: 'https',
  keyFilename: g.service_account_file });

function rpcStatus(err) {
  if (typeof err.code === 'number' && err.code < 100) return String(err.code);
  const text = typeof err.response?.data === 'string' ? err.response.data : err.message;
  try { return JSON.parse(text).error.status; } catch (e) { return 'UNKNOWN'; }
}

async function main(cmd, args) {
  if (cmd === 'create') {
    const [k] = await kms.createCryptoKey({ parent: g.key_ring, cryptoKeyId: args[0],
      cryptoKey: { purpose: args[1], versionTemplate: { algorithm: args[2] } } });
    return { name: k.name, purpose: k.purpose, algorithm: k.versionTemplate.algorithm, primary: k.primary || null };
  }
  if (cmd === 'add-version') {
    const [v] = await kms.createCryptoKeyVersion({ parent: args[0], cryptoKeyVersion: {} });
    return { name: v.name, state: v.state, algorithm: v.algorithm };
  }
  if (cmd === 'resolve') {
    if (args[0].includes('/cryptoKeyVersions/')) return { name: args[0] };
    const [list] = await kms.listCryptoKeyVersions({ parent: args[0] });
    const enabled = list.filter((v) => v.state === 'ENABLED')
      .sort((a, b) => Number(b.name.split('/').pop()) - Number(a.name.split('/').pop()));
    if (!enabled.length) throw Object.assign(new Error(`${args[0]} has no ENABLED version`), { code: 9 });
    return { name: enabled[0].name, algorithm: enabled[0].algorithm };
  }
  if (cmd === 'pubkey') {
    const [pk] = await kms.getPublicKey({ name: args[0] });
    if (Number(pk.pemCrc32c.value) !== crc32c(Buffer.from(pk.pem))) throw new Error('pemCrc32c does not match pem');
    return { name: pk.name, pem: pk.pem, algorithm: pk.algorithm, protectionLevel: pk.protectionLevel };
  }
  if (cmd === 'sign') {
    const digest = Buffer.from(args[2], 'hex');
    const [r] = await kms.asymmetricSign({ name: args[0], digest: { [args[1]]: digest },
      digestCrc32c: { value: crc32c(digest) } });
    const sig = Buffer.from(r.signature);
    if (!r.verifiedDigestCrc32c) throw new Error('the service did not verify digestCrc32c');
    if (Number(r.signatureCrc32c.value) !== crc32c(sig)) throw new Error('signatureCrc32c does not match');
    return { name: r.name, signature: sig.toString('hex') };
  }
  if (cmd === 'state') {
    const [v] = await kms.updateCryptoKeyVersion({ cryptoKeyVersion: { name: args[0], state: args[1] },
      updateMask: { paths: ['state'] } });
    return { name: v.name, state: v.state };
  }
  if (cmd === 'decrypt') {
    const ct = Buffer.from(args[1], 'hex');
    const [r] = await kms.asymmetricDecrypt({ name: args[0], ciphertext: ct, ciphertextCrc32c: { value: crc32c(ct) } });
    if (!r.verifiedCiphertextCrc32c) throw new Error('the service did not verify ciphertextCrc32c');
    return { plaintext: Buffer.from(r.plaintext).toString('hex') };
  }
  throw new Error(`gcp_sign.js: unknown command ${cmd}`);
}

main(process.argv[2], process.argv.slice(3)).then((out) => {
  console.log(JSON.stringify(out));
}, (err) => {
  console.log(JSON.stringify({ error: rpcStatus(err), message: String(err.message || err).split('\n')[0] }));
  process.exit(3);
});
