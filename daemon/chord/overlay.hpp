#pragma once
// The Chord overlay of one node, sans-IO: the ring (ring.hpp) plus the
// replicated key-value store on it. A key is owned by successor(key) and
// copied to the next replicas-1 successors (the DHash arrangement, Dabek et
// al., "Wide-area cooperative storage with CFS", SOSP 2001, §5.1):
//   - put/get: look the owner up, then write to every holder / read from the
//     first holder that has the key;
//   - every sync interval an owner offers its keys to its replica holders,
//     which fetch what they lack: a failed holder is re-replicated onto the
//     node that now follows;
//   - every node offers its predecessor the keys outside its own range, and
//     the predecessor takes those it now owns: keys move to a node that
//     joins (hand-over);
//   - a copy outside the node's own range that no owner has offered for
//     gc_after_ticks is handed to the key's current holders, found by a
//     lookup, and dropped once they all stored it ("global maintenance",
//     Cates, "Robust and efficient data management for a DHT", MIT 2003,
//     §4.2): keys reach owners that joined several at a time, and memory
//     stays bounded under churn without ever dropping a last copy;
//   - leave() hands every owned key to the successor first.
// Versions order the writes of one key: a holder gives a client's write the
// next version it knows of, and copies only replace older versions.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "daemon/chord/kv_store.hpp"
#include "daemon/chord/messages.hpp"
#include "daemon/chord/ring.hpp"

namespace p2pd::chord {

struct OverlayConfig {
  RingConfig ring;
  std::size_t replicas = 3;  // holders of each key, the owner included (k)
  std::uint32_t sync_interval_ticks = 40;
  std::uint32_t gc_after_ticks = 1200;
  std::uint32_t request_timeout_ticks = 40;
  std::size_t max_operations_in_flight = 1024;
  StoreLimits store;
};

enum class OperationKind { lookup, put, get, handoff /* internal: global maintenance */ };

struct OperationResult {
  std::uint64_t operation_id = 0;
  OperationKind kind = OperationKind::lookup;
  NodeId key;
  bool ok = false;
  ErrorCode error_code = ErrorCode::internal;
  std::string error;          // when !ok
  std::vector<Peer> holders;  // the owner first, then replica holders
  std::vector<Peer> path;     // the nodes the lookup asked
  std::string value;          // get
  std::uint64_t version = 0;  // put, get
  std::size_t copies = 0;     // put: holders that stored it
};

class Overlay {
 public:
  Overlay(Peer self, OverlayConfig config);

  void create() { m_ring.create(); }
  void join(std::string bootstrap_addr) { m_ring.join(std::move(bootstrap_addr)); }
  // Hands the keys this node owns to its successor, tells the neighbours,
  // and stops. The driver sends the outbox and then exits.
  struct Handover {
    std::optional<Peer> successor;  // unset when alone or not in the ring
    std::size_t keys = 0;           // values sent to it
  };
  Handover leave();

  void tick();
  // As Ring::receive: the reply to a request, else nullopt.
  std::optional<Message> receive(const Peer& from, const Message& message);
  std::vector<Outgoing> take_outbox();

  std::uint64_t lookup(const NodeId& key);
  std::uint64_t put(const NodeId& key, std::string value);
  std::uint64_t get(const NodeId& key);
  std::vector<OperationResult> take_results();

  [[nodiscard]] const Ring& ring() const { return m_ring; }
  [[nodiscard]] const KvStore& store() const { return m_store; }
  // Keys this node owns (predecessor known and the key in (predecessor, self]).
  [[nodiscard]] bool owns(const NodeId& key) const;

 private:
  struct Operation {
    OperationKind kind;
    NodeId key;
    std::string value;  // put
    std::vector<Peer> holders;
    std::vector<Peer> path;
    std::size_t next_holder = 0;  // get: the next holder to ask
    std::size_t outstanding = 0;  // put: holders not yet answered
    std::size_t copies = 0;
    std::uint64_t version = 0;
    bool owner_answered = false;  // put: the replicas are being written
    std::string last_error;
  };
  enum class Purpose { client_put, client_get, sync_offer, push };
  struct Pending {
    Purpose purpose;
    std::string addr;
    std::uint64_t deadline = 0;
    std::uint64_t operation_id = 0;
    std::size_t bytes = 0;  // push: value bytes in flight
  };

  std::uint64_t begin(OperationKind kind, const NodeId& key, std::string value);
  void send(Purpose purpose, const std::string& addr, std::uint64_t operation_id, Message message,
            std::size_t bytes = 0);
  void collect_lookups();
  void on_lookup(std::uint64_t operation_id, LookupResult result);
  void put_to_holders(std::uint64_t operation_id);
  void hand_off_to_holders(std::uint64_t operation_id);
  // Writes the operation's value to one holder (ourselves included); version
  // 0 lets the holder number it.
  void write_to(std::uint64_t operation_id, const Peer& holder, std::uint64_t version);
  void get_from_next_holder(std::uint64_t operation_id);
  void on_put_answer(std::uint64_t operation_id, bool stored, std::uint64_t version, const std::string& error);
  void finish(std::uint64_t operation_id, bool ok, ErrorCode code, std::string error);
  void on_timeout(const Pending& pending);
  void on_reply(const Pending& pending, const Message& reply);

  PutReply answer_put(const Put& put);
  SyncWant answer_offer(const SyncOffer& offer);
  void maintain();
  void offer(const std::string& addr, bool from_owner, const std::vector<KeyVersion>& items);
  std::vector<Peer> replica_targets() const;

  Ring m_ring;
  OverlayConfig m_config;
  KvStore m_store;
  std::uint64_t m_now = 0;
  std::uint64_t m_next_sync = 0;
  std::uint64_t m_next_request_id = 1;
  std::uint64_t m_next_operation_id = 1;
  std::map<std::uint64_t, Operation> m_operations;
  std::map<std::uint64_t, std::uint64_t> m_operation_of_lookup;
  std::map<std::uint64_t, Pending> m_pending;
  std::set<NodeId> m_handoffs;  // keys being handed off now
  std::size_t m_push_bytes_in_flight = 0;
  std::vector<Outgoing> m_outbox;
  std::vector<OperationResult> m_results;
};

}  // namespace p2pd::chord
