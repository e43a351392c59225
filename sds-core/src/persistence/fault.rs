//! Fault-injecting wrapper (placeholder, being written).
