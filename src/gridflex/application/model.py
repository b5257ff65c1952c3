"""The interconnection application: one validated schema for all of gridflex.

An application describes a site and its point of interconnection (POI), the service, the existing
load, the new resources (PV, storage, synchronous and other generation, new load), the
production-metering design and the protection settings. Network data the screens need (line
section peak load, shared-secondary DER, fault currents) sit in the optional ``network`` section;
later study work adds its own optional sections here rather than defining a second schema.

Units are in the field names (``docs/glossary.md``): ``_kw``, ``_kva``, ``_v`` (line-to-neutral
unless ``_ll``), ``_a``, ``_hz``, ``_s``, ``_cycles``, ``_in`` (inches), ``_ft`` (feet). Relay
pickups ``pickup_v`` are volts on a 120 V base, as the BGE guide states them.

References
----------
.. [1] seeds/000_9d43a5ca67169be9.txt (Ameren Illinois BTM production metering requirements).
.. [2] seeds/002_2ae50ee6bbb285a9.txt (BGE CSR-6, synchronous generation).
.. [3] seeds/001_9847d8232b845ab9.txt, "Volt/Watt" (Part 466 Level 1 screens, volt/watt pilot).
"""

from __future__ import annotations

import math
import re
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from gridflex.terms import VoltWattCurve

#: Version of this schema; files without ``schema_version`` are read as this version.
SCHEMA_VERSION = 1

PositiveKw = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Percent = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]

_AWG = re.compile(r"^#?\s*(\d{1,2})(\s*/\s*0)?(\s*awg)?$", re.IGNORECASE)


def _int_to_str(value: object) -> object:
    # YAML reads `gauge_awg: 12` and `device: 27` as integers; both are names, not quantities
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _awg(value: str) -> str:
    m = _AWG.match(value.strip())
    if not m or (m.group(2) and not 1 <= int(m.group(1)) <= 4):
        raise ValueError(
            f"{value!r} is not an AWG size: write e.g. '12', '10', '2' or '1/0' (up to '4/0')"
        )
    return f"{int(m.group(1))}/0" if m.group(2) else str(int(m.group(1)))


#: An AWG conductor size, normalised: '#12' -> '12', '1/0 AWG' -> '1/0'.
AwgSize = Annotated[str, BeforeValidator(_int_to_str), AfterValidator(_awg)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


# ---- site, POI, service ------------------------------------------------------------------------
class Site(_Model):
    """Where the installation is."""

    name: str = Field(min_length=1)
    address: str = ""
    utility: str = Field(default="", description="Distribution utility (EDC), e.g. 'Ameren IL'.")
    state: str = Field(default="", description="Two-letter state code, e.g. 'IL', 'MD'.")


class PointOfInterconnection(_Model):
    """The point of interconnection on the utility system."""

    bus: str | None = Field(default=None, description="Bus name in the feeder model, if known.")
    feeder: str | None = None
    line_section: str | None = None
    phases: Literal["A", "B", "C", "AB", "BC", "CA", "ABC"] = "ABC"
    center_tap_leg: Literal["L1", "L2", "L1-L2"] | None = Field(
        default=None,
        description="For a single-phase 120/240 V service: the leg the new DER connects to.",
    )


class ServiceConfiguration(StrEnum):
    """How the service is configured at the POI."""

    SINGLE_PHASE_2W = "single_phase_2w"
    SINGLE_PHASE_3W = "single_phase_3w"
    THREE_PHASE_4W_WYE = "three_phase_4w_wye"
    THREE_PHASE_3W_DELTA = "three_phase_3w_delta"
    THREE_PHASE_4W_DELTA = "three_phase_4w_delta"
    DC = "dc"
    OTHER = "other"


class Service(_Model):
    """The customer's service at the POI."""

    voltage_ll_v: float = Field(
        gt=0, allow_inf_nan=False, description="Nominal phase-to-phase service voltage, V."
    )
    voltage_ln_v: float | None = Field(
        default=None, gt=0, description="Nominal phase-to-neutral voltage, V (wye services)."
    )
    configuration: ServiceConfiguration
    metering: Literal["self_contained", "instrument_transformer", "primary"] = Field(
        description="How the billing service is metered."
    )
    service_rating_a: float | None = Field(default=None, gt=0, description="Service ampacity, A.")
    supply: Literal["secondary", "primary"] = "secondary"

    @model_validator(mode="after")
    def _voltages(self) -> Self:
        wye = self.configuration is ServiceConfiguration.THREE_PHASE_4W_WYE
        if wye and self.voltage_ln_v is not None:
            ratio = self.voltage_ll_v / self.voltage_ln_v
            if abs(ratio - math.sqrt(3)) > 0.02 * math.sqrt(3):
                raise ValueError(
                    f"voltage_ll_v {self.voltage_ll_v:g} V and voltage_ln_v "
                    f"{self.voltage_ln_v:g} V are not a wye pair (ratio {ratio:.3f}, expected "
                    "1.732); e.g. 480 and 277"
                )
        return self

    @property
    def phase_count(self) -> int:
        """1 for single-phase services, 3 otherwise (DC and other count as 3 for screening)."""
        single = {ServiceConfiguration.SINGLE_PHASE_2W, ServiceConfiguration.SINGLE_PHASE_3W}
        return 1 if self.configuration in single else 3


class ExistingLoad(_Model):
    """The site's load before the application."""

    peak_kw: NonNegative
    minimum_kw: NonNegative | None = None
    connected_kw: NonNegative | None = Field(
        default=None, description="Connected load, kW (BGE CSR-6 6.2.1 compares generation to it)."
    )


# ---- resources ---------------------------------------------------------------------------------
class CurvePoints(_Model):
    """A volt/var curve: reactive power (% of nameplate kVA, + injects) against voltage (pu)."""

    v_pu: tuple[float, ...] = Field(min_length=2)
    q_pct: tuple[float, ...] = Field(min_length=2)

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if len(self.v_pu) != len(self.q_pct):
            raise ValueError("volt_var: v_pu and q_pct must have the same number of points")
        if any(b < a for a, b in zip(self.v_pu, self.v_pu[1:], strict=False)):
            raise ValueError("volt_var.v_pu must not decrease")
        return self


class InverterTrip(_Model):
    """One inverter trip element (IEEE 1547-2018 naming: OV1, OV2, UV1, UV2, OF1, ... )."""

    name: Literal["OV1", "OV2", "UV1", "UV2", "OF1", "OF2", "UF1", "UF2"]
    pickup_pu: float | None = Field(default=None, gt=0, description="Voltage pickup, pu.")
    pickup_hz: float | None = Field(default=None, gt=0, description="Frequency pickup, Hz.")
    clearing_time_s: NonNegative

    @model_validator(mode="after")
    def _unit(self) -> Self:
        voltage = self.name[0] in "OU" and self.name[1] == "V"
        if voltage and self.pickup_pu is None:
            raise ValueError(f"inverter trip {self.name} is a voltage element: give pickup_pu")
        if not voltage and self.pickup_hz is None:
            raise ValueError(f"inverter trip {self.name} is a frequency element: give pickup_hz")
        return self


class InverterSettings(_Model):
    """Smart-inverter functions and settings as submitted."""

    certified: bool = Field(
        default=False, description="Lab-certified (UL 1741 SB / IEEE 1547.1) equipment."
    )
    normal_category: Literal["A", "B"] = "B"
    abnormal_category: Literal["I", "II", "III"] = "II"
    volt_var: CurvePoints | None = None
    volt_watt: VoltWattCurve | None = None
    trips: tuple[InverterTrip, ...] = ()


class _Resource(_Model):
    id: str = Field(min_length=1, max_length=64)
    description: str = ""


class PVResource(_Resource):
    """Photovoltaic generation (inverter-based)."""

    kind: Literal["pv"]
    ac_kw: PositiveKw
    ac_kva: PositiveKw | None = None
    dc_kw: PositiveKw | None = None
    phases: Literal[1, 3] = 3
    inverter: InverterSettings = InverterSettings()


class StorageResource(_Resource):
    """Battery storage (inverter-based); counts as generation when it discharges."""

    kind: Literal["storage"]
    ac_kw: PositiveKw
    ac_kva: PositiveKw | None = None
    energy_kwh: PositiveKw | None = None
    phases: Literal[1, 3] = 3
    inverter: InverterSettings = InverterSettings()


class SynchronousResource(_Resource):
    """A synchronous generator (BGE CSR-6 applies to three-phase machines above 200 kW)."""

    kind: Literal["synchronous"]
    ac_kw: PositiveKw
    ac_kva: PositiveKw | None = None
    phases: Literal[1, 3] = 3
    max_parallel_s: float | None = Field(
        default=None,
        ge=0,
        description="Longest time in parallel with the utility, s (None = continuous parallel).",
    )
    pf_lagging_capability: float | None = Field(
        default=None, gt=0, le=1, description="Lowest lagging power factor the AVR can hold."
    )
    pf_leading_capability: float | None = Field(
        default=None, gt=0, le=1, description="Lowest leading power factor the AVR can hold."
    )
    automatic_voltage_regulator: bool | None = None
    regulated_voltage_min_v: float | None = Field(
        default=None, gt=0, description="Lowest regulated POI voltage, V on a 120 V base."
    )
    regulated_voltage_max_v: float | None = Field(
        default=None, gt=0, description="Highest regulated POI voltage, V on a 120 V base."
    )
    flicker_pct: Percent | None = None
    thd_pct: Percent | None = Field(
        default=None, description="Voltage THD at the terminals, not paralleled, %."
    )
    synchronizing: Literal["automatic", "manual", "none"] | None = None
    sync_relay_supervision: bool | None = None
    terminal_voltage_ll_v: float | None = Field(
        default=None, gt=0, description="Generator bus voltage, V (default: the service voltage)."
    )


class OtherGeneration(_Resource):
    """Other generation (wind, fuel cell, induction, ...)."""

    kind: Literal["other_generation"]
    ac_kw: PositiveKw
    ac_kva: PositiveKw | None = None
    phases: Literal[1, 3] = 3
    inverter_based: bool = True
    inverter: InverterSettings | None = None


class NewLoad(_Resource):
    """New load added by the application (e.g. EV charging)."""

    kind: Literal["load"]
    peak_kw: PositiveKw


Resource = Annotated[
    PVResource | StorageResource | SynchronousResource | OtherGeneration | NewLoad,
    Field(discriminator="kind"),
]
GENERATING_KINDS = ("pv", "storage", "synchronous", "other_generation")


# ---- metering design (Ameren BTM production metering) -------------------------------------------
class CTSet(_Model):
    """One set of current transformers."""

    ratio_primary_a: Positive
    secondary_a: float = Field(gt=0, description="Rated secondary current, A.")
    output: Literal["current", "voltage"] = "current"
    burden_rating: float | None = Field(
        default=None, gt=0, description="Standard burden rating (B-0.1 ... B-1.8 -> 0.1 ... 1.8)."
    )
    rating_factor: float | None = Field(default=None, gt=0)
    accuracy_class: str | None = None
    construction: Literal["bar", "window", "rope"] | None = None
    polarity_mark: Literal["dot", "h1", "arrow"] | None = None
    polarity_faces: Literal["utility", "generation"] | None = None
    on_supply_side_of_main_ocpd: bool = False


class PTSet(_Model):
    """One set of potential (voltage) transformers."""

    primary_v: Positive
    secondary_v: Positive
    connection: Literal["phase_to_neutral", "phase_to_phase"] = "phase_to_neutral"
    burden_ratings: tuple[Literal["W", "X", "M", "Y", "Z", "ZZ"], ...] = ()
    accuracy_class: str | None = None


class SecondaryWiring(_Model):
    """Instrument-transformer secondary wiring to the production-meter enclosure."""

    gauge_awg: AwgSize = Field(description="AWG size, e.g. '12', '10', '1/0'.")
    material: Literal["cu", "al"] = "cu"
    length_ft: NonNegative
    common_ct_return: bool | None = None
    egc_gauge_awg: AwgSize | None = Field(
        default=None, description="Equipment grounding conductor, AWG."
    )
    egc_routed_with_secondaries: bool | None = None
    labeled_on_terminal_strip: bool | None = None


class Conduit(_Model):
    """Conduit between the instrument-transformer enclosure and the production-meter enclosure."""

    type: Literal["rigid", "flexible"]
    size_in: Positive
    entries: tuple[Literal["side", "bottom", "top", "back", "door"], ...] = Field(min_length=1)
    back_to_back_on_approved_structure: bool = False


class Clearances(_Model):
    """Enclosure spacing and working space, inches."""

    enclosure_spacing_in: NonNegative | None = None
    working_width_in: NonNegative | None = None
    enclosure_width_in: NonNegative | None = None
    working_depth_in: NonNegative | None = None
    headroom_in: NonNegative | None = None
    mounting_center_height_in: NonNegative | None = None


class Neutral(_Model):
    """Neutral conductor to the instrument-transformer enclosure (grounded-wye services)."""

    routed_with_phases: bool
    parallel_runs: bool = False
    gauge_awg: AwgSize | None = None
    isolated_from_egc: bool | None = None


class MeteringDesign(_Model):
    """The behind-the-meter production-metering design [1]_."""

    production_meter: bool = Field(description="A utility BTM production meter is proposed.")
    cts: tuple[CTSet, ...] = ()
    pts: tuple[PTSet, ...] = ()
    pt_control_relay: bool = False
    shared_with_customer_meter: bool = False
    shared_approved_by_meter_engineering: bool | None = None
    customer_meter_separate_enclosure: bool | None = None
    utility_meter_last_in_series: bool | None = None
    customer_meter_ct_returns_isolated: bool | None = None
    specs_submitted_before_ordering: bool | None = None
    wiring: SecondaryWiring | None = None
    conduit: Conduit | None = None
    clearances: Clearances = Clearances()
    neutral: Neutral | None = None
    enclosure_outdoor: bool | None = None
    mounting_structure: Literal["exterior_wall", "h_frame_rmc", "wood", "other"] | None = None
    gas_riser_od_in: NonNegative | None = Field(
        default=None, description="Outside diameter of the nearest natural-gas riser, in."
    )
    gas_vent_distance_ft: NonNegative | None = Field(
        default=None, description="Spherical distance from its relief vent to the enclosure, ft."
    )
    additional_cabinet: bool = Field(
        default=False,
        description="A pre-approved additional cabinet for a non-standard installation.",
    )
    photos_uploaded: tuple[str, ...] | None = Field(
        default=None,
        description="Photo checklist items uploaded (ids from the rule set); None = not yet due.",
    )


# ---- protection settings ------------------------------------------------------------------------
class RelayElement(_Model):
    """One protective relay element as set.

    Give the clearing time in cycles (``clearing_time_cycles``) or seconds (``clearing_time_s``),
    not both. Voltage pickups are volts on a 120 V base; frequency pickups hertz.
    """

    device: Annotated[
        Literal["81O", "81U", "59", "27", "51V", "51N", "59N", "46", "37", "25", "32", "DTT"],
        BeforeValidator(_int_to_str),
    ] = Field(description="ANSI device number; 'DTT' = receive direct transfer trip.")
    label: str = ""
    pickup_v: float | None = Field(default=None, gt=0, description="Pickup, V on a 120 V base.")
    pickup_hz: float | None = Field(default=None, gt=0)
    pickup_a: float | None = Field(default=None, gt=0)
    clearing_time_cycles: NonNegative | None = None
    clearing_time_s: NonNegative | None = None
    trips: Literal["generator_breaker", "interconnection_breaker"] | None = None

    @model_validator(mode="after")
    def _time(self) -> Self:
        if self.clearing_time_cycles is not None and self.clearing_time_s is not None:
            raise ValueError(
                f"relay element {self.device}: give clearing_time_cycles or clearing_time_s, "
                "not both"
            )
        return self

    def clearing_cycles(self, frequency_hz: float) -> float | None:
        """Clearing time in cycles of ``frequency_hz`` (None when no time was given)."""
        if self.clearing_time_cycles is not None:
            return self.clearing_time_cycles
        if self.clearing_time_s is not None:
            return self.clearing_time_s * frequency_hz
        return None


class ProtectionSettings(_Model):
    """Protective relaying at the interconnection, as submitted [2]_."""

    elements: tuple[RelayElement, ...] = ()
    breaker_operating_time_cycles: NonNegative | None = Field(
        default=None, description="Interrupting-device operating time, cycles."
    )
    fails_safe_on_control_power_loss: bool | None = None
    single_contingency_redundancy: bool | None = None
    control_power: Literal["dc_battery", "ups", "ac"] | None = None
    relay_failure_alarm_monitored: bool | None = None

    def devices(self) -> set[str]:
        """ANSI device numbers present."""
        return {e.device for e in self.elements}


class GeneratorMetering(_Model):
    """Generator revenue metering and distribution-automation provisions (BGE CSR-6 section 7)."""

    ct_cabinet: bool | None = Field(
        default=None, description="Customer-furnished CT cabinet (installations at 480 V or less)."
    )
    metering_cubicle: bool | None = Field(
        default=None, description="Switchgear metering cubicle (2.4 kV through 33 kV)."
    )
    dedicated_phone_line: bool | None = None
    da_circuit_a: float | None = Field(
        default=None, gt=0, description="Dedicated circuit for the DA equipment, A."
    )
    da_circuit_v: float | None = Field(
        default=None, gt=0, description="Dedicated circuit for the DA equipment, V AC."
    )
    breaker_aux_contacts: bool | None = Field(
        default=None, description="Auxiliary contacts showing the generators are paralleled."
    )
    automatic_transfer: bool = Field(
        default=False, description="The medium-voltage switchgear has automatic transfer."
    )
    automatic_transfer_blocked: bool | None = Field(
        default=None, description="Automatic transfer is blocked while generators are paralleled."
    )


# ---- network data for screens -------------------------------------------------------------------
class NetworkData(_Model):
    """Network quantities the Part 466 screens need (from the utility or a feeder study)."""

    line_section_peak_load_kw: PositiveKw | None = Field(
        default=None,
        description="Maximum load normally supplied by the distribution circuit (Part "
        "466.90(a)(1)), or by the line section where the utility screens by section, kW.",
    )
    line_section_existing_der_kw: NonNegative | None = Field(
        default=None, description="DER already on that circuit / section, kW (excl. this one)."
    )
    construction_required: bool | None = Field(
        default=None,
        description="The utility must build facilities on its system for this DER (466.90(a)(5)).",
    )
    spot_network: bool = False
    spot_network_max_load_kva: PositiveKw | None = None
    spot_network_existing_der_kva: NonNegative | None = None
    shared_secondary: bool | None = Field(
        default=None, description="The service shares a single-phase secondary with others."
    )
    shared_secondary_existing_der_kva: NonNegative | None = None
    service_transformer_kva: PositiveKw | None = None
    center_tap_existing_der_kva_l1: NonNegative | None = None
    center_tap_existing_der_kva_l2: NonNegative | None = None
    circuit_max_fault_current_a: Positive | None = Field(
        default=None, description="Maximum fault current at the primary nearest the POI, A."
    )
    der_fault_current_a: NonNegative | None = Field(
        default=None,
        description="Fault current contributed by this DER plus other circuit generation, A.",
    )
    device_interrupting_rating_a: Positive | None = Field(
        default=None, description="Lowest interrupting rating of exposed protective devices, A."
    )
    device_fault_current_a: NonNegative | None = Field(
        default=None, description="Fault current those devices see with the DER added, A."
    )


class Options(_Model):
    """Choices the applicant makes in answer to screen results."""

    volt_watt_pilot: Literal["opt_in", "opt_out", "temporary"] | None = Field(
        default=None,
        description="Ameren IL Level 1 volt/watt pilot after a 20 kVA shared-secondary failure.",
    )


# ---- the application ----------------------------------------------------------------------------
class Application(_Model):
    """An interconnection application.

    Required sections: ``application_id``, ``site``, ``service``, ``resources``. Every other
    section is optional; checks that need it report ``needs_review`` or ``not_applicable``.
    """

    schema_version: Literal[1] = 1
    application_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")
    applicant: str = ""
    site: Site
    poi: PointOfInterconnection = PointOfInterconnection()
    service: Service
    existing_load: ExistingLoad | None = None
    resources: tuple[Resource, ...] = Field(min_length=1)
    export_mode: Literal["full", "limited", "non_exporting"] = "full"
    export_limit_kw: NonNegative | None = None
    requested_level: Literal[1, 2, 3, 4] | None = None
    metering: MeteringDesign | None = None
    protection: ProtectionSettings | None = None
    generator_metering: GeneratorMetering | None = None
    network: NetworkData | None = None
    submittals: tuple[str, ...] = Field(
        default=(), description="Documents submitted (ids listed by the rule sets)."
    )
    options: Options = Options()

    @model_validator(mode="after")
    def _consistency(self) -> Self:
        ids = [r.id for r in self.resources]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"resources: ids must be unique, repeated: {', '.join(dupes)}")
        if self.export_mode == "limited" and self.export_limit_kw is None:
            raise ValueError("export_mode is 'limited': give export_limit_kw")
        if self.service.phase_count == 1:
            three = [r.id for r in self.resources if not isinstance(r, NewLoad) and r.phases == 3]
            if three:
                raise ValueError(
                    f"resources {', '.join(three)} are three-phase but the service is "
                    f"{self.service.configuration.value}: set phases: 1 or correct the service"
                )
        return self

    # ---- derived quantities ----------------------------------------------------------------
    def generators(
        self,
    ) -> list[PVResource | StorageResource | SynchronousResource | OtherGeneration]:
        """The generating resources (PV, storage, synchronous, other)."""
        return [r for r in self.resources if not isinstance(r, NewLoad)]

    @property
    def aggregate_generation_kw(self) -> float:
        """Sum of the generating resources' AC nameplate, kW."""
        return float(sum(g.ac_kw for g in self.generators()))

    @property
    def aggregate_generation_kva(self) -> float:
        """Sum of the generating resources' AC nameplate, kVA (kW where no kVA is given)."""
        return float(sum(g.ac_kva or g.ac_kw for g in self.generators()))

    @property
    def exports(self) -> bool:
        """Whether the installation may export to the utility."""
        return self.export_mode != "non_exporting"
