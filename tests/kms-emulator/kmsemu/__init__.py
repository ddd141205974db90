# SPDX-License-Identifier: Apache-2.0
"""p11kms KMS emulator: AWS KMS, Azure Key Vault / Managed HSM and Google Cloud KMS on loopback."""

from .harness import EmulatorHandle, start

__all__ = ["EmulatorHandle", "start"]
