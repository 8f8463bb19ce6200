#!/usr/bin/env bash
# Renders a trainopt HTML report (score --html, or `trainopt report r.json --html r.html`) to a
# PNG with headless Chromium, so a person can look at the page without a browser at hand, and a
# review can see what a change to scoring/report_html.cpp looks like.
#
#   scripts/screenshot-report.sh REPORT.html [OUT.png] [--width PIXELS]
#
# OUT.png defaults to REPORT.png next to the report; the width defaults to 1100 (the page's
# column is 1000 wide). The whole page is captured: it is measured first in a throwaway copy
# (the report itself holds no scripts), then shot at that height.
#
# Needs Debian's `chromium`; installs it with apt-get when missing and running as root.
set -euo pipefail

usage() {
    echo "usage: $0 REPORT.html [OUT.png] [--width PIXELS]" >&2
    exit 2
}

html=""
png=""
width=1100
while [ $# -gt 0 ]; do
    case "$1" in
        --width)
            [ $# -ge 2 ] || usage
            width="$2"
            shift 2
            ;;
        -h | --help) usage ;;
        *)
            if [ -z "$html" ]; then
                html="$1"
            elif [ -z "$png" ]; then
                png="$1"
            else
                usage
            fi
            shift
            ;;
    esac
done
[ -n "$html" ] || usage
[ -f "$html" ] || { echo "no such report: $html" >&2; exit 1; }
[[ "$width" =~ ^[0-9]+$ ]] && [ "$width" -ge 320 ] || { echo "--width must be >= 320" >&2; exit 2; }
[ -n "$png" ] || png="${html%.html}.png"

find_chromium() {
    for name in chromium chromium-browser google-chrome; do
        if command -v "$name" > /dev/null; then
            command -v "$name"
            return 0
        fi
    done
    return 1
}

if ! chromium_bin="$(find_chromium)"; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get > /dev/null; then
        echo "installing chromium (apt-get)..." >&2
        apt-get update -qq > /dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null
        chromium_bin="$(find_chromium)"
    else
        echo "chromium is not installed: apt-get install chromium (as root)" >&2
        exit 1
    fi
fi

work="$(mktemp -d /tmp/screenshot-report-XXXXXX)"
trap 'rm -rf "$work"' EXIT

# Headless, without a GPU, a profile of its own, and --no-sandbox because root (as on the
# project's machines) cannot use Chromium's sandbox. The page is a local file with no scripts.
run_chromium() {
    timeout 120 "$chromium_bin" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
        --no-first-run --hide-scrollbars --force-device-scale-factor=1 \
        --user-data-dir="$work/profile" "$@" 2> "$work/chromium.log"
}

# Work on copies (the page is self-contained, and any file name then makes a plain URL).
cp "$html" "$work/report.html"
cp "$html" "$work/measure.html"
# Measure the page's height at this width: the copy gets a line of script that writes the
# height into the DOM, which --dump-dom prints.
cat >> "$work/measure.html" << 'EOF'
<script>document.body.setAttribute('data-page-height', document.documentElement.scrollHeight)</script>
EOF
# A short window, since scrollHeight is never less than the window's height.
height="$(run_chromium --window-size="$width,100" --dump-dom "file://$work/measure.html" |
    grep -o 'data-page-height="[0-9]*"' | grep -o '[0-9]\+' | head -1 || true)"
if [ -z "$height" ]; then
    echo "could not measure the page (chromium said:)" >&2
    tail -5 "$work/chromium.log" >&2
    exit 1
fi
height=$((height > 20000 ? 20000 : height))

run_chromium --window-size="$width,$height" --screenshot="$work/shot.png" "file://$work/report.html" \
    > /dev/null || true
if [ ! -s "$work/shot.png" ]; then
    echo "chromium took no screenshot (it said:)" >&2
    tail -5 "$work/chromium.log" >&2
    exit 1
fi
mkdir -p "$(dirname "$png")"
mv "$work/shot.png" "$png"
echo "$png (${width}x${height})"
