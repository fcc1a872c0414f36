//! Prints the gateway's GraphQL schema as sorted SDL, for `cargo xtask schema`, which writes
//! it to `schema/schema.graphql`.

use std::io::Write as _;

fn main() -> std::io::Result<()> {
    let sdl = gateway::graphql::sdl();
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(sdl.as_bytes())?;
    stdout.flush()
}
