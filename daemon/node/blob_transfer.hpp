#pragma once
// Blobs and matrices moving between this node's store and the ring's
// holders (DESIGN.md, "Data flow of a job", steps 1, 3 and 5). Lives on the
// io thread; disk reads, writes and hashing run on the blocking pool, and
// every callback comes back on the io thread.
//
// - store(): written here first, then to the key's holders (the owner and
//   its replica successors, found by a ring lookup). It succeeds once
//   min(2, holders) copies exist, so a job survives its submitter leaving.
// - fetch(): from here when held, else from each holder in turn. A holder's
//   answer is hashed before it is believed, and kept here as a cache.
// - Matrices go a chunk at a time, kWindow chunks in flight, so memory
//   stays at the matrix being built plus a few chunks.
// - Whole matrices are handed over through the matrix cache: one stored or
//   fetched whole is kept there, and a fetch of rows it holds is a view
//   into it, not a copy.

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/float_buffer.hpp"
#include "common/node_id.hpp"
#include "common/result.hpp"
#include "daemon/chord/messages.hpp"
#include "daemon/net/peer_client.hpp"
#include "daemon/store/blob_store.hpp"
#include "daemon/store/matrix_cache.hpp"
#include "daemon/store/matrix_manifest.hpp"

namespace p2pd::node {

// Rows [begin, end) of a stored matrix.
struct MatrixRows {
  store::MatrixManifest manifest;
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
  // Owns `values`: the whole matrix (from the matrix cache) or just these rows.
  std::shared_ptr<const FloatBuffer> storage;
  std::span<const float> values;  // (end - begin) x manifest.cols, row-major
};

// Bytes to store and what keeps them alive while they are written and sent.
struct SharedBytes {
  std::shared_ptr<const void> owner;
  std::string_view bytes;
};

class BlobTransfer {
 public:
  // The holders of a ring key, owner first.
  using Locate = std::function<void(const NodeId& key, std::function<void(Result<std::vector<chord::Peer>>)>)>;

  static constexpr std::size_t kWindow = 4;
  static constexpr std::chrono::milliseconds kCallTimeout{15000};

  BlobTransfer(NodeId self, store::BlobStore& store, store::MatrixCache& matrices, net::PeerClient& peers,
               boost::asio::io_context& io, boost::asio::thread_pool& blocking, Locate locate);

  // The blob's bytes (never null on success).
  using Bytes = std::shared_ptr<const std::string>;
  void fetch(const store::BlobId& id, std::function<void(Result<Bytes>)> done);
  void store(std::string data, std::function<void(Result<store::BlobId>)> done);
  // Stores bytes that live in a matrix the matrix cache will hold: written
  // to disk and the holders, not copied into the blob store's memory.
  void store_in_matrix(SharedBytes chunk, std::function<void(Result<store::BlobId>)> done);

  void fetch_manifest(const store::BlobId& id, std::function<void(Result<store::MatrixManifest>)> done);
  // Rows [begin, end) of the matrix `manifest_id`; end 0 means all rows.
  void fetch_rows(const store::BlobId& manifest_id, std::uint64_t begin, std::uint64_t end,
                  std::function<void(Result<MatrixRows>)> done);
  // Several fetch_rows at once; done with all of them in request order, or
  // with the first error once every fetch has ended.
  struct RowsRequest {
    store::BlobId manifest_id;
    std::uint64_t begin = 0;
    std::uint64_t end = 0;  // 0: all rows
  };
  void fetch_rows_all(std::vector<RowsRequest> requests, std::function<void(Result<std::vector<MatrixRows>>)> done);
  // Stores a rows x cols matrix chunk by chunk, then its manifest; gives the
  // manifest's id, under which the matrix is then in the matrix cache.
  void store_matrix(std::shared_ptr<const FloatBuffer> values, std::uint64_t rows, std::uint64_t cols,
                    std::function<void(Result<store::BlobId>)> done);

 private:
  void fetch_remote(const store::BlobId& id, std::function<void(Result<Bytes>)> done);
  void try_holder(const store::BlobId& id, std::shared_ptr<std::vector<chord::Peer>> holders, std::size_t next,
                  std::string last_error, std::function<void(Result<Bytes>)> done);
  void replicate(const store::BlobId& id, SharedBytes data, std::function<void(Result<store::BlobId>)> done);
  // Runs `work` on the blocking pool and `then` with its result on the io thread.
  template <class T>
  void off_thread(std::function<T()> work, std::function<void(T)> then);

  NodeId m_self;
  store::BlobStore& m_store;
  store::MatrixCache& m_matrices;
  net::PeerClient& m_peers;
  boost::asio::io_context& m_io;
  boost::asio::thread_pool& m_blocking;
  Locate m_locate;
};

}  // namespace p2pd::node
