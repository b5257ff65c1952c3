"""BTM production-metering design checks (Ameren Illinois).

Evaluates an application's :class:`~gridflex.application.MeteringDesign` against a rule set of
checker ``btm_metering`` (built in: ``ameren_il_btm_metering``). Every threshold comes from the
rule set; this module only compares.

References
----------
.. [1] Ameren Illinois, *BTM Production Metering Requirements for DER Customer Interconnections*
   (rev. 04/15/2024), ``seeds/000_9d43a5ca67169be9.txt``.
"""

from __future__ import annotations

import re

from gridflex.application import Application, MeteringDesign, ServiceConfiguration
from gridflex.errors import InputError
from gridflex.rules.findings import Emitter, Finding, Status, at_least, at_most, tri, verdict
from gridflex.rules.ruleset import RuleSet

_AWG = re.compile(r"^\s*#?\s*(\d+)(?:\s*/\s*0)?\s*(?:awg)?\s*$", re.IGNORECASE)


def awg_rank(gauge: str, field: str = "gauge_awg") -> int:
    """Order AWG sizes: a smaller rank is a larger conductor (``'1/0'`` -> 0, ``'2/0'`` -> -1).

    Raises
    ------
    InputError
        When ``gauge`` is not an AWG size such as ``'12'``, ``'#10'`` or ``'1/0'``.
    """
    m = _AWG.match(str(gauge))
    if not m:
        raise InputError(
            f"{field} = {gauge!r} is not an AWG size", "write e.g. '12', '10', '2' or '1/0'"
        )
    n = int(m.group(1))
    return 1 - n if "/" in str(gauge) else n


def self_contained_limit_kw(
    service_a: float, continuous_factor: float, voltage_ll_v: float, sqrt3: float
) -> float:
    """Maximum three-phase self-contained installation, kW: I x factor x V x sqrt(3) / 1000 [1]_."""
    return service_a * continuous_factor * voltage_ll_v * sqrt3 / 1000.0


def production_meter_required(app: Application, rs: RuleSet) -> tuple[bool, str]:
    """Whether the rule set requires a BTM production meter for ``app``, and why."""
    agg = app.aggregate_generation_kw
    threshold = float(rs.param("production_meter_required", "min_aggregate_kw"))
    if app.service.phase_count == 1:
        return False, "single-phase metering never needs one (single-phase maximum 100 kVA)"
    if app.service.metering == "self_contained":
        return False, "three-phase self-contained metering never needs one (maximum 133 kW)"
    if at_least(agg, threshold):
        return True, f"aggregate generation {agg:g} kW >= {threshold:g} kW"
    return False, f"aggregate generation {agg:g} kW < {threshold:g} kW"


def check_btm_metering(app: Application, rs: RuleSet) -> list[Finding]:
    """Evaluate every rule of a ``btm_metering`` rule set for ``app``."""
    em = Emitter(rs)
    agg_kw = app.aggregate_generation_kw
    agg_kva = app.aggregate_generation_kva
    svc = app.service
    md = app.metering
    required, why = production_meter_required(app, rs)
    proposed = md is not None and md.production_meter
    threshold = float(rs.param("production_meter_required", "min_aggregate_kw"))

    # -- when a meter is needed ------------------------------------------------------------------
    if required and not proposed:
        em.add(
            "production_meter_required",
            Status.FAIL,
            f"BTM production meter required ({why}) but the metering design does not include "
            "one: add a 'metering' section with production_meter: true",
            agg_kw,
            threshold,
            unit="kW",
        )
    else:
        em.add(
            "production_meter_required",
            Status.PASS,
            f"production meter {'required' if required else 'not required'}: {why}"
            + ("; one is proposed" if proposed else ""),
            agg_kw,
            threshold,
            unit="kW",
        )

    if svc.phase_count == 1:
        limit = float(rs.param("single_phase_max", "max_kva"))
        ok = at_most(agg_kva, limit)
        em.add(
            "single_phase_max",
            verdict(ok),
            f"single-phase aggregate {agg_kva:g} kVA "
            + ("within" if ok else "exceeds")
            + f" the {limit:g} kVA single-phase maximum",
            agg_kva,
            limit,
            unit="kVA",
        )
    else:
        em.not_applicable("single_phase_max", "three-phase service")

    p = rs.rule("self_contained_max").params
    derived = self_contained_limit_kw(
        float(p["service_a"]),
        float(p["continuous_factor"]),
        float(p["voltage_ll_v"]),
        float(p["sqrt3_as_written"]),
    )
    limit = float(p["max_kw"])
    derivation = (
        f"{p['service_a']:g} A x {float(p['continuous_factor']) * 100:g} % x "
        f"{p['voltage_ll_v']:g} V x {p['sqrt3_as_written']:g} = {derived:.1f} kW, "
        f"i.e. {limit:g} kW"
    )
    if svc.phase_count == 3 and svc.metering == "self_contained":
        ok = at_most(agg_kw, limit)
        em.add(
            "self_contained_max",
            verdict(ok),
            f"three-phase self-contained: aggregate {agg_kw:g} kW "
            + ("within" if ok else "exceeds")
            + f" the maximum ({derivation})"
            + ("" if ok else "; use instrument-transformer metering"),
            agg_kw,
            limit,
            unit="kW",
        )
    else:
        em.not_applicable(
            "self_contained_max", f"not three-phase self-contained metering ({derivation})"
        )

    design_rules = [r for r in rs.rules if r not in _SIZING_RULES and rs.rules[r].field is None]
    if not required and not proposed:
        for rule_id in design_rules:
            em.not_applicable(rule_id, "no BTM production meter required or proposed")
        return em.findings
    if md is None:
        for rule_id in design_rules:
            em.add(
                rule_id,
                Status.NEEDS_REVIEW,
                "no metering design given: add a 'metering' section to check this rule",
            )
        return em.findings

    _service_and_pts(app, md, rs, em)
    _cts(md, rs, em)
    _instruments(md, em)
    _installation(app, md, rs, em)
    _photos(md, rs, em)
    return em.findings


_SIZING_RULES = {"production_meter_required", "single_phase_max", "self_contained_max"}


def _service_and_pts(app: Application, md: MeteringDesign, rs: RuleSet, em: Emitter) -> None:
    svc = app.service
    cfg = svc.configuration
    vmax = float(rs.param("service_configuration", "max_standard_voltage_ll_v"))
    if cfg is ServiceConfiguration.THREE_PHASE_4W_WYE and at_most(svc.voltage_ll_v, vmax):
        em.add(
            "service_configuration",
            Status.PASS,
            "4-wire wye service at or below 15 kV: industry-standard 4-wire wye metering",
            svc.voltage_ll_v,
            vmax,
            unit="V",
        )
    elif cfg is ServiceConfiguration.THREE_PHASE_4W_WYE:
        em.add(
            "service_configuration",
            Status.NEEDS_REVIEW,
            f"wye service above {vmax:g} V: outside the standard metering list, Ameren reviews",
            svc.voltage_ll_v,
            vmax,
            unit="V",
        )
    elif cfg in {
        ServiceConfiguration.THREE_PHASE_3W_DELTA,
        ServiceConfiguration.THREE_PHASE_4W_DELTA,
    }:
        em.add(
            "service_configuration",
            Status.NEEDS_REVIEW,
            "delta-metered service: Ameren must review and approve case by case",
            cfg.value,
            "three_phase_4w_wye",
        )
    else:
        em.add(
            "service_configuration",
            Status.FAIL,
            f"{cfg.value} service: DC-metered and non-industry-standard services are not permitted",
            cfg.value,
            "three_phase_4w_wye",
        )

    # required PT ratio for the service voltage
    table = rs.param("pt_ratio", "ratios")
    tol = float(rs.param("pt_ratio", "ratio_tolerance"))
    sec_v = float(rs.param("pt_ratio", "secondary_v"))
    entry = next(
        (
            e
            for e in table
            if abs(float(e["voltage_ll_v"]) - svc.voltage_ll_v) <= 0.005 * svc.voltage_ll_v
        ),
        None,
    )
    if not md.pts:
        em.add("pt_ratio", Status.FAIL, "no PTs in the metering design: give metering.pts")
    elif entry is None or cfg is not ServiceConfiguration.THREE_PHASE_4W_WYE:
        em.add(
            "pt_ratio",
            Status.NEEDS_REVIEW,
            f"no standard PT ratio is listed for a {svc.voltage_ll_v:g} V {cfg.value} service; "
            "Ameren reviews the ratio",
            svc.voltage_ll_v,
            None,
            unit="V",
        )
    else:
        need = float(entry["ratio"])
        bad = [
            pt
            for pt in md.pts
            if abs(pt.primary_v / pt.secondary_v - need) > tol * need
            or pt.connection != "phase_to_neutral"
        ]
        got = md.pts[0] if not bad else bad[0]
        em.add(
            "pt_ratio",
            verdict(not bad),
            f"{entry['service']} requires {float(entry['pt_primary_v']):g}:{sec_v:g} phase to "
            f"neutral ({need:g}:1); "
            + (
                "PTs match"
                if not bad
                else f"a PT is {got.primary_v:g}:{got.secondary_v:g} {got.connection}"
            ),
            round(got.primary_v / got.secondary_v, 4),
            need,
            unit="ratio",
        )

    want_sec = float(rs.param("pt_specs", "secondary_v"))
    want_burdens = set(rs.param("pt_specs", "burden_ratings"))
    if not md.pts:
        em.add("pt_specs", Status.FAIL, "no PTs in the metering design", part="secondary")
    else:
        wrong = [pt.secondary_v for pt in md.pts if abs(pt.secondary_v - want_sec) > EPS_V]
        em.add(
            "pt_specs",
            verdict(not wrong),
            f"PT secondary must be {want_sec:g} VAC" + (f"; found {wrong[0]:g} V" if wrong else ""),
            wrong[0] if wrong else want_sec,
            want_sec,
            part="secondary",
            unit="V",
        )
        missing = sorted(want_burdens - set().union(*(set(pt.burden_ratings) for pt in md.pts)))
        unrated = [pt for pt in md.pts if not pt.burden_ratings]
        status = Status.NEEDS_REVIEW if unrated else verdict(not missing)
        em.add(
            "pt_specs",
            status,
            (
                "PT burden ratings not given (need W, X, M, Y)"
                if unrated
                else "PT burden ratings W, X, M, Y present"
                if not missing
                else f"PT burden ratings missing: {', '.join(missing)}"
            )
            + f"; accuracy: any class, {rs.param('pt_specs', 'preferred_accuracy')} preferred",
            ",".join(sorted(set().union(*(set(pt.burden_ratings) for pt in md.pts)))),
            ",".join(sorted(want_burdens)),
            part="burden",
        )


EPS_V = 1e-6


def _cts(md: MeteringDesign, rs: RuleSet, em: Emitter) -> None:
    if not md.cts:
        for rule_id in (
            "ct_secondary",
            "ct_burden",
            "ct_rating_factor",
            "ct_location",
            "ct_polarity",
        ):
            em.add(rule_id, Status.FAIL, "no CTs in the metering design: give metering.cts")
        return
    sec = float(rs.param("ct_secondary", "secondary_a"))
    volt = [i for i, ct in enumerate(md.cts) if ct.output == "voltage"]
    wrong = [i for i, ct in enumerate(md.cts) if abs(ct.secondary_a - sec) > 1e-9]
    if volt:
        em.add(
            "ct_secondary",
            Status.FAIL,
            f"CT set {volt[0] + 1} outputs a secondary voltage: voltage-output CTs are not allowed",
            "voltage",
            f"{sec:g} A",
        )
    else:
        first = md.cts[wrong[0]] if wrong else md.cts[0]
        em.add(
            "ct_secondary",
            verdict(not wrong),
            f"CT secondary must be {sec:g} A"
            + (f"; CT set {wrong[0] + 1} is {first.secondary_a:g} A" if wrong else ""),
            first.secondary_a,
            sec,
            unit="A",
        )

    lo = float(rs.param("ct_burden", "min_burden"))
    hi = float(rs.param("ct_burden", "max_burden"))
    burdens = [ct.burden_rating for ct in md.cts]
    if any(b is None for b in burdens):
        em.add("ct_burden", Status.NEEDS_REVIEW, "CT burden rating not given for every set")
    else:
        out = [b for b in burdens if b is not None and not (at_least(b, lo) and at_most(b, hi))]
        shown = out[0] if out else burdens[0]
        em.add(
            "ct_burden",
            verdict(not out),
            f"CT burden rating must be {lo:g} through {hi:g}"
            + (f"; found B-{out[0]:g}" if out else ""),
            shown,
            f"{lo:g}-{hi:g}",
        )

    rf_max = float(rs.param("ct_rating_factor", "max_rating_factor"))
    rfs = [ct.rating_factor for ct in md.cts]
    if any(r is None for r in rfs):
        em.add("ct_rating_factor", Status.NEEDS_REVIEW, "CT rating factor not given for every set")
    else:
        worst = max(r for r in rfs if r is not None)
        ok = at_most(worst, rf_max)
        em.add(
            "ct_rating_factor",
            verdict(ok),
            f"CT rating factor {worst:g} "
            + ("is within" if ok else "exceeds")
            + f" the {rf_max:g} maximum; accuracy: any class, "
            f"{rs.param('ct_rating_factor', 'preferred_accuracy')} preferred",
            worst,
            rf_max,
        )

    supply = [i for i, ct in enumerate(md.cts) if ct.on_supply_side_of_main_ocpd]
    em.add(
        "ct_location",
        verdict(not supply),
        "CTs are on the load side of the main overcurrent device"
        if not supply
        else f"CT set {supply[0] + 1} is on the utility supply side of the main overcurrent "
        "protective device: move it to the load side",
    )

    states: list[bool | None] = []
    for ct in md.cts:
        if ct.polarity_mark is None or ct.polarity_faces is None:
            states.append(None)
        elif ct.polarity_mark == "arrow":
            states.append(ct.polarity_faces == "generation")
        else:
            states.append(ct.polarity_faces == "utility")
    if False in states:
        status = Status.FAIL
        msg = (
            f"CT set {states.index(False) + 1} polarity is reversed: dot/H1 must face the "
            "utility (an arrow the generation) so generation reads negative on the meter"
        )
    elif None in states:
        status = Status.NEEDS_REVIEW
        msg = "CT polarity mark and orientation not given: show them on the one-line"
    else:
        status = Status.PASS
        msg = "CT polarity faces the utility: generation reads negative on the production meter"
    em.add("ct_polarity", status, msg)


def _instruments(md: MeteringDesign, em: Emitter) -> None:
    two = len(md.cts) > 1 or len(md.pts) > 1
    if two:
        em.add(
            "two_sets",
            verdict(md.pt_control_relay),
            "two sets of CTs/PTs: a PT control relay is "
            + ("provided" if md.pt_control_relay else "required but missing"),
            "yes" if md.pt_control_relay else "no",
            "yes",
            part="pt_control_relay",
        )
        ratios = sorted({ct.ratio_primary_a for ct in md.cts})
        em.add(
            "two_sets",
            verdict(len(ratios) <= 1),
            "CT ratios of the sets "
            + (
                "match"
                if len(ratios) <= 1
                else f"differ ({', '.join(f'{r:g}:5' for r in ratios)}); they must match even "
                "when one system is smaller"
            ),
            ", ".join(f"{r:g}" for r in ratios),
            "equal",
            part="ct_ratio_match",
        )
    else:
        em.not_applicable("two_sets", "one set of CTs and PTs")

    if md.shared_with_customer_meter:
        flags = {
            "Meter Engineering approval": md.shared_approved_by_meter_engineering,
            "customer meter in a separate enclosure": md.customer_meter_separate_enclosure,
            "Ameren meter last in the series": md.utility_meter_last_in_series,
            "CT returns isolated at the customer meter": md.customer_meter_ct_returns_isolated,
        }
        bad = [k for k, v in flags.items() if v is False]
        unknown = [k for k, v in flags.items() if v is None]
        status = Status.FAIL if bad else Status.NEEDS_REVIEW if unknown else Status.PASS
        msg = (
            f"shared CTs/PTs: not met: {', '.join(bad)}"
            if bad
            else f"shared CTs/PTs: confirm {', '.join(unknown)}"
            if unknown
            else "shared CTs/PTs: approval, separate enclosure, series order and isolated "
            "returns met"
        )
        em.add("shared_instruments", status, msg)
    else:
        em.not_applicable("shared_instruments", "instruments are not shared with a customer meter")

    em.add(
        "specs_submitted",
        tri(md.specs_submitted_before_ordering),
        {
            True: "CT/PT specifications sent for review before ordering",
            False: "CT/PT specifications must be sent to Ameren for review before ordering",
            None: "state whether CT/PT specifications were sent for review before ordering",
        }[md.specs_submitted_before_ordering],
    )


def _installation(app: Application, md: MeteringDesign, rs: RuleSet, em: Emitter) -> None:
    # neutral (grounded-wye services)
    if app.service.configuration is not ServiceConfiguration.THREE_PHASE_4W_WYE:
        em.not_applicable("neutral", "not a grounded-wye service")
    elif md.neutral is None:
        em.add("neutral", Status.NEEDS_REVIEW, "neutral routing not given (metering.neutral)")
    else:
        n = md.neutral
        min_gauge = str(rs.param("neutral", "min_parallel_gauge_awg"))
        problems = []
        if not n.routed_with_phases:
            problems.append("route the neutral with the phase conductors")
        if n.parallel_runs:
            if n.gauge_awg is None:
                problems.append("give the parallel-run neutral size")
            elif awg_rank(n.gauge_awg, "metering.neutral.gauge_awg") > awg_rank(min_gauge):
                problems.append(f"parallel-run neutral #{n.gauge_awg} is smaller than {min_gauge}")
        if n.isolated_from_egc is False:
            problems.append("keep the neutral isolated from the equipment grounding conductor")
        status = Status.FAIL if problems else Status.PASS
        if not problems and n.isolated_from_egc is None:
            status = Status.NEEDS_REVIEW
            problems.append(
                "confirm the neutral is isolated from the EGC downstream of the disconnect"
            )
        em.add(
            "neutral",
            status,
            "; ".join(problems) or "neutral routed with the phases and sized per the NEC",
            n.gauge_awg,
            min_gauge if n.parallel_runs else None,
            unit="AWG",
        )

    em.add(
        "enclosure_location",
        tri(md.enclosure_outdoor),
        {
            True: "metering enclosure in an accessible outdoor location",
            False: "the BTM metering enclosure must be outdoors",
            None: "state whether the metering enclosure is outdoors (metering.enclosure_outdoor)",
        }[md.enclosure_outdoor],
    )

    allowed = list(rs.param("mounting_structure", "allowed"))
    ms = md.mounting_structure
    if ms is None:
        em.add("mounting_structure", Status.NEEDS_REVIEW, "mounting structure not given")
    elif ms in allowed:
        em.add("mounting_structure", Status.PASS, f"mounted on {ms}", ms, ", ".join(allowed))
    elif ms == "wood":
        em.add(
            "mounting_structure",
            Status.FAIL,
            "wooden posts and cross members are not permitted: use an exterior wall or an ASM "
            "Figure 700-11 H-frame (3 in galvanized RMC posts, P1100T unistrut)",
            ms,
            ", ".join(allowed),
        )
    else:
        em.add(
            "mounting_structure", Status.NEEDS_REVIEW, "non-standard structure: Ameren reviews", ms
        )

    size = float(rs.param("conduit", "size_in"))
    entries_ok = set(rs.param("conduit", "allowed_entries"))
    c = md.conduit
    if c is None:
        em.add("conduit", Status.NEEDS_REVIEW, "conduit not given (metering.conduit)")
    else:
        problems = []
        if c.type == "flexible" and not (
            c.back_to_back_on_approved_structure and set(c.entries) == {"bottom"}
        ):
            problems.append(
                "flexible conduit only for back-to-back enclosures on an ASM 700-11 structure "
                "entering the bottom"
            )
        if abs(c.size_in - size) > 1e-9:
            problems.append(f"conduit must be {size:g} in (given {c.size_in:g} in)")
        bad = sorted(set(c.entries) - entries_ok)
        if bad:
            problems.append(
                f"entry through {', '.join(bad)} is not permitted (side or bottom only)"
            )
        em.add(
            "conduit",
            verdict(not problems),
            "; ".join(problems)
            or f"{c.type} {c.size_in:g} in conduit entering {', '.join(c.entries)}",
            c.size_in,
            size,
            unit="in",
        )

    cl = md.clearances
    _min_check(
        em,
        "enclosure_spacing",
        None,
        cl.enclosure_spacing_in,
        float(rs.param("enclosure_spacing", "min_in")),
        "spacing between the enclosures",
        "metering.clearances.enclosure_spacing_in",
    )
    width_min = float(rs.param("working_clearance", "min_width_in"))
    if cl.enclosure_width_in is not None:
        width_min = max(width_min, cl.enclosure_width_in)
    _min_check(
        em,
        "working_clearance",
        "width",
        cl.working_width_in,
        width_min,
        "working-space width (greater of 30 in or the enclosure width)",
        "metering.clearances.working_width_in",
    )
    _min_check(
        em,
        "working_clearance",
        "depth",
        cl.working_depth_in,
        float(rs.param("working_clearance", "min_depth_in")),
        "working-space depth in front",
        "metering.clearances.working_depth_in",
    )
    _min_check(
        em,
        "working_clearance",
        "headroom",
        cl.headroom_in,
        float(rs.param("working_clearance", "min_headroom_in")),
        "headroom",
        "metering.clearances.headroom_in",
    )

    h = float(rs.param("mounting_height", "center_height_in"))
    if cl.mounting_center_height_in is None:
        em.add(
            "mounting_height",
            Status.NEEDS_REVIEW,
            "cabinet center height not given",
            None,
            h,
            unit="in",
        )
    else:
        ok = abs(cl.mounting_center_height_in - h) <= 1e-9
        em.add(
            "mounting_height",
            Status.PASS if ok else Status.NEEDS_REVIEW,
            f"cabinet center at {cl.mounting_center_height_in:g} in above final grade"
            + ("" if ok else f"; the requirement is {h:g} in (no tolerance is published)"),
            cl.mounting_center_height_in,
            h,
            unit="in",
        )

    w = md.wiring
    if w is None:
        em.add(
            "secondary_wiring", Status.NEEDS_REVIEW, "secondary wiring not given (metering.wiring)"
        )
        em.add(
            "grounding_conductor", Status.NEEDS_REVIEW, "equipment grounding conductor not given"
        )
        em.add("labels", Status.NEEDS_REVIEW, "terminal-strip labeling not stated")
    else:
        table = {
            awg_rank(k): float(v)
            for k, v in rs.param("secondary_wiring", "max_length_ft_by_gauge").items()
        }
        rank = awg_rank(w.gauge_awg, "metering.wiring.gauge_awg")
        material = str(rs.param("secondary_wiring", "material"))
        if w.material != material:
            em.add(
                "secondary_wiring",
                Status.FAIL,
                f"secondary wiring must be copper ({w.material} given)",
                w.material,
                material,
                part="length",
            )
        elif rank in table:
            limit = table[rank]
            ok = at_most(w.length_ft, limit)
            em.add(
                "secondary_wiring",
                verdict(ok),
                f"#{w.gauge_awg} Cu run of {w.length_ft:g} ft "
                + ("within" if ok else "exceeds")
                + f" the {limit:g} ft maximum",
                w.length_ft,
                limit,
                part="length",
                unit="ft",
            )
        elif rank > max(table):
            em.add(
                "secondary_wiring",
                Status.FAIL,
                f"#{w.gauge_awg} is smaller than the listed sizes (#12, #10)",
                w.gauge_awg,
                "12 or 10",
                part="length",
            )
        else:
            em.add(
                "secondary_wiring",
                Status.NEEDS_REVIEW,
                f"#{w.gauge_awg} is larger than the listed sizes: no length limit is published",
                w.length_ft,
                None,
                part="length",
                unit="ft",
            )
        if md.shared_with_customer_meter:
            em.not_applicable(
                "secondary_wiring",
                "shared CTs keep returns isolated at the customer meter",
                part="common_return",
            )
        else:
            em.add(
                "secondary_wiring",
                tri(w.common_ct_return),
                {
                    True: "single common CT return lands in the BTM cabinet",
                    False: "CT secondary returns must be joined into one common return",
                    None: "state whether a single common CT return is used",
                }[w.common_ct_return],
                part="common_return",
            )
        egc_min = str(rs.param("grounding_conductor", "min_gauge_awg"))
        if w.egc_gauge_awg is None or w.egc_routed_with_secondaries is None:
            em.add(
                "grounding_conductor",
                Status.NEEDS_REVIEW,
                "give the EGC size and whether it is routed with the secondaries",
                w.egc_gauge_awg,
                egc_min,
                unit="AWG",
            )
        else:
            big = awg_rank(w.egc_gauge_awg, "metering.wiring.egc_gauge_awg") <= awg_rank(egc_min)
            ok = big and w.egc_routed_with_secondaries
            em.add(
                "grounding_conductor",
                verdict(ok),
                f"#{w.egc_gauge_awg} Cu EGC"
                + ("" if big else f" is smaller than #{egc_min}")
                + (
                    ""
                    if w.egc_routed_with_secondaries
                    else "; route it with the CT & PT secondaries"
                ),
                w.egc_gauge_awg,
                egc_min,
                unit="AWG",
            )
        em.add(
            "labels",
            tri(w.labeled_on_terminal_strip),
            {
                True: "conductors labeled with phase and instrument type",
                False: "label conductors with phase and instrument-transformer type on the "
                "terminal strip",
                None: "state whether conductors are labeled on the terminal strip",
            }[w.labeled_on_terminal_strip],
        )

    brk = float(rs.param("gas_vent_clearance", "riser_od_breakpoint_in"))
    small = float(rs.param("gas_vent_clearance", "min_distance_small_riser_ft"))
    large = float(rs.param("gas_vent_clearance", "min_distance_large_riser_ft"))
    if md.gas_riser_od_in is None and md.gas_vent_distance_ft is None:
        em.not_applicable("gas_vent_clearance", "no natural-gas riser near the enclosures given")
    elif md.gas_riser_od_in is None or md.gas_vent_distance_ft is None:
        em.add(
            "gas_vent_clearance",
            Status.NEEDS_REVIEW,
            "give both the gas riser outside diameter and the distance to its relief vent",
        )
    else:
        need = small if at_most(md.gas_riser_od_in, brk) else large
        ok = at_least(md.gas_vent_distance_ft, need)
        em.add(
            "gas_vent_clearance",
            verdict(ok),
            f"riser OD {md.gas_riser_od_in:g} in ({'<=' if need == small else '>'} {brk:g} in) "
            f"needs a {need:g} ft spherical radius from the relief vent; "
            f"{md.gas_vent_distance_ft:g} ft given",
            md.gas_vent_distance_ft,
            need,
            unit="ft",
        )


def _min_check(
    em: Emitter,
    rule_id: str,
    part: str | None,
    value: float | None,
    limit: float,
    what: str,
    field: str,
) -> None:
    if value is None:
        em.add(
            rule_id,
            Status.NEEDS_REVIEW,
            f"{what} not given ({field})",
            None,
            limit,
            part=part,
            unit="in",
        )
        return
    ok = at_least(value, limit)
    em.add(
        rule_id,
        verdict(ok),
        f"{what}: {value:g} in " + ("meets" if ok else "is below") + f" the {limit:g} in minimum",
        value,
        limit,
        part=part,
        unit="in",
    )


def photo_checklist(rs: RuleSet) -> list[dict[str, str]]:
    """The installation photos the applicant must upload (id and text)."""
    return [dict(i) for i in rs.param("photo_checklist", "items")]


def _photos(md: MeteringDesign, rs: RuleSet, em: Emitter) -> None:
    items = photo_checklist(rs)
    if md.additional_cabinet:
        items += [dict(i) for i in rs.param("photo_checklist", "conditional_items")]
    listing = "; ".join(f"[{i['id']}] {i['text']}" for i in items)
    if md.photos_uploaded is None:
        em.add(
            "photo_checklist",
            Status.NEEDS_REVIEW,
            f"upload at Construction Complete: {listing}",
            0.0,
            float(len(items)),
            unit="photos",
        )
        return
    known = {i["id"] for i in items} | {
        i["id"] for i in rs.param("photo_checklist", "conditional_items")
    }
    unknown = sorted(set(md.photos_uploaded) - known)
    if unknown:
        raise InputError(
            f"metering.photos_uploaded: unknown photo id(s) {', '.join(unknown)}",
            f"use the checklist ids: {', '.join(sorted(known))}",
        )
    missing = [i for i in items if i["id"] not in md.photos_uploaded]
    em.add(
        "photo_checklist",
        verdict(not missing),
        "all checklist photos uploaded"
        if not missing
        else "missing photos: " + "; ".join(f"[{i['id']}] {i['text']}" for i in missing),
        float(len(items) - len(missing)),
        float(len(items)),
        unit="photos",
    )
