# Sourced by the scale-out test bed and the Ray benchmark: a Python venv with
# Ray, the allot CLI and the `allot_ray` package, built from this workspace.
#
#   allot_ray_install VENV   # sets $allot (the CLI) and $ALLOT_RAY_PYTHON
#
# The extension module is the workspace's own cdylib (`python/`, PyO3, abi3),
# built by the same cargo invocation as the tests' binaries, with the features
# `cargo test --workspace` resolves: after the README's test command nothing is
# compiled again. (`maturin develop` builds the one package alone, resolves
# different features for a dozen shared crates and so recompiles polars and
# everything above it: half an hour on two cores.) The package is put on the
# venv's path with a .pth file; a copy installed earlier by maturin is removed
# so that it cannot shadow this one.
allot_ray_install() {
  local venv=$1
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv" || return 1
  "$venv/bin/python" -c 'import ray' 2>/dev/null || "$venv/bin/pip" install -q 'ray>=2.9,<3' || return 1
  cargo build -q --workspace --lib --bins --tests || return 1
  allot="$CARGO_TARGET_DIR/debug/allot"
  local pkg="$venv/allot-ray-dev" site
  rm -rf "$pkg"
  mkdir -p "$pkg"
  cp -r python/allot_ray "$pkg/" || return 1
  ln -s "$CARGO_TARGET_DIR/debug/lib_kernel.so" "$pkg/allot_ray/_kernel.abi3.so" || return 1
  "$venv/bin/pip" uninstall -q -y allot-ray >/dev/null 2>&1 || true
  site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') || return 1
  printf '%s\n' "$pkg" >"$site/allot_ray_dev.pth" || return 1
  "$venv/bin/python" -c 'import allot_ray._kernel' || { echo "the allot_ray module does not import" >&2; return 1; }
  export ALLOT_RAY_PYTHON="$venv/bin/python"
}
