#!/usr/bin/env bash
# Installs what the build and tests need. Idempotent: a second run changes nothing.
#
# Today the workspace needs only the Rust toolchain that ships with the machine. Local models
# (Silero VAD, Whisper, Piper, a small LLM) and their Debian packages are added here by the
# voice and local-model work, fetched from package registries into a cache outside the repo.
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
