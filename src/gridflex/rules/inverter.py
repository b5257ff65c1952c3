"""IEEE 1547-2018 settings checks for inverter-based DER.

Evaluates a rule set of checker ``ieee1547_der`` (built in: ``ieee1547_2018``): submitted
volt/var and volt/watt curves against the defaults, and submitted trip settings against the
allowable ranges of the resource's abnormal operating performance category. No submitted setting
means the default applies.

References
----------
.. [1] IEEE Std 1547-2018, clauses 5.3.3 (Table 8), 5.4.2 (Table 10), 6.4.1 and 6.5.1.
.. [2] seeds/001_9847d8232b845ab9.txt, "Volt/Watt" - "Proposed Path Forward", Figure 3.
"""

from __future__ import annotations

from gridflex.application import (
    Application,
    InverterSettings,
    OtherGeneration,
    PVResource,
    StorageResource,
)
from gridflex.rules.findings import Emitter, Finding, Status, at_least, at_most, verdict
from gridflex.rules.ruleset import RuleSet

_TOL = 1e-6


def inverters(app: Application) -> list[tuple[str, InverterSettings]]:
    """(resource id, settings) of every inverter-based resource (defaults where none given)."""
    out: list[tuple[str, InverterSettings]] = []
    for g in app.generators():
        if isinstance(g, PVResource | StorageResource):
            out.append((g.id, g.inverter))
        elif isinstance(g, OtherGeneration) and g.inverter_based:
            out.append((g.id, g.inverter or InverterSettings()))
    return out


def check_ieee1547_der(app: Application, rs: RuleSet) -> list[Finding]:
    """Evaluate every rule of an ``ieee1547_der`` rule set for ``app``."""
    em = Emitter(rs)
    invs = inverters(app)
    if not invs:
        for rule_id in rs.rules:
            if rs.rules[rule_id].field is None:
                em.not_applicable(rule_id, "no inverter-based resource in the application")
        return em.findings

    for cat in ("a", "b"):
        rule_id = f"volt_var_default_cat_{cat}"
        if rule_id not in rs.rules:
            continue
        mine = [(rid, s) for rid, s in invs if s.normal_category.lower() == cat]
        if not mine:
            em.not_applicable(rule_id, f"no Category {cat.upper()} inverter")
            continue
        dv = tuple(float(x) for x in rs.param(rule_id, "v_pu"))
        dq = tuple(float(x) for x in rs.param(rule_id, "q_pct"))
        for rid, s in mine:
            if s.volt_var is None:
                em.add(
                    rule_id,
                    Status.PASS,
                    f"[{rid}] no volt/var curve submitted: the Category {cat.upper()} "
                    "default applies",
                    part=rid,
                )
            elif _same(s.volt_var.v_pu, dv) and _same(s.volt_var.q_pct, dq):
                em.add(
                    rule_id,
                    Status.PASS,
                    f"[{rid}] volt/var curve equals the Category {cat.upper()} default",
                    part=rid,
                )
            else:
                em.add(
                    rule_id,
                    Status.NEEDS_REVIEW,
                    f"[{rid}] non-default volt/var curve (V {list(s.volt_var.v_pu)}, Q % "
                    f"{list(s.volt_var.q_pct)}): the utility must specify or approve it",
                    str(list(s.volt_var.v_pu)),
                    str(list(dv)),
                    part=rid,
                )

    dv = tuple(float(x) for x in rs.param("volt_watt_default", "v_pu"))
    dp = tuple(float(x) for x in rs.param("volt_watt_default", "p_pct"))
    v1_lo, v1_hi = (float(x) for x in rs.param("volt_watt_default", "v1_range_pu"))
    v2_max = float(rs.param("volt_watt_default", "v2_max_pu"))
    pilot = app.options.volt_watt_pilot in {"opt_in", "temporary"}
    for rid, s in invs:
        vw = s.volt_watt
        if vw is None:
            em.add(
                "volt_watt_default",
                Status.PASS,
                f"[{rid}] volt/watt not enabled (disabled by default)",
                part=rid,
            )
            continue
        if _same(vw.v_pu, dv) and _same(vw.p_pct, dp):
            em.add(
                "volt_watt_default",
                Status.PASS,
                f"[{rid}] volt/watt curve equals the Table 10 default",
                vw.v_pu[0],
                dv[0],
                part=rid,
                unit="pu",
            )
            continue
        ok = (
            at_least(vw.v_pu[0], v1_lo)
            and at_most(vw.v_pu[0], v1_hi)
            and at_most(vw.v_pu[-1], v2_max)
        )
        em.add(
            "volt_watt_default",
            Status.NEEDS_REVIEW if ok else Status.FAIL,
            f"[{rid}] volt/watt V1 = {vw.v_pu[0]:g} pu (range {v1_lo:g}-{v1_hi:g}), V2 = "
            f"{vw.v_pu[-1]:g} pu (max {v2_max:g})"
            + ("; non-default but within range" if ok else "; outside the allowable range"),
            vw.v_pu[0],
            f"{v1_lo:g}-{v1_hi:g}",
            part=rid,
            unit="pu",
        )

    if not pilot:
        em.not_applicable(
            "seed_volt_watt_curve",
            "applies when the applicant opts in to the Ameren Level 1 volt/watt pilot "
            "(options.volt_watt_pilot)",
        )
    else:
        sv = tuple(float(x) for x in rs.param("seed_volt_watt_curve", "v_pu"))
        sp = tuple(float(x) for x in rs.param("seed_volt_watt_curve", "p_pct"))
        for rid, s in invs:
            vw = s.volt_watt
            if vw is None:
                em.add(
                    "seed_volt_watt_curve",
                    Status.FAIL,
                    f"[{rid}] pilot chosen but no volt/watt curve set",
                    None,
                    sv[0],
                    part=rid,
                    unit="pu",
                )
            elif abs(vw.v_pu[0] - sv[0]) > _TOL or abs(vw.p_pct[0] - sp[0]) > _TOL:
                em.add(
                    "seed_volt_watt_curve",
                    Status.FAIL,
                    f"[{rid}] curve must start curtailing at {sv[0]:g} pu ({sp[0]:g} %)",
                    vw.v_pu[0],
                    sv[0],
                    part=rid,
                    unit="pu",
                )
            else:
                same_end = _same(vw.v_pu, sv) and _same(vw.p_pct, sp)
                em.add(
                    "seed_volt_watt_curve",
                    Status.NEEDS_REVIEW,
                    f"[{rid}] starts at {sv[0]:g} pu as the seed states; end point "
                    + ("matches" if same_end else "differs from")
                    + f" the assumed {sv[-1]:g} pu -> {sp[-1]:g} % (not in the public text)",
                    vw.v_pu[0],
                    sv[0],
                    part=rid,
                    unit="pu",
                )

    for cat in ("i", "ii", "iii"):
        rule_id = f"voltage_trip_cat_{cat}"
        if rule_id not in rs.rules:
            continue
        mine = [(rid, s) for rid, s in invs if s.abnormal_category.lower() == cat]
        if not mine:
            em.not_applicable(rule_id, f"no Category {cat.upper()} inverter")
            continue
        table = rs.rule(rule_id).params
        for rid, s in mine:
            _trips(
                em,
                rule_id,
                rid,
                s,
                table,
                "pickup_pu",
                "v_range_pu",
                "pu",
                {"OV1", "OV2", "UV1", "UV2"},
            )
    table = rs.rule("frequency_trip").params
    for rid, s in invs:
        _trips(
            em,
            "frequency_trip",
            rid,
            s,
            table,
            "pickup_hz",
            "f_range_hz",
            "Hz",
            {"OF1", "OF2", "UF1", "UF2"},
        )
    return em.findings


def _trips(
    em: Emitter,
    rule_id: str,
    rid: str,
    s: InverterSettings,
    table: dict[str, dict[str, list[float]]],
    attr: str,
    range_key: str,
    unit: str,
    names: set[str],
) -> None:
    given = [t for t in s.trips if t.name in names]
    if not given:
        em.add(rule_id, Status.PASS, f"[{rid}] no settings submitted: the defaults apply", part=rid)
        return
    problems = []
    for t in given:
        row = table[t.name]
        lo, hi = (float(x) for x in row[range_key])
        tlo, thi = (float(x) for x in row["t_range_s"])
        pickup = float(getattr(t, attr))
        if not (at_least(pickup, lo) and at_most(pickup, hi)):
            problems.append(f"{t.name} pickup {pickup:g} {unit} outside {lo:g}-{hi:g}")
        if not (at_least(t.clearing_time_s, tlo) and at_most(t.clearing_time_s, thi)):
            problems.append(
                f"{t.name} clearing time {t.clearing_time_s:g} s outside {tlo:g}-{thi:g} s"
            )
    em.add(
        rule_id,
        verdict(not problems),
        f"[{rid}] "
        + (
            "; ".join(problems)
            if problems
            else f"{len(given)} submitted setting(s) within the allowable ranges"
        ),
        part=rid,
    )


def _same(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= _TOL for x, y in zip(a, b, strict=True))
