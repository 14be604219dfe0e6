#pragma once
// How the runtime API and the master CLI read what a client sends, in one
// place so that both protocols stay the same: the client sends lines; a line
// holds one or more commands separated by ';'; a command is words separated by
// blanks (spaces and tabs). There is no quoting and no escape: a quote or a
// backslash is an ordinary character, and no command takes an argument that
// holds a blank or a ';'.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace weir::command_line {

// A client that sends more than this without a newline is cut off.
constexpr size_t kMaxPending = 64 * 1024;

// Takes the next line out of `pending`, without its "\n" or "\r\n". Once the
// client has finished sending (`eof`), what is left is a last line without its
// newline. nullopt while no whole line waits.
std::optional<std::string> take_line(std::string* pending, bool eof);

// The commands of a line, trimmed of blanks; empty ones (";;", a trailing ';')
// are dropped.
std::vector<std::string_view> split_commands(std::string_view line);

// The words of a command.
std::vector<std::string_view> split_words(std::string_view command);

// How many of `words` the command `name` ("show servers state") takes when
// they start with its words; 0 when they do not.
size_t match_name(std::string_view name, const std::vector<std::string_view>& words);

}  // namespace weir::command_line
