//! Records what the binary is built from (`didit-build-info`): version, commit, rustc, profile
//! and the lock file's crate versions, for `--version --verbose` and the runner's provenance.

fn main() {
    didit_build_info::write();
}
