// SPDX-License-Identifier: Apache-2.0
// Shared helpers for the npm SDK proofs: emulator info, control API, CRC32C, a tiny test runner.
'use strict';
const fs = require('fs');
const http = require('http');

const info = JSON.parse(fs.readFileSync(process.env.KMSEMU_INFO, 'utf8'));

function control(method, path, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? null : Buffer.from(JSON.stringify(body));
    const req = http.request(info.control_url + path, {
      method, headers: data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {},
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        if (res.statusCode >= 300) reject(new Error(`control ${res.statusCode}: ${text}`));
        else resolve(text ? JSON.parse(text) : {});
      });
    });
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

// CRC32C (Castagnoli), reflected polynomial 0x82F63B78.
const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();
function crc32c(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

async function expectError(promise, check) {
  try {
    await promise;
  } catch (e) {
    check(e);
    return e;
  }
  throw new Error('expected an error');
}

// Run named async test functions in order; print one line per test and exit non-zero on failure.
async function run(tests) {
  let failed = 0;
  for (const [name, fn] of Object.entries(tests)) {
    try {
      await fn();
      console.log(`ok ${name}`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
    } finally {
      await control('DELETE', '/v1/faults');
    }
  }
  process.exit(failed ? 1 : 0);
}

module.exports = { info, control, crc32c, expectError, run };
