//! What the crates' tests share. Dev-only: no service depends on it.

mod cut;
mod moto;

pub use cut::CuttableLink;
pub use moto::MotoServer;
