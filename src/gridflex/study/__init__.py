"""Studies over a network: the ``gridflex simulate`` pipeline and its Dask fan-out, the firm
study, hosting capacity, flexible connection options, curtailment and reports.

* :mod:`gridflex.study.simulate` — one feeder: import, solve, violations, result folder.
* :mod:`gridflex.study.fanout` — many feeders / scenarios on a Dask cluster.
"""
