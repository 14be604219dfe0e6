#pragma once
// Identifies an executable file: its GNU build-id note (what the linker derives
// from the code), or, for a binary without one, its size, inode and mtime. The
// master compares the id of the binary on disk with the one it started from to
// know whether a reload must re-execute the master itself (binary upgrade).

#include <string>

namespace weir {

// "" when the file cannot be read.
std::string executable_id(const std::string& path);

}  // namespace weir
