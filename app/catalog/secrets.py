"""Encryption of remote API keys at rest (Fernet, rotation by key list).

RELAY_SECRET_KEY holds one Fernet key or several separated by commas: the
first encrypts, every one decrypts, so a new key is put first, `ollama-relay
secrets rotate` re-encrypts, and the old key is then dropped.
"""

import hashlib
import hmac
import logging
import os

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from app.config import ConfigError
from app.storage import changes
from app.storage.db import database
from app.storage.files import private_folder
from app.storage.models import RemoteModel

log = logging.getLogger(__name__)

DEV_KEY_FILE = "secret.key"


# What a model's digest mixes in for its API key (fingerprint): an HMAC under a
# key derived from the first RELAY_SECRET_KEY, so the digest tells keys apart
# and nobody without the secret can test a guessed key against it.
_FINGERPRINT_CONTEXT = "ollama-relay: model digest fingerprint of a remote API key"


class Keyring:
    def __init__(self, keys):
        self._first = keys[0].encode() if isinstance(keys[0], str) else keys[0]
        try:
            self._fernet = MultiFernet([Fernet(key) for key in keys])
        except ValueError:
            raise ConfigError(
                "RELAY_SECRET_KEY: every key must be a url-safe base64 Fernet key "
                "(make one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())')"
            ) from None
        self._fingerprint_key = self.derived(_FINGERPRINT_CONTEXT)

    def fingerprint(self, plaintext):
        """A hex HMAC of `plaintext`: equal for equal keys under one secret,
        and says nothing about the key to whoever lacks the secret."""
        return hmac.new(self._fingerprint_key, plaintext.encode(), hashlib.sha256).hexdigest()

    def derived(self, purpose):
        """A secret for `purpose` (signing the console's sessions), from the
        first key: rotating the keys ends what was signed with the old one."""
        return hmac.new(self._first, purpose.encode(), hashlib.sha256).digest()

    def encrypt(self, plaintext):
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token):
        return self._unsealed(self._fernet.decrypt, token)

    def rotate(self, token):
        """Re-encrypt `token` under the first key."""
        return self._unsealed(self._fernet.rotate, token)

    @staticmethod
    def _unsealed(operation, token):
        try:
            return operation(token.encode()).decode()
        except InvalidToken:
            # Never include the token or key: the message reaches logs.
            raise ConfigError(
                "a stored API key cannot be decrypted with any key in RELAY_SECRET_KEY"
            ) from None


def _development_key(instance_path):
    path = os.path.join(instance_path, DEV_KEY_FILE)
    private_folder(instance_path)
    if not os.path.exists(path):
        # Written whole to a private file, then linked into place: workers
        # starting together all end up with the one key that won the link.
        draft = f"{path}.{os.getpid()}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(Fernet.generate_key())
        try:
            os.link(draft, path)
            created = True
        except FileExistsError:
            created = False
        finally:
            os.unlink(draft)
        if created:
            log.warning(
                "RELAY_SECRET_KEY is not set: generated a development key in %s. "
                "Set RELAY_SECRET_KEY in production.",
                path,
            )
    with open(path, "rb") as handle:
        return handle.read().strip()


def keyring_from_settings(settings):
    keys = list(settings["RELAY_SECRET_KEY"])
    if not keys:
        keys = [_development_key(settings["RELAY_INSTANCE_PATH"])]
    return Keyring(keys)


class Undecryptable(Exception):
    """Stored keys that no key of RELAY_SECRET_KEY decrypts: `names`, their models."""

    def __init__(self, names):
        super().__init__(", ".join(names))
        self.names = names


def rotate_all(keyring):
    """Re-encrypt every key in one transaction; all or nothing."""
    with database.atomic():
        rows = (
            RemoteModel.select(RemoteModel.id, RemoteModel.name, RemoteModel.api_key)
            .where(RemoteModel.api_key.is_null(False))
            .order_by(RemoteModel.id)
        )
        rotated, bad = [], []
        for row in rows:
            try:
                rotated.append((row, keyring.rotate(row.api_key)))
            except ConfigError:
                bad.append(row.name)
        if bad:
            raise Undecryptable(bad)  # leaving atomic() by an exception rolls back
        updated = 0
        for row, token in rotated:
            # Compare-and-set: a row rewritten meanwhile already holds a token
            # under the current first key, and must not get the old one back.
            updated += (
                RemoteModel.update(api_key=token)
                .where((RemoteModel.id == row.id) & (RemoteModel.api_key == row.api_key))
                .execute()
            )
        if updated:
            changes.bump("models")  # running relays reload the new ciphertexts
    changes.announce("models")
    return updated
