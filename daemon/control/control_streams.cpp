#include "daemon/control/control_streams.hpp"

#include <optional>
#include <utility>

namespace p2pd::control {

grpc::Status to_status(const Error& error) {
  switch (error.code) {
    case ErrorCode::invalid_argument: return {grpc::StatusCode::INVALID_ARGUMENT, error.message};
    case ErrorCode::not_found: return {grpc::StatusCode::NOT_FOUND, error.message};
    case ErrorCode::permission_denied: return {grpc::StatusCode::PERMISSION_DENIED, error.message};
    // Not UNAVAILABLE: to p2pctl that means the daemon itself cannot be reached.
    default: return {grpc::StatusCode::FAILED_PRECONDITION, error.message};
  }
}

namespace {

// One read outstanding at a time; each message is handed to the node, and
// the next read starts when the node says it has room.
class SubmitReactor final : public grpc::ServerReadReactor<proto::SubmitMessage> {
 public:
  SubmitReactor(grpc::CallbackServerContext* context, ControlHandler& handler, proto::SubmitReply* reply,
                std::string submitter)
      : m_context(context), m_handler(handler), m_reply(reply), m_submitter(std::move(submitter)) {
    StartRead(&m_message);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // Either the client said it is done (WritesDone) or the call is over.
      if (m_context->IsCancelled()) return close(grpc::Status::CANCELLED);
      if (!m_submission) return close({grpc::StatusCode::INVALID_ARGUMENT, "a submission needs a header"});
      m_closed = true;  // the node owns the submission from here
      m_handler.submit_end(*m_submission, [this](Result<SubmitView> view) {
        if (!view) return Finish(to_status(view.error()));
        m_reply->set_job_id(view->job_id);
        m_reply->set_shards(view->shards);
        Finish(grpc::Status::OK);
      });
      return;
    }
    if (!m_submission) {
      if (!m_message.has_header()) {
        return close({grpc::StatusCode::INVALID_ARGUMENT, "a submission starts with its header"});
      }
      const auto& h = m_message.header();
      SubmitHeader header{h.kind(),   h.a_rows(), h.a_cols(),       h.b_rows(),
                          h.b_cols(), h.shards(), h.max_attempts(), m_submitter};
      m_handler.submit_begin(std::move(header), [this](Result<std::uint64_t> submission) {
        if (!submission) return close(to_status(submission.error()));
        m_submission = *submission;
        StartRead(&m_message);
      });
      return;
    }
    if (m_message.body_case() != proto::SubmitMessage::kData) {
      return close({grpc::StatusCode::INVALID_ARGUMENT, "after the header a submission sends only data"});
    }
    m_handler.submit_data(*m_submission, std::move(*m_message.mutable_data()), [this](Result<void> taken) {
      if (!taken) return close(to_status(taken.error()));
      StartRead(&m_message);
    });
  }

  void OnDone() override {
    if (m_submission && !m_closed) m_handler.submit_abort(*m_submission);
    delete this;
  }

 private:
  // Ends the call early; the node forgets the submission.
  void close(grpc::Status status) {
    if (m_submission && !m_closed) m_handler.submit_abort(*m_submission);
    m_closed = true;
    Finish(std::move(status));
  }

  grpc::CallbackServerContext* m_context;
  ControlHandler& m_handler;
  proto::SubmitReply* m_reply;
  const std::string m_submitter;
  proto::SubmitMessage m_message;
  std::optional<std::uint64_t> m_submission;
  bool m_closed = false;  // submit_end or submit_abort was called
};

class ResultReactor final : public grpc::ServerWriteReactor<proto::ResultMessage> {
 public:
  ResultReactor(ControlHandler& handler, const std::string& job_id) : m_handler(handler) {
    m_handler.result_begin(job_id, [this](Result<ResultStreamView> view) {
      if (!view) return Finish(to_status(view.error()));
      m_stream = view->stream;
      m_message.mutable_header()->set_rows(view->rows);
      m_message.mutable_header()->set_cols(view->cols);
      StartWrite(&m_message);
    });
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return Finish(grpc::Status::CANCELLED);
    m_handler.result_next(*m_stream, [this](Result<std::optional<std::string>> data) {
      if (!data) return Finish(to_status(data.error()));
      if (!*data) return Finish(grpc::Status::OK);
      *m_message.mutable_data() = std::move(**data);
      StartWrite(&m_message);
    });
  }

  void OnDone() override {
    if (m_stream) m_handler.result_end(*m_stream);
    delete this;
  }

 private:
  ControlHandler& m_handler;
  proto::ResultMessage m_message;
  std::optional<std::uint64_t> m_stream;
};

}  // namespace

grpc::ServerReadReactor<proto::SubmitMessage>* start_submit(grpc::CallbackServerContext* context,
                                                            ControlHandler& handler, proto::SubmitReply* reply,
                                                            std::string submitter) {
  return new SubmitReactor(context, handler, reply, std::move(submitter));
}

grpc::ServerWriteReactor<proto::ResultMessage>* start_result(grpc::CallbackServerContext* /*context*/,
                                                             ControlHandler& handler,
                                                             const proto::ResultRequest* request) {
  return new ResultReactor(handler, request->job_id());
}

}  // namespace p2pd::control
