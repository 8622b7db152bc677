"""The node's platform seal state as the supervisor of ``strongroom server --workers N`` holds it.

An explicit state machine (DESIGN.md section 9.9):

* **sealed** (``root_key is None``), with the unseal ceremony's progress in a :class:`ShareCollector`
  (expiring after the configured unseal expiry, as in one process);
* **unsealed** (``root_key`` held in memory only): every worker, including one restarted after a crash,
  receives this key over its supervisor link and needs no new ceremony.

Every change of the key (unseal, seal, a rekey adopted by a worker) increments ``epoch``; the epoch travels
with each ``INSTALL``/``SEAL_ALL`` so a worker can drop an install that a later seal overtook, and
acknowledgements are matched to the change they confirm.

The supervisor proves a combined key itself by opening the keyring blob the submitting worker read from
storage (the supervisor has no store: it forks before any connection exists), so completing a ceremony is
one atomic step here: no worker ever receives a key that does not open the keyring.
"""

from __future__ import annotations

from strongroom.barrier.keyring import Keyring
from strongroom.clock import Clock
from strongroom.core.seal import SealConfig, ShareCollector
from strongroom.crypto.secret import SecretBytes
from strongroom.errors import DecryptionFailed, InvalidShare

UNSEAL_MISMATCH = "Error unsealing: the unseal keys did not reconstruct the root key"
"""Vault's message (also :meth:`strongroom.core.vault.Vault.load_keys`'s) for shares that do not combine."""


class NodeUnseal:
    """The node's seal state: progress while sealed, the root key while unsealed. Not thread-safe."""

    def __init__(self, clock: Clock, expiry_seconds: float | None = None) -> None:
        self.collector = ShareCollector(clock, expiry_seconds)
        self.root_key: SecretBytes | None = None
        self.epoch = 0
        self.ever_unsealed = False
        """Whether the node was unsealed since the supervisor started (dev mode unseals once, at start)."""

    def __repr__(self) -> str:
        return f"NodeUnseal(sealed={self.sealed}, epoch={self.epoch}, progress={self.collector.progress})"

    def __reduce__(self) -> tuple[()]:
        raise TypeError("the node's seal state may hold the root key and cannot be pickled")

    @property
    def sealed(self) -> bool:
        """Whether the supervisor holds no root key."""
        return self.root_key is None

    def submit(
        self, share: bytes, threshold: int, shares: int, keyring_key: bytes, keyring: bytes
    ) -> SecretBytes | None:
        """Add one share; return the root key (and enter *unsealed*) when it completes the ceremony.

        A completed combination that does not open ``keyring`` resets the progress, as in Vault.

        Raises:
            InvalidShare: a malformed share, or shares that do not combine to the key of ``keyring``.
            InvalidRequest: an impossible threshold/share count.
            CorruptRecord: the keyring opened but is not a keyring this version understands.
        """
        key = self.collector.add(share, SealConfig("shamir", shares, threshold))
        if key is None:
            return None
        try:
            Keyring.open(key, keyring_key, keyring)
        except DecryptionFailed:
            raise InvalidShare(UNSEAL_MISMATCH) from None
        self.root_key = key
        self.ever_unsealed = True
        self.epoch += 1
        return key

    def reset(self) -> None:
        """Forget the collected shares."""
        self.collector.reset()

    def progress(self) -> tuple[int, str]:
        """Return ``(progress, nonce)`` of the running ceremony (zero and empty once expired)."""
        progress = self.collector.progress  # expires first, which may clear the nonce
        return progress, self.collector.nonce

    def seal(self) -> int:
        """Forget the root key and any progress; return the new epoch."""
        self.root_key = None
        self.collector.reset()
        self.epoch += 1
        return self.epoch

    def replace(self, root_key: SecretBytes) -> bool:
        """Adopt the new root key a worker committed with a rekey; return whether anything changed.

        A sealed node ignores it: a seal that reached the supervisor first wins over a rekey that
        finished in a worker meanwhile.
        """
        if self.root_key is None or self.root_key == root_key:
            return False
        self.root_key = root_key
        self.epoch += 1
        return True

    def obsolete(self, epoch: int) -> bool:
        """A worker found that the key of ``epoch`` no longer opens the keyring (a rekey on another node).

        The supervisor forgets it if it is still the current key, so restarted workers are not handed a
        useless key; the running workers have already sealed themselves. Returns whether it forgot.
        """
        if epoch != self.epoch or self.root_key is None:
            return False
        self.root_key = None
        return True
