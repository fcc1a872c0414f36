//! Compiles the `.proto` contracts with `protox` (pure Rust, so no system `protoc` is needed)
//! and generates the prost messages and tonic clients and servers.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["proto/hangout/v1/hangout.proto", "proto/file/v1/file.proto"];
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
