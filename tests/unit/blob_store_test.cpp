// The blob store (daemon/store) and the matrix layout on it: content
// addressing, damage found and dropped, the capacity bound, and manifests
// validated like any input.
#include <catch2/catch.hpp>

#include <fstream>

#include "daemon/store/blob_store.hpp"
#include "daemon/store/matrix_manifest.hpp"
#include "tests/support/temp_dir.hpp"

using namespace p2pd;
using namespace p2pd::store;

namespace {

std::string blob_of(char fill, std::size_t bytes) {
  return std::string(bytes, fill);
}

}  // namespace

TEST_CASE("a blob id is the SHA-256 of the bytes and round-trips as hex", "[unit][store]") {
  const BlobId id = BlobId::of(std::string_view("abc"));
  CHECK(id.hex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");  // FIPS 180-2 example
  CHECK(BlobId::from_hex(id.hex()) == id);
  CHECK(BlobId::from_hex(id.hex().substr(1)) == std::nullopt);
  CHECK(BlobId::from_hex(std::string(64, 'g')) == std::nullopt);
  CHECK(BlobId::from_bytes(id.bytes()) == id);
  CHECK(BlobId::from_bytes("short") == std::nullopt);
  CHECK(id.ring_key().hex() == id.hex().substr(0, 40));
}

TEST_CASE("the blob store keeps blobs by content and refuses data that is not what it claims", "[unit][store]") {
  test::TempDir dir;
  auto store = BlobStore::open(dir.path() / "blobs", 1 << 20);
  REQUIRE(store);
  auto id = (*store)->put(std::string_view("hello"));
  REQUIRE(id);
  CHECK(*id == BlobId::of(std::string_view("hello")));
  auto got = (*store)->get(*id);
  REQUIRE(got);
  REQUIRE(got->has_value());
  CHECK(**got == "hello");
  // Stored twice: one copy.
  REQUIRE((*store)->put(*id, "hello"));
  CHECK((*store)->stats().blobs == 1);
  CHECK((*store)->stats().bytes == 5);
  // A claim that does not hash.
  auto lie = (*store)->put(*id, "hellO");
  REQUIRE_FALSE(lie);
  CHECK(lie.error().code == ErrorCode::corrupt);
  // Unknown: absent, not an error.
  auto missing = (*store)->get(BlobId::of(std::string_view("nope")));
  REQUIRE(missing);
  CHECK_FALSE(missing->has_value());
  // Too big for any peer message.
  CHECK_FALSE((*store)->put(std::string(kMaxBlobBytes + 1, 'x')));
}

TEST_CASE("the blob store reopens with its blobs and drops one damaged on disk", "[unit][store]") {
  test::TempDir dir;
  BlobId good, damaged;
  {
    auto store = BlobStore::open(dir.path() / "blobs", 1 << 20);
    REQUIRE(store);
    good = *(*store)->put(blob_of('a', 1000));
    damaged = *(*store)->put(blob_of('b', 1000));
  }
  {  // bit rot, and a crashed write's leftover
    const std::string hex = damaged.hex();
    std::ofstream(dir.path() / "blobs" / hex.substr(0, 2) / hex, std::ios::binary) << blob_of('c', 1000);
    std::ofstream(dir.path() / "blobs" / "tmp" / "leftover", std::ios::binary) << "partial";
  }
  auto store = BlobStore::open(dir.path() / "blobs", 1 << 20);
  REQUIRE(store);
  CHECK((*store)->stats().blobs == 2);
  CHECK_FALSE(std::filesystem::exists(dir.path() / "blobs" / "tmp" / "leftover"));
  auto a = (*store)->get(good);
  REQUIRE(a);
  REQUIRE(a->has_value());
  CHECK(**a == blob_of('a', 1000));
  auto b = (*store)->get(damaged);
  REQUIRE(b);
  CHECK_FALSE(b->has_value());  // hashed on first read, found wrong, deleted
  CHECK((*store)->stats().blobs == 1);
  CHECK_FALSE((*store)->contains(damaged));
  // The right bytes can be stored again.
  REQUIRE((*store)->put(damaged, blob_of('b', 1000)));
  CHECK((*store)->contains(damaged));
}

TEST_CASE("the blob store stays within its capacity, least recently used first", "[unit][store]") {
  test::TempDir dir;
  auto store = BlobStore::open(dir.path() / "blobs", 3000);
  REQUIRE(store);
  const BlobId first = *(*store)->put(blob_of('1', 1000));
  const BlobId second = *(*store)->put(blob_of('2', 1000));
  const BlobId third = *(*store)->put(blob_of('3', 1000));
  REQUIRE((*store)->get(first));  // used again: now the second is the oldest
  const BlobId fourth = *(*store)->put(blob_of('4', 1000));
  CHECK((*store)->contains(first));
  CHECK_FALSE((*store)->contains(second));
  CHECK((*store)->contains(third));
  CHECK((*store)->contains(fourth));
  CHECK((*store)->stats().bytes <= 3000);
  CHECK((*store)->stats().evicted == 1);
  CHECK_FALSE((*store)->put(blob_of('5', 4000)));  // larger than the whole store
}

TEST_CASE("matrix chunks hold whole rows of about a MiB", "[unit][store]") {
  CHECK(chunk_rows_for(4096) == 64);
  CHECK(chunk_rows_for(1) == (1u << 20) / 4);
  CHECK(chunk_rows_for(65536) == 4);
  CHECK(chunk_rows_for(300000) == 1);  // a row over a MiB is still one row
  MatrixManifest m;
  m.rows = 130;
  m.cols = 4096;
  m.chunk_rows = chunk_rows_for(m.cols);
  m.chunks.resize(3);
  CHECK(m.rows_in(0) == 64);
  CHECK(m.rows_in(2) == 2);
  CHECK(m.chunk_of(63) == 0);
  CHECK(m.chunk_of(64) == 1);
  CHECK(m.chunk_of(129) == 2);
}

TEST_CASE("a matrix manifest round-trips and a damaged one is refused", "[unit][store]") {
  MatrixManifest m;
  m.rows = 100;
  m.cols = 4096;
  m.chunk_rows = chunk_rows_for(m.cols);
  for (int i = 0; i < 2; ++i) m.chunks.push_back(BlobId::of(std::string(1, static_cast<char>('a' + i))));
  auto back = decode_manifest(encode_manifest(m));
  REQUIRE(back);
  CHECK(back->rows == 100);
  CHECK(back->cols == 4096);
  CHECK(back->chunks == m.chunks);

  auto broken = m;
  broken.chunks.pop_back();  // fewer chunks than rows need
  CHECK_FALSE(decode_manifest(encode_manifest(broken)));
  broken = m;
  broken.chunk_rows = 7;  // not how chunks are cut
  CHECK_FALSE(decode_manifest(encode_manifest(broken)));
  broken = m;
  broken.rows = kMaxMatrixDim + 1;
  CHECK_FALSE(decode_manifest(encode_manifest(broken)));
  broken = m;
  broken.cols = 0;
  CHECK_FALSE(decode_manifest(encode_manifest(broken)));
  CHECK_FALSE(decode_manifest("\xff\xff garbage"));
}

TEST_CASE("recent blobs are served from memory, within its budget", "[unit][store]") {
  test::TempDir dir;
  auto store = BlobStore::open(dir.path() / "blobs", 1 << 20, /*memory_bytes=*/2500);
  REQUIRE(store);
  const BlobId first = *(*store)->put(blob_of('1', 1000));
  const BlobId second = *(*store)->put(blob_of('2', 1000));
  CHECK((*store)->stats().memory_bytes == 2000);
  const BlobId third = *(*store)->put(blob_of('3', 1000));  // the first leaves memory
  CHECK((*store)->stats().memory_bytes == 2000);
  // Files gone behind the store's back: what is in memory still reads.
  for (const auto& id : {first, second, third}) {
    const std::string hex = id.hex();
    std::filesystem::remove(dir.path() / "blobs" / hex.substr(0, 2) / hex);
  }
  auto from_memory = (*store)->get(third);
  REQUIRE(from_memory);
  REQUIRE(from_memory->has_value());
  CHECK(**from_memory == blob_of('3', 1000));
  auto from_disk = (*store)->get(first);
  REQUIRE(from_disk);
  CHECK_FALSE(from_disk->has_value());  // not in memory, and its file is gone
}

TEST_CASE("shared puts hash once and keep the caller's bytes, disk-only puts keep none in memory", "[unit][store]") {
  test::TempDir dir;
  auto store = BlobStore::open(dir.path() / "blobs", 1 << 20, 1 << 16);
  REQUIRE(store);
  auto shared = std::make_shared<const std::string>(blob_of('s', 1000));
  auto id = (*store)->put(shared);
  REQUIRE(id);
  CHECK(*id == BlobId::of(*shared));
  auto got = (*store)->get_shared(*id);
  REQUIRE(got);
  CHECK(got->get() == shared.get());  // the same bytes, not a copy
  CHECK((*store)->stats().memory_bytes == 1000);
  // A claim that does not hash is refused in the shared form too.
  auto lie = (*store)->put(*id, std::make_shared<const std::string>(blob_of('t', 1000)));
  REQUIRE_FALSE(lie);
  CHECK(lie.error().code == ErrorCode::corrupt);

  const std::string chunk = blob_of('d', 2000);
  auto on_disk = (*store)->put_on_disk(chunk);
  REQUIRE(on_disk);
  CHECK(*on_disk == BlobId::of(chunk));
  CHECK((*store)->stats().memory_bytes == 1000);  // not kept in memory
  auto read = (*store)->get_shared(*on_disk);
  REQUIRE(read);
  REQUIRE(*read != nullptr);
  CHECK(**read == chunk);  // from disk, and now remembered
  CHECK((*store)->stats().memory_bytes == 3000);
  auto absent = (*store)->get_shared(BlobId::of(std::string_view("nope")));
  REQUIRE(absent);
  CHECK(*absent == nullptr);
  CHECK_FALSE((*store)->put_on_disk(std::string(kMaxBlobBytes + 1, 'x')));
}
