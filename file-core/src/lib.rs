//! Skeleton: see ARCHITECTURE.md.
