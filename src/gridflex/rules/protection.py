"""Synchronous-generator interconnection protection checks (BGE CSR-6).

Evaluates an application's synchronous generators and :class:`ProtectionSettings` against a rule
set of checker ``sync_protection`` (built in: ``bge_csr6``). Disconnect requirements of the form
"disconnect within T when V falls below X" are met when some element of the right device picks
up at or beyond X (so it sees every voltage past X) and clears within T: the effective clearing
time just past X is the fastest such element's.

References
----------
.. [1] BGE, *Guide Specification CSR-6, Rev. 0* (January 2005),
   ``seeds/002_2ae50ee6bbb285a9.txt``, sections 2.5, 3.1-3.3, 4.2-4.4, 6.1-6.4.
"""

from __future__ import annotations

from typing import Any

from gridflex.application import Application, ProtectionSettings, RelayElement, SynchronousResource
from gridflex.rules.findings import Emitter, Finding, Status, at_least, at_most, tri, verdict
from gridflex.rules.ruleset import RuleSet

_TRIP_RULES = ("uv_fast", "uv_slow", "ov_slow", "ov_fast", "over_frequency", "under_frequency")


def applicable_generators(app: Application, rs: RuleSet) -> tuple[list[SynchronousResource], str]:
    """The synchronous generators the guide applies to, and a reason when there are none."""
    p = rs.rule("applicability").params
    volts = [float(v) for v in p["primary_voltages_ll_v"]]
    syncs = [r for r in app.resources if isinstance(r, SynchronousResource)]
    if not syncs:
        return [], "no synchronous generator in the application"
    on_primary = any(abs(app.service.voltage_ll_v - v) <= 0.01 * v for v in volts)
    if not on_primary:
        return [], (
            f"service at {app.service.voltage_ll_v:g} V is not a "
            + " or ".join(f"{v / 1000:g} kV" for v in volts)
            + " primary supply (2.5.1)"
        )
    kw_min = float(p["min_generator_kw_exclusive"])
    s_min = float(p["min_parallel_s_exclusive"])
    phases = int(p["phases"])
    gens = [
        g
        for g in syncs
        if g.phases == phases
        and g.ac_kw > kw_min
        and (g.max_parallel_s is None or g.max_parallel_s > s_min)
    ]
    if not gens:
        return [], (
            f"no {phases}-phase synchronous generator above {kw_min:g} kW that parallels for more "
            f"than {s_min:g} s (2.5.2)"
        )
    return gens, ""


def effective_clearing_cycles(
    elements: tuple[RelayElement, ...] | list[RelayElement],
    device: str,
    direction: str,
    threshold: float,
    frequency_hz: float,
) -> float | None:
    """Fastest clearing time (cycles) for a quantity just past ``threshold``.

    Under-elements see a value below ``threshold`` when their pickup is at or above it;
    over-elements when their pickup is at or below it. ``None`` when no element covers it.
    """
    best = covering_element(elements, device, direction, threshold, frequency_hz)
    return None if best is None else best[0]


def covering_element(
    elements: tuple[RelayElement, ...] | list[RelayElement],
    device: str,
    direction: str,
    threshold: float,
    frequency_hz: float,
) -> tuple[float, RelayElement] | None:
    """The fastest element that sees a quantity just past ``threshold``, with its time (cycles)."""
    best: tuple[float, RelayElement] | None = None
    for e in elements:
        if e.device != device:
            continue
        pickup = e.pickup_hz if device.startswith("81") else e.pickup_v
        t = e.clearing_cycles(frequency_hz)
        if pickup is None or t is None:
            continue
        covers = at_least(pickup, threshold) if direction == "under" else at_most(pickup, threshold)
        if covers and (best is None or t < best[0]):
            best = (t, e)
    return best


def check_sync_protection(app: Application, rs: RuleSet) -> list[Finding]:
    """Evaluate every rule of a ``sync_protection`` rule set for ``app``."""
    em = Emitter(rs)
    gens, why_not = applicable_generators(app, rs)
    if not gens:
        em.not_applicable("applicability", f"guide does not apply: {why_not}")
        for rule_id in rs.rules:
            if rule_id != "applicability" and rs.rules[rule_id].field is None:
                em.not_applicable(rule_id, "guide does not apply to this application")
        return em.findings
    biggest = max(gens, key=lambda g: g.ac_kw)
    em.add(
        "applicability",
        Status.PASS,
        f"applies: {', '.join(g.id for g in gens)} (three-phase synchronous, "
        f"{biggest.ac_kw:g} kW largest) on a {app.service.voltage_ll_v / 1000:g} kV primary "
        "supply, paralleling beyond 1 s",
        biggest.ac_kw,
        float(rs.param("applicability", "min_generator_kw_exclusive")),
        unit="kW",
    )
    freq = float(rs.param("nominal_frequency", "frequency_hz"))
    em.add(
        "nominal_frequency",
        Status.PASS,
        f"clearing times are evaluated in cycles of {freq:g} Hz",
        freq,
        freq,
        unit="Hz",
    )
    for g in gens:
        _generator(g, rs, em)
    _submittals(app, rs, em)
    prot = app.protection
    if prot is None or not prot.elements:
        for rule_id in (*_TRIP_RULES, "reclosing_coordination", "device_matrix"):
            em.add(
                rule_id,
                Status.FAIL,
                "no protective relay settings submitted: give protection.elements (6.3.1)",
            )
        prot = prot or ProtectionSettings()
    else:
        for rule_id in _TRIP_RULES:
            _trip(rule_id, prot, rs, em, freq)
        _reclosing(prot, rs, em, freq)
        _matrix(app, prot, rs, em)
    _export_and_special(app, prot, rs, em)
    _scheme(prot, em)
    _generator_metering(app, gens, rs, em)
    return em.findings


def _generator_metering(
    app: Application, gens: list[SynchronousResource], rs: RuleSet, em: Emitter
) -> None:
    gm = app.generator_metering
    lv_max = float(rs.param("revenue_metering", "low_voltage_max_v"))
    mv_min = float(rs.param("revenue_metering", "medium_voltage_min_v"))
    mv_max = float(rs.param("revenue_metering", "medium_voltage_max_v"))
    volts = max(g.terminal_voltage_ll_v or app.service.voltage_ll_v for g in gens)
    if gm is None:
        for rule_id in ("revenue_metering", "distribution_automation"):
            em.add(rule_id, Status.NEEDS_REVIEW, "no generator_metering section given")
    else:
        if at_most(volts, lv_max):
            em.add(
                "revenue_metering",
                tri(gm.ct_cabinet),
                f"low-voltage installation ({volts:g} V <= {lv_max:g} V): the customer furnishes "
                "a CT cabinet for BGE's CTs"
                + {
                    True: "; provided",
                    False: "; missing",
                    None: "; state generator_metering.ct_cabinet",
                }[gm.ct_cabinet],
                volts,
                lv_max,
                unit="V",
            )
        elif at_least(volts, mv_min) and at_most(volts, mv_max):
            em.add(
                "revenue_metering",
                tri(gm.metering_cubicle),
                f"medium-voltage installation ({volts:g} V): a standard switchgear metering "
                "cubicle (CSR-1 / CSR-2) for BGE's instrument transformers"
                + {
                    True: "; provided",
                    False: "; missing",
                    None: "; state generator_metering.metering_cubicle",
                }[gm.metering_cubicle],
                volts,
                f"{mv_min:g}-{mv_max:g}",
                unit="V",
            )
        else:
            em.add(
                "revenue_metering",
                Status.NEEDS_REVIEW,
                f"{volts:g} V is neither low voltage (<= {lv_max:g} V) nor "
                f"{mv_min:g}-{mv_max:g} V: BGE decides the metering enclosure",
                volts,
                None,
                unit="V",
            )
        need_a = float(rs.param("distribution_automation", "circuit_a"))
        need_v = float(rs.param("distribution_automation", "circuit_v"))
        problems: list[str] = []
        unknown: list[str] = []
        if gm.da_circuit_a is None or gm.da_circuit_v is None:
            unknown.append("the dedicated DA circuit (da_circuit_a, da_circuit_v)")
        else:
            if not at_least(gm.da_circuit_a, need_a):
                problems.append(f"DA circuit {gm.da_circuit_a:g} A is below {need_a:g} A")
            if abs(gm.da_circuit_v - need_v) > 1e-9:
                problems.append(f"DA circuit must be {need_v:g} VAC (given {gm.da_circuit_v:g} V)")
        for flag, what in (
            (gm.dedicated_phone_line, "a dedicated phone line to the generator metering"),
            (gm.breaker_aux_contacts, "breaker auxiliary contacts showing paralleled generators"),
        ):
            if flag is False:
                problems.append(f"{what} is required")
            elif flag is None:
                unknown.append(what)
        status = Status.FAIL if problems else Status.NEEDS_REVIEW if unknown else Status.PASS
        em.add(
            "distribution_automation",
            status,
            "; ".join(problems + [f"state {u}" for u in unknown])
            or f"dedicated {need_a:g} A {need_v:g} VAC circuit, phone line and auxiliary contacts "
            "provided",
            gm.da_circuit_a,
            need_a,
            unit="A",
        )
    if gm is None or not gm.automatic_transfer:
        em.not_applicable("automatic_transfer_blocking", "no automatic-transfer switchgear")
    else:
        em.add(
            "automatic_transfer_blocking",
            tri(gm.automatic_transfer_blocked),
            {
                True: "automatic transfer is blocked while generators are paralleled",
                False: "automatic transfer must be blocked while generators are paralleled",
                None: "state whether automatic transfer is blocked while paralleled",
            }[gm.automatic_transfer_blocked],
        )


def _generator(g: SynchronousResource, rs: RuleSet, em: Emitter) -> None:
    tag = f"[{g.id}] "
    lag = float(rs.param("power_factor", "lagging_pf"))
    lead = float(rs.param("power_factor", "leading_pf"))
    em.add(
        "power_factor",
        tri(g.automatic_voltage_regulator),
        tag
        + {
            True: "automatic voltage regulator provided",
            False: "an automatic voltage regulator is required and must stay in service",
            None: "state whether an automatic voltage regulator is provided",
        }[g.automatic_voltage_regulator],
        part="avr",
    )
    for part, cap, need, word in (
        ("lagging", g.pf_lagging_capability, lag, "lagging"),
        ("leading", g.pf_leading_capability, lead, "leading"),
    ):
        if cap is None:
            em.add(
                "power_factor",
                Status.NEEDS_REVIEW,
                f"{tag}{word} power-factor capability not given",
                None,
                need,
                part=part,
            )
            continue
        ok = at_most(cap, need)
        em.add(
            "power_factor",
            verdict(ok),
            f"{tag}regulates down to {cap:g} {word}; must reach {need:g} {word}",
            cap,
            need,
            part=part,
        )
    vmin = float(rs.param("regulated_voltage", "min_v"))
    vmax = float(rs.param("regulated_voltage", "max_v"))
    lo, hi = g.regulated_voltage_min_v, g.regulated_voltage_max_v
    if lo is None or hi is None:
        em.add(
            "regulated_voltage",
            Status.NEEDS_REVIEW,
            f"{tag}regulated voltage range not given (120 V base)",
            None,
            f"{vmin:g}-{vmax:g}",
            unit="V",
        )
    else:
        ok = at_least(lo, vmin) and at_most(hi, vmax)
        em.add(
            "regulated_voltage",
            verdict(ok),
            f"{tag}regulates {lo:g}-{hi:g} V on a 120 V base; required {vmin:g}-{vmax:g} V",
            f"{lo:g}-{hi:g}",
            f"{vmin:g}-{vmax:g}",
            unit="V",
        )
    for rule_id, value, what in (
        ("flicker", g.flicker_pct, "voltage flicker"),
        ("thd", g.thd_pct, "voltage THD at the terminals"),
    ):
        limit = float(rs.param(rule_id, "max_pct"))
        if value is None:
            em.add(rule_id, Status.NEEDS_REVIEW, f"{tag}{what} not given", None, limit, unit="%")
        else:
            ok = at_most(value, limit)
            em.add(
                rule_id,
                verdict(ok),
                f"{tag}{what} {value:g} % " + ("within" if ok else "exceeds") + f" {limit:g} %",
                value,
                limit,
                unit="%",
            )
    sync_ok: bool | None
    if g.synchronizing is None:
        sync_ok = None
    else:
        sync_ok = g.synchronizing != "none" and g.sync_relay_supervision is not False
        if sync_ok and g.sync_relay_supervision is None:
            sync_ok = None
    em.add(
        "synchronizing",
        tri(sync_ok),
        tag
        + {
            True: f"{g.synchronizing} synchronizing with relay supervision",
            False: "synchronizing facilities with relay supervision are required",
            None: "state the synchronizing equipment and its relay supervision",
        }[sync_ok],
    )


def _submittals(app: Application, rs: RuleSet, em: Emitter) -> None:
    need: list[dict[str, Any]] = list(rs.param("submittals", "required"))
    if app.exports:
        need += list(rs.param("submittals", "required_for_export"))
    missing = [i for i in need if i["id"] not in app.submittals]
    em.add(
        "submittals",
        verdict(not missing),
        "all required documents submitted"
        if not missing
        else "missing: " + "; ".join(f"[{i['id']}] {i['text']}" for i in missing),
        float(len(need) - len(missing)),
        float(len(need)),
        unit="documents",
    )


def _trip(rule_id: str, prot: ProtectionSettings, rs: RuleSet, em: Emitter, freq: float) -> None:
    p = rs.rule(rule_id).params
    device, direction = str(p["device"]), str(p["direction"])
    if "threshold_hz" in p:
        threshold, unit_q = float(p["threshold_hz"]), "Hz"
    else:
        threshold, unit_q = float(p["threshold_v"]), "V"
    if "max_cycles" in p:
        limit, unit_t, scale = float(p["max_cycles"]), "cycles", 1.0
    else:
        limit, unit_t, scale = float(p["max_s"]), "s", 1.0 / freq
    word = "below" if direction == "under" else "above"
    best = covering_element(prot.elements, device, direction, threshold, freq)
    if best is None:
        have = [e for e in prot.elements if e.device == device]
        untimed = any(e.clearing_cycles(freq) is None for e in have)
        em.add(
            rule_id,
            Status.NEEDS_REVIEW if untimed else Status.FAIL,
            f"no device {device} element picks up {word} {threshold:g} {unit_q} with a clearing "
            f"time: set one at {'>=' if direction == 'under' else '<='} {threshold:g} {unit_q} "
            f"clearing within {limit:g} {unit_t}",
            None,
            limit,
            unit=unit_t,
        )
        return
    t, element = best
    value = t * scale
    ok = at_most(value, limit)
    pickup = element.pickup_hz if device.startswith("81") else element.pickup_v
    name = f"{device} ({element.label})" if element.label else device
    em.add(
        rule_id,
        verdict(ok),
        f"{word} {threshold:g} {unit_q}: element {name} set at {pickup:g} {unit_q} clears in "
        f"{value:g} {unit_t}; "
        f"required within {limit:g} {unit_t}",
        value,
        limit,
        unit=unit_t,
    )


def _reclosing(prot: ProtectionSettings, rs: RuleSet, em: Emitter, freq: float) -> None:
    reclose = float(rs.param("reclosing_coordination", "reclose_cycles"))

    def fastest(device: str) -> float | None:
        ts = [
            t
            for e in prot.elements
            if e.device == device and (t := e.clearing_cycles(freq)) is not None
        ]
        return min(ts) if ts else None

    f_over, f_under, dtt = fastest("81O"), fastest("81U"), fastest("DTT")
    candidates = []
    if f_over is not None and f_under is not None:
        candidates.append((max(f_over, f_under), "slower of 81O/81U"))
    if dtt is not None:
        candidates.append((dtt, "transfer trip"))
    if not candidates:
        em.add(
            "reclosing_coordination",
            Status.FAIL,
            "no timed 81O and 81U elements (nor transfer trip) to separate before reclosing",
            None,
            reclose,
            unit="cycles",
        )
        return
    relay, how = min(candidates)
    brk = prot.breaker_operating_time_cycles
    if brk is None:
        em.add(
            "reclosing_coordination",
            Status.NEEDS_REVIEW,
            f"relay time {relay:g} cycles ({how}); give protection.breaker_operating_time_cycles "
            f"to check separation before the {reclose:g}-cycle reclose",
            relay,
            reclose,
            unit="cycles",
        )
        return
    total = relay + brk
    ok = total < reclose - 1e-9
    em.add(
        "reclosing_coordination",
        verdict(ok),
        f"separation in {total:g} cycles ({how} {relay:g} + breaker {brk:g}) "
        + ("before" if ok else "not before")
        + f" BGE's {reclose:g}-cycle reclose without synchronism check",
        total,
        reclose,
        unit="cycles",
    )


def _matrix(app: Application, prot: ProtectionSettings, rs: RuleSet, em: Emitter) -> None:
    have = prot.devices()
    groups = [list(g) for g in rs.param("device_matrix", "required")]
    if not app.exports:
        groups += [list(g) for g in rs.param("device_matrix", "required_without_export")]
    missing = ["/".join(g) for g in groups if not have.intersection(g)]
    em.add(
        "device_matrix",
        verdict(not missing),
        "required functions present" if not missing else f"missing device(s): {', '.join(missing)}",
        ", ".join(sorted(have)),
        ", ".join("/".join(g) for g in groups),
    )


def _export_and_special(
    app: Application, prot: ProtectionSettings, rs: RuleSet, em: Emitter
) -> None:
    have = prot.devices()
    refused = str(rs.param("underpower_on_export", "refused_device"))
    if app.exports:
        em.add(
            "underpower_on_export",
            verdict(refused not in have),
            f"export installation: device {refused} "
            + ("is not used" if refused not in have else "cannot be used; remove it"),
        )
        dtt = str(rs.param("transfer_trip_export", "device"))
        em.add(
            "transfer_trip_export",
            verdict(dtt in have),
            "export installation: transfer trip of the interconnection breaker "
            + ("provided" if dtt in have else "over a communication channel is required"),
        )
    else:
        em.not_applicable("underpower_on_export", "non-exporting installation")
        em.not_applicable("transfer_trip_export", "non-exporting installation")

    approach = float(rs.param("special_protection", "approach_ratio"))
    devices = [str(d) for d in rs.param("special_protection", "devices")]
    load = app.existing_load
    load_kw = None if load is None else (load.connected_kw or load.peak_kw or None)
    if load_kw is None:
        em.add(
            "special_protection",
            Status.NEEDS_REVIEW,
            "connected load not given (existing_load.connected_kw): cannot tell whether "
            "generation approaches load",
            None,
            approach,
        )
        return
    ratio = app.aggregate_generation_kw / load_kw
    if load is not None and not load.connected_kw:
        em_note = " (peak load used: give existing_load.connected_kw)"
    else:
        em_note = ""
    present = [d for d in devices if d in have]
    if ratio < approach - 1e-9:
        em.add(
            "special_protection",
            Status.PASS,
            f"generation is {ratio:.0%} of connected load{em_note}, below the {approach:.0%} "
            "'approaches load' assumption: special protection not indicated",
            ratio,
            approach,
        )
    elif present:
        em.add(
            "special_protection",
            Status.PASS,
            f"generation is {ratio:.0%} of connected load{em_note}; {', '.join(present)} provided",
            ratio,
            approach,
        )
    else:
        em.add(
            "special_protection",
            Status.NEEDS_REVIEW,
            f"generation is {ratio:.0%} of connected load{em_note} (approaches or exceeds it): "
            "BGE may "
            "require direct transfer trip (DTT) and/or reverse power (32)",
            ratio,
            approach,
        )


def _scheme(prot: ProtectionSettings, em: Emitter) -> None:
    em.add(
        "fail_safe",
        tri(prot.fails_safe_on_control_power_loss),
        {
            True: "protection failure and loss of control power open the interrupting device",
            False: "failure of protection or control power must open the interrupting device",
            None: "state whether protection failure / loss of control power opens the device",
        }[prot.fails_safe_on_control_power_loss],
    )
    flags = (prot.single_contingency_redundancy, prot.relay_failure_alarm_monitored)
    if False in flags:
        status = Status.FAIL
    elif None in flags:
        status = Status.NEEDS_REVIEW
    else:
        status = Status.PASS
    power = prot.control_power or "not stated"
    em.add(
        "single_contingency",
        status,
        f"single-contingency redundancy: {_yn(flags[0])}; relay failure alarms monitored: "
        f"{_yn(flags[1])}; control power: {power}"
        + (
            ""
            if prot.control_power == "dc_battery"
            else " (a DC battery/charger is the most reliable)"
        ),
    )


def _yn(flag: bool | None) -> str:
    return {True: "yes", False: "no", None: "not stated"}[flag]
