//! SDS-R timing (placeholder, being written).
