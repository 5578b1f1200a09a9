"""The analysing half: from timings (and published brand rows) to tables, charts and results/.

It reads only timings, never the store, so fresh studies and imported published ones meet in
one frame. Modules, in the order data flows through them:

- ``timings``     the seam: one row per probe, fixed schema, byte-stable CSV
- ``brandrows``   published per-brand figures that have no probe times behind them
- ``published``   one row of a published-figures CSV (``mystery.imports`` reads the file)
- ``export``      store → ``results/<study>/timings.csv`` + ``study.json`` (``studyinfo``)
- ``km``          Kaplan–Meier (SciPy ``stats.ecdf``), exact vectorised medians
- ``business``    business-hours elapsed time and send windows (rules from ``mystery.hours``)
- ``metrics``     counts, rates, means, medians per any grouping
- ``series``      year-on-year, sectors, channels, brand panel, sources
- ``tables``      CSV and Markdown with fixed formatting
- ``charts``      the house style (``house.mplstyle``), PNG + SVG, byte-stable; ``batch``
                  draws them in a pool of processes
- ``report``      one study's report; ``seriesreport`` one series' results
"""
