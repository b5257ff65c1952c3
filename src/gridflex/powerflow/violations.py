"""Operating-limit violations over time-series result arrays.

Pure functions over ``(T, N)`` arrays return one tidy table with the columns of
``violations.csv`` (the result-file contract, see ``docs/sim.md``):

``time`` (UTC), ``element`` (node ``bus.phase`` or branch ``class.name``), ``kind`` (one of
:data:`VIOLATION_KINDS`), ``value``, ``limit``.

The default limits (ANSI C84.1 Range A, 100 % of the normal and emergency ratings, no reverse
power) live in ``data/limits_ansi_c84_1.yaml`` with their citations, never in code.

References
----------
.. [1] ANSI C84.1-2020, *American National Standard for Electric Power Systems and Equipment -
   Voltage Ratings (60 Hz)*, Table 1, Range A.
.. [2] Ameren Illinois, *Flexible Interconnection and DER Orchestration Report, Phase 1*
   (``001_9847d8232b845ab9.txt``), "Flexible Interconnection Impacts on Distribution Services".
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd
import yaml

from gridflex.errors import InputError
from gridflex.powerflow.result import ValueArray, value_array

#: The ``kind`` values of ``violations.csv``, in the order rows are sorted within a time step.
VIOLATION_KINDS: tuple[str, ...] = (
    "undervoltage",
    "overvoltage",
    "thermal_normal",
    "thermal_emergency",
    "reverse_power",
)

#: Columns of ``violations.csv``.
VIOLATION_COLUMNS: tuple[str, ...] = ("time", "element", "kind", "value", "limit")

DEFAULT_LIMITS_FILE = "limits_ansi_c84_1.yaml"

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Limits:
    """Operating limits used to flag violations.

    Attributes
    ----------
    undervoltage_pu, overvoltage_pu:
        Node-voltage band in per unit of each node's base (ANSI C84.1 Range A by default [1]_).
    thermal_normal_pct, thermal_emergency_pct:
        Loading limits in percent of the element's normal and emergency rating.
    reverse_min_p_kw:
        Active power into the substation source / a regulator below which flow counts as reverse.
    name, sources:
        Name of the limit set and the citation of each group (for reports).
    """

    undervoltage_pu: float
    overvoltage_pu: float
    thermal_normal_pct: float
    thermal_emergency_pct: float
    reverse_min_p_kw: float
    name: str = "custom"
    sources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 < self.undervoltage_pu < self.overvoltage_pu:
            raise InputError(
                f"voltage limits undervoltage_pu={self.undervoltage_pu} and overvoltage_pu="
                f"{self.overvoltage_pu} are not an increasing pair of positive numbers",
                "give 0 < undervoltage_pu < overvoltage_pu (e.g. 0.95 and 1.05)",
            )
        for name in ("thermal_normal_pct", "thermal_emergency_pct"):
            if not getattr(self, name) > 0:
                raise InputError(
                    f"limit {name}={getattr(self, name)} must be positive",
                    "give a loading limit in percent of the rating (e.g. 100)",
                )


def _require(mapping: Any, key: str, where: str) -> Any:
    if not isinstance(mapping, dict) or key not in mapping:
        raise InputError(f"{where}: missing field '{key}'", f"add '{key}' to the limits file")
    return mapping[key]


def load_limits(path: str | Path | None = None) -> Limits:
    """Read a limits file (YAML); without a path, the packaged ANSI C84.1 Range A default.

    Parameters
    ----------
    path:
        A YAML file with ``voltage.undervoltage_pu``, ``voltage.overvoltage_pu``,
        ``thermal.normal_pct``, ``thermal.emergency_pct``, ``reverse_power.min_p_kw``, each group
        with a ``source``.

    Returns
    -------
    Limits
    """
    if path is None:
        text = (
            resources.files("gridflex.powerflow")
            .joinpath("data", DEFAULT_LIMITS_FILE)
            .read_text(encoding="utf-8")
        )
        where = f"gridflex/powerflow/data/{DEFAULT_LIMITS_FILE}"
    else:
        p = Path(path)
        if not p.is_file():
            raise InputError(f"limits file {p} does not exist", "give the path of a YAML file")
        text = p.read_text(encoding="utf-8")
        where = str(p)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{where}: not valid YAML ({exc})", "correct the YAML syntax") from exc
    voltage = _require(data, "voltage", where)
    thermal = _require(data, "thermal", where)
    reverse = _require(data, "reverse_power", where)
    try:
        return Limits(
            undervoltage_pu=float(_require(voltage, "undervoltage_pu", f"{where}: voltage")),
            overvoltage_pu=float(_require(voltage, "overvoltage_pu", f"{where}: voltage")),
            thermal_normal_pct=float(_require(thermal, "normal_pct", f"{where}: thermal")),
            thermal_emergency_pct=float(_require(thermal, "emergency_pct", f"{where}: thermal")),
            reverse_min_p_kw=float(_require(reverse, "min_p_kw", f"{where}: reverse_power")),
            name=str(data.get("name", Path(where).stem)),
            sources=tuple(str(g.get("source", "")) for g in (voltage, thermal, reverse)),
        )
    except (TypeError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{where}: a limit is not a number ({exc})", "give numbers") from exc


def _as_time_index(time: Sequence[Any] | pd.DatetimeIndex | npt.NDArray[Any]) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex(time)  # type: ignore[arg-type]
    if idx.tz is None:
        raise InputError(
            "time stamps of a result have no time zone",
            "pass timezone-aware UTC times (gridflex keeps time in UTC inside)",
        )
    return idx.tz_convert("UTC")


@dataclass
class _Part:
    """Violations of one kind as integer codes (cheap to build, merge and sort)."""

    t_idx: npt.NDArray[np.intp]
    e_idx: npt.NDArray[np.intp]  # into the part's own names
    names: Sequence[str]
    kind: str
    value: FloatArray
    limit: FloatArray


@dataclass
class ViolationArrays:
    """Violation rows as integer codes, in file order (time, then kind and element order).

    What a writer needs without building a row of strings: ``time`` (the rows' UTC time
    stamps), ``element_code`` into ``elements``, ``kind_code`` into ``kinds``, ``value`` and
    ``limit``.
    """

    time: pd.DatetimeIndex
    element_code: npt.NDArray[np.intp]
    elements: Sequence[str]
    kind_code: npt.NDArray[np.intp]
    kinds: Sequence[str]
    value: FloatArray
    limit: FloatArray

    def __len__(self) -> int:
        return len(self.element_code)

    @classmethod
    def from_frame(cls, table: pd.DataFrame) -> ViolationArrays:
        """The rows of a ``violations.csv`` table (names as strings or categoricals)."""
        e_code, elements = pd.factorize(table["element"], sort=False)
        k_code, kinds = pd.factorize(table["kind"], sort=False)
        return cls(
            time=pd.DatetimeIndex(table["time"]),
            element_code=e_code,
            elements=[str(x) for x in elements],
            kind_code=k_code,
            kinds=[str(x) for x in kinds],
            value=table["value"].to_numpy(dtype=np.float64),
            limit=table["limit"].to_numpy(dtype=np.float64),
        )

    def frame(self) -> pd.DataFrame:
        """The rows as the ``violations.csv`` table (``element`` and ``kind`` categoricals)."""
        return pd.DataFrame(
            {
                "time": self.time,
                "element": pd.Categorical.from_codes(
                    self.element_code,  # type: ignore[arg-type]  # pandas-stubs: ndarray codes
                    categories=pd.Index(self.elements),
                ),
                "kind": pd.Categorical.from_codes(
                    self.kind_code,  # type: ignore[arg-type]
                    categories=pd.Index(self.kinds),
                ),
                "value": self.value,
                "limit": self.limit,
            }
        )


def _merge(
    time: pd.DatetimeIndex,
    parts: Sequence[_Part],
    names_seen: dict[tuple[str, ...], tuple[list[str], npt.NDArray[np.intp]]] | None = None,
) -> ViolationArrays:
    """The parts' rows ordered by time, then part order, then element order.

    Each part is already ordered by (time, element), so a stable sort on time alone gives the
    full order. Element codes index the sorted unique names of all parts; ``names_seen`` keeps
    them between calls on the same names (the slices of one result: 13,400 names on the
    8500-node feeder, sorted once instead of once per slice).
    """
    names: list[str] = []
    offsets = []
    for part in parts:
        offsets.append(len(names))
        names.extend(part.names)
    t_idx = np.concatenate([p.t_idx for p in parts]) if parts else np.zeros(0, dtype=np.intp)
    e_code = (
        np.concatenate([p.e_idx + off for p, off in zip(parts, offsets, strict=True)])
        if parts
        else np.zeros(0, dtype=np.intp)
    )
    k_code = (
        np.concatenate([np.full(len(p.t_idx), VIOLATION_KINDS.index(p.kind)) for p in parts])
        if parts
        else np.zeros(0, dtype=np.intp)
    )
    value = np.concatenate([p.value for p in parts]) if parts else np.zeros(0)
    limit = np.concatenate([p.limit for p in parts]) if parts else np.zeros(0)
    nonempty = [p for p in parts if len(p.t_idx)]
    # one part is already in time order; several are merged by a stable sort on time (16-bit
    # keys where the slice allows: NumPy sorts those by radix, 4x faster than merge sort here)
    if len(nonempty) > 1:
        key = t_idx.astype(np.uint16) if len(time) <= 1 << 16 else t_idx
        order = np.argsort(key, kind="stable")
    else:
        order = np.arange(len(t_idx))
    # element categories are unique names; a name used by two parts (unlikely) keeps one code
    seen_key = tuple(names)
    seen = names_seen.get(seen_key) if names_seen is not None else None
    if seen is None:
        uniq, inverse = np.unique(np.asarray(names, dtype=object), return_inverse=True)
        seen = ([str(x) for x in uniq], inverse)
        if names_seen is not None:
            names_seen.clear()
            names_seen[seen_key] = seen
    elements, inverse = seen
    codes = inverse[e_code[order]] if len(names) else e_code
    return ViolationArrays(
        time=time[t_idx[order]],
        element_code=codes,
        elements=elements,
        kind_code=k_code[order],
        kinds=VIOLATION_KINDS,
        value=value[order],
        limit=limit[order],
    )


def _table(time: pd.DatetimeIndex, parts: Sequence[_Part]) -> pd.DataFrame:
    """One DataFrame from parts (see :func:`_merge`); ``element`` and ``kind`` are categoricals
    (millions of rows stay cheap)."""
    return _merge(time, parts).frame()


def _check_shape(arr: npt.ArrayLike, n_time: int, names: Sequence[str], what: str) -> ValueArray:
    a = value_array(arr)  # float32 results stay float32 (no year-long float64 copy)
    if a.ndim == 1:
        a = a[:, None]
    if a.shape != (n_time, len(names)):
        raise InputError(
            f"{what} has shape {a.shape}, expected (steps, elements) = ({n_time}, {len(names)})",
            "pass one row per time step and one column per named element",
        )
    return a


def empty_violations() -> pd.DataFrame:
    """An empty table with the ``violations.csv`` columns and dtypes."""
    return pd.DataFrame(
        {
            "time": pd.DatetimeIndex([], tz="UTC"),
            "element": pd.Series([], dtype=object),
            "kind": pd.Categorical([], categories=list(VIOLATION_KINDS)),
            "value": pd.Series([], dtype=np.float64),
            "limit": pd.Series([], dtype=np.float64),
        }
    )


def voltage_violations(
    time: Sequence[Any] | pd.DatetimeIndex,
    node_names: Sequence[str],
    v_pu: FloatArray,
    *,
    undervoltage_pu: float,
    overvoltage_pu: float,
) -> pd.DataFrame:
    """Node-phases outside the voltage band, one row per node and time step.

    Parameters
    ----------
    time:
        ``T`` timezone-aware time stamps.
    node_names:
        ``N`` node names (``bus.phase``).
    v_pu:
        ``(T, N)`` voltage magnitudes in per unit of each node's base. NaN entries (steps that did
        not converge, reported separately) are not flagged.
    undervoltage_pu, overvoltage_pu:
        The band; a value strictly below / above it is a violation (ANSI C84.1 Range A [1]_).

    Returns
    -------
    pandas.DataFrame
        Columns ``time, element, kind, value, limit``; ``kind`` is ``undervoltage`` or
        ``overvoltage``; ``value`` the voltage in pu, ``limit`` the band edge crossed.
    """
    t = _as_time_index(time)
    return _table(t, _voltage_parts(t, node_names, v_pu, undervoltage_pu, overvoltage_pu))


def _voltage_parts(
    t: pd.DatetimeIndex,
    node_names: Sequence[str],
    v_pu: FloatArray,
    undervoltage_pu: float,
    overvoltage_pu: float,
) -> list[_Part]:
    v = _check_shape(v_pu, len(t), node_names, "v_pu")
    parts = []
    for kind, mask, lim in (
        # float64 limits: a float32 value is compared as the exact number it is (against a
        # Python float NumPy would round the limit to float32: 0.95 -> 0.949999988)
        ("undervoltage", v < np.float64(undervoltage_pu), undervoltage_pu),
        ("overvoltage", v > np.float64(overvoltage_pu), overvoltage_pu),
    ):
        ti, ei = np.nonzero(mask)
        value = v[ti, ei].astype(np.float64)
        parts.append(_Part(ti, ei, node_names, kind, value, np.full(len(ti), lim)))
    return parts


def thermal_violations(
    time: Sequence[Any] | pd.DatetimeIndex,
    branch_names: Sequence[str],
    loading_pct: FloatArray,
    loading_emerg_pct: FloatArray | None = None,
    *,
    normal_pct: float = 100.0,
    emergency_pct: float = 100.0,
) -> pd.DataFrame:
    """Branches loaded above their normal and emergency ratings.

    Parameters
    ----------
    time:
        ``T`` timezone-aware time stamps.
    branch_names:
        ``B`` branch names (``class.name``).
    loading_pct:
        ``(T, B)`` loading in percent of each branch's normal rating (max over phases and
        terminals), as in ``branch_loading.parquet``.
    loading_emerg_pct:
        ``(T, B)`` loading in percent of the emergency rating, or None to skip that check.
    normal_pct, emergency_pct:
        Limits in percent of the respective rating.

    Returns
    -------
    pandas.DataFrame
        ``thermal_normal`` rows: ``value`` the loading in % of the normal rating, ``limit``
        ``normal_pct``. ``thermal_emergency`` rows (a branch above its emergency rating is also
        above its normal one and gets both rows): ``value`` again in % of the *normal* rating, so
        every thermal row reads on one scale, and ``limit`` the emergency limit expressed in % of
        the normal rating (``emergency_pct`` x emergency rating / normal rating).
    """
    t = _as_time_index(time)
    return _table(
        t,
        _thermal_parts(t, branch_names, loading_pct, loading_emerg_pct, normal_pct, emergency_pct),
    )


def _thermal_parts(
    t: pd.DatetimeIndex,
    branch_names: Sequence[str],
    loading_pct: FloatArray,
    loading_emerg_pct: FloatArray | None,
    normal_pct: float,
    emergency_pct: float,
) -> list[_Part]:
    load = _check_shape(loading_pct, len(t), branch_names, "loading_pct")
    ti, ei = np.nonzero(load > np.float64(normal_pct))
    value = load[ti, ei].astype(np.float64)
    parts = [_Part(ti, ei, branch_names, "thermal_normal", value, np.full(len(ti), normal_pct))]
    if loading_emerg_pct is not None:
        emerg = _check_shape(loading_emerg_pct, len(t), branch_names, "loading_emerg_pct")
        ti, ei = np.nonzero(emerg > np.float64(emergency_pct))
        value = load[ti, ei].astype(np.float64)
        # normal/emergency rating ratio from the two loadings of the same current
        limit = emergency_pct * value / emerg[ti, ei].astype(np.float64)
        parts.append(_Part(ti, ei, branch_names, "thermal_emergency", value, limit))
    return parts


def reverse_power_violations(
    time: Sequence[Any] | pd.DatetimeIndex,
    element_names: Sequence[str],
    p_kw: FloatArray,
    *,
    min_p_kw: float = 0.0,
) -> pd.DataFrame:
    """Active power through the substation source or a regulator below ``min_p_kw``.

    Parameters
    ----------
    time:
        ``T`` timezone-aware time stamps.
    element_names:
        ``E`` element names (``vsource.source``, ``transformer.reg1a``, ...).
    p_kw:
        ``(T, E)`` (or ``(T,)`` for one element) active power flowing into the element from the
        source side, kW; negative means reverse flow [2]_.
    min_p_kw:
        Flow strictly below this value is flagged.

    Returns
    -------
    pandas.DataFrame
        ``reverse_power`` rows; ``value`` the power in kW, ``limit`` ``min_p_kw``.
    """
    t = _as_time_index(time)
    return _table(t, [_reverse_part(t, element_names, p_kw, min_p_kw)])


def _reverse_part(
    t: pd.DatetimeIndex, element_names: Sequence[str], p_kw: FloatArray, min_p_kw: float
) -> _Part:
    p = _check_shape(p_kw, len(t), element_names, "p_kw")
    ti, ei = np.nonzero(p < np.float64(min_p_kw))
    value = p[ti, ei].astype(np.float64)
    return _Part(ti, ei, element_names, "reverse_power", value, np.full(len(ti), min_p_kw))


class _ResultLike(Protocol):
    """What :func:`find_violations` reads of a ``TimeSeriesResult``."""

    time: Any
    node_names: Any
    v_pu: Any
    branch_names: Any
    branch_loading_pct: Any
    branch_loading_emerg_pct: Any
    source_p_kw: Any
    regulator_names: Any
    regulator_p_kw: Any


#: Name of the substation source in the reverse-power rows.
SOURCE_ELEMENT = "vsource.source"


#: Node-steps per chunk when violations are streamed (bounds memory on large feeders).
CHUNK_VALUES = 2_000_000


def _chunk_parts(
    result: _ResultLike, lim: Limits, source_name: str, time: pd.DatetimeIndex, rows: slice
) -> list[_Part]:
    t = time[rows]
    n = len(time)
    parts = _voltage_parts(
        t,
        list(result.node_names),
        np.asarray(result.v_pu)[rows],
        lim.undervoltage_pu,
        lim.overvoltage_pu,
    )
    loading = np.asarray(result.branch_loading_pct)[rows]
    emerg = result.branch_loading_emerg_pct
    scale = getattr(result, "branch_emerg_scale", None)
    if emerg is not None:
        emerg_rows = np.asarray(emerg)[rows]
    elif scale is not None:  # % of the emergency rating = % of the normal x normal/emergency
        emerg_rows = loading * np.asarray(scale, dtype=np.float64)[None, :]
    else:
        emerg_rows = None
    parts += _thermal_parts(
        t,
        list(result.branch_names),
        loading,
        emerg_rows,
        lim.thermal_normal_pct,
        lim.thermal_emergency_pct,
    )
    p_src = np.asarray(result.source_p_kw, dtype=np.float64).reshape(n, -1)[rows, :1]
    parts.append(_reverse_part(t, [source_name], p_src, lim.reverse_min_p_kw))
    reg_names = list(result.regulator_names)
    if reg_names:
        p_reg = np.asarray(result.regulator_p_kw, dtype=np.float64).reshape(n, -1)[rows]
        parts.append(_reverse_part(t, reg_names, p_reg, lim.reverse_min_p_kw))
    return parts


def iter_violations(
    result: _ResultLike,
    limits: Limits | None = None,
    *,
    source_name: str = SOURCE_ELEMENT,
    chunk_values: int | None = None,
) -> Iterator[pd.DataFrame]:
    """The violations of a result as tables of consecutive time slices (same order, same
    columns as :func:`find_violations`): a year of a large feeder can hold tens of millions of
    rows, which a writer can stream without holding them all.

    Parameters
    ----------
    result, limits, source_name:
        As :func:`find_violations`.
    chunk_values:
        Node-steps per slice (default :data:`CHUNK_VALUES`).
    """
    for arrays in iter_violation_arrays(
        result, limits, source_name=source_name, chunk_values=chunk_values
    ):
        yield arrays.frame()


def iter_violation_arrays(
    result: _ResultLike,
    limits: Limits | None = None,
    *,
    source_name: str = SOURCE_ELEMENT,
    chunk_values: int | None = None,
) -> Iterator[ViolationArrays]:
    """:func:`iter_violations` as integer codes (:class:`ViolationArrays`), for writers that
    keep names as a dictionary (``violations.parquet``)."""
    lim = limits if limits is not None else load_limits()
    time = _as_time_index(result.time)
    width = max(1, len(result.node_names), len(result.branch_names))
    steps = max(1, (chunk_values or CHUNK_VALUES) // width)
    names_seen: dict[tuple[str, ...], tuple[list[str], npt.NDArray[np.intp]]] = {}
    for r0 in range(0, len(time), steps):
        rows = slice(r0, min(r0 + steps, len(time)))
        yield _merge(time[rows], _chunk_parts(result, lim, source_name, time, rows), names_seen)


@dataclass
class ViolationSummary:
    """Per kind: rows, distinct elements, distinct steps and the worst row (streamed)."""

    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(VIOLATION_KINDS, 0))
    _elements: dict[str, set[str]] = field(default_factory=dict)
    _steps: dict[str, int] = field(default_factory=lambda: dict.fromkeys(VIOLATION_KINDS, 0))
    worst: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, chunk: pd.DataFrame) -> None:
        """Fold one slice (slices are disjoint in time) into the summary."""
        if not len(chunk):
            return
        for kind, sub in chunk.groupby("kind", observed=True):
            k = str(kind)
            self.rows[k] += len(sub)
            elem = sub["element"]
            codes = pd.unique(elem.cat.codes.to_numpy())
            self._elements.setdefault(k, set()).update(elem.cat.categories[codes].astype(str))
            self._steps[k] += int(sub["time"].nunique())
            # lowest voltage / power is worst for these kinds, highest for the others
            low = k in ("undervoltage", "reverse_power")
            values = sub["value"].to_numpy(dtype=np.float64)
            j = int(np.argmin(values) if low else np.argmax(values))
            value = float(values[j])
            best = self.worst.get(k)
            if best is None or (value < best["value"] if low else value > best["value"]):
                when = pd.DatetimeIndex(sub["time"]).tz_convert("UTC")[j]
                self.worst[k] = {
                    "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "element": str(sub["element"].iloc[j]),
                    "value": value,
                    "limit": float(sub["limit"].to_numpy(dtype=np.float64)[j]),
                }

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """Per kind: ``rows``, ``elements``, ``steps`` and ``worst`` (None when no row)."""
        return {
            k: {
                "rows": self.rows[k],
                "elements": len(self._elements.get(k, ())),
                "steps": self._steps[k],
                "worst": self.worst.get(k),
            }
            for k in VIOLATION_KINDS
        }


def find_violations(
    result: _ResultLike, limits: Limits | None = None, *, source_name: str = SOURCE_ELEMENT
) -> pd.DataFrame:
    """Every violation of a time-series result, ordered by time, kind, then model order.

    Parameters
    ----------
    result:
        A ``gridflex.powerflow.TimeSeriesResult`` (or any object with its array attributes).
    limits:
        The limits; default :func:`load_limits` (ANSI C84.1 Range A).
    source_name:
        Element name used for the substation source's reverse-power rows.

    Returns
    -------
    pandas.DataFrame
        The ``violations.csv`` table.
    """
    lim = limits if limits is not None else load_limits()
    time = _as_time_index(result.time)
    return _table(time, _chunk_parts(result, lim, source_name, time, slice(0, len(time))))
