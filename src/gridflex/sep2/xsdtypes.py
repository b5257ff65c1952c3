"""The IEEE 2030.5 simple types the strict validator checks, and which element has which.

The IEEE XSD (``sep.xsd``, namespace ``urn:ieee:std:2030.5:ns``) is copyrighted and not
redistributed here. What this module holds are facts about it that the envoy-schema models do
not carry: envoy types most integers as plain ``int`` and many strings as plain ``str``, while the
XSD gives each a bounded type. Sources, by the XSD's own type names:

- IEEE 2030.5-2018 sep.xsd primitive types ``UInt8`` … ``UInt64``, ``Int8`` … ``Int64``
  (restrictions of ``xs:unsignedByte`` … ``xs:long``; ``UInt40``/``UInt48``/``Int48`` by
  ``maxInclusive``/``minInclusive``), ``String6`` … ``String192`` (``maxLength``),
  ``HexBinary8`` … ``HexBinary160`` (``maxLength`` in octets);
- its derived types ``TimeType`` (Int64), ``TimeOffsetType`` (Int32), ``VersionType`` (UInt16),
  ``PerCent`` (UInt16, hundredths of a percent, 0–10000), ``SignedPerCent`` (Int16,
  −10000–10000), ``PowerOfTenMultiplierType`` (Int8, −9–9), ``OneHourRangeType`` (Int16,
  −3600–3600), ``SFDIType`` (UInt40), ``PINType`` (UInt32), ``PrimacyType`` (UInt8);
- the element declarations of each complex type (e.g. ``ActivePower/value`` is ``Int16``,
  ``ReadingBase/value`` is ``Int48``, ``IdentifiedObject/description`` is ``String32``);
- CSIP-AUS v1.1a–v1.3 (``https://csipaus.org/ns``): ``ConnectionPoint/connectionPointId`` (and
  the v1.1 ``id``) is ``String32``.

:data:`ELEMENT_TYPES` is keyed by the envoy-schema class that declares the field and the field's
name; fields typed by envoy with a bounded annotation (``HexBinary128``, ``String6``, an
``IntEnum``, ``bool``) need no entry. ``tests/sep2/test_strict.py`` proves every plain ``int``
field of every model the server reads or writes has one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["int", "bool", "hex", "string"]


@dataclass(frozen=True, slots=True)
class SimpleType:
    """An XSD simple type: its name (for messages), lexical kind and facets."""

    name: str
    kind: Kind
    lo: int | None = None
    hi: int | None = None
    max_len: int | None = None
    """Characters for strings, octets for hexBinary."""


def _u(bits: int) -> tuple[int, int]:
    return 0, 2**bits - 1


def _s(bits: int) -> tuple[int, int]:
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


UINT8 = SimpleType("UInt8", "int", *_u(8))
UINT16 = SimpleType("UInt16", "int", *_u(16))
UINT32 = SimpleType("UInt32", "int", *_u(32))
UINT40 = SimpleType("UInt40", "int", *_u(40))
UINT48 = SimpleType("UInt48", "int", *_u(48))
UINT64 = SimpleType("UInt64", "int", *_u(64))
INT8 = SimpleType("Int8", "int", *_s(8))
INT16 = SimpleType("Int16", "int", *_s(16))
INT32 = SimpleType("Int32", "int", *_s(32))
INT48 = SimpleType("Int48", "int", *_s(48))
INT64 = SimpleType("Int64", "int", *_s(64))
BOOLEAN = SimpleType("boolean", "bool")
STRING = SimpleType("string", "string")
ANY_URI = SimpleType("anyURI", "string")
STRING16 = SimpleType("String16", "string", max_len=16)
STRING32 = SimpleType("String32", "string", max_len=32)
HEX160 = SimpleType("HexBinary160", "hex", max_len=20)

TIME = SimpleType("TimeType", "int", *_s(64))
TIME_OFFSET = SimpleType("TimeOffsetType", "int", *_s(32))
VERSION = SimpleType("VersionType", "int", *_u(16))
PER_CENT = SimpleType("PerCent", "int", 0, 10_000)
SIGNED_PER_CENT = SimpleType("SignedPerCent", "int", -10_000, 10_000)
POWER_OF_TEN = SimpleType("PowerOfTenMultiplierType", "int", -9, 9)
ONE_HOUR_RANGE = SimpleType("OneHourRangeType", "int", -3600, 3600)
SFDI = SimpleType("SFDIType", "int", *_u(40))
PIN = SimpleType("PINType", "int", *_u(32))
PRIMACY = SimpleType("PrimacyType", "int", *_u(8))

HEX_BITS: dict[int, SimpleType] = {
    bits: SimpleType(f"HexBinary{bits}", "hex", max_len=bits // 8)
    for bits in (8, 16, 32, 48, 64, 128, 160)
}
"""envoy's ``HexBinaryN`` annotations (its ``validate_HexBinaryN`` validators) → the XSD type."""
STRING_LENGTHS: dict[int, SimpleType] = {
    n: SimpleType(f"String{n}", "string", max_len=n) for n in (6, 16, 20, 32, 42, 192)
}
"""envoy's ``StringN`` annotations (its ``validate_StringN`` validators) → the XSD type."""

_MEASURE_U16 = {"multiplier": POWER_OF_TEN, "value": UINT16}
_SET_ES = {
    "setESDelay": UINT32,
    "setESHighFreq": UINT16,
    "setESHighVolt": INT16,
    "setESLowFreq": UINT16,
    "setESLowVolt": INT16,
    "setESRampTms": UINT32,
    "setESRandomDelay": UINT32,
    "setGradW": UINT16,
    "setSoftGradW": UINT16,
}
_IDENTIFIED = {"description": STRING32, "version": VERSION}
_LIST = {"all_": UINT32, "results": UINT32}
_STATUS_VALUE = {"dateTime": TIME}

ELEMENT_TYPES: dict[str, dict[str, SimpleType]] = {
    # identification / lists / links
    "Resource": {"href": ANY_URI, "type": STRING},
    "IdentifiedObject": _IDENTIFIED,
    "SubscribableIdentifiedObject": _IDENTIFIED,
    "RespondableSubscribableIdentifiedObject": _IDENTIFIED,
    "RespondableResource": {"replyTo": ANY_URI},
    "Link": {"href": ANY_URI},
    "ListLink": {"all_": UINT32},
    "List": _LIST,
    "SubscribableList": _LIST,
    "NotificationResourceCombined": {
        **_LIST,
        **_SET_ES,
        **_IDENTIFIED,
        "pollRate": UINT32,
        "availabilityDuration": UINT32,
        "maxChargeDuration": UINT32,
        "readingTime": TIME,
        "reserveChargePercent": PER_CENT,
        "reservePercent": PER_CENT,
        "updatedTime": TIME,
    },
    # devices
    "DeviceCapabilityResponse": {"href": ANY_URI, "pollRate": UINT32},
    "AbstractDevice": {"lFDI": HEX160, "sFDI": SFDI},
    "EndDeviceRequest": {"changedTime": TIME, "postRate": UINT32},
    "EndDeviceResponse": {"changedTime": TIME, "postRate": UINT32},
    "EndDeviceListResponse": {"pollRate": UINT32},
    "RegistrationResponse": {"dateTimeRegistered": TIME, "pIN": PIN, "pollRate": UINT32},
    "FunctionSetAssignmentsListResponse": {"pollRate": UINT32},
    "ConnectionPointRequest": {"id": STRING32, "id_v11": STRING32},
    "ConnectionPointResponse": {"id": STRING32},
    "TimeResponse": {
        "href": ANY_URI,
        "currentTime": TIME,
        "dstEndTime": TIME,
        "dstOffset": TIME_OFFSET,
        "dstStartTime": TIME,
        "localTime": TIME,
        "tzOffset": TIME_OFFSET,
    },
    "ErrorResponse": {"maxRetryDuration": UINT16, "message": STRING},
    # measures (der_control_types)
    "ActivePower": {"multiplier": POWER_OF_TEN, "value": INT16},
    "ReactivePower": {"multiplier": POWER_OF_TEN, "value": INT16},
    "ApparentPower": _MEASURE_U16,
    "AmpereHour": _MEASURE_U16,
    "CurrentRMS": _MEASURE_U16,
    "VoltageRMS": _MEASURE_U16,
    "WattHour": _MEASURE_U16,
    "ReactiveSusceptance": _MEASURE_U16,
    "PowerFactor": {"displacement": UINT16, "multiplier": POWER_OF_TEN},
    "PowerFactorWithExcitation": {"displacement": UINT16, "multiplier": POWER_OF_TEN},
    "FixedVar": {"value": SIGNED_PER_CENT},
    "FreqDroopType": {
        "dBOF": UINT32,
        "dBUF": UINT32,
        "kOF": UINT16,
        "kUF": UINT16,
        "openLoopTms": UINT16,
    },
    # DER
    "DERControlBase": {"opModFixedW": SIGNED_PER_CENT, "opModMaxLimW": PER_CENT, "rampTms": UINT16},
    "DefaultDERControl": _SET_ES,
    "DERSettings": {**_SET_ES, "updatedTime": TIME},
    "DERStatus": {"readingTime": TIME},
    "DERAvailability": {
        "availabilityDuration": UINT32,
        "maxChargeDuration": UINT32,
        "readingTime": TIME,
        "reserveChargePercent": PER_CENT,
        "reservePercent": PER_CENT,
    },
    "ConnectStatusTypeValue": _STATUS_VALUE,
    "InverterStatusTypeValue": _STATUS_VALUE,
    "LocalControlModeStatusTypeValue": _STATUS_VALUE,
    "ManufacturerStatusValue": _STATUS_VALUE,
    "OperationalModeStatusTypeValue": _STATUS_VALUE,
    "StorageModeStatusTypeValue": _STATUS_VALUE,
    "StateOfChargeStatusValue": {"dateTime": TIME, "value": PER_CENT},
    "DERProgramResponse": {"primacy": PRIMACY},
    "DERProgramListResponse": {"pollRate": UINT32},
    "DERListResponse": {"pollRate": UINT32},
    # events
    "Event": {"creationTime": TIME},
    "EventStatus": {"currentStatus": UINT8, "dateTime": TIME, "potentiallySupersededTime": TIME},
    "RandomizableEvent": {"randomizeDuration": ONE_HOUR_RANGE, "randomizeStart": ONE_HOUR_RANGE},
    "DateTimeIntervalType": {"duration": UINT32, "start": TIME},
    # metering
    "ReadingBase": {"value": INT48},
    "ReadingType": {
        "intervalLength": UINT32,
        "maxNumberOfIntervals": UINT8,
        "numberOfConsumptionBlocks": UINT8,
        "numberOfTouTiers": UINT8,
        "powerOfTenMultiplier": POWER_OF_TEN,
        "subIntervalLength": UINT32,
        "supplyLimit": UINT48,
    },
    "UnitValueType": {"multiplier": POWER_OF_TEN, "value": INT32},
    "UsagePointBase": {"status": UINT8},
    "MirrorUsagePoint": {"postRate": UINT32},
    "MirrorUsagePointListResponse": {"pollRate": UINT32},
    "MirrorMeterReading": {"lastUpdateTime": TIME, "nextUpdateTime": TIME},
    # responses, subscriptions
    "Response": {"createdDateTime": TIME},
    "SubscriptionBase": {"subscribedResource": ANY_URI},
    "Subscription": {"level": STRING16, "limit": UINT32, "notificationURI": ANY_URI},
    "SubscriptionListResponse": {"pollRate": UINT32},
    "Condition": {"lowerThreshold": INT48, "upperThreshold": INT48},
    "Notification": {"subscriptionURI": ANY_URI},
    # pricing (reachable only through Notification's combined Resource)
    "ConsumptionTariffIntervalResponse": {"price": INT32, "startValue": UINT32},
    "TariffProfileResponse": {"pricePowerOfTenMultiplier": POWER_OF_TEN, "primacyType": PRIMACY},
}
"""(declaring envoy-schema class name → field name → XSD simple type)."""
