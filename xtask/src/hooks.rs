//! `cargo xtask hooks`: installs an optional git pre-commit hook that checks formatting and
//! runs clippy on the crates the commit touches (the Go system had Lefthook for this). It is
//! a plain script in `.git/hooks/pre-commit`; `--remove` takes it out again. CI runs the
//! same checks on the whole workspace, so the hook only saves a round trip.

use std::path::Path;

use anyhow::Context as _;

/// Marks the hook as ours, so it is never mistaken for one a developer wrote.
const MARKER: &str = "# installed by `cargo xtask hooks`";

/// The hook. Workspace members are the top-level folders with a Cargo.toml; each touched
/// one is linted by its package name.
const HOOK: &str = r#"#!/bin/sh
# installed by `cargo xtask hooks`: format check, then clippy on the crates this commit
# touches. Skip it once with `git commit --no-verify`; remove it with `cargo xtask hooks --remove`.
set -eu
cargo fmt --all --check
packages=""
for dir in $(git diff --cached --name-only --diff-filter=ACMR | cut -d/ -f1 | sort -u); do
  if [ -f "$dir/Cargo.toml" ]; then
    name=$(sed -n 's/^name = "\(.*\)"/\1/p' "$dir/Cargo.toml" | head -n 1)
    [ -n "$name" ] && packages="$packages -p $name"
  fi
done
[ -z "$packages" ] && exit 0
# shellcheck disable=SC2086 # one word per flag
exec cargo clippy $packages --all-targets -- -D warnings
"#;

#[derive(clap::Args)]
pub struct Hooks {
    /// Remove the hook instead.
    #[arg(long)]
    remove: bool,
    /// Replace a pre-commit hook that `cargo xtask hooks` did not write.
    #[arg(long)]
    force: bool,
}

impl Hooks {
    pub fn run(self, root: &Path) -> anyhow::Result<()> {
        let hooks = root.join(".git/hooks");
        anyhow::ensure!(
            root.join(".git").is_dir(),
            "not a git checkout: {}",
            root.display()
        );
        let path = hooks.join("pre-commit");
        let existing = std::fs::read_to_string(&path).ok();
        let ours = existing
            .as_deref()
            .is_some_and(|text| text.contains(MARKER));
        if self.remove {
            if ours {
                std::fs::remove_file(&path)?;
                println!("removed {}", path.display());
            } else {
                println!("no hook of ours at {}", path.display());
            }
            return Ok(());
        }
        anyhow::ensure!(
            existing.is_none() || ours || self.force,
            "{} exists and is not ours; pass --force to replace it",
            path.display()
        );
        std::fs::create_dir_all(&hooks)?;
        std::fs::write(&path, HOOK).with_context(|| format!("writing {}", path.display()))?;
        make_executable(&path)?;
        println!(
            "installed {}: fmt check and clippy on the crates each commit touches",
            path.display()
        );
        Ok(())
    }
}

#[cfg(unix)]
fn make_executable(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

#[cfg(not(unix))]
fn make_executable(_: &Path) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hook_carries_its_marker_and_a_shebang() {
        assert!(HOOK.starts_with("#!/bin/sh\n"));
        assert!(HOOK.contains(MARKER));
    }
}
