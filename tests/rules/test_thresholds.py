"""Every numeric rule of the three seeds, tested on each side of its threshold.

Each case edits one of the shipped example applications so that exactly one quantity sits on the
threshold (the side the text allows) or just past it, then checks the rule's status. The count of
cases is reported by ``test_threshold_case_count``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest

from gridflex.rules.metering import self_contained_limit_kw
from tests.rules.support import DELETE, edit, example, run, statuses

CAMPUS = example("example.yaml")
LEVEL1 = example("example_level1.yaml")

# 480 V wye instrument-transformer service: base for the BTM sizing and PT-ratio cases
LV = edit(
    CAMPUS,
    {
        "service": {
            "voltage_ll_v": 480,
            "voltage_ln_v": 277,
            "configuration": "three_phase_4w_wye",
            "metering": "instrument_transformer",
        },
        "metering.pts.0.primary_v": 288,
    },
)

# three-phase 480 V commercial service on the same line section: base for Levels 2-4
COMMERCIAL = edit(
    LEVEL1,
    {
        "service": {
            "voltage_ll_v": 480,
            "voltage_ln_v": 277,
            "configuration": "three_phase_4w_wye",
            "metering": "instrument_transformer",
        },
        "poi": {"phases": "ABC"},
    },
)


def pv(kw: float, phases: int = 3) -> list[dict[str, Any]]:
    return [
        {
            "kind": "pv",
            "id": "pv",
            "ac_kw": kw,
            "ac_kva": kw,
            "phases": phases,
            "inverter": {"certified": True},
        }
    ]


class Case(NamedTuple):
    base: dict[str, Any]
    ruleset: str
    changes: dict[str, Any]
    rule: str
    expected: str


BTM = "ameren_il_btm_metering"
BGE = "bge_csr6"
P466 = "il_part466_screens"
IEEE = "ieee1547_2018"

SINGLE_PHASE = {
    "service": {
        "voltage_ll_v": 240,
        "configuration": "single_phase_3w",
        "metering": "self_contained",
    }
}
SELF_CONTAINED = {"service.metering": "self_contained", "metering": DELETE}

CASES: dict[str, Case] = {
    # ---- 000 BTM production metering ---------------------------------------------------------
    "btm aggregate 199.9 kW: no meter needed": Case(
        LV, BTM, {"resources": pv(199.9), "metering": DELETE}, "production_meter_required", "pass"
    ),
    "btm aggregate 200 kW: meter needed": Case(
        LV, BTM, {"resources": pv(200), "metering": DELETE}, "production_meter_required", "fail"
    ),
    "btm single-phase 100 kVA": Case(
        LV, BTM, {**SINGLE_PHASE, "resources": pv(100, 1)}, "single_phase_max", "pass"
    ),
    "btm single-phase 100.1 kVA": Case(
        LV, BTM, {**SINGLE_PHASE, "resources": pv(100.1, 1)}, "single_phase_max", "fail"
    ),
    "btm single-phase 200 kW never needs a meter": Case(
        LV, BTM, {**SINGLE_PHASE, "resources": pv(200, 1)}, "production_meter_required", "pass"
    ),
    "btm self-contained 133 kW": Case(
        LV, BTM, {**SELF_CONTAINED, "resources": pv(133)}, "self_contained_max", "pass"
    ),
    "btm self-contained 133.1 kW": Case(
        LV, BTM, {**SELF_CONTAINED, "resources": pv(133.1)}, "self_contained_max", "fail"
    ),
    "btm 4-wire wye at 15 kV": Case(
        LV,
        BTM,
        {"service.voltage_ll_v": 15000, "service.voltage_ln_v": DELETE},
        "service_configuration",
        "pass",
    ),
    "btm 4-wire wye above 15 kV": Case(
        LV,
        BTM,
        {"service.voltage_ll_v": 15001, "service.voltage_ln_v": DELETE},
        "service_configuration",
        "needs_review",
    ),
    "btm delta case by case": Case(
        LV,
        BTM,
        {"service.configuration": "three_phase_3w_delta"},
        "service_configuration",
        "needs_review",
    ),
    "btm DC-metered refused": Case(
        LV, BTM, {"service.configuration": "dc"}, "service_configuration", "fail"
    ),
    "btm PT secondary 120 V": Case(LV, BTM, {}, "pt_specs.secondary", "pass"),
    "btm PT secondary 115 V": Case(
        LV,
        BTM,
        {"metering.pts.0.secondary_v": 115, "metering.pts.0.primary_v": 276},
        "pt_specs.secondary",
        "fail",
    ),
    "btm PT burden W X M Y": Case(LV, BTM, {}, "pt_specs.burden", "pass"),
    "btm PT burden without Y": Case(
        LV, BTM, {"metering.pts.0.burden_ratings": ["W", "X", "M"]}, "pt_specs.burden", "fail"
    ),
    "btm CT secondary 5 A": Case(LV, BTM, {}, "ct_secondary", "pass"),
    "btm CT secondary 1 A": Case(
        LV, BTM, {"metering.cts.0.secondary_a": 1}, "ct_secondary", "fail"
    ),
    "btm CT voltage output": Case(
        LV, BTM, {"metering.cts.0.output": "voltage"}, "ct_secondary", "fail"
    ),
    "btm CT burden 0.1": Case(LV, BTM, {"metering.cts.0.burden_rating": 0.1}, "ct_burden", "pass"),
    "btm CT burden 0.09": Case(
        LV, BTM, {"metering.cts.0.burden_rating": 0.09}, "ct_burden", "fail"
    ),
    "btm CT burden 1.8": Case(LV, BTM, {"metering.cts.0.burden_rating": 1.8}, "ct_burden", "pass"),
    "btm CT burden 1.81": Case(
        LV, BTM, {"metering.cts.0.burden_rating": 1.81}, "ct_burden", "fail"
    ),
    "btm CT RF 2.0": Case(
        LV, BTM, {"metering.cts.0.rating_factor": 2.0}, "ct_rating_factor", "pass"
    ),
    "btm CT RF 2.01": Case(
        LV, BTM, {"metering.cts.0.rating_factor": 2.01}, "ct_rating_factor", "fail"
    ),
    "btm #12 55 ft": Case(
        LV,
        BTM,
        {"metering.wiring.gauge_awg": "12", "metering.wiring.length_ft": 55},
        "secondary_wiring.length",
        "pass",
    ),
    "btm #12 56 ft": Case(
        LV,
        BTM,
        {"metering.wiring.gauge_awg": "12", "metering.wiring.length_ft": 56},
        "secondary_wiring.length",
        "fail",
    ),
    "btm #10 90 ft": Case(
        LV, BTM, {"metering.wiring.length_ft": 90}, "secondary_wiring.length", "pass"
    ),
    "btm #10 91 ft": Case(
        LV, BTM, {"metering.wiring.length_ft": 91}, "secondary_wiring.length", "fail"
    ),
    "btm #14 refused": Case(
        LV,
        BTM,
        {"metering.wiring.gauge_awg": "14", "metering.wiring.length_ft": 10},
        "secondary_wiring.length",
        "fail",
    ),
    "btm conduit 1.5 in": Case(LV, BTM, {}, "conduit", "pass"),
    "btm conduit 1.25 in": Case(LV, BTM, {"metering.conduit.size_in": 1.25}, "conduit", "fail"),
    "btm conduit top entry": Case(
        LV, BTM, {"metering.conduit.entries": ["side", "top"]}, "conduit", "fail"
    ),
    "btm flexible conduit back to back, bottom": Case(
        LV,
        BTM,
        {
            "metering.conduit.type": "flexible",
            "metering.conduit.back_to_back_on_approved_structure": True,
        },
        "conduit",
        "pass",
    ),
    "btm flexible conduit not back to back": Case(
        LV, BTM, {"metering.conduit.type": "flexible"}, "conduit", "fail"
    ),
    "btm spacing 6 in": Case(
        LV, BTM, {"metering.clearances.enclosure_spacing_in": 6}, "enclosure_spacing", "pass"
    ),
    "btm spacing 5.9 in": Case(
        LV, BTM, {"metering.clearances.enclosure_spacing_in": 5.9}, "enclosure_spacing", "fail"
    ),
    "btm width 30 in (24 in enclosure)": Case(
        LV,
        BTM,
        {"metering.clearances.working_width_in": 30, "metering.clearances.enclosure_width_in": 24},
        "working_clearance.width",
        "pass",
    ),
    "btm width 29.9 in": Case(
        LV,
        BTM,
        {
            "metering.clearances.working_width_in": 29.9,
            "metering.clearances.enclosure_width_in": 24,
        },
        "working_clearance.width",
        "fail",
    ),
    "btm width = 32 in enclosure": Case(
        LV, BTM, {"metering.clearances.working_width_in": 32}, "working_clearance.width", "pass"
    ),
    "btm width below 32 in enclosure": Case(
        LV, BTM, {"metering.clearances.working_width_in": 31.9}, "working_clearance.width", "fail"
    ),
    "btm depth 42 in": Case(
        LV, BTM, {"metering.clearances.working_depth_in": 42}, "working_clearance.depth", "pass"
    ),
    "btm depth 41.9 in": Case(
        LV, BTM, {"metering.clearances.working_depth_in": 41.9}, "working_clearance.depth", "fail"
    ),
    "btm headroom 78 in": Case(
        LV, BTM, {"metering.clearances.headroom_in": 78}, "working_clearance.headroom", "pass"
    ),
    "btm headroom 77.9 in": Case(
        LV, BTM, {"metering.clearances.headroom_in": 77.9}, "working_clearance.headroom", "fail"
    ),
    "btm center height 66 in": Case(LV, BTM, {}, "mounting_height", "pass"),
    "btm center height 67 in": Case(
        LV,
        BTM,
        {"metering.clearances.mounting_center_height_in": 67},
        "mounting_height",
        "needs_review",
    ),
    "btm riser 2.375 in, 3 ft": Case(
        LV,
        BTM,
        {"metering.gas_riser_od_in": 2.375, "metering.gas_vent_distance_ft": 3},
        "gas_vent_clearance",
        "pass",
    ),
    "btm riser 2.375 in, 2.9 ft": Case(
        LV,
        BTM,
        {"metering.gas_riser_od_in": 2.375, "metering.gas_vent_distance_ft": 2.9},
        "gas_vent_clearance",
        "fail",
    ),
    "btm riser 2.376 in, 3 ft": Case(
        LV,
        BTM,
        {"metering.gas_riser_od_in": 2.376, "metering.gas_vent_distance_ft": 3},
        "gas_vent_clearance",
        "fail",
    ),
    "btm riser 2.376 in, 15 ft": Case(
        LV,
        BTM,
        {"metering.gas_riser_od_in": 2.376, "metering.gas_vent_distance_ft": 15},
        "gas_vent_clearance",
        "pass",
    ),
    "btm riser 2.376 in, 14.9 ft": Case(
        LV,
        BTM,
        {"metering.gas_riser_od_in": 2.376, "metering.gas_vent_distance_ft": 14.9},
        "gas_vent_clearance",
        "fail",
    ),
    "btm parallel neutral 1/0": Case(
        LV,
        BTM,
        {"metering.neutral.parallel_runs": True, "metering.neutral.gauge_awg": "1/0"},
        "neutral",
        "pass",
    ),
    "btm parallel neutral #1": Case(
        LV,
        BTM,
        {"metering.neutral.parallel_runs": True, "metering.neutral.gauge_awg": "1"},
        "neutral",
        "fail",
    ),
    "btm EGC #10": Case(
        LV, BTM, {"metering.wiring.egc_gauge_awg": "10"}, "grounding_conductor", "pass"
    ),
    "btm EGC #12": Case(
        LV, BTM, {"metering.wiring.egc_gauge_awg": "12"}, "grounding_conductor", "fail"
    ),
    "btm wood posts": Case(
        LV, BTM, {"metering.mounting_structure": "wood"}, "mounting_structure", "fail"
    ),
    "btm CT on supply side": Case(
        LV, BTM, {"metering.cts.0.on_supply_side_of_main_ocpd": True}, "ct_location", "fail"
    ),
    "btm CT polarity H1 faces generation": Case(
        LV, BTM, {"metering.cts.0.polarity_faces": "generation"}, "ct_polarity", "fail"
    ),
    "btm CT arrow faces generation": Case(
        LV,
        BTM,
        {"metering.cts.0.polarity_mark": "arrow", "metering.cts.0.polarity_faces": "generation"},
        "ct_polarity",
        "pass",
    ),
    # ---- 002 BGE CSR-6 -------------------------------------------------------------------------
    "bge 200 kW machine not covered": Case(
        CAMPUS, BGE, {"resources.2.ac_kw": 200}, "applicability", "not_applicable"
    ),
    "bge 200.1 kW machine covered": Case(
        CAMPUS, BGE, {"resources.2.ac_kw": 200.1}, "applicability", "pass"
    ),
    "bge parallel 1 s not covered": Case(
        CAMPUS, BGE, {"resources.2.max_parallel_s": 1.0}, "applicability", "not_applicable"
    ),
    "bge parallel 1.1 s covered": Case(
        CAMPUS, BGE, {"resources.2.max_parallel_s": 1.1}, "applicability", "pass"
    ),
    "bge 33 kV covered": Case(
        CAMPUS,
        BGE,
        {"service.voltage_ll_v": 33000, "service.voltage_ln_v": 19053},
        "applicability",
        "pass",
    ),
    "bge 12.47 kV not covered": Case(
        CAMPUS,
        BGE,
        {"service.voltage_ll_v": 12470, "service.voltage_ln_v": 7200},
        "applicability",
        "not_applicable",
    ),
    "bge single-phase machine not covered": Case(
        CAMPUS, BGE, {"resources.2.phases": 1}, "applicability", "not_applicable"
    ),
    "bge PF 0.90 lagging": Case(
        CAMPUS, BGE, {"resources.2.pf_lagging_capability": 0.90}, "power_factor.lagging", "pass"
    ),
    "bge PF 0.91 lagging": Case(
        CAMPUS, BGE, {"resources.2.pf_lagging_capability": 0.91}, "power_factor.lagging", "fail"
    ),
    "bge PF 0.95 leading": Case(
        CAMPUS, BGE, {"resources.2.pf_leading_capability": 0.95}, "power_factor.leading", "pass"
    ),
    "bge PF 0.96 leading": Case(
        CAMPUS, BGE, {"resources.2.pf_leading_capability": 0.96}, "power_factor.leading", "fail"
    ),
    "bge regulate from 120 V": Case(
        CAMPUS, BGE, {"resources.2.regulated_voltage_min_v": 120}, "regulated_voltage", "pass"
    ),
    "bge regulate from 119.9 V": Case(
        CAMPUS, BGE, {"resources.2.regulated_voltage_min_v": 119.9}, "regulated_voltage", "fail"
    ),
    "bge regulate to 125 V": Case(
        CAMPUS, BGE, {"resources.2.regulated_voltage_max_v": 125}, "regulated_voltage", "pass"
    ),
    "bge regulate to 125.1 V": Case(
        CAMPUS, BGE, {"resources.2.regulated_voltage_max_v": 125.1}, "regulated_voltage", "fail"
    ),
    "bge flicker 2 %": Case(CAMPUS, BGE, {"resources.2.flicker_pct": 2.0}, "flicker", "pass"),
    "bge flicker 2.01 %": Case(CAMPUS, BGE, {"resources.2.flicker_pct": 2.01}, "flicker", "fail"),
    "bge THD 5 %": Case(CAMPUS, BGE, {"resources.2.thd_pct": 5.0}, "thd", "pass"),
    "bge THD 5.01 %": Case(CAMPUS, BGE, {"resources.2.thd_pct": 5.01}, "thd", "fail"),
    # elements: 0 81O, 1 81U, 2 27-1 (104 V, 1.5 s), 3 27-2 (60 V, 5 cyc), 4 59-1, 5 59-2
    "bge 27 at 60 V in 6 cycles": Case(
        CAMPUS, BGE, {"protection.elements.3.clearing_time_cycles": 6}, "uv_fast", "pass"
    ),
    "bge 27 at 60 V in 6.1 cycles": Case(
        CAMPUS, BGE, {"protection.elements.3.clearing_time_cycles": 6.1}, "uv_fast", "fail"
    ),
    "bge 27 at 59.9 V leaves 60 V slow": Case(
        CAMPUS, BGE, {"protection.elements.3.pickup_v": 59.9}, "uv_fast", "fail"
    ),
    "bge 27 at 104 V in 2 s": Case(
        CAMPUS, BGE, {"protection.elements.2.clearing_time_s": 2.0}, "uv_slow", "pass"
    ),
    "bge 27 at 104 V in 2.01 s": Case(
        CAMPUS, BGE, {"protection.elements.2.clearing_time_s": 2.01}, "uv_slow", "fail"
    ),
    "bge 27 at 103.9 V": Case(
        CAMPUS, BGE, {"protection.elements.2.pickup_v": 103.9}, "uv_slow", "fail"
    ),
    "bge 59 at 132 V in 2 s": Case(
        CAMPUS, BGE, {"protection.elements.4.clearing_time_s": 2.0}, "ov_slow", "pass"
    ),
    "bge 59 at 132 V in 2.01 s": Case(
        CAMPUS, BGE, {"protection.elements.4.clearing_time_s": 2.01}, "ov_slow", "fail"
    ),
    "bge 59 at 132.1 V": Case(
        CAMPUS, BGE, {"protection.elements.4.pickup_v": 132.1}, "ov_slow", "fail"
    ),
    "bge 59 at 165 V in 2 cycles": Case(
        CAMPUS, BGE, {"protection.elements.5.clearing_time_cycles": 2}, "ov_fast", "pass"
    ),
    "bge 59 at 165 V in 2.1 cycles": Case(
        CAMPUS, BGE, {"protection.elements.5.clearing_time_cycles": 2.1}, "ov_fast", "fail"
    ),
    "bge 59 at 165.1 V": Case(
        CAMPUS, BGE, {"protection.elements.5.pickup_v": 165.1}, "ov_fast", "fail"
    ),
    "bge 81O at 60.3 Hz in 6 cycles": Case(CAMPUS, BGE, {}, "over_frequency", "pass"),
    "bge 81O in 6.1 cycles": Case(
        CAMPUS, BGE, {"protection.elements.0.clearing_time_cycles": 6.1}, "over_frequency", "fail"
    ),
    "bge 81O at 60.31 Hz": Case(
        CAMPUS, BGE, {"protection.elements.0.pickup_hz": 60.31}, "over_frequency", "fail"
    ),
    "bge 81U at 59.3 Hz in 0.1 s": Case(
        CAMPUS,
        BGE,
        {
            "protection.elements.1.clearing_time_cycles": DELETE,
            "protection.elements.1.clearing_time_s": 0.1,
        },
        "under_frequency",
        "pass",
    ),
    "bge 81U in 6.1 cycles": Case(
        CAMPUS, BGE, {"protection.elements.1.clearing_time_cycles": 6.1}, "under_frequency", "fail"
    ),
    "bge 81U at 59.29 Hz": Case(
        CAMPUS, BGE, {"protection.elements.1.pickup_hz": 59.29}, "under_frequency", "fail"
    ),
    "bge separation 11.9 cycles before 12-cycle reclose": Case(
        CAMPUS,
        BGE,
        {"protection.breaker_operating_time_cycles": 5.9},
        "reclosing_coordination",
        "pass",
    ),
    "bge separation at 12 cycles": Case(
        CAMPUS,
        BGE,
        {"protection.breaker_operating_time_cycles": 6},
        "reclosing_coordination",
        "fail",
    ),
    "bge generation 80 % of connected load": Case(
        CAMPUS, BGE, {"existing_load.connected_kw": 2312.5}, "special_protection", "needs_review"
    ),
    "bge generation just under 80 %": Case(
        CAMPUS, BGE, {"existing_load.connected_kw": 2313}, "special_protection", "pass"
    ),
    "bge 13.2 kV generator: metering cubicle": Case(CAMPUS, BGE, {}, "revenue_metering", "pass"),
    "bge 480 V generator: CT cabinet": Case(
        CAMPUS,
        BGE,
        {"resources.2.terminal_voltage_ll_v": 480, "generator_metering.ct_cabinet": True},
        "revenue_metering",
        "pass",
    ),
    "bge 480 V generator without CT cabinet": Case(
        CAMPUS,
        BGE,
        {"resources.2.terminal_voltage_ll_v": 480, "generator_metering.ct_cabinet": False},
        "revenue_metering",
        "fail",
    ),
    "bge 2400 V generator: metering cubicle": Case(
        CAMPUS, BGE, {"resources.2.terminal_voltage_ll_v": 2400}, "revenue_metering", "pass"
    ),
    "bge 2399 V generator: neither": Case(
        CAMPUS,
        BGE,
        {"resources.2.terminal_voltage_ll_v": 2399},
        "revenue_metering",
        "needs_review",
    ),
    "bge DA circuit 20 A": Case(CAMPUS, BGE, {}, "distribution_automation", "pass"),
    "bge DA circuit 19.9 A": Case(
        CAMPUS, BGE, {"generator_metering.da_circuit_a": 19.9}, "distribution_automation", "fail"
    ),
    "bge DA circuit 240 V": Case(
        CAMPUS, BGE, {"generator_metering.da_circuit_v": 240}, "distribution_automation", "fail"
    ),
    "bge automatic transfer not blocked": Case(
        CAMPUS,
        BGE,
        {"generator_metering.automatic_transfer_blocked": False},
        "automatic_transfer_blocking",
        "fail",
    ),
    # ---- 001 Part 466 screens and the volt/watt pilot ----------------------------------------
    "p466 Level 1 at 25 kW": Case(
        LEVEL1, P466, {"resources": pv(25, 1)}, "level1_eligibility", "pass"
    ),
    "p466 Level 1 at 25.1 kW": Case(
        LEVEL1, P466, {"resources": pv(25.1, 1)}, "level1_eligibility", "not_applicable"
    ),
    "p466 shared secondary 20 kVA": Case(
        LEVEL1,
        P466,
        {"network.shared_secondary_existing_der_kva": 10},
        "level1_shared_secondary",
        "pass",
    ),
    "p466 shared secondary 20.1 kVA": Case(
        LEVEL1,
        P466,
        {"network.shared_secondary_existing_der_kva": 10.1},
        "level1_shared_secondary",
        "fail",
    ),
    "p466 line section 15 %": Case(
        LEVEL1, P466, {"network.line_section_existing_der_kw": 350}, "level1_line_section", "pass"
    ),
    "p466 line section 15.01 %": Case(
        LEVEL1,
        P466,
        {"network.line_section_existing_der_kw": 350.24},
        "level1_line_section",
        "fail",
    ),
    "p466 center tap 20 %": Case(
        LEVEL1, P466, {"poi.center_tap_leg": "L1"}, "level1_center_tap_imbalance", "pass"
    ),
    "p466 center tap 20.2 %": Case(
        LEVEL1,
        P466,
        {"poi.center_tap_leg": "L1", "network.center_tap_existing_der_kva_l1": 0.1},
        "level1_center_tap_imbalance",
        "fail",
    ),
    "p466 spot network 50 kVA (5 % of 1000 kVA)": Case(
        LEVEL1,
        P466,
        {
            "network.spot_network": True,
            "network.spot_network_max_load_kva": 1000,
            "network.spot_network_existing_der_kva": 40,
        },
        "level1_spot_network",
        "pass",
    ),
    "p466 spot network 50.1 kVA": Case(
        LEVEL1,
        P466,
        {
            "network.spot_network": True,
            "network.spot_network_max_load_kva": 1000,
            "network.spot_network_existing_der_kva": 40.1,
        },
        "level1_spot_network",
        "fail",
    ),
    "p466 spot network 50 kVA cap (5 % of 2000 kVA = 100)": Case(
        LEVEL1,
        P466,
        {
            "network.spot_network": True,
            "network.spot_network_max_load_kva": 2000,
            "network.spot_network_existing_der_kva": 40.1,
        },
        "level1_spot_network",
        "fail",
    ),
    "p466 Level 2 spot network 5 % without the cap": Case(
        LEVEL1,
        P466,
        {
            "requested_level": 2,
            "network.spot_network": True,
            "network.spot_network_max_load_kva": 2000,
            "network.spot_network_existing_der_kva": 90,
        },
        "level1_spot_network",
        "pass",
    ),
    "p466 Level 2 spot network above 5 %": Case(
        LEVEL1,
        P466,
        {
            "requested_level": 2,
            "network.spot_network": True,
            "network.spot_network_max_load_kva": 2000,
            "network.spot_network_existing_der_kva": 90.1,
        },
        "level1_spot_network",
        "fail",
    ),
    "p466 no utility construction": Case(
        LEVEL1, P466, {"network.construction_required": False}, "level1_no_construction", "pass"
    ),
    "p466 utility construction needed": Case(
        LEVEL1, P466, {"network.construction_required": True}, "level1_no_construction", "fail"
    ),
    "p466 Level 2 at 2000 kVA": Case(
        COMMERCIAL,
        P466,
        {"resources": pv(2000), "requested_level": 2},
        "level2_eligibility",
        "pass",
    ),
    "p466 Level 2 at 2000.1 kVA": Case(
        COMMERCIAL,
        P466,
        {"resources": pv(2000.1), "requested_level": DELETE},
        "level2_eligibility",
        "not_applicable",
    ),
    "p466 fault contribution 10 %": Case(
        LEVEL1,
        P466,
        {
            "requested_level": 2,
            "network.circuit_max_fault_current_a": 8000,
            "network.der_fault_current_a": 800,
        },
        "level2_fault_contribution",
        "pass",
    ),
    "p466 fault contribution 10.01 %": Case(
        LEVEL1,
        P466,
        {
            "requested_level": 2,
            "network.circuit_max_fault_current_a": 8000,
            "network.der_fault_current_a": 800.8,
        },
        "level2_fault_contribution",
        "fail",
    ),
    "p466 interrupting 87.5 %": Case(
        LEVEL1,
        P466,
        {
            "requested_level": 2,
            "network.device_interrupting_rating_a": 12500,
            "network.device_fault_current_a": 10937.5,
        },
        "level2_interrupting_capability",
        "pass",
    ),
    "p466 interrupting 87.51 %": Case(
        LEVEL1,
        P466,
        {
            "requested_level": 2,
            "network.device_interrupting_rating_a": 12500,
            "network.device_fault_current_a": 10938.75,
        },
        "level2_interrupting_capability",
        "fail",
    ),
    "p466 Level 3 non-exporting 50 kVA": Case(
        COMMERCIAL,
        P466,
        {"resources": pv(50), "export_mode": "non_exporting"},
        "level3_eligibility",
        "pass",
    ),
    "p466 Level 3 non-exporting 50.1 kVA": Case(
        COMMERCIAL,
        P466,
        {"resources": pv(50.1), "export_mode": "non_exporting"},
        "level3_eligibility",
        "not_applicable",
    ),
    "p466 Level 4 at 10 MVA": Case(
        COMMERCIAL,
        P466,
        {"resources": pv(10000), "requested_level": DELETE},
        "level4_eligibility",
        "pass",
    ),
    "p466 above 10 MVA: no level": Case(
        COMMERCIAL,
        P466,
        {"resources": pv(10000.1), "requested_level": DELETE},
        "review_level",
        "fail",
    ),
    "pilot curve from 1.06 pu": Case(
        LEVEL1,
        P466,
        {
            "options.volt_watt_pilot": "opt_in",
            "resources.0.inverter.volt_watt": {"v_pu": [1.06, 1.10], "p_pct": [100, 20]},
        },
        "volt_watt_pilot",
        "needs_review",
    ),
    "pilot curve from 1.07 pu": Case(
        LEVEL1,
        P466,
        {
            "options.volt_watt_pilot": "opt_in",
            "resources.0.inverter.volt_watt": {"v_pu": [1.07, 1.10], "p_pct": [100, 20]},
        },
        "volt_watt_pilot",
        "fail",
    ),
    # ---- IEEE 1547-2018 (second rule set for inverter-based DER) -----------------------------
    "ieee volt/watt V1 1.05 pu": Case(
        LEVEL1,
        IEEE,
        {"resources.0.inverter.volt_watt": {"v_pu": [1.05, 1.10], "p_pct": [100, 20]}},
        "volt_watt_default.pv-1",
        "needs_review",
    ),
    "ieee volt/watt V1 1.049 pu": Case(
        LEVEL1,
        IEEE,
        {"resources.0.inverter.volt_watt": {"v_pu": [1.049, 1.10], "p_pct": [100, 20]}},
        "volt_watt_default.pv-1",
        "fail",
    ),
    "ieee Cat II OV1 1.20 pu": Case(
        LEVEL1,
        IEEE,
        {"resources.0.inverter.trips": [{"name": "OV1", "pickup_pu": 1.20, "clearing_time_s": 2}]},
        "voltage_trip_cat_ii.pv-1",
        "pass",
    ),
    "ieee Cat II OV1 1.21 pu": Case(
        LEVEL1,
        IEEE,
        {"resources.0.inverter.trips": [{"name": "OV1", "pickup_pu": 1.21, "clearing_time_s": 2}]},
        "voltage_trip_cat_ii.pv-1",
        "fail",
    ),
    "ieee Cat II UV1 clearing 2.0 s": Case(
        LEVEL1,
        IEEE,
        {
            "resources.0.inverter.trips": [
                {"name": "UV1", "pickup_pu": 0.70, "clearing_time_s": 2.0}
            ]
        },
        "voltage_trip_cat_ii.pv-1",
        "pass",
    ),
    "ieee Cat II UV1 clearing 1.99 s": Case(
        LEVEL1,
        IEEE,
        {
            "resources.0.inverter.trips": [
                {"name": "UV1", "pickup_pu": 0.70, "clearing_time_s": 1.99}
            ]
        },
        "voltage_trip_cat_ii.pv-1",
        "fail",
    ),
    "ieee UF1 clearing 180 s": Case(
        LEVEL1,
        IEEE,
        {
            "resources.0.inverter.trips": [
                {"name": "UF1", "pickup_hz": 58.5, "clearing_time_s": 180}
            ]
        },
        "frequency_trip.pv-1",
        "pass",
    ),
    "ieee UF1 clearing 179 s": Case(
        LEVEL1,
        IEEE,
        {
            "resources.0.inverter.trips": [
                {"name": "UF1", "pickup_hz": 58.5, "clearing_time_s": 179}
            ]
        },
        "frequency_trip.pv-1",
        "fail",
    ),
}

PT_VOLTAGES = [
    (480, 277, 288),
    (600, 347, 360),
    (4160, 2400, 2400),
    (12470, 7200, 7200),
    (13200, 7620, 7620),
]


@pytest.mark.parametrize("name", list(CASES))
def test_threshold(name: str) -> None:
    case = CASES[name]
    report = run(edit(case.base, case.changes), case.ruleset)
    assert statuses(report, f"{case.ruleset}.{case.rule}") == {case.expected}, [
        f.message for f in report.by_rule(f"{case.ruleset}.{case.rule}")
    ]


@pytest.mark.parametrize(("voltage_ll_v", "voltage_ln_v", "pt_primary_v"), PT_VOLTAGES)
@pytest.mark.parametrize("right", [True, False])
def test_pt_ratio_per_service_voltage(
    voltage_ll_v: float, voltage_ln_v: float, pt_primary_v: float, right: bool
) -> None:
    """Each of the seed's five wye voltages: its ratio passes, the next-nearest one fails."""
    primary = pt_primary_v if right else pt_primary_v * 1.01
    data = edit(
        LV,
        {
            "service.voltage_ll_v": voltage_ll_v,
            "service.voltage_ln_v": voltage_ln_v,
            "metering.pts.0.primary_v": primary,
        },
    )
    report = run(data, BTM)
    assert statuses(report, f"{BTM}.pt_ratio") == {"pass" if right else "fail"}


def test_133_kw_derivation_is_shown_and_rounds_to_133() -> None:
    assert round(self_contained_limit_kw(200, 0.80, 480, 1.73)) == 133
    report = run(edit(LV, {**SELF_CONTAINED, "resources": pv(100)}), BTM)
    (finding,) = report.by_rule(f"{BTM}.self_contained_max")
    assert "200 A x 80 % x 480 V x 1.73 = 132.9 kW" in finding.message


def test_threshold_case_count() -> None:
    """The count reported to the lead: named cases plus the PT-ratio pairs."""
    assert len(CASES) + 2 * len(PT_VOLTAGES) == 154


def test_photo_checklist_adds_the_additional_cabinet() -> None:
    items = [
        "exterior_overview",
        "ct_pt_enclosure_inside",
        "meter_cabinet_outside",
        "meter_cabinet_inside",
        "ct_nameplates",
        "ct_wiring",
        "ct_polarity",
        "pt_nameplates",
        "pt_wiring",
    ]
    done = run(edit(LV, {"metering.photos_uploaded": items}), BTM)
    assert statuses(done, f"{BTM}.photo_checklist") == {"pass"}
    short = run(edit(LV, {"metering.photos_uploaded": items[:-1]}), BTM)
    (f,) = short.by_rule(f"{BTM}.photo_checklist")
    assert f.status.value == "fail"
    assert "[pt_wiring] PT primary and secondary wiring" in f.message
    extra = run(
        edit(LV, {"metering.photos_uploaded": items, "metering.additional_cabinet": True}), BTM
    )
    (f,) = extra.by_rule(f"{BTM}.photo_checklist")
    assert (f.status.value, f.value, f.limit) == ("fail", 9.0, 10.0)
    assert "additional_cabinet" in f.message


def test_relay_finding_names_the_covering_element() -> None:
    (f,) = run(CAMPUS, BGE).by_rule(f"{BGE}.uv_fast")
    assert "element 27 (27-2) set at 60 V clears in 5 cycles" in f.message
