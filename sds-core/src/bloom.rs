//! Bloom filter (placeholder, being written).
