#!/usr/bin/env bash
# Build, install, launch and fetch: run a bundle on a tethered iPhone from a Mac with Xcode.
#   runners/ios/run-on-iphone.sh BUNDLE_DIR OUT.json [DEVICE_ID]
# BUNDLE_DIR comes from `bench export --backend coreml --bundle BUNDLE_DIR`; OUT.json goes to
# `bench ingest OUT.json`. Without DEVICE_ID the first connected iPhone (`xcrun devicectl`) is used.
# Signing: open runners/ios/Package.swift in Xcode once and pick your team for the test target.
set -euo pipefail
bundle=$(cd "$1" && pwd); out=$2; device=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
[ -f "$bundle/manifest.json" ] || { echo "error: $bundle has no manifest.json (make it with bench export)" >&2; exit 2; }
if [ -z "$device" ]; then
    listing=$(mktemp)
    xcrun devicectl list devices --json-output "$listing" >/dev/null
    device=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["result"]["devices"]
ids=[x["hardwareProperties"]["udid"] for x in d if x.get("hardwareProperties",{}).get("platform")=="iOS"
     and x.get("connectionProperties",{}).get("tunnelState")!="unavailable"]
print(ids[0] if ids else "")' "$listing")
    [ -n "$device" ] || { echo "error: no connected iPhone; connect and unlock one (Developer Mode on)" >&2; exit 2; }
fi
target="$here/Tests/OnebenchDeviceTests/Bundle"
find "$target" -mindepth 1 ! -name README.md -exec rm -rf {} +
cp -R "$bundle"/. "$target"/
log=$(mktemp)
cd "$here"
xcodebuild test -scheme OnebenchRunner-Package -destination "platform=iOS,id=$device" \
    -only-testing:OnebenchDeviceTests -allowProvisioningUpdates | tee "$log"
sed -n '/^ONEBENCH-RESULTS-BEGIN$/,/^ONEBENCH-RESULTS-END$/p' "$log" | sed '1d;$d' > "$out"
[ -s "$out" ] || { echo "error: the test log held no results; see $log" >&2; exit 1; }
echo "results: $out (next: bench ingest $out)"
