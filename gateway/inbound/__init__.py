"""MMSC → us: the MM7 listener and what it accepts.

``mm7_server`` authenticates and decodes callbacks per route; ``handlers`` hands each
accepted request to ``delivery`` (delivery reports and read replies, mapped by the
``reports`` table) or ``deliver`` (inbound MMS with its media), and ``keywords`` turns a
STOP/START into an opt-out change and its confirmation. Everything is committed before
the MMSC gets its answer.
"""
