#!/usr/bin/env bash
# Produces docs/images/desktop.png: the real agentdesk window under Xvfb, from a scripted
# scenario (3 emails, 2 chats and 1 call offered by plugins, auto-answered by one agent).
# Needs: xvfb, libgl1-mesa-dri (software OpenGL), imagemagick (`import`).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/images/desktop.png}"
case "$out" in /*) ;; *) out="$(pwd)/$out" ;; esac
display=":$(( 90 + RANDOM % 9 ))"
Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp &
xvfb=$!
trap 'kill $xvfb 2>/dev/null || true' EXIT
sleep 1
cargo build --workspace
DISPLAY="$display" LIBGL_ALWAYS_SOFTWARE=1 AGENTDESK_SCREENSHOT="$out" \
    cargo test -p agentdesk-tests --test tests -- --ignored --exact shell::desktop_screenshot_under_xvfb
echo "wrote $out"
