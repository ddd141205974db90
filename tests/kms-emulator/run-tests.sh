#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Run every KMS emulator test: the SigV4 vectors, the Python SDK proofs (boto3/botocore,
# azure-keyvault-keys/azure-identity), the wire-level Google tests, the control API, and
# the npm SDK proofs in sdk-js/ (installed here with `npm ci` when node_modules is missing).
# Exit status and closing line are pytest's. Extra arguments go to pytest (e.g. -k gcp).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

if [ ! -d "$HERE/sdk-js/node_modules" ] && command -v node >/dev/null && command -v npm >/dev/null; then
    echo "run-tests.sh: installing the npm SDKs (npm ci in $HERE/sdk-js)" >&2
    if ! (cd "$HERE/sdk-js" && npm ci --no-audit --no-fund --loglevel=error >&2); then
        echo "run-tests.sh: npm ci failed; the npm SDK tests will be skipped" >&2
    fi
fi

cd "$ROOT" || exit 2
# No .pytest_cache or __pycache__ in the source tree.
export PYTHONDONTWRITEBYTECODE=1
exec /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/kms-emulator/tests "$@"
