#!/usr/bin/env bash
# Renders what trainsim draws in a real browser (headless Chromium) and
# checks that it is not blank and that the charts' elements exist:
#   - `trainsim simulate scenarios/deepseek-v3-pretrain.json --html`: the
#     timeline (one element per pipeline op), breakdown and memory charts;
#   - `trainsim schedule --kind dualpipe ... --svg`: the ops, axis and legend.
# Each page is rendered once, with a screenshot (at half scale, so the
# standard-library PNG reader stays quick) and its DOM as the browser built it.
# "Not blank": the PNG decodes to at least MIN_COLOURS distinct colours and
# MIN_INK of its pixels are not white (a blank page has 1 colour and 0 ink).
# Usage: check_page.sh TRAINSIM SOURCE_DIR WORK_DIR. Exit 77 (CTest: skipped)
# when no Chromium is installed.
set -euo pipefail
bin=$1 src=$2 work=$3
MIN_COLOURS=200 MIN_INK=0.10

browser=""
for b in chromium chromium-browser google-chrome; do
  if command -v "$b" >/dev/null 2>&1; then browser=$b; break; fi
done
if [ -z "$browser" ]; then
  echo "SKIP: no headless Chromium found (Debian: apt-get install chromium, as scripts/setup.sh does)"
  exit 77
fi
if ! command -v python3 >/dev/null 2>&1; then
  echo "SKIP: python3 is needed to decode the screenshots"
  exit 77
fi

rm -rf "$work" && mkdir -p "$work"
"$bin" simulate "$src/scenarios/deepseek-v3-pretrain.json" --quiet --html "$work/v3.html"
"$bin" schedule --kind dualpipe --ranks 8 --microbatches 20 --f 1 --b 2 --w 1 --fb 2.5 --svg "$work/dualpipe.svg" >/dev/null

# render FILE NAME WIDTH HEIGHT: NAME.png and NAME.dom.html in $work.
render() {
  local profile
  profile=$(mktemp -d)
  timeout 90 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync --user-data-dir="$profile" \
    --force-device-scale-factor=0.5 --window-size="$3,$4" --screenshot="$work/$2.png" --dump-dom \
    "file://$1" >"$work/$2.dom.html" 2>"$work/$2.browser.log"
  rm -rf "$profile"
}
render "$work/v3.html" page 1280 1800 &
page_pid=$!
render "$work/dualpipe.svg" svg 1720 400 &
svg_pid=$!
wait "$page_pid" || { echo "FAIL: the browser failed on the HTML page"; tail -5 "$work/page.browser.log"; exit 1; }
wait "$svg_pid" || { echo "FAIL: the browser failed on the schedule SVG"; tail -5 "$work/svg.browser.log"; exit 1; }

status=0
# not_blank NAME: the screenshot has colours and ink.
not_blank() {
  local stats
  stats=$(python3 "$src/tests/browser/png_stats.py" "$work/$1.png")
  read -r w h colours ink <<<"$stats"
  echo "$1.png: ${w}x${h}, $colours colours, $ink of pixels not white"
  if [ "$colours" -lt "$MIN_COLOURS" ] || ! python3 -c "import sys; sys.exit(0 if $ink >= $MIN_INK else 1)"; then
    echo "FAIL: $1.png looks blank (need >= $MIN_COLOURS colours and >= $MIN_INK ink)"
    status=1
  fi
}
# has NAME PATTERN MIN: the rendered DOM holds PATTERN at least MIN times.
has() {
  local n
  n=$(grep -o -- "$2" "$work/$1.dom.html" | wc -l)
  if [ "$n" -lt "$3" ]; then
    echo "FAIL: $1: '$2' found $n times, expected at least $3"
    status=1
  fi
}
not_blank page
not_blank svg
has page 'id="timeline"' 1
has page '<g class="op op-' 16    # every op of 16 pipeline ranks; hundreds in fact
has page 'class="idle"' 16
has page 'class="flow flow-' 16
has page 'id="breakdown"' 1
has page 'id="memory"' 1
has page 'class="bar-part part-' 16
has page 'class="marker"' 1
has page 'class="cost-table"' 1
has page 'class="ops-table"' 1
has svg 'class="op"' 100
has svg 'class="fb-forward"' 1
has svg 'class="axis"' 1
has svg 'class="legend-swatch"' 4
[ "$status" -eq 0 ] && echo "OK: the HTML report and the schedule SVG render in $browser"
exit "$status"
