"""The IEEE 2030.5 (CSIP / CSIP-AUS) server of gridflex.

It delivers each connection's agreed limits (``gridflex.terms.ConnectionTerms`` kept by the
``gridflex.derms`` registry) to inverters and aggregators, with the fallback limits a device applies
when it loses contact, and takes telemetry in (seed ``001_9847d8232b845ab9.txt``, "Real-Time
Dynamic Management & Dynamic Operating Envelopes": delivery through IEEE 2030.5 / CSIP-AUS,
pre-determined safe fallback limits on communication failure).

Layers (envoy habit: one job per layer, scope in the types)

- :mod:`~gridflex.sep2.identity`: LFDI / SFDI from the client certificate, frozen scope objects.
- :mod:`~gridflex.sep2.certs`: the self-signed test CA, server and client certificates.
- :mod:`~gridflex.sep2.xml`: hardened XML parsing into the ``envoy-schema`` pydantic-xml models,
  rendering with the CSIP-AUS namespace the deployment speaks (v1.2 by default, v1.3 possible).
- :mod:`~gridflex.sep2.schedule`: pure functions turning terms into bounded control windows and
  computing event status.
- :mod:`~gridflex.sep2.persistence`: SQLAlchemy models of the 2030.5 resources (on the registry's
  ``Base``) and their migration ``0002_sep2``.
- :mod:`~gridflex.sep2.manager`: the business rules, called with a scope and a session; knows
  nothing of HTTP.
- :mod:`~gridflex.sep2.app`: the ASGI application (routes and hrefs, list paging, status codes,
  XML in and out, the notifier).
- :mod:`~gridflex.sep2.ops`: the operator REST API (/ops): publish and cancel DERControls.
- :mod:`~gridflex.sep2.runner`: what ``gridflex serve`` does (migrations, TLS files, workers).
- :mod:`~gridflex.sep2.server`: mutual TLS on uvicorn, with a protocol subclass that hands the
  client certificate to the application (ASGI ``tls`` extension), and worker processes.
- :mod:`~gridflex.sep2.writer`: group commits of routine telemetry POSTs.
"""
