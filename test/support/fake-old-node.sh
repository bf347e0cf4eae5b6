#!/bin/sh
# A Node that says it is 20 (test/operations/bin-sheratan.test.ts, where the machine has no old Node).
[ "$1" = "--version" ] && { echo v20.11.0; exit 0; }
echo "fake old node: $*" >&2
exit 1
