#pragma once
// A runtime-API command, declared by the module it acts on in a table beside
// its handler and registered with one line (common/base/registry.h):
//
//   constexpr ApiCommand kSessionCommands[] = {
//       {"show sess", ApiLevel::kUser, "show sess   every client connection", show_sess},
//   };
//   const Registrar<ApiCommand> kRegisterSessionCommands(kSessionCommands);
//
// The runtime API (worker/api/runtime_api.cpp) runs the command whose name is
// the longest match of a line's first words, checks the endpoint's level, and
// lists every registered command, sorted by name, for `help`.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/registry.h"
#include "common/config/config.h"

namespace weir {

class Worker;
class Backend;
class Server;

// The words that follow a command's name.
using ApiArgs = std::vector<std::string_view>;

struct ApiCommand {
  std::string_view name;   // its words: "show stat", "set server"
  ApiLevel level;          // the lowest endpoint level that may run it
  std::string_view usage;  // its line in `help`
  // The answer, without its final empty line; an error starts with "Error: ".
  // Runs on thread 0 of the worker.
  std::string (*run)(Worker& w, const ApiArgs& args);
  // When set, the level these arguments need: some settings of a command are
  // reserved to a higher level than the command itself.
  ApiLevel (*level_for)(const ApiArgs& args) = nullptr;
};

const char* api_level_name(ApiLevel level);

// The command whose name is the longest match of the first `words`, with how
// many words its name took; nullptr when none matches.
const ApiCommand* find_api_command(const std::vector<std::string_view>& words, size_t* consumed);

// The answer to `help`: every registered command, sorted by name, with its level.
std::string api_help();

// Lookups that commands share. Each returns nullptr and sets *error to the
// answer ("Error: no backend named 'x'", ...) when the name is unknown.
Backend* find_backend_arg(Worker& w, std::string_view name, std::string* error);
// "backend/server".
Server* find_server_arg(Worker& w, std::string_view arg, std::string* error);

}  // namespace weir
