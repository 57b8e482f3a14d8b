// The blob store bound to the peer service and the ring (DESIGN.md
// daemon/store): peers put and get chunks here; the ring says who holds what.
#include <boost/asio/post.hpp>

#include <algorithm>

#include "common/log.hpp"
#include "daemon/node/node.hpp"

namespace p2pd::node {
namespace {

// Gives back a blob request's place when the request is done.
struct BlobRequestSlot {
  explicit BlobRequestSlot(std::atomic<std::size_t>& count) : m_count(count) {}
  ~BlobRequestSlot() { --m_count; }
  BlobRequestSlot(const BlobRequestSlot&) = delete;
  BlobRequestSlot& operator=(const BlobRequestSlot&) = delete;
  std::atomic<std::size_t>& m_count;
};

}  // namespace

Result<void> Node::start_store() {
  const std::uint64_t capacity = static_cast<std::uint64_t>(m_config.store_capacity_mib) << 20;
  // A job's chunks are read again soon after they are written: keep the
  // latest in memory, a quarter of the store at most.
  const std::uint64_t memory = std::min(kBlobMemoryBytes, capacity / 4);
  auto store = store::BlobStore::open(m_config.state_dir / "blobs", capacity, memory);
  if (!store) return store.error();
  m_blob_store = std::move(*store);
  // Bounded like the chunks in memory, by the store's size too.
  m_matrix_cache = std::make_unique<store::MatrixCache>(std::min(kMatrixMemoryBytes, capacity / 4));
  return {};
}

void Node::locate(const NodeId& key, std::function<void(Result<std::vector<chord::Peer>>)> done) {
  if (!m_overlay) return done(make_error(ErrorCode::unavailable, "the ring is not started yet"));
  run_operation(m_overlay->lookup(key), [done = std::move(done)](chord::OperationResult r) {
    if (!r.ok) return done(Error{r.error_code, r.error});
    done(std::move(r.holders));
  });
}

void Node::on_blob_put(net::BlobPutIn put, std::function<void(Result<void>)> done) {
  if (m_blob_requests.fetch_add(1) >= kMaxBlobRequestsInFlight) {
    --m_blob_requests;
    return done(make_error(ErrorCode::unavailable, "too many blob requests at once; try again"));
  }
  // Hashing and writing 1 MiB is disk work: off gRPC's threads and the io thread.
  boost::asio::post(m_blocking, [this, put = std::move(put), done = std::move(done)]() mutable {
    BlobRequestSlot slot(m_blob_requests);
    auto id = store::BlobId::from_bytes(put.id);
    if (!id) return done(make_error(ErrorCode::invalid_argument, "a blob id must be 32 bytes"));
    done(m_blob_store->put(*id, std::make_shared<const std::string>(std::move(put.data))));
  });
}

void Node::on_blob_get(std::string id, std::function<void(Result<std::optional<std::string>>)> done) {
  if (m_blob_requests.fetch_add(1) >= kMaxBlobRequestsInFlight) {
    --m_blob_requests;
    return done(make_error(ErrorCode::unavailable, "too many blob requests at once; try again"));
  }
  boost::asio::post(m_blocking, [this, id = std::move(id), done = std::move(done)] {
    BlobRequestSlot slot(m_blob_requests);
    auto blob = store::BlobId::from_bytes(id);
    if (!blob) return done(make_error(ErrorCode::invalid_argument, "a blob id must be 32 bytes"));
    done(m_blob_store->get(*blob));
  });
}

}  // namespace p2pd::node
