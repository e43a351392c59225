//! Compiles the `.proto` files with protox (pure Rust), so no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/sds/wire.proto", "proto/sds/storage.proto"];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(protos, ["proto"])?;
    prost_build::Config::new()
        // Buffered messages are kept encoded and shared between the channel and every
        // snapshot taken of it: cloning a snapshot counts references instead of copying.
        .bytes([
            ".sds.storage.OutgoingEntry.message",
            ".sds.storage.IncomingEntry.message",
        ])
        // Hand-written (storage/meta.rs) so its buffers clone by chunk: a snapshot of a
        // channel holding thousands of messages is copied in a few reference counts.
        .extern_path(".sds.storage.ChannelMeta", "crate::storage::ChannelMeta")
        .compile_fds(descriptors)?;
    Ok(())
}
