#include "worker/api/runtime_api.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "common/base/command_line.h"
#include "common/base/net.h"
#include "worker/api/command.h"
#include "worker/thread_context.h"
#include "worker/worker.h"

namespace weir {
namespace {

std::string help(Worker&, const ApiArgs&) {
  return api_help();
}

// The protocol's own command; `prompt` and `quit` act on the connection
// (ApiConnection::process) and are not commands.
constexpr ApiCommand kProtocolCommands[] = {
    {"help", ApiLevel::kUser,
     "help                this list (also: 'prompt' toggles an interactive '> ' prompt, "
     "'quit' closes the connection)",
     help},
};
const Registrar<ApiCommand> kRegisterProtocolCommands(kProtocolCommands);

}  // namespace

// One client connection to the runtime API.

class ApiConnection final : public IoHandler, public Retired {
 public:
  ApiConnection(ApiListener& owner, ThreadContext& ctx, Worker& worker, UniqueFd fd, ApiLevel level)
      : owner_(owner), ctx_(ctx), worker_(worker), fd_(std::move(fd)), level_(level) {}
  void start() {
    if (!ctx_.loop().add(fd_.get(), EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, this)) close();
  }
  void on_io(uint32_t) override {
    if (closed_) return;
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(fd_.get(), buf, sizeof buf);
      if (n > 0) {
        in_.append(buf, static_cast<size_t>(n));
        if (in_.size() > command_line::kMaxPending) eof_ = true;
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EINTR)) eof_ = true;
      break;
    }
    process();
    flush();
    if (eof_ && out_.empty()) close();
  }

 private:
  void process() {
    while (std::optional<std::string> line = command_line::take_line(&in_, eof_)) {
      for (std::string_view cmd : command_line::split_commands(*line)) {
        ApiArgs words = command_line::split_words(cmd);
        if (words.size() == 1 && words[0] == "prompt") {
          prompt_ = !prompt_;  // interactive mode: a "> " after every answer
        } else if (words.size() == 1 && words[0] == "quit") {
          eof_ = true;
          in_.clear();
          return;
        } else {
          out_ += run_api_command(worker_, level_, cmd);
          if (!out_.empty() && out_.back() != '\n') out_ += '\n';
          out_ += '\n';
        }
      }
      if (prompt_) out_ += "> ";
    }
  }
  void flush() {
    while (!out_.empty()) {
      ssize_t n = ::send(fd_.get(), out_.data(), out_.size(), MSG_NOSIGNAL);
      if (n > 0) {
        out_.erase(0, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      out_.clear();
      eof_ = true;
      return;
    }
  }
  void close() {
    if (closed_) return;
    closed_ = true;
    fd_.reset();
    owner_.release(this);
  }

  ApiListener& owner_;
  ThreadContext& ctx_;
  Worker& worker_;
  UniqueFd fd_;
  ApiLevel level_;
  std::string in_;
  std::string out_;
  bool eof_ = false;
  bool closed_ = false;
  bool prompt_ = false;
};

std::string run_api_command(Worker& worker, ApiLevel level, std::string_view line) {
  ApiArgs words = command_line::split_words(line);
  if (words.empty()) return "";
  size_t consumed = 0;
  const ApiCommand* cmd = find_api_command(words, &consumed);
  if (!cmd) {
    return "Error: unknown command '" + std::string(line) + "'; type 'help' for the list";
  }
  ApiArgs args(words.begin() + static_cast<std::ptrdiff_t>(consumed), words.end());
  ApiLevel needed = cmd->level_for ? cmd->level_for(args) : cmd->level;
  if (level < needed) {
    std::string what(cmd->name);
    if (cmd->level_for && args.size() >= 2) what += " ... " + std::string(args[1]);
    return "Error: '" + what + "' needs the " + api_level_name(needed) +
           " level; this endpoint is " + api_level_name(level);
  }
  std::string answer = cmd->run(worker, args);
  worker.publish_state();  // a change reaches the master (and the next generation) at once
  return answer;
}

ApiListener::ApiListener(ThreadContext& ctx, Worker& worker, int fd, ApiLevel level)
    : ctx_(ctx),
      worker_(worker),
      fd_(fd),
      level_(level),
      retry_(
          ctx.loop().timers(),
          [](void* self) { static_cast<ApiListener*>(self)->update_polling(); }, this) {}

ApiListener::~ApiListener() {
  stop();
}

void ApiListener::release(ApiConnection* conn) {
  for (auto it = conns_.begin(); it != conns_.end(); ++it) {
    if (it->get() == conn) {
      ctx_.loop().retire(std::move(*it));  // destroyed after the current batch of events
      conns_.erase(it);
      update_polling();
      return;
    }
  }
}

void ApiListener::start() {
  active_ = true;
  update_polling();
}

void ApiListener::stop() {
  active_ = false;
  retry_.disarm();
  update_polling();
}

void ApiListener::update_polling() {
  const bool want = active_ && conns_.size() < kApiConnectionsPerEndpoint && !retry_.deadline();
  if (want && !polling_) {
    polling_ = ctx_.loop().add(fd_, EPOLLIN, this);
  } else if (!want && polling_) {
    ctx_.loop().remove(fd_);
    polling_ = false;
  }
}

void ApiListener::on_io(uint32_t) {
  while (polling_ && conns_.size() < kApiConnectionsPerEndpoint) {
    int fd = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (net::out_of_descriptors(errno)) {
        // Level-triggered: stop polling for a moment rather than spin.
        worker_.note_fd_shortage("accept on the runtime API", errno);
        retry_.set(ctx_.loop().now_ms() + 100);
        update_polling();
      }
      return;
    }
    conns_.push_back(std::make_unique<ApiConnection>(*this, ctx_, worker_, UniqueFd(fd), level_));
    conns_.back()->start();
  }
  update_polling();
}

}  // namespace weir
