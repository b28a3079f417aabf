"""Encrypted model fields: the database only ever holds ciphertext.

``EncryptedTextField`` / ``EncryptedJSONField`` store an AES-256-GCM blob under the owning
patient's data key, with the table, primary key and field name bound in as associated data.
Decryption is lazy: loading a row keeps the ciphertext; the plaintext exists only when the
attribute is read. ``values()`` and ``values_list()`` return :class:`Sealed` objects, never text.

Models using these fields need a UUID primary key with a default (so the key is known before the
INSERT) and name the attribute holding the patient's id in ``owner_field``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.db import models
from django.db.models.query_utils import DeferredAttribute

from config.errors import DecryptionFailed
from privacy import crypto


class Sealed:
    """Ciphertext loaded from the database and not decrypted yet."""

    __slots__ = ("blob",)

    def __init__(self, blob: bytes) -> None:
        self.blob = blob

    def __repr__(self) -> str:
        return f"<Sealed {len(self.blob)} bytes>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sealed) and other.blob == self.blob

    def __hash__(self) -> int:
        return hash(self.blob)


class EncryptedAttribute(DeferredAttribute):
    """A data descriptor (it defines ``__set__``), so reads always pass through ``__get__``."""

    field: EncryptedFieldMixin

    def __set__(self, instance: Any, value: Any) -> None:
        instance.__dict__[self.field.attname] = value

    def __get__(self, instance: Any, cls: Any = None) -> Any:
        if instance is None:
            return self
        value = super().__get__(instance, cls)
        if isinstance(value, Sealed):
            value = self.field.decrypt_for(instance, value)
            instance.__dict__[self.field.attname] = value
        return value


class EncryptedFieldMixin(models.Field):
    descriptor_class = EncryptedAttribute

    def __init__(self, *args: Any, owner_field: str = "patient_id", **kwargs: Any) -> None:
        self.owner_field = owner_field
        kwargs.setdefault("editable", True)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs["owner_field"] = self.owner_field
        kwargs.pop("editable", None)
        return name, path, args, kwargs

    def get_internal_type(self) -> str:
        return "BinaryField"

    # --- plaintext <-> bytes ---------------------------------------------------------------------
    def encode(self, value: Any) -> bytes:
        raise NotImplementedError

    def decode(self, data: bytes) -> Any:
        raise NotImplementedError

    # --- crypto ----------------------------------------------------------------------------------
    def _context(self, instance: Any) -> tuple[uuid.UUID, Any]:
        owner = getattr(instance, self.owner_field)
        if owner is None or instance.pk is None:
            raise DecryptionFailed(
                f"{type(instance).__name__}.{self.name} needs a primary key and an owner."
            )
        return (owner if isinstance(owner, uuid.UUID) else uuid.UUID(str(owner))), instance.pk

    def encrypt_for(self, instance: Any, value: Any) -> bytes:
        from privacy.datakeys import data_key_for_encrypt

        owner, pk = self._context(instance)
        dek_id, dek = data_key_for_encrypt(patient_id=owner)
        aad = crypto.field_aad(table=instance._meta.db_table, pk=pk, field=self.name, dek_id=dek_id)
        return crypto.encrypt_field(dek, dek_id, self.encode(value), aad=aad)

    def decrypt_for(self, instance: Any, sealed: Sealed) -> Any:
        from privacy.datakeys import data_key_for_decrypt

        owner, pk = self._context(instance)
        dek_id = crypto.field_dek_id(sealed.blob)
        dek = data_key_for_decrypt(dek_id=dek_id, patient_id=owner)
        aad = crypto.field_aad(table=instance._meta.db_table, pk=pk, field=self.name, dek_id=dek_id)
        return self.decode(crypto.decrypt_field(dek, sealed.blob, aad=aad))

    # --- Django plumbing -------------------------------------------------------------------------
    def pre_save(self, model_instance: Any, add: bool) -> Any:
        value = model_instance.__dict__.get(self.attname)
        if value is None:
            return None
        if isinstance(value, Sealed):
            return value.blob
        return self.encrypt_for(model_instance, value)

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if value is None:
            return None
        if isinstance(value, Sealed):
            value = value.blob
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError("Encrypted fields are written through save(), not in queries")
        return connection.Database.Binary(bytes(value))

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Sealed | None:
        if value is None:
            return None
        return Sealed(bytes(value))

    def to_python(self, value: Any) -> Any:
        return value

    def get_lookup(self, lookup_name: str) -> Any:
        # Ciphertext is randomised: no lookup but isnull can mean anything.
        if lookup_name != "isnull":
            return None
        return super().get_lookup(lookup_name)

    def value_to_string(self, obj: Any) -> str:
        return "<encrypted>"


class EncryptedTextField(EncryptedFieldMixin, models.Field):
    description = "Text encrypted with the owning patient's data key"

    def encode(self, value: Any) -> bytes:
        if not isinstance(value, str):
            raise TypeError(f"{self.name} expects text")
        return value.encode("utf-8")

    def decode(self, data: bytes) -> str:
        return data.decode("utf-8")


class EncryptedJSONField(EncryptedFieldMixin, models.Field):
    description = "JSON encrypted with the owning patient's data key"

    def encode(self, value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":"), sort_keys=True).encode("utf-8")

    def decode(self, data: bytes) -> Any:
        return json.loads(data)
