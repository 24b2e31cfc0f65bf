#!/bin/bash -eu
# OSS-Fuzz build script (projects/churnfuzz/build.sh in google/oss-fuzz). The repository's own
# build.sh follows the contract when $LIB_FUZZING_ENGINE is set: every fuzzer into $OUT with its
# seed corpus zip (seeds and repros), .options and dictionary.
"$SRC/churnfuzz/build.sh"
