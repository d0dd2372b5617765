#!/usr/bin/env bash
# Proportional memory (PSS) of the agent desktop against an idle headless Chromium tab, measured
# in one run (docs/performance.md). The desktop runs as a real window under Xvfb with every
# bundled plugin loaded, 100 open chats and a 10,000-message transcript on screen (the demo
# plugin's load settings, auto-answered). Chromium's PSS is the sum over all its processes.
# Also the desktop's idle CPU (no input, only its once-a-second timer repaint).
# Needs: xvfb, libgl1-mesa-dri, chromium. Run after `cargo xtask package` (or `cargo xtask test`).
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${PROFILE:-release}"
work="$(mktemp -d)"
display=":$(( 80 + RANDOM % 9 ))"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 1
    rm -rf "$work"
}
trap cleanup EXIT

pss_kib() { # the PSS of these pids, summed, in KiB
    local total=0
    for p in "$@"; do
        local v
        v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
        total=$(( total + ${v:-0} ))
    done
    echo "$total"
}
tree() { # a pid and all its descendants
    echo "$1"
    for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do tree "$c"; done
}

if [ "$profile" = release ]; then
    cargo build --release --workspace
else
    cargo build --workspace
fi
bin="target/$profile"
mkdir -p "$work/plugins" "$work/data"
"$bin/agentdesk" package "$bin/libagentdesk_demo.so" --out "$work/plugins" >/dev/null
cat > "$work/agentdesk.toml" <<TOML
[host]
data_dir = "$work/data"
[plugins]
directories = ["$work/plugins"]
event_queue = 20000
[plugins.allow."agentdesk.demo"]
version = "*"
[plugins.settings."agentdesk.demo"]
offer_at_start = 100
messages_at_start = 10000
[channels.demo]
capacity = 100
[[agents]]
id = "ann"
name = "Ann"
channels = "all"
auto_answer = ["demo"]
TOML

Xvfb "$display" -screen 0 1280x800x24 -nolisten tcp & pids+=($!)
sleep 1
DISPLAY="$display" LIBGL_ALWAYS_SOFTWARE=1 "$bin/agentdesk" --config "$work/agentdesk.toml" \
    run --agent ann --ready 2>/dev/null & desk=$!; pids+=($desk)
sleep 15
desk_kib=$(pss_kib $(tree "$desk"))
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
before=$(cpu_ticks "$desk"); sleep 10; after=$(cpu_ticks "$desk")
idle_cpu=$(awk -v t=$(( after - before )) -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", 100 * t / hz / 10 }')
# What was measured: the journal and the history say how much the desktop held.
python3 - "$work/data/agentdesk.sqlite3" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
accepted = sum(row[0].count('"interaction-accepted"') for row in db.execute("SELECT events FROM journal"))
lines = db.execute("SELECT COUNT(*) FROM messages WHERE key = 1").fetchone()[0]
print(f"load: {accepted} chats accepted, {lines} transcript lines in the first")
PY

chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --user-data-dir="$work/chromium" \
    --remote-debugging-port=0 about:blank 2>/dev/null & chrome=$!; pids+=($chrome)
sleep 10
chrome_pids=$(tree "$chrome")
chrome_kib=$(pss_kib $chrome_pids)

echo "agentdesk ($profile, demo plugin, 100 open chats, 10,000-message transcript on screen): $(( desk_kib / 1024 )) MiB PSS"
echo "agentdesk idle CPU over 10 s with that load on screen: ${idle_cpu} % of one core"
echo "headless Chromium, idle about:blank tab: $(( chrome_kib / 1024 )) MiB PSS over $(echo $chrome_pids | wc -w) processes"
awk -v d="$desk_kib" -v c="$chrome_kib" 'BEGIN { printf "ratio: %.2f (goal <= 0.33)\n", d / c }'
