"""Inverter functions in the loop: volt/var and volt/watt settings for PV.

Defaults are IEEE 1547-2018 Category B (volt/var, Table 8) and the volt/watt curve the seed
recommends (``001`` seed: curtailment starts at 1.06 pu; its Figure 3 is not in the text, so the
end point 1.10 pu -> 20 % of rated power, IEEE 1547-2018 Table 10's default, is an assumption).
The curves come from ``gridflex.rules.defaults`` (YAML rule sets with citations); this module
holds no thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass

from gridflex.terms.model import VoltWattCurve


@dataclass(frozen=True)
class InverterSettings:
    """Which inverter functions act during a simulation and with which curves.

    Parameters
    ----------
    volt_watt:
        Enable volt/watt (active-power limit vs the PV terminal voltage, % of rated kVA).
    volt_var:
        Enable volt/var (reactive power vs voltage, % of rated kVA, injection positive).
    volt_watt_curve:
        ``None`` = the seed's recommended curve (``gridflex.rules.defaults.seed_volt_watt_curve``).
    volt_var_category:
        IEEE 1547-2018 category for the default volt/var curve ("A" or "B").
    """

    volt_watt: bool = True
    volt_var: bool = False
    volt_watt_curve: VoltWattCurve | None = None
    volt_var_category: str = "B"

    def resolved_volt_watt_curve(self) -> VoltWattCurve:
        """The volt/watt curve in force (the seed curve unless one is given)."""
        if self.volt_watt_curve is not None:
            return self.volt_watt_curve
        from gridflex.rules.defaults import seed_volt_watt_curve

        return seed_volt_watt_curve()
