#pragma once
// Agent checks: a TCP probe, separate from the health check, to a small agent
// beside the server that answers with one line describing what the server
// wants: a weight ("75%", "weight:20"), a connection limit ("maxconn:30"), an
// administrative state ("ready", "drain", "maint") or an operational one
// ("up", "down", "fail", "stopped", optionally followed by "#reason"). Words
// are separated by commas or blanks. An agent that cannot be reached changes
// nothing: reachability is the health check's business.

#include <cstdint>
#include <string>

#include "common/base/fd.h"
#include "common/config/config.h"
#include "common/event/event_loop.h"
#include "common/event/timer.h"

namespace weir {

class Backend;
class Server;
class ThreadContext;

// What one agent reply asks for; parse_agent_reply() fills it.
struct AgentReply {
  int weight_percent = -1;  // "75%": percent of the configured weight
  int weight = -1;          // "weight:N": an absolute weight
  int maxconn = -1;         // "maxconn:N" (0: no limit)
  enum class Admin { kNone, kReady, kDrain, kMaint } admin = Admin::kNone;
  enum class Op { kNone, kUp, kDown } op = Op::kNone;
  std::string reason;   // after '#'
  std::string unknown;  // words not understood (reported, otherwise ignored)
};
AgentReply parse_agent_reply(std::string_view line);

class AgentChecker final : public IoHandler {
 public:
  AgentChecker(ThreadContext& ctx, Backend& backend, Server& server);
  ~AgentChecker();
  void start(int64_t first_delay_ms);  // on the checker's thread
  void stop();
  void on_io(uint32_t events) override;
  ThreadContext& thread() { return ctx_; }
  int64_t interval_hint() const { return cfg_.inter; }

 private:
  static void on_timer(void* self);
  void begin();
  void connected();
  void read_reply();
  // Ends the probe; `reply` is the agent's line when status is L7OK.
  void finish(const char* status, const std::string& description, const std::string* reply);
  void apply(const AgentReply& r, const std::string& line);

  ThreadContext& ctx_;
  Backend& backend_;
  Server& server_;
  const AgentConfig& cfg_;
  Timer timer_;
  UniqueFd fd_;
  bool running_ = false;
  bool connecting_ = false;
  bool stopped_ = false;
  int64_t started_ms_ = 0;
  size_t sent_ = 0;
  std::string reply_;
};

}  // namespace weir
