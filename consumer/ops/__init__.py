"""What an operator sees: Prometheus metrics, health probes, JSON logs, the run summary."""
