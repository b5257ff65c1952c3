"""Illinois Part 466 review levels and screens, with the Ameren volt/watt pilot option.

Evaluates a rule set of checker ``il_part466_screens`` (built in: ``il_part466_screens``). The
screens need network data (line-section peak load, shared-secondary DER, fault currents): they
come from the application's ``network`` section; a missing value makes its screen
``needs_review`` and names the field to fill.

When the Level 1 20 kVA shared-secondary screen fails, the finding offers both ways forward the
seed describes: the upgrade (cost contribution capped at $200 by Part 466.90(c)) and the volt/watt
pilot (opt in, the $200 contribution avoided, connect without waiting for construction, opt out
risk-free at any time after energization).

References
----------
.. [1] seeds/001_9847d8232b845ab9.txt, "Volt/Watt" and its "Proposed Path Forward" (Figure 3).
.. [2] 83 Ill. Adm. Code 466.90-466.120 (not in the seeds; values marked uncertain in the rule set).
"""

from __future__ import annotations

from gridflex.application import Application, NewLoad, OtherGeneration, PVResource, StorageResource
from gridflex.rules.findings import Emitter, Finding, Option, Status, at_most, verdict
from gridflex.rules.ruleset import RuleSet, load_ruleset
from gridflex.terms import VoltWattCurve

_L1_ONLY = (
    "level1_shared_secondary",
    "level1_center_tap_imbalance",
    "volt_watt_pilot",
    "level1_no_construction",
)
_L2_ONLY = ("level2_fault_contribution", "level2_interrupting_capability")
_L1_L2 = ("level1_line_section", "level1_spot_network")


def _certified_inverters(app: Application) -> tuple[bool, str]:
    for g in app.generators():
        if isinstance(g, PVResource | StorageResource):
            if not g.inverter.certified:
                return False, f"{g.id} inverter is not certified (UL 1741 SB / IEEE 1547.1)"
        elif isinstance(g, OtherGeneration) and g.inverter_based:
            if g.inverter is None or not g.inverter.certified:
                return False, f"{g.id} inverter is not certified"
        else:
            return False, f"{g.id} is not inverter-based"
    return True, "all generation is certified inverter-based equipment"


def eligible_levels(app: Application, rs: RuleSet) -> dict[int, tuple[bool, str]]:
    """Eligibility of each review level (1-4) with the reason."""
    kw, kva = app.aggregate_generation_kw, app.aggregate_generation_kva
    certified, why = _certified_inverters(app)
    out: dict[int, tuple[bool, str]] = {}
    l1 = float(rs.param("level1_eligibility", "max_kw"))
    ok1 = at_most(kw, l1) and certified
    out[1] = (ok1, f"{kw:g} kW {'<=' if at_most(kw, l1) else '>'} {l1:g} kW; {why}")
    l2 = float(rs.param("level2_eligibility", "max_kva"))
    ok2 = at_most(kva, l2) and certified
    out[2] = (ok2, f"{kva:g} kVA {'<=' if at_most(kva, l2) else '>'} {l2:g} kVA; {why}")
    l3 = float(rs.param("level3_eligibility", "max_kva"))
    ok3 = at_most(kva, l3) and not app.exports
    out[3] = (
        ok3,
        f"{kva:g} kVA {'<=' if at_most(kva, l3) else '>'} {l3:g} kVA; "
        + ("non-exporting" if not app.exports else "exports (Level 3 needs non-exporting)"),
    )
    l4 = float(rs.param("level4_eligibility", "max_kva"))
    out[4] = (at_most(kva, l4), f"{kva:g} kVA {'<=' if at_most(kva, l4) else '>'} {l4:g} kVA")
    return out


def check_il_part466_screens(app: Application, rs: RuleSet) -> list[Finding]:
    """Evaluate every rule of an ``il_part466_screens`` rule set for ``app``."""
    em = Emitter(rs)
    levels = eligible_levels(app, rs)
    kw, kva = app.aggregate_generation_kw, app.aggregate_generation_kva
    for lvl, rule_id, value, unit in (
        (1, "level1_eligibility", kw, "kW"),
        (2, "level2_eligibility", kva, "kVA"),
        (3, "level3_eligibility", kva, "kVA"),
        (4, "level4_eligibility", kva, "kVA"),
    ):
        ok, why = levels[lvl]
        limit_name = "max_kw" if lvl == 1 else "max_kva"
        em.add(
            rule_id,
            Status.PASS if ok else Status.NOT_APPLICABLE,
            f"{'eligible' if ok else 'not eligible'} for Level {lvl}: {why}",
            value,
            float(rs.param(rule_id, limit_name)),
            unit=unit,
        )

    target = app.requested_level or next((lvl for lvl in (1, 2) if levels[lvl][0]), None)
    if target is None:
        target = 3 if levels[3][0] else 4
    net = app.network
    if target == 1:
        _line_section(app, rs, em, 1)
        _spot(app, rs, em, 1)
        shared = _shared_secondary(app, rs, em)
        _pilot(app, rs, em, shared)
        _center_tap(app, rs, em)
        _no_construction(app, em)
        for rule_id in _L2_ONLY:
            em.not_applicable(rule_id, "Level 2 screen; the application is reviewed at Level 1")
    elif target == 2:
        _line_section(app, rs, em, 2)
        _spot(app, rs, em, 2)
        _fault(app, rs, em)
        for rule_id in _L1_ONLY:
            em.not_applicable(rule_id, "Level 1 screen; the application is reviewed at Level 2")
    else:
        for rule_id in (*_L1_L2, *_L1_ONLY, *_L2_ONLY):
            em.not_applicable(
                rule_id,
                f"Level {target} review: the Level 1/2 screens do not apply"
                + (" (Level 4 is a full study)" if target == 4 else ""),
            )

    screens = [f for f in em.findings if f.rule.split(".")[1] in (*_L1_L2, *_L1_ONLY, *_L2_ONLY)]
    failed = [f.rule.split(".", 1)[1] for f in screens if f.status is Status.FAIL]
    review = [f.rule.split(".", 1)[1] for f in screens if f.status is Status.NEEDS_REVIEW]
    eligible = levels[target][0]
    if not eligible:
        em.add(
            "review_level",
            Status.FAIL,
            f"requested Level {target} but not eligible: {levels[target][1]}"
            if app.requested_level
            else "not eligible for any review level (above the Level 4 ceiling)",
            float(target),
            float(target),
            unit="level",
        )
    elif failed:
        em.add(
            "review_level",
            Status.FAIL,
            f"Level {target}: screen(s) failed: {', '.join(failed)}; mitigate (see the screen's "
            "options) or continue under supplemental review / Level 4 study",
            float(target),
            float(target),
            unit="level",
        )
    else:
        em.add(
            "review_level",
            Status.NEEDS_REVIEW if review else Status.PASS,
            f"Level {target} review"
            + (f"; screens to confirm: {', '.join(review)}" if review else "; all screens pass")
            + ("" if net is not None or target > 2 else " (no network data given)"),
            float(target),
            float(target),
            unit="level",
        )
    return em.findings


def _need(em: Emitter, rule_id: str, fields: list[str]) -> None:
    em.add(
        rule_id,
        Status.NEEDS_REVIEW,
        "needs network data: give "
        + ", ".join(f"network.{f}" for f in fields)
        + " (from the utility or a feeder study)",
    )


def _line_section(app: Application, rs: RuleSet, em: Emitter, level: int) -> None:
    net = app.network
    limit = float(rs.param("level1_line_section", "max_pct_of_peak"))
    if (
        net is None
        or net.line_section_peak_load_kw is None
        or net.line_section_existing_der_kw is None
    ):
        _need(
            em, "level1_line_section", ["line_section_peak_load_kw", "line_section_existing_der_kw"]
        )
        return
    total = net.line_section_existing_der_kw + app.aggregate_generation_kw
    pct = 100.0 * total / net.line_section_peak_load_kw
    ok = at_most(pct, limit)
    em.add(
        "level1_line_section",
        verdict(ok),
        f"Level {level}: line-section generation {total:g} kW is {pct:.2f} % of its "
        f"{net.line_section_peak_load_kw:g} kW annual peak load (limit {limit:g} %)",
        pct,
        limit,
        unit="%",
    )


def _spot(app: Application, rs: RuleSet, em: Emitter, level: int) -> None:
    net = app.network
    if net is None or not net.spot_network:
        em.not_applicable("level1_spot_network", "not connected to a spot network")
        return
    if net.spot_network_max_load_kva is None:
        _need(em, "level1_spot_network", ["spot_network_max_load_kva"])
        return
    pct = float(rs.param("level1_spot_network", "max_pct_of_max_load"))
    limit = pct / 100.0 * net.spot_network_max_load_kva
    rule_text = f"{pct:g} % of {net.spot_network_max_load_kva:g} kVA"
    if level == 1:
        cap = float(rs.param("level1_spot_network", "level1_max_kva"))
        limit = min(limit, cap)
        rule_text = f"the lesser of {rule_text} and {cap:g} kVA"
    total = (net.spot_network_existing_der_kva or 0.0) + app.aggregate_generation_kva
    ok = at_most(total, limit)
    certified, why = _certified_inverters(app)
    if level == 2 and not certified:
        em.add(
            "level1_spot_network",
            Status.FAIL,
            f"Level 2 on a spot network needs lab-certified inverter-based equipment: {why}",
            total,
            limit,
            unit="kVA",
        )
        return
    em.add(
        "level1_spot_network",
        verdict(ok),
        f"Level {level}: spot-network DER {total:g} kVA; limit is {rule_text} = {limit:g} kVA",
        total,
        limit,
        unit="kVA",
    )


def _no_construction(app: Application, em: Emitter) -> None:
    need = None if app.network is None else app.network.construction_required
    em.add(
        "level1_no_construction",
        Status.NEEDS_REVIEW if need is None else verdict(not need),
        {
            None: "state whether the utility must build facilities for this DER "
            "(network.construction_required)",
            False: "no construction of utility facilities is required",
            True: "the utility must construct facilities to accommodate the DER",
        }[need],
    )


def pilot_options(rs: RuleSet) -> tuple[Option, ...]:
    """The two ways forward after a failed 20 kVA shared-secondary screen [1]_."""
    usd = float(rs.param("volt_watt_pilot", "contribution_usd"))
    curve = _pilot_curve(rs)
    points = ", ".join(f"{v:g} pu -> {p:g} %" for v, p in zip(curve.v_pu, curve.p_pct, strict=True))
    return (
        Option(
            id="upgrade",
            title="System upgrade (split the secondary / new service transformer)",
            detail=f"Ameren builds the upgrade; your cost contribution is capped at ${usd:g} "
            "(Part 466.90(c)); you connect when construction is complete.",
        ),
        Option(
            id="volt_watt_pilot",
            title="Volt/watt pilot (opt in, no upgrade)",
            detail=f"Enable the recommended volt/watt curve ({points}; end point assumed - confirm "
            f"against Ameren's Figure 3). You avoid the ${usd:g} contribution and connect without "
            "waiting for construction; you may also use it only while the upgrade is built. You "
            f"may opt out risk-free at any time after energization by paying the ${usd:g} "
            "contribution, and the upgrade is then built. Set options.volt_watt_pilot: opt_in "
            "(or temporary).",
        ),
    )


def _pilot_curve(rs: RuleSet) -> VoltWattCurve:
    curve_rs = load_ruleset(str(rs.param("volt_watt_pilot", "curve_ruleset")))
    rule = curve_rs.rule(str(rs.param("volt_watt_pilot", "curve_rule")))
    return VoltWattCurve(v_pu=tuple(rule.params["v_pu"]), p_pct=tuple(rule.params["p_pct"]))


def _shared_secondary(app: Application, rs: RuleSet, em: Emitter) -> bool | None:
    """Evaluate the 20 kVA screen; returns whether it failed (None when not evaluated)."""
    net = app.network
    limit = float(rs.param("level1_shared_secondary", "max_kva"))
    if net is None or net.shared_secondary is None:
        _need(
            em, "level1_shared_secondary", ["shared_secondary", "shared_secondary_existing_der_kva"]
        )
        return None
    if not net.shared_secondary:
        em.not_applicable("level1_shared_secondary", "the service does not share a secondary")
        return None
    if net.shared_secondary_existing_der_kva is None:
        _need(em, "level1_shared_secondary", ["shared_secondary_existing_der_kva"])
        return None
    total = net.shared_secondary_existing_der_kva + app.aggregate_generation_kva
    ok = at_most(total, limit)
    if ok:
        em.add(
            "level1_shared_secondary",
            Status.PASS,
            f"shared-secondary DER {total:g} kVA within {limit:g} kVA",
            total,
            limit,
            unit="kVA",
        )
        return False
    choice = app.options.volt_watt_pilot
    usd = float(rs.param("volt_watt_pilot", "contribution_usd"))
    if choice in {"opt_in", "temporary"}:
        how = (
            f"volt/watt instead of the upgrade (the ${usd:g} contribution avoided; opt out any "
            f"time after energization by paying the ${usd:g})"
            if choice == "opt_in"
            else f"volt/watt temporarily while the upgrade is built (contribution capped at "
            f"${usd:g}; the settings can be removed after construction)"
        )
        em.add(
            "level1_shared_secondary",
            Status.NEEDS_REVIEW,
            f"shared-secondary DER {total:g} kVA exceeds {limit:g} kVA; the applicant chose "
            f"{how}: see volt_watt_pilot for the curve check",
            total,
            limit,
            unit="kVA",
            options=pilot_options(rs),
        )
    else:
        em.add(
            "level1_shared_secondary",
            Status.FAIL,
            f"shared-secondary DER {total:g} kVA exceeds {limit:g} kVA (overvoltage risk). "
            f"Options: the system upgrade, or the volt/watt pilot (opt in, the ${usd:g} "
            "contribution avoided, opt out any time)",
            total,
            limit,
            unit="kVA",
            options=pilot_options(rs),
        )
    return True


def _pilot(app: Application, rs: RuleSet, em: Emitter, failed: bool | None) -> None:
    choice = app.options.volt_watt_pilot
    if not failed:
        em.not_applicable(
            "volt_watt_pilot", "offered only when the 20 kVA shared-secondary screen fails"
        )
        return
    if choice is None:
        em.add(
            "volt_watt_pilot",
            Status.NEEDS_REVIEW,
            "choose: the system upgrade or the volt/watt pilot (options.volt_watt_pilot)",
            options=pilot_options(rs),
        )
        return
    if choice == "opt_out":
        em.not_applicable("volt_watt_pilot", "the applicant chose the system upgrade")
        return
    curve = _pilot_curve(rs)
    v0 = float(rs.param("volt_watt_pilot", "start_v_pu"))
    p0 = float(rs.param("volt_watt_pilot", "start_p_pct"))
    tol = float(rs.param("volt_watt_pilot", "curve_tolerance"))
    inverters = [g for g in app.generators() if isinstance(g, PVResource | StorageResource)]
    problems: list[str] = []
    for g in inverters:
        vw = g.inverter.volt_watt
        if vw is None:
            problems.append(f"{g.id}: no volt/watt curve set (inverter.volt_watt)")
        elif abs(vw.v_pu[0] - v0) > tol or abs(vw.p_pct[0] - p0) > 100 * tol:
            problems.append(
                f"{g.id}: curve starts at {vw.v_pu[0]:g} pu / {vw.p_pct[0]:g} %, the pilot "
                f"curve at {v0:g} pu / {p0:g} %"
            )
        elif (
            len(vw.v_pu) != len(curve.v_pu)
            or any(abs(a - b) > tol for a, b in zip(vw.v_pu, curve.v_pu, strict=False))
            or any(abs(a - b) > 100 * tol for a, b in zip(vw.p_pct, curve.p_pct, strict=False))
        ):
            problems.append(f"{g.id}: end point differs from the recommended curve")
    if not inverters:
        problems.append("no inverter-based resource to carry the curve")
    hard = [p for p in problems if "end point" not in p]
    if hard:
        em.add("volt_watt_pilot", Status.FAIL, "; ".join(hard), choice, "seed curve")
    else:
        em.add(
            "volt_watt_pilot",
            Status.NEEDS_REVIEW,
            f"pilot {choice}: curve starts curtailing at {v0:g} pu as the seed states"
            + (f"; {'; '.join(problems)}" if problems else "")
            + f"; the end point ({curve.v_pu[-1]:g} pu -> {curve.p_pct[-1]:g} %) is assumed (the "
            "seed's Figure 3 is not in the "
            "public text): verify at the witness test",
            choice,
            "seed curve",
        )


def _center_tap(app: Application, rs: RuleSet, em: Emitter) -> None:
    net = app.network
    leg = app.poi.center_tap_leg
    limit = float(rs.param("level1_center_tap_imbalance", "max_pct_of_transformer"))
    if app.service.configuration.value != "single_phase_3w" or leg is None:
        em.not_applicable(
            "level1_center_tap_imbalance",
            "not a single-phase DER on the center tap of a 120/240 V service (poi.center_tap_leg)",
        )
        return
    new = sum((g.ac_kva or g.ac_kw) for g in app.resources if not isinstance(g, NewLoad))
    if net is None or net.service_transformer_kva is None:
        _need(
            em,
            "level1_center_tap_imbalance",
            [
                "service_transformer_kva",
                "center_tap_existing_der_kva_l1",
                "center_tap_existing_der_kva_l2",
            ],
        )
        return
    l1 = net.center_tap_existing_der_kva_l1 or 0.0
    l2 = net.center_tap_existing_der_kva_l2 or 0.0
    if leg == "L1":
        l1 += new
    elif leg == "L2":
        l2 += new
    pct = 100.0 * abs(l1 - l2) / net.service_transformer_kva
    ok = at_most(pct, limit)
    em.add(
        "level1_center_tap_imbalance",
        verdict(ok),
        f"240 V service imbalance {abs(l1 - l2):g} kVA (L1 {l1:g}, L2 {l2:g}) is {pct:.2f} % "
        f"of the {net.service_transformer_kva:g} kVA transformer (limit {limit:g} %)",
        pct,
        limit,
        unit="%",
    )


def _fault(app: Application, rs: RuleSet, em: Emitter) -> None:
    net = app.network
    limit = float(rs.param("level2_fault_contribution", "max_pct"))
    if net is None or net.der_fault_current_a is None or net.circuit_max_fault_current_a is None:
        _need(
            em, "level2_fault_contribution", ["der_fault_current_a", "circuit_max_fault_current_a"]
        )
    else:
        pct = 100.0 * net.der_fault_current_a / net.circuit_max_fault_current_a
        ok = at_most(pct, limit)
        em.add(
            "level2_fault_contribution",
            verdict(ok),
            f"DER fault contribution {net.der_fault_current_a:g} A is {pct:.2f} % of the circuit's "
            f"{net.circuit_max_fault_current_a:g} A maximum (limit {limit:g} %)",
            pct,
            limit,
            unit="%",
        )
    limit = float(rs.param("level2_interrupting_capability", "max_pct"))
    if (
        net is None
        or net.device_fault_current_a is None
        or net.device_interrupting_rating_a is None
    ):
        _need(
            em,
            "level2_interrupting_capability",
            ["device_fault_current_a", "device_interrupting_rating_a"],
        )
    else:
        pct = 100.0 * net.device_fault_current_a / net.device_interrupting_rating_a
        ok = at_most(pct, limit)
        em.add(
            "level2_interrupting_capability",
            verdict(ok),
            f"protective devices see {net.device_fault_current_a:g} A, {pct:.2f} % of their "
            f"{net.device_interrupting_rating_a:g} A interrupting capability (limit {limit:g} %)",
            pct,
            limit,
            unit="%",
        )
