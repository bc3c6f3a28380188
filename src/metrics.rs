//! Prometheus metrics (under construction)
