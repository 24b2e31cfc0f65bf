#!/bin/bash -eu
# ClusterFuzzLite build script: the repository's build.sh follows OSS-Fuzz's contract when
# $LIB_FUZZING_ENGINE is set (fuzzers, seed corpus zips with the repros, .options, dictionary).
"$SRC/churnfuzz/build.sh"
