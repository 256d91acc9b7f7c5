"""Us → applications: the durable, ordered, signed webhook outbox (``outbox``) and the
signature scheme receivers verify (``signing``)."""
