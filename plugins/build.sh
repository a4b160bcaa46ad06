#!/usr/bin/env bash
# Builds the example admission plugins and the wasm package's test fixtures.
# Each .wasm is written next to its source and committed, so tests do not
# need to build them. Called by `make plugins`.
#
#   plugins/build.sh            build everything
#   plugins/build.sh blocklist  build only the named example(s)
set -euo pipefail
cd "$(dirname "$0")/.."

# wasip1 reactor modules: //go:wasmexport functions, no main.
build() { # build <package dir> <output .wasm>
	echo "build $2"
	GOOS=wasip1 GOARCH=wasm CGO_ENABLED=0 go build -buildmode=c-shared -trimpath \
		-buildvcs=false -ldflags="-s -w" -o "$2" "./$1"
}

if [ "$#" -gt 0 ]; then
	for name in "$@"; do
		build "plugins/examples/$name" "plugins/examples/$name/$name.wasm"
	done
	exit 0
fi

for dir in plugins/examples/*/; do
	name=$(basename "$dir")
	build "plugins/examples/$name" "plugins/examples/$name/$name.wasm"
done

fixtures=gateway/wasm/testdata
build "$fixtures/probe" "$fixtures/probe.wasm"
echo "generate $fixtures/{admit,unreachable,noexports,garbage}.wasm"
go run "$fixtures/gen_fixtures.go" "$fixtures"
