"""Application → MMSC: accept (``submission``), route, queue, and send (``dispatcher``).

A request is validated into ``request`` objects, routed (``routing``), its media adapted
and stored (``content_fit``), and committed as batches; per-route workers claim due
batches, throttle (``throttle``), send them through ``mmsc_client`` and classify the
answer (``retry``). ``install`` builds all of it from the config.
``control`` cancels and replaces accepted messages; ``suppression`` reads the opt-out
list; ``queue`` keeps the per-route depth for back-pressure.
"""
