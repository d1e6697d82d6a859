"""Development tooling: the local Personalize Events endpoint, a local Kafka broker, sample
clickstream and the demo.

A leaf: nothing in the service imports it (import-linter checks that in the test command). The
CLI's development commands, the tests and the benchmark do.
"""
