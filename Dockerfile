# churnfuzz on Debian bookworm: clang 14 with libFuzzer, AFL++ 4.04c, python3 and the churn CLI.
#   docker build -t churnfuzz .
#   docker run --rm churnfuzz fuzz        # fuzz the default target for the default time
#   docker run --rm churnfuzz test        # run all the tests
FROM debian:bookworm

ENV DEBIAN_FRONTEND=noninteractive

# libclang-rt-dev (libFuzzer and sanitizer runtimes) is only recommended by clang, so it is
# named; llvm provides llvm-symbolizer for readable sanitizer reports; libhttp-parser-dev is the
# HTTP layer's request parser; curl and wrk are the clients of the real-server check.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       afl++ ca-certificates clang curl libclang-rt-dev libhttp-parser-dev llvm python3 wrk zip \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /churnfuzz
COPY . /churnfuzz

# Build everything into out/ and record the toolchain versions next to the binaries.
RUN ./build.sh \
    && dpkg-query -W clang libclang-rt-dev llvm afl++ python3 > out/toolchain.txt

ENTRYPOINT ["./churn"]
CMD ["--help"]
