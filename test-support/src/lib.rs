//! What the crates' tests share. Dev-only: no service depends on it.

mod cut;

pub use cut::CuttableLink;
