// The matrix cache (daemon/store) and the buffers it holds: bounded, least
// recently used first, idle entries dropped, and large buffers recycled.
#include <catch2/catch.hpp>

#include <thread>

#include "common/float_buffer.hpp"
#include "daemon/store/matrix_cache.hpp"

using namespace p2pd;
using namespace p2pd::store;
using namespace std::chrono_literals;

namespace {

CachedMatrix matrix_of(std::uint64_t rows, std::uint64_t cols, float fill) {
  MatrixManifest manifest;
  manifest.rows = rows;
  manifest.cols = cols;
  manifest.chunk_rows = chunk_rows_for(cols);
  auto values = std::make_shared<FloatBuffer>(rows * cols);
  for (auto& v : values->span()) v = fill;
  return CachedMatrix{manifest, values};
}

BlobId id_of(char c) {
  return BlobId::of(std::string(1, c));
}

}  // namespace

TEST_CASE("the matrix cache hands out what was put in, within its capacity, least recently used first",
          "[unit][store]") {
  MatrixCache cache(3 * 1000 * 4);  // three 10x100 matrices
  cache.insert(id_of('a'), matrix_of(10, 100, 1.0f));
  cache.insert(id_of('b'), matrix_of(10, 100, 2.0f));
  cache.insert(id_of('c'), matrix_of(10, 100, 3.0f));
  auto a = cache.find(id_of('a'));  // used again: now b is the oldest
  REQUIRE(a);
  CHECK(a->values->data()[999] == 1.0f);
  CHECK(a->manifest.rows == 10);
  cache.insert(id_of('d'), matrix_of(10, 100, 4.0f));
  CHECK(cache.find(id_of('a')));
  CHECK_FALSE(cache.find(id_of('b')));
  CHECK(cache.find(id_of('c')));
  CHECK(cache.find(id_of('d')));
  CHECK(cache.stats().bytes == 3 * 1000 * 4);
  CHECK(cache.stats().matrices == 3);

  // Too big for the cache, or values that do not match the manifest: not kept.
  cache.insert(id_of('e'), matrix_of(40, 100, 5.0f));
  CHECK_FALSE(cache.find(id_of('e')));
  auto wrong = matrix_of(10, 100, 6.0f);
  wrong.manifest.rows = 11;
  cache.insert(id_of('f'), wrong);
  CHECK_FALSE(cache.find(id_of('f')));
  CHECK_FALSE(cache.fits(40 * 100 * 4));

  // An entry in use elsewhere outlives its eviction.
  auto held = cache.find(id_of('c'));
  REQUIRE(held);
  cache.drop_idle(0s);
  CHECK(cache.stats().matrices == 0);
  CHECK(cache.stats().bytes == 0);
  CHECK(held->values->data()[0] == 3.0f);
}

TEST_CASE("the matrix cache drops only entries idle for the given time", "[unit][store]") {
  MatrixCache cache(1 << 20);
  cache.insert(id_of('a'), matrix_of(4, 4, 1.0f));
  cache.drop_idle(1h);
  CHECK(cache.find(id_of('a')));
  std::this_thread::sleep_for(20ms);
  cache.insert(id_of('b'), matrix_of(4, 4, 2.0f));
  cache.drop_idle(10ms);
  CHECK_FALSE(cache.find(id_of('a')));
  CHECK(cache.find(id_of('b')));
}

TEST_CASE("large float buffers are recycled, and given back once idle", "[unit][store]") {
  FloatBuffer::release_idle(0s);
  REQUIRE(FloatBuffer::kept_bytes() == 0);
  constexpr std::size_t kCount = std::size_t{3} << 20;  // 12 MiB: a large block
  const float* first = nullptr;
  {
    FloatBuffer buffer(kCount);
    buffer.data()[kCount - 1] = 7.0f;  // all of it is usable
    first = buffer.data();
  }
  CHECK(FloatBuffer::kept_bytes() == kCount * sizeof(float));
  {
    FloatBuffer again(kCount - 1000);  // about the same size: the same block
    CHECK(again.data() == first);
    CHECK(FloatBuffer::kept_bytes() == 0);
    FloatBuffer moved = std::move(again);
    CHECK(moved.size() == kCount - 1000);
    CHECK(again.data() == nullptr);  // NOLINT(bugprone-use-after-move): moved-from is empty
  }
  // Given back at its own size, not the smaller size it was taken for.
  CHECK(FloatBuffer::kept_bytes() == kCount * sizeof(float));
  {
    FloatBuffer much_smaller(kCount / 4);  // would waste most of the block: a new one
    CHECK(much_smaller.data() != first);
  }
  CHECK(FloatBuffer::kept_bytes() > 0);
  FloatBuffer::release_idle(1h);
  CHECK(FloatBuffer::kept_bytes() > 0);
  FloatBuffer::release_idle(0s);
  CHECK(FloatBuffer::kept_bytes() == 0);
  FloatBuffer small(10);  // small buffers are plain allocations
  small.data()[9] = 1.0f;
  CHECK(small.size() == 10);
  FloatBuffer empty;
  CHECK(empty.size() == 0);
}
