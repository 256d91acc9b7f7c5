"""Operating the gateway: Prometheus metrics, structured logs, access logs, health."""
