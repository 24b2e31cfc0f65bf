# churnfuzz on Debian bookworm: clang 14 with libFuzzer, AFL++ 4.04c, python3 and the churn CLI.
#   docker build -t churnfuzz .
#   docker run --rm churnfuzz test --quick                       # the tests, in the image's copy
#   docker run --rm -v "$PWD:/churnfuzz" churnfuzz fuzz           # fuzz every system copy; the
#                                                                 # results land in ./out/docker/
# The entry point (tools/docker-entrypoint.sh) runs ./churn with OUT=/churnfuzz/out/docker.
FROM debian:bookworm

ENV DEBIAN_FRONTEND=noninteractive

# libclang-rt-dev (libFuzzer and sanitizer runtimes) is only recommended by clang, so it is
# named; llvm provides llvm-symbolizer, llvm-profdata and llvm-cov; libhttp-parser-dev is the
# HTTP layer's request parser; curl and wrk are the clients of the real-server check.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       afl++ ca-certificates clang curl libclang-rt-dev libhttp-parser-dev llvm python3 wrk zip \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /churnfuzz
COPY . /churnfuzz
COPY tools/docker-entrypoint.sh /usr/local/bin/churnfuzz-entrypoint

# Build everything into the image's own output folder (a bind mount over /churnfuzz cannot hide
# it), with the toolchain versions and the hash of the sources it was built from.
ENV CHURN_IMAGE_OUT=/opt/churnfuzz/out
RUN OUT=/opt/churnfuzz/out ./build.sh \
    && dpkg-query -W clang libclang-rt-dev llvm afl++ python3 > /opt/churnfuzz/out/toolchain.txt \
    && churnfuzz-entrypoint --source-hash > /opt/churnfuzz/out/.source-hash

ENTRYPOINT ["/usr/local/bin/churnfuzz-entrypoint"]
CMD ["--help"]
