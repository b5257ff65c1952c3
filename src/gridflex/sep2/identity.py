"""Client identity: LFDI and SFDI from a certificate, and the frozen scopes handlers receive.

IEEE 2030.5-2018 clause 6.3.4 (long-form device identifier) and 6.3.3 (short-form device
identifier): the certificate fingerprint is the SHA-256 hash of the DER-encoded certificate; the
LFDI is its first 160 bits written as 40 hexadecimal digits; the SFDI is its first 36 bits written
in decimal, followed by one check digit chosen so that the sum of all digits is a multiple of 10.

Both are identifiers, not numbers to compare as text: clients send the LFDI in upper case, the
server stores lower case, and every comparison goes through :func:`normalise_lfdi`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from gridflex.errors import InputError

_LFDI_RE = re.compile(r"^[0-9a-fA-F]{40}$")


def certificate_fingerprint(cert_der: bytes) -> bytes:
    """SHA-256 of a DER-encoded certificate (IEEE 2030.5-2018 clause 6.3.2)."""
    return hashlib.sha256(cert_der).digest()


def lfdi_from_certificate(cert_der: bytes) -> str:
    """The LFDI of a DER-encoded certificate: first 160 bits of its SHA-256, lower-case hex."""
    return certificate_fingerprint(cert_der)[:20].hex()


def sfdi_check_digit(value: int) -> int:
    """The digit making the digit sum of ``value`` followed by it a multiple of 10."""
    return (10 - sum(int(d) for d in str(value)) % 10) % 10


def sfdi_from_lfdi(lfdi: str) -> int:
    """The SFDI of an LFDI: its first 36 bits in decimal followed by the check digit.

    Examples
    --------
    The worked example of IEEE 2030.5-2018 clause 6.3.3:

    >>> sfdi_from_lfdi("3E4F45AB31EDFE5B67E343E5E4562E31984E23E5")
    167261211391
    """
    head = int(normalise_lfdi(lfdi)[:9], 16)  # 9 hex digits = 36 bits
    return head * 10 + sfdi_check_digit(head)


def sfdi_is_valid(sfdi: int) -> bool:
    """True when ``sfdi``'s last digit is the check digit of the rest (and it fits 36 bits + 1)."""
    if sfdi < 0:
        return False
    head, check = divmod(sfdi, 10)
    return head < 2**36 and sfdi_check_digit(head) == check


def normalise_lfdi(lfdi: str) -> str:
    """Lower-case an LFDI after checking it is 40 hex digits (case-insensitive identifiers)."""
    text = lfdi.strip()
    if not _LFDI_RE.match(text):
        raise InputError(
            f"LFDI {lfdi!r} is not 40 hexadecimal digits",
            "send the first 160 bits of the SHA-256 of the device certificate as hex "
            "(IEEE 2030.5-2018 clause 6.3.4)",
        )
    return text.lower()


def lfdi_from_pem(pem: str | bytes) -> str:
    """The LFDI of a PEM certificate (convenience for tools and tests)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    data = pem.encode() if isinstance(pem, str) else pem
    cert = x509.load_pem_x509_certificate(data)
    return lfdi_from_certificate(cert.public_bytes(Encoding.DER))


# ---- scopes ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CertificateScope:
    """A client identified only by its certificate (not yet known to the registry as anything).

    It may read DeviceCapability and Time and register its own EndDevice.
    """

    lfdi: str
    sfdi: int


@dataclass(frozen=True, slots=True)
class DeviceScope:
    """A device certificate: it sees and controls only its own EndDevice.

    ``der_id`` is the registry DER with this LFDI (None when the registry does not know it yet).
    """

    lfdi: str
    sfdi: int
    der_id: int | None


@dataclass(frozen=True, slots=True)
class AggregatorScope:
    """An aggregator certificate: it fronts many EndDevices, only those of its own DER.

    ``aggregator_id`` is the registry aggregator whose ``lfdi`` is this certificate's.
    """

    lfdi: str
    sfdi: int
    aggregator_id: int


ClientScope = CertificateScope | DeviceScope | AggregatorScope
