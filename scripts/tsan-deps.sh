#!/usr/bin/env bash
# Builds ThreadSanitizer-instrumented Abseil and gRPC into build/tsan-deps/prefix
# for the tsan preset. TSan only sees the synchronization of code it
# instrumented: with Debian's prebuilt libgrpc and libabsl, every hand-over
# through gRPC's completion queues and absl::Mutex is invisible to it and
# reads as a race. So this builds the very versions Debian ships (Abseil
# 20220623.1, gRPC 1.51.1), from Debian's own source packages with Debian's
# patches, with -fsanitize=thread. Protobuf, OpenSSL, c-ares, re2 and zlib
# stay Debian's: none of them hands data between threads. The code generator
# (grpc_cpp_plugin) is Debian's too: it runs at build time only.
#
#   bash scripts/tsan-deps.sh        # once; about 20 minutes on 2 cores
#
# The sources are fetched from deb.debian.org and checked against the
# SHA-256 sums pinned below (the ones in Debian's signed .dsc files). Once
# Debian replaces a version, it leaves the pool: P2PD_DEBIAN_POOL names
# another (e.g. http://snapshot.debian.org/archive/debian/TIMESTAMP/pool/main);
# the sums still guard what comes. A finished build is kept
# (build/tsan-deps/prefix/.stamp) and not redone. scripts/tsan.sh runs this
# first.
set -euo pipefail
cd "$(dirname "$0")/.."

pool="${P2PD_DEBIAN_POOL:-http://deb.debian.org/debian/pool/main}"
absl_version=20220623.1
absl_debian=1+deb12u2
grpc_version=1.51.1
grpc_debian=3
sources=(
  "a/abseil/abseil_${absl_version}.orig.tar.gz abfe2897f3a30edaa74bc34365afe3c2a3cd012091a97dc7e008f7016adcd5fe"
  "a/abseil/abseil_${absl_version}-${absl_debian}.debian.tar.xz e08490fc7b6f3beca1925953b0c4fb92df2de5e2a01295e4641e2a3d4e528eeb"
  "g/grpc/grpc_${grpc_version}.orig.tar.gz b55696fb249669744de3e71acc54a9382bea0dce7cd5ba379b356b12b82d4229"
  "g/grpc/grpc_${grpc_version}-${grpc_debian}.debian.tar.xz 767b69da166bae708a54c4740056d9e847d57d89885173016bfc57ebbf154b2d"
)

root="$PWD/build/tsan-deps"
prefix="$root/prefix"
jobs="${JOBS:-$(nproc)}"
# -O1: TSan's own advice (fast enough, stacks still exact); NDEBUG as in
# Debian's build, so the code is the code p2pd runs with.
flags="-fsanitize=thread -fno-omit-frame-pointer -O1 -g1 -DNDEBUG"
stamp_text="absl ${absl_version}-${absl_debian} grpc ${grpc_version}-${grpc_debian} flags ${flags}"

if [[ -f "$prefix/.stamp" && "$(cat "$prefix/.stamp")" == "$stamp_text" ]]; then
  echo "tsan-deps: $prefix is built ($stamp_text)"
  exit 0
fi

mkdir -p "$root/downloads"
for entry in "${sources[@]}"; do
  read -r path sum <<<"$entry"
  file="$root/downloads/$(basename "$path")"
  if [[ ! -f "$file" ]] || ! echo "$sum  $file" | sha256sum --check --status; then
    echo "tsan-deps: fetching $pool/$path"
    if ! curl --fail --silent --show-error --location --retry 3 -o "$file.part" "$pool/$path"; then
      echo "tsan-deps: error: cannot fetch $pool/$path; if Debian has moved on from this version, set" \
        "P2PD_DEBIAN_POOL to a snapshot.debian.org pool that has it" >&2
      rm -f "$file.part"
      exit 1
    fi
    if ! echo "$sum  $file.part" | sha256sum --check --status; then
      echo "tsan-deps: error: $path does not have the pinned SHA-256 $sum" >&2
      rm -f "$file.part"
      exit 1
    fi
    mv "$file.part" "$file"
  fi
done

# unpack NAME ORIG DEBIAN: a fresh source tree with Debian's patch series
# applied, as dpkg-source would. --touch: the files are newer than any
# object a build of other sources left.
unpack() {
  local name="$1" orig="$2" debian="$3" dir="$root/src/$1"
  rm -rf "$dir"
  mkdir -p "$dir"
  tar -xzf "$root/downloads/$orig" -C "$dir" --strip-components=1 --touch
  tar -xJf "$root/downloads/$debian" -C "$dir" --touch
  local patch options
  while read -r patch options || [[ -n "$patch" ]]; do
    [[ -z "$patch" || "$patch" == \#* ]] && continue
    [[ -z "$options" || "$options" == -p1 ]] || { echo "tsan-deps: error: patch options '$options' not supported" >&2; exit 1; }
    patch --batch --forward --quiet --directory="$dir" --strip=1 --input="debian/patches/$patch" </dev/null
  done <"$dir/debian/patches/series"
}

# Nothing of an earlier build is trusted: other versions or flags.
rm -rf "$prefix" "$root/absl-build" "$root/grpc-build"
common=(-G Ninja -DCMAKE_BUILD_TYPE=None "-DCMAKE_C_FLAGS=$flags" "-DCMAKE_CXX_FLAGS=$flags"
  -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread
  "-DCMAKE_INSTALL_PREFIX=$prefix" -DCMAKE_INSTALL_LIBDIR=lib "-DCMAKE_INSTALL_RPATH=$prefix/lib"
  "-DCMAKE_PREFIX_PATH=$prefix" -DBUILD_SHARED_LIBS=ON -DCMAKE_CXX_STANDARD=17)

echo "tsan-deps: Abseil ${absl_version} with TSan"
unpack absl "abseil_${absl_version}.orig.tar.gz" "abseil_${absl_version}-${absl_debian}.debian.tar.xz"
cmake -S "$root/src/absl" -B "$root/absl-build" "${common[@]}" -DABSL_PROPAGATE_CXX_STD=ON -DBUILD_TESTING=OFF >/dev/null
cmake --build "$root/absl-build" -j "$jobs"
cmake --install "$root/absl-build" >/dev/null

echo "tsan-deps: gRPC ${grpc_version} with TSan"
unpack grpc "grpc_${grpc_version}.orig.tar.gz" "grpc_${grpc_version}-${grpc_debian}.debian.tar.xz"
cmake -S "$root/src/grpc" -B "$root/grpc-build" "${common[@]}" -DgRPC_INSTALL=ON -DgRPC_BUILD_TESTS=OFF -DgRPC_BUILD_CODEGEN=OFF \
  -DgRPC_ABSL_PROVIDER=package -DgRPC_CARES_PROVIDER=package -DgRPC_PROTOBUF_PROVIDER=package \
  -DgRPC_RE2_PROVIDER=package -DgRPC_SSL_PROVIDER=package -DgRPC_ZLIB_PROVIDER=package \
  -DgRPC_BUILD_CSHARP_EXT=OFF -DgRPC_BUILD_GRPC_CSHARP_PLUGIN=OFF -DgRPC_BUILD_GRPC_NODE_PLUGIN=OFF \
  -DgRPC_BUILD_GRPC_OBJECTIVE_C_PLUGIN=OFF -DgRPC_BUILD_GRPC_PHP_PLUGIN=OFF -DgRPC_BUILD_GRPC_PYTHON_PLUGIN=OFF \
  -DgRPC_BUILD_GRPC_RUBY_PLUGIN=OFF >/dev/null
cmake --build "$root/grpc-build" -j "$jobs"
cmake --install "$root/grpc-build" >/dev/null

echo "$stamp_text" >"$prefix/.stamp"
echo "tsan-deps: built into $prefix"
