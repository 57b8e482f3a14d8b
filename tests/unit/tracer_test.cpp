// The tracer (daemon/trace): stamps carry clocks from node to node, a job's
// events carry its vector clock, and a bad stamp from a peer is ignored.
#include <catch2/catch.hpp>

#include "daemon/trace/tracer.hpp"
#include "tests/support/temp_dir.hpp"

using namespace p2pd;
using namespace p2pd::trace;

namespace {

std::unique_ptr<Recorder> open_recorder(const std::filesystem::path& dir) {
  auto recorder = Recorder::open(dir, 1 << 20);
  REQUIRE(recorder);
  return std::move(*recorder);
}

struct TracedNode {
  TracedNode(const std::filesystem::path& dir, std::string name, std::uint64_t& time)
      : recorder(open_recorder(dir / name)), tracer(std::move(name), recorder.get(), [&time] { return time; }) {}
  std::unique_ptr<Recorder> recorder;
  Tracer tracer;
  std::vector<TraceEvent> events() { return *recorder->events("", 0, 1000); }
};

}  // namespace

TEST_CASE("a job's messages carry its vector clock and each receive follows its send", "[unit][trace]") {
  test::TempDir dir;
  std::uint64_t time = 1'700'000'000'000;
  TracedNode a(dir.path(), "aaaa", time);
  TracedNode b(dir.path(), "bbbb", time);
  TracedNode c(dir.path(), "cccc", time);

  a.tracer.local("job submitted", "job1");
  const std::string to_b = a.tracer.on_send("shard 0 assigned", "job1");
  b.tracer.on_receive(to_b, "shard 0 assigned");
  b.tracer.local("shard 0 computed", "job1");
  const std::string to_c = b.tracer.on_send("shard 0 reported", "job1");
  c.tracer.on_receive(to_c, "shard 0 reported");
  // Ring maintenance: moves the clocks, records nothing.
  c.tracer.on_receive(a.tracer.on_send(), "");

  const auto ea = a.events();
  const auto eb = b.events();
  const auto ec = c.events();
  REQUIRE(ea.size() == 2);
  REQUIRE(eb.size() == 3);
  REQUIRE(ec.size() == 1);
  const auto& send = ea[1];
  const auto& receive = eb[0];
  CHECK(send.kind == EventKind::send);
  CHECK(receive.kind == EventKind::receive);
  CHECK(send.msg_id == receive.msg_id);
  CHECK_FALSE(send.msg_id.empty());
  CHECK(send.lamport < receive.lamport);
  CHECK(send.hlc < receive.hlc);
  CHECK(send.vc.le(receive.vc));
  CHECK(send.vc.compare(receive.vc) == clocks::CausalOrder::before);
  // Each host's own entry counts its events of the job: 1, 2, 3.
  CHECK(ea[0].vc.get("aaaa") == 1);
  CHECK(ea[1].vc.get("aaaa") == 2);
  CHECK(eb[0].vc.get("bbbb") == 1);
  CHECK(eb[1].vc.get("bbbb") == 2);
  CHECK(eb[2].vc.get("bbbb") == 3);
  CHECK(ec[0].vc.get("cccc") == 1);
  CHECK(ec[0].vc.get("aaaa") == 2);  // what c knows of a, through b
  CHECK(ec[0].msg_id == eb[2].msg_id);
  CHECK(c.tracer.lamport() > a.tracer.lamport() - 1);
  CHECK(c.tracer.job_clock("job1").get("bbbb") == 3);
}

TEST_CASE("a peer's bad trace stamp is ignored and counted", "[unit][trace]") {
  std::uint64_t time = 1'700'000'000'000;
  Tracer tracer("aaaa", nullptr, [&time] { return time; });
  tracer.on_receive("", "nothing");  // no stamp: nothing to do
  CHECK(tracer.bad_contexts() == 0);
  tracer.on_receive("\xff\xff\xff garbage", "bad");
  CHECK(tracer.bad_contexts() == 1);
  tracer.on_receive(std::string(kMaxTraceContextBytes + 1, 'x'), "huge");
  CHECK(tracer.bad_contexts() == 2);
  CHECK(tracer.lamport() == 0);  // neither moved the clock

  // A stamp far in the future moves the Lamport clock but not the HLC.
  std::uint64_t their_time = time + 10 * kMaxClockOffsetMs;
  Tracer far("ffff", nullptr, [&their_time] { return their_time; });
  tracer.on_receive(far.on_send(), "from the future");
  CHECK(tracer.bad_contexts() == 2);
  CHECK(tracer.lamport() == 2);
  test::TempDir dir;
  auto recorder = Recorder::open(dir.path(), 1 << 20);
  REQUIRE(recorder);
  Tracer recording("aaaa", recorder->get(), [&time] { return time; });
  recording.on_receive(far.on_send("hello"), "hello");
  auto events = (*recorder)->events("", 0, 10);
  REQUIRE(events);
  REQUIRE(events->size() == 1);
  CHECK(events->front().hlc.l == time);  // its own clock, not the peer's
}
