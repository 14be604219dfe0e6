#pragma once
// YAML syntax errors in the words of someone editing weir.yaml. yaml-cpp says
// where it stopped ("3:1: end of sequence flow not found"); the mistake is often
// elsewhere (the `[` that is never closed, a tab three lines up, a missing space
// after a colon on the line before). These functions look at the text around
// the parser's position for the common mistakes and say what is wrong and what
// to write instead, at the place to fix. Part of the configuration loader
// (load/yaml_tree.cpp); unit-tested on their own.

#include <optional>
#include <string>
#include <string_view>

#include "common/config/config.h"

namespace weir::config_detail {

struct SyntaxError {
  SourceMark mark;
  std::string message;
};

// yaml-cpp stopped parsing `text` at `parser_mark` with `parser_message`.
SyntaxError explain_syntax_error(std::string_view text, SourceMark parser_mark,
                                 std::string_view parser_message);

// yaml-cpp takes a quoted scalar whose closing quote is missing as running to the
// end of the file. For the scalar whose opening quote is at `mark`: the error
// when it is never closed, else nullopt (nullopt too when no quote is there).
std::optional<SyntaxError> unclosed_quote_at(std::string_view text, SourceMark mark);

// When `scalar` reads as a key and its value run together ("threads:2"): the
// advice "; a space is missing after ':' (write 'threads: 2')", else "".
std::string missing_space_hint(std::string_view scalar);

}  // namespace weir::config_detail
