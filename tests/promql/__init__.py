"""Tests of the PromQL engine (sim/promql), rule by rule against Prometheus v2.42.0."""
