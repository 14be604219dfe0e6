#pragma once
// weir's version string. Defined in the executable (common/base/version.cpp), not in a
// library, so that a test build can produce a second binary reporting another
// version from the same objects (the binary-upgrade test needs one).

namespace weir {

const char* version();

}  // namespace weir
