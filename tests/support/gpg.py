"""Real GnuPG for tests: a throwaway home directory, key generation and decryption."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tests.support.require import require_binary


@dataclass(frozen=True)
class GpgKey:
    """A generated key: gpg's fingerprint (uppercase hex) and its binary public key export."""

    fingerprint: str
    binary: bytes

    @property
    def vault_entry(self) -> str:
        """What Vault's CLI sends in ``pgp_keys``: standard base64 of the binary public key."""
        return base64.b64encode(self.binary).decode()


@dataclass(frozen=True)
class Gpg:
    """``gpg --batch`` in one home directory."""

    executable: str
    home: str

    def run(self, *args: str, data: bytes | None = None) -> bytes:
        """Run gpg with ``args``; return stdout or raise AssertionError with gpg's stderr."""
        result = subprocess.run(
            [self.executable, "--batch", "--homedir", self.home, *args],
            input=data,
            capture_output=True,
            check=False,
            timeout=120,
        )
        if result.returncode != 0:
            raise AssertionError(f"gpg {args[0]} failed: {result.stderr.decode(errors='replace')}")
        return result.stdout

    def generate(self, uid: str, primary: str = "ed25519", subkey: str | None = "cv25519") -> GpgKey:
        """Generate a key without passphrase (``subkey`` adds an encryption subkey)."""
        self.run("--passphrase", "", "--quick-gen-key", uid, primary, "sign", "never")
        fingerprint = next(
            line.split(":")[9]
            for line in self.run("--with-colons", "--list-keys", uid).decode().splitlines()
            if line.startswith("fpr:")
        )
        if subkey:
            self.run("--passphrase", "", "--quick-add-key", fingerprint, subkey, "encr", "never")
        return GpgKey(fingerprint, self.run("--export", fingerprint))

    def decrypt(self, message: bytes) -> bytes:
        """Decrypt a binary or armored OpenPGP message."""
        return self.run("--decrypt", data=message)


@contextmanager
def gpg_home() -> Iterator[Gpg]:
    """A fresh GnuPG home (short path: the agent socket lives there), removed afterwards."""
    executable = require_binary("gpg", "/usr/bin/gpg")
    home = tempfile.mkdtemp(prefix="sr-gpg-")
    os.chmod(home, 0o700)
    try:
        yield Gpg(executable, home)
    finally:
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"], capture_output=True, check=False)
        shutil.rmtree(home, ignore_errors=True)
